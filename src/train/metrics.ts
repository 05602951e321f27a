// A run's metric records: the one mapping from a training step or an evaluation to what is stored
// (IndexedDB, metrics.jsonl), shown in the page's charts, printed by the CLI and written as CSV.
import type { EvalMetrics, StepMetrics } from './loop';

/** What is stored per step and per evaluation (camelCase, as the page reads it). */
export type MetricPoint =
  | { type: 'step'; step: number; epoch: number; loss: number; smoothLoss: number; lr: number; gradNorm: number; tokens: number; tokensPerSec: number; skipped?: string; extra?: Record<string, number> }
  | { type: 'eval'; step: number; valLoss: number; valPpl: number; tokens: number; extra?: Record<string, number>; details?: Record<string, unknown> };

export type StepPoint = Extract<MetricPoint, { type: 'step' }>;
export type EvalPoint = Extract<MetricPoint, { type: 'eval' }>;

export function stepPoint(m: StepMetrics): StepPoint {
  return { type: 'step', step: m.step, epoch: m.epoch, loss: m.loss, smoothLoss: m.smoothLoss, lr: m.lr, gradNorm: m.gradNorm, tokens: m.tokens, tokensPerSec: m.tokensPerSec, ...(m.skipped ? { skipped: m.skipped } : {}), ...(m.extra ? { extra: m.extra } : {}) };
}

export function evalPoint(e: EvalMetrics): EvalPoint {
  return { type: 'eval', step: e.step, valLoss: e.valLoss, valPpl: e.valPpl, tokens: e.tokens, ...(e.extra ? { extra: e.extra } : {}), ...(e.details ? { details: e.details } : {}) };
}

/** Stored metric points read back as the loop's EvalMetrics (a resumed run's history, a run's decisions). */
export function evalsFromPoints(points: readonly unknown[]): EvalMetrics[] {
  const out: EvalMetrics[] = [];
  for (const p of points) {
    const m = p as Partial<EvalPoint> | null;
    if (m?.type === 'eval' && typeof m.step === 'number' && typeof m.valLoss === 'number') {
      out.push({ step: m.step, valLoss: m.valLoss, valPpl: m.valPpl ?? Math.exp(m.valLoss), tokens: m.tokens ?? 0, ...(m.extra ? { extra: m.extra } : {}) });
    }
  }
  return out;
}

/** The columns of a printed record (CLI lines, CSV), snake_case as in transformers' logs. */
export const METRIC_COLUMNS = ['step', 'epoch', 'loss', 'smooth_loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_sec', 'val_loss', 'val_ppl', 'skipped'] as const;

/** A record as printed: snake_case names, only the fields it has (an evaluation's extra metrics included). */
export function metricRow(p: MetricPoint): Record<string, number | string> {
  if (p.type === 'eval') return { step: p.step, val_loss: p.valLoss, val_ppl: p.valPpl, ...(p.extra ?? {}) };
  return {
    step: p.step,
    epoch: p.epoch,
    loss: p.loss,
    smooth_loss: p.smoothLoss,
    lr: p.lr,
    grad_norm: p.gradNorm,
    tokens: p.tokens,
    tokens_per_sec: p.tokensPerSec,
    ...(p.skipped ? { skipped: p.skipped } : {}),
    ...(p.extra ?? {}),
  };
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV row per step (evaluations merged into their step's row); extra metrics after the fixed columns. */
export function metricsCsv(points: readonly unknown[]): string {
  const rows = new Map<number, Record<string, unknown>>();
  const extra = new Set<string>();
  for (const p of points) {
    const m = p as MetricPoint;
    if (!m || typeof m !== 'object' || typeof m.step !== 'number' || (m.type !== 'step' && m.type !== 'eval')) continue;
    const row = rows.get(m.step) ?? {};
    const r = metricRow(m);
    for (const k of Object.keys(r)) if (!(METRIC_COLUMNS as readonly string[]).includes(k)) extra.add(k);
    rows.set(m.step, Object.assign(row, r));
  }
  const cols = [...METRIC_COLUMNS, ...[...extra].sort()];
  const lines = [cols.join(',')];
  for (const step of [...rows.keys()].sort((a, b) => a - b)) lines.push(cols.map((c) => csvCell(rows.get(step)![c])).join(','));
  return lines.join('\n') + '\n';
}
