// Text generation with a KV cache: a batch of prompts (left-padded), greedy or sampled decoding
// (temperature, top-k, top-p, seeded), stop on EOS ids or stop strings, token streaming and
// cancellation. Stop strings are never streamed: text that could be the start of one is held back.
import * as tf from '@tensorflow/tfjs-core';
import { yieldToEventLoop } from '../util/async';
import { seededRandom } from '../util/random';
import { tokenContext, type CausalLM } from './causal-lm';
import { FastDecoder } from './fast-decode';
import type { LanguageModel } from './load';

/** Longest stretch of decoding between two yields to the event loop (progress messages, cancel requests). */
const YIELD_EVERY_MS = 15;

export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens (0 or undefined = all). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1 or undefined = all). */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed?: number;
  stopStrings?: string[];
  /** Extra ids that end generation besides the model's EOS ids. */
  stopTokenIds?: number[];
  /** Ignore EOS ids (generate until max tokens or a stop string). */
  ignoreEos?: boolean;
  signal?: AbortSignal;
  /**
   * 'auto' (default): after the prompt, Llama-family models on the CPU backends decode in tabtune's own
   * batch-1 SIMD decoder (src/model/fast-decode.ts); 'tfjs': every token through the model's TF.js forward.
   */
  decoder?: 'auto' | 'tfjs';
  onToken?: (e: { prompt: number; token: number; text: string }) => void;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateResult {
  promptTokens: number[];
  tokens: number[];
  text: string;
  finishReason: FinishReason;
}

export function argmax(v: Float32Array | number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** Picks the next token from one row of logits (HF order: temperature, then top-k, then top-p). */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rand: () => number): number {
  if (!(o.temperature > 0)) return argmax(logits);
  const n = logits.length;
  let idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]!);
  if (o.topK && o.topK > 0 && o.topK < n) idx = idx.slice(0, o.topK);
  const max = logits[idx[0]!]!;
  let probs = idx.map((i) => Math.exp((logits[i]! - max) / o.temperature));
  let sum = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    let cum = 0;
    let keep = 0;
    while (keep < probs.length) {
      cum += probs[keep]! / sum;
      keep++;
      if (cum >= o.topP) break;
    }
    idx = idx.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((a, b) => a + b, 0);
  }
  let r = rand() * sum;
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i]!;
    if (r < 0) return idx[i]!;
  }
  return idx[idx.length - 1]!;
}

/** Length of the longest suffix of text that is a proper prefix of a stop string. */
function heldBack(text: string, stops: string[]): number {
  let best = 0;
  for (const s of stops) for (let k = Math.min(s.length - 1, text.length); k > best; k--) if (text.endsWith(s.slice(0, k))) best = k;
  return best;
}

export interface DecodeHooks {
  /** Decoded text of one row's generated ids, streamed piece by piece (given the row's prompt ids). */
  newStream(promptTokens: number[]): { push(id: number): string; flush(): string };
}

/**
 * The decoding loop on token ids. Each prompt row is left-padded to the longest one and masked,
 * so rows of different lengths decode together in one batch.
 */
