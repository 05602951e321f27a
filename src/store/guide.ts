// What the Train panel tells a first-time user around a run, from measurements only: a warning before
// training when the data is too small for the chosen steps, a time estimate from a measured speed on the
// loaded model, and at the end of a run a plain verdict from its held-out evaluations (exact match of the
// generated answers when it measured them, else the validation loss), first evaluation to last.
// Plain data and arithmetic (no TF.js, no DOM). The thresholds are rules of thumb, named below.
import type { TrainConfig } from '../protocol/messages';
import { totalSteps } from '../train/config';
import type { Series } from './series';

// ---------------------------------------------------------------------------------------------------
// Before training: is the data enough for the steps?

/** Fewer training examples than this: a task is rarely learned from so few (rule of thumb). */
export const FEW_EXAMPLES = 50;
/** More passes than this over each example: the model tends to learn the examples by heart (rule of thumb). */
export const MANY_PASSES = 20;
/** Fewer optimizer steps than this: too few for LoRA to change much (rule of thumb). */
export const FEW_STEPS = 30;

/** How many times the planned steps go over each training example. */
export function passesOverData(c: Pick<TrainConfig, 'steps' | 'epochs' | 'batchSize' | 'gradAccum'>, trainExamples: number): number {
  return (totalSteps(c, trainExamples) * c.batchSize * c.gradAccum) / Math.max(1, trainExamples);
}

/** Why the data looks too small (or the run too short) for these settings, in plain words; null when it looks fine. */
export function dataSizeWarning(c: Pick<TrainConfig, 'steps' | 'epochs' | 'batchSize' | 'gradAccum'>, trainExamples: number): string | null {
  if (trainExamples <= 0) return null;
  const steps = totalSteps(c, trainExamples);
  const passes = passesOverData(c, trainExamples);
  const times = passes >= 10 ? String(Math.round(passes)) : String(Math.round(passes * 10) / 10);
  const parts: string[] = [];
  if (trainExamples < FEW_EXAMPLES) {
    parts.push(`Only ${trainExamples} training example${trainExamples === 1 ? '' : 's'}: a model rarely learns a task from fewer than about ${FEW_EXAMPLES}; add examples if you can.`);
  }
  if (passes > MANY_PASSES) {
    parts.push(`${steps} steps go over each example about ${times} times, so the model may learn these examples by heart rather than the task: more data helps more than more steps.`);
  }
  if (steps < FEW_STEPS) parts.push(`Only ${steps} step${steps === 1 ? '' : 's'}: likely too few to learn anything; pick Thorough or raise Steps.`);
  return parts.length ? parts.join(' ') : null;
}

// ---------------------------------------------------------------------------------------------------
// Before training: how long will it take?

/** A training speed measured on the loaded model (a run's steps: tokens fed per second). */
export interface MeasuredSpeed {
  runId: string;
  runName: string;
  /** The model it was measured on (numParams and arch identify it). */
  model: { name: string; numParams: number; arch: string };
  tokensPerSec: number;
  /** Steps it was measured over. */
  steps: number;
  /** Measured by timing one step of the current settings before a run (measure-step), not by a run. */
  timed?: boolean;
}

/**
 * What a timed step depends on: the model, the dataset and how it is read, the adapter and its shape, the
 * objective and the batch. A change of any of these times a step again; the length of the run does not.
 */
export function stepTimingKey(
  model: { name: string; numParams: number } | null,
  datasetId: string | null,
  maxSeqLen: number | null,
  c: Pick<TrainConfig, 'mode' | 'lora' | 'oft' | 'prompt' | 'objective' | 'batchSize' | 'gradAccum'>,
): string | null {
  if (!model || !datasetId) return null;
  return JSON.stringify([model.name, model.numParams, datasetId, maxSeqLen, c.mode, c.objective, c.batchSize, c.gradAccum, c.mode === 'lora' ? c.lora : c.mode === 'oft' ? c.oft : c.mode === 'prompt' ? c.prompt : null]);
}

/** The median tokens/s of a run's stored or streamed step points (null when it has none). */
export function medianTokensPerSec(points: readonly { type: string; tokensPerSec?: number }[]): { tokensPerSec: number; steps: number } | null {
  const v = points.flatMap((p) => (p.type === 'step' && typeof p.tokensPerSec === 'number' && Number.isFinite(p.tokensPerSec) && p.tokensPerSec > 0 ? [p.tokensPerSec] : []));
  if (!v.length) return null;
  v.sort((a, b) => a - b);
  const m = v.length >> 1;
  return { tokensPerSec: v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2, steps: v.length };
}

export interface TimeEstimate {
  /** Seconds of training steps (evaluations come on top). */
  seconds: number;
  steps: number;
  evaluations: number;
  speed: MeasuredSpeed;
}

/**
 * The time the planned steps take at a measured speed: steps x examples per step x tokens fed per example
 * (the doctor's count) / tokens per second. null without a speed measured on this model.
 */
export function estimateTime(
  c: Pick<TrainConfig, 'steps' | 'epochs' | 'batchSize' | 'gradAccum' | 'evalEvery'>,
  data: { trainExamples: number; tokensPerExample: number },
  speed: MeasuredSpeed | null,
  model: { numParams: number; arch: string } | null,
): TimeEstimate | null {
  if (!speed || !model || speed.model.numParams !== model.numParams || speed.model.arch !== model.arch) return null;
  if (!(data.trainExamples > 0 && data.tokensPerExample > 0 && speed.tokensPerSec > 0)) return null;
  const steps = totalSteps(c, data.trainExamples);
  const tokens = steps * c.batchSize * c.gradAccum * data.tokensPerExample;
  const evaluations = c.evalEvery > 0 ? Math.ceil(steps / c.evalEvery) : 0;
  return { seconds: tokens / speed.tokensPerSec, steps, evaluations, speed };
}

