// Masked next-token cross-entropy with a hand-written gradient: d loss / d logits =
// (softmax - onehot) * weight / sum(weight). Autograd through gather would need UnsortedSegmentSum,
// which tfjs-wasm lacks; this needs only elementwise ops and a one-hot.
import * as tf from '@tensorflow/tfjs-core';

/**
 * logits [B, T, V]; targets [B][T] (token to predict at each position); weights [B][T] (1 = trained,
 * 0 = masked). Returns the mean loss over trained positions (a scalar). Rows must share T.
 */
export function maskedCrossEntropy(logits: tf.Tensor, targets: number[][], weights: number[][]): tf.Scalar {
  const [B, T, V] = logits.shape as [number, number, number];
  const N = B * T;
  const total = weights.flat().reduce((a, b) => a + b, 0);
  if (total <= 0) throw new Error('no trained positions in this batch (every target is masked)');
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
