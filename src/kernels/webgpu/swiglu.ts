// The Llama MLP's gate, silu(g) * u, on WebGPU as one op with its own gradient (TF.js builds it from sigmoid,
// two multiplies and their gradients: five nodes, each saving its inputs). With s = sigmoid(g):
//   y = g s u;  dg = dy u s (1 + g (1 - s));  du = dy g s
// One invocation per element, for the forward and for each gradient.
import * as tf from '@tensorflow/tfjs-core';
import { gpuProgram, i32, runProgram } from './program';

const SIG = `fn sig(v : f32) -> f32 { return 1.0 / (1.0 + exp(-v)); }`;

const FORWARD = `${SIG}
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let v = gate[index];
    result[index] = v * sig(v) * up[index];
  }`;

const D_GATE = `${SIG}
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let v = gate[index];
    let s = sig(v);
    result[index] = dy[index] * up[index] * s * (1.0 + v * (1.0 - s));
  }`;

const D_UP = `${SIG}
  fn main(index : i32) {
    if (index >= uniforms.n) { return; }
    let v = gate[index];
    result[index] = dy[index] * v * sig(v);
  }`;

/** silu(gate) * up for two tensors of the same shape, on the WebGPU backend, one node on the gradient tape. */
export function swigluGpu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (!tf.util.arraysEqual(gate.shape, up.shape)) throw new Error(`swiglu: gate ${gate.shape.join('x')} and up ${up.shape.join('x')} must have the same shape`);
  const n = gate.size;
  const prog = (name: string, vars: string[], code: string) => gpuProgram(name, '', vars, gate.shape, n, 'n : i32,', code);
  const op = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
    save([g, u]);
    return {
      value: runProgram(prog('swiglu', ['gate', 'up'], FORWARD), [g, u], [i32(n)]),
      gradFunc: (dy: tf.Tensor, [sg, su]: tf.Tensor[]) => [
        runProgram(prog('swiglu_dg', ['gate', 'up', 'dy'], D_GATE), [sg!, su!, dy], [i32(n)]),
        runProgram(prog('swiglu_du', ['gate', 'dy'], D_UP), [sg!, dy], [i32(n)]),
      ],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (g: tf.Tensor, u: tf.Tensor) => tf.Tensor;
  return op(gate, up);
}
