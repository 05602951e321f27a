// Folds a LoRA adapter into the base weights: W' = W + s * strength * A B, written back in the
// checkpoint's own layout ([out, in] for nn.Linear, [in, out] for GPT-2 Conv1D), for export.
import type { CausalLM } from '../model/causal-lm';
import type { WeightMap } from '../model/types';
import { transpose2d } from '../model/weights';
import type { LoraAdapter } from './adapter';

/**
 * The adapter's updates s * strength * A B ([in, out]) per module, read asynchronously: for mergeLora on
 * backends where synchronous reads are unsafe (WebGPU in Chromium), with the weights downloaded first.
 */
export async function readDeltas(adapter: LoraAdapter, strength = 1): Promise<Map<string, Float32Array>> {
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
export function mergeLora(lm: CausalLM, adapter: LoraAdapter, onModule?: (done: number, total: number, weights: number) => void, deltas?: ReadonlyMap<string, Float32Array>): WeightMap {
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
