// Building blocks shared by the architectures. Conventions:
// - a Linear keeps its weight in math layout [in, out] (the HF checkpoint's [out, in] transposed once
//   at load), so y = x @ W is a plain matMul: on tfjs-wasm a matMul with transpose flags runs ~14x slower.
// - shapes are written beside the lines that change them: B batch, T new tokens, S keys (past + new),
//   D model width, H query heads, KV key/value heads, hd head size.
import * as tf from '@tensorflow/tfjs-core';
// Gradients of the core ops: tfjs-core alone does not register them; the umbrella package does, in
// both its ESM (bundlers) and Node builds (tfjs-core's own deep import does not resolve in Node).
import '@tensorflow/tfjs';
import { arenaFits, scratch, simdAvailable } from '../kernels/simd';
import { floats, tensorOf } from '../kernels/tensor-io';
import { cpuAttention, cpuAttentionAvailable } from './cpu-attention';
import { dropoutCpu, swigluCpu } from './cpu-fused';
import { gpuAttention, gpuAttentionAvailable } from '../kernels/webgpu/attention';
import { rmsNormGpu } from '../kernels/webgpu/rms-norm';
import { swigluGpu } from '../kernels/webgpu/swiglu';
import type { SeedStream } from '../util/random';

/** Something that adds to a Linear's output (a LoRA adapter, later other light adapters). */
export interface LinearAdapter {
  /** x: [N, in] -> delta [N, out], or null while the adapter is off. */
  apply(x: tf.Tensor2D): tf.Tensor2D | null;
  /** apply()'s delta as its low-rank parts (s * xin A B, xin = x or dropout(x)), for the fused op; null when off. */
  lowRank?(x: tf.Tensor2D): LowRankDelta | null;
  /** The tensors apply() trains (LoRA's A and B, OFT's oft_R): a recomputed block takes them as inputs. */
  trainables?(): tf.Tensor[];
  /** Where its random draws (dropout) come from: a recomputed block rewinds it to draw the same masks again. */
  readonly seeds?: SeedStream;
}

export interface LowRankDelta {
  /** [N, in]: x, or x with dropout applied */
  xin: tf.Tensor2D;
  /** [in, r] */
  A: tf.Tensor2D;
  /** [r, out] */
  B: tf.Tensor2D;
  s: number;
}

export interface Linear {
  /** HF module name, e.g. "model.layers.0.self_attn.q_proj". */
  name: string;
  /** [in, out] */
  w: tf.Tensor2D;
  /** [out] or null */
  b: tf.Tensor1D | null;
  /** How the checkpoint stores the weight: nn.Linear [out, in] or GPT-2 Conv1D [in, out]. */
  stored: 'out_in' | 'in_out';
  /** The weight itself is trained (full-parameter mode): backprop computes its gradient too. */
  trainable?: boolean;
  /**
   * w transposed [out, in], kept for the backward of a frozen weight (dx = dy w^T) so it is not transposed
   * again at every step; set by the architecture when the model is small enough to hold both.
   */
  wT?: tf.Tensor2D;
  adapter?: LinearAdapter | null;
}

/**
 * Whether matMuls use the explicitly-transposed gradients below (default) or TF.js autograd's own
 * (transpose flags). Only the benchmark turns this off, to measure what the custom gradients buy.
 */
let fastGrads = true;
let fusedCpu = true;
export function setFastGradients(on: boolean): void {
  fastGrads = on;
}

/** Swaps the last two axes. */
export function swapLast(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1]!, perm[n - 2]!];
  return tf.transpose(x, perm);
}

/**
 * a @ b (rank 2, or batched with equal batch dims) whose gradient uses explicit transposes:
 * autograd's own matMul gradient passes transpose flags, which tfjs-wasm runs ~14x slower.
 */
export const mm = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => (fastGrads ? mmFast(a, b) : tf.matMul(a, b));

