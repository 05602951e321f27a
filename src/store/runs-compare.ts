// Runs compared side by side: two or more stored runs (each at a checkpoint of its own) on one chart of
// their training and validation losses (by step or by training tokens seen), a table of every setting that
// differs and of their final and best metrics, and the held-out examples with each run's output in a
// column. Also the runs list's order (by best validation loss or held-out score) and each run's parent.
// Plain data and arithmetic: the slice (`runsCompare`), its actions in src/app/runs-compare.ts, the view
// in src/ui/iterate/RunsCompareView.tsx.
import type { CheckpointInfo, CompareResult, CompareRow, ProtocolError, RunMetricPoint, RunSummary } from '../protocol/messages';
import type { Phase } from './store';
import { runMethodLabel } from './training';

/** One run of the comparison: its metrics (run-metrics) and its held-out outputs at `step` (compare-heldout). */
export interface ComparedRun {
  runId: string;
  /** The checkpoint the held-out outputs are made with (null: the run's newest). */
  step: number | null;
  metrics: { phase: Phase; points: RunMetricPoint[]; error: ProtocolError | null };
  heldout: { phase: Phase; result: CompareResult | null; error: ProtocolError | null };
  /** Its checkpoints' steps (for the checkpoint picker). */
  steps: number[];
}

export type CompareAxis = 'step' | 'tokens';
export type RunsSort = 'newest' | 'val-loss' | 'heldout';

export interface RunsCompareSlice {
  /** Runs ticked in the Runs panel, in the order they were ticked. */
  picked: string[];
  /** The comparison shown (null: none); its runs in the order they were picked. */
  view: { runs: ComparedRun[]; axis: CompareAxis; allSettings: boolean } | null;
  /** The runs list's order. */
  sort: RunsSort;
}

export function initialRunsCompare(): RunsCompareSlice {
  return { picked: [], view: null, sort: 'newest' };
}

export function togglePicked(picked: readonly string[], runId: string, on: boolean): string[] {
  const rest = picked.filter((x) => x !== runId);
  return on ? [...rest, runId] : rest;
}

/** Why the picked runs cannot be compared (null: they can). */
export function compareRunsBlocker(picked: readonly string[], runs: readonly Pick<RunSummary, 'id'>[]): string | null {
  const known = picked.filter((id) => runs.some((r) => r.id === id));
  if (known.length < 2) return `Tick two or more runs to compare them (${known.length} ticked).`;
  return null;
}

// ---------------------------------------------------------------------------------------------------
// The runs list: order and parent.

/** A run's held-out score: the highest exact match among its measured checkpoints (figures), else null. */
export function heldoutScore(r: Pick<RunSummary, 'latestCheckpoint'>, figures: readonly CheckpointInfo[] | undefined): number | null {
  let best: number | null = null;
  for (const c of [...(figures ?? []), ...(r.latestCheckpoint ? [r.latestCheckpoint] : [])]) {
    const v = c.extra?.exact_match;
    if (typeof v === 'number' && Number.isFinite(v) && (best === null || v > best)) best = v;
  }
  return best;
}

/**
 * The runs list in the chosen order: newest first (as stored), lowest best validation loss first, or
 * highest held-out score first; runs without the figure go last, newest first among themselves. By
 * validation loss, runs are ranked within their objective (SFT cross-entropy, DPO's loss): the two losses
 * measure different things, so SFT runs come first, then DPO runs, each group in its own order.
 */
export function sortRuns<R extends Pick<RunSummary, 'id' | 'updatedAt' | 'bestValLoss' | 'latestCheckpoint'> & { job?: { train?: { objective?: string } } | null }>(
  list: readonly R[],
  by: RunsSort,
  figures: Record<string, { checkpoints: CheckpointInfo[] } | undefined> = {},
): R[] {
  const newest = (a: R, b: R) => b.updatedAt - a.updatedAt;
  if (by === 'newest') return [...list].sort(newest);
  const key = (r: R): number | null => (by === 'val-loss' ? r.bestValLoss : heldoutScore(r, figures[r.id]?.checkpoints));
  const dir = by === 'val-loss' ? 1 : -1;
  const group = (r: R) => (by === 'val-loss' && r.job?.train?.objective === 'dpo' ? 1 : 0);
  return [...list].sort((a, b) => {
    if (group(a) !== group(b)) return group(a) - group(b);
    const ka = key(a);
    const kb = key(b);
    if (ka === null || kb === null) return ka === kb ? newest(a, b) : ka === null ? 1 : -1;
    return ka === kb ? newest(a, b) : dir * (ka - kb);
  });
}

