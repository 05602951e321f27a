// Two more of the Llama block's elementwise steps as one op each, with their own gradients, for the CPU
// backends (wasm, cpu): the SwiGLU gate silu(g) * u and RoPE, in tabtune's WebAssembly SIMD kernels
// (simd.wat; RoPE also as a JavaScript pass where WebAssembly SIMD is missing). In TF.js they are 3 and 5
// ops forward plus their gradients' ops, each a kernel call and a tape node: on small models that
// bookkeeping costs more than the arithmetic. ops.ts and llama.ts
// choose them under cpuFusedOps(); tests compare them with the TF.js ops.
import * as tf from '@tensorflow/tfjs-core';
import { scratch, simdAvailable } from '../kernels/simd';
import { floats, tensorOf } from '../kernels/tensor-io';

/**
 * silu(g) * u, elementwise (g, u of one shape). With s = sigmoid(g):
 *   y = g s u;  du = dy g s;  dg = dy u s (1 + g (1 - s))
 */
export function swigluCpu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  const op = tf.customGrad(((g: tf.Tensor, u: tf.Tensor, save: tf.GradSaveFunc) => {
    save([g, u]);
    const n = g.size;
    const a = scratch(3 * n + 12);
    const G = a.alloc(n);
    const U = a.alloc(n);
    const Y = a.alloc(n);
    a.f32.set(floats(g), G);
    a.f32.set(floats(u), U);
    a.swigluFwd(G, U, Y, n);
    return {
      value: tensorOf(a.f32.subarray(Y, Y + n), g.shape),
      gradFunc: (dy: tf.Tensor, [sg, su]: tf.Tensor[]) => {
        const b = scratch(5 * n + 20);
        const G2 = b.alloc(n);
        const U2 = b.alloc(n);
        const DY = b.alloc(n);
        const DG = b.alloc(n);
        const DU = b.alloc(n);
        b.f32.set(floats(sg!), G2);
        b.f32.set(floats(su!), U2);
        b.f32.set(floats(dy), DY);
        b.swigluBwd(G2, U2, DY, DG, DU, n);
        return [tensorOf(b.f32.subarray(DG, DG + n), sg!.shape), tensorOf(b.f32.subarray(DU, DU + n), su!.shape)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (g: tf.Tensor, u: tf.Tensor) => tf.Tensor;
  return op(gate, up);
}

/**
 * RoPE in HF's rotate-half convention: x [B, N, T, hd], cos/sin [B, 1, T, hd] (constants) ->
 * x cos + rotate_half(x) sin, where rotate_half(x) = [-x2, x1] for x = [x1, x2]. Its gradient is the
 * transposed rotation: dx = dy cos + rotate_half^T(dy sin), rotate_half^T(z) = [z2, -z1].
 */
export function ropeCpu(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const [B, N, T, hd] = x.shape as [number, number, number, number];
  const c = Float32Array.from(floats(cos));
  const s = Float32Array.from(floats(sin));
  // In tabtune's SIMD kernel, one call per sequence (its N x T rows share the sequence's cos and sin).
  const passSimd = (src: Float32Array, backward: boolean): Float32Array => {
    const n = B * N * T * hd;
    const a = scratch(2 * n + 2 * c.length + 16);
    const X = a.alloc(n);
    const C = a.alloc(c.length);
    const S = a.alloc(s.length);
    const Y = a.alloc(n);
    a.f32.set(src, X);
    a.f32.set(c, C);
    a.f32.set(s, S);
    for (let b = 0; b < B; b++) a.rope(X + b * N * T * hd, C + b * T * hd, S + b * T * hd, Y + b * N * T * hd, N * T, T, hd, backward);
    return a.f32.subarray(Y, Y + n);
  };
  const run = (src: Float32Array, backward: boolean, shape: number[]): tf.Tensor =>
    simdAvailable() ? tensorOf(passSimd(src, backward), shape) : tf.tensor(ropePassJs(src, c, s, [B, N, T, hd], backward), shape);
  const op = tf.customGrad(((xi: tf.Tensor) => ({
    value: run(floats(xi), false, xi.shape),
    gradFunc: (dy: tf.Tensor) => run(floats(dy), true, dy.shape),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
  return op(x);
}

/**
 * ropeCpu's pass in plain JavaScript (where WebAssembly SIMD is missing): src [B, N, T, hd], c and s [B, 1, T, hd].
 * out[i] = in[i] cos[i] + sign * in[partner] sin[i]; forward: partner i + hd/2 (sign -) below hd/2, i - hd/2 (+)
 * above; backward: dx[i] = dy[i] cos[i] + dy[i + hd/2] sin[i + hd/2] below, dy[i] cos[i] - dy[i - hd/2] sin[i - hd/2] above.
 */
export function ropePassJs(src: Float32Array, c: Float32Array, s: Float32Array, [B, N, T, hd]: [number, number, number, number], backward: boolean): Float32Array {
  const half = hd / 2;
  const out = new Float32Array(src.length);
  for (let b = 0; b < B; b++)
    for (let n = 0; n < N; n++)
      for (let t = 0; t < T; t++) {
        const o = ((b * N + n) * T + t) * hd;
        const r = (b * T + t) * hd;
        for (let i = 0; i < half; i++) {
          const lo = src[o + i]!;
          const hi = src[o + i + half]!;
          if (backward) {
            out[o + i] = lo * c[r + i]! + hi * s[r + i + half]!;
            out[o + i + half] = hi * c[r + i + half]! - lo * s[r + i]!;
          } else {
            out[o + i] = lo * c[r + i]! - hi * s[r + i]!;
            out[o + i + half] = hi * c[r + i + half]! + lo * s[r + i + half]!;
          }
        }
      }
  return out;
}

/**
 * Inverted dropout, x / (1 - p) on the kept elements, its mask drawn from `seed` by a counter-based hash in
 * tabtune's SIMD kernel: TF.js's tf.dropout draws every element from a JavaScript generator and takes five
 * more ops (with LoRA dropout on every linear layer, a fifth of a small model's step). The backward makes the
 * same mask again from the seed instead of keeping it: dx = dy / (1 - p) on the kept elements.
 */
export function dropoutCpu(x: tf.Tensor, p: number, seed: number): tf.Tensor {
  const pass = (src: Float32Array, shape: number[]): tf.Tensor => {
    const n = src.length;
    const a = scratch(2 * n + 8);
    const X = a.alloc(n);
    const Y = a.alloc(n);
    a.f32.set(src, X);
    a.dropout(X, Y, n, p, seed);
    return tensorOf(a.f32.subarray(Y, Y + n), shape);
  };
  const op = tf.customGrad(((xi: tf.Tensor) => ({
    value: pass(floats(xi), xi.shape),
    gradFunc: (dy: tf.Tensor) => pass(floats(dy), dy.shape),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
  return op(x);
}
