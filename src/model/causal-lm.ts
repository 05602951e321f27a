// What every architecture offers the rest of tabtune: a forward pass to logits, a KV cache, and its
// Linear layers by Hugging Face module name (where adapters attach).
import type * as tf from '@tensorflow/tfjs-core';
import { contextLength, type ModelConfig } from './config';
import type { KVCache } from './kv-cache';
import type { Linear } from './ops';
import type { WeightMap } from './types';

export interface ForwardOptions {
  /** Continue from (and append to) this cache. */
  cache?: KVCache;
  /** [B][T], 1 = real token, 0 = padding (left padding for batched prompts). Default all ones. */
  mask?: number[][];
  /** Only compute logits for the last position of each row: [B, 1, V]. */
  lastOnly?: boolean;
  /**
   * Only compute logits for positions [start, end) of row b (a training loss that weighs only those: the
   * completion, not the prompt or the padding), the rows' ranges one after another: [1, sum(end - start), V].
   * The vocabulary projection is most of a small model's step. An empty range leaves its row out. Not with
   * lastOnly.
   */
  logitRanges?: readonly (readonly [number, number])[];
  /**
   * When given, forward pushes the residual stream after each block into it: one [B, T, D] tensor per
   * layer (all T positions, even with lastOnly), in layer order; the last one is what the final norm
   * reads. The tensors are kept (outside forward's tidy): the caller disposes them.
   */
  hidden?: tf.Tensor[];
  /**
   * Activation recomputation (training): each block keeps only its input for the backward and runs again
   * there (src/model/checkpoint.ts): far less memory for about one more forward of the blocks per step.
   * Ignored with a cache.
   */
  recompute?: boolean;
}

/**
 * Learned input vectors prepended to every sequence (prompt tuning, src/prompt/adapter.ts). Forward puts
 * them before the ids' embeddings: they take positions 0..n-1, attend as real tokens, and their logits are
 * dropped (callers still get [B, T, V]). With a KV cache they are fed once, by the call that starts it.
 */
export interface InputPrefix {
  /** Virtual tokens prepended now: 0 when off (the base model). */
  readonly length: number;
  /** Their embeddings [length, D], read inside forward's tidy (the trained variable). */
  embeddings(): tf.Tensor2D;
}

export interface CausalLM {
  readonly config: ModelConfig;
  /** Virtual tokens before every input (prompt tuning), or null. Set by the adapter that owns them. */
  prefix: InputPrefix | null;
  /** Distinct parameters (tied embeddings counted once). */
  readonly numParams: number;
  /** Every Linear by HF module name, e.g. "model.layers.0.self_attn.q_proj". */
  readonly linears: Map<string, Linear>;
  /** ids: [B][T] (rows of equal length) -> logits [B, T, V] (or [B, 1, V] with lastOnly, [1, N, V] with logitRanges). */
  forward(ids: number[][], opts?: ForwardOptions): tf.Tensor3D;
  createCache(batch: number): KVCache;
  /** The input embeddings of ids (token embeddings only, no positions): [N, D], a new tensor. */
  embedTokens(ids: number[]): tf.Tensor2D;
  /** Every weight as a trainable variable when built with { trainable: true }, else []. */
  trainableVariables(): tf.Variable[];
  /** Current weights with checkpoint names and layouts (a tied head is not repeated). */
  exportWeights(): WeightMap;
  /** The backend tensors exportWeights reads (to download them asynchronously first on WebGPU). */
  weightTensors(): tf.Tensor[];
  dispose(): void;
}

/** Virtual tokens a forward call prepends: the prefix's, unless the cache it continues already holds them. */
export function prefixLength(lm: Pick<CausalLM, 'prefix'>, cache?: KVCache): number {
  if (cache && cache.length > 0) return 0;
  return lm.prefix?.length ?? 0;
}

/** The model's context left for real tokens once the virtual tokens (prompt tuning) take theirs. */
export function tokenContext(lm: Pick<CausalLM, 'prefix' | 'config'>): number {
  return contextLength(lm.config) - (lm.prefix?.length ?? 0);
}
