// Batch-1 decoding of Llama-family models outside TF.js: once the prompt has gone through the model's
// own forward (prefill, with a KV cache), each new token runs through the layers in plain typed arrays,
// the matrix-vector products in tabtune's WebAssembly SIMD kernel (src/kernels/simd.wat). A decode step
// of a small model is a few hundred tiny ops; in TF.js each costs more in bookkeeping than in arithmetic.
// Same math as src/model/llama.ts, step for step (a test holds the logits to the TF.js path's and the
// greedy tokens equal):
//   h = rmsnorm(x) g;  q, k, v = rope(h Wq), rope(h Wk), h Wv      (+ biases)
//   x += Wo softmax(q kT / sqrt(hd)) v;  h = rmsnorm(x) g2;  x += Wdown(silu(h Wgate) * (h Wup))
//   logits = rmsnorm(x) gN Whead
// LoRA runs beside the weights as its low-rank parts (y = x W + s (x A) B), so the base model's weights stay
// in the decoder's memory from one generation to the next. Other adapters are folded into a copy of the
// weights once per generation: every LinearAdapter is linear in its input, so W + adapter(I) is the layer's
// effective weight (OFT: R W). Prompt tuning needs nothing here: its virtual tokens are already in the KV
// cache the prefill leaves.
import * as tf from '@tensorflow/tfjs-core';
import { acquireArena, releaseArena, SimdArena, simdAvailable } from '../kernels/simd';
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
  w: number; // [in, out] weight (an adapter folded in, on the folding path)
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

/** What a decoder reads and never writes: the weights, in the first `floats` floats of an arena (the norms and embedding as typed arrays). */
interface DecoderWeights {
  layers: Layer[];
  embed: Float32Array; // [V, D]
  norm: Float32Array;
  head: Lin;
  floats: number;
}

const r4 = (n: number) => Math.ceil(n / 4) * 4;

/** Floats the weights take in an arena (what copyWeights allocates). */
function weightFloats(p: LlamaDecodeParts): number {
  const lins = p.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]);
  const head = r4(p.config.hidden_size * p.config.vocab_size) + (p.head?.b ? r4(p.head.b.size) : 0);
  return lins.reduce((s, l) => s + r4(l.w.size) + (l.b ? r4(l.b.size) : 0), 0) + head;
}

/** Floats one generation needs after the weights: `rows` KV caches of `cap` positions and the step's scratch. */
function stateFloats(p: LlamaDecodeParts, rows: number, cap: number): number {
  const c = p.config;
  const [D, H, KV, hd, I, V] = [c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.head_dim, c.intermediate_size, c.vocab_size];
  return rows * c.num_hidden_layers * 2 * r4(KV * hd * cap) + r4(D) * 3 + r4(H * hd) * 2 + r4(KV * hd) * 2 + r4(cap) + r4(I) * 2 + r4(V) + r4(Math.max(D, I));
}

/** Floats the low-rank parts take in an arena, with their two scratch vectors. */
function lowRankFloats(parts: Map<Linear, LowRankParts>): number {
  if (!parts.size) return 0;
  let n = 0;
  let r = 0;
  let out = 0;
  for (const [l, d] of parts) {
    n += r4(d.A.length) + r4(d.B.length);
    r = Math.max(r, d.r);
    out = Math.max(out, l.w.shape[1]);
  }
  return n + r4(r) + r4(out);
}

