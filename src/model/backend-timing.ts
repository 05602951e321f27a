// Which backend trains the loaded model faster, measured: one real training step of the model on each
// candidate backend (after an untimed warm-up step, which pays for kernel compilation), within a time
// budget per backend, and the faster one picked. Plain TypeScript: what a step is, and how a model gets
// onto a backend, are the caller's (the worker's `time-backends`, src/worker/backend-timing.ts); this
// module only times, bounds and decides, so it runs the same in Node (with the cpu and wasm backends as
// the candidates) and in a Web Worker. Every figure it returns was measured; it never estimates one.
import type { BackendName } from './backend';

/** A backend to time, or one shown without timing and why (e.g. a software WebGPU adapter). */
export interface TimingCandidate {
  backend: BackendName;
  /** Set: not timed, the row says this ("software adapter (SwiftShader)", "not available: …"). */
  skip?: string;
  /** This backend's own warm-up limit (e.g. longer for a software GPU, whose kernel compilation takes tens of seconds). */
  warmupLimitMs?: number;
}

/** The model on one backend, ready to train: `step` runs one optimizer step and says how many tokens it fed. */
export interface TimingSession {
  step(): Promise<number>;
  /** Frees everything the session made (the caller's numTensors is flat afterwards). */
  dispose(): void;
}

export type TimingStatus = 'measured' | 'stopped' | 'skipped' | 'failed';

export interface BackendTiming {
  backend: BackendName;
  status: TimingStatus;
  /** measured: tokens per second of the timed steps; null otherwise. */
  tokensPerS: number | null;
  /** stopped: the timed step had not finished within the budget, so the backend is slower than this many tokens/s. */
  slowerThan: number | null;
  /** The row in words ("54 tokens/s over 3 steps", "skipped: software adapter (SwiftShader)", …). */
  note: string;
  /** Timed steps that finished, the tokens they fed and their wall time (ms). */
  steps: number;
  tokens: number;
  ms: number;
  /** Time to put the model on this backend (ms; null when skipped or not needed). */
  loadMs: number | null;
  /** The untimed warm-up step (ms; null when it did not run or finish). */
  warmupMs: number | null;
}

export interface TimeBackendsOptions {
  /** Wall time the timed steps of one backend may take (default 1500 ms). A step still running then stops the backend. */
  budgetMs?: number;
  /** Wall time the warm-up step (kernel compilation) may take before the backend is given up (default 10 s). */
  warmupLimitMs?: number;
  /** Timed steps at most per backend (default 3); fewer when the budget runs out first. */
  maxSteps?: number;
  /** Clock (default performance.now). */
  now?(): number;
  /**
   * Runs one backend's whole measurement (open, steps, dispose) as one task, e.g. on the worker's model
   * queue so that other requests run between two backends, never during one. Default: runs it directly.
   */
  run?<T>(task: () => Promise<T>): Promise<T>;
  /** Called before each candidate (the row being measured) and after the last (measuring null). */
  onProgress?(p: { measuring: BackendName | null; done: number; total: number; rows: BackendTiming[] }): void;
  /** Checked before each candidate: a reason to stop measuring (e.g. a training run started), or null. */
  shouldStop?(): string | null;
}

/** What `open` throws when the measurement should not go on (a training run started, another model was loaded): the row says "not measured". */
export class TimingInterrupted extends Error {
  override name = 'TimingInterrupted';
}

export const DEFAULT_TIMING_BUDGET_MS = 1500;
export const DEFAULT_WARMUP_LIMIT_MS = 10_000;

const TIMED_OUT = Symbol('timed out');

