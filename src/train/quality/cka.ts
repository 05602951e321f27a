// Retained skill in activation space: linear CKA (Kornblith et al. 2019, "Similarity of Neural Network
// Representations Revisited") between the base model's residual stream and the tuned model's, layer by
// layer, on the forgetting probe's texts. 1 = the same representation up to rotation and scale; it falls as
// fine-tuning rewrites what a layer computes. The base states are computed once, before training.
//
//   X [n, dx], Y [n, dy], columns centred:  CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)
//
// The rows are the probe's scored positions (promptLen-1 .. len-2, those that predict its continuation
// tokens; padding is never read), in sample order, at most maxTokens of them. In float64 JavaScript: about
// 1.5 n D^2 multiply-adds per layer and evaluation (the base side is prepared once), ~0.6 s for the default
// probe on tabtune-base (6 layers, D = 192).
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../../model/causal-lm';
import type { TrainableAdapter } from '../loop';
import type { EvalMetric } from '../run-loop';
import { inEvalMode, probeBatches, withBaseModel, type ProbeSet } from './probe';
import { yieldToEventLoop } from '../../util/async';

/** Rows (probe positions) CKA compares by default: the default probe (32 texts of 32 tokens) entirely. */
export const CKA_MAX_TOKENS = 1024;

/** X [n, d] (row-major) with each column's mean subtracted, in float64. */
function centred(X: Float32Array, n: number, d: number): Float64Array {
  if (X.length !== n * d) throw new Error(`expected ${n} x ${d} values, got ${X.length}`);
  const out = new Float64Array(n * d);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += X[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = X[i * d + j]! - mean[j]!;
  return out;
}

/** ||A^T B||_F^2 for A [n, da], B [n, db] (row-major). */
function crossNormSq(A: Float64Array, B: Float64Array, n: number, da: number, db: number): number {
  const M = new Float64Array(da * db); // A^T B
  for (let i = 0; i < n; i++) {
    const a = i * da;
    const b = i * db;
    for (let p = 0; p < da; p++) {
      const x = A[a + p]!;
      if (x === 0) continue;
      const row = p * db;
      for (let q = 0; q < db; q++) M[row + q]! += x * B[b + q]!;
    }
  }
  let s = 0;
  for (let k = 0; k < M.length; k++) s += M[k]! * M[k]!;
  return s;
}

/** A centred representation with its self-similarity ||X^T X||_F (reused across evaluations for the base). */
interface Centred {
  c: Float64Array;
  d: number;
  self: number;
}

/** ||A^T A||_F^2 for A [n, d]: crossNormSq(A, A) from the upper triangle of the symmetric A^T A (half the work). */
function selfNormSq(A: Float64Array, n: number, d: number): number {
  const M = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    const a = i * d;
    for (let p = 0; p < d; p++) {
      const x = A[a + p]!;
      if (x === 0) continue;
      const row = p * d;
      for (let q = p; q < d; q++) M[row + q]! += x * A[a + q]!;
    }
  }
  let s = 0;
  for (let p = 0; p < d; p++) {
    s += M[p * d + p]! * M[p * d + p]!;
    for (let q = p + 1; q < d; q++) s += 2 * M[p * d + q]! * M[p * d + q]!;
  }
  return s;
}

function prepare(X: Float32Array, n: number, d: number): Centred {
  const c = centred(X, n, d);
  return { c, d, self: Math.sqrt(selfNormSq(c, n, d)) };
}

function ckaOf(x: Centred, y: Centred, n: number): number {
  return crossNormSq(y.c, x.c, n, y.d, x.d) / (x.self * y.self);
}

/**
 * Linear CKA of X [n, dx] and Y [n, dy] (row-major; rows are the same examples): in [0, 1], invariant to
 * orthogonal transforms and isotropic scaling of either. NaN when a representation is constant (no
 * variance to compare).
 */
export function linearCka(X: Float32Array, Y: Float32Array, n: number, dx: number, dy: number): number {
  if (n < 2) throw new Error('CKA needs at least two rows');
  return ckaOf(prepare(X, n, dx), prepare(Y, n, dy), n);
}