/** Copies the model's weights into the start of a reset arena; with `fold`, each adapter folded into its layer's weight. */
function copyWeights(p: LlamaDecodeParts, a: SimdArena, fold: boolean): DecoderWeights {
  const D = p.config.hidden_size;
  const V = p.config.vocab_size;
  a.reset();
  const lin = (l: Linear): Lin => {
    const [inDim, outDim] = l.w.shape;
    const w = a.alloc(inDim * outDim);
    a.view(w, inDim * outDim).set(l.w.dataSync() as Float32Array);
    const delta = fold && l.adapter ? tf.tidy(() => l.adapter!.apply(tf.eye(inDim) as tf.Tensor2D) ?? tf.zeros([0])) : null; // [in, out] (empty: adapter off)
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
  const layers = p.layers.map((L) => ({
    inputNorm: Float32Array.from(L.inputNorm.dataSync() as Float32Array),
    postNorm: Float32Array.from(L.postNorm.dataSync() as Float32Array),
    q: lin(L.q),
    k: lin(L.k),
    v: lin(L.v),
    o: lin(L.o),
    gate: lin(L.gate),
    up: lin(L.up),
    down: lin(L.down),
  }));
  const embed = Float32Array.from(p.embed.dataSync() as Float32Array);
  const norm = Float32Array.from(p.norm.dataSync() as Float32Array);
  let head: Lin;
  if (p.head) head = lin(p.head);
  else {
    // Tied and trained: the head is the embedding [V, D], transposed to [D, V] here.
    const w = a.alloc(D * V);
    const hv = a.view(w, D * V);
    for (let t = 0; t < V; t++) for (let d = 0; d < D; d++) hv[d * V + t] = embed[t * D + d]!;
    head = { w, b: null, inDim: D, outDim: V };
  }
  return { layers, embed, norm, head, floats: a.used };
}

/** One layer's LoRA update as its parts, applied at each step beside the kept weight: y += s (x A) B. */
interface LowRankParts {
  A: Float32Array; // [in, r]
  B: Float32Array; // [r, out]
  r: number;
  s: number;
}

/**
 * The active adapters of the model's layers: per layer (by its Linear) the low-rank parts of those that have
 * them (LoRA), or 'fold' when one has no such parts (OFT's rotation) and must be folded into a weight copy.
 */
function adapterParts(p: LlamaDecodeParts): Map<Linear, LowRankParts> | 'fold' {
  const lins = [...p.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]), ...(p.head ? [p.head] : [])];
  const parts = new Map<Linear, LowRankParts>();
  let fold = false;
  tf.tidy(() => {
    for (const l of lins) {
      if (!l.adapter) continue;
      const x = tf.zeros([1, l.w.shape[0]]) as tf.Tensor2D;
      if (!l.adapter.lowRank) {
        if (l.adapter.apply(x) !== null) fold = true;
        continue;
      }
      const d = l.adapter.lowRank(x);
      if (!d) continue; // off
      parts.set(l, { A: d.A.dataSync() as Float32Array, B: d.B.dataSync() as Float32Array, r: d.A.shape[1], s: d.s });
    }
  });
  return fold ? 'fold' : parts;
}

/** The identity of every tensor the weights are copied from (dataIds: a new one with each assign()). */
function weightKey(p: LlamaDecodeParts): object[] {
  const lins = [...p.layers.flatMap((L) => [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]), ...(p.head ? [p.head] : [])];
  const tensors = [p.embed, p.norm, ...p.layers.flatMap((L) => [L.inputNorm, L.postNorm]), ...lins.flatMap((l) => (l.b ? [l.w, l.b] : [l.w]))];
  return tensors.map((t) => t.dataId as object);
}