const mmFast = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, [sa, sb]: tf.Tensor[]) => [tf.matMul(dy, swapLast(sb!)), tf.matMul(swapLast(sa!), dy)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/**
 * x @ w for a frozen weight: the weight is a constant of the op, so backprop computes only dx
 * (dy @ w^T, transposed explicitly) and never the weight gradient nobody asked for.
 */
export function frozenMatMul(x: tf.Tensor2D, w: tf.Tensor2D, wT?: tf.Tensor2D): tf.Tensor2D {
  if (!fastGrads) return tf.matMul(x, w);
  const f = tf.customGrad(((xi: tf.Tensor) => ({
    value: tf.matMul(xi as tf.Tensor2D, w),
    gradFunc: (dy: tf.Tensor) => tf.matMul(dy as tf.Tensor2D, wT ?? tf.transpose(w)),
  })) as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor2D;
}

/** x: [..., in] -> [..., out] */
export function linear(x: tf.Tensor, l: Linear): tf.Tensor {
  const [inDim, outDim] = l.w.shape;
  const lead = x.shape.slice(0, -1);
  const x2 = tf.reshape(x, [-1, inDim]) as tf.Tensor2D; // [N, in]
  let y: tf.Tensor;
  const low = !l.trainable && fastGrads && cpuFusedOps() && simdAvailable() ? l.adapter?.lowRank?.(x2) : undefined;
  if (low) y = loraLinear(x2, l.w, low, l.wT);
  else {
    y = l.trainable ? mm(x2, l.w) : frozenMatMul(x2, l.w, l.wT); // [N, out]
    const delta = l.adapter?.apply(x2);
    if (delta) y = tf.add(y, delta);
  }
  if (l.b) y = tf.add(y, l.b);
  return tf.reshape(y, [...lead, outDim]);
}

/** Whether the current backend keeps tensors in CPU memory (wasm, cpu), where reading one back is a copy. */
export function cpuBackend(): boolean {
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu';
}

/**
 * x W + s (xin A B) for a frozen W as one op with its own gradient: the same TF.js kernels in the same order
 * as frozenMatMul + the adapter's apply(), but one node on the gradient tape instead of five (each node
 * copies what it saves and adds its own gradient ops; with LoRA on every linear layer of a small model that
 * bookkeeping outweighs the arithmetic). h = xin A [N, r]:
 *   dx = dy W^T;  dh = s dy B^T;  dxin = dh A^T;  dA = xin^T dh;  dB = s h^T dy
 */
function loraLinear(x: tf.Tensor2D, w: tf.Tensor2D, d: LowRankDelta, wT?: tf.Tensor2D): tf.Tensor2D {
  const s = d.s;
  const op = tf.customGrad(((xi: tf.Tensor2D, xin: tf.Tensor2D, A: tf.Tensor2D, B: tf.Tensor2D, save: tf.GradSaveFunc) => {
    const h = tf.matMul(xin, A); // [N, r]
    save([xin, A, B, h]);
    return {
      value: tf.add(tf.matMul(xi, w), tf.mul(tf.matMul(h, B), s)),
      gradFunc: (dy: tf.Tensor2D, [sxin, sA, sB, sh]: tf.Tensor2D[]) => {
        const dh = tf.mul(tf.matMul(dy, tf.transpose(sB!)), s) as tf.Tensor2D; // [N, r]
        const [dA, dB] = lowRankWeightGrads(sxin!, dh, sh!, dy, s);
        return [tf.matMul(dy, wT ?? tf.transpose(w)), tf.matMul(dh, tf.transpose(sA!)), dA, dB];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, xin: tf.Tensor, A: tf.Tensor, B: tf.Tensor) => tf.Tensor2D;
  return op(x, d.xin, d.A, d.B);
}

/**
 * dA = xin^T dh [in, r] and dB = s h^T dy [r, out], row by row of their transposes in tabtune's SIMD vecmat:
 * dA^T row k = dh[:, k]^T xin. A TF.js matMul would either transpose the [N, in] activations or let XNNPACK
 * repack an [N, in] operand for an 8-row product, both far slower than these r passes over it.
 */
function lowRankWeightGrads(xin: tf.Tensor2D, dh: tf.Tensor2D, h: tf.Tensor2D, dy: tf.Tensor2D, s: number): [tf.Tensor2D, tf.Tensor2D] {
  const [N, inDim] = xin.shape;
  const r = dh.shape[1];
  const outDim = dy.shape[1];
  const a = scratch(N * (inDim + outDim + 2 * r) + r * (inDim + outDim));
  const f = a.f32;
  const X = a.alloc(N * inDim);
  const DY = a.alloc(N * outDim);
  const DHT = a.alloc(r * N);
  const HT = a.alloc(r * N);
  const GA = a.alloc(r * inDim);
  const GB = a.alloc(r * outDim);
  f.set(floats(xin), X);
  f.set(floats(dy), DY);
  const dhs = floats(dh);
  const hs = floats(h);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < r; k++) {
      f[DHT + k * N + n] = dhs[n * r + k]!;
      f[HT + k * N + n] = s * hs[n * r + k]!;
    }
  for (let k = 0; k < r; k++) {
    a.vecmat(DHT + k * N, X, GA + k * inDim, N, inDim); // dA^T row k
    a.vecmat(HT + k * N, DY, GB + k * outDim, N, outDim); // dB row k
  }
  const dA = new Float32Array(inDim * r);
  for (let k = 0; k < r; k++) for (let i = 0; i < inDim; i++) dA[i * r + k] = f[GA + k * inDim + i]!;
  return [tf.tensor2d(dA, [inDim, r]), tensorOf(f.subarray(GB, GB + r * outDim), [r, outDim]) as tf.Tensor2D];
}

/** The rows gatherRowsCpu copies into before they become a tensor (kept: a new array per call costs more than the copy). */
let gatherBuf = new Float32Array(0);

/**
 * table[ids] on the CPU backends: one row copy per id. tfjs-wasm's GatherV2 takes ~6 ms for 1,024 rows of 192
 * floats (an index computed per element), this ~0.1 ms; and the lookup is no node on the gradient tape (GatherV2's
 * saved a clone of the table). An id outside the table is refused with a message naming the likely cause. Used
 * whenever the backend is a CPU one, also with setCpuFusedOps(false) (the TF.js reference path of the tests).
 */
export function gatherRowsCpu(table: tf.Tensor2D, ids: number[]): tf.Tensor2D {
  const [V, D] = table.shape;
  const n = ids.length * D;
  if (gatherBuf.length < n) gatherBuf = new Float32Array(n);
  const src = floats(table);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(Number.isInteger(id) && id >= 0 && id < V)) throw new Error(`token id ${id} is outside the embedding table (0..${V - 1}): the tokenizer and the model do not match`);
    gatherBuf.set(src.subarray(id * D, id * D + D), i * D);
  }
  return tensorOf(gatherBuf.subarray(0, n), [ids.length, D]) as tf.Tensor2D;
}

/**
 * Embedding lookup table[ids]: [V, D] x [B, T] -> [B, T, D]. The forward is a gather (row copies on the
 * CPU backends, gatherRowsCpu); a trainable table gets a hand-written gradient, because gather's own needs
 * UnsortedSegmentSum, which tfjs-wasm lacks: on the CPU backends (wasm, cpu) the rows of dy are summed
 * into the table's rows in plain JavaScript (N x D adds), on GPU backends through a one-hot matMul (no
 * readback).
 */
export function embedding(table: tf.Tensor2D, ids: number[][], trainable: boolean): tf.Tensor {
  const B = ids.length;
  const T = ids[0]!.length;
  const flat = ids.flat();
  const [V, D] = table.shape;
  const cpu = cpuBackend();
  const idT = cpu ? null : tf.tensor1d(flat, 'int32');
  const lookup = (t: tf.Tensor2D) => tf.reshape(idT ? tf.gather(t, idT) : gatherRowsCpu(t, flat), [B, T, D]);
  if (!trainable) return lookup(table);
  const f = tf.customGrad(((t: tf.Tensor) => ({
    value: lookup(t as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor) => {
      const backend = tf.getBackend();
      if (backend === 'wasm' || backend === 'cpu') {
        const d = floats(dy); // [N * D]
        const g = new Float32Array(V * D);
        for (let n = 0; n < flat.length; n++) {
          const row = flat[n]! * D;
          const src = n * D;
          for (let j = 0; j < D; j++) g[row + j]! += d[src + j]!;
        }
        return tf.tensor2d(g, [V, D]);
      }
      // oneHot's float32 dtype is ignored by tfjs-wasm (it writes int32 bits): cast explicitly.
      const ohT = tf.transpose(tf.cast(tf.oneHot(idT!, V), 'float32')); // [V, N]
      return tf.matMul(ohT as tf.Tensor2D, tf.reshape(dy, [B * T, D]) as tf.Tensor2D); // [V, D]
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(table);
}

/** RMSNorm as in HF Llama: x / sqrt(mean(x^2) + eps) * g, over the last axis. */
export function rmsNorm(x: tf.Tensor, g: tf.Tensor1D, eps: number): tf.Tensor {
  if (cpuFusedOps() && simdAvailable() && arenaFits(3 * x.size + 2 * g.size + x.size / g.size + 20)) return rmsNormCpu(x, g, eps);
  if (gpuFusedOps()) return rmsNormGpu(x, g, eps);
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), g);
}

/**
 * rmsNorm() as one op with its own gradient, in tabtune's WebAssembly SIMD kernels (CPU backends): the dozen
 * TF.js ops of the forward and backward cost more than the arithmetic.
 * With r = 1 / sqrt(mean(x^2) + eps) per row and D the row length:
 *   y = x r g;  dg = sum over rows of dy x r;  dx = r (dy g) - x r^3 / D sum_j(dy_j g_j x_j)
 */
function rmsNormCpu(x: tf.Tensor, g: tf.Tensor1D, eps: number): tf.Tensor {
  const D = g.shape[0];
  const op = tf.customGrad(((xi: tf.Tensor, gi: tf.Tensor, save: tf.GradSaveFunc) => {
    save([xi, gi]);
    const rows = xi.size / D;
    const a = scratch(2 * rows * D + D + rows + 12);
    const X = a.alloc(rows * D);
    const G = a.alloc(D);
    const Y = a.alloc(rows * D);
    const R = a.alloc(rows);
    a.f32.set(floats(xi), X);
    a.f32.set(floats(gi), G);
    a.rmsNormFwd(X, G, Y, R, rows, D, eps);
    const r = a.f32.slice(R, R + rows); // each row's 1 / rms, for the backward
    return {
      value: tensorOf(a.f32.subarray(Y, Y + rows * D), xi.shape),
      gradFunc: (dy: tf.Tensor, [sx, sg]: tf.Tensor[]) => {
        const b = scratch(3 * rows * D + 2 * D + rows + 20);
        const X2 = b.alloc(rows * D);
        const G2 = b.alloc(D);
        const DY = b.alloc(rows * D);
        const R2 = b.alloc(rows);
        const DX = b.alloc(rows * D);
        const DG = b.alloc(D);
        b.f32.set(floats(sx!), X2);
        b.f32.set(floats(sg!), G2);
        b.f32.set(floats(dy), DY);
        b.f32.set(r, R2);
        b.f32.fill(0, DG, DG + D);
        b.rmsNormBwd(X2, G2, DY, R2, DX, DG, rows, D);
        return [tensorOf(b.f32.subarray(DX, DX + rows * D), sx!.shape), tensorOf(b.f32.subarray(DG, DG + D), [D])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor, g: tf.Tensor) => tf.Tensor;
  return op(x, g);
}

/** LayerNorm over the last axis (GPT-2). */
export function layerNorm(x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** GELU, tanh approximation (HF "gelu_new"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), c);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

export function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

/**
 * Inverted dropout with probability p (kept elements scaled by 1 / (1 - p)), its mask a function of `seed`: on the
 * CPU backends tabtune's fused op (cpu-fused.ts dropoutCpu), elsewhere tf.dropout. The two draw different masks
 * from the same seed; each is reproducible on its own backend (a recomputed block draws the same one again).
 */
export function dropout(x: tf.Tensor, p: number, seed: number): tf.Tensor {
  if (cpuFusedOps() && simdAvailable() && arenaFits(2 * x.size + 8)) return dropoutCpu(x, p, seed);
  return tf.dropout(x, p, undefined, seed);
}

/** The Llama MLP's gate silu(gate) * up (one fused op on the CPU backends, see cpuFusedOps, and on WebGPU, see gpuFusedOps). */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (cpuFusedOps() && simdAvailable() && arenaFits(5 * gate.size + 20)) return swigluCpu(gate, up);
  return gpuFusedOps() ? swigluGpu(gate, up) : tf.mul(silu(gate), up);
}

/**
 * Additive attention mask [B, 1, 1, T, S] (0 = attend, -1e9 = blocked): causal over absolute
 * positions (query i sits at past + i) and blocking keys whose keyMask is 0 (padding).
 * A finite large negative keeps fully-masked pad rows finite instead of NaN.
 */
export function attentionMask(keyMask: number[][], past: number, T: number): tf.Tensor {
  const B = keyMask.length;
  const S = past + T;
  const m = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    const km = keyMask[b]!;
    for (let i = 0; i < T; i++) {
      const row = (b * T + i) * S;
      for (let j = 0; j < S; j++) if (j > past + i || !km[j]) m[row + j] = -1e9;
    }
  }
  return tf.tensor(m, [B, 1, 1, T, S]);
}

/**
 * Grouped-query attention. q: [B, H, T, hd], kT: [B, KV, hd, S], v: [B, KV, S, hd],
 * mask: [B, 1, 1, T, S]. Query head h reads key/value head floor(h / (H / KV)) (HF repeat_kv).
 * Returns [B, T, H * hd].
 */
export function attention(q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const KV = kT.shape[1]!;
  const S = kT.shape[3]!;
  const rep = H / KV;
  if (fusedCpu && cpuAttentionAvailable(q, kT)) return cpuAttention(q, kT, v, mask);
  if (gpuFusedOps() && fusedGpuAttention && gpuAttentionAvailable(q)) return gpuAttention(q, kT, v, mask);
  if (perEntry && rep * T >= 16 && B * KV > 1 && tf.getBackend() === 'wasm') return attentionPerEntry(q, kT, v, mask);
  const qg = tf.reshape(q, [B, KV, rep * T, hd]); // heads sharing a kv head side by side
  let s = tf.mul(mm(qg, kT), 1 / Math.sqrt(hd)); // [B, KV, rep*T, S]
  s = tf.add(tf.reshape(s, [B, KV, rep, T, S]), mask); // [B, KV, rep, T, S]
  const p = tf.reshape(tf.softmax(s), [B, KV, rep * T, S]);
  const o = tf.reshape(mm(p, v), [B, H, T, hd]); // [B, H, T, hd]
  return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, T, H * hd]); // [B, T, H*hd]
}

/** [B, T, H*hd] -> [B, H, T, hd] */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  return tf.transpose(tf.reshape(x, [B, T, heads, C / heads]), [0, 2, 1, 3]);
}

/**
 * Whether the CPU backends run tabtune's fused ops: attention (cpu-attention.ts), RMSNorm (rmsNormCpu), the
 * LoRA linear (loraLinear, also only with the explicit-transpose gradients on) and the cross-entropy
 * (train/loss.ts). Only tests and the benchmark turn it off, to compare with (and measure against) TF.js's ops.
 */
export function setCpuFusedOps(on: boolean): void {
  fusedCpu = on;
}

/** Whether the fused CPU ops are on and the backend is a CPU one (for fused ops that live elsewhere, e.g. the loss). */
export function cpuFusedOps(): boolean {
  return fusedCpu && cpuBackend();
}

let fusedGpu = true;
/**
 * Whether the WebGPU backend runs tabtune's fused WGSL kernels (src/kernels/webgpu): RMSNorm, the SwiGLU gate,
 * RoPE, attention (only with setGpuFusedAttention) and the cross-entropy, each one op forward and backward. On by
 * default; tests and the benchmark turn it off to compare with (and measure against) TF.js's ops.
 */
export function setGpuFusedOps(on: boolean): void {
  fusedGpu = on;
}

/** Whether the fused GPU ops are on and TF.js runs on WebGPU. */
export function gpuFusedOps(): boolean {
  return fusedGpu && tf.getBackend() === 'webgpu';
}

let fusedGpuAttention = false;
/**
 * Whether attention, among the fused GPU ops, runs its WGSL kernel (src/kernels/webgpu/attention.ts). Off by
 * default: with it, a run resumed from a checkpoint on WebGPU drifted from the uninterrupted run (adapter up to
 * 5e-3 apart, e2e/train.spec.ts), though the kernel matches TF.js's ops to 1.7e-6 and repeats itself bit for
 * bit on the kernel spec's shapes; the cause is not found yet. The kernel spec turns it on.
 */
export function setGpuFusedAttention(on: boolean): void {
  fusedGpuAttention = on;
}

let perEntry = true;
/** Only the benchmark turns this off, to measure what per-entry attention buys on tfjs-wasm. */
export function setPerEntryAttention(on: boolean): void {
  perEntry = on;
}

/**
 * attention() computed one (sequence, key/value head) pair at a time with plain 2-D matMuls. On
 * tfjs-wasm the batched matMul kernel runs attention's small matrices at ~1 GFLOP/s while a 2-D matMul
 * takes XNNPACK's fast path (3-16x faster for these shapes); splitting q, k and v (small) up front
 * keeps the large score tensors whole, as slicing them is slow there too. Measured by `npm run bench`.
 */
function attentionPerEntry(q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const KV = kT.shape[1]!;
  const S = kT.shape[3]!;
  const rep = H / KV;
  const qs = tf.unstack(tf.reshape(q, [B * KV, rep * T, hd])); // B*KV x [rep*T, hd]
  const ks = tf.unstack(tf.reshape(kT, [B * KV, hd, S])); // B*KV x [hd, S]
  const vs = tf.unstack(tf.reshape(v, [B * KV, S, hd])); // B*KV x [S, hd]
  const ms = tf.unstack(tf.reshape(mask, [B, T, S])); // B x [T, S]
  const outs = qs.map((qe, e) => {
    const s = tf.add(tf.reshape(tf.mul(mm(qe, ks[e]!), 1 / Math.sqrt(hd)), [rep, T, S]), ms[Math.floor(e / KV)]!); // [rep, T, S]
    return mm(tf.reshape(tf.softmax(s), [rep * T, S]), vs[e]!); // [rep*T, hd]
  });
  const o = tf.reshape(tf.stack(outs), [B, H, T, hd]); // [B, H, T, hd]
  return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, T, H * hd]); // [B, T, H*hd]
}

/**
 * Positions [start, end) of each row of x [B, T, D], the rows' ranges one after another: [1, N, D]
 * (ForwardOptions.logitRanges). Slices and a concat: both have gradients on every backend.
 */
export function selectPositions(x: tf.Tensor, ranges: readonly (readonly [number, number])[]): tf.Tensor {
  const [B, T, D] = x.shape as [number, number, number];
  if (ranges.length !== B) throw new Error(`logitRanges has ${ranges.length} ranges for a batch of ${B} rows`);
  const parts: tf.Tensor[] = [];
  ranges.forEach(([s, e], b) => {
    if (!(Number.isInteger(s) && Number.isInteger(e) && 0 <= s && s <= e && e <= T)) throw new Error(`logitRanges[${b}] = [${s}, ${e}) is not within the row's ${T} positions`);
    if (e > s) parts.push(tf.slice(x, [b, s, 0], [1, e - s, D]));
  });
  if (!parts.length) throw new Error('logitRanges selects no position');
  return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
}
