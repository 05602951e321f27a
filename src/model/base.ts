// What every architecture shares: its weights live in a WeightReader (checkpoint names, layouts,
// trainable or not), its Linear layers are listed by HF module name, and a KV cache has one slot
// per layer. Each architecture file adds only its own math.
import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ForwardOptions } from './causal-lm';
import type { ModelConfig } from './config';
import { KVCache } from './kv-cache';
import type { Linear } from './ops';
import type { WeightMap } from './types';
import { WeightReader } from './weights';

export abstract class BaseCausalLM implements CausalLM {
  readonly linears = new Map<string, Linear>();
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

  createCache(batch: number): KVCache {
    return new KVCache(batch, this.nLayers);
  }

  trainableVariables(): tf.Variable[] {
    return this.reader.variables();
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
