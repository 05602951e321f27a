// The Llama family (llama, mistral, qwen2) in one readable file, following Hugging Face's
// modeling_llama.py: RMSNorm, RoPE in the rotate-half convention, grouped-query attention,
// SwiGLU MLP, tied or untied lm_head, optional q/k/v biases (qwen2).
//
// x = embed(ids)                                   [B, T, D]
//   (prompt tuning: x = [prefix; embed(ids)]        [B, n + T, D], positions 0..n-1 for the prefix; its
//    n positions are dropped again before the final norm, so logits stay [B, T, V])
// for each layer:
//   h = rmsnorm(x)
//   q, k, v = rope(h Wq), rope(h Wk), h Wv         [B, H, T, hd], [B, KV, T, hd], [B, KV, T, hd]
//   x = x + Wo attention(q, k, v)                  [B, T, D]
//   h = rmsnorm(x)
//   x = x + Wdown(silu(h Wgate) * (h Wup))         [B, T, D]   (opts.hidden collects this x per layer)
//   (opts.recompute: each layer is one checkpointed block, src/model/checkpoint.ts: only its input x is kept
//    for the backward, which runs the layer again)
// logits = rmsnorm(x) Whead                        [B, T, V]
import * as tf from '@tensorflow/tfjs-core';
import { KEEP_TRANSPOSES_MAX_BYTES, type LlamaConfig } from './config';
import { commitStep, planStep, type LayerKV } from './kv-cache';
import { prefixLength, type ForwardOptions } from './causal-lm';
import { BaseCausalLM } from './base';
import { blockInputs, checkpoint } from './checkpoint';
import { arenaFits } from '../kernels/simd';
import { ropeCpu } from './cpu-fused';
import { attention, attentionMask, cpuFusedOps, embedding, frozenMatMul, gpuFusedOps, linear, rmsNorm, splitHeads, swiglu, type Linear } from './ops';
import { ropeGpu } from '../kernels/webgpu/rope';
import type { WeightMap } from './types';
import { headFor, tiedHead } from './weights';

export interface LlamaLayer {
  inputNorm: tf.Tensor1D; // [D]
  q: Linear; // [D, H*hd]
  k: Linear; // [D, KV*hd]
  v: Linear; // [D, KV*hd]
  o: Linear; // [H*hd, D]
  postNorm: tf.Tensor1D; // [D]
  gate: Linear; // [D, I]
  up: Linear; // [D, I]
  down: Linear; // [I, D]
}

export interface LlamaDecodeParts {
  config: LlamaConfig;
  embed: tf.Tensor2D; // [V, D]
  layers: readonly LlamaLayer[];
  norm: tf.Tensor1D; // [D]
  head: Linear | null; // [D, V]
  invFreq: Float64Array; // [hd/2]
}

/** Inverse frequencies for RoPE (float64, as the reference computes them), with optional scaling. */
export function ropeInvFreq(c: LlamaConfig): Float64Array {
  const half = c.head_dim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.rope_theta ** ((2 * i) / c.head_dim);
  const rs = c.rope_scaling;
  if (rs?.rope_type === 'linear') for (let i = 0; i < half; i++) inv[i]! /= rs.factor;
  if (rs?.rope_type === 'llama3') {
    const lowF = rs.low_freq_factor ?? 1;
    const highF = rs.high_freq_factor ?? 4;
    const old = rs.original_max_position_embeddings ?? 8192;
    const lowWave = old / lowF;
    const highWave = old / highF;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!;
      const wave = (2 * Math.PI) / f;
      if (wave > lowWave) inv[i] = f / rs.factor;
      else if (wave >= highWave) {
        const smooth = (old / wave - lowF) / (highF - lowF);
        inv[i] = (1 - smooth) * (f / rs.factor) + smooth * f;
      }
    }
  }
  return inv;
}

/**
 * rotate_half as a matrix: x R = [-x2, x1] for x = [x1, x2] ([hd, hd], one +-1 per column). A matMul by it is
 * exact (one non-zero term per output) and, unlike split + concat, one fast op with a cheap gradient.
 */
export function rotateHalfMatrix(hd: number): tf.Tensor2D {
  const half = hd / 2;
  const r = new Float32Array(hd * hd);
  for (let i = 0; i < half; i++) {
    r[(i + half) * hd + i] = -1; // out[i] = -x[i + half]
    r[i * hd + i + half] = 1; // out[i + half] = x[i]
  }
  return tf.tensor2d(r, [hd, hd]);
}

