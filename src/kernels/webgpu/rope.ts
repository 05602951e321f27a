// Rotary position embedding on WebGPU (HF's rotate-half convention, as rope() in src/model/llama.ts) as one op
// with its own gradient. With half = hd / 2 and c, s the cos/sin tables (each frequency twice):
//   y_d = x_d c_d - x_{d+half} s_d (d < half);  y_d = x_d c_d + x_{d-half} s_d (d >= half)
//   dx_d = dy_d c_d + dy_{d+half} s_{d+half} (d < half);  dx_d = dy_d c_d - dy_{d-half} s_{d-half} (d >= half)
// One invocation per element; the tables are constants of the op (no gradient).
import * as tf from '@tensorflow/tfjs-core';
import { gpuProgram, i32, runProgram } from './program';

const code = (backward: boolean) => `
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let hd = uniforms.hd;
    let half = hd / 2;
    let T = uniforms.T;
    let d = index % hd;
    let t = (index / hd) % T;
    let b = index / (uniforms.heads * T * hd);
    let cs = (b * T + t) * hd;
    var y = x[index] * cosT[cs + d];
    ${
      backward
        ? `if (d < half) { y += x[index + half] * sinT[cs + d + half]; } else { y -= x[index - half] * sinT[cs + d - half]; }`
        : `if (d < half) { y -= x[index + half] * sinT[cs + d]; } else { y += x[index - half] * sinT[cs + d]; }`
    }
    result[index] = y;
  }`;

/** x [B, N, T, hd], cos/sin [B, 1, T, hd] -> x cos + rotate_half(x) sin, on the WebGPU backend. */
export function ropeGpu(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const [B, N, T, hd] = x.shape as [number, number, number, number];
  if (hd % 2 || !tf.util.arraysEqual(cos.shape, [B, 1, T, hd]) || !tf.util.arraysEqual(sin.shape, [B, 1, T, hd])) {
    throw new Error(`rope: x ${x.shape.join('x')} needs an even head size and cos/sin tables of ${[B, 1, T, hd].join('x')} (got ${cos.shape.join('x')}, ${sin.shape.join('x')})`);
  }
  const n = x.size;
  const run = (t: tf.Tensor, c: tf.Tensor, s: tf.Tensor, backward: boolean) =>
    runProgram(gpuProgram(backward ? 'rope_bwd' : 'rope', '', ['x', 'cosT', 'sinT'], x.shape, n, 'n : i32, hd : i32, T : i32, heads : i32,', code(backward)), [t, c, s], [i32(n), i32(hd), i32(T), i32(N)]);
  const op = tf.customGrad(((xi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([cos, sin]); // the caller may free its tables before backprop
    return {
      value: run(xi, cos, sin, false),
      gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) => run(dy, c!, s!, true),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
  return op(x);
}
