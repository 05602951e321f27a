// A fine-tuned model as a plain Hugging Face folder: the LoRA update folded into the base weights
// (W' = W + lora_alpha / r * A B, in the checkpoint's own names and layouts), config.json, and the base
// folder's tokenizer and generation files copied unchanged. Loads with
// AutoModelForCausalLM.from_pretrained(folder) / AutoTokenizer.from_pretrained(folder), and in tabtune.
//
// The merge uses the adapter at strength 1 (the trained adapter) unless `strength` says otherwise. A tied
// model (tie_word_embeddings) stays tied: lm_head is not written. Full-parameter training exports the same
// way with `adapter` null (the model's current weights are the trained ones).
//
// Where the run's replies end travels with the weights: its stop token joins generation_config.json's
// eos_token_id (Hugging Face generate and tabtune's loadModel stop on any id of that list), and tabtune's
// record of the run (tabtune.json: stop token, stop strings, prompt format) is written beside them.
import { mergeLora, type MergeableAdapter } from '../lora/merge';
import { PROMPT_NO_MERGE, PromptTuningAdapter } from '../prompt/adapter';
import type { CausalLM } from '../model/causal-lm';
import { tokenIds, type ModelConfig } from '../model/config';
import type { WeightMap } from '../model/types';
import { writeSafetensors, writeShardedSafetensors, type FloatDType, type TensorToWrite } from './safetensors';
import type { ModelSource } from './source';

export class ExportError extends Error {
  override name = 'ExportError';
}

/**
 * tabtune's record of a run, written as tabtune.json next to a PEFT adapter or a merged model: how the
 * tuned model's replies end (the token appended to every training target, or stop strings) and how
 * prompts were formatted. `generate` reads it back to stop where training taught the model to stop.
 */
export interface TabtuneRecord {
  stop_token_id: number | null;
  stop_strings: string[];
  plain_format?: string;
  base_model?: string;
  run?: string;
  step?: number;
}

export const TABTUNE_JSON = 'tabtune.json';

export function tabtuneJson(record: TabtuneRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(record, null, 2));
}

/** The folder's tabtune.json (an adapter's or a merged model's), or null when it has none. */
export async function readTabtuneRecord(source: ModelSource): Promise<TabtuneRecord | null> {
  const bytes = await source.read(TABTUNE_JSON);
  if (!bytes) return null;
  const r = parseJson(bytes, `${source.label}: ${TABTUNE_JSON}`);
  const id = r.stop_token_id;
  const strings = r.stop_strings;
  return {
    ...r,
    stop_token_id: typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : null,
    stop_strings: Array.isArray(strings) ? strings.filter((x): x is string => typeof x === 'string') : [],
  };
}

/** The generation stops a record asks for, as GenerateOptions takes them. */
export function recordStops(record: TabtuneRecord | null): { stopTokenIds: number[]; stopStrings: string[] } {
  return { stopTokenIds: record?.stop_token_id != null ? [record.stop_token_id] : [], stopStrings: [...(record?.stop_strings ?? [])] };
}

/**
 * Files of a base model folder that the merged folder keeps (besides the weights): read them with
 * readBaseFiles() when the model is loaded, so they can be copied byte for byte at export.
 */
export const BASE_FOLDER_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
  'chat_template.json',
  'tokenizer.model',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
];

/** Weight files of a base folder: never copied (the merged weights replace them). */
const isWeightFile = (name: string) =>
  /\.safetensors$/.test(name) || name === 'model.safetensors.index.json' || /^pytorch_model.*\.bin(\.index\.json)?$/.test(name) || /^adapter_/.test(name);

/** Reads the base folder's non-weight files (those of BASE_FOLDER_FILES that exist) as raw bytes. */
export async function readBaseFiles(source: ModelSource, names: readonly string[] = BASE_FOLDER_FILES): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const name of names) {
    const bytes = await source.read(name);
    if (bytes) out.set(name, bytes);
  }
  return out;
}

/** The base model: the network (a LanguageModel fits, through its `lm`) and its folder's raw files. */
export interface MergeBase {
  lm: CausalLM;
  /** The base folder's config.json, tokenizer and generation files (see readBaseFiles). */
  baseFiles: Map<string, Uint8Array>;
}

