// What an evaluation's details (EvalMetrics.details, by metric name) hold for the page, read defensively:
// they are whatever the plugged-in metrics sent (src/train/quality: generation, cka), kept as JSON.
import type { EvalMetrics } from '../protocol/messages';

export interface Confusion {
  labels: string[];
  counts: number[][];
}

export interface Answer {
  prompt: string;
  expected: string;
  output: string;
  exact?: boolean;
}

export interface Memorised {
  count: number;
  of: number;
  examples: Answer[];
  sentence: string | null;
}

export const obj = (x: unknown): Record<string, unknown> | null => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : null);
export const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const str = (x: unknown): x is string => typeof x === 'string';

export function answers(x: unknown): Answer[] {
  if (!Array.isArray(x)) return [];
  return x.filter((a): a is Answer => !!obj(a) && str((a as Answer).prompt) && str((a as Answer).expected) && str((a as Answer).output));
}

/** details.generation.confusion: labels (rows expected, columns predicted) and counts with a last "other" column. */
export function readConfusion(details: EvalMetrics['details']): Confusion | null {
  const c = obj(obj(obj(details)?.generation)?.confusion);
  if (!c || !Array.isArray(c.labels) || !Array.isArray(c.counts) || !c.labels.every(str)) return null;
  const labels = c.labels as string[];
  const counts = c.counts as unknown[];
  if (counts.length !== labels.length || !counts.every((r) => Array.isArray(r) && r.length === labels.length + 1 && r.every(num))) return null;
  return { labels, counts: counts as number[][] };
}

/** details.generation.memorised: answers that are a training answer but not their own (sentence: the engine's warning, when it sends one). */
export function readMemorised(details: EvalMetrics['details']): Memorised | null {
  const m = obj(obj(obj(details)?.generation)?.memorised);
  if (!m || !num(m.count) || !num(m.of)) return null;
  return { count: m.count, of: m.of, examples: answers(m.examples), sentence: str(m.sentence) ? m.sentence : null };
}

/** details.cka.layers: each layer's linear CKA with the base model (1 = the same representation). */
export function readCka(details: EvalMetrics['details']): number[] | null {
  const l = obj(obj(details)?.cka)?.layers;
  return Array.isArray(l) && l.length > 0 && l.every(num) ? l : null;
}


/** details.generation.samples: the first few generated answers. */
export function readSamples(details: EvalMetrics['details']): Answer[] {
  return answers(obj(obj(details)?.generation)?.samples);
}
