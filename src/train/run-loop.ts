// The one training loop. It owns the order of things — wait while paused → step → stop on repeated
// non-finite steps → evaluate (+ extra metrics) → stop rules → checkpoint → stop at a step or on request —
// and yields what happened as events; the host owns what it does with them (the CLI prints and writes
// files, the worker posts to the page and writes IndexedDB, pretraining writes its work folder).
// Plug-ins: `serialize` runs each step with its evaluation and checkpoint as one task (the worker's
// model queue), `asyncReads` reads the backend asynchronously (WebGPU), `saveAt` is the save policy,
// `metrics` adds measurements to each evaluation, `stopRules` end a run early (early stopping). The
// objective (what a step's loss is) belongs to the Trainer (see Objective in loop.ts).
import { yieldToEventLoop } from '../util/async';
import { isEvalStep, isSaveStep } from './config';
import { TrainingError, type EvalMetrics, type StepMetrics, type Trainer, type TrainerCheckpoint } from './loop';

/** What one plugged-in measurement found: numbers (charted, stored, printed) and optional detail (tables). */
export interface MetricResult {
  /** snake_case names, e.g. exact_match, probe_nll_delta_pct. */
  values: Record<string, number>;
  /** JSON-able detail shown beside the numbers (a confusion table, per-layer values, sample answers). */
  details?: Record<string, unknown>;
}

/** A measurement taken at every evaluation, e.g. a generation metric or a forgetting probe. */
export interface EvalMetric {
  name: string;
  measure(trainer: Trainer): Promise<MetricResult>;
}

/** Consulted after every evaluation: a reason (for the user) ends the run there, as early stopping does. */
export type StopRule = (evals: readonly EvalMetrics[], trainer: Trainer) => string | null;

export type LoopOutcome =
  | { reason: 'done' | 'cancelled'; step: number; stoppedBy?: string }
  | { reason: 'stopped'; step: number }
  | { reason: 'failed'; step: number; error: TrainingError };

export type LoopEvent =
  | { type: 'step'; metrics: StepMetrics }
  | { type: 'eval'; metrics: EvalMetrics }
  /** Awaited by the host before the loop goes on (storage writes). */
  | { type: 'checkpoint'; checkpoint: TrainerCheckpoint }
  /** Always the last event. */
  | { type: 'end'; outcome: LoopOutcome };

export interface LoopOptions {
  /** Cancels between two steps (outcome 'cancelled'; the host keeps what was trained). */
  signal?: AbortSignal;
  /** Awaited before every step: a host that pauses waits here. */
  beforeStep?: () => Promise<void>;
  /** Runs a step with its evaluation and checkpoint as one task (the worker's model queue). Default: at once. */
  serialize?: <T>(task: () => Promise<T>) => Promise<T>;
  /** Reads the backend asynchronously (WebGPU: synchronous reads lose the device in Chromium). */
  asyncReads?: boolean;
  /** With asynchronous evaluation, let the event loop run every this many ms (a worker keeps answering). */
  evalYieldMs?: number;
  /** Which steps save a checkpoint. Default: every saveEvery steps and the last one. */
  saveAt?: (step: number, totalSteps: number) => boolean;
  /** Measurements added to every evaluation (EvalMetrics.extra). */
  metrics?: readonly EvalMetric[];
  /** Early-stopping rules, consulted after every evaluation. */
  stopRules?: readonly StopRule[];
  /** Evaluations made before this loop started (a resumed run's stored ones), so stop rules see the whole run. */
  history?: readonly EvalMetrics[];
  /** Stop once this step is reached, with a checkpoint there, resumable (outcome 'stopped'). */
  untilStep?: number | null;
  /** Polled after every step: true stops the run there with a checkpoint (Ctrl-C, a time limit). */
  shouldStop?: () => boolean;
}

