// The Trade-off section (knowing when to stop): a run's checkpoints, and the points explore-path measured
// along the path from the base model to them, as points of a task-vs-forgetting chart (x: how much the
// forgetting probe's loss rose, y: the run's criterion), with the Pareto front, the best, final and
// recommended points and the recommendation's sentence. The decisions themselves come from
// src/train/quality/decisions.ts (the ones the worker makes); this module only arranges them for the
// page. Actions: src/app/tradeoff.ts.
import type { CheckpointInfo, EvalMetrics, ExplorePathResult, ProtocolError, RunQuality, RunSummary, TradeoffPoint, TradeoffRecipe, TrainConfig } from '../protocol/messages';
import { DEFAULT_TRAIN, type BestMetric } from '../train/config';
import { bestEval, criterionValue, forgetPctOf, formatCriterion, formatSkillChange, higherIsBetter, paretoFront, recommend } from '../train/quality/decisions';
import type { AppState, Phase } from './store';

export interface ExploreProgress {
  /** The point measured last (the worker's label, e.g. "step 40 × 0.5"). */
  label: string;
  done: number;
  total: number | null;
  fraction: number;
  etaMs: number | null;
}

export interface ExploreState {
  phase: Phase;
  /** The run explored (or being explored). */
  runId: string | null;
  startedAt: number | null;
  progress: ExploreProgress | null;
  result: ExplorePathResult | null;
  error: ProtocolError | null;
  /** What Cancel did, for the user (null: nothing was cancelled). */
  cancelled: string | null;
}

export interface ApplyState {
  phase: Phase;
  /** The point being (or last) applied. */
  pointId: string | null;
  /** The branch the last apply made, and its checkpoint. */
  made: { runId: string; runName: string; step: number } | null;
  error: ProtocolError | null;
}

export interface TradeoffSlice {
  /** The run whose checkpoints `checkpoints` holds (read here only when the Checkpoints panel shows another run). */
  runId: string | null;
  phase: Phase;
  checkpoints: CheckpointInfo[];
  error: ProtocolError | null;
  explore: ExploreState;
  apply: ApplyState;
}

export function initialTradeoff(): TradeoffSlice {
  return {
    runId: null,
    phase: 'idle',
    checkpoints: [],
    error: null,
    explore: { phase: 'idle', runId: null, startedAt: null, progress: null, result: null, error: null, cancelled: null },
    apply: { phase: 'idle', pointId: null, made: null, error: null },
  };
}

/** A branch apply-recipe made: its parent's chart holds it as a point (its recipe), so that chart stays shown. */
export function isRecipeBranch(r: Pick<RunSummary, 'recipe' | 'parentRunId'> | undefined): boolean {
  return !!r && r.recipe != null && typeof r.recipe === 'object' && r.parentRunId !== null;
}

/** The run the section shows: the selected run, or the parent of a selected branch that holds an applied point. */
export function tradeoffRunId(s: Pick<AppState, 'selection' | 'runs'>): string | null {
  const id = s.selection.runId;
  if (!id) return null;
  const r = s.runs.list.find((x) => x.id === id);
  if (r && isRecipeBranch(r) && s.runs.list.some((x) => x.id === r.parentRunId)) return r.parentRunId;
  return id;
}

/** The shown run's checkpoints: the Checkpoints panel's list when it shows the same run, else the section's own read. */
export function tradeoffCheckpoints(s: Pick<AppState, 'selection' | 'runs' | 'checkpoints' | 'tradeoff'>): { phase: Phase; list: CheckpointInfo[]; error: ProtocolError | null } {
  const id = tradeoffRunId(s);
  if (!id) return { phase: 'idle', list: [], error: null };
  if (s.checkpoints.runId === id) return { phase: s.checkpoints.phase, list: s.checkpoints.list, error: s.checkpoints.error };
  if (s.tradeoff.runId === id) return { phase: s.tradeoff.phase, list: s.tradeoff.checkpoints, error: s.tradeoff.error };
  return { phase: 'busy', list: [], error: null };
}

// ---------------------------------------------------------------------------------------------------
// The chart's points

export type PointKind = 'checkpoint' | 'path';

export interface ChartPoint extends TradeoffPoint {
  /** checkpoint: a stored checkpoint of the run; path: weights derived from one (its recipe), stored only once applied. */
  kind: PointKind;
  onFront: boolean;
  recommended: boolean;
  best: boolean;
  final: boolean;
}

