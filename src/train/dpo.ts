// Direct Preference Optimization (Rafailov et al. 2023) as an objective of the one training loop: the same
// Trainer, optimizer, schedules, checkpoints, resume and NaN guard as SFT, over preference pairs.
//
//   loss = -log σ(β · [(log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))])
//
// log π(y) is the summed log-probability of the reply's tokens (those SFT would train, the end token
// included) given the prompt. The reference is the model as DPO starts (the base model, or the base model
// with the SFT adapter DPO continues): its log-probabilities are computed once before the first step
// (referenceLogps) and cached on the examples, and kept with every checkpoint, so no second copy of the
// weights is held and a resumed run uses exactly the same reference. With rpoAlpha > 0 the chosen replies'
// mean token NLL is added, times rpoAlpha (RPO, as TRL's rpo_alpha).
//
// Statistics (StatSink), named as TRL logs them (DPO_STAT_NAMES in ./dpo-stats): rewards/chosen = β·(log π − log π_ref)(chosen),
// rewards/rejected likewise, rewards/margins = their difference, rewards/accuracies = share of pairs whose
// chosen reward is higher, logps/chosen and logps/rejected = the policy's summed log-probabilities.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';
import { yieldToEventLoop } from '../util/async';
import { collate, weighedSpan, type Example, type Objective, type StatSink, type TrainForward } from './loop';

/** One preference pair, encoded: both sides share the prompt's tokens; weights mark the reply's. */
export interface PreferenceExample {
  chosen: Example;
  rejected: Example;
  /** The reference model's summed log-probabilities of both replies (referenceLogps fills them). */
  ref?: { chosen: number; rejected: number };
}

/**
 * Summed log-probability of each row's weighted targets: out[b] = Σ_t w[b][t] · log softmax(logits[b, t])[target[b][t]].
 * logits [B, T, V] → [B]. The gradient is written by hand (w · (onehot − softmax) · dy[b]), as in
 * maskedCrossEntropy: autograd through a gather needs kernels tfjs-wasm lacks.
 */
