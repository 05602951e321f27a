// RMSNorm on WebGPU as one op with its own gradient (the same math as rmsNorm() in src/model/ops.ts and
// its CPU twin rmsNormCpu). With r = 1 / sqrt(mean(x^2) + eps) per row and D the row length:
//   y = x r g;  dx = r (dy g) - x r^3 / D sum_j(dy_j g_j x_j);  dg = sum over rows of dy x r
// Forward: one workgroup per row (a workgroup reduction for the sum of squares). Backward: r per row, dx one
// workgroup per row, dg as per-chunk column sums (ROWS_PER_CHUNK rows each) added up by one TF.js sum.
import * as tf from '@tensorflow/tfjs-core';
import { f32, gpuProgram, i32, runProgram, WG, WG_SUM } from './program';

const ROWS_PER_CHUNK = 64;

const FORWARD = `${WG_SUM}
  fn main(index : i32) {
    let rows = uniforms.rows;
    let D = uniforms.D;
    let row = min(index / ${WG}, rows - 1);
    let tid = i32(localId.x);
    let o = row * D;
    var ss = 0.0;
    for (var j = tid; j < D; j += ${WG}) { let v = x[o + j]; ss += v * v; }
    let r = inverseSqrt(wgSum(ss, tid) / f32(D) + uniforms.eps);
    if (index / ${WG} < rows) {
      for (var j = tid; j < D; j += ${WG}) { result[o + j] = x[o + j] * r * g[j]; }
    }
  }`;

const ROW_R = `${WG_SUM}
  fn main(index : i32) {
    let rows = uniforms.rows;
    let D = uniforms.D;
    let row = min(index / ${WG}, rows - 1);
    let tid = i32(localId.x);
    let o = row * D;
    var ss = 0.0;
    for (var j = tid; j < D; j += ${WG}) { let v = x[o + j]; ss += v * v; }
    let r = inverseSqrt(wgSum(ss, tid) / f32(D) + uniforms.eps);
    if (index / ${WG} < rows && tid == 0) { result[row] = r; }
  }`;

const DX = `${WG_SUM}
  fn main(index : i32) {
    let rows = uniforms.rows;
    let D = uniforms.D;
    let row = min(index / ${WG}, rows - 1);
    let tid = i32(localId.x);
    let o = row * D;
    var dot = 0.0;
    for (var j = tid; j < D; j += ${WG}) { dot += dy[o + j] * g[j] * x[o + j]; }
    let total = wgSum(dot, tid);
    let rn = r[row];
    let c = rn * rn * rn * total / f32(D);
    if (index / ${WG} < rows) {
      for (var j = tid; j < D; j += ${WG}) { result[o + j] = rn * dy[o + j] * g[j] - x[o + j] * c; }
    }
  }`;

// One invocation per (chunk, column): the column's sum of dy x r over the chunk's rows.
const DG_PARTIAL = `
  fn main(index : i32) {
    let D = uniforms.D;
    let rows = uniforms.rows;
    if (index >= uniforms.chunks * D) { return; }
    let chunk = index / D;
    let j = index - chunk * D;
    let end = min(rows, (chunk + 1) * ${ROWS_PER_CHUNK});
    var s = 0.0;
    for (var n = chunk * ${ROWS_PER_CHUNK}; n < end; n++) { s += dy[n * D + j] * x[n * D + j] * r[n]; }
    result[index] = s;
  }`;

/** x [..., D], g [D] -> x / sqrt(mean(x^2) + eps) * g, on the WebGPU backend, one node on the gradient tape. */
export function rmsNormGpu(x: tf.Tensor, g: tf.Tensor1D, eps: number): tf.Tensor {
  const D = g.shape[0];
  if (x.shape[x.rank - 1] !== D) throw new Error(`rmsNorm: the last axis of x (${x.shape.join('x')}) must match the weight's ${D}`);
  const rows = x.size / D;
  const op = tf.customGrad(((xi: tf.Tensor, gi: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2 = tf.reshape(xi, [rows, D]);
    save([x2, gi]);
    const y = runProgram(gpuProgram('rmsnorm', '', ['x', 'g'], [rows, D], rows * WG, 'rows : i32, D : i32, eps : f32,', FORWARD), [x2, gi], [i32(rows), i32(D), f32(eps)]);
    return {
      value: tf.reshape(y, xi.shape),
      gradFunc: (dy: tf.Tensor, [sx, sg]: tf.Tensor[]) => {
        const dy2 = tf.reshape(dy, [rows, D]);
        const r = runProgram(gpuProgram('rmsnorm_r', '', ['x'], [rows], rows * WG, 'rows : i32, D : i32, eps : f32,', ROW_R), [sx!], [i32(rows), i32(D), f32(eps)]);
        const dx = runProgram(gpuProgram('rmsnorm_dx', '', ['x', 'g', 'dy', 'r'], [rows, D], rows * WG, 'rows : i32, D : i32,', DX), [sx!, sg!, dy2, r], [i32(rows), i32(D)]);
        const chunks = Math.ceil(rows / ROWS_PER_CHUNK);
        const part = runProgram(gpuProgram('rmsnorm_dg', '', ['x', 'dy', 'r'], [chunks, D], chunks * D, 'rows : i32, D : i32, chunks : i32,', DG_PARTIAL), [sx!, dy2, r], [i32(rows), i32(D), i32(chunks)]);
        return [tf.reshape(dx, dy.shape), tf.sum(part, 0)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, g: tf.Tensor) => tf.Tensor;
  return op(x, g);
}