export interface TradeoffView {
  runId: string;
  criterion: BestMetric;
  budgetPct: number;
  /** Every point with a task value: checkpoints first (by step), then the explored path's. */
  points: ChartPoint[];
  recommended: ChartPoint | null;
  /** Why the recommended point (the worker's sentence; computed here while the run has no decision yet). */
  sentence: string | null;
  /** Where the recommendation comes from: the explored path, the run's stored decision, or the checkpoints so far. */
  source: 'explored' | 'run' | 'so-far' | null;
  bestStep: number | null;
  finalStep: number | null;
  /** The path was explored (points beyond the checkpoints are shown). */
  explored: boolean;
  /** Checkpoints stored, and those whose evaluation measured the criterion. */
  checkpointCount: number;
  measuredCount: number;
  /** Some point has the forgetting probe's value (else the chart has no x). */
  hasProbe: boolean;
}

/** A checkpoint's measurements as the evaluation they came from (what decisions.ts reads). */
export function checkpointEval(c: CheckpointInfo): EvalMetrics {
  return { step: c.step, valLoss: c.valLoss ?? NaN, valPpl: NaN, tokens: 0, extra: c.extra ?? undefined };
}

/** The run's criterion and forgetting budget: its decision's, else its settings', else the engine's defaults. */
export function runCriterion(run: RunSummary | null | undefined): { criterion: BestMetric; budgetPct: number } {
  const q = run?.quality;
  // A configuration stored before these settings existed lacks them.
  const t = run?.job?.train as Partial<TrainConfig> | undefined;
  return {
    criterion: q?.criterion ?? t?.bestMetric ?? DEFAULT_TRAIN.bestMetric,
    budgetPct: q?.budgetPct ?? t?.forgetBudgetPct ?? DEFAULT_TRAIN.forgetBudgetPct,
  };
}

/** The explored path stored with a run (RunQuality.path, written by explore-path), or null. */
export function storedPath(q: RunQuality | null | undefined): Pick<ExplorePathResult, 'points' | 'recommendation'> | null {
  const p = q?.path as { points?: unknown; recommendation?: unknown } | null | undefined;
  if (!p || typeof p !== 'object' || !Array.isArray(p.points)) return null;
  const points = p.points.filter(
    (x): x is TradeoffPoint => !!x && typeof x === 'object' && typeof (x as TradeoffPoint).id === 'string' && typeof (x as TradeoffPoint).task === 'number' && typeof (x as TradeoffPoint).step === 'number',
  );
  const r = p.recommendation as ExplorePathResult['recommendation'] | undefined;
  const recommendation = r && typeof r.pointId === 'string' && typeof r.sentence === 'string' ? r : null;
  return { points, recommendation };
}

/** The recipe's weights are its checkpoint's own (no scaling, no rewound layers). */
export function plainRecipe(r: TradeoffRecipe | undefined): boolean {
  return !r || (r.alpha === 1 && !r.layers);
}

export function sameRecipe(a: TradeoffRecipe | undefined, b: TradeoffRecipe | undefined | null): boolean {
  return !!a && !!b && a.fromStep === b.fromStep && a.alpha === b.alpha && a.layers === b.layers && (a.rewindTo ?? 'base') === (b.rewindTo ?? 'base');
}

/**
 * The chart of a run: its checkpoints with the criterion measured, the explored path's points (a point
 * that is a checkpoint's own weights is that checkpoint), the Pareto front over all of them, and the
 * recommendation: the explored one, else the run's decision, else recommend() over the checkpoints so far.
 */
export function tradeoffView(run: RunSummary, checkpoints: readonly CheckpointInfo[], explored: Pick<ExplorePathResult, 'points' | 'recommendation'> | null): TradeoffView {
  const { criterion, budgetPct } = runCriterion(run);
  const sorted = [...checkpoints].sort((a, b) => a.step - b.step);
  const q = run.quality ?? null;
  const finalStep = q?.finalStep ?? sorted.at(-1)?.step ?? null;
  const bestStep = q?.bestStep ?? bestEval(sorted.map(checkpointEval), criterion)?.step ?? null;
  const base: TradeoffPoint[] = [];
  for (const c of sorted) {
    const e = checkpointEval(c);
    const task = criterionValue(e, criterion);
    if (task !== null) base.push({ id: `step-${c.step}`, step: c.step, label: `step ${c.step}`, task, forgetPct: forgetPctOf(e) });
  }
  const byStep = new Map(base.map((p) => [p.step, p]));
  // Explored ids -> the point shown for them (a measured checkpoint's own weights: that checkpoint).
  const alias = new Map<string, string>();
  const path: TradeoffPoint[] = [];
  for (const p of explored?.points ?? []) {
    if (!Number.isFinite(p.task)) continue;
    const own = plainRecipe(p.recipe) ? byStep.get(p.recipe?.fromStep ?? p.step) : undefined;
    if (own) alias.set(p.id, own.id);
    // A stored checkpoint's point without a recipe is loadable only while that checkpoint is.
    else if (p.recipe) path.push(p);
  }
  const all = [...base, ...path];
  const front = new Set(paretoFront(all, criterion).map((p) => p.id));

  let recId: string | null = null;
  let sentence: string | null = null;
  let source: TradeoffView['source'] = null;
  if (explored?.recommendation) {
    recId = alias.get(explored.recommendation.pointId) ?? explored.recommendation.pointId;
    sentence = explored.recommendation.sentence;
    source = 'explored';
  } else if (q) {
    recId = q.recommendedStep !== null ? `step-${q.recommendedStep}` : null;
    sentence = q.sentence;
    source = 'run';
  } else if (base.length && finalStep !== null) {
    const r = recommend(base, { criterion, budgetPct, finalStep });
    if (r) {
      recId = r.point.id;
      sentence = `So far, ${r.sentence}`;
      source = 'so-far';
    }
  }
  const points: ChartPoint[] = all.map((p) => ({
    ...p,
    kind: base.includes(p) ? 'checkpoint' : 'path',
    onFront: front.has(p.id),
    recommended: p.id === recId,
    best: base.includes(p) && p.step === bestStep,
    final: base.includes(p) && p.step === finalStep,
  }));
  return {
    runId: run.id,
    criterion,
    budgetPct,
    points,
    recommended: points.find((p) => p.recommended) ?? null,
    sentence,
    source,
    bestStep,
    finalStep,
    explored: !!explored,
    checkpointCount: sorted.length,
    measuredCount: base.length,
    hasProbe: all.some((p) => p.forgetPct !== null),
  };
}

