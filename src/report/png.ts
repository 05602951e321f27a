// The loss curve as a PNG, drawn in plain TS so the CLI (Node) and the page (worker or tab) write the same
// file: the training loss per step and the validation loss per evaluation are rasterised into an RGBA
// buffer (axes, grid, min/max labels in a 5×7 bitmap font, a legend), then encoded as an 8-bit RGBA PNG
// (IHDR, one zlib IDAT from fflate, IEND; CRC-32 per chunk).
import { zlibSync } from 'fflate';
import { crc32 } from '../storage/checksum';
import type { MetricPoint } from '../train/metrics';

export interface Raster {
  width: number;
  height: number;
  /** RGBA, row-major, 4 bytes a pixel. */
  data: Uint8Array;
}

type Rgb = [number, number, number];

export const TRAIN_COLOR: Rgb = [31, 119, 180];
export const VAL_COLOR: Rgb = [255, 127, 14];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [40, 40, 40];

export function blankRaster(width: number, height: number): Raster {
  const data = new Uint8Array(width * height * 4).fill(255);
  return { width, height, data };
}

function setPixel(r: Raster, x: number, y: number, c: Rgb, alpha = 1): void {
  x = Math.round(x);
  y = Math.round(y);
  if (x < 0 || y < 0 || x >= r.width || y >= r.height) return;
  const i = (y * r.width + x) * 4;
  for (let k = 0; k < 3; k++) r.data[i + k] = Math.round(r.data[i + k]! * (1 - alpha) + c[k]! * alpha);
  r.data[i + 3] = 255;
}

/** A line `w` pixels thick (a square brush stepped along the segment). */
export function drawLine(r: Raster, x0: number, y0: number, x1: number, y1: number, c: Rgb, w = 1): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0))));
  const h = (w - 1) / 2;
  for (let i = 0; i <= n; i++) {
    const x = x0 + ((x1 - x0) * i) / n;
    const y = y0 + ((y1 - y0) * i) / n;
    for (let dx = -h; dx <= h; dx++) for (let dy = -h; dy <= h; dy++) setPixel(r, x + dx, y + dy, c);
  }
}

function fillRect(r: Raster, x: number, y: number, w: number, h: number, c: Rgb): void {
  for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) setPixel(r, x + i, y + j, c);
}

// 5×7 glyphs: the characters the chart writes (numbers and its few words).
const GLYPHS: Record<string, string[]> = {
  '0': ['01110', '10001', '10011', '10101', '11001', '10001', '01110'],
  '1': ['00100', '01100', '00100', '00100', '00100', '00100', '01110'],
  '2': ['01110', '10001', '00001', '00010', '00100', '01000', '11111'],
  '3': ['11110', '00001', '00001', '01110', '00001', '00001', '11110'],
  '4': ['00010', '00110', '01010', '10010', '11111', '00010', '00010'],
  '5': ['11111', '10000', '11110', '00001', '00001', '10001', '01110'],
  '6': ['00110', '01000', '10000', '11110', '10001', '10001', '01110'],
  '7': ['11111', '00001', '00010', '00100', '01000', '01000', '01000'],
  '8': ['01110', '10001', '10001', '01110', '10001', '10001', '01110'],
  '9': ['01110', '10001', '10001', '01111', '00001', '00010', '01100'],
  '.': ['00000', '00000', '00000', '00000', '00000', '01100', '01100'],
  '-': ['00000', '00000', '00000', '11111', '00000', '00000', '00000'],
  '+': ['00000', '00100', '00100', '11111', '00100', '00100', '00000'],
  ' ': ['00000', '00000', '00000', '00000', '00000', '00000', '00000'],
  a: ['00000', '00000', '01110', '00001', '01111', '10001', '01111'],
  e: ['00000', '00000', '01110', '10001', '11111', '10000', '01110'],
  i: ['00100', '00000', '01100', '00100', '00100', '00100', '01110'],
  l: ['01100', '00100', '00100', '00100', '00100', '00100', '01110'],
  n: ['00000', '00000', '10110', '11001', '10001', '10001', '10001'],
  o: ['00000', '00000', '01110', '10001', '10001', '10001', '01110'],
  p: ['00000', '00000', '11110', '10001', '11110', '10000', '10000'],
  r: ['00000', '00000', '10110', '11001', '10000', '10000', '10000'],
  s: ['00000', '00000', '01111', '10000', '01110', '00001', '11110'],
  t: ['01000', '01000', '11100', '01000', '01000', '01001', '00110'],
  v: ['00000', '00000', '10001', '10001', '10001', '01010', '00100'],
};

/** Text in the 5×7 font at (x, y) top-left, `scale` pixels a dot; returns its width. Unknown characters are blank. */
export function drawText(r: Raster, text: string, x: number, y: number, c: Rgb = TEXT, scale = 1): number {
  let cx = x;
  for (const ch of text) {
    const g = GLYPHS[ch] ?? GLYPHS[' ']!;
    g.forEach((row, j) => {
      for (let i = 0; i < 5; i++) if (row[i] === '1') fillRect(r, cx + i * scale, y + j * scale, scale, scale, c);
    });
    cx += 6 * scale;
  }
  return cx - x;
}

