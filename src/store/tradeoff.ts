// The Trade-off section (knowing when to stop): a run's checkpoints, and the points explore-path measured
// along the path from the base model to them, as points of a task-vs-forgetting chart (x: how much the
// forgetting probe's loss rose, y: the run's criterion), with the Pareto front, the best, final and
// recommended points and the recommendation's sentence. The decisions themselves come from
// src/train/quality/decisions.ts (the ones the worker makes); this module only arranges them for the
// page. Actions: src/app/tradeoff.ts.
import type { CheckpointInfo, EvalMetrics, ExplorePathResult, ProtocolError, RunQuality, RunSummary, TradeoffPoint, TradeoffRecipe, TrainConfig } from '../protocol/messages';
import { DEFAULT_TRAIN, type BestMetric } from '../train/config';
import { methodLabel } from './training';
import { bestEval, criterionValue, forgetPctOf, formatCriterion, formatSkillChange, higherIsBetter, paretoFront, plainRecipe, recommend, sameRecipe } from '../train/quality/decisions';
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

/** One overlaid run's checkpoints as list-checkpoints gave them; `key` says which listing of the run they are (overlayKey). */
export interface OverlayRead {
  phase: Phase;
  list: CheckpointInfo[];
  error: ProtocolError | null;
  key: string;
}

/** Other runs on the same data shown on the chart with the shown run (their checkpoints, read on demand). */
export interface OverlayState {
  /** The runs the user ticked (shown while they are comparable with the shown run). */
  runIds: string[];
  reads: Record<string, OverlayRead>;
}

export interface TradeoffSlice {
  /** The run whose checkpoints `checkpoints` holds (read here only when the Checkpoints panel shows another run). */
  runId: string | null;
  phase: Phase;
  checkpoints: CheckpointInfo[];
  error: ProtocolError | null;
  explore: ExploreState;
  apply: ApplyState;
  overlay: OverlayState;
}