/** The explored path to show for a run: this session's exploration of it, else the one stored with it. */
export function exploredFor(s: Pick<AppState, 'tradeoff'>, run: RunSummary): Pick<ExplorePathResult, 'points' | 'recommendation'> | null {
  const e = s.tradeoff.explore;
  if (e.result && e.result.runId === run.id) return e.result;
  return storedPath(run.quality);
}

/** The branch run that already holds a path point (made by apply-recipe from `runId` with the same recipe), if any. */
export function appliedBranch(runs: readonly RunSummary[], runId: string, p: Pick<TradeoffPoint, 'recipe'>): RunSummary | null {
  if (!p.recipe) return null;
  return runs.find((r) => r.parentRunId === runId && isRecipeBranch(r) && sameRecipe(p.recipe, r.recipe as unknown as TradeoffRecipe) && r.latestCheckpoint !== null) ?? null;
}

/** What "Rewind to recommended" does: select a stored checkpoint, or first store a path point (apply-recipe). */
export type RewindTarget = { kind: 'select'; step: number } | { kind: 'apply'; point: ChartPoint };

export function rewindTarget(v: TradeoffView): RewindTarget | null {
  const p = v.recommended;
  if (!p) return null;
  if (p.kind === 'checkpoint') return { kind: 'select', step: p.step };
  return p.recipe ? { kind: 'apply', point: p } : null;
}

// ---------------------------------------------------------------------------------------------------
// Words and numbers for the user

const CRITERION_LABEL: Record<BestMetric, string> = { val_loss: 'val loss', exact_match: 'exact match' };

/** "val loss 0.512" / "exact match 92%". */
export function criterionText(c: BestMetric, v: number): string {
  return `${CRITERION_LABEL[c]} ${formatCriterion(c, v)}`;
}

/** The y axis: "Validation loss (lower is better)" / "Exact match, % (higher is better)". */
export function criterionAxis(c: BestMetric): string {
  return c === 'exact_match' ? 'Exact match, % (higher is better)' : 'Validation loss (lower is better)';
}

/** A criterion value in the chart's units (exact match in %). */
export function chartY(c: BestMetric, v: number): number {
  return c === 'exact_match' ? v * 100 : v;
}

/** "step 40: val loss 0.512, general skill −1.2%" — a point's figures. */
export function pointText(p: Pick<TradeoffPoint, 'label' | 'task' | 'forgetPct'>, c: BestMetric): string {
  return `${p.label}: ${criterionText(c, p.task)}${p.forgetPct !== null ? `, general skill ${formatSkillChange(p.forgetPct)}` : ''}`;
}

/** A checkpoint's figures by the run's criterion, or null when its evaluation did not measure it. */
export function checkpointText(c: CheckpointInfo, criterion: BestMetric): string | null {
  const e = checkpointEval(c);
  const task = criterionValue(e, criterion);
  if (task === null) return null;
  const f = forgetPctOf(e);
  return `${criterionText(criterion, task)}${f !== null ? `, general skill ${formatSkillChange(f)}` : ''}`;
}

/** Better first: how the table lists points (by the criterion, then less forgetting). */
export function byCriterion(c: BestMetric): (a: TradeoffPoint, b: TradeoffPoint) => number {
  return (a, b) => (a.task !== b.task ? (higherIsBetter(c) ? b.task - a.task : a.task - b.task) : (a.forgetPct ?? 0) - (b.forgetPct ?? 0));
}

/** Up to `n` + 1 round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}
