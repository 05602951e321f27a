// Folds an adapter into the base weights, written back in the checkpoint's own layout ([out, in] for
// nn.Linear, [in, out] for GPT-2 Conv1D), for export: LoRA adds W' = W + s * strength * A B; OFT rotates,
// W' = R W, which it gives as the update (R - I) W (src/oft/adapter.ts).
import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';
import type { Linear } from '../model/ops';
import type { WeightMap } from '../model/types';
import { transpose2d } from '../model/weights';

/** What merging needs of an adapter (LoRA, OFT): its layers and the update each one's weight receives. */
export interface MergeableAdapter {
  readonly lm: CausalLM;
  readonly modules: ReadonlyMap<string, { readonly linear: Linear; readonly inDim: number; readonly outDim: number }>;
  /** The update at this strength (0 = base, 1 = tuned). */
  strength: number;
  /** A module's update [in, out] at the current strength, read back. */
  delta(name: string): Float32Array;
  /** The same as a backend tensor, not read back. */
  deltaTensor(name: string): tf.Tensor2D;
}

/**
 * The adapter's updates ([in, out], e.g. s * strength * A B) per module, read asynchronously: for mergeLora
 * on backends where synchronous reads are unsafe (WebGPU in Chromium), with the weights downloaded first.
 */
export async function readDeltas(adapter: MergeableAdapter, strength = 1): Promise<Map<string, Float32Array>> {
  const saved = adapter.strength;
  adapter.strength = strength;
  const out = new Map<string, Float32Array>();
  try {
    for (const name of adapter.modules.keys()) {
      const t = adapter.deltaTensor(name);
      out.set(name, (await t.data()) as Float32Array);
      t.dispose();
    }
  } finally {
    adapter.strength = saved;
  }
  return out;
}

/**
 * `deltas` (from readDeltas) replace the adapter's own synchronous reads.
 * `onModule(done, total, weights)` runs once the base weights are read (done 0) and after each adapted
 * weight is merged (export progress); `weights` is how many weights the model has.
 */
export function mergeLora(lm: CausalLM, adapter: MergeableAdapter, onModule?: (done: number, total: number, weights: number) => void, deltas?: ReadonlyMap<string, Float32Array>): WeightMap {
  const weights = lm.exportWeights();
  const total = adapter.modules.size;
  let done = 0;
  onModule?.(0, total, weights.size);
  for (const [name, m] of adapter.modules) {
    const key = `${name}.weight`;
    const w = weights.get(key);
    if (!w) throw new Error(`merge: the model has no weight ${key}`);
    const delta = deltas?.get(name) ?? adapter.delta(name); // [in, out]
    const d = m.linear.stored === 'out_in' ? transpose2d(delta, m.inDim, m.outDim) : delta;
    const data = w.data.slice();
    for (let i = 0; i < data.length; i++) data[i]! += d[i]!;
    weights.set(key, { ...w, data });
    onModule?.(++done, total, weights.size);
  }
  return weights;
}
