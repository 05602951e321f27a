// From a model's already-read files (config.json, weights, tokenizer files) to a runnable language
// model: build the architecture named by config.json, load the tokenizer, settle the stop ids. Reading
// the files from a source (folder, dropped files, URL, Hub id) is src/io's job (src/io/load-model.ts):
// this room never imports src/io.
import { TextTokenizer } from '../tokenizer/tokenizer';
import type { CausalLM } from './causal-lm';
import { contextLength, parseConfig, tokenIds, type ModelConfig } from './config';
import { GPT2Model } from './gpt2';
import { LlamaModel } from './llama';
import { ModelLoadError, type HFModelFiles, type WeightMap } from './types';

export interface ModelInfo {
  arch: string;
  numParams: number;
  vocabSize: number;
  contextLength: number;
  hiddenSize: number;
  layers: number;
  /** MLP width, attention heads, key/value heads and head size (the memory plan reads them; absent in summaries stored before). */
  intermediateSize?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  /** The LM head shares the token embedding's weights. */
  tiedHead?: boolean;
  /** dtype the weights were stored in (computed in float32 regardless). */
  storedDtype: string;
}

export interface LanguageModel {
  name: string;
  lm: CausalLM;
  tokenizer: TextTokenizer;
  generationConfig: Record<string, unknown> | null;
  /** Token ids that end generation (generation_config eos_token_id, else config, else the tokenizer's). */
  eosIds: number[];
  info: ModelInfo;
  dispose(): void;
}

/** Builds the architecture named by config.json from already-read weights. */
export function buildCausalLM(files: Pick<HFModelFiles, 'config' | 'weights'>, opts: { trainable?: boolean } = {}): CausalLM {
  return causalLMFromConfig(parseConfig(files.config), files.weights, opts);
}

function causalLMFromConfig(cfg: ModelConfig, weights: WeightMap, opts: { trainable?: boolean }): CausalLM {
  const lm = cfg.arch === 'gpt2' ? new GPT2Model(cfg, weights, opts) : new LlamaModel(cfg, weights, opts);
  lm.releaseCheckpoint(); // its tensors are built: the checkpoint's arrays can be collected
  return lm;
}

/**
 * The same model built again from `weights` (model.lm.exportWeights(), read back beforehand) on TF.js's
 * current backend: TF.js tensors belong to the backend that made them, so timing a step on another backend,
 * or moving there, needs the weights there. Shares the tokenizer; disposing it frees only the new tensors.
 */
export function rebuildLanguageModel(model: LanguageModel, weights: WeightMap): LanguageModel {
  const lm = causalLMFromConfig(model.lm.config, weights, { trainable: model.lm.trainableVariables().length > 0 });
  return { ...model, lm, dispose: () => lm.dispose() };
}

export function modelInfo(lm: CausalLM, files: Pick<HFModelFiles, 'weights'>): ModelInfo {
  const c = lm.config;
  const first = files.weights.values().next().value;
  return {
    arch: c.model_type,
    numParams: lm.numParams,
    vocabSize: c.vocab_size,
    contextLength: contextLength(c),
    hiddenSize: c.arch === 'gpt2' ? c.n_embd : c.hidden_size,
    layers: c.arch === 'gpt2' ? c.n_layer : c.num_hidden_layers,
    intermediateSize: c.arch === 'gpt2' ? c.n_inner : c.intermediate_size,
    heads: c.arch === 'gpt2' ? c.n_head : c.num_attention_heads,
    kvHeads: c.arch === 'gpt2' ? c.n_head : c.num_key_value_heads,
    headDim: c.arch === 'gpt2' ? c.n_embd / c.n_head : c.head_dim,
    tiedHead: c.arch === 'gpt2' ? true : c.tie_word_embeddings,
    storedDtype: first?.dtype ?? 'F32',
  };
}

/**
 * A language model from its already-read files: the architecture named by config.json over the weights,
 * the tokenizer (tokenizer.json is required), and the ids that end generation. `name` is what the user
 * sees (the folder's name, usually); `label` says where the files came from in errors (default: name).
 */
export function languageModel(files: HFModelFiles, opts: { name: string; label?: string; trainable?: boolean }): LanguageModel {
  if (!files.tokenizerJson) {
    throw new ModelLoadError('MISSING_FILE', `${opts.label ?? opts.name} has no tokenizer.json`, 'tabtune needs the model\'s tokenizer.json (the fast-tokenizer file) next to config.json.');
  }
  let tokenizer: TextTokenizer;
  try {
    tokenizer = TextTokenizer.fromHF(files.tokenizerJson, files.tokenizerConfig);
  } catch (e) {
    throw new ModelLoadError('BAD_CONFIG', `tokenizer.json could not be loaded: ${(e as Error).message}`);
  }
  const lm = buildCausalLM(files, { trainable: opts.trainable });
  const info = modelInfo(lm, files);
  if (tokenizer.vocabSize > info.vocabSize) {
    lm.dispose();
    throw new ModelLoadError('BAD_CONFIG', `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${info.vocabSize}`, 'tokenizer.json does not belong to this model.');
  }
  const gen = files.generationConfig;
  let eosIds = tokenIds(gen?.eos_token_id);
  if (!eosIds.length) eosIds = tokenIds(files.config.eos_token_id);
  if (!eosIds.length && tokenizer.eosId !== null) eosIds = [tokenizer.eosId];
  return { name: opts.name, lm, tokenizer, generationConfig: gen, eosIds, info, dispose: () => lm.dispose() };
}
