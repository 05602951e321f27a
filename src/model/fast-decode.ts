// Batch-1 decoding of Llama-family models outside TF.js: once the prompt has gone through the model's
// own forward (prefill, with a KV cache), each new token runs through the layers in plain typed arrays,
// the matrix-vector products in tabtune's WebAssembly SIMD kernel (src/kernels/simd.wat). A decode step
// of a small model is a few hundred tiny ops; in TF.js each costs more in bookkeeping than in arithmetic.
// Same math as src/model/llama.ts, step for step (a test holds the logits to the TF.js path's and the
// greedy tokens equal):
//   h = rmsnorm(x) g;  q, k, v = rope(h Wq), rope(h Wk), h Wv      (+ biases)
//   x += Wo softmax(q kT / sqrt(hd)) v;  h = rmsnorm(x) g2;  x += Wdown(silu(h Wgate) * (h Wup))
//   logits = rmsnorm(x) gN Whead
// Adapters are folded into the weights once per generation: every LinearAdapter is linear in its input,
// so W + adapter(I) is the layer's effective weight (LoRA: W + s A B; OFT: R W). Prompt tuning needs
// nothing here: its virtual tokens are already in the KV cache the prefill leaves.
import * as tf from '@tensorflow/tfjs-core';
import { acquireArena, releaseArena, simdAvailable, type SimdArena } from '../kernels/simd';
import type { CausalLM } from './causal-lm';
import type { KVCache } from './kv-cache';
import { LlamaModel, type LlamaDecodeParts } from './llama';
import { cpuBackend, type Linear } from './ops';

/** Largest model (float32 weights) decoded this way: the arena holds a copy of them. */
export const FAST_DECODE_MAX_WEIGHT_BYTES = 1.2 * 2 ** 30;

/** Above this many weight bytes a batch of several rows stays on TF.js's batched path (one pass over the weights). */
export const FAST_DECODE_BATCH_MAX_WEIGHT_BYTES = 64 * 2 ** 20;

/** Why `lm` cannot use the fast decoder now (for `rows` rows), or null when it can. */
export function fastDecodeBlocker(lm: CausalLM, rows = 1): string | null {
  if (!(lm instanceof LlamaModel)) return `the ${lm.config.model_type} architecture has no fast decoder (Llama family only)`;
  if (!cpuBackend()) return `the ${tf.getBackend()} backend keeps decoding on its own device`;
  if (!simdAvailable()) return 'this JavaScript engine has no WebAssembly SIMD';
  if (lm.numParams * 4 > FAST_DECODE_MAX_WEIGHT_BYTES) return 'the model is too large to copy into the decoder';
  // Rows decode one at a time, each reading every weight: for a large (memory-bound) model TF.js's batched
  // matMuls read them once for all rows.
  if (rows > 1 && lm.numParams * 4 > FAST_DECODE_BATCH_MAX_WEIGHT_BYTES) return 'several rows of a large model decode faster batched in TF.js';
  return null;
}

interface Lin {
  w: number; // [in, out] effective weight (adapter folded in)
  b: number | null; // [out]
  inDim: number;
  outDim: number;
}

interface Layer {
  inputNorm: Float32Array;
  postNorm: Float32Array;
  q: Lin;
  k: Lin;
  v: Lin;
  o: Lin;
  gate: Lin;
  up: Lin;
  down: Lin;
}

/** One row's cache: per layer, per key/value head, keys transposed [hd, cap] and values [cap, hd]. */
interface RowCache {
  kT: number[]; // per layer, offset of [KV][hd][cap]
  v: number[]; // per layer, offset of [KV][cap][hd]
  length: number; // cached positions
  nextPos: number; // position id of the next token
}

/**
 * Decodes rows one at a time from a prefilled KVCache. Build with `FastDecoder.start` right after the
 * prefill forward; `step(b, token)` feeds row b's next token and returns its logits [V] (a view, valid until
 * the next step).
 */
export class FastDecoder {
  private readonly arena: SimdArena;
  private readonly layers: Layer[] = [];
  private readonly rows: RowCache[] = [];
  private readonly embed: Float32Array; // [V, D]
  private readonly norm: Float32Array;
  private readonly head: Lin;
  private readonly cap: number;
  private readonly invFreq: Float64Array;
  // scratch (offsets in floats)
  private readonly x: number;
  private readonly h: number;
  private readonly q: number;
  private readonly k: number;
  private readonly vv: number;
  private readonly att: number;
  private readonly scores: number;
  private readonly gate: number;
  private readonly up: number;
  private readonly tmp: number;
  private readonly logits: number;

