// Retained skill ("forgetting"): before training, the base model writes a few short texts of its own
// (continuations of neutral openings, sampled at temperature 1 from a fixed seed), optionally joined by
// chunks of a general-text file the user adds. At every evaluation the model being trained scores the
// same texts: their mean NLL rising above the base model's is what fine-tuning made it forget.
//
// The same sampler also writes replay text (base-model text mixed into training against forgetting),
// from a different random stream, and never a sequence of the probe (the probe is never trained on).
//
// A probe sample is [prompt ids..., continuation ids...]; only the continuation is scored: the positions
// promptLen-1 .. len-2 predict it (the same positions cka.ts reads hidden states at).
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../../model/causal-lm';
import { contextLength } from '../../model/config';
import { generateIds } from '../../model/generate';
import type { LanguageModel } from '../../model/load';
import { seededRandom } from '../../util/random';
import { maskedCrossEntropy } from '../loss';
import { collate, type Example, type TrainableAdapter } from '../loop';
import type { EvalMetric } from '../run-loop';

export interface ProbeSample {
  ids: number[];
  /** ids[0..promptLen-1] are the prompt (not scored); the rest is the continuation. */
  promptLen: number;
  /** 'base': sampled from the base model; 'text': a chunk of the user's general-text file. */
  source: 'base' | 'text';
}

export interface ProbeSet {
  seed: number;
  /** Continuation tokens per sample (what was asked, capped by the model's context). */
  tokens: number;
  samples: ProbeSample[];
  /** Token-weighted mean NLL (nats) of the continuations under the base model (adapter off). */
  baseNll: number;
}

/** Generic openings the base model continues, cycled (sample i starts with OPENINGS[i % length]). */
export const PROBE_OPENINGS: readonly string[] = ['The', 'Once upon a time', 'In the', 'It was', 'One day', 'There was', 'He said', 'She', 'We', 'When', 'After a while', 'This is'];

/** Rows per forward pass when sampling and scoring. */
const BATCH = 8;

/** Random streams of one run seed: the probe's and replay's never share a seed. */
const STREAM = { probe: 1, replay: 2 } as const;

/** The seed of batch `k` of a stream (through the project's one generator). */
function batchSeed(seed: number, stream: number, k: number): number {
  return Math.floor(seededRandom((seed >>> 0) * 1_000_003 + stream * 7919 + k)() * 2 ** 32);
}

/** Runs fn with the adapter's training flag off (no dropout), restoring it after. */
export async function inEvalMode<T>(adapter: TrainableAdapter | null, fn: () => Promise<T>): Promise<T> {
  const was = adapter?.training;
  if (adapter) adapter.training = false;
  try {
    return await fn();
  } finally {
    if (adapter) adapter.training = was!;
  }
}

/** Runs fn on the base model (the adapter switched off, no dropout), restoring the adapter's switches after. */
export async function withBaseModel<T>(adapter: TrainableAdapter | null, fn: () => Promise<T>): Promise<T> {
  const was = adapter?.enabled;
  if (adapter) adapter.enabled = false;
  try {
    return await inEvalMode(adapter, fn);
  } finally {
    if (adapter) adapter.enabled = was!;
  }
}

/** A probe or replay sample as a training sequence: weight 1 on every continuation token, 0 on the prompt. */
export function sampleExample(s: Pick<ProbeSample, 'ids' | 'promptLen'>): Example {
  const input = s.ids.slice(0, -1);
  const target = s.ids.slice(1);
  return { input, target, weight: target.map((_, t) => (t >= s.promptLen - 1 ? 1 : 0)) };
}

/** The probe's samples as right-padded, masked batches (as the trainer's collate). */
export function* probeBatches(samples: readonly Pick<ProbeSample, 'ids' | 'promptLen'>[], batchSize = BATCH): Generator<ReturnType<typeof collate>> {
  for (let i = 0; i < samples.length; i += batchSize) yield collate(samples.slice(i, i + batchSize).map(sampleExample));
}

/**
 * Samples `n` continuations of `tokens` tokens each from the model as it is (temperature 1, EOS ignored
 * so every one has exactly `tokens` tokens), batch k seeded from (seed, stream, k).
 */
async function sampleContinuations(model: LanguageModel, n: number, tokens: number, seed: number, stream: number, round = 0): Promise<ProbeSample[]> {
  const prompts = Array.from({ length: n }, (_, i) => model.tokenizer.encode(PROBE_OPENINGS[i % PROBE_OPENINGS.length]!));
  const out: ProbeSample[] = [];
  const silent = { newStream: () => ({ push: () => '', flush: () => '' }) };
  for (let i = 0; i < n; i += BATCH) {
    const chunk = prompts.slice(i, i + BATCH);
    const res = await generateIds(model.lm, chunk, [], { maxNewTokens: tokens, temperature: 1, ignoreEos: true, seed: batchSeed(seed, stream, round * 1_000_000 + i / BATCH) }, silent);
    res.forEach((r, k) => out.push({ ids: [...chunk[k]!, ...r.tokens], promptLen: chunk[k]!.length, source: 'base' }));
  }
  return out;
}