/** The run a run came from: a branch (rewound) or one whose adapter continued another's checkpoint. */
export interface RunParent {
  kind: 'branch' | 'continued';
  runId: string;
  /** The parent's name, null when it was deleted. */
  name: string | null;
  step: number | null;
}

export function runParent(r: Pick<RunSummary, 'parentRunId' | 'parentCheckpointStep' | 'job'>, runs: readonly Pick<RunSummary, 'id' | 'name'>[]): RunParent | null {
  const from = r.job?.startFrom;
  const name = (id: string) => runs.find((x) => x.id === id)?.name ?? null;
  if (from) return { kind: 'continued', runId: from.runId, name: name(from.runId), step: from.step };
  if (r.parentRunId) return { kind: 'branch', runId: r.parentRunId, name: name(r.parentRunId), step: r.parentCheckpointStep };
  return null;
}

/** "continued from run A at step 10" / "branch of run A at step 20" (null for a run that started from the base model). */
export function parentText(p: RunParent | null): string | null {
  if (!p) return null;
  const who = p.name ?? 'a deleted run';
  const at = p.step !== null ? ` at step ${p.step}` : '';
  return p.kind === 'continued' ? `continued from ${who}${at}` : `branch of ${who}${at}`;
}

// ---------------------------------------------------------------------------------------------------
// The overlaid curves.

export interface RunCurves {
  /** Training steps, the smoothed training loss at each, and the training tokens seen up to it. */
  steps: number[];
  loss: number[];
  tokens: number[];
  /** Evaluations: step, validation loss, training tokens seen up to that step. */
  evalSteps: number[];
  val: number[];
  evalTokens: number[];
}

/**
 * A run's curves from its stored points: the smoothed training loss per step and the validation loss
 * per evaluation, each with the training tokens seen so far (the sum of the steps' tokens). A step stored
 * twice (a resumed run) counts once, its last record.
 */
export function runCurves(points: readonly RunMetricPoint[]): RunCurves {
  const steps = new Map<number, { loss: number; tokens: number }>();
  const evals = new Map<number, number>();
  for (const p of points) {
    if (p.type === 'step' && Number.isFinite(p.smoothLoss)) steps.set(p.step, { loss: p.smoothLoss, tokens: p.tokens });
    else if (p.type === 'eval' && Number.isFinite(p.valLoss)) evals.set(p.step, p.valLoss);
  }
  const out: RunCurves = { steps: [], loss: [], tokens: [], evalSteps: [], val: [], evalTokens: [] };
  let seen = 0;
  const sorted = [...steps.entries()].sort((a, b) => a[0] - b[0]);
  for (const [step, v] of sorted) {
    seen += v.tokens;
    out.steps.push(step);
    out.loss.push(v.loss);
    out.tokens.push(seen);
  }
  const tokensAt = (step: number): number => {
    let t = 0;
    for (let i = 0; i < out.steps.length && out.steps[i]! <= step; i++) t = out.tokens[i]!;
    return t;
  };
  for (const [step, v] of [...evals.entries()].sort((a, b) => a[0] - b[0])) {
    out.evalSteps.push(step);
    out.val.push(v);
    out.evalTokens.push(tokensAt(step));
  }
  return out;
}

/** Where a continued run's curves start: its parent's step and tokens at the checkpoint it started from, when the parent is compared too. */
export function curveOffset(r: Pick<RunSummary, 'job'>, parents: ReadonlyMap<string, RunCurves>): { step: number; tokens: number } {
  const from = r.job?.startFrom;
  const parent = from ? parents.get(from.runId) : undefined;
  if (!from || !parent) return { step: 0, tokens: 0 };
  let tokens = 0;
  for (let i = 0; i < parent.steps.length && parent.steps[i]! <= from.step; i++) tokens = parent.tokens[i]!;
  return { step: from.step, tokens };
}

export interface OverlaySeries {
  runId: string;
  kind: 'train' | 'val';
  label: string;
  values: (number | null)[];
}

