// time-backends: which backend trains the loaded model faster on this device, measured (src/model/backend-timing.ts).
// Each candidate is timed as one task on the model queue (other requests run between two backends, never
// during one): for the backend in use, on the loaded model itself; for another one, TF.js is switched
// there, the model's weights (read back once) are built again there, timed, freed, and TF.js is switched
// back. The figures are stored per model and device (a later page load reads them instead of measuring),
// and with 'auto' the model moves to the faster backend. Refused while a run trains: it would share the device.
import * as tf from '@tensorflow/tfjs-core';
import { switchBackend, type BackendName, type BackendOptions, type BackendPreference, type BackendReport } from '../model/backend';
import { backendLabel, DEFAULT_TIMING_BUDGET_MS, interrupted, pickFaster, TimingInterrupted, timeBackends, timingKey, timingReasons, type BackendTiming, type TimingCandidate, type TimingSession } from '../model/backend-timing';
import { rebuildLanguageModel, type LanguageModel } from '../model/load';
import type { WeightMap } from '../model/types';
import type { BackendStatus, BackendTimingReport, TimeBackendsPayload } from '../protocol/messages';
import type { BackendTimingRecord } from '../storage/backend-timings';
import { DEFAULT_TIMING_BATCH, openTimingStep, timingBatch } from '../train/backend-step';
import type { Adapters } from './adapters';
import { requireModel, type WorkerContext } from './context';
import { fail } from './errors';

export interface BackendTimingDeps {
  worker: WorkerContext;
  adapters: Adapters;
  /** The run being trained, if any. */
  training(): { runId: string; name: string } | null;
  /** The backend in use (its report) and the preference it was started with; null before any. */
  backend(): { report: BackendReport; preference: BackendPreference; wasmThreads: number | null } | null;
  /** How WASM starts (its .wasm files, threads) when it is timed without being in use. */
  backendOptions(): BackendOptions;
  /** Moves the loaded model to `name` ('auto' picking the faster one) with these reasons, and says what is in use then. */
  moveTo(name: BackendName, weights: WeightMap, reasons: string[]): Promise<BackendStatus>;
  /** Backends timed besides WebGPU and WASM (Node tests add 'cpu'); default none. */
  extraCandidates?: BackendName[];
}

/** Reads the loaded model's weights back from its backend (asynchronously on WebGPU, where synchronous reads hurt). */
async function readWeights(model: LanguageModel): Promise<WeightMap> {
  if (tf.getBackend() === 'webgpu') await Promise.all(model.lm.weightTensors().map((t) => t.data()));
  return model.lm.exportWeights();
}

/**
 * The device as the cache key sees it: the WebGPU adapter offered, the WASM threads asked for (not the backend in
 * use: after auto moved the model it differs, and "measure again" must find the same key), the cores, the browser.
 */
function deviceOf(report: BackendReport, wasmThreads: number | null) {
  const nav = (globalThis as { navigator?: { userAgent?: string; hardwareConcurrency?: number } }).navigator;
  const proc = (globalThis as { process?: { version?: string } }).process;
  const userAgent = nav?.userAgent ?? `node ${proc?.version ?? ''}`;
  return { adapter: report.adapter?.label ?? '', wasmThreads, cores: nav?.hardwareConcurrency ?? null, userAgent };
}

/** How long a software WebGPU adapter (timed only when asked for) may take to compile the step's kernels. */
const SOFTWARE_WARMUP_LIMIT_MS = 60_000;

