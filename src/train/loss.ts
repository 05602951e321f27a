// Masked next-token cross-entropy with a hand-written gradient: d loss / d logits =
// (softmax - onehot) * weight / sum(weight). Autograd through gather would need UnsortedSegmentSum,
// which tfjs-wasm lacks; this needs only elementwise ops and a one-hot.
import * as tf from '@tensorflow/tfjs-core';
import { scratch, SimdArena, simdAvailable } from '../kernels/simd';
import { floats, tensorOf } from '../kernels/tensor-io';
import { crossEntropyGpu } from '../kernels/webgpu/cross-entropy';
import { cpuFusedOps, gpuFusedOps } from '../model/ops';

/**
 * logits [B, T, V]; targets [B][T] (token to predict at each position); weights [B][T] (1 = trained,
 * 0 = masked). Returns the mean loss over trained positions (a scalar). Rows must share T.
 */
export function maskedCrossEntropy(logits: tf.Tensor, targets: number[][], weights: number[][]): tf.Scalar {
  const [B, T, V] = logits.shape as [number, number, number];
  const N = B * T;
  const total = weights.flat().reduce((a, b) => a + b, 0);
  if (total <= 0) throw new Error('no trained positions in this batch (every target is masked)');
  if (cpuFusedOps() && simdAvailable()) return crossEntropyCpu(logits, targets.flat(), weights.flat(), total);
  if (gpuFusedOps()) return crossEntropyGpu(logits, targets.flat(), weights.flat(), total);
  const tgt = tf.tensor1d(targets.flat(), 'int32');
  const w = tf.tensor1d(weights.flat(), 'float32');
  const f = tf.customGrad(((l: tf.Tensor, save: tf.GradSaveFunc) => {
    const l2 = tf.reshape(l, [N, V]);
    const oh = tf.oneHot(tgt, V); // [N, V]
    // log-softmax once (one exp pass over [N, V]); the gradient reuses its exp as the softmax.
    const mx = tf.max(l2, -1, true); // [N, 1]
    const shifted = tf.sub(l2, mx); // [N, V]
    const e = tf.exp(shifted); // [N, V]
    const se = tf.sum(e, -1, true); // [N, 1]
    const nll = tf.sub(tf.log(se), tf.sum(tf.mul(shifted, oh), -1, true)); // [N, 1] = lse - picked
    const wn = tf.reshape(tf.div(w, total), [N, 1]); // [N, 1] normalised weights
    const value = tf.sum(tf.mul(nll, wn)) as tf.Scalar;
    // Everything the gradient reads must be saved: the forward's tidy frees the rest before backprop.
    save([e, se, oh, wn]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [se2, sse, soh, swn]: tf.Tensor[]) => {
        const g = tf.mul(tf.sub(tf.div(se2!, sse!), soh!), swn!); // [N, V]: (softmax - onehot) * weight
        return tf.reshape(tf.mul(g, dy), [B, T, V]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const out = f(logits) as tf.Scalar;
  tgt.dispose();
  w.dispose();
  return out;
}

/** Floats of logits the fused cross-entropy puts in the SIMD arena at a time (16 MB). */
const CE_CHUNK_FLOATS = 4 * 2 ** 20;

/**
 * The arena of the last forward whose logits fit one chunk: it still holds that forward's exp(l - m) rows when
 * its backward comes (the usual case: a training step's forward, then its backward), so the backward only
 * scales them instead of copying the logits in again and taking every exp a second time. Any other forward
 * in between (an evaluation, another micro-batch) takes the arena over, and the backward then recomputes.
 */
let kept: { arena: SimdArena; owner: number } | null = null;
let forwards = 0;

/**
 * maskedCrossEntropy on the CPU backends as one op over the values, its exponentials in tabtune's SIMD
 * kernels (src/kernels/simd.wat): a dozen TF.js ops over [N, V] (max, subtract, exp, sums, one-hot, divide)
 * become one pass for the loss and one for the gradient. Per row n with m = max, s = sum exp(l - m):
 *   nll = m + log s - l[target];  d loss / d l = (exp(l - m) / s - onehot) * weight / total
 */
function crossEntropyCpu(logits: tf.Tensor, targets: number[], weights: number[], total: number): tf.Scalar {
  const [B, T, V] = logits.shape as [number, number, number];
  const N = B * T;
  targets.forEach((t, n) => {
    if (weights[n] && !(Number.isInteger(t) && t >= 0 && t < V)) throw new Error(`target id ${t} is outside the vocabulary (0..${V - 1})`);
  });
  // Rows go through the SIMD arena a chunk at a time, so its size stays bounded whatever N x V is.
  const chunk = Math.max(1, Math.floor(CE_CHUNK_FLOATS / V));
  const single = N <= chunk;
  const id = ++forwards;
  const f = tf.customGrad(((l: tf.Tensor, save: tf.GradSaveFunc) => {
    save([l]);
    const x = floats(l);
    const lse = new Float64Array(N);
    const sums = new Float64Array(N);
    let loss = 0;
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const rows = Math.min(chunk, N - n0);
      let a: SimdArena;
      if (single) {
        if (!kept || kept.arena.capacity < rows * V + 2 + 64) kept = { arena: new SimdArena(rows * V + 2 + 1024), owner: 0 };
        kept.arena.reset();
        kept.owner = id;
        a = kept.arena;
      } else a = scratch(rows * V + 2);
      const X = a.alloc(rows * V);
      const out = a.alloc(2);
      a.f32.set(x.subarray(n0 * V, (n0 + rows) * V), X);
      for (let k = 0; k < rows; k++) {
        const n = n0 + k;
        a.lseRow(X + k * V, V, out); // leaves exp(l - m) in row k
        sums[n] = a.f32[out + 1]!;
        lse[n] = a.f32[out]! + Math.log(sums[n]!);
        if (weights[n]) loss += (weights[n]! * (lse[n]! - x[n * V + targets[n]!]!)) / total;
      }
    }
    return {
      value: tf.scalar(loss),
      gradFunc: (dy: tf.Tensor, [sl]: tf.Tensor[]) => {
        const d = dy.dataSync()[0]!;
        if (single && kept?.owner === id) {
          // This forward's exp(l - m) rows are still in the arena (X at offset 0): scale them in place.
          const b = kept.arena;
          kept.owner = 0;
          for (let n = 0; n < N; n++) {
            const c = (weights[n]! * d) / total;
            if (c === 0) b.f32.fill(0, n * V, (n + 1) * V);
            else {
              b.scale(n * V, V, c / sums[n]!); // softmax * weight * dy / total
              b.f32[n * V + targets[n]!]! -= c;
            }
          }
          return tensorOf(b.f32.subarray(0, N * V), [B, T, V]);
        }
        const xs = floats(sl!);
        const grad = new Float32Array(N * V); // masked rows stay 0
        for (let n0 = 0; n0 < N; n0 += chunk) {
          const rows = Math.min(chunk, N - n0);
          const b = scratch(rows * V);
          const G = b.alloc(rows * V);
          b.f32.set(xs.subarray(n0 * V, (n0 + rows) * V), G);
          for (let k = 0; k < rows; k++) {
            const n = n0 + k;
            const c = (weights[n]! * d) / total;
            if (c === 0) continue;
            b.expScale(G + k * V, G + k * V, V, lse[n]!, c); // softmax * weight * dy / total
            b.f32[G + k * V + targets[n]!]! -= c;
            grad.set(b.f32.subarray(G + k * V, G + (k + 1) * V), n * V);
          }
        }
        return tf.tensor(grad, [B, T, V]);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Scalar;
}