export function nonFiniteError(badSteps: number, why: string | undefined): TrainingError {
  return new TrainingError(
    'NON_FINITE_LOSS',
    `training stopped: ${badSteps} steps in a row had a non-finite loss or gradient (${why})`,
    'Lower the learning rate or enable gradient clipping, then resume from the last good checkpoint.',
  );
}

/** Trains `trainer` from its current step to its last (or until a stop), yielding what happens. */
export async function* trainingLoop(trainer: Trainer, o: LoopOptions = {}): AsyncGenerator<LoopEvent, void, undefined> {
  const t = trainer;
  const c = t.config;
  const serialize = o.serialize ?? (<T>(task: () => Promise<T>) => task());
  const saveAt = o.saveAt ?? ((step: number, total: number) => isSaveStep(c, step, total));
  const evals: EvalMetrics[] = [...(o.history ?? [])];
  while (t.step < t.totalSteps) {
    await o.beforeStep?.();
    if (o.signal?.aborted) {
      yield { type: 'end', outcome: { reason: 'cancelled', step: t.step } };
      return;
    }
    const r = await serialize(async () => {
      const m = o.asyncReads ? await t.trainStepAsync() : t.trainStep();
      if (t.badStepCount >= c.maxBadSteps) return { m, failed: true as const };
      let ev: EvalMetrics | null = null;
      if (t.val.length && isEvalStep(c, t.step, t.totalSteps)) {
        ev = o.asyncReads || o.evalYieldMs !== undefined ? await t.evaluateAsync(t.val, o.evalYieldMs) : t.evaluate();
        for (const metric of o.metrics ?? []) {
          const r = await metric.measure(t);
          ev = { ...ev, extra: { ...ev.extra, ...r.values }, ...(r.details ? { details: { ...ev.details, [metric.name]: r.details } } : {}) };
        }
        evals.push(ev);
      }
      let stoppedBy: string | null = null;
      for (const rule of ev ? (o.stopRules ?? []) : []) stoppedBy ??= rule(evals, t);
      const until = o.untilStep != null && t.step >= o.untilStep && t.step < t.totalSteps;
      const halt = !until && t.step < t.totalSteps && (o.shouldStop?.() ?? false);
      const save = !m.skipped && (saveAt(t.step, t.totalSteps) || stoppedBy !== null || until || halt);
      const ck = save ? (o.asyncReads ? await t.checkpointAsync() : t.checkpoint()) : null;
      // A checkpoint at an evaluated step carries that evaluation's measurements (the trade-off chart's points).
      if (ck && ev?.extra) ck.metrics = { ...ck.metrics, extra: ev.extra };
      return { m, failed: false as const, ev, ck, stoppedBy, stop: until || halt };
    });
    yield { type: 'step', metrics: r.m };
    if (r.failed) {
      yield { type: 'end', outcome: { reason: 'failed', step: t.step, error: nonFiniteError(t.badStepCount, r.m.skipped) } };
      return;
    }
    if (r.ev) yield { type: 'eval', metrics: r.ev };
    if (r.ck) yield { type: 'checkpoint', checkpoint: r.ck };
    if (r.stoppedBy !== null) {
      yield { type: 'end', outcome: { reason: 'done', step: t.step, stoppedBy: r.stoppedBy } };
      return;
    }
    if (r.stop) {
      yield { type: 'end', outcome: { reason: 'stopped', step: t.step } };
      return;
    }
    await yieldToEventLoop();
  }
  yield { type: 'end', outcome: { reason: 'done', step: t.step } };
}

/** Drives trainingLoop to its end with one handler per event (awaited); returns the outcome. */
export async function runTraining(trainer: Trainer, o: LoopOptions, on: (e: Exclude<LoopEvent, { type: 'end' }>) => void | Promise<void>): Promise<LoopOutcome> {
  for await (const e of trainingLoop(trainer, o)) {
    if (e.type === 'end') return e.outcome;
    await on(e);
  }
  throw new Error('the training loop ended without an outcome');
}
