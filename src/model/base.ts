// What every architecture shares: its weights live in a WeightReader (checkpoint names, layouts,
// trainable or not), its Linear layers are listed by HF module name, and a KV cache has one slot
// per layer. Each architecture file adds only its own math.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ForwardOptions, InputPrefix } from './causal-lm';
import type { ModelConfig } from './config';
import { KVCache } from './kv-cache';
import { selectPositions, type Linear } from './ops';
import type { WeightMap } from './types';
import { WeightReader } from './weights';

export abstract class BaseCausalLM implements CausalLM {
  readonly linears = new Map<string, Linear>();
  prefix: InputPrefix | null = null;
  protected readonly reader: WeightReader;

  protected constructor(
    readonly config: ModelConfig,
    weights: WeightMap,
    trainable: boolean,
    private readonly nLayers: number,
  ) {
    this.reader = new WeightReader(weights, config.model_type, trainable);
  }

  get numParams(): number {
    return this.reader.numParams;
  }

  abstract forward(ids: number[][], opts?: ForwardOptions): tf.Tensor3D;

  /** The token embedding table [V, D]. */
  protected abstract get tokenTable(): tf.Tensor2D;

  embedTokens(ids: number[]): tf.Tensor2D {
    return tf.tidy(() => tf.gather(this.tokenTable, tf.tensor1d(ids, 'int32')));
  }

  /**
   * x [B, T, D] with the prefix's `virtual` vectors put before it: [B, virtual + T, D] (x itself when 0).
   * Call inside forward's tidy.
   */
  protected withPrefix(x: tf.Tensor, virtual: number): tf.Tensor {
    if (!virtual) return x;
    const p = this.prefix!.embeddings(); // [n, D]
    const B = x.shape[0]!;
    return tf.concat([tf.tile(tf.expandDims(p, 0), [B, 1, 1]), x], 1); // [B, n + T, D]
  }

  /** Drops the virtual positions of h [B, n + T, …]: [B, T, …] (h itself when virtual is 0). */
  protected withoutPrefix(h: tf.Tensor, virtual: number): tf.Tensor {
    if (!virtual) return h;
    const begin = h.shape.map((_, i) => (i === 1 ? virtual : 0));
    return tf.slice(h, begin, h.shape.map(() => -1));
  }

  /**
   * The residual stream x [B, T, D] (virtual tokens first) at the positions whose logits forward returns:
   * [B, 1, D] with lastOnly, [1, N, D] with logitRanges, else every real position [B, T - virtual, D].
   */
  protected logitPositions(x: tf.Tensor, virtual: number, opts: ForwardOptions): tf.Tensor {
    if (opts.lastOnly && opts.logitRanges) throw new Error('forward: lastOnly and logitRanges together (pick one)');
    const [B, T] = x.shape as [number, number];
    if (opts.lastOnly) return tf.slice(x, [0, T - 1, 0], [B, 1, -1]);
    const real = this.withoutPrefix(x, virtual);
    return opts.logitRanges ? selectPositions(real, opts.logitRanges) : real;
  }

  createCache(batch: number): KVCache {
    return new KVCache(batch, this.nLayers);
  }

  trainableVariables(): tf.Variable[] {
    return this.reader.variables();
  }

  /** Drops the checkpoint arrays the model was built from (see WeightReader.release). */
  releaseCheckpoint(): void {
    this.reader.release();
  }

  exportWeights(): WeightMap {
    return this.reader.exportWeights();
  }

  weightTensors(): tf.Tensor[] {
    return [...this.reader.named.values()].map((e) => e.t);
  }

  dispose(): void {
    this.reader.disposeAll();
  }
}