export function sequenceLogProbs(logits: tf.Tensor, targets: number[][], weights: number[][]): tf.Tensor1D {
  const [B, T, V] = logits.shape as [number, number, number];
  const N = B * T;
  const tgt = tf.tensor1d(targets.flat(), 'int32');
  const w = tf.tensor2d(weights.flat(), [N, 1], 'float32');
  const f = tf.customGrad(((l: tf.Tensor, save: tf.GradSaveFunc) => {
    const l2 = tf.reshape(l, [N, V]);
    const oh = tf.oneHot(tgt, V); // [N, V]
    const mx = tf.max(l2, -1, true); // [N, 1]
    const shifted = tf.sub(l2, mx); // [N, V]
    const e = tf.exp(shifted); // [N, V]
    const se = tf.sum(e, -1, true); // [N, 1]
    const logp = tf.sub(tf.sum(tf.mul(shifted, oh), -1, true), tf.log(se)); // [N, 1] = picked - lse
    const value = tf.sum(tf.reshape(tf.mul(logp, w), [B, T]), 1) as tf.Tensor1D; // [B]
    save([e, se, oh, w]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [se2, sse, soh, sw]: tf.Tensor[]) => {
        const dyRows = tf.reshape(tf.tile(tf.reshape(dy, [B, 1]), [1, T]), [N, 1]); // [N, 1]: dy of each position's row
        const g = tf.mul(tf.sub(soh!, tf.div(se2!, sse!)), tf.mul(sw!, dyRows)); // [N, V]
        return tf.reshape(g, [B, T, V]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const out = f(logits) as tf.Tensor1D;
  tgt.dispose();
  w.dispose();
  return out;
}

/** The policy's summed log-probabilities of both sides of each pair: [chosen [B], rejected [B]], one forward over 2B rows. */
export function pairLogProbs(lm: CausalLM, batch: readonly PreferenceExample[], forward?: TrainForward): [tf.Tensor1D, tf.Tensor1D] {
  const B = batch.length;
  const c = collate([...batch.map((p) => p.chosen), ...batch.map((p) => p.rejected)]);
  const spans = equalSpans(c.weight);
  let lp: tf.Tensor1D; // [2B]
  if (!spans) lp = sequenceLogProbs(lm.forward(c.ids, { ...forward, mask: c.mask }), c.target, c.weight);
  else {
    // Logits only for the replies: L positions of each row, from its first weighed one.
    const { ranges, L } = spans;
    const logits = lm.forward(c.ids, { ...forward, mask: c.mask, logitRanges: ranges }); // [1, 2B L, V]
    const pick = (rows: number[][]) => ranges.map(([s, e], i) => rows[i]!.slice(s, e));
    lp = sequenceLogProbs(tf.reshape(logits, [2 * B, L, lm.config.vocab_size]), pick(c.target), pick(c.weight));
  }
  return [tf.slice(lp, [0], [B]), tf.slice(lp, [B], [B])];
}

/**
 * The same number L of positions in every row, from its first weighed one (moved back where the row ends
 * sooner), L the longest span from a row's first to its last weighed position; null when L is the whole row.
 */
export function equalSpans(weight: number[][]): { ranges: [number, number][]; L: number } | null {
  const T = weight[0]?.length ?? 0;
  const spans = weight.map(weighedSpan);
  const L = Math.max(...spans.map(([s, e]) => e - s));
  if (L >= T || L <= 0) return null;
  return { ranges: spans.map(([s]): [number, number] => [Math.min(s, T - L), Math.min(s, T - L) + L]), L };
}

export interface DpoOptions {
  beta: number;
  /** Weight of the chosen replies' mean token NLL added to the loss (RPO); 0 = none. */
  rpoAlpha?: number;
}

/** DPO's per-pair loss and rewards from policy and reference log-probabilities (pure arithmetic, [B] each). */
export function dpoTerms(policy: { chosen: tf.Tensor1D; rejected: tf.Tensor1D }, ref: { chosen: tf.Tensor1D; rejected: tf.Tensor1D }, beta: number): { losses: tf.Tensor1D; chosenReward: tf.Tensor1D; rejectedReward: tf.Tensor1D } {
  const chosenReward = tf.mul(beta, tf.sub(policy.chosen, ref.chosen)) as tf.Tensor1D;
  const rejectedReward = tf.mul(beta, tf.sub(policy.rejected, ref.rejected)) as tf.Tensor1D;
  // -log σ(x) = softplus(-x)
  const losses = tf.softplus(tf.neg(tf.sub(chosenReward, rejectedReward))) as tf.Tensor1D;
  return { losses, chosenReward, rejectedReward };
}

function refOf(batch: readonly PreferenceExample[]): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  const missing = batch.findIndex((p) => !p.ref);
  if (missing >= 0) throw new Error('DPO needs the reference log-probabilities of every pair: call referenceLogps before training');
  return { chosen: tf.tensor1d(batch.map((p) => p.ref!.chosen)), rejected: tf.tensor1d(batch.map((p) => p.ref!.rejected)) };
}

const REFERENCE_TENSOR = 'dpo.reference_logps';
const PAIRS_TENSOR = 'dpo.reference_pairs';

/** FNV-1a over every pair's tokens and weights, as two exact 16-bit halves (a float32 tensor holds them exactly). */
function pairsFingerprint(pairs: readonly PreferenceExample[]): Float32Array {
  let h = 0x811c9dc5;
  const mix = (v: number) => {
    h ^= v & 0xffff;
    h = Math.imul(h, 0x01000193) >>> 0;
    h ^= v >>> 16;
    h = Math.imul(h, 0x01000193) >>> 0;
  };
  for (const p of pairs) for (const e of [p.chosen, p.rejected]) for (const a of [e.input, e.target, e.weight]) {
    mix(a.length);
    for (const v of a) mix(v);
  }
  return Float32Array.from([h >>> 16, h & 0xffff]);
}

/** DPO over preference pairs (see the top of this file). Evaluation averages by pairs. */
export function dpoObjective(o: DpoOptions): Objective<PreferenceExample> & {
  checkpointTensors(train: readonly PreferenceExample[], val: readonly PreferenceExample[]): Record<string, { shape: number[]; data: Float32Array }>;
  restoreTensors(tensors: Readonly<Record<string, { data: Float32Array }>>, train: readonly PreferenceExample[], val: readonly PreferenceExample[]): void;
} {
  const beta = o.beta;
  const rpo = o.rpoAlpha ?? 0;
  if (!(beta > 0)) throw new Error(`DPO beta must be positive, got ${beta}`);
  return {
    name: 'dpo',
    loss(lm: CausalLM, batch: PreferenceExample[], stat?: StatSink, forward?: TrainForward): tf.Scalar {
      const [chosen, rejected] = pairLogProbs(lm, batch, forward);
      const ref = refOf(batch);
      const t = dpoTerms({ chosen, rejected }, ref, beta);
      let loss = tf.mean(t.losses) as tf.Scalar;
      if (rpo > 0) {
        const tokens = batch.reduce((a, p) => a + p.chosen.weight.reduce((x, y) => x + y, 0), 0);
        loss = tf.add(loss, tf.mul(rpo, tf.div(tf.neg(tf.sum(chosen)), Math.max(1, tokens)))) as tf.Scalar;
      }
      if (stat) {
        stat('rewards/chosen', tf.mean(t.chosenReward) as tf.Scalar);
        stat('rewards/rejected', tf.mean(t.rejectedReward) as tf.Scalar);
        stat('rewards/margins', tf.mean(tf.sub(t.chosenReward, t.rejectedReward)) as tf.Scalar);
        stat('rewards/accuracies', tf.mean(tf.cast(tf.greater(t.chosenReward, t.rejectedReward), 'float32')) as tf.Scalar);
        stat('logps/chosen', tf.mean(chosen) as tf.Scalar);
        stat('logps/rejected', tf.mean(rejected) as tf.Scalar);
      }
      return loss;
    },
    count(batch) {
      let tokens = 0;
      for (const p of batch) tokens += p.chosen.input.length + p.rejected.input.length;
      return { tokens, weight: batch.length };
    },
    checkpointTensors(train, val) {
      const all = [...train, ...val];
      const data = new Float32Array(all.length * 2);
      all.forEach((p, i) => {
        if (!p.ref) throw new Error('DPO reference log-probabilities missing');
        data[2 * i] = p.ref.chosen;
        data[2 * i + 1] = p.ref.rejected;
      });
      return { [REFERENCE_TENSOR]: { shape: [all.length, 2], data }, [PAIRS_TENSOR]: { shape: [2], data: pairsFingerprint(all) } };
    },
    restoreTensors(tensors, train, val) {
      const t = tensors[REFERENCE_TENSOR];
      const all = [...train, ...val];
      if (!t) throw new Error('the checkpoint has no DPO reference log-probabilities (it was not made by a DPO run)');
      if (t.data.length !== all.length * 2) throw new Error(`the checkpoint's DPO reference covers ${t.data.length / 2} pairs, the data has ${all.length}: the preference data changed since the run began`);
      const f = tensors[PAIRS_TENSOR];
      const now = pairsFingerprint(all);
      if (f && (f.data[0] !== now[0] || f.data[1] !== now[1])) throw new Error("the preference pairs differ from those the checkpoint's DPO reference was computed on: the preference data changed since the run began");
      all.forEach((p, i) => (p.ref = { chosen: t.data[2 * i]!, rejected: t.data[2 * i + 1]! }));
    },
  };
}

/**
 * DPO's reference for a run, once before its first step: the model as the run starts — the adapter it
 * continues (`continued`: e.g. the SFT adapter), else the base model (the new adapter switched off meanwhile).
 */
export async function runReference(
  trainer: { lm: CausalLM; train: readonly unknown[]; val: readonly unknown[]; config: { batchSize: number }; adapter: { enabled: boolean } | null },
  continued: boolean,
  o: { signal?: AbortSignal } = {},
): Promise<void> {
  const pairs = [...trainer.train, ...trainer.val] as PreferenceExample[];
  const adapter = trainer.adapter;
  const was = adapter?.enabled;
  if (adapter && !continued) adapter.enabled = false;
  try {
    await referenceLogps(trainer.lm, pairs, trainer.config.batchSize, o);
  } finally {
    if (adapter) adapter.enabled = was!;
  }
}

/**
 * Fills each pair's reference log-probabilities with `lm` as it is now (the caller sets the adapter: off for
 * DPO from the base model, the SFT adapter for DPO after SFT), in batches, reading asynchronously.
 */
export async function referenceLogps(lm: CausalLM, pairs: readonly PreferenceExample[], batchSize: number, o: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<void> {
  for (let i = 0; i < pairs.length; i += batchSize) {
    if (o.signal?.aborted) throw new Error('cancelled');
    const batch = pairs.slice(i, i + batchSize);
    const [c, r] = tf.tidy(() => pairLogProbs(lm, batch));
    const [cv, rv] = [await c.data(), await r.data()];
    tf.dispose([c, r]);
    batch.forEach((p, k) => (p.ref = { chosen: cv[k]!, rejected: rv[k]! }));
    o.onProgress?.(Math.min(pairs.length, i + batchSize), pairs.length);
    await yieldToEventLoop();
  }
}