export function initialTradeoff(): TradeoffSlice {
  return {
    runId: null,
    phase: 'idle',
    checkpoints: [],
    error: null,
    explore: { phase: 'idle', runId: null, startedAt: null, progress: null, result: null, error: null, cancelled: null },
    apply: { phase: 'idle', pointId: null, made: null, error: null },
    overlay: { runIds: [], reads: {} },
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

export { plainRecipe, sameRecipe };

/** The checkpoints (sorted by step) whose evaluation measured `criterion`, as trade-off points `step-<step>`. */
export function checkpointPoints(sorted: readonly CheckpointInfo[], criterion: BestMetric): TradeoffPoint[] {
  const out: TradeoffPoint[] = [];
  for (const c of sorted) {
    const e = checkpointEval(c);
    const task = criterionValue(e, criterion);
    if (task !== null) out.push({ id: `step-${c.step}`, step: c.step, label: `step ${c.step}`, task, forgetPct: forgetPctOf(e) });
  }
  return out;
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
  const base = checkpointPoints(sorted, criterion);
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

// ---------------------------------------------------------------------------------------------------
// Other runs on the same chart: LoRA against OFT, with and without replay, on the same data

/** Colours of the other runs' series (colour-blind-safe, none the shown run's blue nor the path's purple). */
export const OVERLAY_COLOURS: readonly string[] = ['#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#7a7a00'];
export type MarkerShape = 'square' | 'triangle' | 'triangle-down' | 'cross' | 'star';
/** Their marker shapes (the shown run keeps circles for checkpoints and diamonds for path points). */
export const OVERLAY_MARKERS: readonly MarkerShape[] = ['square', 'triangle', 'triangle-down', 'cross', 'star'];

/** The colour and marker of the `i`th comparable run (comparableRuns order). */
export function overlayStyle(i: number): { colour: string; marker: MarkerShape } {
  return { colour: OVERLAY_COLOURS[i % OVERLAY_COLOURS.length]!, marker: OVERLAY_MARKERS[i % OVERLAY_MARKERS.length]! };
}

/** "10%", "2.5%": a replay share for a legend. */
function sharePct(f: number): string {
  return `${Math.round(f * 1000) / 10}%`;
}

/**
 * A run as a chart legend names it: its name, how it was trained and its replay share ("run A · LoRA r8",
 * "run B · OFT b32 · replay 10%"); its model too when it is not `shown`'s. Runs of one name (a run is
 * named after its dataset) are told apart by their order among `runs` of that name: "numbers #2".
 */
export function runSeriesLabel(r: RunSummary, shown?: RunSummary | null, runs?: readonly RunSummary[]): string {
  const t = r.job?.train as Partial<TrainConfig> | undefined;
  const same = (runs ?? []).filter((x) => x.name === r.name).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  const parts = [same.length > 1 && same.some((x) => x.id === r.id) ? `${r.name} #${same.findIndex((x) => x.id === r.id) + 1}` : r.name];
  parts.push(t?.mode ? methodLabel({ mode: t.mode, lora: t.lora, oft: t.oft }) : 'made outside the page');
  if (t?.replayFraction && t.replayFraction > 0) parts.push(`replay ${sharePct(t.replayFraction)}`);
  const model = r.job?.model?.name;
  if (shown && model && shown.job?.model?.name && model !== shown.job.model.name) parts.push(model);
  return parts.join(' · ');
}

/**
 * The runs whose checkpoints can share `shown`'s chart: trained on the same data (the same
 * RunSummary.dataset.fingerprint) and judged by the same criterion; not `shown` itself nor a branch that
 * holds a point of a path (its parent's chart has it). Oldest first: the order fixes each one's colour
 * and marker, whichever are ticked.
 */
export function comparableRuns(runs: readonly RunSummary[], shown: RunSummary): RunSummary[] {
  const fp = shown.dataset?.fingerprint;
  if (!fp) return [];
  const { criterion } = runCriterion(shown);
  return runs
    .filter((r) => r.id !== shown.id && r.dataset?.fingerprint === fp && !isRecipeBranch(r) && runCriterion(r).criterion === criterion)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Which listing of a run a read holds: a new checkpoint (or one deleted) makes the read stale. */
export function overlayKey(r: Pick<RunSummary, 'checkpointCount' | 'latestCheckpoint'>): string {
  return `${r.checkpointCount}:${r.latestCheckpoint?.step ?? '-'}`;
}

export interface OverlayPoint extends TradeoffPoint {
  /** Unique over the chart: `<runId>:<point id>`. */
  key: string;
  runId: string;
  /** On the Pareto front of every point shown (all runs). */
  onFront: boolean;
}

export interface OverlaySeries {
  runId: string;
  name: string;
  /** "run B · OFT b32 · replay 10%". */
  label: string;
  colour: string;
  marker: MarkerShape;
  phase: Phase;
  error: ProtocolError | null;
  /** Its checkpoints that measured the criterion and the forgetting probe (the chart's x and y). */
  points: OverlayPoint[];
  checkpointCount: number;
  /** Checkpoints measured by the criterion but without the probe: not placed. */
  unplaced: number;
  onFront: number;
}

export interface ComparisonView {
  /** The shown run in a legend. */
  mainLabel: string;
  /** The ticked runs that are comparable, in comparableRuns order. */
  series: OverlaySeries[];
  /** Ids of the shown run's points on the front of all shown points. */
  mainFront: Set<string>;
  /** What the front says: how many of its points each run holds, the best task value and the least forgetting. */
  sentence: string | null;
}

const CRITERION_WORDS: Record<BestMetric, string> = { val_loss: 'validation loss', exact_match: 'exact match' };

/**
 * The shown run's chart with the ticked comparable runs' checkpoints: each run a series, and the Pareto
 * front (paretoFront, decisions.ts) recomputed over every placed point of every run, so the method or
 * recipe that dominates is the one whose points make the front. Points without the forgetting probe are
 * not placed (the chart has no x for them).
 */
export function comparisonView(v: TradeoffView, shown: RunSummary, runs: readonly RunSummary[], overlay: OverlayState): ComparisonView {
  const c = v.criterion;
  const mainLabel = runSeriesLabel(shown, null, runs);
  const series: OverlaySeries[] = [];
  comparableRuns(runs, shown).forEach((r, i) => {
    if (!overlay.runIds.includes(r.id)) return;
    const read = overlay.reads[r.id];
    const measured = checkpointPoints([...(read?.list ?? [])].sort((a, b) => a.step - b.step), c);
    const placed = measured.filter((p) => p.forgetPct !== null);
    series.push({
      runId: r.id,
      name: r.name,
      label: runSeriesLabel(r, shown, runs),
      ...overlayStyle(i),
      phase: read?.phase ?? 'busy',
      error: read?.error ?? null,
      points: placed.map((p) => ({ ...p, key: `${r.id}:${p.id}`, runId: r.id, onFront: false })),
      checkpointCount: read?.list.length ?? 0,
      unplaced: measured.length - placed.length,
      onFront: 0,
    });
  });
  const mainPlaced = v.points.filter((p) => p.forgetPct !== null);
  const all = [...mainPlaced.map((p) => ({ ...p, id: `${v.runId}:${p.id}` })), ...series.flatMap((s) => s.points.map((p) => ({ ...p, id: p.key })))];
  const front = new Set(paretoFront(all, c).map((p) => p.id));
  const mainFront = new Set(mainPlaced.filter((p) => front.has(`${v.runId}:${p.id}`)).map((p) => p.id));
  for (const s of series) {
    for (const p of s.points) p.onFront = front.has(p.key);
    s.onFront = s.points.filter((p) => p.onFront).length;
  }
  let sentence: string | null = null;
  const withPoints = series.filter((s) => s.points.length);
  if (withPoints.length && mainPlaced.length) {
    const counts = [{ label: mainLabel, n: mainFront.size }, ...withPoints.map((s) => ({ label: s.label, n: s.onFront }))].sort((a, b) => b.n - a.n);
    const part = (x: { label: string; n: number }) => `${x.label}: ${x.n ? `${x.n} point${x.n === 1 ? '' : 's'}` : 'none'}`;
    const labelled = [...mainPlaced.map((p) => ({ p, label: mainLabel })), ...withPoints.flatMap((s) => s.points.map((p) => ({ p, label: s.label })))];
    const best = [...labelled].sort((a, b) => byCriterion(c)(a.p, b.p))[0]!;
    const least = [...labelled].sort((a, b) => a.p.forgetPct! - b.p.forgetPct! || byCriterion(c)(a.p, b.p))[0]!;
    sentence =
      `Pareto front of the ${withPoints.length + 1} runs: ${counts.map(part).join('; ')}. ` +
      `Best ${CRITERION_WORDS[c]}: ${formatCriterion(c, best.p.task)} (${best.label}, ${best.p.label}); ` +
      `least forgetting: general skill ${formatSkillChange(least.p.forgetPct!)} (${least.label}, ${least.p.label}).`;
  }
  return { mainLabel, series, mainFront, sentence };
}
