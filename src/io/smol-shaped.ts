// A random-weight Hugging Face folder shaped like SmolLM2-135M (config, float32 safetensors, a byte-level
// BPE tokenizer of the same vocabulary size), generated locally: nothing is downloaded. It lets the engine,
// the memory plan and the page be tried on a real model's shapes (30 layers, 49,152 tokens) without its
// weights. `npm run model:smol-shaped` writes the full-size folder (scripts/make-smol-shaped.ts); tests write
// a scaled-down one through the same code (`shape` overrides the sizes, everything else stays as it is).
// Deterministic: the same seed gives the same bytes.
import { seededRandom } from '../util/random';
import { writeSafetensors, type TensorToWrite } from './safetensors';

/** SmolLM2-135M's config.json (HuggingFaceTB/SmolLM2-135M), the fields a Llama loader reads. */
export const SMOL_135M_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  vocab_size: 49_152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  head_dim: 64,
  max_position_embeddings: 8192,
  hidden_act: 'silu',
  rms_norm_eps: 1e-5,
  rope_theta: 100_000,
  rope_scaling: null,
  attention_bias: false,
  attention_dropout: 0,
  mlp_bias: false,
  initializer_range: 0.02,
  pretraining_tp: 1,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
  use_cache: true,
} as const;

/** The sizes a test may scale down (heads and KV heads keep head_dim = hidden / heads). */
export interface SmolShape {
  layers: number;
  hidden: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
  vocab: number;
}

export const SMOL_135M_SHAPE: SmolShape = {
  layers: SMOL_135M_CONFIG.num_hidden_layers,
  hidden: SMOL_135M_CONFIG.hidden_size,
  intermediate: SMOL_135M_CONFIG.intermediate_size,
  heads: SMOL_135M_CONFIG.num_attention_heads,
  kvHeads: SMOL_135M_CONFIG.num_key_value_heads,
  vocab: SMOL_135M_CONFIG.vocab_size,
};

/** Special tokens, at SmolLM2's ids: 0 end of text, 1 start of a turn (bos), 2 end of a turn (eos). */
const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
/** SmolLM2's chat template (ChatML). */
const CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/** GPT-2's bytes_to_unicode: each byte as a printable character (what byte-level BPE's vocabulary is written in). */
export function byteChars(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return out;
}

/**
 * A byte-level BPE tokenizer.json of exactly `vocab` entries: the specials, the 256 bytes, then merges of
 * two bytes each (space + letter and letter pairs first), as many as fill the vocabulary. Any text
 * round-trips (every byte has a token); ASCII text gets ~2 bytes per token.
 */
export function byteLevelTokenizer(vocab: number): Record<string, unknown> {
  const bytes = byteChars();
  const base = SPECIALS.length + 256;
  if (vocab < base) throw new Error(`a byte-level vocabulary needs at least ${base} tokens (the specials and 256 bytes), got ${vocab}`);
  if (vocab - base > 256 * 256) throw new Error(`two-byte merges fill at most ${base + 256 * 256} tokens, got ${vocab}`);
  const map: Record<string, number> = {};
  SPECIALS.forEach((s, i) => (map[s] = i));
  bytes.forEach((c, i) => (map[c] = SPECIALS.length + i));
  // Merge order: the characters of ordinary English text first (space as Ġ, lower case, upper case, digits,
  // punctuation), then every other byte.
  const ascii = (s: string) => [...s].map((ch) => bytes[ch.charCodeAt(0)]!);
  const first = [...ascii(' etaoinshrdlcumwfgypbvkjxqz'), ...ascii('ETAOINSHRDLCUMWFGYPBVKJXQZ'), ...ascii('0123456789'), ...ascii('.,\'"-:;!?()\n')];
  const order = [...first, ...bytes.filter((c) => !first.includes(c))];
  const merges: string[] = [];
  outer: for (const a of order) {
    for (const b of order) {
      if (merges.length >= vocab - base) break outer;
      const tok = a + b;
      map[tok] = base + merges.length;
      merges.push(`${a} ${b}`);
    }
  }
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab: map, merges },
  };
}