function sameKey(a: object[], b: object[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The base model's weights, kept between generations (see FastDecoder.build). */
let keptWeights: { key: object[]; arena: SimdArena; weights: DecoderWeights; busy: boolean } | null = null;

/** Whether a model above FAST_DECODE_BATCH_MAX_WEIGHT_BYTES keeps its decoder copy between generations. */
let keepLarge = true;

/**
 * Off while a training run is on (its memory comes first): a large model's generations then copy the weights
 * each time, as before, and the kept copy of one goes now. Small models keep theirs either way.
 */
export function keepLargeDecoderWeights(on: boolean): void {
  keepLarge = on;
  if (!on) dropLargeKeptWeights();
}

/** Whether `floats` floats of weights are a large model's (two copies of them would be too much memory). */
const isLarge = (floats: number) => floats * 4 > FAST_DECODE_BATCH_MAX_WEIGHT_BYTES;

/** Lets a large model's kept copy go, unless a decoder is using it. */
function dropLargeKeptWeights(): void {
  if (keptWeights && !keptWeights.busy && isLarge(keptWeights.weights.floats)) dropKeptDecoderWeights();
}

/**
 * Lets the kept copy of a model's weights go (its memory to the garbage collector): for when the model is
 * disposed. A decoder using it now keeps it until it is released.
 */
export function dropKeptDecoderWeights(): void {
  keptWeights = null;
}

/**
 * Decodes rows one at a time from a prefilled KVCache. Build with `FastDecoder.start` right after the
 * prefill forward; `step(b, token)` feeds row b's next token and returns its logits [V] (a view, valid until
 * the next step).
 */
export class FastDecoder {
  private readonly arena: SimdArena;
  private readonly layers: Layer[];
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
  /** LoRA layers run unfolded: their parts' offsets, and two scratch vectors ([r], [out]). */
  private readonly lowRank = new Map<Lin, { A: number; B: number; r: number; s: number }>();
  private readonly lrT: number = 0;
  private readonly lrY: number = 0;

  private constructor(
    private readonly p: LlamaDecodeParts,
    rows: number,
    cap: number,
    /** The arena, with the weights at its start (`weights`), or null to build both here. */
    given: { arena: SimdArena; weights: DecoderWeights } | null,
    /** LoRA layers' parts, applied beside their (unfolded) weights; empty when `given` is null (all folded). */
    parts: Map<Linear, LowRankParts>,
    /** Whether `arena` is the kept base model's (not handed to the spare pool on release). */
    private readonly kept = false,
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
    const a = given?.arena ?? acquireArena(weightFloats(p) + stateFloats(p, rows, cap));
    this.arena = a;
    const w = given?.weights ?? copyWeights(p, a, true);
    a.reset(w.floats); // everything after the weights is this generation's
    this.layers = w.layers;
    this.embed = w.embed;
    this.norm = w.norm;
    this.head = w.head;
    if (parts.size) {
      // The arena's Lin of each Linear (both in the same order), then each LoRA layer's parts beside it.
      const linsOf = (ls: { q: Lin | Linear; k: Lin | Linear; v: Lin | Linear; o: Lin | Linear; gate: Lin | Linear; up: Lin | Linear; down: Lin | Linear }) => [ls.q, ls.k, ls.v, ls.o, ls.gate, ls.up, ls.down];
      const tfLins = [...p.layers.flatMap(linsOf), ...(p.head ? [p.head] : [])] as Linear[];
      const arenaLins = [...w.layers.flatMap(linsOf), ...(p.head ? [w.head] : [])] as Lin[];
      let rMax = 0;
      let outMax = 0;
      tfLins.forEach((l, i) => {
        const d = parts.get(l);
        if (!d) return;
        const A = a.alloc(d.A.length);
        a.view(A, d.A.length).set(d.A);
        const B = a.alloc(d.B.length);
        a.view(B, d.B.length).set(d.B);
        this.lowRank.set(arenaLins[i]!, { A, B, r: d.r, s: d.s });
        rMax = Math.max(rMax, d.r);
        outMax = Math.max(outMax, arenaLins[i]!.outDim);
      });
      this.lrT = a.alloc(rMax);
      this.lrY = a.alloc(outMax);
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
    const dec = FastDecoder.build(p, cache.batch, cap);
    try {
      dec.importCache(cache);
    } catch (e) {
      dec.release(); // else the kept arena would stay marked in use
      throw e;
    }
    return dec;
  }

  /**
   * The base model's weights stay in their arena between generations, as long as the tensors they were
   * copied from are the same ones (tabtune changes a weight's data only through assign(), which gives it a
   * new dataId: a training step, a loaded checkpoint; nothing writes into a tensor's data in place). Copying
   * them again took ~1.5 s of each generation on a 135M model and 3-44 ms on tabtune-base. LoRA layers run
   * beside them as their low-rank parts (read again for each generation: a training run's adapter moves on).
   * An adapter without such parts (OFT) is folded into a copy of the weights in an arena of its own, as is
   * everything for a decoder started while the kept arena is in use, or for a large model during training.
   */
  private static build(p: LlamaDecodeParts, rows: number, cap: number): FastDecoder {
    const parts = adapterParts(p);
    if (parts === 'fold') {
      // Two copies of a large model's weights would be too much memory: the kept one goes.
      dropLargeKeptWeights();
      return new FastDecoder(p, rows, cap, null, new Map());
    }
    if (keptWeights?.busy || (!keepLarge && isLarge(weightFloats(p)))) return new FastDecoder(p, rows, cap, null, new Map());
    const key = weightKey(p);
    const need = (weights: number) => weights + stateFloats(p, rows, cap) + lowRankFloats(parts);
    if (keptWeights && sameKey(keptWeights.key, key)) {
      const k = keptWeights;
      if (k.arena.capacity < need(k.weights.floats)) {
        // A longer generation than the arena was sized for: a larger one, the weights copied across.
        const bigger = new SimdArena(need(k.weights.floats));
        bigger.f32.set(k.arena.view(0, k.weights.floats));
        k.arena = bigger;
      }
      const dec = new FastDecoder(p, rows, cap, { arena: k.arena, weights: k.weights }, parts, true);
      k.busy = true; // once it exists: a constructor that throws leaves the arena free
      return dec;
    }
    dropKeptDecoderWeights();
    const arena = new SimdArena(need(weightFloats(p)));
    const weights = copyWeights(p, arena, false);
    const dec = new FastDecoder(p, rows, cap, { arena, weights }, parts, true);
    keptWeights = { key, arena, weights, busy: true };
    return dec;
  }

  /** Hands the decoder's memory back (for the next generation to reuse); the decoder is unusable after. */
  release(): void {
    if (this.kept) {
      if (keptWeights?.arena === this.arena) keptWeights.busy = false;
    } else releaseArena(this.arena);
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
    const lr = this.lowRank.get(l);
    if (lr) {
      // y += s (x A) B
      const f = this.arena.f32;
      this.arena.vecmat(x, lr.A, this.lrT, l.inDim, lr.r);
      for (let j = 0; j < lr.r; j++) f[this.lrT + j]! *= lr.s;
      this.arena.vecmat(this.lrT, lr.B, this.lrY, lr.r, l.outDim);
      for (let j = 0; j < l.outDim; j++) f[y + j]! += f[this.lrY + j]!;
    }
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
