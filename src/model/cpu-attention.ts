// Grouped-query attention as one op with its own gradient, computed in tabtune's WebAssembly SIMD kernels
// (src/kernels/simd.wat attn_fwd / attn_bwd, one call per sequence and query head) for the CPU backends
// (wasm, cpu). The same math as attention() in ops.ts:
//   s = q kT / sqrt(hd) + mask;  p = softmax(s);  o = p v
// TF.js builds this from dozens of small ops per (sequence, head), each costing more in bookkeeping than in
// arithmetic; here a layer's attention is one op forward and one backward. Each query row only visits the
// keys up to the last one its mask lets it see (a causal row i stops at i), and the backward recomputes p
// from each row's saved max and 1 / sum of exp instead of keeping [B, H, T, S] probabilities (as
// FlashAttention does):
//   dP = dO vT;  dS = p (dP - rowsum(dO o));  dq = dS k / sqrt(hd);  dk = dS^T q / sqrt(hd);  dv = p^T dO
import * as tf from '@tensorflow/tfjs-core';
import { arenaFits, scratch, simdAvailable } from '../kernels/simd';
import { floats, tensorOf } from '../kernels/tensor-io';

/** Whether the fused op can run here: a CPU backend with WebAssembly SIMD and tensors that fit one memory. */
export function cpuAttentionAvailable(q: tf.Tensor, kT: tf.Tensor): boolean {
  const backend = tf.getBackend();
  if (backend !== 'wasm' && backend !== 'cpu') return false;
  if (!simdAvailable()) return false;
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const [, KV, , S] = kT.shape as [number, number, number, number];
  return arenaFits(4 * B * H * T * hd + 6 * B * KV * S * hd + B * T * (S + 1) + 2 * B * H * T + 2 * S + 64); // the backward's scratch, the larger
}

/** Per query row (b, i): keys 0..limit-1 are visited (up to the last one the mask allows; all S if none). */
function rowLimits(mask: Float32Array, B: number, T: number, S: number): Int32Array {
  const lim = new Int32Array(B * T);
  for (let r = 0; r < B * T; r++) {
    let j = S - 1;
    while (j >= 0 && mask[r * S + j]! < -1e8) j--;
    lim[r] = j < 0 ? S : j + 1;
  }
  return lim;
}

/**
 * A mask's values and row limits, read once per mask tensor: a forward passes the same mask to every layer,
 * and reading it back (B T S floats) and scanning it were done again for each.
 */
const maskCache = new WeakMap<tf.Tensor, { m: Float32Array; lim: Int32Array }>();
function maskValues(mask: tf.Tensor, B: number, T: number, S: number): { m: Float32Array; lim: Int32Array } {
  let e = maskCache.get(mask);
  if (!e) {
    const m = mask.dataSync() as Float32Array;
    e = { m, lim: rowLimits(m, B, T, S) };
    maskCache.set(mask, e);
  }
  return e;
}

/** [X, rows, cols] -> [X, cols, rows] into `out` (offsets in floats). */
function transposeInto(f: Float32Array, src: number, out: number, X: number, rows: number, cols: number): void {
  for (let x = 0; x < X; x++) {
    const a = src + x * rows * cols;
    const o = out + x * rows * cols;
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) f[o + c * rows + r] = f[a + r * cols + c]!;
  }
}

/**
 * q: [B, H, T, hd], kT: [B, KV, hd, S], v: [B, KV, S, hd], mask: [B, 1, 1, T, S] (0 or -1e9, additive).
 * Returns [B, T, H * hd]. Query head h reads key/value head floor(h / (H / KV)).
 */