export interface MergedExportOptions {
  /** dtype of the written weights (default F32: exact; F16/BF16 halve the size and round the weights). */
  dtype?: FloatDType;
  /** Adapter strength folded in (default 1, the trained adapter). */
  strength?: number;
  /** Above this many weight bytes the weights are split into model-0000i-of-0000n.safetensors + index (default 2 GiB). */
  maxShardBytes?: number;
  /**
   * Progress, tensor by tensor: `stage` 'read' once every base weight is read from the backend,
   * 'merge' after each adapted weight gets its update, 'write' once the safetensors are written.
   * `done` / `total` count tensors over the whole export (read: all weights; merge: the adapted ones).
   */
  onProgress?: (p: MergeProgress) => void;
  /** The adapter's updates read beforehand with readDeltas(adapter, strength) (WebGPU: no synchronous reads). */
  deltas?: ReadonlyMap<string, Float32Array>;
  /**
   * The run's record: its stop token joins generation_config.json's eos_token_id, and it is written as
   * tabtune.json (stop strings included), so the merged folder stops where base + adapter stops.
   */
  tabtune?: TabtuneRecord;
}

export interface MergeProgress {
  stage: 'read' | 'merge' | 'write';
  done: number;
  total: number;
}

export const DEFAULT_MAX_SHARD_BYTES = 2 * 1024 ** 3;

const TORCH_DTYPE: Record<FloatDType, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

const ARCHITECTURES: Record<string, string> = {
  llama: 'LlamaForCausalLM',
  mistral: 'MistralForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

/** A config.json rebuilt from the parsed config, for when the base folder's own is not at hand. */
export function configFromModel(c: ModelConfig): Record<string, unknown> {
  if (c.arch === 'gpt2') {
    return {
      architectures: [ARCHITECTURES.gpt2],
      model_type: 'gpt2',
      vocab_size: c.vocab_size,
      n_embd: c.n_embd,
      n_layer: c.n_layer,
      n_head: c.n_head,
      n_inner: c.n_inner,
      n_positions: c.n_positions,
      n_ctx: c.n_positions,
      layer_norm_epsilon: c.layer_norm_epsilon,
      activation_function: 'gelu_new',
      bos_token_id: c.bos_token_id,
      eos_token_id: c.eos_token_id,
    };
  }
  const cfg: Record<string, unknown> = {
    architectures: [ARCHITECTURES[c.model_type] ?? ARCHITECTURES.llama],
    model_type: c.model_type,
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim,
    max_position_embeddings: c.max_position_embeddings,
    hidden_act: 'silu',
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    rope_scaling: c.rope_scaling,
    tie_word_embeddings: c.tie_word_embeddings,
    bos_token_id: c.bos_token_id,
    eos_token_id: c.eos_token_id,
  };
  if (c.model_type === 'llama') Object.assign(cfg, { attention_bias: c.attention_bias, mlp_bias: c.mlp_bias });
  if (c.model_type === 'mistral') cfg.sliding_window = null;
  if (c.model_type === 'qwen2') cfg.use_sliding_window = false;
  return cfg;
}

function parseJson(bytes: Uint8Array, name: string): Record<string, unknown> {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes).replace(/^\uFEFF/, '')) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ExportError(`${name} is not a JSON object`);
}

/**
 * The base's generation_config.json with `stopTokenId` among its eos_token_id: the model's own EOS ids
 * (generation_config's, else config.json's) followed by the stop token, as a list when it adds to them
 * ([2, 1]) and a plain number when there are none. Every other field is kept. Null when the stop token
 * is already an EOS id (the base's file stays as it is). Without a base file, one is written from
 * config.json's token ids (as transformers derives it).
 */
export function generationConfigWithStop(genBytes: Uint8Array | undefined, config: Record<string, unknown>, stopTokenId: number): Record<string, unknown> | null {
  const gen = genBytes ? parseJson(genBytes, "the base folder's generation_config.json") : {};
  if (!genBytes) for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (config[k] !== undefined && config[k] !== null) gen[k] = config[k];
  const own = tokenIds(gen.eos_token_id).length ? tokenIds(gen.eos_token_id) : tokenIds(config.eos_token_id);
  if (own.includes(stopTokenId)) return genBytes ? null : { ...gen, eos_token_id: own.length === 1 ? own[0] : own };
  return { ...gen, eos_token_id: own.length ? [...own, stopTokenId] : stopTokenId };
}

/** The merged (or, with adapter null, current) weights in checkpoint names and layouts. */
export function mergedWeights(lm: CausalLM, adapter: MergeableAdapter | null, strength = 1, onModule?: (done: number, total: number, weights: number) => void, deltas?: ReadonlyMap<string, Float32Array>): WeightMap {
  if (!adapter) return lm.exportWeights();
  if (adapter.lm !== lm) throw new ExportError('the adapter is attached to another model than the one being exported');
  if (!adapter.modules.size) throw new ExportError('the adapter has no modules (was it disposed?)');
  const saved = adapter.strength;
  adapter.strength = strength;
  try {
    return mergeLora(lm, adapter, onModule, deltas);
  } finally {
    adapter.strength = saved;
  }
}

