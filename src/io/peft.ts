// LoRA adapters in Hugging Face PEFT's on-disk format, both ways.
//
// A PEFT LoRA adapter folder holds two files:
//   adapter_config.json        LoraConfig.to_dict() (peft_type "LORA", r, lora_alpha, target_modules, ...)
//   adapter_model.safetensors  base_model.model.<module>.lora_A.weight [r, in]
//                              base_model.model.<module>.lora_B.weight [out, r]
// where <module> is the module path inside the *ForCausalLM model ("model.layers.0.self_attn.q_proj",
// "transformer.h.0.attn.c_attn"), and PEFT computes y = base(x) + lora_B(lora_A(dropout(x))) * lora_alpha / r.
// tabtune keeps A as [in, r] and B as [r, out] (math layout), so lora_A.weight = A^T and lora_B.weight = B^T.
// GPT-2's Conv1D stores its weight [in, out]; PEFT still keeps lora_A/lora_B as nn.Linear ([r, in], [out, r])
// and only needs fan_in_fan_out = true to merge, so the tensors have the same layout for both architectures.
//
// The adapter's strength multiplier and on/off switch are inference knobs of tabtune: the export is always
// the trained adapter at strength 1 (PEFT has no such field; scale an adapter there with
// model.add_weighted_adapter or by editing lora_alpha).
//
// OFT adapters (PEFT >= 0.14's format, fields as PEFT 0.20's OFTConfig writes them; see src/oft/adapter.ts):
//   adapter_config.json        peft_type "OFT", oft_block_size b and r 0 (PEFT wants exactly one of the two
//                              non-zero: r would be the block count), module_dropout, coft, eps, block_share,
//                              use_cayley_neumann, num_cayley_neumann_terms, target_modules, ...
//   adapter_model.safetensors  base_model.model.<module>.oft_R.weight [blocks, b(b-1)/2]: the packed upper
//                              triangles, the layout tabtune trains (nothing transposed)
// PEFT wraps nn.Linear only (not GPT-2's Conv1D), so OFT adapters on GPT-2 are not exported in this format.
//
// Prompt-tuning adapters (PEFT's PROMPT_TUNING, a PromptLearningConfig; see src/prompt/adapter.ts):
//   adapter_config.json        peft_type "PROMPT_TUNING", task_type "CAUSAL_LM", num_virtual_tokens, token_dim,
//                              num_transformer_submodules 1, num_attention_heads, num_layers, prompt_tuning_init,
//                              prompt_tuning_init_text, tokenizer_name_or_path, ...
//   adapter_model.safetensors  prompt_embeddings [num_virtual_tokens, token_dim] (no module prefix: PEFT's
//                              get_peft_model_state_dict saves the prompt encoder's weight under that one key)
import { LoraAdapter, LoraError, matchesTarget } from '../lora/adapter';
import { OftAdapter, OftError, oftBlocks, type OftAdapterConfig } from '../oft/adapter';
import { PROMPT_EMBEDDINGS, PromptTuningAdapter, PromptTuningError, hiddenSize } from '../prompt/adapter';
import type { LoraConfig, PromptTuningConfig } from '../train/config';
import type { CausalLM } from '../model/causal-lm';
import type { Linear } from '../model/ops';
import { transpose2d } from '../model/weights';
import { SafetensorsFile, writeSafetensors, type FloatDType, type TensorToWrite } from './safetensors';
import type { ModelSource } from './source';

export const PEFT_CONFIG_FILE = 'adapter_config.json';
export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
/** PEFT's key prefix for a PeftModelForCausalLM: PeftModel.base_model (LoraModel) .model (the HF model). */
export const PEFT_PREFIX = 'base_model.model.';

export class PeftError extends Error {
  override name = 'PeftError';
}

export type PeftArch = 'llama' | 'gpt2';

export interface PeftExportOptions {
  /** base_model_name_or_path: a Hub id ("HuggingFaceTB/SmolLM2-135M") or a local path. */
  baseModel: string;
  /** Naming convention of the module paths; defaults to the adapter's model architecture. */
  arch?: PeftArch;
  /** Hub revision of the base model, when known. */
  revision?: string | null;
  /** dtype of the saved tensors (default F32, the dtype tabtune trains in). */
  dtype?: FloatDType;
}

/** The module path PEFT sees inside the *ForCausalLM model: GPT-2 blocks live under "transformer.". */
export function peftModulePath(module: string, arch: PeftArch): string {
  if (arch === 'gpt2' && !module.startsWith('transformer.')) return `transformer.${module}`;
  return module;
}

/**
 * adapter_config.json as PEFT's LoraConfig.save_pretrained writes it: sorted keys, 2-space indent, and every
 * field PEFT 0.21 writes, with its default. Older PEFT (>= 0.11) loads it too, dropping the keys it does not
 * know with a warning. peft_version is left out on purpose: it would claim a PEFT version that did not write
 * the file, and PEFT fills in its own when it loads the config.
 */