  private constructor(
    private readonly p: LlamaDecodeParts,
    rows: number,
    cap: number,
  ) {
    const c = p.config;
    const D = c.hidden_size;
    const H = c.num_attention_heads;
    const KV = c.num_key_value_heads;
    const hd = c.head_dim;
    const I = c.intermediate_size;
    const V = c.vocab_size;
    this.cap = cap;
    this.invFreq = p.invFreq;
    const lins = p.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]);
    const r4 = (n: number) => Math.ceil(n / 4) * 4;
    let floats = lins.reduce((s, l) => s + r4(l.w.size) + (l.b ? r4(l.b.size) : 0), 0) + r4(D * V);
    floats += rows * c.num_hidden_layers * 2 * r4(KV * hd * cap);
    floats += r4(D) * 3 + r4(H * hd) * 2 + r4(KV * hd) * 2 + r4(cap) + r4(I) * 2 + r4(V) + r4(Math.max(D, I));
    this.arena = acquireArena(floats);
    const a = this.arena;
    const lin = (l: Linear): Lin => {
      const [inDim, outDim] = l.w.shape;
      const w = a.alloc(inDim * outDim);
      a.view(w, inDim * outDim).set(l.w.dataSync() as Float32Array);
      const delta = l.adapter ? tf.tidy(() => l.adapter!.apply(tf.eye(inDim) as tf.Tensor2D) ?? tf.zeros([0])) : null; // [in, out] (empty: adapter off)
      if (delta) {
        const d = delta.dataSync() as Float32Array;
        delta.dispose();
        if (d.length && d.length !== inDim * outDim) throw new Error(`adapter on ${l.name} gave ${d.length} values for a ${inDim} x ${outDim} weight`);
        const wv = a.view(w, inDim * outDim);
        for (let i = 0; i < d.length; i++) wv[i]! += d[i]!;
      }
      let b: number | null = null;
      if (l.b) {
        b = a.alloc(outDim);
        a.view(b, outDim).set(l.b.dataSync() as Float32Array);
      }
      return { w, b, inDim, outDim };
    };
    for (const L of p.layers) {
      this.layers.push({
        inputNorm: Float32Array.from(L.inputNorm.dataSync() as Float32Array),
        postNorm: Float32Array.from(L.postNorm.dataSync() as Float32Array),
        q: lin(L.q),
        k: lin(L.k),
        v: lin(L.v),
        o: lin(L.o),
        gate: lin(L.gate),
        up: lin(L.up),
        down: lin(L.down),
      });
    }
    this.embed = Float32Array.from(p.embed.dataSync() as Float32Array);
    this.norm = Float32Array.from(p.norm.dataSync() as Float32Array);
    if (p.head) this.head = lin(p.head);
    else {
      // Tied and trained: the head is the embedding [V, D], transposed to [D, V] here.
      const w = a.alloc(D * V);
      const hv = a.view(w, D * V);
      for (let t = 0; t < V; t++) for (let d = 0; d < D; d++) hv[d * V + t] = this.embed[t * D + d]!;
      this.head = { w, b: null, inDim: D, outDim: V };
    }
    for (let r = 0; r < rows; r++) {
      const kT: number[] = [];
      const v: number[] = [];
      for (let l = 0; l < c.num_hidden_layers; l++) {
        kT.push(a.alloc(KV * hd * cap));
        v.push(a.alloc(KV * cap * hd));
      }
      this.rows.push({ kT, v, length: 0, nextPos: 0 });
    }
    this.x = a.alloc(D);
    this.h = a.alloc(D);
    this.tmp = a.alloc(Math.max(D, I));
    this.q = a.alloc(H * hd);
    this.att = a.alloc(H * hd);
    this.k = a.alloc(KV * hd);
    this.vv = a.alloc(KV * hd);
    this.scores = a.alloc(cap);
    this.gate = a.alloc(I);
    this.up = a.alloc(I);
    this.logits = a.alloc(V);
  }

  /**
   * A decoder for the rows of `cache` (just filled by a prefill forward), with room for `newTokens` more
   * tokens per row; null when `lm` cannot use it (see fastDecodeBlocker).
   */
  static start(lm: CausalLM, cache: KVCache, newTokens: number): FastDecoder | null {
    if (fastDecodeBlocker(lm, cache.batch) !== null) return null;
    const p = (lm as LlamaModel).decodeParts();
    const cap = Math.max(...cache.keyMask.map((m) => m.reduce((s, x) => s + x, 0))) + newTokens;
    const dec = new FastDecoder(p, cache.batch, cap);
    dec.importCache(cache);
    return dec;
  }

  /** Hands the decoder's memory back (for the next generation to reuse); the decoder is unusable after. */
  release(): void {
    releaseArena(this.arena);
  }

  /** Copies the cache's real (unmasked) positions of each row, in order. */
  private importCache(cache: KVCache): void {
    const c = this.p.config;
    const KV = c.num_key_value_heads;
    const hd = c.head_dim;
    const S = cache.length;
    const f = this.arena.f32;
    cache.layers.forEach((kv, l) => {
      if (!kv) throw new Error(`the KV cache has no layer ${l}: prefill first`);
      const kT = kv.kT.dataSync() as Float32Array; // [B, KV, hd, S]
      const v = kv.v.dataSync() as Float32Array; // [B, KV, S, hd]
      this.rows.forEach((row, b) => {
        const keep = cache.keyMask[b]!.flatMap((m, s) => (m ? [s] : []));
        for (let g = 0; g < KV; g++)
          keep.forEach((s, t) => {
            for (let j = 0; j < hd; j++) {
              f[row.kT[l]! + (g * hd + j) * this.cap + t] = kT[((b * KV + g) * hd + j) * S + s]!;
              f[row.v[l]! + (g * this.cap + t) * hd + j] = v[((b * KV + g) * S + s) * hd + j]!;
            }
          });
      });
    });
    this.rows.forEach((row, b) => {
      row.length = cache.keyMask[b]!.reduce((s, m) => s + m, 0);
      row.nextPos = cache.nextPos[b]!;
    });
  }

  private linear(x: number, l: Lin, y: number): void {
    this.arena.vecmat(x, l.w, y, l.inDim, l.outDim);
    if (l.b !== null) {
      const f = this.arena.f32;
      for (let j = 0; j < l.outDim; j++) f[y + j]! += f[l.b + j]!;
    }
  }

  private rmsNorm(x: number, g: Float32Array, y: number): void {
    const f = this.arena.f32;
    const D = g.length;
    let ss = 0;
    for (let d = 0; d < D; d++) ss += f[x + d]! * f[x + d]!;
    const r = 1 / Math.sqrt(ss / D + this.p.config.rms_norm_eps);
    for (let d = 0; d < D; d++) f[y + d] = f[x + d]! * r * g[d]!;
  }

  /** Rotate-half RoPE in place on `heads` vectors of hd at offset at, position pos. */
  private rope(at: number, heads: number, pos: number): void {
    const f = this.arena.f32;
    const hd = this.p.config.head_dim;
    const half = hd / 2;
    for (let i = 0; i < half; i++) {
      const ang = pos * this.invFreq[i]!;
      const c = Math.fround(Math.cos(ang));
      const s = Math.fround(Math.sin(ang));
      for (let h = 0; h < heads; h++) {
        const o = at + h * hd;
        const x1 = f[o + i]!;
        const x2 = f[o + i + half]!;
        f[o + i] = x1 * c - x2 * s;
        f[o + i + half] = x2 * c + x1 * s;
      }
    }
  }

  /** Feeds row b's next token; returns its logits [V] (a view into the arena, valid until the next step). */
  step(b: number, token: number): Float32Array {
    const c = this.p.config;
    const D = c.hidden_size;
    const H = c.num_attention_heads;
    const KV = c.num_key_value_heads;
    const hd = c.head_dim;
    const I = c.intermediate_size;
    const rep = H / KV;
    const row = this.rows[b]!;
    if (row.length >= this.cap) throw new Error(`row ${b} has used the ${this.cap} positions the decoder was sized for`);
    const f = this.arena.f32;
    const a = this.arena;
    f.set(this.embed.subarray(token * D, (token + 1) * D), this.x);
    const S = row.length + 1; // keys after this token
    const scale = 1 / Math.sqrt(hd);
    this.layers.forEach((L, l) => {
      this.rmsNorm(this.x, L.inputNorm, this.h);
      this.linear(this.h, L.q, this.q);
      this.linear(this.h, L.k, this.k);
      this.linear(this.h, L.v, this.vv);
      this.rope(this.q, H, row.nextPos);
      this.rope(this.k, KV, row.nextPos);
      const kT = row.kT[l]!;
      const vc = row.v[l]!;
      for (let g = 0; g < KV; g++)
        for (let j = 0; j < hd; j++) {
          f[kT + (g * hd + j) * this.cap + row.length] = f[this.k + g * hd + j]!;
          f[vc + (g * this.cap + row.length) * hd + j] = f[this.vv + g * hd + j]!;
        }
      for (let h = 0; h < H; h++) {
        const g = Math.floor(h / rep);
        a.vecmat(this.q + h * hd, kT + g * hd * this.cap, this.scores, hd, S, this.cap); // [S]
        let max = -Infinity;
        for (let s = 0; s < S; s++) {
          const v = f[this.scores + s]! * scale;
          f[this.scores + s] = v;
          if (v > max) max = v;
        }
        let sum = 0;
        for (let s = 0; s < S; s++) {
          const e = Math.exp(f[this.scores + s]! - max);
          f[this.scores + s] = e;
          sum += e;
        }
        for (let s = 0; s < S; s++) f[this.scores + s]! /= sum;
        a.vecmat(this.scores, vc + g * this.cap * hd, this.att + h * hd, S, hd, hd); // [hd]
      }
      this.linear(this.att, L.o, this.tmp);
      for (let d = 0; d < D; d++) f[this.x + d]! += f[this.tmp + d]!;
      this.rmsNorm(this.x, L.postNorm, this.h);
      this.linear(this.h, L.gate, this.gate);
      this.linear(this.h, L.up, this.up);
      for (let i = 0; i < I; i++) {
        const z = f[this.gate + i]!;
        f[this.gate + i] = (z / (1 + Math.exp(-z))) * f[this.up + i]!;
      }
      this.linear(this.gate, L.down, this.tmp);
      for (let d = 0; d < D; d++) f[this.x + d]! += f[this.tmp + d]!;
    });
    row.length++;
    row.nextPos++;
    this.rmsNorm(this.x, this.norm, this.h);
    this.linear(this.h, this.head, this.logits);
    return a.view(this.logits, c.vocab_size);
  }
}
