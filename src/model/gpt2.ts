// GPT-2 in one readable file, following Hugging Face's modeling_gpt2.py: learned positions,
// pre-LayerNorm blocks, fused qkv Conv1D (weights stored [in, out]), tanh GELU, tied lm_head.
//
// x = wte(ids) + wpe(pos)                          [B, T, D]
//   (prompt tuning: x = [prefix; wte(ids)] + wpe(pos), [B, n + T, D], the prefix at positions 0..n-1; its
//    n positions are dropped again before ln_f, so logits stay [B, T, V])
// for each block:
//   q, k, v = split(ln_1(x) Wattn + b)             3 x [B, H, T, hd]
//   x = x + attention(q, k, v) Wproj + b           [B, T, D]
//   x = x + gelu(ln_2(x) Wfc + b) Wproj2 + b       [B, T, D]   (opts.hidden collects this x per block)
//   (opts.recompute: each block is checkpointed, src/model/checkpoint.ts: only its input x is kept for the
//    backward, which runs the block again)
// logits = ln_f(x) wte^T                           [B, T, V]
import * as tf from '@tensorflow/tfjs-core';
import type { GPT2Config } from './config';
import { commitStep, planStep, type LayerKV } from './kv-cache';
import { prefixLength, type ForwardOptions } from './causal-lm';
import { BaseCausalLM } from './base';
import { blockInputs, checkpoint } from './checkpoint';
import { attention, attentionMask, embedding, geluTanh, layerNorm, linear, splitHeads, type Linear } from './ops';
import type { WeightMap } from './types';
import { headFor, tiedHead } from './weights';

interface GPT2Block {
  ln1: [tf.Tensor1D, tf.Tensor1D]; // weight, bias [D]
  attn: Linear; // c_attn [D, 3D]
  proj: Linear; // c_proj [D, D]
  ln2: [tf.Tensor1D, tf.Tensor1D];
  fc: Linear; // c_fc [D, I]
  mlpProj: Linear; // c_proj [I, D]
}

export class GPT2Model extends BaseCausalLM {
  declare readonly config: GPT2Config;
  private readonly wte: tf.Tensor2D; // [V, D]
  private readonly wpe: tf.Tensor2D; // [P, D]
  private readonly blocks: GPT2Block[] = [];
  private readonly lnf: [tf.Tensor1D, tf.Tensor1D];
  private readonly head: Linear | null; // [D, V] (null: tied and trained, see tiedHead) = wte^T

  constructor(
    config: GPT2Config,
    weights: WeightMap,
    opts: { trainable?: boolean } = {},
  ) {
    super(config, weights, Boolean(opts.trainable), config.n_layer);
    const c = config;
    const r = this.reader;
    // Checkpoints saved from GPT2LMHeadModel prefix names with "transformer."; the original ones do not.
    const pre = r.has('transformer.wte.weight') ? 'transformer.' : '';
    const D = c.n_embd;
    const ln = (n: string): [tf.Tensor1D, tf.Tensor1D] => [r.vector(`${n}.weight`, D), r.vector(`${n}.bias`, D)];
    try {
      this.wte = r.tensor(`${pre}wte.weight`, [c.vocab_size, D]) as tf.Tensor2D;
      this.wpe = r.tensor(`${pre}wpe.weight`, [c.n_positions, D]) as tf.Tensor2D;
      for (let i = 0; i < c.n_layer; i++) {
        const p = `${pre}h.${i}`;
        const b: GPT2Block = {
          ln1: ln(`${p}.ln_1`),
          attn: r.conv1d(`${p}.attn.c_attn`, D, 3 * D),
          proj: r.conv1d(`${p}.attn.c_proj`, D, D),
          ln2: ln(`${p}.ln_2`),
          fc: r.conv1d(`${p}.mlp.c_fc`, D, c.n_inner),
          mlpProj: r.conv1d(`${p}.mlp.c_proj`, c.n_inner, D),
        };
        for (const l of [b.attn, b.proj, b.fc, b.mlpProj]) this.linears.set(l.name, l);
        this.blocks.push(b);
      }
      this.lnf = ln(`${pre}ln_f`);
      this.head = tiedHead(r, this.wte);
    } catch (e) {
      r.disposeAll();
      throw e;
    }
  }

