// Knowing when to stop (issue 13): the decisions made from a run's evaluations, as pure functions.
// - earlyStopping: a StopRule for the one training loop with Hugging Face EarlyStoppingCallback's
//   semantics (an evaluation improves when it beats the best of the earlier ones by more than minDelta;
//   the run stops after `patience` evaluations in a row without one).
// - bestEval / paretoFront / recommend / summariseRun: which checkpoint to keep, trading the task metric
//   (the run's criterion) against forgetting (the probe's NLL increase, extra.probe_nll_delta_pct), and
//   the sentence that tells the user why.
import type { BestMetric } from '../config';
import type { EvalMetrics } from '../loop';
import type { StopRule } from '../run-loop';

/** The forgetting probe's measurement in EvalMetrics.extra: how much the probe NLL rose, in %. */
export const FORGET_PCT_KEY = 'probe_nll_delta_pct';

/** The criterion's value in one evaluation, or null when the evaluation lacks it (or it is not finite). */
export function criterionValue(e: EvalMetrics, c: BestMetric): number | null {
  const v = c === 'val_loss' ? e.valLoss : e.extra?.exact_match;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function higherIsBetter(c: BestMetric): boolean {
  return c === 'exact_match';
}

/** The forgetting probe's NLL increase (%) in one evaluation, or null when the probe is off. */
export function forgetPctOf(e: EvalMetrics): number | null {
  const v = e.extra?.[FORGET_PCT_KEY];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

const CRITERION_NAME: Record<BestMetric, string> = { val_loss: 'validation loss', exact_match: 'exact match' };

/** Up to one decimal, no trailing ".0": 92, 92.5, 1.8. */
function oneDecimal(x: number): string {
  return String(Math.round(x * 10) / 10);
}

/** A criterion value for the user: validation loss with 3 significant digits, exact match (a fraction) in %. */
export function formatCriterion(c: BestMetric, v: number): string {
  if (c === 'exact_match') return `${oneDecimal(v * 100)}%`;
  return Math.abs(v) >= 1000 ? String(Math.round(v)) : v.toPrecision(3);
}

/** The general-skill change a probe NLL increase means (its negative), signed: "−1.8%", "+0.4%", "−11%". */
export function formatSkillChange(forgetPct: number): string {
  const x = -forgetPct;
  const mag = Math.abs(x) >= 10 ? String(Math.round(Math.abs(x))) : oneDecimal(Math.abs(x));
  if (Number(mag) === 0) return '0%';
  return `${x < 0 ? '\u2212' : '+'}${mag}%`;
}

function better(c: BestMetric, a: number, b: number): boolean {
  return higherIsBetter(c) ? a > b : a < b;
}

/**
 * Stops the run after `patience` evaluations in a row without an improvement (Hugging Face
 * EarlyStoppingCallback): an evaluation improves when it beats the best of the earlier evaluations by
 * more than minDelta (the first one with a value always does); evaluations without the criterion's value
 * count neither way. Reads the whole history each time, so a resumed run (LoopOptions.history) keeps
 * its count. patience 0 never stops.
 */
export function earlyStopping(o: { patience: number; minDelta: number; criterion: BestMetric }): StopRule {
  const { patience, minDelta, criterion: c } = o;
  if (!(patience > 0)) return () => null;
  return (evals) => {
    let best: { v: number; step: number } | null = null;
    let without = 0;
    for (const e of evals) {
      const v = criterionValue(e, c);
      if (v === null) continue;
      if (best === null || (better(c, v, best.v) && Math.abs(v - best.v) > minDelta)) without = 0;
      else without++;
      // The best so far moves on any improvement, however small (as the Trainer's best_metric does).
      if (best === null || better(c, v, best.v)) best = { v, step: e.step };
    }
    if (best === null || without < patience) return null;
    const delta = c === 'exact_match' ? `${oneDecimal(minDelta * 100)} percentage points` : String(minDelta);
    const n = `${without} evaluation${without === 1 ? '' : 's'}`;
    return `early stopping: ${CRITERION_NAME[c]} did not improve by more than ${delta} for ${n} (best ${formatCriterion(c, best.v)} at step ${best.step})`;
  };
}

/** The evaluation with the best criterion value (ties: the earlier step), or null when none has it. */
export function bestEval(evals: readonly EvalMetrics[], c: BestMetric): EvalMetrics | null {
  let best: EvalMetrics | null = null;
  let bestV = 0;
  for (const e of evals) {
    const v = criterionValue(e, c);
    if (v === null) continue;
    if (best === null || better(c, v, bestV) || (v === bestV && e.step < best.step)) {
      best = e;
      bestV = v;
    }
  }
  return best;
}

/** How a trade-off point's weights are made from a stored checkpoint (see path.ts applyRecipe). */
export interface TradeoffRecipe {
  fromStep: number;
  /** The update's scale: 0 = base model, 1 = the checkpoint (applied after any rewind). */
  alpha: number;
  /** Which layers are rewound (absent: none). */
  layers?: 'all' | 'first-half' | 'last-half';
  /** What they are rewound to: the base model or an earlier checkpoint's step (default 'base'). */
  rewindTo?: number | 'base';
}

/** One candidate on the task-vs-forgetting chart: a checkpoint, or weights derived from one (recipe). */
export interface TradeoffPoint {
  id: string;
  step: number;
  label: string;
  /** The criterion's value. */
  task: number;
  /** The probe NLL increase in %; null when the probe is off. */
  forgetPct: number | null;
  recipe?: TradeoffRecipe;
}

/** a dominates b: at least as good on the task and forgets no more, strictly better on one. */
function dominates(a: TradeoffPoint, b: TradeoffPoint, c: BestMetric): boolean {
  const taskGe = a.task === b.task || better(c, a.task, b.task);
  if (!taskGe) return false;
  if (a.forgetPct === null || b.forgetPct === null) {
    // Without forgetting on both sides only the task compares; one-sided values are incomparable.
    return a.forgetPct === null && b.forgetPct === null && better(c, a.task, b.task);
  }
  if (a.forgetPct > b.forgetPct) return false;
  return better(c, a.task, b.task) || a.forgetPct < b.forgetPct;
}

/**
 * The points no other point dominates (at least as good on the task and forgetting no more, strictly
 * better on one), sorted by step. A point without forgetPct is compared only with others without it.
 */
export function paretoFront(points: readonly TradeoffPoint[], c: BestMetric): TradeoffPoint[] {
  return points.filter((p) => !points.some((q) => q !== p && dominates(q, p, c))).sort((a, b) => a.step - b.step);
}

/** Lower ranks first: better task, then less forgetting, then earlier. */
function byTask(c: BestMetric) {
  return (a: TradeoffPoint, b: TradeoffPoint): number => {
    if (a.task !== b.task) return better(c, a.task, b.task) ? -1 : 1;
    const fa = a.forgetPct ?? 0;
    const fb = b.forgetPct ?? 0;
    if (fa !== fb) return fa - fb;
    return a.step - b.step;
  };
}

/** The recipe's weights are its checkpoint's own (no scaling, no rewound layers); no recipe is a checkpoint. */
export function plainRecipe(r: TradeoffRecipe | undefined): boolean {
  return !r || (r.alpha === 1 && !r.layers);
}

/** Two recipes make the same weights. */
export function sameRecipe(a: TradeoffRecipe | undefined | null, b: TradeoffRecipe | undefined | null): boolean {
  return !!a && !!b && a.fromStep === b.fromStep && a.alpha === b.alpha && a.layers === b.layers && (a.rewindTo ?? 'base') === (b.rewindTo ?? 'base');
}

function isPlain(p: TradeoffPoint): boolean {
  return plainRecipe(p.recipe);
}

function describe(p: TradeoffPoint, c: BestMetric): string {
  return `${CRITERION_NAME[c]} ${formatCriterion(c, p.task)}${p.forgetPct !== null ? `, general skill ${formatSkillChange(p.forgetPct)}` : ''}`;
}

export interface Recommendation {
  point: TradeoffPoint;
  /** What to keep and why, for the user. */
  sentence: string;
  /** The plain point at the run's final step, when there is one. */
  final: TradeoffPoint | null;
}

/**
 * The point to keep: the best task metric among those within the forgetting budget (forgetPct <=
 * budgetPct); ties go to less forgetting, then the earlier step. With the probe off (no point has
 * forgetPct) the best by the criterion alone; when no point fits the budget, the one forgetting least.
 */
export function recommend(points: readonly TradeoffPoint[], o: { criterion: BestMetric; budgetPct: number; finalStep: number }): Recommendation | null {
  const c = o.criterion;
  const usable = points.filter((p) => Number.isFinite(p.task));
  if (!usable.length) return null;
  const final = usable.find((p) => p.step === o.finalStep && isPlain(p)) ?? null;
  const probed = usable.filter((p) => p.forgetPct !== null);
  const budget = `${oneDecimal(o.budgetPct)}%`;
  let point: TradeoffPoint;
  let head: string;
  if (!probed.length) {
    point = [...usable].sort(byTask(c))[0]!;
    head = `${point.label}${point === final ? ' (the final step)' : ''}: ${describe(point, c)}, the best ${CRITERION_NAME[c]} (no forgetting probe, so general skill was not weighed)`;
  } else {
    const within = probed.filter((p) => p.forgetPct! <= o.budgetPct);
    if (within.length) {
      point = within.sort(byTask(c))[0]!;
      head = `${point.label}${point === final ? ' (the final step)' : ''}: ${describe(point, c)}`;
    } else {
      point = [...probed].sort((a, b) => a.forgetPct! - b.forgetPct! || byTask(c)(a, b))[0]!;
      head = `no checkpoint stays within the ${budget} forgetting budget; ${point.label}${point === final ? ' (the final step)' : ''} forgets least: ${describe(point, c)}`;
    }
  }
  let tail = '';
  if (final && final !== point) {
    const task = formatCriterion(c, final.task);
    const costlier = final.forgetPct !== null && point.forgetPct !== null && final.forgetPct > point.forgetPct;
    const skill = final.forgetPct !== null ? `${better(c, final.task, point.task) && costlier ? ' but' : ','} ${formatSkillChange(final.forgetPct)}` : '';
    tail = `; the final step ${final.step} is ${task}${skill}`;
  }
  return { point, sentence: `${head}${tail}.`, final };
}

export interface RunSummary {
  /** The checkpointed step with the best criterion value (ties: the earlier). */
  bestStep: number | null;
  /** The checkpointed step recommend() picks. */
  recommendedStep: number | null;
  finalStep: number;
  sentence: string;
}

/**
 * The run's best and recommended steps among the evaluated steps that have a checkpoint (a
 * recommendation must be loadable), with the recommendation's sentence. A step evaluated twice (a
 * resumed run) counts with its last evaluation.
 */
export function summariseRun(evals: readonly EvalMetrics[], o: { criterion: BestMetric; budgetPct: number; finalStep: number; checkpointSteps: readonly number[] }): RunSummary {
  const c = o.criterion;
  const saved = new Set(o.checkpointSteps);
  const byStep = new Map<number, EvalMetrics>();
  for (const e of evals) if (saved.has(e.step)) byStep.set(e.step, e);
  const kept = [...byStep.values()].sort((a, b) => a.step - b.step);
  const points: TradeoffPoint[] = [];
  for (const e of kept) {
    const task = criterionValue(e, c);
    if (task !== null) points.push({ id: `step-${e.step}`, step: e.step, label: `step ${e.step}`, task, forgetPct: forgetPctOf(e) });
  }
  const r = recommend(points, { criterion: c, budgetPct: o.budgetPct, finalStep: o.finalStep });
  return {
    bestStep: bestEval(kept, c)?.step ?? null,
    recommendedStep: r?.point.step ?? null,
    finalStep: o.finalStep,
    sentence: r?.sentence ?? `no checkpointed evaluation measured ${CRITERION_NAME[c]}, so there is no checkpoint to recommend.`,
  };
}