/**
 * The merged model folder: config.json (the base's, with torch_dtype set to the written dtype),
 * model.safetensors (or shards + model.safetensors.index.json), and the base's other files copied as they are.
 */
export function exportMergedModel(base: MergeBase, adapter: MergeableAdapter | PromptTuningAdapter | null, opts: MergedExportOptions = {}): Map<string, Uint8Array> {
  if (adapter instanceof PromptTuningAdapter) throw new ExportError(PROMPT_NO_MERGE);
  const dtype = opts.dtype ?? 'F32';
  const report = opts.onProgress;
  // Units, one per tensor: every weight read once, every adapted weight merged once, every weight written once.
  const units = (weights: number, mods: number) => 2 * weights + mods;
  const weights = mergedWeights(
    base.lm,
    adapter,
    opts.strength ?? 1,
    report ? (done, mods, n) => report({ stage: done === 0 ? 'read' : 'merge', done: n + done, total: units(n, mods) }) : undefined,
    opts.deltas,
  );
  const mods = adapter?.modules.size ?? 0;
  if (!adapter) report?.({ stage: 'read', done: weights.size, total: units(weights.size, 0) });

  const cfgBytes = base.baseFiles.get('config.json');
  const config = cfgBytes ? parseJson(cfgBytes, "the base folder's config.json") : configFromModel(base.lm.config);
  if (config.model_type !== base.lm.config.model_type) {
    throw new ExportError(`the base folder's config.json is for model_type "${String(config.model_type)}" but the model is "${base.lm.config.model_type}"`);
  }
  config.torch_dtype = TORCH_DTYPE[dtype];
  if ('dtype' in config) config.dtype = TORCH_DTYPE[dtype]; // transformers >= 4.56 writes "dtype"
  if (!Array.isArray(config.architectures) && ARCHITECTURES[base.lm.config.model_type]) config.architectures = [ARCHITECTURES[base.lm.config.model_type]];

  const tensors: TensorToWrite[] = [...weights].map(([name, w]) => ({ name, dtype, shape: w.shape, data: w.data }));
  const bytesPer = dtype === 'F32' ? 4 : 2;
  const total = tensors.reduce((a, t) => a + t.data.length * bytesPer, 0);
  const maxShard = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;

  const out = new Map<string, Uint8Array>();
  out.set('config.json', new TextEncoder().encode(JSON.stringify(config, null, 2) + '\n'));
  if (total <= maxShard) {
    out.set('model.safetensors', writeSafetensors(tensors, { format: 'pt' }));
  } else {
    const { files, index } = writeShardedSafetensors(tensors, maxShard);
    for (const [name, bytes] of files) out.set(name, bytes);
    out.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify(index, null, 2) + '\n'));
  }
  report?.({ stage: 'write', done: units(weights.size, mods), total: units(weights.size, mods) });
  const record = opts.tabtune;
  if (record) {
    const gen = record.stop_token_id !== null ? generationConfigWithStop(base.baseFiles.get('generation_config.json'), config, record.stop_token_id) : null;
    if (gen) out.set('generation_config.json', new TextEncoder().encode(JSON.stringify(gen, null, 2) + '\n'));
    out.set(TABTUNE_JSON, tabtuneJson(record));
  }
  for (const [name, bytes] of base.baseFiles) {
    if (name === 'config.json' || isWeightFile(name) || out.has(name)) continue;
    out.set(name, bytes);
  }
  return out;
}

/**
 * Logits of `lm` (with whatever adapter is attached and enabled) for some token ids, as the JSON file
 * scripts/check_peft_export.py compares against transformers + PEFT: {"input_ids": [[...]], "logits": [[[...]]]}.
 */
export function logitsReport(lm: CausalLM, inputIds: number[][]): { input_ids: number[][]; logits: number[][][] } {
  const t = lm.forward(inputIds);
  try {
    const [B, T, V] = t.shape;
    const data = t.dataSync();
    const logits: number[][][] = [];
    for (let b = 0; b < B; b++) {
      const rows: number[][] = [];
      for (let i = 0; i < T; i++) rows.push(Array.from(data.subarray((b * T + i) * V, (b * T + i + 1) * V)));
      logits.push(rows);
    }
    return { input_ids: inputIds.map((r) => [...r]), logits };
  } finally {
    t.dispose();
  }
}
