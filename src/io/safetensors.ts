// Safetensors reader and writer (https://huggingface.co/docs/safetensors).
// Layout: u64 little-endian header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the raw data buffer.
// Floats are decoded to Float32Array: tabtune computes in float32 whatever the stored dtype.

export type FloatDType = 'F32' | 'F16' | 'BF16';

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export interface TensorToWrite {
  name: string;
  dtype: FloatDType;
  shape: number[];
  data: Float32Array;
}

const BYTES: Record<FloatDType, number> = { F32: 4, F16: 2, BF16: 2 };
/** Dtypes that exist in the format but that tabtune cannot compute with (quantized or integer weights). */
export const KNOWN_UNSUPPORTED = ['F64', 'I8', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'BOOL', 'F8_E4M3', 'F8_E5M2'];

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export class SafetensorsFile {
  readonly header: Record<string, HeaderEntry>;
  readonly metadata: Record<string, string>;
  private readonly dataStart: number;

  constructor(private readonly bytes: Uint8Array, readonly fileName = 'model.safetensors') {
    if (bytes.byteLength < 8) throw new SafetensorsError(`${fileName}: file is ${bytes.byteLength} bytes, too short to be safetensors`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const lo = dv.getUint32(0, true);
    const hi = dv.getUint32(4, true);
    const n = hi * 2 ** 32 + lo;
    if (n <= 0 || 8 + n > bytes.byteLength) {
      throw new SafetensorsError(`${fileName}: header length ${n} does not fit in a ${bytes.byteLength}-byte file (not a safetensors file, or truncated download)`);
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
    } catch (e) {
      throw new SafetensorsError(`${fileName}: header is not valid JSON (${(e as Error).message})`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new SafetensorsError(`${fileName}: header is not a JSON object`);
    this.metadata = (parsed.__metadata__ as Record<string, string> | undefined) ?? {};
    delete parsed.__metadata__;
    this.header = parsed as Record<string, HeaderEntry>;
    this.dataStart = 8 + n;
    const dataLen = bytes.byteLength - this.dataStart;
    for (const [name, e] of Object.entries(this.header)) {
      if (!e || typeof e !== 'object') throw new SafetensorsError(`${fileName}: tensor "${name}" has no header entry`);
      const [b, end] = e.data_offsets ?? [];
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new SafetensorsError(`${fileName}: tensor "${name}" has an invalid shape ${JSON.stringify(e.shape)}`);
      }
      if (typeof b !== 'number' || typeof end !== 'number' || end < b || end > dataLen) {
        throw new SafetensorsError(`${fileName}: tensor "${name}" has bad offsets or shape (file truncated?)`);
      }
      const el = e.shape.reduce((a, c) => a * c, 1);
      const bpe = BYTES[e.dtype as FloatDType];
      if (bpe !== undefined && el * bpe !== end - b) {
        throw new SafetensorsError(`${fileName}: tensor "${name}" is ${end - b} bytes but ${e.dtype}${JSON.stringify(e.shape)} needs ${el * bpe}`);
      }
    }
  }

  names(): string[] {
    return Object.keys(this.header);
  }

  has(name: string): boolean {
    return name in this.header;
  }

  entry(name: string): HeaderEntry {
    const e = this.header[name];
    if (!e) throw new SafetensorsError(`${this.fileName}: no tensor named "${name}"`);
    return e;
  }

  /** Decodes a tensor to float32 (F32 is copied so the result owns aligned memory). */
  getFloat32(name: string): Float32Array {
    const e = this.entry(name);
    const [b, end] = e.data_offsets;
    const raw = this.bytes.subarray(this.dataStart + b, this.dataStart + end);
    return decodeFloats(raw, e.dtype, `${this.fileName}: tensor "${name}"`);
  }
}

export function decodeFloats(raw: Uint8Array, dtype: string, what: string): Float32Array {
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(raw.byteLength / 4);
      new Uint8Array(out.buffer).set(raw);
      return out;
    }
    case 'F16': {
      const n = raw.byteLength / 2;
      const out = new Float32Array(n);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const n = raw.byteLength / 2;
      const out = new Float32Array(n);
      const u32 = new Uint32Array(out.buffer);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    default:
      throw new SafetensorsError(
        `${what} is stored as ${dtype}; tabtune computes with F32, F16 or BF16 weights only` +
          (KNOWN_UNSUPPORTED.includes(dtype) ? ' (quantized or integer weights are not supported: use an unquantized checkpoint)' : ''),
      );
  }
}

/** IEEE half -> float. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float -> IEEE half, round to nearest even. */
export function f32ToF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half; // a carry into the exponent is the correct rounding (up to inf)
}

/** float -> bfloat16, round to nearest even. */
export function f32ToBF16(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const lsb = (x >>> 16) & 1;
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

function encodeFloats(t: TensorToWrite): Uint8Array {
  const n = t.data.length;
  if (t.dtype === 'F32') return new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + n * 4));
  const out = new Uint8Array(n * 2);
  const dv = new DataView(out.buffer);
  const conv = t.dtype === 'F16' ? f32ToF16 : f32ToBF16;
  for (let i = 0; i < n; i++) dv.setUint16(2 * i, conv(t.data[i]!), true);
  return out;
}

/** Serialises tensors in the given order. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const el = t.shape.reduce((a, c) => a * c, 1);
    if (el !== t.data.length) throw new SafetensorsError(`tensor "${t.name}": shape ${JSON.stringify(t.shape)} has ${el} elements but data has ${t.data.length}`);
    const blob = encodeFloats(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + blob.byteLength] };
    blobs.push(blob);
    off += blob.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  const enc = new TextEncoder();
  let hb = enc.encode(json);
  const pad = (8 - ((8 + hb.byteLength) % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    hb = enc.encode(json);
  }
  const out = new Uint8Array(8 + hb.byteLength + off);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, hb.byteLength, true);
  dv.setUint32(4, 0, true);
  out.set(hb, 8);
  let p = 8 + hb.byteLength;
  for (const b of blobs) {
    out.set(b, p);
    p += b.byteLength;
  }
  return out;
}

/** The JSON of a sharded checkpoint's `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  metadata?: { total_size?: number };
  weight_map: Record<string, string>;
}

/** Splits tensors into shards of at most maxShardBytes each and returns the files plus the index. */
export function writeShardedSafetensors(
  tensors: TensorToWrite[],
  maxShardBytes: number,
  prefix = 'model',
): { files: Map<string, Uint8Array>; index: SafetensorsIndex } {
  const groups: TensorToWrite[][] = [];
  let cur: TensorToWrite[] = [];
  let size = 0;
  let total = 0;
  for (const t of tensors) {
    const b = t.data.length * BYTES[t.dtype];
    total += b;
    if (cur.length && size + b > maxShardBytes) {
      groups.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += b;
  }
  if (cur.length) groups.push(cur);
  const files = new Map<string, Uint8Array>();
  const weight_map: Record<string, string> = {};
  const pad = (i: number) => String(i).padStart(5, '0');
  groups.forEach((g, i) => {
    const fname = `${prefix}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`;
    files.set(fname, writeSafetensors(g, { format: 'pt' }));
    for (const t of g) weight_map[t.name] = fname;
  });
  return { files, index: { metadata: { total_size: total }, weight_map } };
}