/** "about 40 s", "about 3 min", "about 1 h 20 min". */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s`;
  const min = Math.round(seconds / 60);
  if (min < 60) return `about ${min} min`;
  return `about ${Math.floor(min / 60)} h ${min % 60} min`;
}

// ---------------------------------------------------------------------------------------------------
// After training: did it learn?

export interface EvalRow {
  step: number;
  valLoss: number | null;
  /** Exact match of the generated held-out answers (0..1), when measured. */
  exact: number | null;
}

/** The evaluations of a run's series, in step order. */
export function evalRows(s: Series): EvalRow[] {
  const rows: EvalRow[] = [];
  for (let i = 0; i < s.step.length; i++) {
    const valLoss = s.val[i] ?? null;
    const exact = s.exact[i] ?? null;
    if (valLoss !== null || exact !== null) rows.push({ step: s.step[i]!, valLoss, exact });
  }
  return rows;
}

/** yes: learned the task; learning: measurably better, not there yet; no: no sign of learning; unknown: nothing to judge by. */
export type VerdictKind = 'yes' | 'learning' | 'no' | 'unknown';

export interface Verdict {
  kind: VerdictKind;
  text: string;
}

/** Exact match at or above this share of held-out answers: the task is learned (rule of thumb). */
export const LEARNED_EXACT = 0.8;
/** A validation loss that fell by less than this share: no sign of learning (rule of thumb). */
export const MIN_LOSS_DROP = 0.05;

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
const TRY_MORE = 'try Thorough, more data, or a higher learning rate (Advanced)';

/** The base model measured on the held-out split before the run's first step (TrainOutcome.baseline), as the verdict reads it. */
export interface BaseRow {
  valLoss: number | null;
  exact: number | null;
  /** What was measured: "base model", or the start of a run that continued an adapter. */
  label: string;
}

/** A run's baseline (TrainOutcome.baseline: { valLoss, extra }) as a BaseRow, or null. */
export function baseRow(b: { of?: string; valLoss?: number | null; extra?: Record<string, number> | null } | null | undefined): BaseRow | null {
  if (!b) return null;
  const v = typeof b.valLoss === 'number' && Number.isFinite(b.valLoss) ? b.valLoss : null;
  const e = b.extra?.exact_match;
  return { valLoss: v, exact: typeof e === 'number' && Number.isFinite(e) ? e : null, label: !b.of || b.of === 'base model' ? 'base model' : `start: ${b.of}` };
}

/**
 * Whether the run learned, in one sentence, from its held-out evaluations: the base model's measurement
 * before the first step (when the run has one) or else its first evaluation, to its last evaluation.
 */
export function runVerdict(rows: readonly EvalRow[], base: BaseRow | null = null): Verdict {
  const answered = rows.filter((r) => r.exact !== null);
  if (answered.length) {
    const last = answered[answered.length - 1]!;
    const from = base?.exact != null ? { value: base.exact, label: base.label } : answered.length > 1 ? { value: answered[0]!.exact!, label: `step ${answered[0]!.step}` } : null;
    const figure = from ? `Held-out exact match ${pct(from.value)} (${from.label}) → ${pct(last.exact!)} (step ${last.step})` : `Held-out exact match ${pct(last.exact!)} at step ${last.step}`;
    if (last.exact! >= LEARNED_EXACT) return { kind: 'yes', text: `${figure}: the model learned this task. Check its answers in Compare.` };
    if (last.exact! === 0) return { kind: 'no', text: `${figure}: the model did not learn this task yet — ${TRY_MORE}.` };
    if (from && last.exact! > from.value) return { kind: 'learning', text: `${figure}: it is learning, but most held-out answers are still wrong — train longer (Thorough) or add data.` };
    if (from) return { kind: 'no', text: `${figure}: no better than the ${from.label} — ${TRY_MORE}.` };
    return { kind: 'learning', text: `${figure}: some held-out answers are right, with nothing earlier to compare — ${TRY_MORE}.` };
  }
  const losses = rows.filter((r) => r.valLoss !== null);
  if (!losses.length) return { kind: 'unknown', text: 'No held-out evaluation ran, so nothing says whether the model learned: keep some validation examples (Data) and evaluate (Validate every).' };
  const last = losses[losses.length - 1]!;
  const generate = 'set “Held-out answers generated” above 0 (When to stop) to measure exact answers';
  const from = base?.valLoss != null ? { value: base.valLoss, label: base.label } : losses.length > 1 ? { value: losses[0]!.valLoss!, label: `step ${losses[0]!.step}` } : null;
  if (!from) {
    return { kind: 'unknown', text: `Validation loss ${last.valLoss!.toFixed(3)} at step ${last.step}, the only evaluation: nothing to compare it with. Evaluate more often (Validate every), or ${generate}.` };
  }
  const drop = (from.value - last.valLoss!) / from.value;
  const figure = `Validation loss ${from.value.toFixed(3)} (${from.label}) → ${last.valLoss!.toFixed(3)} (step ${last.step})`;
  if (drop >= MIN_LOSS_DROP) return { kind: 'learning', text: `${figure}, ${Math.round(drop * 100)}% lower: the model is learning. Whether its answers are right shows in Compare, or ${generate}.` };
  return { kind: 'no', text: `${figure}: it barely moved, so the model did not learn much yet — ${TRY_MORE}.` };
}
