// Token statistics of encoded examples: length summaries with histograms, tokens per epoch, and one
// example rendered token by token (which tokens are trained).
import type { TextTokenizer } from '../tokenizer/tokenizer';
import type { TrainingExample } from './encode';

export interface Histogram {
  /** Bin edges: counts[i] counts values in [edges[i], edges[i + 1]). */
  edges: number[];
  counts: number[];
}

export interface LengthStats {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p95: number;
  histogram: Histogram;
}

/** 1, 2, 5, 10, 20, 50, ... : the smallest such step >= x. */
function niceStep(x: number): number {
  if (x <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

export function histogram(values: number[], bins = 16): Histogram {
  if (values.length === 0) return { edges: [0, 1], counts: [0] };
  let max = 0;
  for (const v of values) if (v > max) max = v;
  const step = niceStep((max + 1) / bins);
  const n = Math.max(1, Math.ceil((max + 1) / step));
  const counts = new Array<number>(n).fill(0);
  for (const v of values) counts[Math.min(n - 1, Math.floor(v / step))]!++;
  return { edges: Array.from({ length: n + 1 }, (_, i) => i * step), counts };
}

export function lengthStats(values: number[], bins = 16): LengthStats {
  if (values.length === 0) return { count: 0, min: 0, max: 0, mean: 0, p50: 0, p95: 0, histogram: histogram([], bins) };
  const sorted = Float64Array.from(values).sort();
  const q = (f: number) => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))]!;
  let sum = 0;
  for (const v of values) sum += v;
  return { count: values.length, min: sorted[0]!, max: sorted[sorted.length - 1]!, mean: sum / values.length, p50: q(0.5), p95: q(0.95), histogram: histogram(values, bins) };
}

export interface RenderedToken {
  id: number;
  /** The text this token adds (decoded in context; '' while a multi-byte character is incomplete). */
  text: string;
  /** Whether the model is trained to predict this token (the first token never is). */
  trained: boolean;
}

/** One example as the model sees it: every token of the sequence, with its text and whether it is trained. */
export function renderExample(tokenizer: TextTokenizer, ex: TrainingExample): RenderedToken[] {
  const ids = [...ex.input, ex.target[ex.target.length - 1]!];
  const dec = tokenizer.createStreamDecoder(false);
  const out = ids.map((id, i) => ({ id, text: dec.push(id), trained: i > 0 && ex.weight[i - 1] === 1 }));
  const rest = dec.flush();
  if (rest && out.length) out[out.length - 1]!.text += rest;
  return out;
}

export interface TokenStats {
  /** Examples measured (all valid ones, or a sample of `sampleOf`). */
  examples: number;
  sampled: boolean;
  sampleOf: number;
  maxSeqLen: number;
  lossOn: 'completion' | 'all';
  format: { 'chat-template': number; plain: number };
  /** Lengths before truncation. */
  prompt: LengthStats;
  completion: LengthStats;
  total: LengthStats;
  /** Tokens fed to the model in one epoch (after truncation), and of those the trained ones (estimated when sampled). */
  tokensPerEpoch: number;
  trainedTokensPerEpoch: number;
  /** Examples whose prompt was cut from the left, and the tokens cut (in the measured examples). */
  truncated: number;
  tokensCut: number;
  /** One example rendered token by token. */
  example: RenderedToken[] | null;
  exampleLine: number | null;
}

export function tokenStats(
  examples: TrainingExample[],
  opts: { maxSeqLen: number; lossOn: 'completion' | 'all'; population?: number; tokenizer?: TextTokenizer; bins?: number },
): TokenStats {
  const population = opts.population ?? examples.length;
  const scale = examples.length ? population / examples.length : 0;
  let fed = 0;
  let trained = 0;
  let truncated = 0;
  let tokensCut = 0;
  const format = { 'chat-template': 0, plain: 0 };
  for (const e of examples) {
    fed += e.input.length;
    for (const w of e.weight) trained += w;
    if (e.truncated) {
      truncated++;
      tokensCut += e.truncated;
    }
    format[e.format]++;
  }
  const first = examples[0];
  return {
    examples: examples.length,
    sampled: population > examples.length,
    sampleOf: population,
    maxSeqLen: opts.maxSeqLen,
    lossOn: opts.lossOn,
    format,
    prompt: lengthStats(
      examples.map((e) => e.promptTokens),
      opts.bins,
    ),
    completion: lengthStats(
      examples.map((e) => e.completionTokens),
      opts.bins,
    ),
    total: lengthStats(
      examples.map((e) => e.fullLength),
      opts.bins,
    ),
    tokensPerEpoch: Math.round(fed * scale),
    trainedTokensPerEpoch: Math.round(trained * scale),
    truncated,
    tokensCut,
    example: first && opts.tokenizer ? renderExample(opts.tokenizer, first) : null,
    exampleLine: first?.line ?? null,
  };
}
