// Masked next-token cross-entropy over the vocabulary on WebGPU (the same math as maskedCrossEntropy in
// src/train/loss.ts). Per row n with m = max, s = sum exp(l - m) and w_n = weight / total:
//   loss = sum_n w_n (m + log s - l[target]);  d loss / d l = (exp(l - m) / s - onehot) w_n dy
// Forward: one workgroup per row (max, then sum of exponentials) writing [m, s, w_n (m + log s - l[t])]; the
// loss is a TF.js sum of the last column. Backward: one invocation per logit, from the saved m and s. No
// [N, V] tensor besides the gradient itself (TF.js's path keeps the exponentials and a one-hot).
import * as tf from '@tensorflow/tfjs-core';
import { gpuProgram, i32, runProgram, WG, WG_SUM } from './program';

const ROW_STATS = `${WG_SUM}
  fn main(index : i32) {
    let rows = uniforms.rows;
    let V = uniforms.V;
    let row = min(index / ${WG}, rows - 1);
    let tid = i32(localId.x);
    let o = row * V;
    var mx = -3.0e38;
    for (var j = tid; j < V; j += ${WG}) { mx = max(mx, logits[o + j]); }
    let m = wgMax(mx, tid);
    var se = 0.0;
    for (var j = tid; j < V; j += ${WG}) { se += exp(logits[o + j] - m); }
    let s = wgSum(se, tid);
    if (index / ${WG} < rows && tid == 0) {
      let w = weights[row];
      let t = targets[row];
      var nll = 0.0;
      if (w != 0.0) { nll = w * (m + log(s) - logits[o + t]); }
      result[row * 3] = m;
      result[row * 3 + 1] = s;
      result[row * 3 + 2] = nll;
    }
  }`;

const GRAD = `
  fn main(index : i32) {
    let V = uniforms.V;
    if (index >= uniforms.rows * V) { return; }
    let row = index / V;
    let j = index - row * V;
    let w = weights[row] * dy[0];
    var g = 0.0;
    if (w != 0.0) {
      g = exp(logits[index] - stats[row * 3]) / stats[row * 3 + 1];
      if (j == targets[row]) { g = g - 1.0; }
      g = g * w;
    }
    result[index] = g;
  }`;

/**
 * logits [B, T, V]; targets and weights per position (flattened, B * T each); total = sum of the weights (> 0).
 * Returns the weighted mean loss (a scalar) with its gradient, on the WebGPU backend.
 */
export function crossEntropyGpu(logits: tf.Tensor, targets: number[], weights: number[], total: number): tf.Scalar {
  const V = logits.shape[logits.rank - 1]!;
  const rows = logits.size / V;
  if (targets.length !== rows || weights.length !== rows) throw new Error(`cross-entropy: ${rows} rows of logits but ${targets.length} targets and ${weights.length} weights`);
  targets.forEach((t, n) => {
    if (weights[n] && !(Number.isInteger(t) && t >= 0 && t < V)) throw new Error(`target id ${t} is outside the vocabulary (0..${V - 1})`);
  });
  const f = tf.customGrad(((l: tf.Tensor, save: tf.GradSaveFunc) => {
    // Made here and saved: the forward's tidy frees everything else before backprop.
    const tgt = tf.tensor1d(targets.map((t, n) => (weights[n] ? t : 0)), 'int32');
    const wn = tf.tensor1d(weights.map((w) => w / total), 'float32');
    const l2 = tf.reshape(l, [rows, V]);
    const stats = runProgram(gpuProgram('xent_rows', '', ['logits', 'targets', 'weights'], [rows, 3], rows * WG, 'rows : i32, V : i32,', ROW_STATS), [l2, tgt, wn], [i32(rows), i32(V)]);
    save([l2, stats, tgt, wn]);
    return {
      value: tf.sum(tf.slice(stats, [0, 2], [rows, 1])) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, [sl, sstats, stgt, swn]: tf.Tensor[]) => {
        const g = runProgram(gpuProgram('xent_grad', '', ['logits', 'stats', 'targets', 'weights', 'dy'], [rows, V], rows * V, 'rows : i32, V : i32,', GRAD), [sl!, sstats!, stgt!, swn!, tf.reshape(dy, [1])], [i32(rows), i32(V)]);
        return tf.reshape(g, l.shape);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Scalar;
}
