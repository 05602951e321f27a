// Generated held-out answers at every evaluation: what the validation loss cannot say. The model answers a
// fixed subset of the held-out records greedily, stopping as the job's replies stop (heldOutEval), and the
// answers are scored against the expected ones:
//
//   exact_match     share answered exactly (surrounding whitespace ignored)
//   token_f1        mean word-overlap F1 (SQuAD-style, overlapF1)
//   label_accuracy  when the answers are labels (see labelLike): share whose label is the expected one, with a
//                   confusion table (rows expected, columns predicted, plus "other")
//   memorised_*     when they are not labels: share / count of answers that are exactly a TRAINING answer but
//                   not the expected one, the sign of a model that recalls answers instead of doing the task
//                   (with labels every wrong answer is another label, so the measure would only repeat the errors)
//   gen_examples    how many records were answered
import type { RecordEncoder } from '../../data/encode';
import type { DataRecord } from '../../data/types';
import { tokenContext, type CausalLM } from '../../model/causal-lm';
import type { LanguageModel } from '../../model/load';
import { shuffle } from '../../util/random';
import { heldOutEval, promptAndAnswer, type HeldOutRow } from '../job';
import type { EvalMetric } from '../run-loop';
import { inEvalMode } from './probe';

/** The seed of the fixed subset of held-out records answered at every evaluation. */
const SUBSET_SEED = 0x5eed;
/** Samples and memorised examples shown in the detail. */
const SHOWN = 5;
/** memorisationSentence speaks from this share of memorised answers, and at least this many. */
export const MEMORISED_SHARE = 0.25;
export const MEMORISED_MIN = 2;

/** How labels compare: case, surrounding whitespace and surrounding punctuation ignored ("Happy." = "happy"). */
export function labelKey(s: string): string {
  return s
    .trim()
    .toLowerCase()
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, '');
}

/**
 * The labels when the expected answers are label-like, else null. Rule: with n answers (training and
 * held-out together) and k distinct ones (compared by labelKey), they are labels when some answer repeats
 * (k < n) and k <= max(2, min(20, floor(n / 3))): on average every label is the answer at least three
 * times, and there are at most 20 of them (a confusion table stays readable). Labels are in their first
 * spelling, sorted.
 */