export const textWidth = (text: string, scale = 1) => [...text].length * 6 * scale;

/** A label for an axis value: at most 4 significant digits. */
export function axisLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

export interface CurveOptions {
  width?: number;
  height?: number;
}

/** Where the plot area is, for a chart of `width` × `height` (the test reads pixels there). */
export function plotArea(width: number, height: number): { left: number; top: number; right: number; bottom: number } {
  return { left: 56, top: 28, right: width - 16, bottom: height - 30 };
}

/**
 * The loss curve: training loss (blue) over steps and validation loss (orange, with a dot at each
 * evaluation), y from the lowest to the highest loss, x from the first to the last step. Non-finite
 * losses and skipped steps are left out. Null when there is no finite loss to draw.
 */
export function lossCurveRaster(points: readonly MetricPoint[], o: CurveOptions = {}): Raster | null {
  const width = o.width ?? 640;
  const height = o.height ?? 320;
  const train = points.filter((p) => p.type === 'step' && !p.skipped && Number.isFinite(p.loss)).map((p) => [p.step, (p as { loss: number }).loss] as const).sort((a, b) => a[0] - b[0]);
  const val = points.filter((p) => p.type === 'eval' && Number.isFinite(p.valLoss)).map((p) => [p.step, (p as { valLoss: number }).valLoss] as const).sort((a, b) => a[0] - b[0]);
  const all = [...train, ...val];
  if (!all.length) return null;
  const x0 = Math.min(...all.map((p) => p[0]));
  let x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const r = blankRaster(width, height);
  const a = plotArea(width, height);
  const px = (x: number) => a.left + ((x - x0) / (x1 - x0)) * (a.right - a.left);
  const py = (y: number) => a.bottom - ((y - y0) / (y1 - y0)) * (a.bottom - a.top);
  for (let k = 1; k < 4; k++) {
    const gy = a.top + ((a.bottom - a.top) * k) / 4;
    drawLine(r, a.left, gy, a.right, gy, GRID);
  }
  drawLine(r, a.left, a.top, a.left, a.bottom, AXIS);
  drawLine(r, a.left, a.bottom, a.right, a.bottom, AXIS);
  // y labels (the highest and lowest loss), x labels (the first and last step), the axis name.
  const hi = axisLabel(y1);
  const lo = axisLabel(y0);
  drawText(r, hi, a.left - 6 - textWidth(hi), a.top - 3);
  drawText(r, lo, a.left - 6 - textWidth(lo), a.bottom - 4);
  drawText(r, axisLabel(x0), a.left, a.bottom + 8);
  const last = axisLabel(x1);
  drawText(r, last, a.right - textWidth(last), a.bottom + 8);
  drawText(r, 'step', (a.left + a.right) / 2 - textWidth('step') / 2, a.bottom + 8);
  // Legend, top right.
  let lx = a.right - textWidth('train loss') - 30 - (val.length ? textWidth('val loss') + 30 : 0);
  fillRect(r, lx, 10, 14, 4, TRAIN_COLOR);
  lx += 18 + drawText(r, 'train loss', lx + 18, 8);
  if (val.length) {
    lx += 12;
    fillRect(r, lx, 10, 14, 4, VAL_COLOR);
    drawText(r, 'val loss', lx + 18, 8);
  }
  drawText(r, 'loss', 6, 8);
  for (let i = 1; i < train.length; i++) drawLine(r, px(train[i - 1]![0]), py(train[i - 1]![1]), px(train[i]![0]), py(train[i]![1]), TRAIN_COLOR, 2);
  if (train.length === 1) fillRect(r, px(train[0]![0]) - 1, py(train[0]![1]) - 1, 3, 3, TRAIN_COLOR);
  for (let i = 1; i < val.length; i++) drawLine(r, px(val[i - 1]![0]), py(val[i - 1]![1]), px(val[i]![0]), py(val[i]![1]), VAL_COLOR, 2);
  for (const [s, v] of val) fillRect(r, px(s) - 2, py(v) - 2, 5, 5, VAL_COLOR);
  return r;
}

function u32(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const t = new TextEncoder().encode(type);
  const out = new Uint8Array(12 + body.length);
  out.set(u32(body.length), 0);
  out.set(t, 4);
  out.set(body, 8);
  out.set(u32(crc32(out.subarray(4, 8 + body.length)) >>> 0), 8 + body.length);
  return out;
}

export const PNG_SIGNATURE = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);

/** An 8-bit RGBA PNG of the raster (filter 0 on every row, one zlib stream). */
export function encodePng(r: Raster): Uint8Array {
  const ihdr = new Uint8Array(13);
  ihdr.set(u32(r.width), 0);
  ihdr.set(u32(r.height), 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const stride = r.width * 4;
  const raw = new Uint8Array((stride + 1) * r.height);
  for (let y = 0; y < r.height; y++) raw.set(r.data.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const parts = [PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlibSync(raw, { level: 9 })), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The loss curve as PNG bytes, or null when the points hold no finite loss. */
export function lossCurvePng(points: readonly MetricPoint[], o: CurveOptions = {}): Uint8Array | null {
  const r = lossCurveRaster(points, o);
  return r ? encodePng(r) : null;
}