export function cpuAttention(q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const [, KV, , S] = kT.shape as [number, number, number, number];
  const rep = H / KV;
  const scale = 1 / Math.sqrt(hd);
  const op = tf.customGrad(((qi: tf.Tensor, kTi: tf.Tensor, vi: tf.Tensor, _mi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([qi, kTi, vi]);
    const { m, lim } = maskValues(mask, B, T, S); // [B, T, S], [B, T] (the same mask in every layer of a forward)
    const a = scratch(B * H * T * hd + 2 * B * KV * S * hd + B * T * H * hd + B * T * S + B * T + S + 2 * B * H * T + 32);
    const f = a.f32;
    const Q = a.alloc(B * H * T * hd);
    const KT = a.alloc(B * KV * hd * S);
    const V = a.alloc(B * KV * S * hd);
    const O = a.alloc(B * T * H * hd);
    const M = a.alloc(B * T * S);
    const L = a.alloc(B * T);
    const s = a.alloc(S);
    const ST = a.alloc(2 * B * H * T);
    f.set(floats(qi), Q);
    f.set(floats(kTi), KT);
    f.set(floats(vi), V);
    f.set(m, M);
    a.i32.set(lim, L);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / rep);
        a.attnFwd(Q + (b * H + h) * T * hd, KT + (b * KV + g) * hd * S, V + (b * KV + g) * S * hd, O + (b * T * H + h) * hd, M + b * T * S, L + b * T, s, ST + (b * H + h) * T * 2, T, S, hd, H * hd, scale);
      }
    const out = f.slice(O, O + B * T * H * hd);
    const stat = f.slice(ST, ST + 2 * B * H * T); // per row: max score, 1 / sum of exp
    return {
      value: tf.tensor(out, [B, T, H * hd]),
      gradFunc: (dy: tf.Tensor, [sq, skT, sv]: tf.Tensor[]) => {
        const b2 = scratch(B * H * T * hd * 4 + 6 * B * KV * S * hd + B * T * S + B * T + 2 * B * H * T + 2 * S + 64);
        const f2 = b2.f32;
        const Q2 = b2.alloc(B * H * T * hd);
        const KT2 = b2.alloc(B * KV * hd * S);
        const V2 = b2.alloc(B * KV * S * hd);
        const K2 = b2.alloc(B * KV * S * hd); // keys as rows [S, hd]
        const VT2 = b2.alloc(B * KV * hd * S); // values transposed [hd, S]
        const dO = b2.alloc(B * T * H * hd);
        const O2 = b2.alloc(B * T * H * hd);
        const dQ = b2.alloc(B * H * T * hd);
        const dK = b2.alloc(B * KV * S * hd);
        const dV = b2.alloc(B * KV * S * hd);
        const M2 = b2.alloc(B * T * S);
        const L2 = b2.alloc(B * T);
        const ST2 = b2.alloc(2 * B * H * T);
        const p = b2.alloc(S);
        const dp = b2.alloc(S);
        f2.set(floats(sq!), Q2);
        f2.set(floats(skT!), KT2);
        f2.set(floats(sv!), V2);
        f2.set(floats(dy), dO);
        f2.set(out, O2);
        f2.set(m, M2);
        f2.set(stat, ST2);
        b2.i32.set(lim, L2);
        f2.fill(0, dK, dK + B * KV * S * hd);
        f2.fill(0, dV, dV + B * KV * S * hd);
        transposeInto(f2, KT2, K2, B * KV, hd, S);
        transposeInto(f2, V2, VT2, B * KV, S, hd);
        for (let b = 0; b < B; b++)
          for (let h = 0; h < H; h++) {
            const kv = (b * KV + Math.floor(h / rep)) * S * hd; // same offset for [hd, S] and [S, hd] blocks
            const rows = (b * T * H + h) * hd; // row i of this head in dO and O: + i * H * hd
            b2.attnBwd(Q2 + (b * H + h) * T * hd, KT2 + kv, K2 + kv, VT2 + kv, dO + rows, O2 + rows, M2 + b * T * S, L2 + b * T, ST2 + (b * H + h) * T * 2, p, dp, dQ + (b * H + h) * T * hd, dK + kv, dV + kv, T, S, hd, H * hd, scale);
          }
        transposeInto(f2, dK, K2, B * KV, S, hd); // dkT [B, KV, hd, S]
        return [
          tensorOf(f2.subarray(dQ, dQ + B * H * T * hd), [B, H, T, hd]),
          tensorOf(f2.subarray(K2, K2 + B * KV * hd * S), [B, KV, hd, S]),
          tensorOf(f2.subarray(dV, dV + B * KV * S * hd), [B, KV, S, hd]),
          tf.zeros([B, 1, 1, T, S]),
        ];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor, mask: tf.Tensor) => tf.Tensor;
  return op(q, kT, v, mask);
}
