// Prompt tuning (Lester et al. 2021) the way Hugging Face PEFT's PROMPT_TUNING does it for causal LMs:
// num_virtual_tokens learned vectors of the model's hidden size (PEFT's PromptEmbedding, one
// nn.Embedding [n, token_dim]) are put before the input embeddings of every sequence; the model stays
// frozen and only those vectors train. Followed: PEFT's src/peft/tuners/prompt_tuning/{config,model}.py
// and PeftModelForCausalLM.forward / prepare_inputs_for_generation, read, not run.
//
// - The virtual tokens take positions 0..n-1 and the real tokens start at n (HF computes positions from
//   the attention mask, which PEFT extends with n ones in front); they are attended like real tokens, and
//   their logits are dropped (PEFT drops them too before the loss). With a KV cache they are fed once,
//   by the call that starts the cache (the prefill), and later tokens attend to them from there.
//   The model side is CausalLM.prefix (src/model/causal-lm.ts), which this adapter sets to itself.
// - Initialisation (prompt_tuning_init):
//     TEXT          the input embeddings of the ids of prompt_tuning_init_text (PEFT: tokenizer(text)
//                   ["input_ids"], so with BOS where the tokenizer adds one), cut to n or repeated to n;
//     SAMPLE_VOCAB  the input embeddings of n vocabulary ids drawn uniformly (seeded);
//     RANDOM        PEFT leaves nn.Embedding's N(0, 1) init; tabtune draws N(0, s^2) with s the RMS of the
//                   model's token embeddings (measured on 256 seeded rows), so the virtual tokens start at
//                   the scale of real ones (N(0, 1) is tens of times larger on small models and trains worse).
// - Export: PEFT's prompt-tuning folder, adapter_config.json (peft_type PROMPT_TUNING) and the tensor
//   `prompt_embeddings` [n, token_dim] (src/io/peft.ts). There is nothing to merge into the weights.
// - Strength: a learned prompt has no halfway point. 0 (or enabled false) is the base model, exactly (no
//   virtual tokens at all); any strength above 0 feeds the trained vectors as they are.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, InputPrefix } from '../model/causal-lm';
import type { TrainableAdapter } from '../train/loop';
import type { PromptTuningConfig } from '../train/config';
import { seededRandom } from '../util/random';

export class PromptTuningError extends Error {
  override name = 'PromptTuningError';
}

/** Why a prompt-tuning adapter has no merged-model export. */
export const PROMPT_NO_MERGE = 'Prompt tuning adds input vectors, there are no weights to merge: export the PEFT adapter.';

/** The one trained tensor's checkpoint name, the same as PEFT's key in adapter_model.safetensors. */
export const PROMPT_EMBEDDINGS = 'prompt_embeddings';

export interface PromptTuningOptions {
  /** Seed of SAMPLE_VOCAB's ids and RANDOM's values. */
  seed?: number;
  /** TEXT: the token ids of prompt_tuning_init_text (tokenizer.encode(text), with BOS where it adds one). */
  initIds?: number[];
  /** Trained values [n * D] (a checkpoint, an import): no initialisation. */
  weights?: Float32Array;
}

/** TEXT's rule: the ids cut to n, or repeated until there are n (PEFT's PromptEmbedding). */
export function fitInitIds(ids: readonly number[], n: number): number[] {
  if (!ids.length) throw new PromptTuningError('prompt_tuning_init TEXT needs a text with at least one token (prompt_tuning_init_text)');
  const out: number[] = [];
  while (out.length < n) out.push(...ids);
  return out.slice(0, n);
}

export class PromptTuningAdapter implements TrainableAdapter, InputPrefix {
  readonly kind = 'prompt' as const;
  /** [n, D]: the virtual tokens' embeddings (PEFT's prompt_encoder.embedding.weight). */
  readonly embedding: tf.Variable;
  readonly paramNames = [PROMPT_EMBEDDINGS] as const;
  /** 0 = base model (no virtual tokens); anything above 0 feeds the trained vectors. */
  strength = 1;
  enabled = true;
  /** Prompt tuning has no dropout; kept for the Trainer. */
  training = false;