/** x: [B, N, T, hd], cos/sin: [B, 1, T, hd] (each frequency twice) -> x cos + rotate_half(x) sin, as HF. */
function rope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, rot: tf.Tensor2D): tf.Tensor {
  if (cpuFusedOps() && arenaFits(2 * x.size + 2 * cos.size + 16)) return ropeCpu(x, cos, sin);
  if (gpuFusedOps()) return ropeGpu(x, cos, sin);
  const hd = x.shape[3]!;
  const xr = tf.reshape(frozenMatMul(tf.reshape(x, [-1, hd]) as tf.Tensor2D, rot), x.shape); // rotate_half(x)
  return tf.add(tf.mul(x, cos), tf.mul(xr, sin));
}

export class LlamaModel extends BaseCausalLM {
  declare readonly config: LlamaConfig;
  private readonly embed: tf.Tensor2D; // [V, D]
  private readonly layers: LlamaLayer[] = [];
  private readonly norm: tf.Tensor1D; // [D]
  private readonly head: Linear | null; // [D, V] (null: tied and trained, see tiedHead)
  private readonly invFreq: Float64Array; // [hd/2]
  private readonly rot: tf.Tensor2D; // [hd, hd] rotate_half

  constructor(
    config: LlamaConfig,
    weights: WeightMap,
    opts: { trainable?: boolean } = {},
  ) {
    super(config, weights, Boolean(opts.trainable), config.num_hidden_layers);
    const c = config;
    const r = this.reader;
    const D = c.hidden_size;
    const qDim = c.num_attention_heads * c.head_dim;
    const kvDim = c.num_key_value_heads * c.head_dim;
    const I = c.intermediate_size;
    try {
      this.embed = r.tensor('model.embed_tokens.weight', [c.vocab_size, D]) as tf.Tensor2D;
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const p = `model.layers.${i}`;
        const layer: LlamaLayer = {
          inputNorm: r.vector(`${p}.input_layernorm.weight`, D),
          q: r.linear(`${p}.self_attn.q_proj`, D, qDim, c.attention_bias),
          k: r.linear(`${p}.self_attn.k_proj`, D, kvDim, c.attention_bias),
          v: r.linear(`${p}.self_attn.v_proj`, D, kvDim, c.attention_bias),
          o: r.linear(`${p}.self_attn.o_proj`, qDim, D, c.o_bias),
          postNorm: r.vector(`${p}.post_attention_layernorm.weight`, D),
          gate: r.linear(`${p}.mlp.gate_proj`, D, I, c.mlp_bias),
          up: r.linear(`${p}.mlp.up_proj`, D, I, c.mlp_bias),
          down: r.linear(`${p}.mlp.down_proj`, I, D, c.mlp_bias),
        };
        for (const l of [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]) this.linears.set(l.name, l);
        this.layers.push(layer);
      }
      this.norm = r.vector('model.norm.weight', D);
      if (c.tie_word_embeddings || !r.has('lm_head.weight')) {
        if (!c.tie_word_embeddings && !r.has('lm_head.weight')) r.raw('lm_head.weight', [c.vocab_size, D]); // throws, naming it
        this.head = tiedHead(r, this.embed);
      } else {
        this.head = r.linear('lm_head', D, c.vocab_size, false);
      }
    } catch (e) {
      r.disposeAll();
      throw e;
    }
    this.invFreq = ropeInvFreq(c);
    this.rot = this.reader.keep(rotateHalfMatrix(c.head_dim));
    // Small frozen models keep each weight's transpose for the backward (dx = dy W^T): TF.js transposes are
    // slow on WASM, and a step would otherwise redo all of them. Large models do not double their weights.
    if (!this.reader.trainable && this.numParams * 4 <= KEEP_TRANSPOSES_MAX_BYTES)
      for (const l of this.linears.values()) l.wT = this.reader.keep(tf.transpose(l.w));
  }

  protected get tokenTable(): tf.Tensor2D {
    return this.embed;
  }

  /**
   * The tensors a batch-1 decoder outside TF.js reads (src/model/fast-decode.ts): the same objects forward
   * uses, adapters attached. `head` is null when it is the embedding itself, trained (full-parameter mode).
   */
  decodeParts(): LlamaDecodeParts {
    return { config: this.config, embed: this.embed, layers: this.layers, norm: this.norm, head: this.head, invFreq: this.invFreq };
  }

  /** cos/sin tables [B, 1, T, hd] (each frequency twice, as HF's emb = cat(freqs, freqs)) for per-row position ids. */
  private ropeTables(pos: number[][]): [tf.Tensor, tf.Tensor] {
    const B = pos.length;
    const T = pos[0]!.length;
    const half = this.invFreq.length;
    const hd = 2 * half;
    const cos = new Float32Array(B * T * hd);
    const sin = new Float32Array(B * T * hd);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++)
        for (let i = 0; i < half; i++) {
          const a = pos[b]![t]! * this.invFreq[i]!;
          const o = (b * T + t) * hd + i;
          cos[o] = cos[o + half] = Math.cos(a);
          sin[o] = sin[o + half] = Math.sin(a);
        }
    return [tf.tensor(cos, [B, 1, T, hd]), tf.tensor(sin, [B, 1, T, hd])];
  }

  /**
   * One decoder layer on the residual stream x [B, T, D]; with `prev` (a KV cache) the keys and values
   * continue it. Returns the new stream and this call's full keys / values (for the cache).
   */
  private block(L: LlamaLayer, x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, am: tf.Tensor, prev?: LayerKV | null): { x: tf.Tensor; kT: tf.Tensor; v: tf.Tensor } {
    const c = this.config;
    const h = rmsNorm(x, L.inputNorm, c.rms_norm_eps);
    const q = rope(splitHeads(linear(h, L.q), c.num_attention_heads), cos, sin, this.rot); // [B, H, T, hd]
    const k = rope(splitHeads(linear(h, L.k), c.num_key_value_heads), cos, sin, this.rot); // [B, KV, T, hd]
    let v = splitHeads(linear(h, L.v), c.num_key_value_heads); // [B, KV, T, hd]
    let kT = tf.transpose(k, [0, 1, 3, 2]); // [B, KV, hd, T]
    if (prev) {
      kT = tf.concat([prev.kT, kT], 3); // [B, KV, hd, S]
      v = tf.concat([prev.v, v], 2); // [B, KV, S, hd]
    }
    x = tf.add(x, linear(attention(q, kT, v, am), L.o)); // [B, T, D]
    const h2 = rmsNorm(x, L.postNorm, c.rms_norm_eps);
    x = tf.add(x, linear(swiglu(linear(h2, L.gate), linear(h2, L.up)), L.down)); // [B, T, D]
    return { x, kT, v };
  }

  forward(ids: number[][], opts: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const cache = opts.cache;
    const plan = planStep(ids, opts, c.vocab_size, c.max_position_embeddings, prefixLength(this, cache));
    const { T, past, keyMask, pos, virtual } = plan; // T counts the virtual tokens first

    const states: tf.Tensor[] = []; // the residual stream per layer, when opts.hidden asks for it
    const recompute = Boolean(opts.recompute) && !cache;
    const out = tf.tidy(() => {
      const [cos, sin] = this.ropeTables(pos);
      const am = attentionMask(keyMask, past, T); // [B, 1, 1, T, S]
      let x: tf.Tensor = this.withPrefix(embedding(this.embed, ids, this.reader.trainable), virtual); // [B, T, D]
      const kept: tf.Tensor[] = [];
      this.layers.forEach((L, l) => {
        if (recompute) {
          const block = (xi: tf.Tensor, co: tf.Tensor, si: tf.Tensor, m: tf.Tensor) => this.block(L, xi, co, si, m).x;
          x = checkpoint(block, x, [cos, sin, am], blockInputs([L.inputNorm, L.postNorm, L.q, L.k, L.v, L.o, L.gate, L.up, L.down])); // [B, T, D]
        } else {
          const r = this.block(L, x, cos, sin, am, cache?.layers[l]);
          if (cache) kept.push(r.kT, r.v);
          x = r.x;
        }
        if (opts.hidden) states.push(this.withoutPrefix(x, virtual)); // residual stream after block l: [B, T - virtual, D]
      });
      x = this.logitPositions(x, virtual, opts); // [B, T - virtual, D] ([B, 1, D] with lastOnly, [1, N, D] with logitRanges)
      const logits = linear(rmsNorm(x, this.norm, c.rms_norm_eps), headFor(this.head, this.embed)); // [B, T, V] ([B, 1, V] with lastOnly, [1, N, V] with logitRanges)
      return [logits, ...kept, ...states];
    });

    const nKept = out.length - 1 - states.length;
    if (cache) commitStep(cache, plan, out.slice(1, 1 + nKept));
    opts.hidden?.push(...out.slice(1 + nKept));
    return out[0] as tf.Tensor3D;
  }
}
