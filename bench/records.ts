// One measurement of the benchmark and how it is printed: a JSON line (--json) and a readable table.
// Pure (no clock, no tensors): the Node runner, the browser page and the PyTorch peer's lines all end up
// as Measurements.

export const MEASUREMENT_NAMES = [
  'load',
  'memory',
  'tensors',
  'matmul_peak',
  'train_lora',
  'generate',
  'prefill',
  'torch_matmul_peak',
  'torch_train_lora',
  'torch_generate',
  'torch_prefill',
] as const;
export type MeasurementName = (typeof MEASUREMENT_NAMES)[number];

/** The fields every JSON line has (null where they do not apply), then the measurement's own. */
export interface Measurement {
  name: MeasurementName;
  model: string;
  /** wasm, webgpu, cpu (tabtune) or torch-cpu. */
  backend: string;
  threads: number;
  /** node, browser or torch. */
  host: string;
  batch: number | null;
  seq: number | null;
  tokens_per_s: number | null;
  gflops: number | null;
  mfu: number | null;
  targets: string[] | null;
  ms_per_step: number | null;
  [extra: string]: unknown;
}

export const REQUIRED_KEYS = ['name', 'model', 'backend', 'threads', 'host', 'batch', 'seq', 'tokens_per_s', 'gflops', 'mfu', 'targets', 'ms_per_step'] as const;

/** A measurement with the required fields defaulted to null. */
export function measurement(name: MeasurementName, ctx: { model: string; backend: string; threads: number; host: string }, fields: Record<string, unknown>): Measurement {
  return { name, model: ctx.model, backend: ctx.backend, threads: ctx.threads, host: ctx.host, batch: null, seq: null, tokens_per_s: null, gflops: null, mfu: null, targets: null, ms_per_step: null, ...fields };
}

/** Checks a line read from the PyTorch peer (or a page) and makes it a Measurement; throws naming what is wrong. */
export function parseMeasurement(line: string): Measurement {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    throw new Error(`not a JSON line: ${line.slice(0, 120)}`);
  }
  if (!o || typeof o !== 'object' || Array.isArray(o)) throw new Error(`not a JSON object: ${line.slice(0, 120)}`);
  const r = o as Record<string, unknown>;
  if (!MEASUREMENT_NAMES.includes(r.name as MeasurementName)) throw new Error(`unknown measurement name ${JSON.stringify(r.name)}`);
  const missing = REQUIRED_KEYS.filter((k) => !(k in r));
  if (missing.length) throw new Error(`measurement ${String(r.name)} lacks ${missing.join(', ')}`);
  return r as Measurement;
}

/** The --json line of a measurement: required keys first, numbers as they are (no rounding). */
export function jsonLine(m: Measurement): string {
  const ordered: Record<string, unknown> = {};
  for (const k of REQUIRED_KEYS) ordered[k] = m[k] ?? null;
  for (const [k, v] of Object.entries(m)) if (!(k in ordered)) ordered[k] = v;
  return JSON.stringify(ordered);
}