  constructor(
    readonly lm: CausalLM,
    readonly config: PromptTuningConfig,
    opts: PromptTuningOptions = {},
  ) {
    const n = config.num_virtual_tokens;
    if (!Number.isInteger(n) || n < 1) throw new PromptTuningError(`num_virtual_tokens should be a positive whole number, got ${n}`);
    if (lm.prefix) throw new PromptTuningError('the model already has virtual tokens attached (another prompt-tuning adapter): dispose it first');
    const D = hiddenSize(lm);
    const V = lm.config.vocab_size;
    let init: tf.Tensor2D;
    if (opts.weights) {
      if (opts.weights.length !== n * D) throw new PromptTuningError(`prompt_embeddings has ${opts.weights.length} values but ${n} virtual tokens of size ${D} need ${n * D}`);
      init = tf.tensor2d(opts.weights, [n, D]);
    } else if (config.prompt_tuning_init === 'TEXT') {
      if (!opts.initIds) throw new PromptTuningError('prompt_tuning_init TEXT needs the token ids of prompt_tuning_init_text');
      init = lm.embedTokens(fitInitIds(opts.initIds, n));
    } else if (config.prompt_tuning_init === 'SAMPLE_VOCAB') {
      const rand = seededRandom(opts.seed ?? 0);
      init = lm.embedTokens(Array.from({ length: n }, () => Math.min(V - 1, Math.floor(rand() * V))));
    } else {
      init = randomInit(lm, n, D, opts.seed ?? 0);
    }
    // tidy frees the initial value; the variable keeps its own reference to the data.
    this.embedding = tf.tidy(() => tf.variable(init, true));
    init.dispose();
    lm.prefix = this;
  }

  get numVirtualTokens(): number {
    return this.embedding.shape[0]!;
  }

  /** InputPrefix: the virtual tokens forward prepends now (0 when off). */
  get length(): number {
    return this.enabled && this.strength > 0 ? this.numVirtualTokens : 0;
  }

  /** InputPrefix: the trained vectors [n, D]. */
  embeddings(): tf.Tensor2D {
    return this.embedding as tf.Tensor2D;
  }

  setDropoutSeed(): void {
    // no dropout in prompt tuning
  }

  variables(): tf.Variable[] {
    return [this.embedding];
  }

  numParams(): number {
    return this.embedding.size;
  }

  /** The trained vectors, [n * D] row-major. */
  getWeights(): Float32Array {
    return this.embedding.dataSync() as Float32Array;
  }

  setWeights(w: Float32Array): void {
    if (w.length !== this.embedding.size) throw new PromptTuningError(`prompt_embeddings has ${w.length} values, this adapter needs ${this.embedding.size} (${this.embedding.shape.join(' x ')})`);
    tf.tidy(() => this.embedding.assign(tf.tensor2d(w, this.embedding.shape as [number, number])));
  }

  getTensors(): Record<string, { shape: number[]; data: Float32Array }> {
    return { [PROMPT_EMBEDDINGS]: { shape: [...this.embedding.shape], data: this.getWeights() } };
  }

  setTensors(t: Readonly<Record<string, { data: Float32Array }>>): void {
    const e = t[PROMPT_EMBEDDINGS];
    if (!e) throw new PromptTuningError(`no tensor ${PROMPT_EMBEDDINGS}`);
    this.setWeights(e.data);
  }

  /** Detaches from the model (the base model again) and frees the variable. */
  dispose(): void {
    if (this.lm.prefix === this) this.lm.prefix = null;
    this.embedding.dispose();
  }
}

/** The model's hidden size (token_dim). */
export function hiddenSize(lm: Pick<CausalLM, 'config'>): number {
  const c = lm.config as unknown as { hidden_size?: number; n_embd?: number };
  const D = c.hidden_size ?? c.n_embd;
  if (!D) throw new PromptTuningError('the model config gives no hidden size');
  return D;
}

/** RANDOM: N(0, s^2) with s the RMS of 256 seeded rows of the token embeddings. */
function randomInit(lm: CausalLM, n: number, D: number, seed: number): tf.Tensor2D {
  const rand = seededRandom(seed);
  const V = lm.config.vocab_size;
  const rows = lm.embedTokens(Array.from({ length: Math.min(256, V) }, () => Math.min(V - 1, Math.floor(rand() * V))));
  const sample = rows.dataSync();
  rows.dispose();
  let sq = 0;
  for (const v of sample) sq += v * v;
  const s = Math.sqrt(sq / sample.length) || 1;
  const data = new Float32Array(n * D);
  for (let i = 0; i < data.length; i += 2) {
    // Box-Muller: two normals from two uniforms
    const u = Math.max(rand(), 1e-12);
    const r = Math.sqrt(-2 * Math.log(u)) * s;
    const a = 2 * Math.PI * rand();
    data[i] = r * Math.cos(a);
    if (i + 1 < data.length) data[i + 1] = r * Math.sin(a);
  }
  return tf.tensor2d(data, [n, D]);
}
