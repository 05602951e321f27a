// Training in the worker: LoRA runs on an inspected dataset, checkpoints and metrics in the store
// (IndexedDB), pause / resume / cancel, resuming a stored run after a reload (or from an older
// checkpoint as a branch), the active adapter used by generation, base-vs-tuned comparison and exports.
//
// The run loop mirrors Trainer.run, with each step (and its evaluation and checkpoint) as one task on
// the handler's model queue: between two steps the worker answers anything (get-backend, list-runs,
// pause…), and a request that needs the model (generate, compare, export, inspect-data) runs between
// two steps. Nothing it does changes what the next step computes (dropout seeds come from the step), so
// a run interleaved with generations still repeats exactly. On WebGPU the steps read the backend
// asynchronously (Trainer.trainStepAsync): its synchronous reads destroy the device after a few steps.
import * as tf from '@tensorflow/tfjs-core';
import { PLAIN_FORMAT } from '../data/encode';
import { exportMergedModel, readBaseFiles, TABTUNE_JSON, tabtuneJson } from '../io/export';
import { exportPeftAdapter } from '../io/peft';
import { readDeltas } from '../lora/merge';
import { recipeFiles } from '../io/recipes';
import type { ModelSource } from '../io/source';
import { zipFiles } from '../io/zip';
import { LoraAdapter } from '../lora/adapter';
import type { LanguageModel } from '../model/load';
import { storageEstimate, type CheckpointInfo, type RunRecord, type TabtuneStore } from '../storage/index';
import { compareBaseTuned, createTrainer, recipeJob } from '../train/job';
import { resolveTrainConfig, type TrainCapabilities, type TrainConfig, type TrainConfigOverrides } from '../train/config';
import { evalPoint, metricsCsv, stepPoint, type MetricPoint } from '../train/metrics';
import { runTraining, type LoopOutcome } from '../train/run-loop';
import type { EvalMetrics, StepMetrics, Trainer, TrainerCheckpoint } from '../train/loop';
import type {
  AdapterInfo,
  AdapterUse,
  ComparePayload,
  CompareResult,
  ErrorDetails,
  EventMessage,
  ExportPayload,
  ExportResult,
  GenerateParams,
  InspectDataPayload,
  InspectDataResult,
  ModelLocation,
  PauseResult,
  ResumeRunPayload,
  RunJob,
  RunSummary,
  StorageReport,
  TrainOutcome,
  TrainPayload,
} from '../protocol/messages';
import type { DatasetRegistry, PreparedData } from './datasets';
import { fail, RequestFailure, toProtocolError } from './errors';
import { parseJob } from './jobs';

/** The loaded base model and where it came from. */
export interface ModelContext {
  model: LanguageModel;
  source: ModelSource;
  location: ModelLocation;
}

export interface TrainingDeps {
  post(m: EventMessage): void;
  store(): Promise<TabtuneStore>;
  model(): ModelContext | null;
  /** Runs a task on the handler's model queue (one at a time, in order; training steps are such tasks). */
  serialModel<T>(task: () => Promise<T>): Promise<T>;
  datasets: DatasetRegistry;
  /** A 'running' run whose heartbeat is older than this is taken as interrupted (where Web Locks are missing). */
  staleAfterMs: number;
  /** How often a training run records a heartbeat. */
  heartbeatMs: number;
}


interface ActiveAdapter {
  runId: string;
  runName: string;
  step: number;
  adapter: LoraAdapter;
  job: RunJob;
  /** Owned by the training in progress (never disposed from outside it). */
  training: boolean;
}

interface Session {
  runId: string;
  name: string;
  requestId: number;
  trainer: Trainer;
  job: RunJob;
  controller: AbortController;
  paused: boolean;
  untilStep: number | null;
  /** Work that needs the loop to stay between steps (a pause's checkpoint). */
  holds: number;
  /** Releases the run's Web Lock. */
  releaseLock: () => void;
  lastSavedStep: number;
  latest: CheckpointInfo | null;
  pending: MetricPoint[];
  lastLoss: number | null;
  lastVal: number | null;
  tokens: number;
  lastBeat: number;
  /** Checkpoint saves in order (loop and pause share it). */
  saveChain: Promise<unknown>;
  idleWaiters: (() => void)[];
  /** Settles when the run loop has ended and the session is gone. */
  done: Promise<void>;
  finish: () => void;
}

const LOCK_PREFIX = 'tabtune-run:';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** WebGPU reads asynchronously (see Trainer.trainStepAsync); elsewhere the synchronous methods run. */
function asyncReads(): boolean {
  return tf.getBackend() === 'webgpu';
}

interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, cb: () => Promise<void>): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>;
}

function webLocks(): LocksLike | null {
  const locks = (globalThis as { navigator?: { locks?: LocksLike } }).navigator?.locks;
  return locks && typeof locks.request === 'function' && typeof locks.query === 'function' ? locks : null;
}

/**
 * Takes the Web Lock named after the run for as long as this worker trains it: one tab trains a run at a
 * time, and a closed or reloaded tab releases it (a reloading tab's worker may hold it for a moment
 * longer, hence the wait). Resolves with the release function; BUSY when another tab keeps it.
 */
