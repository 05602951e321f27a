// Folds a LoRA adapter into the base weights: W' = W + s * strength * A B, written back in the
// checkpoint's own layout ([out, in] for nn.Linear, [in, out] for GPT-2 Conv1D), for export.
import type { CausalLM } from '../model/causal-lm';
import type { WeightMap } from '../model/types';
import { transpose2d } from '../model/weights';
import type { LoraAdapter } from './adapter';

/**
 * `onModule(done, total, weights)` runs once the base weights are read (done 0) and after each adapted
 * weight is merged (export progress); `weights` is how many weights the model has.
 */
export function mergeLora(lm: CausalLM, adapter: LoraAdapter, onModule?: (done: number, total: number, weights: number) => void): WeightMap {
  const weights = lm.exportWeights();
  const total = adapter.modules.size;
  let done = 0;
  onModule?.(0, total, weights.size);
  for (const [name, m] of adapter.modules) {
    const key = `${name}.weight`;
    const w = weights.get(key);
    if (!w) throw new Error(`merge: the model has no weight ${key}`);
    const delta = adapter.delta(name); // [in, out]
    const d = m.linear.stored === 'out_in' ? transpose2d(delta, m.inDim, m.outDim) : delta;
    const data = w.data.slice();
    for (let i = 0; i < data.length; i++) data[i]! += d[i]!;
    weights.set(key, { ...w, data });
    onModule?.(++done, total, weights.size);
  }
  return weights;
}