/** WebGPU's row: timed when it is in use or a hardware adapter was offered (a software one when allowed), else why not. */
function webgpuCandidate(report: BackendReport, allowSoftware: boolean): TimingCandidate {
  const a = report.adapter;
  // In use (picked explicitly): timed whatever it is.
  if (report.name === 'webgpu') return a?.software ? { backend: 'webgpu', warmupLimitMs: SOFTWARE_WARMUP_LIMIT_MS } : { backend: 'webgpu' };
  if (!a) {
    const why = report.reasons.find((r) => r.startsWith('WebGPU:'))?.replace(/^WebGPU:\s*/, '');
    return { backend: 'webgpu', skip: `not available${why ? ` (${why.split(/;\s|\s\(/)[0]!.replace(/\.$/, '')})` : ''}` };
  }
  if (a.software && !allowSoftware) return { backend: 'webgpu', skip: `software adapter${a.renderer || a.label ? ` (${a.renderer ?? a.label})` : ''}` };
  // Asked for explicitly: a software renderer compiles the step's kernels on the CPU, which takes tens of seconds.
  return a.software ? { backend: 'webgpu', warmupLimitMs: SOFTWARE_WARMUP_LIMIT_MS } : { backend: 'webgpu' };
}

function checkPayload(p: TimeBackendsPayload): void {
  const b = p.batch;
  if (b !== undefined && (!b || !Number.isInteger(b.windows) || b.windows < 1 || b.windows > 8 || !Number.isInteger(b.seq) || b.seq < 2 || b.seq > 1024)) {
    throw fail('BAD_REQUEST', `time-backends: batch must be 1-8 windows of 2-1024 tokens, got ${JSON.stringify(b)}.`);
  }
  if (p.budgetMs !== undefined && !(typeof p.budgetMs === 'number' && p.budgetMs >= 50 && p.budgetMs <= 60_000)) {
    throw fail('BAD_REQUEST', `time-backends: budgetMs must be between 50 and 60000, got ${JSON.stringify(p.budgetMs)}.`);
  }
}

export async function timeBackendsRequest(deps: BackendTimingDeps, p: TimeBackendsPayload, requestId: number): Promise<BackendTimingReport> {
  checkPayload(p);
  const tensorsBefore = tf.memory().numTensors;
  const busy = deps.training();
  if (busy) throw fail('BUSY', `Run "${busy.name}" is training: timing the backends now would slow it and measure nothing useful.`, 'Measure again once the run has finished.');
  const ctx = requireModel(deps.worker);
  const start = deps.backend();
  if (!start) throw fail('BACKEND_UNAVAILABLE', 'No backend is running.', 'Pick a backend first.');
  const model = ctx.model;
  const info = model.info;
  const key = timingKey({ name: model.name, arch: info.arch, numParams: info.numParams, layers: info.layers, hiddenSize: info.hiddenSize, vocabSize: info.vocabSize }, deviceOf(start.report, start.wasmThreads));

  let record: BackendTimingRecord | null = null;
  if (!p.force) {
    try {
      record = await (await deps.worker.store()).backendTimings.get(key);
    } catch {
      record = null; // no storage: measure
    }
  }
  const fromCache = record !== null;
  if (!record) {
    const batch = timingBatch(model, p.batch ?? DEFAULT_TIMING_BATCH);
    const budgetMs = p.budgetMs ?? DEFAULT_TIMING_BUDGET_MS;
    const candidates: TimingCandidate[] = [webgpuCandidate(start.report, p.allowSoftware === true), { backend: 'wasm' }, ...(deps.extraCandidates ?? []).map((backend) => ({ backend }))];
    let weights: WeightMap | null = null;
    const open = async (b: BackendName): Promise<TimingSession> => {
      const now = requireModel(deps.worker).model;
      if (now !== model) throw new TimingInterrupted('another model was loaded');
      if (deps.training()) throw new TimingInterrupted('a training run started');
      // A fresh LoRA adapter goes on the model's layers: the active one comes off first (Generate attaches its own again).
      deps.adapters.detach();
      if (b === tf.getBackend()) return openTimingStep(model, batch);
      weights ??= await readWeights(model);
      await switchBackend(b, deps.backendOptions());
      const there = rebuildLanguageModel(model, weights);
      return openTimingStep(there, batch, () => there.dispose());
    };
    const rows = await timeBackends(candidates, open, {
      budgetMs,
      // One backend's whole measurement at a time on the model queue, TF.js back on the backend in use after it.
      run: (task) =>
        deps.worker.serialModel(async () => {
          const back = tf.getBackend();
          try {
            return await task();
          } finally {
            if (tf.getBackend() !== back) await switchBackend(back as BackendName, deps.backendOptions());
          }
        }),
      shouldStop: () => (deps.training() ? 'a training run started' : requireModel(deps.worker).model !== model ? 'another model was loaded' : null),
      onProgress: (e) => deps.worker.post({ kind: 'backend-timing', id: requestId, payload: e }),
    });
    weights = null;
    record = { key, measuredAt: Date.now(), model: model.name, batch, budgetMs, rows, picked: eligiblePick(rows, start.report) };
    // Figures cut short by a training run or another model are shown, not stored: the next load measures again.
    if (requireModel(deps.worker).model === model && !interrupted(rows)) {
      try {
        await (await deps.worker.store()).backendTimings.put(record);
      } catch {
        // Not stored: the next page load measures again.
      }
    }
  }
  const { switchedTo, kept } = await follow(deps, record, model);
  return { ...record, fromCache, switchedTo, kept, tensors: { before: tensorsBefore, after: tf.memory().numTensors } };
}

/** The faster backend auto may use: never a software WebGPU adapter, even one measured faster. */
function eligiblePick(rows: BackendTiming[], report: BackendReport): BackendName | null {
  return pickFaster(rows.filter((r) => !(r.backend === 'webgpu' && report.adapter?.software)));
}

/** With 'auto', moves the model to the picked backend when it is not the one in use; says why not otherwise. */
async function follow(deps: BackendTimingDeps, record: BackendTimingRecord, model: LanguageModel): Promise<{ switchedTo: BackendStatus | null; kept: string | null }> {
  const now = deps.backend();
  const picked = record.picked;
  if (!now || !picked || picked === now.report.name) return { switchedTo: null, kept: null };
  const label = backendLabel(picked);
  if (now.preference !== 'auto') return { switchedTo: null, kept: `${backendLabel(now.report.name)} was picked explicitly (Auto would use ${label})` };
  if (deps.training()) return { switchedTo: null, kept: `a run is training (Auto will use ${label} next time)` };
  if (requireModel(deps.worker).model !== model) return { switchedTo: null, kept: 'another model was loaded' };
  const reasons = timingReasons(record.rows, picked);
  const status = await deps.worker.serialModel(async () => {
    const m = requireModel(deps.worker).model;
    if (m !== model) return null;
    return deps.moveTo(picked, await readWeights(m), reasons);
  });
  return status ? { switchedTo: status, kept: null } : { switchedTo: null, kept: 'another model was loaded' };
}