function acquireRunLock(runId: string, waitMs = 5_000): Promise<() => void> {
  const locks = webLocks();
  if (!locks) return Promise.resolve(() => undefined);
  return new Promise((resolve, reject) => {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), waitMs);
    locks
      .request(LOCK_PREFIX + runId, { signal: timeout.signal }, () => {
        clearTimeout(timer);
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        resolve(release);
        return held;
      })
      .catch(() => {
        clearTimeout(timer);
        reject(fail('BUSY', 'This run is being trained in another tab.', 'Close that tab (or stop the run there), then resume it here.', { runId }));
      });
  });
}

/** Names of the run locks held in any tab of this origin, or null where Web Locks are missing (Node). */
async function heldRunLocks(): Promise<Set<string> | null> {
  const locks = webLocks();
  if (!locks) return null;
  try {
    const q = await locks.query();
    return new Set([...(q.held ?? []), ...(q.pending ?? [])].map((l) => l.name ?? '').filter((n) => n.startsWith(LOCK_PREFIX)));
  } catch {
    return null;
  }
}

export { parseJob };

/** What the worker trains: LoRA only (full-parameter training needs the CLI). */
export const WORKER_TRAINING: TrainCapabilities = {
  modes: ['lora'],
  unavailable: { full: 'Full-parameter training is not available in the browser: train a LoRA adapter here, or use the command line (npm run cli -- train --full).' },
};

/** The model's default config with the request's overrides, checked (src/train/config.ts). */
export function buildTrainConfig(arch: 'llama' | 'gpt2', over: TrainConfigOverrides = {}): TrainConfig {
  const r = resolveTrainConfig(arch, over, WORKER_TRAINING);
  if (!r.ok) throw fail('BAD_REQUEST', `Invalid training settings: ${r.problems.join(' ')}`, 'Change the settings in the Train panel and start again.');
  return r.config;
}

function checkUntilStep(untilStep: number | undefined): void {
  if (untilStep !== undefined && !(Number.isInteger(untilStep) && untilStep > 0)) throw fail('BAD_REQUEST', `untilStep must be a positive integer, got ${untilStep}.`);
}

function baseModelName(ctx: ModelContext): string {
  if (ctx.location.kind === 'hub') return ctx.location.id;
  return ctx.model.name;
}

/** A file-name stem from a run name (runs are named after their dataset file: its extension goes). */
function slug(s: string): string {
  return s.replace(/\.(jsonl|ndjson|json|csv|tsv|txt)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'run';
}

function takeUpTo(points: MetricPoint[], step: number): MetricPoint[] {
  let n = 0;
  while (n < points.length && points[n]!.step <= step) n++;
  return points.splice(0, n);
}

/** Adapter weights (math layout) from a checkpoint's `<module>.lora_A` / `.lora_B` tensors. */
function adapterWeights(tensors: Record<string, { data: Float32Array }>): Map<string, { A: Float32Array; B: Float32Array }> {
  const out = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const [name, t] of Object.entries(tensors)) {
    const m = /^(.*)\.lora_A$/.exec(name);
    if (!m) continue;
    const b = tensors[`${m[1]}.lora_B`];
    if (b) out.set(m[1]!, { A: t.data, B: b.data });
  }
  return out;
}

export { metricsCsv };

export class TrainingService {
  private session: Session | null = null;
  /** A train / resume-run is being set up (one run at a time). */
  private starting = false;
  /** Requests cancelled while they were being set up. */
  private readonly cancelledEarly = new Set<number>();
  private active: ActiveAdapter | null = null;
  /** Runs this worker trained and stopped: never alive, whatever their stored status says (a status write may have failed). */
  private readonly ended = new Set<string>();

  constructor(private readonly deps: TrainingDeps) {}

  get training(): boolean {
    return this.session !== null;
  }

  // -------------------------------------------------------------------------------------------------
  // Datasets