/** Continuation tokens that fit the model's context after the longest opening. */
function fittingTokens(model: LanguageModel, tokens: number): number {
  const longest = Math.max(...PROBE_OPENINGS.map((p) => model.tokenizer.encode(p).length));
  const fit = Math.min(Math.floor(tokens), contextLength(model.lm.config) - longest);
  if (!(fit >= 1)) throw new Error(`probe texts need at least one token; asked ${tokens} with a context of ${contextLength(model.lm.config)}`);
  return fit;
}

/**
 * Up to n chunks of `tokens` scored tokens from a general text, spread evenly over it. Each chunk has one
 * token of context before its scored tokens: BOS when the tokenizer adds one, else the chunk's first token.
 */
export function textChunks(model: LanguageModel, text: string, n: number, tokens: number): ProbeSample[] {
  const ids = model.tokenizer.encode(text, { addBos: false });
  const bos = model.tokenizer.addBosDefault ? model.tokenizer.bosId : null;
  const size = bos !== null ? tokens : tokens + 1;
  const m = Math.floor(ids.length / size);
  const k = Math.min(n, m);
  return Array.from({ length: k }, (_, i) => {
    const start = Math.floor((i * m) / k) * size;
    const chunk = ids.slice(start, start + size);
    return { ids: bos !== null ? [bos, ...chunk] : chunk, promptLen: 1, source: 'text' as const };
  });
}

/**
 * The forgetting probe of a run, made once before training with the adapter switched off (restored
 * after): n base-model continuations of PROBE_OPENINGS (BOS as the tokenizer adds it), plus up to n chunks
 * of `text` when given, and their mean NLL under the base model. Same seed, same ids.
 */
export async function sampleProbeSet(model: LanguageModel, adapter: TrainableAdapter | null, o: { n: number; tokens: number; seed: number; text?: string }): Promise<ProbeSet> {
  const tokens = fittingTokens(model, o.tokens);
  return withBaseModel(adapter, async () => {
    const samples = await sampleContinuations(model, o.n, tokens, o.seed, STREAM.probe);
    if (o.text) samples.push(...textChunks(model, o.text, o.n, tokens));
    const probe: ProbeSet = { seed: o.seed, tokens, samples, baseNll: NaN };
    probe.baseNll = await probeNll(model.lm, probe);
    return probe;
  });
}

/** Token-weighted mean NLL (nats) of the probe's continuation tokens under `lm` as it is now. */
export async function probeNll(lm: CausalLM, probe: Pick<ProbeSet, 'samples'>): Promise<number> {
  let nll = 0;
  let count = 0;
  for (const b of probeBatches(probe.samples)) {
    const w = b.weight.flat().reduce((a, x) => a + x, 0);
    if (!w) continue;
    const sum = tf.tidy(() => tf.mul(maskedCrossEntropy(lm.forward(b.ids, { mask: b.mask }), b.target, b.weight), w));
    try {
      nll += (await sum.data())[0]!;
    } finally {
      sum.dispose();
    }
    count += w;
  }
  return count ? nll / count : NaN;
}

/**
 * Forgetting at each evaluation: probe_nll (the model now), probe_nll_delta (nats, now - base) and
 * probe_nll_delta_pct (100 * delta / base). Dropout is off while it measures.
 */
/** The probe's loss rise in % of the base model's: what "forgetting" is everywhere in tabtune. */
export function forgetPct(nll: number, baseNll: number): number {
  return (100 * (nll - baseNll)) / baseNll;
}

export function forgettingMetric(lm: CausalLM, probe: ProbeSet): EvalMetric {
  return {
    name: 'forgetting',
    async measure(trainer) {
      const nll = await inEvalMode(trainer.adapter, () => probeNll(lm, probe));
      const delta = nll - probe.baseNll;
      return { values: { probe_nll: nll, probe_nll_delta: delta, probe_nll_delta_pct: forgetPct(nll, probe.baseNll) } };
    },
  };
}

/**
 * Base-model text for replay mixing: n continuations of `tokens` tokens (weight 1 on every continuation
 * token), sampled with the adapter off from the replay stream of `seed`, which is not the probe's: the
 * probe measures what training does to text it never saw, so it is never trained on. A different stream
 * makes a repeat of a probe sequence unlikely; `exclude` (the run's probe) makes it impossible: such a
 * sequence is drawn again (a few rounds; a base model that keeps writing the probe's texts gives fewer).
 */
export async function replayExamples(model: LanguageModel, adapter: TrainableAdapter | null, o: { n: number; tokens: number; seed: number; exclude?: ProbeSet }): Promise<Example[]> {
  const tokens = fittingTokens(model, o.tokens);
  const banned = new Set((o.exclude?.samples ?? []).map((s) => s.ids.join(',')));
  const out: ProbeSample[] = [];
  await withBaseModel(adapter, async () => {
    for (let round = 0; round < 8 && out.length < o.n; round++) {
      const drawn = await sampleContinuations(model, o.n - out.length, tokens, o.seed, STREAM.replay, round);
      out.push(...drawn.filter((s) => !banned.has(s.ids.join(','))));
    }
  });
  return out.map(sampleExample);
}

/** Replay sequences to add to `trainExamples` so they make `fraction` of the mix: round(f n / (1 - f)). */
export function replayCount(trainExamples: number, fraction: number): number {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`the replay share must be in [0, 1), got ${fraction}`);
  return fraction === 0 ? 0 : Math.round((fraction * trainExamples) / (1 - fraction));
}