/**
 * The residual stream after each layer at the probe's scored positions, for the model as it is now:
 * one Float32Array [rows, D] per layer, rows = min(maxTokens, scored positions) in sample order.
 */
export async function layerStates(lm: CausalLM, probe: Pick<ProbeSet, 'samples'>, maxTokens = CKA_MAX_TOKENS): Promise<Float32Array[]> {
  const per: Float32Array[][] = []; // [layer][batch]
  let rows = 0;
  for (const b of probeBatches(probe.samples)) {
    if (rows >= maxTokens) break;
    const T = b.ids[0]!.length;
    const flat: number[] = []; // b * T + t of the scored positions, in order, up to maxTokens in all
    b.weight.forEach((w, r) => w.forEach((x, t) => x && flat.push(r * T + t)));
    const take = flat.slice(0, maxTokens - rows);
    if (!take.length) continue;
    // The tidy frees the logits and the full states; only the picked rows are kept.
    const picked = tf.tidy(() => {
      const hidden: tf.Tensor[] = [];
      lm.forward(b.ids, { mask: b.mask, hidden }); // hidden: L x [B, T, D]
      const idx = tf.tensor1d(take, 'int32');
      return hidden.map((h) => tf.gather(tf.reshape(h, [-1, h.shape[2]!]), idx)); // L x [rows, D]
    });
    try {
      for (const [l, p] of picked.entries()) (per[l] ??= []).push((await p.data()) as Float32Array);
    } finally {
      tf.dispose(picked);
    }
    rows += take.length;
  }
  return per.map((parts) => {
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  });
}

/**
 * Rows CKA compares on a model: CKA_MAX_TOKENS, fewer on wide models so one layer stays near 4e8
 * multiply-adds (about half a second of JavaScript): 1024 up to D = 625, 95 at D = 2048.
 */
export function ckaTokens(lm: CausalLM): number {
  const D = hiddenSize(lm);
  return Math.max(16, Math.min(CKA_MAX_TOKENS, Math.floor(4e8 / (D * D))));
}

/** layerStates of the base model: the adapter switched off while they are computed (restored after). */
export function baseLayerStates(lm: CausalLM, adapter: TrainableAdapter | null, probe: Pick<ProbeSet, 'samples'>, maxTokens = ckaTokens(lm)): Promise<Float32Array[]> {
  return withBaseModel(adapter, () => layerStates(lm, probe, maxTokens));
}

/** The hidden size of a model (the width of each layer's states). */
function hiddenSize(lm: CausalLM): number {
  const c = lm.config;
  return c.arch === 'gpt2' ? c.n_embd : c.hidden_size;
}

/**
 * Linear CKA between the base model's layer states (`base`, from baseLayerStates on the same probe) and the
 * model's now, at every evaluation: cka_min and cka_mean over layers; details.layers holds each layer's.
 */
export function ckaMetric(lm: CausalLM, probe: Pick<ProbeSet, 'samples'>, base: Float32Array[]): EvalMetric {
  const D = hiddenSize(lm);
  const n = (base[0]?.length ?? 0) / D;
  if (!base.length || !Number.isInteger(n) || n < 2) throw new Error('CKA needs base states of at least two positions per layer');
  const ref = base.map((X) => prepare(X, n, D)); // the base side never changes: centre it once
  return {
    name: 'cka',
    async measure(trainer) {
      const now = await inEvalMode(trainer.adapter, () => layerStates(lm, probe, n));
      if (now.length !== ref.length || now.some((Y) => Y.length !== n * D)) throw new Error('the model no longer matches the base states it is compared with');
      const layers: number[] = [];
      for (const [l, Y] of now.entries()) {
        layers.push(ckaOf(ref[l]!, prepare(Y, n, D), n));
        await yieldToEventLoop(); // a worker keeps answering (pause, cancel) between layers
      }
      return { values: { cka_min: Math.min(...layers), cka_mean: layers.reduce((a, b) => a + b, 0) / layers.length }, details: { layers } };
    },
  };
}