/**
 * Every run's training and validation loss over one shared x axis (steps or tokens seen; a continued
 * run's x starts where its parent's checkpoint was, when the parent is compared too): the columns a line
 * chart draws, null where a series has no point at that x.
 */
export function overlayColumns(
  runs: readonly { runId: string; label: string; curves: RunCurves; offset: { step: number; tokens: number } }[],
  axis: CompareAxis,
): { x: number[]; series: OverlaySeries[] } {
  const xs = new Set<number>();
  const at = (r: (typeof runs)[number], kind: 'train' | 'val'): Map<number, number> => {
    const c = r.curves;
    const m = new Map<number, number>();
    const xsOf = kind === 'train' ? (axis === 'step' ? c.steps : c.tokens) : axis === 'step' ? c.evalSteps : c.evalTokens;
    const ys = kind === 'train' ? c.loss : c.val;
    const off = axis === 'step' ? r.offset.step : r.offset.tokens;
    xsOf.forEach((x, i) => m.set(x + off, ys[i]!));
    return m;
  };
  const maps = runs.flatMap((r) => (['train', 'val'] as const).map((kind) => ({ r, kind, m: at(r, kind) })));
  for (const { m } of maps) for (const x of m.keys()) xs.add(x);
  const x = [...xs].sort((a, b) => a - b);
  const series = maps.map(({ r, kind, m }) => ({
    runId: r.runId,
    kind,
    label: `${r.label} · ${kind === 'train' ? 'training loss' : 'validation loss'}`,
    values: x.map((v) => m.get(v) ?? null),
  }));
  return { x, series };
}

// ---------------------------------------------------------------------------------------------------
// Settings and metrics.

/** A run's settings as rows: the method, the data (name and fingerprint), where it started, then every training setting by its dotted name. */
export function runSettings(r: Pick<RunSummary, 'job' | 'dataset' | 'parentRunId' | 'parentCheckpointStep'>, runs: readonly Pick<RunSummary, 'id' | 'name'>[]): Record<string, string> {
  const out: Record<string, string> = {};
  const job = r.job;
  out['method'] = job ? runMethodLabel(job.train) : 'made outside the page';
  out['dataset'] = job?.data.name ?? r.dataset?.name ?? '–';
  const fp = r.dataset?.fingerprint;
  out['dataset fingerprint'] = fp ? fp.replace(/^sha256:/, '').slice(0, 12) : '–';
  out['examples (train + validation)'] = job ? `${job.data.trainExamples} + ${job.data.valExamples}` : '–';
  out['started from'] = parentText(runParent({ ...r, job }, runs)) ?? 'the base model';
  if (job) {
    out['model'] = job.model.label || job.model.name;
    flatten(job.train as unknown as Record<string, unknown>, '', out);
  }
  return out;
}

function flatten(o: Record<string, unknown>, prefix: string, out: Record<string, string>): void {
  for (const [k, v] of Object.entries(o)) {
    const key = prefix + k;
    if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v as Record<string, unknown>, `${key}.`, out);
    else out[key] = Array.isArray(v) ? v.join(', ') : v === null || v === undefined ? '–' : String(v);
  }
}

export interface SettingRow {
  name: string;
  values: string[];
  differs: boolean;
}

/** Every setting of the runs as rows, the ones that differ first (in the settings' order), then (with `all`) the ones they share. */
export function settingsTable(settings: readonly Record<string, string>[], all = false): SettingRow[] {
  const names: string[] = [];
  for (const s of settings) for (const k of Object.keys(s)) if (!names.includes(k)) names.push(k);
  const rows = names.map((name) => {
    const values = settings.map((s) => s[name] ?? '–');
    return { name, values, differs: values.some((v) => v !== values[0]) };
  });
  const differ = rows.filter((r) => r.differs);
  return all ? [...differ, ...rows.filter((r) => !r.differs)] : differ;
}

export interface RunFigures {
  finalStep: number | null;
  finalTrainLoss: number | null;
  finalValLoss: number | null;
  bestValLoss: number | null;
  bestValStep: number | null;
  /** Highest exact match of the run's evaluations (generated held-out answers), null when never measured. */
  bestExact: number | null;
  tokensSeen: number;
  /** The held-out comparison at the picked checkpoint (tuned side), when made. */
  heldout: { step: number; exact: number; overlap: number; loss: number | null } | null;
}

