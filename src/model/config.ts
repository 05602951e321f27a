// Reads a Hugging Face config.json into the few numbers each architecture needs, and rejects
// anything we cannot run with a message that names the field.
import { ModelLoadError } from './types';

export interface LlamaConfig {
  arch: 'llama';
  /** As in config.json: llama, mistral or qwen2. */
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  rope_scaling: RopeScaling | null;
  tie_word_embeddings: boolean;
  /** q/k/v projections carry biases (qwen2, or llama with attention_bias). */
  attention_bias: boolean;
  /** o_proj carries a bias (llama attention_bias only; qwen2 has none). */
  o_bias: boolean;
  mlp_bias: boolean;
  bos_token_id: number | number[] | null;
  eos_token_id: number | number[] | null;
}

export interface RopeScaling {
  rope_type: 'linear' | 'llama3';
  factor: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  original_max_position_embeddings?: number;
}

export interface GPT2Config {
  arch: 'gpt2';
  model_type: 'gpt2';
  vocab_size: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner: number;
  n_positions: number;
  layer_norm_epsilon: number;
  bos_token_id: number | number[] | null;
  eos_token_id: number | number[] | null;
}

export type ModelConfig = LlamaConfig | GPT2Config;

const LLAMA_TYPES = ['llama', 'mistral', 'qwen2'];

function num(c: Record<string, unknown>, key: string, fallback?: number): number {
  const v = c[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelLoadError('BAD_CONFIG', `config.json has no "${key}"`, 'The file may be truncated or not a Hugging Face model config.');
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelLoadError('BAD_CONFIG', `config.json: "${key}" should be a number, got ${JSON.stringify(v)}`);
  return v;
}

function tokenId(v: unknown): number | number[] | null {
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'number')) return v as number[];
  return null;
}

/** A config's token id field (eos_token_id: one id or a list, as Hugging Face allows) as a list of ids. */
export function tokenIds(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

export function parseConfig(c: Record<string, unknown>): ModelConfig {
  const type = c.model_type;
  if (typeof type !== 'string') {
    throw new ModelLoadError('BAD_CONFIG', 'config.json has no "model_type"', 'A Hugging Face config names its architecture in "model_type" (e.g. "llama", "gpt2").');
  }
  if (c.quantization_config) {
    throw new ModelLoadError('UNSUPPORTED_MODEL', `this checkpoint is quantized (${JSON.stringify((c.quantization_config as { quant_method?: string }).quant_method ?? 'unknown method')})`, 'tabtune needs unquantized F32/F16/BF16 weights.');
  }
  if (type === 'gpt2') {
    const act = c.activation_function ?? 'gelu_new';
    if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
      throw new ModelLoadError('UNSUPPORTED_MODEL', `gpt2 activation_function "${String(act)}" is not supported (only the tanh GELU "gelu_new")`);
    }
    const n_embd = num(c, 'n_embd');
    return {
      arch: 'gpt2',
      model_type: 'gpt2',
      vocab_size: num(c, 'vocab_size'),
      n_embd,
      n_layer: num(c, 'n_layer'),
      n_head: num(c, 'n_head'),
      n_inner: typeof c.n_inner === 'number' ? c.n_inner : 4 * n_embd,
      n_positions: num(c, 'n_positions', 1024),
      layer_norm_epsilon: num(c, 'layer_norm_epsilon', 1e-5),
      bos_token_id: tokenId(c.bos_token_id),
      eos_token_id: tokenId(c.eos_token_id),
    };
  }
  if (!LLAMA_TYPES.includes(type)) {
    throw new ModelLoadError(
      'UNSUPPORTED_MODEL',
      `model_type "${type}" is not supported`,
      `tabtune runs ${[...LLAMA_TYPES, 'gpt2'].join(', ')} models. Pick a checkpoint of one of those architectures.`,
    );
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new ModelLoadError('UNSUPPORTED_MODEL', `hidden_act "${String(act)}" is not supported (only "silu")`);
  const hidden = num(c, 'hidden_size');
  const heads = num(c, 'num_attention_heads');
  const kv = num(c, 'num_key_value_heads', heads);
  if (heads % kv !== 0) throw new ModelLoadError('BAD_CONFIG', `num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kv})`);
  const headDim = typeof c.head_dim === 'number' ? c.head_dim : hidden / heads;
  if (!Number.isInteger(headDim) || headDim % 2) throw new ModelLoadError('BAD_CONFIG', `head dimension ${headDim} must be an even integer`);
  let rope_scaling: RopeScaling | null = null;
  const rs = c.rope_scaling as Record<string, unknown> | null | undefined;
  if (rs) {
    const rt = (rs.rope_type ?? rs.type) as string;
    if (rt === 'default') rope_scaling = null;
    else if (rt === 'linear' || rt === 'llama3') rope_scaling = { ...(rs as object), rope_type: rt, factor: Number(rs.factor) } as RopeScaling;
    else throw new ModelLoadError('UNSUPPORTED_MODEL', `rope_scaling type "${rt}" is not supported (supported: linear, llama3)`);
  }
  const attnBias = type === 'qwen2' ? true : Boolean(c.attention_bias);
  return {
    arch: 'llama',
    model_type: type,
    vocab_size: num(c, 'vocab_size'),
    hidden_size: hidden,
    intermediate_size: num(c, 'intermediate_size'),
    num_hidden_layers: num(c, 'num_hidden_layers'),
    num_attention_heads: heads,
    num_key_value_heads: kv,
    head_dim: headDim,
    // With a sliding window shorter than the context (mistral, qwen2 use_sliding_window), attention
    // past the window would differ from HF: cap the usable context instead of computing it wrongly.
    max_position_embeddings: Math.min(
      num(c, 'max_position_embeddings', 2048),
      typeof c.sliding_window === 'number' && (type === 'mistral' || c.use_sliding_window === true) ? c.sliding_window : Infinity,
    ),
    rms_norm_eps: num(c, 'rms_norm_eps', 1e-6),
    rope_theta: num(c, 'rope_theta', 10000),
    rope_scaling,
    // LlamaConfig, MistralConfig and Qwen2Config all default to untied.
    tie_word_embeddings: Boolean(c.tie_word_embeddings ?? false),
    attention_bias: attnBias,
    o_bias: type !== 'qwen2' && Boolean(c.attention_bias),
    mlp_bias: Boolean(c.mlp_bias),
    bos_token_id: tokenId(c.bos_token_id),
    eos_token_id: tokenId(c.eos_token_id),
  };
}

export function contextLength(c: ModelConfig): number {
  return c.arch === 'gpt2' ? c.n_positions : c.max_position_embeddings;
}

/**
 * Frozen models up to this many float32 weight bytes keep each Linear's weight transposed as well, for the
 * backward (src/model/llama.ts); the memory plan counts the copy (src/train/memory-plan.ts).
 */
export const KEEP_TRANSPOSES_MAX_BYTES = 64 * 2 ** 20;