export async function generateIds(lm: CausalLM, prompts: number[][], eosIds: number[], opts: GenerateOptions, hooks: DecodeHooks): Promise<GenerateResult[]> {
  const B = prompts.length;
  if (!B) return [];
  if (prompts.some((p) => !p.length)) throw new Error('every prompt needs at least one token (the model has no BOS token to start from)');
  const ctx = tokenContext(lm); // what prompt tuning's virtual tokens leave of the context
  const maxLen = Math.max(...prompts.map((p) => p.length));
  if (maxLen >= ctx) throw new Error(`the prompt is ${maxLen} tokens but the model's context is ${ctx}: shorten it`);
  const budget = Math.max(0, Math.min(opts.maxNewTokens, ctx - maxLen));
  const stopIds = new Set([...(opts.ignoreEos ? [] : eosIds), ...(opts.stopTokenIds ?? [])]);
  const stops = (opts.stopStrings ?? []).filter((s) => s.length > 0);
  const rand = seededRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 32));

  const rows = prompts.map((p) => ({
    promptTokens: p,
    tokens: [] as number[],
    text: '',
    emitted: 0,
    stream: hooks.newStream(p),
    done: null as FinishReason | null,
  }));
  const finish = (r: (typeof rows)[number], reason: FinishReason) => {
    r.done = reason;
    if (reason !== 'stop') r.text += r.stream.flush();
    if (r.text.length > r.emitted && opts.onToken) opts.onToken({ prompt: rows.indexOf(r), token: -1, text: r.text.slice(r.emitted) });
    r.emitted = r.text.length;
  };

  const cache = lm.createCache(B);
  let fast: FastDecoder | null = null;
  try {
    let input = prompts.map((p) => [...new Array<number>(maxLen - p.length).fill(p[0]!), ...p]);
    let mask = prompts.map((p) => [...new Array<number>(maxLen - p.length).fill(0), ...p.map(() => 1)]);
    if (budget === 0) rows.forEach((r) => finish(r, 'length'));
    let lastYield = performance.now();
    let data: Float32Array = new Float32Array(0);
    for (let step = 0; step < budget && rows.some((r) => !r.done); step++) {
      if (opts.signal?.aborted) break;
      if (fast) {
        // One row at a time through the SIMD decoder; finished rows are skipped.
        rows.forEach((r, b) => {
          if (!r.done) data.set(fast!.step(b, input[b]![0]!), b * lm.config.vocab_size);
        });
      } else {
        const logits = lm.forward(input, { cache, mask, lastOnly: true }); // [B, 1, V]
        data = (await logits.data()) as Float32Array;
        logits.dispose();
        // After the prompt (the prefill stays in TF.js), the rest may go through the fast decoder.
        if (step === 0 && budget > 1 && (opts.decoder ?? 'auto') === 'auto') {
          try {
            fast = FastDecoder.start(lm, cache, budget);
          } catch {
            fast = null; // e.g. no memory for its copy of the weights: the TF.js path carries on
          }
        }
        if (fast) {
          data = Float32Array.from(data);
          cache.dispose(); // the decoder holds its own copy of the keys and values now
        }
      }
      const V = data.length / B;
      const next: number[] = [];
      rows.forEach((r, b) => {
        if (r.done) {
          next.push(input[b]![0]!);
          return;
        }
        const tok = sampleToken(data.subarray(b * V, (b + 1) * V), opts, rand);
        next.push(tok);
        if (stopIds.has(tok)) return finish(r, 'eos');
        r.tokens.push(tok);
        r.text += r.stream.push(tok);
        const hit = stops.map((s) => r.text.indexOf(s)).filter((i) => i >= 0);
        if (hit.length) {
          r.text = r.text.slice(0, Math.min(...hit));
          return finish(r, 'stop');
        }
        const safe = r.text.length - heldBack(r.text, stops);
        if (safe > r.emitted) {
          opts.onToken?.({ prompt: b, token: tok, text: r.text.slice(r.emitted, safe) });
          r.emitted = safe;
        }
      });
      input = next.map((t) => [t]);
      mask = rows.map((r) => [r.done ? 0 : 1]);
      // Let the event loop breathe (progress messages, cancel requests) every few milliseconds.
      if (performance.now() - lastYield >= YIELD_EVERY_MS) {
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
    for (const r of rows) if (!r.done) finish(r, opts.signal?.aborted ? 'cancelled' : 'length');
  } finally {
    cache.dispose();
    fast?.release();
  }
  return rows.map((r) => ({ promptTokens: r.promptTokens, tokens: r.tokens, text: r.text, finishReason: r.done! }));
}

/** Generates continuations of text prompts (the prompt text is not part of the result). */
export async function generate(model: LanguageModel, prompts: string[], opts: GenerateOptions): Promise<GenerateResult[]> {
  const ids = prompts.map((p) => model.tokenizer.encode(p));
  return generateIds(model.lm, ids, model.eosIds, opts, { newStream: (p) => model.tokenizer.createStreamDecoder(true, p) });
}

/** Teacher-forced mean negative log-likelihood (nats) of ids[1:] given the prefix. */
export function meanNLL(lm: CausalLM, ids: number[]): number {
  if (ids.length < 2) throw new Error('scoring needs at least two tokens');
  return tf.tidy(() => {
    const logits = lm.forward([ids]); // [1, T, V]
    const T = ids.length - 1;
    const lp = tf.logSoftmax(tf.slice(logits, [0, 0, 0], [1, T, -1])); // [1, T, V]
    const targets = tf.oneHot(tf.tensor1d(ids.slice(1), 'int32'), lm.config.vocab_size); // [T, V]
    const nll = tf.neg(tf.sum(tf.mul(tf.reshape(lp, [T, -1]), targets)));
    return nll.dataSync()[0]! / T;
  });
}