/** A run's final and best figures from its points, and its held-out comparison. */
export function runFigures(points: readonly RunMetricPoint[], heldout: CompareResult | null): RunFigures {
  const c = runCurves(points);
  let finalTrainLoss: number | null = null;
  let finalStep: number | null = null;
  for (const p of points) {
    if (p.type === 'step' && Number.isFinite(p.loss) && (finalStep === null || p.step >= finalStep)) {
      finalStep = p.step;
      finalTrainLoss = p.loss;
    }
  }
  let bestValLoss: number | null = null;
  let bestValStep: number | null = null;
  c.val.forEach((v, i) => {
    if (bestValLoss === null || v < bestValLoss) {
      bestValLoss = v;
      bestValStep = c.evalSteps[i]!;
    }
  });
  let bestExact: number | null = null;
  for (const p of points) {
    const v = p.type === 'eval' ? p.extra?.exact_match : undefined;
    if (typeof v === 'number' && Number.isFinite(v) && (bestExact === null || v > bestExact)) bestExact = v;
  }
  return {
    finalStep,
    finalTrainLoss,
    finalValLoss: c.val.length ? c.val[c.val.length - 1]! : null,
    bestValLoss,
    bestValStep,
    bestExact,
    tokensSeen: c.tokens.length ? c.tokens[c.tokens.length - 1]! : 0,
    heldout: heldout ? { step: heldout.step, exact: heldout.totals.tuned.exact, overlap: heldout.totals.tuned.overlap, loss: heldout.totals.tuned.loss } : null,
  };
}

/** Which run is best on each figure (index into the runs; null when no run has it or they tie). */
export function bestOf(values: readonly (number | null)[], lower: boolean): number | null {
  let best: number | null = null;
  let tie = false;
  values.forEach((v, i) => {
    if (v === null) return;
    const b = best === null ? null : values[best]!;
    if (b === null || (lower ? v < b : v > b)) {
      best = i;
      tie = false;
    } else if (v === b) tie = true;
  });
  return tie ? null : best;
}

// ---------------------------------------------------------------------------------------------------
// Held-out examples, one column per run.

export interface ExampleCell {
  output: string;
  exact: boolean;
  loss: number | null;
  /** The line of this example in that run's dataset. */
  line: number;
  /** The expected output in that run's dataset (it may have been fixed in a later version). */
  expected: string;
}

export interface ExampleRow {
  prompt: string;
  /** The expected output of the first run that has the example. */
  expected: string;
  /** One cell per compared run (null: that run's held-out set lacks the example). */
  cells: (ExampleCell | null)[];
  /** The runs' outputs are not all the same. */
  differ: boolean;
  /** The runs' expected outputs are not all the same (the data was fixed between them). */
  expectedDiffers: boolean;
}

/**
 * The held-out examples of the runs matched by prompt (runs trained on different versions of a dataset
 * share their prompts, while a fixed record's expected output changes): a row per prompt in the first
 * run's order (then the others' extra ones), a cell per run, and whether the outputs differ.
 */
export function exampleRows(results: readonly (CompareResult | null)[]): ExampleRow[] {
  const order: string[] = [];
  const byRun = results.map((res) => {
    const m = new Map<string, CompareRow>();
    for (const row of res?.rows ?? []) {
      if (!m.has(row.prompt)) m.set(row.prompt, row);
      if (!order.includes(row.prompt)) order.push(row.prompt);
    }
    return m;
  });
  return order.map((prompt) => {
    const cells = byRun.map((m): ExampleCell | null => {
      const row = m.get(prompt);
      return row ? { output: row.tuned, exact: row.tunedExact, loss: row.tunedLoss, line: row.line, expected: row.expected } : null;
    });
    const present = cells.filter((c): c is ExampleCell => c !== null);
    return {
      prompt,
      expected: present[0]?.expected ?? '',
      cells,
      // A run whose outputs are not made yet (null result) neither differs nor agrees.
      differ: present.some((c) => c.output !== present[0]!.output) || cells.some((c, i) => c === null && results[i] !== null),
      expectedDiffers: present.some((c) => c.expected !== present[0]!.expected),
    };
  });
}
