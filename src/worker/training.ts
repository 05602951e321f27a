// A training session in the worker: one LoRA run at a time on an inspected dataset (train), or a stored
// run continued after a reload, or from an older checkpoint as a branch (resume-run); pause / resume /
// cancel / stop; the run's Web Lock and heartbeat; its checkpoints and metrics written to the store.
//
// The steps come from the one training loop (src/train/run-loop.ts), each step (and its evaluation and
// checkpoint) as one task on the handler's model queue: between two steps the worker answers anything
// (get-backend, list-runs, pause…), and a request that needs the model (generate, compare, export,
// inspect-data) runs between two steps. Nothing it does changes what the next step computes (dropout
// seeds come from the step), so a run interleaved with generations still repeats exactly. On WebGPU the
// steps read the backend asynchronously (Trainer.trainStepAsync): its synchronous reads destroy the
// device after a few steps. The run's adapter is the active one while it trains (adapters.ts).
import * as tf from '@tensorflow/tfjs-core';
import type { CheckpointInfo, RunQuality, RunRecord } from '../storage/index';
import { dropKeptDecoderWeights, keepLargeDecoderWeights } from '../model/fast-decode';
import { createTrainer, objectiveFor, recordsFor, textWindowLen, toExamples, toPreferenceExamples, type TuningAdapter } from '../train/job';
import { runReference, type PreferenceExample } from '../train/dpo';
import type { DataRecord } from '../data/types';
import { bestEffort, sleep } from '../util/async';
import { BROWSER_TRAINING, browserTraining, parseTrainConfig, resolveTrainConfig, type TrainConfig, type TrainConfigOverrides } from '../train/config';
import { evalPoint, evalsFromPoints, stepPoint, type MetricPoint } from '../train/metrics';
import { runTraining, type LoopOutcome } from '../train/run-loop';
import { decideRun, keepSteps, measureBaseline, qualityPlugins, runProbe, withReplay, type QualityPlugins } from '../train/quality/index';
import type { ProbeSet } from '../train/quality/probe';
import type { PreparedData } from './datasets';
import type { EvalMetrics, Example, StepMetrics, Trainer, TrainerCheckpoint } from '../train/loop';
import type { ErrorDetails, PauseResult, ResumeRunPayload, RunJob, TrainOutcome, TrainPayload } from '../protocol/messages';
import type { Adapters } from './adapters';
import { asyncReads, requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { applyMemoryPlan } from './memory';
import { fail, RequestFailure, toProtocolError } from './errors';
import { checkData, checkModel, copyParentMetrics, makeJob, parseJob } from './jobs';
import { acquireRunLock, lockedRuns } from './run-lock';

/** The model's default config with the request's overrides, checked (src/train/config.ts). */
export function buildTrainConfig(arch: 'llama' | 'gpt2', over: TrainConfigOverrides = {}): TrainConfig {
  const r = resolveTrainConfig(arch, over, browserTraining(arch));
  if (!r.ok) throw fail('BAD_REQUEST', `Invalid training settings: ${r.problems.join(' ')}`, 'Change the settings in the Train panel and start again.');
  return r.config;
}

export interface TrainingDeps {
  datasets: DatasetRegistry;
  /** The active adapter: a run's adapter is attached while it trains. */
  adapters: Adapters;
  /** A 'running' run whose heartbeat is older than this is taken as interrupted (where Web Locks are missing). */
  staleAfterMs: number;
  /** How often a training run records a heartbeat. */
  heartbeatMs: number;
}

/** The records a run trains and evaluates on, how many of the other kind were left out, and notes for its warnings (the memory plan's). */
interface RunRecords {
  train: DataRecord[];
  val: DataRecord[];
  left: number;
  notes: string[];
}

interface Session {
  runId: string;
  name: string;
  requestId: number;
  trainer: Trainer<Example, TuningAdapter>;
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
  /** What each evaluation measures besides the validation loss, and early stopping. */
  quality: QualityPlugins;
  /** Every evaluation of the run (a resumed run's stored ones first): early stopping and the decisions read them. */
  evals: EvalMetrics[];
  /** Checkpoint saves in order (loop and pause share it). */
  saveChain: Promise<unknown>;
  idleWaiters: (() => void)[];
  /** Settles when the run loop has ended and the session is gone. */
  done: Promise<void>;
  finish: () => void;
}


function checkUntilStep(untilStep: number | undefined): void {
  if (untilStep !== undefined && !(Number.isInteger(untilStep) && untilStep > 0)) throw fail('BAD_REQUEST', `untilStep must be a positive integer, got ${untilStep}.`);
}

function takeUpTo(points: MetricPoint[], step: number): MetricPoint[] {
  let n = 0;
  while (n < points.length && points[n]!.step <= step) n++;
  return points.splice(0, n);
}

export class Training {
  private session: Session | null = null;
  /** A train / resume-run is being set up (one run at a time). */
  private starting = false;
  /** Requests cancelled while they were being set up. */
  private readonly cancelledEarly = new Set<number>();
  /** Runs this worker trained and stopped: never alive, whatever their stored status says (a status write may have failed). */
  private readonly ended = new Set<string>();

  constructor(
    private readonly worker: WorkerContext,
    private readonly deps: TrainingDeps,
  ) {}

  /** The run being trained, or null. */
  get current(): { readonly runId: string; readonly name: string } | null {
    return this.session;
  }

  isTraining(runId: string): boolean {
    return this.session?.runId === runId;
  }

  /** The run was renamed in the store: the outcome of its training carries the new name. */
  renamed(runId: string, name: string): void {
    if (this.session?.runId === runId) this.session.name = name;
  }

  /**
   * Whether a stored 'running' run that this worker is not training is still trained somewhere: another
   * tab holds its lock or, where Web Locks are missing, its heartbeat is recent. Read once per listing.
   */
  async runningCheck(): Promise<(run: RunRecord) => boolean> {
    const locks = await lockedRuns();
    const now = Date.now();
    return (run) => !this.ended.has(run.id) && (locks ? locks.has(run.id) : now - (run.heartbeatAt ?? run.updatedAt) <= this.deps.staleAfterMs);
  }

  async train(p: TrainPayload, id: number): Promise<TrainOutcome> {
    const t0 = performance.now();
    this.reserve();
    let session: Session;
    try {
      session = await this.worker.serialModel(async () => {
        const ctx = requireModel(this.worker);
        if (!p || typeof p !== 'object') throw fail('BAD_REQUEST', 'train needs a payload.');
        let config = buildTrainConfig(ctx.model.lm.config.arch, p.config ?? {});
        checkUntilStep(p.untilStep);
        const store = await this.worker.store();
        // Continuing another run's adapter (DPO after SFT): its kind and shape, its checkpoint, its stop token.
        const start = p.startFrom !== undefined ? await startingPoint(store, ctx, p.startFrom) : null;
        if (start) config = buildTrainConfig(ctx.model.lm.config.arch, { ...config, mode: start.job.train.mode, lora: start.job.train.lora, oft: start.job.train.oft, prompt: start.job.train.prompt });
        // Replies end as the run it continues ended them; an adapter imported without that record lets the doctor measure it.
        const startStop = start?.job.data.options.stop;
        const stop = startStop && (startStop.stopTokenId !== null || startStop.stopStrings.length) ? startStop : undefined;
        const data = await this.deps.datasets.prepare(p.datasetId, { model: ctx.model, requestId: id }, undefined, { stop });
        let job: RunJob = { ...makeJob(ctx, config, data), backend: tf.getBackend(), ...(start ? { startFrom: { runId: start.run.id, step: start.step } } : {}) };
        this.deps.adapters.detach();
        // The forgetting probe and replay text come from the base model, before the run's adapter exists.
        if (p.probeText !== undefined && (typeof p.probeText?.text !== 'string' || !p.probeText.text.trim())) {
          throw fail('BAD_REQUEST', `The general-text file${typeof p.probeText?.name === 'string' ? ` "${p.probeText.name}"` : ''} for the forgetting probe is empty or not text.`, 'Pick a plain-text file with some paragraphs of general text, or remove it.');
        }
        const probe = await runProbe(ctx.model, null, config, { text: p.probeText?.text });
        const { trainer, records } = await this.makeTrainer(config, data, probe);
        // DPO trains pairs: the run counts them (SFT counts its examples, replay left out).
        if (config.objective === 'dpo') job = { ...job, data: { ...job.data, trainExamples: trainer.train.length, valExamples: trainer.val.length } };
        let run: RunRecord;
        let quality: QualityPlugins;
        try {
          if (start) trainer.adapter!.setTensors(start.tensors);
          // DPO's reference: the model as the run starts (the adapter it continues, else the base model), once.
          if (config.objective === 'dpo') await runReference(trainer, start !== null);
          quality = await this.quality(trainer, data, probe, [], records);
          // The model the run starts from on the held-out split: the "before" of its verdict and report
          // (measured before the run is stored, so a failure here leaves no run behind).
          const baseline = await measureBaseline(trainer as unknown as Trainer, quality.metrics, start ? `${start.run.name}, step ${start.step}` : null);
          const name = p.name?.trim() || `${data.name} ${new Date().toISOString().slice(0, 16).replace('T', ' ')}`;
          run = await store.runs.create({ name, config: job, dataset: { fingerprint: data.fingerprint, name: data.name, datasetId: data.datasetId }, status: 'running' });
          if (probe) await store.runs.update(run.id, { probe });
          if (baseline) await store.runs.update(run.id, { baseline });
        } catch (e) {
          trainer.dispose();
          trainer.adapter?.dispose();
          throw e;
        }
        return this.begin(run, job, trainer, id, p.untilStep, null, await acquireRunLock(run.id), quality, []);
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
      session = await this.worker.serialModel(async () => {
        const ctx = requireModel(this.worker);
        const store = await this.worker.store();
        const run = await store.runs.get(p.runId);
        if (!run) throw fail('NOT_FOUND', `There is no run ${p.runId}.`, 'Pick a run from the list of runs.');
        const job = parseJob(run.config);
        if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser and cannot be resumed here.`, 'Resume it with the command line (npm run cli -- train --resume).');
        checkModel(job, ctx, run);
        const saved = parseTrainConfig(job.train, BROWSER_TRAINING);
        if (!saved.ok) throw fail('BAD_REQUEST', `Run "${run.name}" holds settings this page cannot train: ${saved.problems.join(' ')}`, 'Start a new run with valid settings.');

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

        const data = await this.deps.datasets.prepare(p.datasetId ?? job.data.datasetId, { model: ctx.model, requestId: id }, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
        checkData(job, run, data);
        this.deps.adapters.detach();
        const probe = await runProbe(ctx.model, null, saved.config, { stored: (run.probe as ProbeSet | null | undefined) ?? null });
        const { trainer, records } = await this.makeTrainer(saved.config, data, probe);
        try {
          if (from) {
            const ck =
              p.step === undefined && from.runId === run.id
                ? ((await store.checkpoints.loadLatest(run.id))?.checkpoint ?? null)
                : await store.checkpoints.load(from.runId, from.step);
            if (!ck) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint to resume from.`);
            trainer.restore(ck as unknown as TrainerCheckpoint);
            from = { runId: from.runId, step: ck.step };
          } else {
            // No checkpoint yet (stopped before its first one): the run starts again as it began — from the
            // adapter it continues, with DPO's reference computed again.
            if (job.startFrom) trainer.adapter!.setTensors((await startingPoint(store, ctx, job.startFrom)).tensors);
            if (saved.config.objective === 'dpo') await runReference(trainer, job.startFrom !== undefined);
          }
          let target = run;
          if (branchAt !== null) {
            target = await store.checkpoints.branch(run.id, branchAt, { name: p.name?.trim() || undefined, status: 'running' });
            await copyParentMetrics(store, run.id, target.id, branchAt);
          } else {
            if (p.datasetId && p.datasetId !== job.data.datasetId) {
              const moved: RunJob = { ...job, data: { ...job.data, datasetId: p.datasetId } };
              target = await store.runs.update(run.id, { config: moved, dataset: { fingerprint: data.fingerprint, name: data.name, datasetId: p.datasetId } });
            }
            target = await store.runs.setStatus(target.id, 'running');
          }
          resumedFrom = from;
          // The evaluations before the checkpoint it continues from. A run made by apply-recipe holds its
          // parent's history, whose evaluation at the recipe's step measured other weights than its own.
          const recipeStep = (target.recipe as { fromStep?: number } | null | undefined)?.fromStep;
          const history = from ? evalsFromPoints(await store.runs.readMetrics(target.id)).filter((e) => e.step <= from!.step && (recipeStep === undefined || e.step < recipeStep)) : [];
          const quality = await this.quality(trainer, data, probe, history, records);
          if (probe && target.probe == null) await store.runs.update(target.id, { probe });
          if (target.id !== run.id) {
            // A branch is a run of its own: it gets its own lock.
            const branchLock = await acquireRunLock(target.id);
            lock();
            releaseLock = branchLock;
          }
          // The stored settings with the defaults of settings added since (parseTrainConfig filled them in).
          const resumedJob = parseJob(target.config) ?? job;
          return this.begin(target, { ...resumedJob, train: saved.config }, trainer, id, p.untilStep, from, releaseLock!, quality, history);
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

  /**
   * The trainer over what the objective trains on: SFT the pairs and chats (with replay), DPO the preference
   * pairs (the run's records of that kind are returned for the quality measurements). Records of the other
   * kind are left out, and the run's warnings say so; none at all is an error naming the fix.
   */
  private async makeTrainer(config: TrainConfig, data: PreparedData, probe: ProbeSet | null): Promise<{ trainer: Trainer<Example, TuningAdapter>; records: RunRecords }> {
    const ctx = requireModel(this.worker);
    // Training's memory comes first: the decoder's kept copy of the base weights (a second copy of the model) goes.
    dropKeptDecoderWeights();
    const dpo = config.objective === 'dpo';
    const train = recordsFor(config, data.result.train);
    const val = recordsFor(config, data.result.val);
    if (!train.use.length) {
      throw fail(
        'BAD_DATASET',
        dpo ? `"${data.name}" has no preference pairs ({"prompt", "chosen", "rejected"}) to train with DPO.` : `"${data.name}" holds only preference pairs: they train with DPO.`,
        dpo ? 'Pick a preference dataset (or collect preferences in Compare), or train with SFT.' : 'Pick "Preference tuning (DPO)" as the objective, starting from a tuned run or the base model.',
      );
    }
    const records: RunRecords = { train: train.use, val: val.use, left: train.left + val.left, notes: [] };
    // The memory plan (src/worker/memory.ts): a batch that will not fit trains in micro-batches with the same
    // effective batch (the run's warnings say so); a run that cannot fit is refused before anything starts.
    const planned = (examples: readonly unknown[]): TrainConfig => {
      const { config: c, plan } = applyMemoryPlan(ctx.model.info, config, examples);
      if (plan.changed) records.notes.push(plan.message!);
      return c;
    };
    if (dpo) {
      const [pTrain, pVal] = [toPreferenceExamples(data.encoder, train.use), toPreferenceExamples(data.encoder, val.use)];
      const c = planned([...pTrain, ...pVal]);
      const t = createTrainer<PreferenceExample>(ctx.model, pTrain, pVal, c, { objective: objectiveFor(c) });
      // The loop and the session read only what every objective has (steps, evaluations, checkpoints).
      return { trainer: t as unknown as Trainer<Example, TuningAdapter>, records };
    }
    // Prompt tuning packs plain text into shorter windows (its virtual tokens take their room in the context).
    const windowLen = textWindowLen(data.encoder, ctx.model.lm, config);
    const [sftTrain, sftVal] = windowLen === data.encoder.maxSeqLen ? [data.train, data.val] : [toExamples(data.encoder, data.result.train, windowLen), toExamples(data.encoder, data.result.val, windowLen)];
    const withText = await withReplay(ctx.model, null, config, sftTrain, probe);
    const c = planned([...withText, ...sftVal]);
    return { trainer: createTrainer(ctx.model, withText, sftVal, c), records };
  }

  /**
   * The run's measurements and stop rules (src/train/quality). Inside the model queue, before the first step.
   */
  private async quality(trainer: Trainer, data: PreparedData, probe: ProbeSet | null, history: EvalMetrics[], records: RunRecords): Promise<QualityPlugins> {
    const q = await qualityPlugins({
      model: requireModel(this.worker).model,
      adapter: trainer.adapter,
      config: trainer.config,
      encoder: data.encoder,
      trainRecords: records.train,
      valRecords: records.val,
      probe,
      history,
    });
    q.warnings.push(...records.notes);
    if (records.left) {
      q.warnings.push(
        trainer.config.objective === 'dpo'
          ? `${records.left} record(s) of "${data.name}" are not preference pairs: DPO leaves them out.`
          : `${records.left} preference pair(s) of "${data.name}" are left out: supervised training uses pairs and chats (preference pairs train with DPO).`,
      );
    }
    return q;
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
    if (this.session === s && s.paused) await bestEffort(async () => (await this.worker.store()).runs.setStatus(s.runId, 'paused'));
    return { paused: this.session === s && s.paused, runId: s.runId, step: s.trainer.step, checkpoint: s.latest };
  }

  async resumeTrain(): Promise<{ resumed: boolean; runId: string | null; step: number | null }> {
    const s = this.session;
    if (!s) return { resumed: false, runId: null, step: null };
    const was = s.paused;
    s.paused = false;
    if (was) await bestEffort(async () => (await this.worker.store()).runs.setStatus(s.runId, 'running'));
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

  dispose(): void {
    this.session?.controller.abort();
  }

  private reserve(): void {
    if (this.session || this.starting) {
      const s = this.session;
      throw fail('BUSY', s ? `Run "${s.name}" is training.` : 'A run is starting.', 'One run trains at a time: wait for it to finish, or cancel it.', s ? { runId: s.runId, step: s.trainer.step } : undefined);
    }
    this.starting = true;
  }

  /** Creates the session (called at the end of setup, inside the model queue). */
  private begin(
    run: RunRecord,
    job: RunJob,
    trainer: Trainer<Example, TuningAdapter>,
    requestId: number,
    untilStep: number | undefined,
    from: { runId: string; step: number } | null,
    releaseLock: () => void,
    quality: QualityPlugins,
    history: EvalMetrics[],
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
      quality,
      evals: [...history],
      saveChain: Promise.resolve(),
      idleWaiters: [],
      done,
      finish,
    };
    if (this.cancelledEarly.delete(requestId)) s.controller.abort();
    this.session = s;
    keepLargeDecoderWeights(false); // until the run ends: its memory first
    this.deps.adapters.attachTraining({ runId: run.id, runName: run.name, step: trainer.step, adapter: trainer.adapter!, job });
    return s;
  }

  private async runLoop(s: Session, id: number, t0: number, resumedFrom: { runId: string; step: number } | null): Promise<TrainOutcome> {
    const { trainer } = s;
    const startStep = trainer.step;
    let outcome: LoopOutcome = { reason: 'cancelled', step: startStep };
    try {
      const store = await this.worker.store();
      if (s.lastSavedStep >= 0) s.latest = (await store.checkpoints.list(s.runId, { gc: false })).find((c) => c.step === s.lastSavedStep) ?? null;
      this.worker.post({
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
          warnings: s.quality.warnings,
        },
      });
      const loopStart = performance.now();
      let failure: unknown = null;
      try {
        outcome = await this.loop(s, id);
        // Stopped or cancelled between two checkpoints: keep what was trained.
        // No step is running now, and the model queue may be held by a model change waiting for this run
        // to end: read the weights directly.
        // (Also a run that ended on a skipped step, e.g. early stopping right after a non-finite one.)
        if (outcome.reason !== 'failed' && trainer.step > 0 && s.lastSavedStep < trainer.step) {
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
        await bestEffort(() => store.runs.update(s.runId, { status: 'failed', error: `${pe.code}: ${pe.message}` }));
        throw new RequestFailure(pe);
      }
      if (outcome.reason === 'failed') {
        const error = outcome.error;
        await bestEffort(() => store.runs.update(s.runId, { status: 'failed', error: `NON_FINITE_LOSS: ${error.message}` }));
        // Generation should use the last good weights, not the diverged ones.
        if (s.lastSavedStep >= 0) {
          await bestEffort(async () => {
            const ck = await store.checkpoints.load(s.runId, s.lastSavedStep);
            trainer.adapter?.setTensors(ck.tensors);
            this.deps.adapters.trainedTo(trainer.adapter, ck.step);
          });
        }
        throw new RequestFailure(toProtocolError(error, details));
      }
      const reason: TrainOutcome['reason'] = outcome.reason;
      const stoppedBy = outcome.reason === 'done' ? (outcome.stoppedBy ?? null) : null;
      let quality: RunQuality | null = null;
      await bestEffort(async () => {
        const steps = (await store.checkpoints.list(s.runId, { gc: false })).map((c) => c.step);
        quality = decideRun(s.evals, trainer.config, steps, trainer.step, stoppedBy);
        await store.runs.update(s.runId, { quality });
      });
      // A run the user cancelled is stored as cancelled, not paused: the page offers no Resume for it.
      await bestEffort(() => store.runs.setStatus(s.runId, reason === 'done' ? 'finished' : reason === 'cancelled' ? 'cancelled' : 'paused'));
      const baseline = ((await store.runs.get(s.runId).catch(() => null))?.baseline ?? null) as TrainOutcome['baseline'];
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
        stoppedBy,
        quality,
        baseline,
        ms: performance.now() - t0,
        tokensPerSecond: ran > 0 && loopSec > 0 ? s.tokens / loopSec : 0,
      };
    } finally {
      this.ended.add(s.runId);
      s.releaseLock();
      trainer.dispose();
      this.deps.adapters.trainingEnded(trainer.adapter);
      this.session = null;
      keepLargeDecoderWeights(true);
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
      {
        signal,
        beforeStep,
        serialize: (task) => this.worker.serialModel(task),
        asyncReads: asyncReads(),
        evalYieldMs: 25,
        untilStep: s.untilStep,
        metrics: s.quality.metrics,
        stopRules: s.quality.stopRules,
        history: s.evals,
      },
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
    this.worker.post({ kind: 'metrics', id, payload: m });
    s.pending.push(stepPoint(m));
    s.tokens += m.tokens;
    if (!m.skipped) s.lastLoss = m.loss;
    this.deps.adapters.trainedTo(s.trainer.adapter, m.step);
    const now = Date.now();
    if (now - s.lastBeat >= this.deps.heartbeatMs) {
      s.lastBeat = now;
      void bestEffort(async () => (await this.worker.store()).runs.heartbeat(s.runId));
    }
  }

  private onEval(s: Session, id: number, e: EvalMetrics): void {
    this.worker.post({ kind: 'eval', id, payload: e });
    s.pending.push(evalPoint(e));
    s.evals.push(e);
    s.lastVal = e.valLoss;
  }

  /** Commits a checkpoint, then the metrics up to its step, then tells the page. Saves run one after another. */
  private save(s: Session, c: TrainerCheckpoint): Promise<void> {
    const run = async () => {
      const t0 = performance.now();
      const store = await this.worker.store();
      // Retention keeps the best, the recommended and the Pareto front of the run's checkpoints.
      const steps = (await store.checkpoints.list(s.runId, { gc: false })).map((x) => x.step);
      const keep = keepSteps(s.evals, s.trainer.config, [...steps, c.step], s.trainer.totalSteps);
      const { info, deletedSteps } = await store.checkpoints.save(s.runId, c, { keep });
      if (c.step >= s.lastSavedStep) {
        s.lastSavedStep = c.step;
        s.latest = info;
      }
      const points = takeUpTo(s.pending, c.step);
      if (points.length) await store.runs.appendMetrics(s.runId, points);
      this.worker.post({ kind: 'checkpoint', id: s.requestId, payload: { ...info, deletedSteps, ms: performance.now() - t0 } });
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
}

/** The stored run and checkpoint a new run's adapter starts from (TrainPayload.startFrom), checked. */
async function startingPoint(
  store: Awaited<ReturnType<WorkerContext['store']>>,
  ctx: ReturnType<typeof requireModel>,
  from: { runId: string; step: number },
): Promise<{ run: RunRecord; job: RunJob; step: number; tensors: TrainerCheckpoint['tensors'] }> {
  if (!from || typeof from.runId !== 'string' || !Number.isInteger(from.step)) throw fail('BAD_REQUEST', 'startFrom needs a runId and a checkpoint step.');
  const run = await store.runs.get(from.runId);
  if (!run) throw fail('NOT_FOUND', `There is no run ${from.runId} to start from.`, 'Pick a run from the list of runs.');
  const job = parseJob(run.config);
  if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser: its adapter cannot be continued here.`, 'Start from the base model, or from a run trained in this page.');
  checkModel(job, ctx, run);
  if (job.train.mode === 'full') throw fail('BAD_REQUEST', `Run "${run.name}" trained every weight: there is no adapter to continue.`, 'Start from the base model, or from a LoRA run.');
  const list = await store.checkpoints.list(run.id);
  if (!list.some((c) => c.step === from.step)) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${from.step}.`, `Its checkpoints: ${list.map((c) => c.step).join(', ') || 'none'}.`);
  const ck = await store.checkpoints.load(run.id, from.step);
  return { run, job, step: from.step, tensors: ck.tensors as TrainerCheckpoint['tensors'] };
}