/** A standard normal sample (Box-Muller over the project's seeded generator). */
function normals(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = std * Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

/** The config.json of a SmolLM2-135M-shaped model with `shape`'s sizes (the full-size one by default). */
export function smolShapedConfig(shape: SmolShape = SMOL_135M_SHAPE): Record<string, unknown> {
  if (shape.hidden % shape.heads !== 0 || shape.heads % shape.kvHeads !== 0) throw new Error(`hidden ${shape.hidden} must split into ${shape.heads} heads, and the heads into ${shape.kvHeads} KV heads`);
  return {
    ...SMOL_135M_CONFIG,
    architectures: [...SMOL_135M_CONFIG.architectures],
    vocab_size: shape.vocab,
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    head_dim: shape.hidden / shape.heads,
  };
}

/** The weights in HF's names and layouts ([out, in]), std 0.02 normal, norms at 1, the head tied to the embedding. */
export function smolShapedTensors(shape: SmolShape, seed: number): TensorToWrite[] {
  const rand = seededRandom(seed);
  const D = shape.hidden;
  const hd = D / shape.heads;
  const kv = shape.kvHeads * hd;
  const I = shape.intermediate;
  const w = (name: string, dims: number[]): TensorToWrite => ({ name, dtype: 'F32', shape: dims, data: normals(rand, dims.reduce((a, b) => a * b, 1), 0.02) });
  const ones = (name: string): TensorToWrite => ({ name, dtype: 'F32', shape: [D], data: new Float32Array(D).fill(1) });
  const out: TensorToWrite[] = [w('model.embed_tokens.weight', [shape.vocab, D])];
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    out.push(
      ones(`${p}.input_layernorm.weight`),
      w(`${p}.self_attn.q_proj.weight`, [D, D]),
      w(`${p}.self_attn.k_proj.weight`, [kv, D]),
      w(`${p}.self_attn.v_proj.weight`, [kv, D]),
      w(`${p}.self_attn.o_proj.weight`, [D, D]),
      ones(`${p}.post_attention_layernorm.weight`),
      w(`${p}.mlp.gate_proj.weight`, [I, D]),
      w(`${p}.mlp.up_proj.weight`, [I, D]),
      w(`${p}.mlp.down_proj.weight`, [D, I]),
    );
  }
  out.push(ones('model.norm.weight'));
  return out;
}

/** Every file of the folder: config.json, generation_config.json, tokenizer.json, tokenizer_config.json, model.safetensors. */
export function smolShapedFiles(opts: { seed?: number; shape?: SmolShape } = {}): Map<string, Uint8Array> {
  const shape = opts.shape ?? SMOL_135M_SHAPE;
  const seed = opts.seed ?? 135;
  const enc = new TextEncoder();
  const json = (v: unknown) => enc.encode(JSON.stringify(v, null, 2) + '\n');
  const full = shape === SMOL_135M_SHAPE;
  const files = new Map<string, Uint8Array>();
  files.set('config.json', json(smolShapedConfig(shape)));
  files.set('generation_config.json', json({ bos_token_id: 1, eos_token_id: 2 }));
  files.set('tokenizer.json', enc.encode(JSON.stringify(byteLevelTokenizer(shape.vocab))));
  files.set(
    'tokenizer_config.json',
    json({
      add_bos_token: false,
      add_eos_token: false,
      bos_token: SPECIALS[1],
      eos_token: SPECIALS[2],
      pad_token: SPECIALS[2],
      unk_token: SPECIALS[0],
      clean_up_tokenization_spaces: false,
      model_max_length: SMOL_135M_CONFIG.max_position_embeddings,
      tokenizer_class: 'GPT2Tokenizer',
      chat_template: CHAT_TEMPLATE,
    }),
  );
  files.set('model.safetensors', writeSafetensors(smolShapedTensors(shape, seed), { format: 'pt', note: `random weights, SmolLM2-135M's ${full ? 'shapes' : 'config scaled down'}, seed ${seed}` }));
  files.set(
    'README.md',
    enc.encode(
      `# smol-shaped (random weights)\n\nSmolLM2-135M's architecture${full ? '' : ' (scaled down for a test)'} with random weights (normal, std 0.02, seed ${seed}) and a generated byte-level BPE tokenizer of the same vocabulary size. It generates noise: it exists to measure memory and speed on a real model's shapes. Written by \`npm run model:smol-shaped\` (src/io/smol-shaped.ts); nothing was downloaded.\n`,
    ),
  );
  return files;
}