export function peftAdapterConfig(config: LoraConfig, opts: PeftExportOptions & { arch: PeftArch }): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: opts.baseModel,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    // GPT-2's Conv1D stores weights (fan_in, fan_out); PEFT needs this to merge (and forces it with a warning).
    fan_in_fan_out: opts.arch === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    kasa_config: null,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: config.lora_alpha,
    lora_bias: false,
    lora_dropout: config.lora_dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    monteclora_config: null,
    peft_type: 'LORA',
    qalora_group_size: 16,
    r: config.r,
    rank_pattern: {},
    revision: opts.revision ?? null,
    target_modules: [...config.target_modules],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: false,
    velora_config: null,
  };
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The two files of a PEFT adapter folder (adapter_config.json, adapter_model.safetensors), LoRA or OFT, for
 * the trained adapter at strength 1 whatever its current strength/enabled state.
 */
export function exportPeftAdapter(adapter: LoraAdapter | OftAdapter | PromptTuningAdapter, opts: PeftExportOptions): Map<string, Uint8Array> {
  if (adapter instanceof PromptTuningAdapter) return exportPrompt(adapter, opts);
  if (!adapter.modules.size) throw new PeftError('the adapter has no modules (was it disposed?)');
  if (adapter instanceof OftAdapter) return exportOft(adapter, opts);
  const arch = opts.arch ?? adapter.lm.config.arch;
  const dtype = opts.dtype ?? 'F32';
  const r = adapter.config.r;
  const tensors: TensorToWrite[] = [];
  const weights = adapter.getWeights();
  for (const [name, m] of adapter.modules) {
    const w = weights.get(name)!;
    const key = PEFT_PREFIX + peftModulePath(name, arch);
    // A [in, r] -> lora_A.weight [r, in];  B [r, out] -> lora_B.weight [out, r]
    tensors.push({ name: `${key}.lora_A.weight`, dtype, shape: [r, m.inDim], data: transpose2d(w.A, m.inDim, r) });
    tensors.push({ name: `${key}.lora_B.weight`, dtype, shape: [m.outDim, r], data: transpose2d(w.B, r, m.outDim) });
  }
  const config = peftAdapterConfig(adapter.config, { ...opts, arch });
  return new Map([
    [PEFT_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(config, null, 2))],
    [PEFT_WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/** adapter_config.json as PEFT 0.20's OFTConfig.save_pretrained writes it (sorted keys, every field). */
export function peftOftConfig(config: OftAdapterConfig, opts: PeftExportOptions): Record<string, unknown> {
  const byR = !!config.r && !config.oft_block_size;
  const cfg: Record<string, unknown> = {
    auto_mapping: null,
    base_model_name_or_path: opts.baseModel,
    bias: 'none',
    block_share: false,
    coft: config.coft,
    eps: config.eps,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    module_dropout: config.module_dropout,
    modules_to_save: null,
    num_cayley_neumann_terms: config.num_cayley_neumann_terms ?? 5,
    oft_block_size: byR ? 0 : config.oft_block_size,
    peft_type: 'OFT',
    r: byR ? config.r : 0,
    revision: opts.revision ?? null,
    target_modules: [...config.target_modules],
    task_type: 'CAUSAL_LM',
    // tabtune trains with the exact Cayley transform; an imported series adapter keeps its series.
    use_cayley_neumann: config.use_cayley_neumann === true,
  };
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function exportOft(adapter: OftAdapter, opts: PeftExportOptions): Map<string, Uint8Array> {
  const arch = opts.arch ?? adapter.lm.config.arch;
  const conv = [...adapter.modules.values()].filter((m) => m.linear.stored === 'in_out').map((m) => m.linear.name);
  if (conv.length) {
    throw new PeftError(`PEFT's OFT wraps nn.Linear layers only, not GPT-2's Conv1D (${conv.slice(0, 2).join(', ')}${conv.length > 2 ? ', ...' : ''}): PEFT could not load this adapter; export the merged model instead`);
  }
  const dtype = opts.dtype ?? 'F32';
  const weights = adapter.getWeights();
  const tensors: TensorToWrite[] = [...adapter.modules].map(([name, m]) => ({
    name: `${PEFT_PREFIX}${peftModulePath(name, arch)}.oft_R.weight`,
    dtype,
    shape: [...m.weight.shape],
    data: weights.get(name)!,
  }));
  return new Map([
    [PEFT_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(peftOftConfig(adapter.config, opts), null, 2))],
    [PEFT_WEIGHTS_FILE, writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/** The model's layer and head counts, as PEFT's _prepare_prompt_learning_config reads them from its config. */
function layersAndHeads(lm: CausalLM): { layers: number; heads: number } {
  const c = lm.config as unknown as Record<string, number | undefined>;
  return { layers: (c.num_hidden_layers ?? c.n_layer)!, heads: (c.num_attention_heads ?? c.n_head)! };
}

/**
 * adapter_config.json as PEFT's PromptTuningConfig.save_pretrained writes it (sorted keys, every field). PEFT
 * requires tokenizer_name_or_path with TEXT init (only to initialise: with inference_mode it reads the saved
 * vectors), so it is the base model there and null otherwise.
 */
export function peftPromptConfig(config: PromptTuningConfig, lm: CausalLM, opts: PeftExportOptions): Record<string, unknown> {
  const text = config.prompt_tuning_init === 'TEXT';
  const { layers, heads } = layersAndHeads(lm);
  const cfg: Record<string, unknown> = {
    auto_mapping: null,
    base_model_name_or_path: opts.baseModel,
    inference_mode: true,
    modules_to_save: null,
    num_attention_heads: heads,
    num_layers: layers,
    num_transformer_submodules: 1,
    num_virtual_tokens: config.num_virtual_tokens,
    peft_type: 'PROMPT_TUNING',
    prompt_tuning_init: config.prompt_tuning_init,
    prompt_tuning_init_text: text ? config.prompt_tuning_init_text : null,
    revision: opts.revision ?? null,
    task_type: 'CAUSAL_LM',
    token_dim: hiddenSize(lm),
    tokenizer_kwargs: null,
    tokenizer_name_or_path: text ? opts.baseModel : null,
  };
  return Object.fromEntries(Object.entries(cfg).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function exportPrompt(adapter: PromptTuningAdapter, opts: PeftExportOptions): Map<string, Uint8Array> {
  const tensor: TensorToWrite = { name: PROMPT_EMBEDDINGS, dtype: opts.dtype ?? 'F32', shape: [...adapter.embedding.shape], data: adapter.getWeights() };
  return new Map([
    [PEFT_CONFIG_FILE, new TextEncoder().encode(JSON.stringify(peftPromptConfig(adapter.config, adapter.lm, opts), null, 2))],
    [PEFT_WEIGHTS_FILE, writeSafetensors([tensor], { format: 'pt' })],
  ]);
}

// ---------------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------------

export interface PeftFiles {
  /** adapter_config.json, parsed. */
  config: Record<string, unknown>;
  /** adapter_model.safetensors bytes. */
  safetensors: Uint8Array;
}

export interface PeftImportOptions {
  /** The loaded model's name or path, compared loosely with base_model_name_or_path (a mismatch only warns). */
  expectedBaseModel?: string;
  /** Receives non-fatal findings (base model name differs, rsLoRA converted, task_type, ...). */
  onWarning?: (message: string) => void;
}

export interface ParsedPeftConfig {
  lora: LoraConfig;
  baseModel: string | null;
  /** target_modules as written (a list, or a regex string PEFT matches with re.fullmatch). */
  targetModules: string[] | string | null;
  warnings: string[];
}

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);

/**
 * The fields LoRA's and OFT's adapter_config.json share: the dropout (out of [0, 1): 0, with a warning;
 * it only matters for further training), target_modules (names or a regex string) and the base model.
 */
function sharedFields(
  json: Record<string, unknown>,
  dropoutKey: 'lora_dropout' | 'module_dropout',
  warnings: string[],
  fail: (msg: string) => never,
): { dropout: number; targetModules: string[] | string | null; base: string | null } {
  let dropout = json[dropoutKey] ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    warnings.push(`${dropoutKey} ${JSON.stringify(dropout)} is not in [0, 1): using 0 (dropout only matters for further training)`);
    dropout = 0;
  }
  const tm = json.target_modules;
  let targetModules: string[] | string | null = null;
  if (typeof tm === 'string') targetModules = tm;
  else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targetModules = tm as string[];
  else if (tm != null) fail(`target_modules should be a list of names or a regex string, got ${JSON.stringify(tm)}`);
  const base = typeof json.base_model_name_or_path === 'string' && json.base_model_name_or_path ? json.base_model_name_or_path : null;
  return { dropout: dropout as number, targetModules, base };
}

/**
 * Checks an adapter_config.json and turns it into tabtune's LoraConfig. Features tabtune cannot reproduce
 * exactly (DoRA, per-module ranks/alphas, trained biases, extra saved modules, ...) are refused with a
 * message that names the field, rather than loading an adapter that computes something else.
 */
export function parsePeftConfig(json: Record<string, unknown>): ParsedPeftConfig {
  const warnings: string[] = [];
  const fail = (msg: string): never => {
    throw new PeftError(`adapter_config.json: ${msg}`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('should contain a JSON object');
  const type = json.peft_type;
  if (typeof type !== 'string') fail('has no "peft_type" (is this a PEFT adapter folder?)');
  if ((type as string).toUpperCase() === 'OFT') fail('peft_type is "OFT": an OFT adapter (importOftAdapter or loadPeftAdapter read it)');
  if ((type as string).toUpperCase() === 'PROMPT_TUNING') fail('peft_type is "PROMPT_TUNING": a prompt-tuning adapter (importPromptAdapter or loadPeftAdapter read it)');
  if ((type as string).toUpperCase() !== 'LORA') fail(`peft_type is "${String(type)}"; tabtune imports LoRA, OFT and prompt-tuning adapters only`);
  if (json.task_type != null && json.task_type !== 'CAUSAL_LM') warnings.push(`task_type is "${String(json.task_type)}", not CAUSAL_LM: the adapter was trained for another task`);

  if (json.use_dora === true) fail('use_dora is true: DoRA adapters are not supported (only plain LoRA)');
  if (!isEmpty(json.rank_pattern)) fail(`rank_pattern ${JSON.stringify(json.rank_pattern)} gives some modules their own rank, which tabtune does not support`);
  if (!isEmpty(json.alpha_pattern)) fail(`alpha_pattern ${JSON.stringify(json.alpha_pattern)} gives some modules their own lora_alpha, which tabtune does not support`);
  const bias = json.bias ?? 'none';
  if (bias !== 'none') fail(`bias is "${String(bias)}": adapters that train biases are not supported (only bias "none")`);
  if (json.lora_bias === true) fail('lora_bias is true: LoRA B biases are not supported');
  if (!isEmpty(json.modules_to_save)) fail(`modules_to_save ${JSON.stringify(json.modules_to_save)}: adapters that also save full modules are not supported`);
  if (!isEmpty(json.trainable_token_indices)) fail('trainable_token_indices is set: adapters that train token embeddings are not supported');
  if (json.use_qalora === true) fail('use_qalora is true: QA-LoRA adapters are not supported');
  if (!isEmpty(json.layer_replication)) fail('layer_replication is set: adapters that replicate layers are not supported');
  if (!isEmpty(json.alora_invocation_tokens)) fail('alora_invocation_tokens is set: activated LoRA (aLoRA) is not supported');
  if (!isEmpty(json.target_parameters)) fail('target_parameters is set: LoRA on raw parameters is not supported');
  if (!isEmpty(json.use_bdlora)) fail('use_bdlora is set: block-diagonal LoRA is not supported');

  const r = json.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`r should be a positive integer, got ${JSON.stringify(r)}`);
  const alpha0 = json.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha0 !== 'number' || !(alpha0 > 0)) fail(`lora_alpha should be a positive number, got ${JSON.stringify(alpha0)}`);
  let alpha = alpha0 as number;
  if (json.use_rslora === true) {
    // rsLoRA scales by alpha / sqrt(r); tabtune scales by alpha / r: the same update with alpha * sqrt(r).
    alpha = alpha * Math.sqrt(r as number);
    warnings.push(`use_rslora: scale lora_alpha/sqrt(r) kept by using lora_alpha ${alpha} (an export from tabtune writes use_rslora false with this lora_alpha: the same adapter)`);
  }
  const { dropout, targetModules, base } = sharedFields(json, 'lora_dropout', warnings, fail);
  return {
    lora: { r: r as number, lora_alpha: alpha, lora_dropout: dropout as number, target_modules: Array.isArray(targetModules) ? [...targetModules] : [] },
    baseModel: base,
    targetModules,
    warnings,
  };
}

/** "org/Name-HF", "/path/to/name/", "name" -> "name-hf" for a loose comparison. */
function modelKey(s: string): string {
  return s.replace(/\\/g, '/').replace(/\/+$/, '').split('/').pop()!.toLowerCase();
}

/** Loose match of two base model names or paths: same last path segment, or one contains the other. */
export function sameBaseModel(a: string, b: string): boolean {
  const x = modelKey(a);
  const y = modelKey(b);
  if (!x || !y) return true;
  return x === y || x.includes(y) || y.includes(x);
}

const KEY_RE = /^(.+)\.lora_([AB])(?:\.([^.]+))?\.weight$/;

/** The model's Linear for a PEFT module path, trying the naming variants the same weights may carry. */
function resolveModule(lm: CausalLM, path: string): Linear | undefined {
  const candidates = [path];
  if (path.startsWith('transformer.')) candidates.push(path.slice('transformer.'.length));
  else candidates.push(`transformer.${path}`);
  if (!path.startsWith('model.')) candidates.push(`model.${path}`);
  for (const c of candidates) {
    const l = lm.linears.get(c);
    if (l) return l;
  }
  return undefined;
}

/**
 * Targets that select exactly the modules the file has weights for: the config's list when it does (the
 * usual case), else the modules' last names or full names (PEFT's suffix match accepts those too).
 */
function targetsSelecting(lm: CausalLM, names: ReadonlySet<string>, listed: string[], written: string[] | string | null, config: Record<string, unknown>, warn: (m: string) => void): string[] {
  const all = [...lm.linears.keys()];
  const selects = (targets: string[]) => {
    const sel = all.filter((n) => matchesTarget(n, targets));
    return sel.length === names.size && sel.every((n) => names.has(n));
  };
  if (listed.length && selects(listed)) return listed;
  const short = [...new Set([...names].map((n) => n.split('.').pop()!))];
  const narrowed = !isEmpty(config.layers_to_transform) || !isEmpty(config.exclude_modules);
  if (Array.isArray(written) && written.length && !narrowed) {
    warn(`target_modules [${written.join(', ')}] does not match the modules the file has weights for; using those ${names.size} modules`);
  }
  return selects(short) ? short : [...names];
}

/** What every PEFT import does first: pass on the config's warnings, check the base model, read the weights file. */
function openPeftFiles(files: PeftFiles, parsed: { warnings: string[]; baseModel: string | null }, opts: PeftImportOptions): { warn: (m: string) => void; st: SafetensorsFile } {
  const warn = (m: string) => opts.onWarning?.(m);
  parsed.warnings.forEach(warn);
  if (opts.expectedBaseModel && parsed.baseModel && !sameBaseModel(parsed.baseModel, opts.expectedBaseModel)) {
    warn(`the adapter was trained on "${parsed.baseModel}" but the loaded model is "${opts.expectedBaseModel}" (its shapes fit, so it is loaded anyway)`);
  }
  try {
    return { warn, st: new SafetensorsFile(files.safetensors, PEFT_WEIGHTS_FILE) };
  } catch (e) {
    throw new PeftError((e as Error).message);
  }
}

/**
 * A LoRA adapter from PEFT files (made by tabtune or by PEFT itself), attached to `lm`. Tensor names are
 * accepted with or without the "base_model.model." prefix and with or without an adapter name
 * ("lora_A.default.weight"); shapes are checked against the model; the adapter covers exactly the modules
 * the file has weights for. Gives the same logits as the adapter that was exported.
 */
export function importPeftAdapter(lm: CausalLM, files: PeftFiles, opts: PeftImportOptions = {}): LoraAdapter {
  const parsed = parsePeftConfig(files.config);
  const { warn, st } = openPeftFiles(files, parsed, opts);
  const { r } = parsed.lora;
  const found = new Map<string, { linear: Linear; A?: Float32Array; B?: Float32Array }>();
  const adapterNames = new Set<string>();
  const unknown: string[] = [];
  for (const key of st.names()) {
    const m = KEY_RE.exec(key);
    if (!m) {
      unknown.push(key);
      continue;
    }
    const [, rawPath, which, adapterName] = m as unknown as [string, string, 'A' | 'B', string | undefined];
    if (adapterName) adapterNames.add(adapterName);
    const path = rawPath.startsWith(PEFT_PREFIX) ? rawPath.slice(PEFT_PREFIX.length) : rawPath;
    const linear = resolveModule(lm, path);
    if (!linear) {
      const some = [...lm.linears.keys()].slice(0, 3).join(', ');
      throw new PeftError(`${PEFT_WEIGHTS_FILE}: "${key}" targets "${path}", which this model does not have (its layers are named like ${some}): the adapter belongs to another architecture`);
    }
    const [inDim, outDim] = linear.w.shape;
    const { shape } = st.entry(key);
    const want = which === 'A' ? [r, inDim] : [outDim, r];
    if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1]) {
      throw new PeftError(`${PEFT_WEIGHTS_FILE}: "${key}" has shape [${shape.join(', ')}] but r=${r} and ${linear.name} (${inDim} -> ${outDim}) need [${want.join(', ')}]: the adapter does not fit this model`);
    }
    let data: Float32Array;
    try {
      data = st.getFloat32(key);
    } catch (e) {
      throw new PeftError((e as Error).message);
    }
    const entry = found.get(linear.name) ?? { linear };
    if ((which === 'A' ? entry.A : entry.B) !== undefined) throw new PeftError(`${PEFT_WEIGHTS_FILE}: two lora_${which} tensors for ${linear.name}`);
    // lora_A.weight [r, in] -> A [in, r];  lora_B.weight [out, r] -> B [r, out]
    if (which === 'A') entry.A = transpose2d(data, r, inDim);
    else entry.B = transpose2d(data, outDim, r);
    found.set(linear.name, entry);
  }
  if (unknown.length) {
    const hint = unknown.some((k) => k.includes('lora_magnitude_vector'))
      ? ' (DoRA magnitudes)'
      : unknown.some((k) => k.includes('lora_embedding'))
        ? ' (LoRA on embeddings)'
        : unknown.some((k) => /lora_B(\.[^.]+)?\.bias$/.test(k))
          ? ' (LoRA biases)'
          : '';
    throw new PeftError(`${PEFT_WEIGHTS_FILE} holds tensors tabtune cannot apply${hint}: ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? `, and ${unknown.length - 3} more` : ''}`);
  }
  if (adapterNames.size > 1) throw new PeftError(`${PEFT_WEIGHTS_FILE} holds several adapters (${[...adapterNames].join(', ')}); export one adapter at a time`);
  if (!found.size) throw new PeftError(`${PEFT_WEIGHTS_FILE} has no lora_A/lora_B tensors`);
  const weights = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const [name, e] of found) {
    if (!e.A || !e.B) throw new PeftError(`${PEFT_WEIGHTS_FILE}: ${name} has lora_${e.A ? 'A' : 'B'} but no lora_${e.A ? 'B' : 'A'}`);
    weights.set(name, { A: e.A, B: e.B });
  }

  const targets = targetsSelecting(lm, new Set(weights.keys()), parsed.lora.target_modules, parsed.targetModules, files.config, warn);
  try {
    return new LoraAdapter(lm, { ...parsed.lora, target_modules: targets }, { weights });
  } catch (e) {
    if (e instanceof LoraError) throw new PeftError(e.message);
    throw e;
  }
}

export interface ParsedOftConfig {
  oft: OftAdapterConfig;
  baseModel: string | null;
  /** target_modules as written (a list, or a regex string PEFT matches with re.fullmatch). */
  targetModules: string[] | string | null;
  warnings: string[];
}

/**
 * Checks an OFT adapter_config.json (PEFT >= 0.14) and turns it into tabtune's OFT settings. What tabtune
 * cannot compute the same way (shared blocks, trained biases, extra saved modules) is refused by name.
 * Absent fields take PEFT's defaults, use_cayley_neumann true included.
 */
export function parseOftConfig(json: Record<string, unknown>): ParsedOftConfig {
  const warnings: string[] = [];
  const fail = (msg: string): never => {
    throw new PeftError(`adapter_config.json: ${msg}`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('should contain a JSON object');
  if (typeof json.peft_type !== 'string' || json.peft_type.toUpperCase() !== 'OFT') fail(`peft_type is ${JSON.stringify(json.peft_type)}, not "OFT"`);
  if (json.task_type != null && json.task_type !== 'CAUSAL_LM') warnings.push(`task_type is "${String(json.task_type)}", not CAUSAL_LM: the adapter was trained for another task`);
  if (!('oft_block_size' in json)) fail('has no oft_block_size: an OFT adapter from PEFT < 0.14, whose format PEFT itself no longer loads (retrain it with a newer PEFT)');
  const r = json.r ?? 0;
  const size = json.oft_block_size;
  const whole = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (!whole(r) || !whole(size)) fail(`r and oft_block_size should be whole numbers, got ${JSON.stringify(r)} and ${JSON.stringify(size)}`);
  if ((r === 0) === (size === 0)) fail(`exactly one of r (${String(r)}) and oft_block_size (${String(size)}) should be non-zero, as PEFT requires`);
  if (json.block_share === true) fail('block_share is true: OFT with one block shared across a layer is not supported');
  const bias = json.bias ?? 'none';
  if (bias !== 'none') fail(`bias is "${String(bias)}": adapters that train biases are not supported (only bias "none")`);
  if (!isEmpty(json.modules_to_save)) fail(`modules_to_save ${JSON.stringify(json.modules_to_save)}: adapters that also save full modules are not supported`);
  const { dropout, targetModules, base } = sharedFields(json, 'module_dropout', warnings, fail);
  const eps = json.eps ?? 6e-5;
  if (typeof eps !== 'number' || !(eps > 0)) fail(`eps should be a positive number, got ${JSON.stringify(eps)}`);
  const terms = json.num_cayley_neumann_terms ?? 5;
  if (!whole(terms) || (terms as number) < 1) fail(`num_cayley_neumann_terms should be a positive whole number, got ${JSON.stringify(terms)}`);
  return {
    oft: {
      oft_block_size: size as number,
      ...(r ? { r: r as number } : {}),
      module_dropout: dropout as number,
      target_modules: Array.isArray(targetModules) ? [...targetModules] : [],
      coft: json.coft === true,
      eps: eps as number,
      use_cayley_neumann: json.use_cayley_neumann !== false, // PEFT's default is true
      num_cayley_neumann_terms: terms as number,
    },
    baseModel: base,
    targetModules,
    warnings,
  };
}

const OFT_KEY_RE = /^(.+)\.oft_R(?:\.([^.]+))?\.weight$/;

/**
 * An OFT adapter from PEFT files (made by tabtune or by PEFT >= 0.14), attached to `lm`: names with or
 * without "base_model.model." and an adapter name, shapes checked against PEFT's per-layer block sizes, the
 * adapter covering exactly the modules the file has weights for. Gives the logits PEFT's model gives.
 */
export function importOftAdapter(lm: CausalLM, files: PeftFiles, opts: PeftImportOptions = {}): OftAdapter {
  const parsed = parseOftConfig(files.config);
  const { warn, st } = openPeftFiles(files, parsed, opts);
  const weights = new Map<string, Float32Array>();
  const adapterNames = new Set<string>();
  const unknown: string[] = [];
  for (const key of st.names()) {
    const m = OFT_KEY_RE.exec(key);
    if (!m) {
      unknown.push(key);
      continue;
    }
    const [, rawPath, adapterName] = m as unknown as [string, string, string | undefined];
    if (adapterName) adapterNames.add(adapterName);
    const path = rawPath.startsWith(PEFT_PREFIX) ? rawPath.slice(PEFT_PREFIX.length) : rawPath;
    const linear = resolveModule(lm, path);
    if (!linear) {
      const some = [...lm.linears.keys()].slice(0, 3).join(', ');
      throw new PeftError(`${PEFT_WEIGHTS_FILE}: "${key}" targets "${path}", which this model does not have (its layers are named like ${some}): the adapter belongs to another architecture`);
    }
    const inDim = linear.w.shape[0];
    const { blocks, blockSize } = oftBlocks(inDim, parsed.oft);
    const want = [blocks, (blockSize * (blockSize - 1)) / 2];
    const { shape } = st.entry(key);
    if (shape.length !== 2 || shape[0] !== want[0] || shape[1] !== want[1]) {
      const how = parsed.oft.r ? `r=${parsed.oft.r}` : `oft_block_size=${parsed.oft.oft_block_size}`;
      throw new PeftError(`${PEFT_WEIGHTS_FILE}: "${key}" has shape [${shape.join(', ')}] but ${how} on ${linear.name} (${inDim} inputs: ${blocks} blocks of ${blockSize}) needs [${want.join(', ')}]: the adapter does not fit this model`);
    }
    if (weights.has(linear.name)) throw new PeftError(`${PEFT_WEIGHTS_FILE}: two oft_R tensors for ${linear.name}`);
    try {
      weights.set(linear.name, st.getFloat32(key));
    } catch (e) {
      throw new PeftError((e as Error).message);
    }
  }
  if (unknown.length) {
    const hint = unknown.some((k) => /\.oft_r\./.test(k)) ? ' (oft_r: the OFT format of PEFT <= 0.13, which PEFT itself no longer loads)' : unknown.some((k) => k.includes('oft_embedding_R')) ? ' (OFT on embeddings)' : '';
    throw new PeftError(`${PEFT_WEIGHTS_FILE} holds tensors tabtune cannot apply${hint}: ${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? `, and ${unknown.length - 3} more` : ''}`);
  }
  if (adapterNames.size > 1) throw new PeftError(`${PEFT_WEIGHTS_FILE} holds several adapters (${[...adapterNames].join(', ')}); export one adapter at a time`);
  if (!weights.size) throw new PeftError(`${PEFT_WEIGHTS_FILE} has no oft_R tensors`);
  const targets = targetsSelecting(lm, new Set(weights.keys()), parsed.oft.target_modules, parsed.targetModules, files.config, warn);
  try {
    return new OftAdapter(lm, { ...parsed.oft, target_modules: targets }, { weights });
  } catch (e) {
    if (e instanceof OftError) throw new PeftError(e.message);
    throw e;
  }
}

export interface ParsedPromptConfig {
  prompt: PromptTuningConfig;
  /** token_dim: the hidden size the vectors were trained for. */
  tokenDim: number | null;
  baseModel: string | null;
  warnings: string[];
}

/**
 * Checks a PROMPT_TUNING adapter_config.json and turns it into tabtune's prompt-tuning settings. Prompt
 * encoders of other prompt-learning methods (P-tuning, prefix tuning) and encoder-decoder layouts
 * (num_transformer_submodules 2) are refused by name.
 */
export function parsePromptConfig(json: Record<string, unknown>): ParsedPromptConfig {
  const warnings: string[] = [];
  const fail = (msg: string): never => {
    throw new PeftError(`adapter_config.json: ${msg}`);
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('should contain a JSON object');
  if (typeof json.peft_type !== 'string' || json.peft_type.toUpperCase() !== 'PROMPT_TUNING') fail(`peft_type is ${JSON.stringify(json.peft_type)}, not "PROMPT_TUNING"`);
  if (json.task_type != null && json.task_type !== 'CAUSAL_LM') warnings.push(`task_type is "${String(json.task_type)}", not CAUSAL_LM: the adapter was trained for another task`);
  const n = json.num_virtual_tokens;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) fail(`num_virtual_tokens should be a positive whole number, got ${JSON.stringify(n)}`);
  const subs = json.num_transformer_submodules ?? 1;
  if (subs !== 1) fail(`num_transformer_submodules is ${JSON.stringify(subs)}: virtual tokens for an encoder-decoder model, not a causal LM`);
  if (!isEmpty(json.modules_to_save)) fail(`modules_to_save ${JSON.stringify(json.modules_to_save)}: adapters that also save full modules are not supported`);
  const dim = json.token_dim;
  if (dim != null && (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1)) fail(`token_dim should be a positive whole number, got ${JSON.stringify(dim)}`);
  const init0 = json.prompt_tuning_init ?? 'RANDOM';
  const init = typeof init0 === 'string' ? init0.toUpperCase() : '';
  // PEFT < 0.14 called SAMPLE_VOCAB RANDOM_DISCRETE (only the initialisation: the saved vectors are what counts)
  const known = init === 'RANDOM_DISCRETE' ? 'SAMPLE_VOCAB' : init;
  if (known !== 'TEXT' && known !== 'SAMPLE_VOCAB' && known !== 'RANDOM') warnings.push(`prompt_tuning_init ${JSON.stringify(init0)} is not one tabtune knows: recorded as RANDOM (it only decided the starting point)`);
  const text = typeof json.prompt_tuning_init_text === 'string' ? json.prompt_tuning_init_text : '';
  const base = typeof json.base_model_name_or_path === 'string' && json.base_model_name_or_path ? json.base_model_name_or_path : null;
  return {
    prompt: { num_virtual_tokens: n as number, prompt_tuning_init: known === 'TEXT' || known === 'SAMPLE_VOCAB' ? known : 'RANDOM', prompt_tuning_init_text: text },
    tokenDim: (dim as number | null | undefined) ?? null,
    baseModel: base,
    warnings,
  };
}

/**
 * A prompt-tuning adapter from PEFT files (made by tabtune or by PEFT), attached to `lm`: the one tensor
 * `prompt_embeddings` [num_virtual_tokens, token_dim] (accepted also with the "base_model.model." prefix or an
 * adapter name), checked against the model's hidden size. Gives the logits PEFT's model gives.
 */
export function importPromptAdapter(lm: CausalLM, files: PeftFiles, opts: PeftImportOptions = {}): PromptTuningAdapter {
  const parsed = parsePromptConfig(files.config);
  const { st } = openPeftFiles(files, parsed, opts);
  const D = hiddenSize(lm);
  const n = parsed.prompt.num_virtual_tokens;
  if (parsed.tokenDim !== null && parsed.tokenDim !== D) {
    throw new PeftError(`adapter_config.json: token_dim is ${parsed.tokenDim} but this model's hidden size is ${D}: the adapter belongs to another model`);
  }
  const names = st.names();
  const keys = names.filter((k) => /^(base_model\.model\.)?prompt_embeddings(\.[^.]+)?$/.test(k));
  const other = names.filter((k) => !keys.includes(k));
  if (other.length) throw new PeftError(`${PEFT_WEIGHTS_FILE} holds tensors a prompt-tuning adapter does not have: ${other.slice(0, 3).join(', ')}${other.length > 3 ? `, and ${other.length - 3} more` : ''}`);
  if (keys.length > 1) throw new PeftError(`${PEFT_WEIGHTS_FILE} holds several prompt_embeddings (${keys.join(', ')}); export one adapter at a time`);
  if (!keys.length) throw new PeftError(`${PEFT_WEIGHTS_FILE} has no ${PROMPT_EMBEDDINGS} tensor`);
  const key = keys[0]!;
  const { shape } = st.entry(key);
  if (shape.length !== 2 || shape[0] !== n || shape[1] !== D) {
    throw new PeftError(`${PEFT_WEIGHTS_FILE}: "${key}" has shape [${shape.join(', ')}] but ${n} virtual tokens on a model of hidden size ${D} need [${n}, ${D}]`);
  }
  let data: Float32Array;
  try {
    data = st.getFloat32(key);
  } catch (e) {
    throw new PeftError((e as Error).message);
  }
  try {
    return new PromptTuningAdapter(lm, parsed.prompt, { weights: data });
  } catch (e) {
    if (e instanceof PromptTuningError) throw new PeftError(e.message);
    throw e;
  }
}

/** Any adapter tabtune can apply (LoRA, OFT, prompt tuning). */
export type PeftAdapter = LoraAdapter | OftAdapter | PromptTuningAdapter;

/** A LoRA, an OFT or a prompt-tuning adapter from PEFT files, by the config's peft_type. */
export function importAnyPeftAdapter(lm: CausalLM, files: PeftFiles, opts: PeftImportOptions = {}): PeftAdapter {
  const type = typeof files.config?.peft_type === 'string' ? files.config.peft_type.toUpperCase() : '';
  if (type === 'OFT') return importOftAdapter(lm, files, opts);
  if (type === 'PROMPT_TUNING') return importPromptAdapter(lm, files, opts);
  return importPeftAdapter(lm, files, opts);
}

/** Reads adapter_config.json + adapter_model.safetensors from a source (folder, dropped files, zip) and imports them (LoRA, OFT or prompt tuning). */
export async function loadPeftAdapter(lm: CausalLM, source: ModelSource, opts: PeftImportOptions = {}): Promise<PeftAdapter> {
  const cfgBytes = await source.read(PEFT_CONFIG_FILE);
  if (!cfgBytes) throw new PeftError(`${PEFT_CONFIG_FILE} not found in ${source.label}: a PEFT adapter folder has ${PEFT_CONFIG_FILE} and ${PEFT_WEIGHTS_FILE}`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(new TextDecoder().decode(cfgBytes).replace(/^\uFEFF/, '')) as Record<string, unknown>;
  } catch (e) {
    throw new PeftError(`${PEFT_CONFIG_FILE} is not valid JSON (${(e as Error).message})`);
  }
  const safetensors = await source.read(PEFT_WEIGHTS_FILE);
  if (!safetensors) {
    const bin = await source.read('adapter_model.bin');
    throw new PeftError(
      bin
        ? `${source.label} has adapter_model.bin (PyTorch pickle), which tabtune cannot read: save the adapter with safe_serialization=True (the default in current PEFT)`
        : `${PEFT_WEIGHTS_FILE} not found in ${source.label}`,
    );
  }
  return importAnyPeftAdapter(lm, { config, safetensors }, opts);
}