  protected get tokenTable(): tf.Tensor2D {
    return this.wte;
  }

  /** One block on the residual stream x [B, T, D]; with `prev` (a KV cache) the keys and values continue it. */
  private block(L: GPT2Block, x: tf.Tensor, am: tf.Tensor, prev?: LayerKV | null): { x: tf.Tensor; kT: tf.Tensor; v: tf.Tensor } {
    const c = this.config;
    const D = c.n_embd;
    const h = layerNorm(x, L.ln1[0], L.ln1[1], c.layer_norm_epsilon);
    const [q, k, v0] = tf.split(linear(h, L.attn), [D, D, D], 2).map((t) => splitHeads(t, c.n_head)) as [tf.Tensor, tf.Tensor, tf.Tensor]; // [B, H, T, hd]
    let kT = tf.transpose(k, [0, 1, 3, 2]); // [B, H, hd, T]
    let v = v0;
    if (prev) {
      kT = tf.concat([prev.kT, kT], 3); // [B, H, hd, S]
      v = tf.concat([prev.v, v], 2); // [B, H, S, hd]
    }
    x = tf.add(x, linear(attention(q, kT, v, am), L.proj));
    const h2 = layerNorm(x, L.ln2[0], L.ln2[1], c.layer_norm_epsilon);
    x = tf.add(x, linear(geluTanh(linear(h2, L.fc)), L.mlpProj));
    return { x, kT, v };
  }

  forward(ids: number[][], opts: ForwardOptions = {}): tf.Tensor3D {
    const c = this.config;
    const cache = opts.cache;
    const plan = planStep(ids, opts, c.vocab_size, c.n_positions, prefixLength(this, cache));
    const { T, past, keyMask, pos, virtual } = plan; // T counts the virtual tokens first

    const states: tf.Tensor[] = []; // the residual stream per layer, when opts.hidden asks for it
    const recompute = Boolean(opts.recompute) && !cache;
    const out = tf.tidy(() => {
      const am = attentionMask(keyMask, past, T); // [B, 1, 1, T, S]
      const tr = this.reader.trainable;
      let x: tf.Tensor = tf.add(this.withPrefix(embedding(this.wte, ids, tr), virtual), embedding(this.wpe, pos, tr)); // [B, T, D]
      const kept: tf.Tensor[] = [];
      this.blocks.forEach((L, l) => {
        if (recompute) {
          const block = (xi: tf.Tensor, m: tf.Tensor) => this.block(L, xi, m).x;
          x = checkpoint(block, x, [am], blockInputs([...L.ln1, ...L.ln2, L.attn, L.proj, L.fc, L.mlpProj])); // [B, T, D]
        } else {
          const r = this.block(L, x, am, cache?.layers[l]);
          if (cache) kept.push(r.kT, r.v);
          x = r.x;
        }
        if (opts.hidden) states.push(this.withoutPrefix(x, virtual)); // residual stream after block l: [B, T - virtual, D]
      });
      x = this.logitPositions(x, virtual, opts); // [B, T - virtual, D] ([B, 1, D] with lastOnly, [1, N, D] with logitRanges)
      const logits = linear(layerNorm(x, this.lnf[0], this.lnf[1], c.layer_norm_epsilon), headFor(this.head, this.wte)); // [B, T, V] ([B, 1, V] with lastOnly, [1, N, V] with logitRanges)
      return [logits, ...kept, ...states];
    });

    const nKept = out.length - 1 - states.length;
    if (cache) commitStep(cache, plan, out.slice(1, 1 + nKept));
    opts.hidden?.push(...out.slice(1 + nKept));
    return out[0] as tf.Tensor3D;
  }
}