export function labelLike(answers: readonly string[]): string[] | null {
  const first = new Map<string, string>();
  for (const a of answers) if (!first.has(labelKey(a))) first.set(labelKey(a), a.trim());
  const n = answers.length;
  const k = first.size;
  if (!(k >= 1 && k < n && k <= Math.max(2, Math.min(20, Math.floor(n / 3))))) return null;
  return [...first.values()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface ConfusionTable {
  /** Row i, column j < labels.length: answers expected labels[i] and predicted labels[j]; column labels.length: predicted none of them ("other"). */
  labels: string[];
  counts: number[][];
}

/**
 * Expected vs predicted labels (compared by labelKey). `labels` default: the distinct expected ones, sorted;
 * an expected label missing from `labels` gets its own row and column.
 */
export function confusionTable(expected: readonly string[], predicted: readonly string[], labels?: readonly string[]): ConfusionTable {
  if (expected.length !== predicted.length) throw new Error(`${expected.length} expected answers but ${predicted.length} predicted`);
  const all = [...(labels ?? labelLike(expected) ?? [...new Set(expected.map((e) => e.trim()))].sort())];
  const index = new Map(all.map((l, i) => [labelKey(l), i]));
  for (const e of expected) {
    if (!index.has(labelKey(e))) {
      index.set(labelKey(e), all.length);
      all.push(e.trim());
    }
  }
  const counts = all.map(() => new Array<number>(all.length + 1).fill(0));
  expected.forEach((e, i) => counts[index.get(labelKey(e))!]![index.get(labelKey(predicted[i]!)) ?? all.length]!++);
  return { labels: all, counts };
}

/** Share of answers whose label is the expected one (the confusion table's diagonal over its total). */
export function labelAccuracy(t: ConfusionTable): number {
  const total = t.counts.reduce((a, row) => a + row.reduce((b, x) => b + x, 0), 0);
  return total ? t.counts.reduce((a, row, i) => a + row[i]!, 0) / total : NaN;
}

export interface Memorisation {
  /** Answers that are exactly a training answer but not the expected one. */
  count: number;
  /** Answers looked at. */
  of: number;
  /** count / of (NaN when of = 0). */
  share: number;
  /** Which answers (indices into outputs). */
  indices: number[];
}

/** Answers that are exactly (surrounding whitespace ignored) a training answer, but not their own expected answer. */
export function memorisation(outputs: readonly string[], expected: readonly string[], trainAnswers: readonly string[]): Memorisation {
  if (outputs.length !== expected.length) throw new Error(`${outputs.length} answers but ${expected.length} expected`);
  const train = new Set(trainAnswers.map((a) => a.trim()));
  const indices: number[] = [];
  outputs.forEach((o, i) => {
    const a = o.trim();
    if (a && train.has(a) && a !== expected[i]!.trim()) indices.push(i);
  });
  return { count: indices.length, of: outputs.length, share: outputs.length ? indices.length / outputs.length : NaN, indices };
}

/** What to tell the user, or null when memorised answers are few (under MEMORISED_SHARE, or under MEMORISED_MIN). */
export function memorisationSentence(m: Pick<Memorisation, 'count' | 'of'>): string | null {
  if (!(m.of > 0) || m.count < MEMORISED_MIN || m.count / m.of < MEMORISED_SHARE) return null;
  return `${m.count} of ${m.of} held-out answers are training answers: the model memorised answers instead of learning the task.`;
}

export interface GenerationDetails {
  confusion?: ConfusionTable;
  /** sentence: what to tell the user (memorisationSentence), null below its thresholds. */
  memorised?: { count: number; of: number; sentence: string | null; examples: { prompt: string; expected: string; output: string }[] };
  samples: { prompt: string; expected: string; output: string; exact: boolean }[];
}

/** The numbers of one round of answers. exact_match and token_f1 are NaN when no record was answered. */
export interface GenerationValues {
  gen_examples: number;
  exact_match: number;
  token_f1: number;
  /** Label-like answers only. */
  label_accuracy?: number;
  /** Answers that are not labels only. */
  memorised_share?: number;
  memorised_count?: number;
}

/** Texts in the detail are cut to this many characters: every evaluation stores its detail with the run. */
const SHOWN_CHARS = 300;

function clip(s: string): string {
  return s.length > SHOWN_CHARS ? `${s.slice(0, SHOWN_CHARS - 1)}…` : s;
}

/** The values and details of answered rows. */
export function scoreAnswers(rows: readonly HeldOutRow[], labels: readonly string[] | null, trainAnswers: readonly string[]): { values: GenerationValues; details: GenerationDetails } {
  const n = rows.length;
  const values: GenerationValues = {
    gen_examples: n,
    exact_match: n ? rows.filter((r) => r.exact).length / n : NaN,
    token_f1: n ? rows.reduce((a, r) => a + r.overlap, 0) / n : NaN,
  };
  const details: GenerationDetails = { samples: rows.slice(0, SHOWN).map((r) => ({ prompt: clip(r.prompt), expected: clip(r.expected), output: clip(r.output), exact: r.exact })) };
  if (!n) return { values, details };
  const outputs = rows.map((r) => r.output);
  const expected = rows.map((r) => r.expected);
  if (labels) {
    details.confusion = confusionTable(expected, outputs, labels);
    values.label_accuracy = labelAccuracy(details.confusion);
  } else {
    const m = memorisation(outputs, expected, trainAnswers);
    values.memorised_share = m.share;
    values.memorised_count = m.count;
    details.memorised = { count: m.count, of: m.of, sentence: memorisationSentence(m), examples: m.indices.slice(0, SHOWN).map((i) => ({ prompt: clip(rows[i]!.prompt), expected: clip(rows[i]!.expected), output: clip(rows[i]!.output) })) };
  }
  return { values, details };
}

export interface GenerationOptions {
  model: LanguageModel;
  encoder: RecordEncoder;
  /** Held-out records (those with an expected answer are answered). */
  val: DataRecord[];
  /** Training records (their answers decide labels and memorisation). */
  train: DataRecord[];
  maxExamples: number;
  signal?: AbortSignal;
}

/**
 * What every round of answers shares: at most `maxExamples` held-out records, the same ones every time (a
 * seeded choice, kept in file order), among those with an expected answer whose prompt fits the model's
 * context; the labels (labelLike over training and held-out answers) and the training answers.
 */
function plan(o: GenerationOptions) {
  const answersOf = (rs: DataRecord[]) => rs.map((r) => promptAndAnswer(r)?.expected).filter((a): a is string => a !== undefined);
  const trainAnswers = answersOf(o.train);
  const labels = labelLike([...trainAnswers, ...answersOf(o.val)]);
  const ctx = tokenContext(o.model.lm); // less prompt tuning's virtual tokens
  const candidates = o.val.filter((r) => {
    const pa = promptAndAnswer(r);
    return pa !== null && o.encoder.promptIds(pa.prompt).length < ctx;
  });
  const n = Math.max(0, Math.min(Math.floor(o.maxExamples), candidates.length));
  const chosen = shuffle(
    candidates.map((_, i) => i),
    SUBSET_SEED,
  )
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => candidates[i]!);
  /** Greedy answers (stopping as heldOutEval does) of `lm` as it is, scored. */
  return async (lm: CausalLM) => {
    const res = await heldOutEval({ ...o.model, lm }, o.encoder, chosen, { signal: o.signal, scoreLoss: false });
    return scoreAnswers(res.rows, labels, trainAnswers);
  };
}

/** One round of generated held-out answers with the model as it is now (outside a training run). */
export async function generationScores(o: GenerationOptions): Promise<GenerationValues> {
  return (await plan(o)(o.model.lm)).values;
}

/**
 * Generated held-out answers as a plugged-in metric ('generation'), the same records at every evaluation,
 * with the trainer's model as it is (dropout off while it generates; the adapter is left as it was). Only
 * gen_examples when no record was answered.
 */
export function generationMetric(o: GenerationOptions): EvalMetric {
  const answer = plan(o);
  return {
    name: 'generation',
    async measure(trainer) {
      const { values, details } = await inEvalMode(trainer.adapter, () => answer(trainer.lm));
      const numbers = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v))) as Record<string, number>;
      return { values: numbers, details: { ...details } };
    },
  };
}
