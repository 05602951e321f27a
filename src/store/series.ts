// The chart's data: one column per series over optimizer steps, appended in place (the store bumps a
// version number instead of copying arrays on every step). Validation loss and the evaluation's other
// measurements (EvalMetrics.extra: the forgetting probe, generated answers) are null between evaluations.
// An objective's own statistics (StepMetrics.extra, e.g. DPO's rewards/margins, and their eval_ versions)
// get a column each by name, in stepExtra and evalExtra, made when a name first appears.
import type { RunMetricPoint } from '../protocol/messages';

export interface Series {
  step: number[];
  loss: (number | null)[];
  smooth: (number | null)[];
  val: (number | null)[];
  lr: (number | null)[];
  grad: (number | null)[];
  /** extra.probe_nll_delta_pct: how much the forgetting probe's loss rose, in %. */
  probe: (number | null)[];
  /** extra.exact_match, token_f1, label_accuracy: generated held-out answers, fractions in [0, 1]. */
  exact: (number | null)[];
  f1: (number | null)[];
  label: (number | null)[];
  /** StepPoint.extra by name (DPO: 'rewards/chosen', …, 'logps/rejected'), null where a step lacks it. */
  stepExtra: Record<string, (number | null)[]>;
  /** EvalPoint.extra by name ('eval_rewards/accuracies', …), null between evaluations. */
  evalExtra: Record<string, (number | null)[]>;
}

/** Which column holds which EvalMetrics.extra measurement. */
export const EXTRA_COLUMNS = { probe: 'probe_nll_delta_pct', exact: 'exact_match', f1: 'token_f1', label: 'label_accuracy' } as const;
type ExtraColumn = keyof typeof EXTRA_COLUMNS;
const EXTRA_KEYS = Object.keys(EXTRA_COLUMNS) as ExtraColumn[];

export function emptySeries(): Series {
  return { step: [], loss: [], smooth: [], val: [], lr: [], grad: [], probe: [], exact: [], f1: [], label: [], stepExtra: {}, evalExtra: {} };
}

/** The plain columns (everything but the by-name ones). */
function columns(s: Series): (number | null)[][] {
  return [s.step, s.loss, s.smooth, s.val, s.lr, s.grad, s.probe, s.exact, s.f1, s.label, ...Object.values(s.stepExtra), ...Object.values(s.evalExtra)];
}

/** The column `name` of `group`, as long as the steps (made, all null, when it first appears). */
function column(group: Record<string, (number | null)[]>, name: string, length: number): (number | null)[] {
  let c = group[name];
  if (!c) {
    c = new Array<number | null>(length).fill(null);
    group[name] = c;
  }
  return c;
}

/** Appends one point's by-name values (null in every other column of the group). */
function pushExtra(group: Record<string, (number | null)[]>, extra: Record<string, number> | undefined, length: number): void {
  for (const name of Object.keys(extra ?? {})) column(group, name, length);
  for (const [name, c] of Object.entries(group)) c.push(finite(extra?.[name]));
}

/** A column by name of `group`, or all null when the run has none (what a chart draws). */
export function extraColumn(s: Series, group: 'stepExtra' | 'evalExtra', name: string): (number | null)[] {
  return s[group][name] ?? new Array<number | null>(s.step.length).fill(null);
}

function finite(x: number | undefined): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

/** Drops every point at or after `step` (a run continued from an earlier checkpoint). */
function truncateFrom(s: Series, step: number): void {
  let n = s.step.length;
  while (n > 0 && s.step[n - 1]! >= step) n--;
  if (n === s.step.length) return;
  for (const col of columns(s)) col.length = n;
}

/** Index of `step`, or -1. Steps are increasing, and the one asked for is almost always the last. */
function indexOf(s: Series, step: number): number {
  for (let i = s.step.length - 1; i >= 0; i--) {
    if (s.step[i] === step) return i;
    if (s.step[i]! < step) return -1;
  }
  return -1;
}

export function addStep(s: Series, m: { step: number; loss: number; smoothLoss: number; lr: number; gradNorm: number; skipped?: string; extra?: Record<string, number> }): void {
  truncateFrom(s, m.step);
  const n = s.step.length;
  s.step.push(m.step);
  s.loss.push(m.skipped ? null : finite(m.loss));
  s.smooth.push(finite(m.smoothLoss));
  s.val.push(null);
  s.lr.push(finite(m.lr));
  s.grad.push(m.skipped ? null : finite(m.gradNorm));
  for (const k of EXTRA_KEYS) s[k].push(null);
  pushExtra(s.stepExtra, m.skipped ? undefined : m.extra, n);
  pushExtra(s.evalExtra, undefined, n);
}

export function addEval(s: Series, step: number, valLoss: number, extra?: Record<string, number>): void {
  const i = indexOf(s, step);
  if (i >= 0) {
    s.val[i] = finite(valLoss);
    for (const k of EXTRA_KEYS) s[k][i] = finite(extra?.[EXTRA_COLUMNS[k]]);
    for (const [name, v] of Object.entries(extra ?? {})) column(s.evalExtra, name, s.step.length)[i] = finite(v);
    return;
  }
  // An evaluation with no step point (e.g. before the first step): its own x.
  truncateFrom(s, step + 1e-9);
  const n = s.step.length;
  s.step.push(step);
  s.loss.push(null);
  s.smooth.push(null);
  s.val.push(finite(valLoss));
  s.lr.push(null);
  s.grad.push(null);
  for (const k of EXTRA_KEYS) s[k].push(finite(extra?.[EXTRA_COLUMNS[k]]));
  pushExtra(s.stepExtra, undefined, n);
  pushExtra(s.evalExtra, extra, n);
}

export function seriesFromPoints(points: readonly RunMetricPoint[]): Series {
  const s = emptySeries();
  for (const p of points) {
    if (p.type === 'step') addStep(s, p);
    else if (p.type === 'eval') addEval(s, p.step, p.valLoss, p.extra);
  }
  return s;
}

/** Points with a validation loss. */
export function valPoints(s: Series): number {
  return count(s.val);
}

/** Points with a value in `col`. */
export function count(col: readonly (number | null)[]): number {
  return col.reduce<number>((n, v) => n + (v === null ? 0 : 1), 0);
}