/** p, or TIMED_OUT once `ms` passed (the step itself keeps running: await `p` before freeing what it uses). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** "1,234", "56.7", "0.42": tokens/s with about three significant digits. */
export function formatRate(x: number): string {
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  if (x >= 10) return x.toFixed(1);
  return x.toPrecision(2);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

function row(backend: BackendName, status: TimingStatus, note: string, o: Partial<BackendTiming> = {}): BackendTiming {
  return { backend, status, tokensPerS: null, slowerThan: null, note, steps: 0, tokens: 0, ms: 0, loadMs: null, warmupMs: null, ...o };
}

/** Times one backend: open the model there, one untimed step, then timed steps within the budget; always disposes. */
async function timeOne(backend: BackendName, open: (b: BackendName) => Promise<TimingSession>, o: Required<Pick<TimeBackendsOptions, 'budgetMs' | 'warmupLimitMs' | 'maxSteps' | 'now'>>): Promise<BackendTiming> {
  const t0 = o.now();
  let session: TimingSession;
  try {
    session = await open(backend);
  } catch (e) {
    if (e instanceof TimingInterrupted) return row(backend, 'skipped', `not measured: ${e.message}`);
    return row(backend, 'failed', `failed to load the model there: ${(e as Error).message}`);
  }
  const loadMs = o.now() - t0;
  // A step the budget gave up on is still running (WebGPU queues its work): wait for it before disposing.
  let pending: Promise<unknown> | null = null;
  try {
    const w0 = o.now();
    const warm = session.step();
    const warmTokens = await within(warm, o.warmupLimitMs);
    if (warmTokens === TIMED_OUT) {
      pending = warm;
      return row(backend, 'stopped', `stopped after ${seconds(o.now() - w0)}: its warm-up step (kernel compilation) had not finished`, { loadMs });
    }
    const warmupMs = o.now() - w0;
    let steps = 0;
    let tokens = 0;
    let ms = 0;
    while (steps < o.maxSteps && ms < o.budgetMs) {
      const s0 = o.now();
      const step = session.step();
      const fed = await within(step, o.budgetMs - ms);
      if (fed === TIMED_OUT) {
        pending = step;
        if (steps > 0) break; // the steps that finished are the measurement
        // Every step feeds the warm-up's fixed batch: this one had not fed its tokens when the budget ran out.
        const elapsed = o.now() - s0;
        const bound = warmTokens / (elapsed / 1000);
        return row(backend, 'stopped', `slower than ${formatRate(bound)} tokens/s, stopped after ${seconds(elapsed)}`, { slowerThan: bound, loadMs, warmupMs });
      }
      steps++;
      tokens += fed;
      ms += o.now() - s0;
    }
    const rate = tokens / (ms / 1000);
    return row(backend, 'measured', `${formatRate(rate)} tokens/s (${steps} step${steps === 1 ? '' : 's'} of ${tokens / steps} tokens)`, { tokensPerS: rate, steps, tokens, ms, loadMs, warmupMs });
  } catch (e) {
    return row(backend, 'failed', `the training step failed: ${(e as Error).message}`, { loadMs });
  } finally {
    if (pending) await pending.catch(() => undefined);
    session.dispose();
  }
}

/**
 * Times one training step on each candidate, one after the other (each as one `run` task): the model is
 * opened there (`open`), one warm-up step runs untimed, then up to `maxSteps` timed steps within `budgetMs`.
 * A skipped candidate gets its row without being opened; once `shouldStop` gives a reason, the remaining
 * ones get it as theirs. Returns one row per candidate, in their order.
 */
export async function timeBackends(candidates: readonly TimingCandidate[], open: (backend: BackendName) => Promise<TimingSession>, opts: TimeBackendsOptions = {}): Promise<BackendTiming[]> {
  const o = {
    budgetMs: opts.budgetMs ?? DEFAULT_TIMING_BUDGET_MS,
    warmupLimitMs: opts.warmupLimitMs ?? DEFAULT_WARMUP_LIMIT_MS,
    maxSteps: opts.maxSteps ?? 3,
    now: opts.now ?? (() => performance.now()),
  };
  if (!(o.budgetMs > 0) || !(o.warmupLimitMs > 0) || !Number.isInteger(o.maxSteps) || o.maxSteps < 1) {
    throw new RangeError(`timeBackends: budgetMs and warmupLimitMs must be positive and maxSteps a positive integer (got ${o.budgetMs}, ${o.warmupLimitMs}, ${o.maxSteps})`);
  }
  const run = opts.run ?? (<T>(task: () => Promise<T>) => task());
  const rows: BackendTiming[] = [];
  for (const c of candidates) {
    opts.onProgress?.({ measuring: c.skip ? null : c.backend, done: rows.length, total: candidates.length, rows: [...rows] });
    if (c.skip) {
      rows.push(row(c.backend, 'skipped', `skipped: ${c.skip}`));
      continue;
    }
    const stop = opts.shouldStop?.() ?? null;
    if (stop) {
      rows.push(row(c.backend, 'skipped', `not measured: ${stop}`));
      continue;
    }
    rows.push(await run(() => timeOne(c.backend, open, { ...o, warmupLimitMs: c.warmupLimitMs ?? o.warmupLimitMs })));
  }
  opts.onProgress?.({ measuring: null, done: rows.length, total: candidates.length, rows: [...rows] });
  return rows;
}

/** Whether some row was not measured because the measurement was interrupted (such figures are not worth keeping). */
export function interrupted(rows: readonly BackendTiming[]): boolean {
  return rows.some((r) => r.status === 'skipped' && r.note.startsWith('not measured: '));
}

/**
 * The faster backend by the measured rows: the highest tokens/s among 'measured' ones (the earlier row on a
 * tie); null when none was measured. A 'stopped' row never wins: it is slower than its bound.
 */
export function pickFaster(rows: readonly BackendTiming[]): BackendName | null {
  let best: BackendTiming | null = null;
  for (const r of rows) {
    if (r.status !== 'measured' || r.tokensPerS === null) continue;
    if (!best || r.tokensPerS > best.tokensPerS!) best = r;
  }
  return best?.backend ?? null;
}

const NAMES: Record<BackendName, string> = { webgpu: 'WebGPU', wasm: 'WASM', cpu: 'CPU' };

/** A backend's name as the page shows it. */
export function backendLabel(b: BackendName): string {
  return NAMES[b];
}

/**
 * Why `picked` and not the others, in one sentence per other timed backend, for "Why not a faster backend?":
 * "WebGPU: measured 12 tokens/s training this model, WASM 240; using WASM".
 */
export function timingReasons(rows: readonly BackendTiming[], picked: BackendName): string[] {
  const win = rows.find((r) => r.backend === picked && r.status === 'measured');
  if (!win || win.tokensPerS === null) return [];
  const out: string[] = [];
  for (const r of rows) {
    if (r.backend === picked) continue;
    const them = r.status === 'measured' && r.tokensPerS !== null ? `measured ${formatRate(r.tokensPerS)} tokens/s` : r.status === 'stopped' && r.slowerThan !== null ? `slower than ${formatRate(r.slowerThan)} tokens/s` : null;
    if (them) out.push(`${NAMES[r.backend]}: ${them} training this model, ${NAMES[picked]} ${formatRate(win.tokensPerS)}; using ${NAMES[picked]}`);
  }
  return out;
}

/** What identifies the model a timing was made on (the same weights loaded from another place are the same model). */
export interface TimingModel {
  name: string;
  arch: string;
  numParams: number;
  layers: number;
  hiddenSize: number;
  vocabSize: number;
}

/** What identifies the device: the WebGPU adapter's label ('' when none), the WASM threads asked for (null: the default) and the logical cores, the browser. */
export interface TimingDevice {
  adapter: string;
  wasmThreads: number | null;
  cores: number | null;
  userAgent: string;
}

/** The cache key of a timing: the model's fingerprint and the device's, as readable text. */
export function timingKey(model: TimingModel, device: TimingDevice): string {
  const m = `${model.name}|${model.arch}|${model.numParams}p|${model.layers}x${model.hiddenSize}|v${model.vocabSize}`;
  const d = `${device.adapter || 'no-adapter'}|wasm-threads=${device.wasmThreads ?? 'default'}|cores=${device.cores ?? '?'}|${device.userAgent}`;
  return `${m}||${d}`;
}