  inspect(p: InspectDataPayload, id: number, signal: AbortSignal): Promise<InspectDataResult> {
    return this.deps.serialModel(() =>
      this.deps.datasets.inspect(p, {
        model: this.deps.model()?.model ?? null,
        withBase: (fn) => this.withBase(fn),
        onProgress: (pr) => this.deps.post({ kind: 'data-progress', id, payload: pr }),
        signal,
      }),
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Training

  async train(p: TrainPayload, id: number): Promise<TrainOutcome> {
    const t0 = performance.now();
    this.reserve();
    let session: Session;
    try {
      session = await this.deps.serialModel(async () => {
        const ctx = this.requireModel();
        if (!p || typeof p !== 'object') throw fail('BAD_REQUEST', 'train needs a payload.');
        const config = buildTrainConfig(ctx.model.lm.config.arch, p.config ?? {});
        checkUntilStep(p.untilStep);
        const data = await this.prepare(p.datasetId, ctx, id);
        const job = this.makeJob(ctx, config, data);
        const store = await this.deps.store();
        this.detachActive();
        const trainer = createTrainer(ctx.model, data.train, data.val, config);
        let run: RunRecord;
        try {
          const name = p.name?.trim() || `${data.name} ${new Date().toISOString().slice(0, 16).replace('T', ' ')}`;
          run = await store.runs.create({ name, config: job, dataset: { fingerprint: data.fingerprint, name: data.name, datasetId: data.datasetId }, status: 'running' });
        } catch (e) {
          trainer.dispose();
          trainer.adapter?.dispose();
          throw e;
        }
        return this.begin(run, job, trainer, id, p.untilStep, null, await acquireRunLock(run.id));
      });
    } finally {
      this.starting = false;
      this.cancelledEarly.delete(id);
    }
    return this.runLoop(session, id, t0, null);
  }

  async resumeRun(p: ResumeRunPayload, id: number): Promise<TrainOutcome> {
    const t0 = performance.now();
    this.reserve();
    let session: Session;
    let resumedFrom: { runId: string; step: number } | null = null;
    let releaseLock: (() => void) | null = null;
    try {
      if (!p || typeof p.runId !== 'string') throw fail('BAD_REQUEST', 'resume-run needs a runId.');
      checkUntilStep(p.untilStep);
      // Another tab may be training it (or a reloading tab's worker may still hold it for a moment).
      const lock = await acquireRunLock(p.runId);
      releaseLock = lock;
      session = await this.deps.serialModel(async () => {
        const ctx = this.requireModel();
        const store = await this.deps.store();
        const run = await store.runs.get(p.runId);
        if (!run) throw fail('NOT_FOUND', `There is no run ${p.runId}.`, 'Pick a run from the list of runs.');
        const job = parseJob(run.config);
        if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser and cannot be resumed here.`, 'Resume it with the command line (npm run cli -- train --resume).');
        this.checkModel(job, ctx, run);

        // Where to continue from; an older checkpoint than the newest makes a branch.
        let branchAt: number | null = null;
        let from: { runId: string; step: number } | null;
        if (p.step !== undefined) {
          const list = await store.checkpoints.list(run.id);
          if (!list.some((c) => c.step === p.step)) {
            throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${p.step}.`, `Its checkpoints: ${list.map((c) => c.step).join(', ') || 'none'}.`);
          }
          from = { runId: run.id, step: p.step };
          if (p.step < list[list.length - 1]!.step) branchAt = p.step;
        } else {
          const info = await store.checkpoints.resolveResume(run.id);
          from = info ? { runId: info.runId, step: info.step } : null;
        }

        const data = await this.prepare(p.datasetId ?? job.data.datasetId, ctx, id, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
        this.checkData(job, run, data);
        this.detachActive();
        const trainer = createTrainer(ctx.model, data.train, data.val, job.train);
        try {
          if (from) {
            const ck =
              p.step === undefined && from.runId === run.id
                ? ((await store.checkpoints.loadLatest(run.id))?.checkpoint ?? null)
                : await store.checkpoints.load(from.runId, from.step);
            if (!ck) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint to resume from.`);
            trainer.restore(ck as unknown as TrainerCheckpoint);
            from = { runId: from.runId, step: ck.step };
          }
          let target = run;
          if (branchAt !== null) {
            target = await store.checkpoints.branch(run.id, branchAt, { name: p.name?.trim() || undefined, status: 'running' });
            const parentPoints = (await store.runs.readMetrics(run.id)).filter((m) => typeof (m as { step?: unknown })?.step === 'number' && (m as { step: number }).step <= branchAt!);
            if (parentPoints.length) await store.runs.appendMetrics(target.id, parentPoints);
          } else {
            if (p.datasetId && p.datasetId !== job.data.datasetId) {
              const moved: RunJob = { ...job, data: { ...job.data, datasetId: p.datasetId } };
              target = await store.runs.update(run.id, { config: moved, dataset: { fingerprint: data.fingerprint, name: data.name, datasetId: p.datasetId } });
            }
            target = await store.runs.setStatus(target.id, 'running');
          }
          resumedFrom = from;
          if (target.id !== run.id) {
            // A branch is a run of its own: it gets its own lock.
            const branchLock = await acquireRunLock(target.id);
            lock();
            releaseLock = branchLock;
          }
          return this.begin(target, parseJob(target.config) ?? job, trainer, id, p.untilStep, from, releaseLock!);
        } catch (e) {
          trainer.dispose();
          trainer.adapter?.dispose();
          throw e;
        }
      });
    } catch (e) {
      releaseLock?.();
      throw e;
    } finally {
      this.starting = false;
      this.cancelledEarly.delete(id);
    }
    return this.runLoop(session, id, t0, resumedFrom);
  }

  /** Pauses between two steps and saves a checkpoint there (unless the newest one is already there). */
  async pause(): Promise<PauseResult> {
    const s = this.session;
    if (!s) return { paused: false, runId: null, step: null, checkpoint: null };
    s.paused = true;
    await this.untilIdle(s);
    if (this.session === s && s.paused && s.lastSavedStep < s.trainer.step) {
      // The loop is waiting between steps: read the weights directly (a model change queued behind this
      // would otherwise wait for the run to stop, and the run for this), and keep it waiting meanwhile.
      s.holds++;
      try {
        await this.save(s, await this.takeCheckpoint(s.trainer));
      } catch {
        // The pause itself worked; the next checkpoint will be saved as usual.
      } finally {
        s.holds--;
      }
    }
    if (this.session === s && s.paused) await this.bestEffort(async () => (await this.deps.store()).runs.setStatus(s.runId, 'paused'));
    return { paused: this.session === s && s.paused, runId: s.runId, step: s.trainer.step, checkpoint: s.latest };
  }

  async resumeTrain(): Promise<{ resumed: boolean; runId: string | null; step: number | null }> {
    const s = this.session;
    if (!s) return { resumed: false, runId: null, step: null };
    const was = s.paused;
    s.paused = false;
    if (was) await this.bestEffort(async () => (await this.deps.store()).runs.setStatus(s.runId, 'running'));
    return { resumed: was, runId: s.runId, step: s.trainer.step };
  }

  /** Cancels the training started by request `target`. */
  cancel(target: number): boolean {
    const s = this.session;
    if (!s && this.starting) {
      // Still setting up (reading the dataset, loading the checkpoint): stop before the first step.
      this.cancelledEarly.add(target);
      return true;
    }
    if (!s || s.requestId !== target) return false;
    s.controller.abort();
    return true;
  }

  /** Stops any training and waits for it to end (the model is about to go). */
  async stop(): Promise<void> {
    const s = this.session;
    if (s) {
      s.controller.abort();
      await s.done;
    }
  }

  /** Drops the active adapter (the model is about to be disposed or replaced). */
  detachActive(): void {
    if (this.active && !this.active.training) this.active.adapter.dispose();
    this.active = null;
  }

  dispose(): void {
    this.session?.controller.abort();
  }

  // -------------------------------------------------------------------------------------------------
  // Runs and storage

  async listRuns(): Promise<{ runs: RunSummary[] }> {
    const store = await this.deps.store();
    const runs = await store.runs.list();
    const locks = await heldRunLocks();
    const now = Date.now();
    const out: RunSummary[] = [];
    for (let run of runs) {
      const active = this.session?.runId === run.id;
      if (run.status === 'running' && !active) {
        const alive = !this.ended.has(run.id) && (locks ? locks.has(LOCK_PREFIX + run.id) : now - (run.heartbeatAt ?? run.updatedAt) <= this.deps.staleAfterMs);
        if (!alive) {
          // Its tab was closed or reloaded mid-run: resumable from its newest checkpoint.
          run = { ...run, status: 'interrupted' };
          await this.bestEffort(() => store.runs.setStatus(run.id, 'interrupted'));
        }
      }
      const checkpoints = await store.checkpoints.list(run.id, { gc: false });
      out.push({ ...run, active, latestCheckpoint: checkpoints[checkpoints.length - 1] ?? null, checkpointCount: checkpoints.length, job: parseJob(run.config) });
    }
    return { runs: out };
  }

  async listCheckpoints(runId: string): Promise<{ checkpoints: CheckpointInfo[] }> {
    const store = await this.deps.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    return { checkpoints: await store.checkpoints.list(runId) };
  }

  async deleteRun(runId: string): Promise<{ deleted: boolean }> {
    if (this.session?.runId === runId) throw fail('BUSY', 'This run is training.', 'Cancel it first, then delete it.');
    const store = await this.deps.store();
    const existed = !!(await store.runs.get(runId));
    if (this.active?.runId === runId) await this.deps.serialModel(async () => this.detachActive());
    await store.deleteRun(runId);
    return { deleted: existed };
  }

  async deleteCheckpoint(runId: string, step: number): Promise<{ deleted: boolean }> {
    return { deleted: await (await this.deps.store()).checkpoints.delete(runId, step) };
  }

  async renameRun(runId: string, name: string): Promise<{ run: RunRecord }> {
    const trimmed = typeof name === 'string' ? name.trim() : '';
    if (!trimmed) throw fail('BAD_REQUEST', 'A run name cannot be empty.', 'Type a name.');
    const store = await this.deps.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    const run = await store.runs.rename(runId, trimmed.slice(0, 200));
    if (this.session?.runId === runId) this.session.name = run.name;
    return { run };
  }

  async pinCheckpoint(runId: string, step: number, pinned: boolean): Promise<{ checkpoint: CheckpointInfo }> {
    const store = await this.deps.store();
    const checkpoint = pinned ? await store.checkpoints.pin(runId, step) : await store.checkpoints.unpin(runId, step);
    return { checkpoint };
  }

  async runMetrics(runId: string): Promise<{ points: MetricPoint[] }> {
    const store = await this.deps.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    return { points: (await store.runs.readMetrics(runId)) as unknown as MetricPoint[] };
  }

  async storageReport(): Promise<{ report: StorageReport; estimate: { usage: number; quota: number } | null }> {
    return { report: await (await this.deps.store()).storageReport(), estimate: await storageEstimate() };
  }

  // -------------------------------------------------------------------------------------------------
  // The active adapter: generation, comparison, export

  loadAdapter(p: { runId: string | null; step?: number }): Promise<{ adapter: AdapterInfo | null }> {
    return this.deps.serialModel(async () => {
      if (p.runId === null) {
        if (this.session) throw fail('BUSY', 'A run is training with its adapter attached.', 'Cancel it or wait for it to finish.');
        this.detachActive();
        return { adapter: null };
      }
      return { adapter: this.info(await this.ensureAdapter(p.runId, p.step)) };
    });
  }

  /**
   * Sets the active adapter up for one generation (call inside the model queue) and says how to undo it.
   * Tuned generations also stop at the run's stop token.
   */
  forGeneration(p: GenerateParams): { use: AdapterUse | null; stopTokenIds: number[]; stopStrings: string[] | undefined; restore(): void } {
    const a = this.active;
    if (p.adapterStrength !== undefined && !(p.adapterStrength >= 0 && p.adapterStrength <= 1)) {
      throw fail('BAD_REQUEST', `adapterStrength must be between 0 and 1, got ${p.adapterStrength}.`);
    }
    if (p.useAdapter === true && !a) throw fail('NO_ADAPTER', 'There is no trained adapter to generate with.', 'Train a run, or pick one of the stored runs (load-adapter).');
    if (!a) return { use: null, stopTokenIds: [], stopStrings: p.stopStrings, restore: () => undefined };
    const ad = a.adapter;
    const was = { enabled: ad.enabled, strength: ad.strength };
    const restore = () => {
      ad.enabled = was.enabled;
      ad.strength = was.strength;
    };
    if (p.useAdapter === false) {
      ad.enabled = false;
      return { use: null, stopTokenIds: [], stopStrings: p.stopStrings, restore };
    }
    const strength = p.adapterStrength ?? 1;
    ad.enabled = true;
    ad.strength = strength;
    const stop = a.job.data.options.stop;
    const stopStrings = [...new Set([...(p.stopStrings ?? []), ...stop.stopStrings])];
    return { use: { runId: a.runId, step: a.step, strength }, stopTokenIds: stop.stopTokenId !== null ? [stop.stopTokenId] : [], stopStrings: stopStrings.length ? stopStrings : undefined, restore };
  }

  /** `signal` (the worker's `cancel` for this request) stops it between two batches of examples: error CANCELLED. */
  compare(p: ComparePayload, id: number, signal?: AbortSignal): Promise<CompareResult> {
    const stopIfCancelled = () => {
      if (signal?.aborted) throw fail('CANCELLED', 'The held-out comparison was cancelled.');
    };
    return this.deps.serialModel(async () => {
      stopIfCancelled();
      const t0 = performance.now();
      const ctx = this.requireModel();
      const a = await this.ensureAdapter(p?.runId, p?.step);
      const data = await this.prepare(a.job.data.datasetId, ctx, id, { frozen: a.job.data.options, valDatasetId: a.job.data.valDatasetId });
      stopIfCancelled();
      let records = data.result.val;
      if (p?.maxExamples !== undefined) records = records.slice(0, Math.max(0, Math.floor(p.maxExamples)));
      if (!records.length) throw fail('BAD_DATASET', 'The run has no held-out records to compare on.', 'Train with a validation split (valFraction > 0) or a validation file.');
      let pass = 0;
      const { base, tuned } = await compareBaseTuned(ctx.model, a.adapter, data.encoder, records, {
        maxNewTokens: p?.maxNewTokens,
        signal,
        onProgress: (done, total) => {
          const loaded = done + pass * total;
          this.deps.post({ kind: 'progress', id, payload: { file: 'held-out', loaded, total: 2 * total, fraction: loaded / (2 * total) } });
          if (done === total) pass = 1;
        },
      });
      // heldOutEval stops between batches when the signal fires: its rows are then partial.
      stopIfCancelled();
      const rows = base.rows.map((b, i) => {
        const t = tuned.rows[i]!;
        return {
          line: b.line,
          prompt: b.prompt,
          expected: b.expected,
          base: b.output,
          tuned: t.output,
          baseExact: b.exact,
          tunedExact: t.exact,
          baseOverlap: b.overlap,
          tunedOverlap: t.overlap,
          baseLoss: b.loss,
          tunedLoss: t.loss,
        };
      });
      return {
        runId: a.runId,
        step: a.step,
        rows,
        totals: {
          n: rows.length,
          base: { exact: base.exact, overlap: base.overlap, loss: base.loss },
          tuned: { exact: tuned.exact, overlap: tuned.overlap, loss: tuned.loss },
        },
        ms: performance.now() - t0,
      };
    });
  }

  /** `id` >= 0: the merged model sends `progress` events for that request, tensor by tensor. */
  async export(p: ExportPayload, id = -1): Promise<ExportResult> {
    const kind = p?.kind;
    if (kind === 'metrics-csv') {
      const runId = p.runId ?? this.active?.runId;
      if (!runId) throw fail('NO_ADAPTER', 'Which run? There is no active run.', 'Give a runId.');
      const store = await this.deps.store();
      const run = await store.runs.get(runId);
      if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`);
      const filename = `${slug(run.name)}-metrics.csv`;
      return { kind, filename, mimeType: 'text/csv', bytes: new TextEncoder().encode(metricsCsv(await store.runs.readMetrics(runId))), files: [filename], runId, step: null };
    }
    if (kind !== 'peft' && kind !== 'merged' && kind !== 'recipe') throw fail('BAD_REQUEST', `Unknown export kind ${JSON.stringify(kind)}.`, 'Use peft, merged, metrics-csv or recipe.');
    return this.deps.serialModel(async () => {
      const ctx = this.requireModel();
      if (kind === 'recipe') {
        const runId = p.runId ?? this.active?.runId;
        if (!runId) throw fail('NO_ADAPTER', 'Which run? There is no active run.', 'Give a runId.');
        const run = await (await this.deps.store()).runs.get(runId);
        const job = run && parseJob(run.config);
        if (!run || !job) throw fail('NOT_FOUND', `There is no browser run ${runId}.`);
        const data = await this.prepare(job.data.datasetId, ctx, -1, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
        const files = recipeFiles(
          recipeJob(job.train, { baseModel: job.model.baseModel, seqLen: data.encoder.maxSeqLen, valSplit: job.data.valDatasetId ? 0 : (job.data.options.valFraction ?? 0.1), arch: job.model.arch === 'gpt2' ? 'gpt2' : 'llama', datasetFile: 'data.jsonl' }),
          data.result.records,
        );
        return this.zipResult(kind, `${slug(run.name)}-recipe.zip`, files, runId, null);
      }
      const a = await this.ensureAdapter(p.runId, p.step);
      const arch = ctx.model.lm.config.arch;
      let files: Map<string, Uint8Array>;
      const stop = a.job.data.options.stop;
      const meta = { stop_token_id: stop.stopTokenId, stop_strings: stop.stopStrings, plain_format: PLAIN_FORMAT, base_model: a.job.model.baseModel, run: a.runName, step: a.step };
      if (kind === 'peft') {
        await Promise.all(a.adapter.variables().map((v) => v.data())); // then dataSync reads the CPU copy
        files = exportPeftAdapter(a.adapter, { baseModel: a.job.model.baseModel, arch });
        files.set(TABTUNE_JSON, tabtuneJson(meta));
      } else {
        const was = { enabled: a.adapter.enabled, strength: a.adapter.strength };
        try {
          a.adapter.enabled = true;
          a.adapter.strength = 1;
          const baseFiles = await readBaseFiles(ctx.source);
          // Merging reads every weight (model/weights.ts) and every update; on WebGPU a synchronous read
          // destroys the device in Chromium after a few dozen (see Trainer.trainStepAsync), so there the
          // weights are downloaded and the updates read asynchronously first.
          let deltas: Map<string, Float32Array> | undefined;
          if (asyncReads()) {
            await Promise.all(ctx.model.lm.weightTensors().map((t) => t.data()));
            deltas = await readDeltas(a.adapter, 1);
          }
          files = exportMergedModel({ lm: ctx.model.lm, baseFiles }, a.adapter, {
            deltas,
            tabtune: meta, // the run's stop token in generation_config.json, its record in tabtune.json
            onProgress:
              id >= 0
                ? (pr) => this.deps.post({ kind: 'progress', id, payload: { file: `merged: ${pr.stage}`, loaded: pr.done, total: pr.total, fraction: pr.done / pr.total } })
                : undefined,
          });
        } finally {
          Object.assign(a.adapter, was);
        }
      }
      return this.zipResult(kind, `${slug(a.runName)}-step${a.step}-${kind === 'peft' ? 'lora' : 'merged'}.zip`, files, a.runId, a.step);
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Internals

  private zipResult(kind: ExportResult['kind'], filename: string, files: Map<string, Uint8Array>, runId: string, step: number | null): ExportResult {
    return { kind, filename, mimeType: 'application/zip', bytes: zipFiles(files), files: [...files.keys()], runId, step };
  }

  private reserve(): void {
    if (this.session || this.starting) {
      const s = this.session;
      throw fail('BUSY', s ? `Run "${s.name}" is training.` : 'A run is starting.', 'One run trains at a time: wait for it to finish, or cancel it.', s ? { runId: s.runId, step: s.trainer.step } : undefined);
    }
    this.starting = true;
  }

  private requireModel(): ModelContext {
    const ctx = this.deps.model();
    if (!ctx) throw fail('NO_MODEL', 'No model is loaded.', 'Load a model first.');
    return ctx;
  }

  private async withBase<T>(fn: () => Promise<T>): Promise<T> {
    const a = this.active?.adapter;
    if (!a) return fn();
    const was = a.enabled;
    a.enabled = false;
    try {
      return await fn();
    } finally {
      a.enabled = was;
    }
  }

  private prepare(datasetId: string, ctx: ModelContext, id: number, run?: { frozen: RunJob['data']['options']; valDatasetId: string | null }): Promise<PreparedData> {
    return this.deps.datasets.prepare(
      datasetId,
      { model: ctx.model, withBase: (fn) => this.withBase(fn), onProgress: id >= 0 ? (pr) => this.deps.post({ kind: 'data-progress', id, payload: pr }) : undefined },
      run,
    );
  }

  private makeJob(ctx: ModelContext, config: TrainConfig, data: PreparedData): RunJob {
    const info = ctx.model.info;
    return {
      kind: 'tabtune-run',
      version: 1,
      train: config,
      data: { datasetId: data.datasetId, valDatasetId: data.valDatasetId, name: data.name, requested: data.requested, options: data.frozen, trainExamples: data.train.length, valExamples: data.val.length },
      model: { name: ctx.model.name, label: ctx.source.label, arch: info.arch, numParams: info.numParams, vocabSize: info.vocabSize, baseModel: baseModelName(ctx) },
    };
  }

  private checkModel(job: RunJob, ctx: ModelContext, run: Pick<RunRecord, 'name'>): void {
    const info = ctx.model.info;
    if (job.model.arch !== info.arch || job.model.numParams !== info.numParams || job.model.vocabSize !== info.vocabSize) {
      throw fail(
        'MODEL_MISMATCH',
        `Run "${run.name}" was trained on ${job.model.name} (${job.model.numParams.toLocaleString('en-US')} parameters), not on the loaded ${ctx.model.name}.`,
        `Load ${job.model.name} (${job.model.label}) first.`,
      );
    }
  }

  private checkData(job: RunJob, run: RunRecord, data: PreparedData): void {
    const fp = run.dataset?.fingerprint;
    if (fp?.startsWith('sha256:') && data.fingerprint.startsWith('sha256:') && fp !== data.fingerprint) {
      throw fail('BAD_DATASET', `This is not the file run "${run.name}" was trained on (${run.dataset?.name}).`, 'Add the same file again to resume, or start a new run.');
    }
    if (data.train.length !== job.data.trainExamples || data.val.length !== job.data.valExamples) {
      throw fail(
        'BAD_DATASET',
        `The dataset now gives ${data.train.length} training / ${data.val.length} validation examples, but run "${run.name}" had ${job.data.trainExamples} / ${job.data.valExamples}.`,
        'A resumed run must see exactly the same data: add the original file again, or start a new run.',
      );
    }
  }

  /** Creates the session (called at the end of setup, inside the model queue). */
  private begin(
    run: RunRecord,
    job: RunJob,
    trainer: Trainer,
    requestId: number,
    untilStep: number | undefined,
    from: { runId: string; step: number } | null,
    releaseLock: () => void,
  ): Session {
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const s: Session = {
      runId: run.id,
      name: run.name,
      requestId,
      trainer,
      job,
      controller: new AbortController(),
      paused: false,
      untilStep: untilStep ?? null,
      holds: 0,
      releaseLock,
      lastSavedStep: from ? trainer.step : -1,
      latest: null,
      pending: [],
      lastLoss: null,
      lastVal: null,
      tokens: 0,
      lastBeat: Date.now(),
      saveChain: Promise.resolve(),
      idleWaiters: [],
      done,
      finish,
    };
    if (this.cancelledEarly.delete(requestId)) s.controller.abort();
    this.session = s;
    this.active = { runId: run.id, runName: run.name, step: trainer.step, adapter: trainer.adapter!, job, training: true };
    return s;
  }

  private async runLoop(s: Session, id: number, t0: number, resumedFrom: { runId: string; step: number } | null): Promise<TrainOutcome> {
    const { trainer } = s;
    const startStep = trainer.step;
    let outcome: LoopOutcome = { reason: 'cancelled', step: startStep };
    try {
      const store = await this.deps.store();
      if (s.lastSavedStep >= 0) s.latest = (await store.checkpoints.list(s.runId, { gc: false })).find((c) => c.step === s.lastSavedStep) ?? null;
      this.deps.post({
        kind: 'run',
        id,
        payload: {
          runId: s.runId,
          name: s.name,
          startStep,
          totalSteps: trainer.totalSteps,
          trainableParams: trainer.params.reduce((a, p) => a + p.size, 0),
          trainExamples: trainer.train.length,
          valExamples: trainer.val.length,
          backend: tf.getBackend(),
          config: s.job.train,
          resumedFrom,
        },
      });
      const loopStart = performance.now();
      let failure: unknown = null;
      try {
        outcome = await this.loop(s, id);
        // Stopped or cancelled between two checkpoints: keep what was trained.
        // No step is running now, and the model queue may be held by a model change waiting for this run
        // to end: read the weights directly.
        if ((outcome.reason === 'cancelled' || outcome.reason === 'stopped') && trainer.step > 0 && s.lastSavedStep < trainer.step) {
          await this.save(s, await this.takeCheckpoint(trainer));
        }
        await s.saveChain;
      } catch (e) {
        failure = e;
      }
      const loopSec = (performance.now() - loopStart) / 1000;
      const details: ErrorDetails = { runId: s.runId, step: trainer.step, lastCheckpointStep: s.lastSavedStep >= 0 ? s.lastSavedStep : null };
      if (failure) {
        // Storage full (or another failure): the checkpoints already committed are intact.
        const pe = toProtocolError(failure, details);
        await this.bestEffort(() => store.runs.update(s.runId, { status: 'failed', error: `${pe.code}: ${pe.message}` }));
        throw new RequestFailure(pe);
      }
      if (outcome.reason === 'failed') {
        const error = outcome.error;
        await this.bestEffort(() => store.runs.update(s.runId, { status: 'failed', error: `NON_FINITE_LOSS: ${error.message}` }));
        // Generation should use the last good weights, not the diverged ones.
        if (s.lastSavedStep >= 0) {
          await this.bestEffort(async () => {
            const ck = await store.checkpoints.load(s.runId, s.lastSavedStep);
            trainer.adapter?.setWeights(adapterWeights(ck.tensors));
            if (this.active?.adapter === trainer.adapter) this.active.step = ck.step;
          });
        }
        throw new RequestFailure(toProtocolError(error, details));
      }
      const reason: TrainOutcome['reason'] = outcome.reason;
      await this.bestEffort(() => store.runs.setStatus(s.runId, reason === 'done' ? 'finished' : 'paused'));
      const ran = trainer.step - startStep;
      return {
        runId: s.runId,
        name: s.name,
        reason,
        step: trainer.step,
        totalSteps: trainer.totalSteps,
        finalTrainLoss: s.lastLoss,
        finalValLoss: s.lastVal,
        checkpoint: s.latest,
        resumedFrom,
        ms: performance.now() - t0,
        tokensPerSecond: ran > 0 && loopSec > 0 ? s.tokens / loopSec : 0,
      };
    } finally {
      this.ended.add(s.runId);
      s.releaseLock();
      trainer.dispose();
      if (this.active?.adapter === trainer.adapter) this.active.training = false;
      this.session = null;
      this.wakeIdle(s);
      s.finish();
    }
  }

  /**
   * The one training loop (src/train/run-loop.ts) with the worker's plug-ins: every step, with its
   * evaluation and checkpoint, is one model-queue task; pauses (and work that needs the loop to stay
   * between steps) wait before a step; evaluation lets the worker answer between batches.
   */
  private loop(s: Session, id: number): Promise<LoopOutcome> {
    const signal = s.controller.signal;
    const beforeStep = async () => {
      while ((s.paused || s.holds > 0) && !signal.aborted) {
        this.wakeIdle(s);
        await sleep(50);
      }
    };
    return runTraining(
      s.trainer,
      { signal, beforeStep, serialize: (task) => this.deps.serialModel(task), asyncReads: asyncReads(), evalYieldMs: 25, untilStep: s.untilStep },
      async (e) => {
        if (e.type === 'step') this.onStep(s, id, e.metrics);
        else if (e.type === 'eval') this.onEval(s, id, e.metrics);
        else await this.save(s, e.checkpoint);
      },
    );
  }

  /** The trainer's checkpoint (inside the model queue, or while no step runs). */
  private takeCheckpoint(t: Trainer): Promise<TrainerCheckpoint> {
    return asyncReads() ? t.checkpointAsync() : Promise.resolve(t.checkpoint());
  }

  private onStep(s: Session, id: number, m: StepMetrics): void {
    this.deps.post({ kind: 'metrics', id, payload: m });
    s.pending.push(stepPoint(m));
    s.tokens += m.tokens;
    if (!m.skipped) s.lastLoss = m.loss;
    if (this.active?.adapter === s.trainer.adapter) this.active.step = m.step;
    const now = Date.now();
    if (now - s.lastBeat >= this.deps.heartbeatMs) {
      s.lastBeat = now;
      void this.bestEffort(async () => (await this.deps.store()).runs.heartbeat(s.runId));
    }
  }

  private onEval(s: Session, id: number, e: EvalMetrics): void {
    this.deps.post({ kind: 'eval', id, payload: e });
    s.pending.push(evalPoint(e));
    s.lastVal = e.valLoss;
  }

  /** Commits a checkpoint, then the metrics up to its step, then tells the page. Saves run one after another. */
  private save(s: Session, c: TrainerCheckpoint): Promise<void> {
    const run = async () => {
      const t0 = performance.now();
      const store = await this.deps.store();
      const { info, deletedSteps } = await store.checkpoints.save(s.runId, c);
      if (c.step >= s.lastSavedStep) {
        s.lastSavedStep = c.step;
        s.latest = info;
      }
      const points = takeUpTo(s.pending, c.step);
      if (points.length) await store.runs.appendMetrics(s.runId, points);
      this.deps.post({ kind: 'checkpoint', id: s.requestId, payload: { ...info, deletedSteps, ms: performance.now() - t0 } });
    };
    const next = s.saveChain.then(run);
    s.saveChain = next.catch(() => undefined);
    return next;
  }

  /** Resolves once the loop is waiting between steps (paused / model busy) or has ended. */
  private untilIdle(s: Session): Promise<void> {
    if (this.session !== s) return Promise.resolve();
    return new Promise<void>((r) => s.idleWaiters.push(r));
  }

  private wakeIdle(s: Session): void {
    const ws = s.idleWaiters.splice(0);
    for (const w of ws) w();
  }

  private info(a: ActiveAdapter): AdapterInfo {
    return { runId: a.runId, runName: a.runName, step: a.step, params: a.adapter.numParams(), training: a.training };
  }

  /** The active adapter, or the one of (runId, step) loaded from storage and made active. Call inside the model queue. */
  private async ensureAdapter(runId?: string, step?: number): Promise<ActiveAdapter> {
    const a = this.active;
    if (runId === undefined) {
      if (!a) throw fail('NO_ADAPTER', 'There is no trained adapter.', 'Train a run, or pick one of the stored runs.');
      if (step === undefined || step === a.step) return a;
      runId = a.runId;
    }
    if (a && a.runId === runId && (step === undefined || step === a.step)) return a;
    if (this.session) {
      throw fail('BUSY', `Run "${this.session.name}" is training with its adapter attached.`, 'Wait for it to finish or cancel it, then pick another checkpoint.', { runId: this.session.runId });
    }
    const ctx = this.requireModel();
    const store = await this.deps.store();
    const run = await store.runs.get(runId);
    if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    const job = parseJob(run.config);
    if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser.`);
    this.checkModel(job, ctx, run);
    let ck;
    if (step === undefined) {
      const info = await store.checkpoints.resolveResume(runId);
      if (!info) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint yet.`, 'Let it train until its first checkpoint (saveEvery).');
      ck = await store.checkpoints.load(info.runId, info.step);
    } else ck = await store.checkpoints.load(runId, step);
    this.detachActive();
    const adapter = new LoraAdapter(ctx.model.lm, job.train.lora, { seed: job.train.seed, weights: adapterWeights(ck.tensors) });
    this.active = { runId, runName: run.name, step: ck.step, adapter, job, training: false };
    return this.active;
  }

  private async bestEffort(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch {
      // Bookkeeping that fails (storage full) must not hide the real outcome.
    }
  }
}