const TARGET_LABELS: Record<string, string> = { 'q_proj,v_proj': 'q,v', 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj': 'all linear' };

export function targetsLabel(t: string[] | null): string {
  if (!t) return '';
  return TARGET_LABELS[t.join(',')] ?? t.map((x) => x.replace(/_proj$/, '')).join(',');
}

/** The key two measurements of the same thing share across engines (train_lora vs torch_train_lora). */
export function pairKey(m: Measurement): string {
  const base = m.name.replace(/^torch_/, '');
  return [m.model, base, m.batch ?? '', m.seq ?? '', targetsLabel(m.targets), m.recompute ? 'recompute' : ''].join('|');
}

export interface Ratio {
  model: string;
  what: string;
  tabtune: number;
  torch: number;
  /** tabtune tokens/s / PyTorch tokens/s. */
  raw: number;
  /** raw divided by (tabtune matmul peak / PyTorch matmul peak): the ratio at equal hardware peaks. */
  normalised: number | null;
  /** The ratio of tokens per CPU-second (one thread each): robust to other processes' load. */
  cpu: number | null;
}

/** tabtune/PyTorch tokens/s for every measurement that has a PyTorch twin, raw and normalised by the two peaks. */
export function ratios(all: Measurement[], host = 'node'): Ratio[] {
  const mine = all.filter((m) => m.host === host && m.tokens_per_s !== null);
  const torch = new Map(all.filter((m) => m.host === 'torch' && m.tokens_per_s !== null).map((m) => [pairKey(m), m]));
  const peak = (name: string, model: string, h: string) => all.find((m) => m.name === name && m.model === model && m.host === h)?.gflops ?? null;
  const out: Ratio[] = [];
  for (const m of mine) {
    const t = torch.get(pairKey(m));
    if (!t || !t.tokens_per_s || !m.tokens_per_s) continue;
    const p1 = peak('matmul_peak', m.model, host);
    const p2 = peak('torch_matmul_peak', m.model, 'torch');
    const raw = m.tokens_per_s / t.tokens_per_s;
    const c1 = typeof m.tokens_per_s_cpu === 'number' ? m.tokens_per_s_cpu : null;
    const c2 = typeof t.tokens_per_s_cpu === 'number' ? t.tokens_per_s_cpu : null;
    out.push({ model: m.model, what: describe(m), tabtune: m.tokens_per_s, torch: t.tokens_per_s, raw, normalised: p1 && p2 ? raw / (p1 / p2) : null, cpu: c1 && c2 ? c1 / c2 : null });
  }
  return out;
}

/** Browser WASM tokens/s over Node WASM tokens/s for the same measurement (the target: within 10%). */
export function browserRatios(all: Measurement[]): { model: string; what: string; browser: number; node: number; ratio: number; threads: string }[] {
  const node = new Map(all.filter((m) => m.host === 'node' && m.tokens_per_s).map((m) => [pairKey(m), m]));
  return all
    .filter((m) => m.host === 'browser' && m.backend === 'wasm' && m.tokens_per_s)
    .flatMap((m) => {
      const n = node.get(pairKey(m));
      return n ? [{ model: m.model, what: describe(m), browser: m.tokens_per_s!, node: n.tokens_per_s!, ratio: m.tokens_per_s! / n.tokens_per_s!, threads: `${m.threads} vs ${n.threads}` }] : [];
    });
}

export function describe(m: Measurement): string {
  const base = m.name.replace(/^torch_/, '');
  if (base === 'train_lora') return `train ${m.batch}x${m.seq} ${targetsLabel(m.targets)}${m.recompute ? ' recompute' : ''}`;
  if (base === 'generate') return `generate ${String(m.new_tokens ?? '')} tok`;
  if (base === 'prefill') return `prefill ${m.seq} tok`;
  return base;
}

const f = (v: unknown, digits = 0): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-');
const mb = (v: unknown): string => (typeof v === 'number' ? `${(v / 2 ** 20).toFixed(1)} MB` : '-');

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

/** The readable table: per model, one row per throughput measurement, then load/memory/tensors, then the ratios. */
export function formatTable(all: Measurement[]): string {
  const out: string[] = [];
  const models = [...new Set(all.map((m) => m.model))];
  for (const model of models) {
    const ms = all.filter((m) => m.model === model);
    out.push(`\n== ${model} ==`);
    // ms: per step for training, per call for prefill (one forward) and generate (the whole decode).
    // tok/s CPU: tokens per second of the process's CPU time (one thread), what other processes' load does not move.
    const rows: string[][] = [['measurement', 'engine', 'threads', 'tokens/s', 'tok/s CPU', 'ms', 'GFLOP/s', 'MFU']];
    for (const m of ms.filter((x) => ['train_lora', 'generate', 'prefill', 'matmul_peak'].includes(x.name.replace(/^torch_/, '')))) {
      const engine = m.host === 'torch' ? 'pytorch' : `${m.host} ${m.backend}`;
      rows.push([describe(m), engine, String(m.threads), f(m.tokens_per_s), f(m.tokens_per_s_cpu), f(m.ms_per_step ?? m.ms, 1), f(m.gflops, 1), m.mfu === null ? '-' : `${(m.mfu * 100).toFixed(1)}%`]);
    }
    out.push(pad(rows));
    for (const m of ms) {
      if (m.skipped) out.push(`${describe(m)} [${m.host} ${m.backend}] skipped: ${String(m.skipped)}`);
      else if (m.memory_plan) out.push(`${describe(m)} [${m.host} ${m.backend}]: ${String(m.memory_plan)}`);
      const who = m.host === 'node' ? '' : ` [${m.host} ${m.backend}]`;
      if (m.name === 'load') out.push(`load${who}: ${f(m.load_ms)} ms, ${String(m.params)} parameters (${String(m.note ?? '')})`);
      if (m.name === 'memory') out.push(`peak memory${who}: WASM heap ${mb(m.wasm_heap_bytes)} (${mb(m.wasm_heap_after_load)} after loading), JS heap ${mb(m.js_heap_bytes)}, TF.js tensors ${mb(m.tf_bytes_peak)}`);
      if (m.name === 'tensors') {
        const flag = m.leak ? '  <<< LEAK: numTensors grew during training steps >>>' : ' (equal)';
        out.push(`numTensors${who} before/after ${String(m.steps)} steps (${String(m.what)}): ${String(m.tensors_before)} / ${String(m.tensors_after)}${flag}`);
      }
      if (m.name === 'torch_matmul_peak' && m.blas) out.push(`pytorch BLAS: ${String(m.blas)}`);
    }
  }
  const rs = ratios(all);
  if (rs.length) {
    out.push('\n== tabtune (Node) / PyTorch, tokens/s ==');
    const rows = [['model', 'measurement', 'tabtune', 'pytorch', 'raw', 'at equal peaks', 'CPU time']];
    const x = (v: number | null): string => (v === null ? '-' : `${v.toFixed(2)}x`);
    for (const r of rs) rows.push([r.model, r.what, f(r.tabtune), f(r.torch), x(r.raw), x(r.normalised), x(r.cpu)]);
    out.push(pad(rows));
  }
  const br = browserRatios(all);
  if (br.length) {
    out.push('\n== browser WASM / Node WASM, tokens/s ==');
    const rows = [['model', 'measurement', 'threads', 'browser', 'node', 'ratio']];
    for (const r of br) rows.push([r.model, r.what, r.threads, f(r.browser), f(r.node), `${r.ratio.toFixed(2)}x`]);
    out.push(pad(rows));
  }
  return out.join('\n');
}
