// Random-weight tiny models built in memory, for fast engine tests (training, gradients, adapters).
import { buildCausalLM } from '../model/load';
import type { CausalLM } from '../model/causal-lm';
import { seededRandom } from '../util/random';
import type { WeightMap } from '../model/types';

export interface TinySpec {
  arch: 'llama' | 'gpt2';
  vocab?: number;
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  inter?: number;
  ctx?: number;
  tied?: boolean;
  seed?: number;
  std?: number;
}

export function tinyConfig(s: TinySpec): Record<string, unknown> {
  const vocab = s.vocab ?? 40;
  const hidden = s.hidden ?? 16;
  if (s.arch === 'gpt2') {
    return { model_type: 'gpt2', vocab_size: vocab, n_embd: hidden, n_layer: s.layers ?? 2, n_head: s.heads ?? 2, n_positions: s.ctx ?? 64, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new' };
  }
  return {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: s.inter ?? 2 * hidden + 4,
    num_hidden_layers: s.layers ?? 2,
    num_attention_heads: s.heads ?? 4,
    num_key_value_heads: s.kvHeads ?? 2,
    max_position_embeddings: s.ctx ?? 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: s.tied ?? true,
  };
}

/** Weights for tinyConfig(s), normal-ish random values (norm gains near 1). */
export function tinyWeights(s: TinySpec): WeightMap {
  const c = tinyConfig(s);
  const rand = seededRandom(s.seed ?? 1);
  const std = s.std ?? 0.3;
  const w: WeightMap = new Map();
  const add = (name: string, shape: number[], kind: 'w' | 'one' | 'zero' = 'w') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const g = (rand() + rand() + rand() - 1.5) * 2; // ~N(0, 1)
      data[i] = kind === 'w' ? g * std : kind === 'one' ? 1 + 0.1 * g : 0.05 * g;
    }
    w.set(name, { shape, data, dtype: 'F32' });
  };
  if (s.arch === 'gpt2') {
    const D = c.n_embd as number;
    add('transformer.wte.weight', [c.vocab_size as number, D]);
    add('transformer.wpe.weight', [c.n_positions as number, D]);
    for (let i = 0; i < (c.n_layer as number); i++) {
      const p = `transformer.h.${i}`;
      add(`${p}.ln_1.weight`, [D], 'one');
      add(`${p}.ln_1.bias`, [D], 'zero');
      add(`${p}.attn.c_attn.weight`, [D, 3 * D]);
      add(`${p}.attn.c_attn.bias`, [3 * D], 'zero');
      add(`${p}.attn.c_proj.weight`, [D, D]);
      add(`${p}.attn.c_proj.bias`, [D], 'zero');
      add(`${p}.ln_2.weight`, [D], 'one');
      add(`${p}.ln_2.bias`, [D], 'zero');
      add(`${p}.mlp.c_fc.weight`, [D, 4 * D]);
      add(`${p}.mlp.c_fc.bias`, [4 * D], 'zero');
      add(`${p}.mlp.c_proj.weight`, [4 * D, D]);
      add(`${p}.mlp.c_proj.bias`, [D], 'zero');
    }
    add('transformer.ln_f.weight', [D], 'one');
    add('transformer.ln_f.bias', [D], 'zero');
    return w;
  }
  const D = c.hidden_size as number;
  const H = c.num_attention_heads as number;
  const KV = c.num_key_value_heads as number;
  const hd = D / H;
  const I = c.intermediate_size as number;
  const V = c.vocab_size as number;
  add('model.embed_tokens.weight', [V, D]);
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [D], 'one');
    add(`${p}.self_attn.q_proj.weight`, [H * hd, D]);
    add(`${p}.self_attn.k_proj.weight`, [KV * hd, D]);
    add(`${p}.self_attn.v_proj.weight`, [KV * hd, D]);
    add(`${p}.self_attn.o_proj.weight`, [D, H * hd]);
    add(`${p}.post_attention_layernorm.weight`, [D], 'one');
    add(`${p}.mlp.gate_proj.weight`, [I, D]);
    add(`${p}.mlp.up_proj.weight`, [I, D]);
    add(`${p}.mlp.down_proj.weight`, [D, I]);
  }
  add('model.norm.weight', [D], 'one');
  if (!(c.tie_word_embeddings as boolean)) add('lm_head.weight', [V, D]);
  return w;
}

export function tinyModel(s: TinySpec): CausalLM {
  return buildCausalLM({ config: tinyConfig(s), weights: tinyWeights(s) });
}
