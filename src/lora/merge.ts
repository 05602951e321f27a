// Folds a LoRA adapter into the base weights: W' = W + s * strength * A B, written back in the
// checkpoint's own layout ([out, in] for nn.Linear, [in, out] for GPT-2 Conv1D), for export.
import type { CausalLM } from '../model/causal-lm';
import type { WeightMap } from '../model/types';
import { transpose2d } from '../model/weights';
import type { LoraAdapter } from './adapter';

export function mergeLora(lm: CausalLM, adapter: LoraAdapter): WeightMap {
  const weights = lm.exportWeights();
  for (const [name, m] of adapter.modules) {
    const key = `${name}.weight`;
    const w = weights.get(key);
    if (!w) throw new Error(`merge: the model has no weight ${key}`);
    const delta = adapter.delta(name); // [in, out]
    const d = m.linear.stored === 'out_in' ? transpose2d(delta, m.inDim, m.outDim) : delta;
    const data = w.data.slice();
    for (let i = 0; i < data.length; i++) data[i]! += d[i]!;
    weights.set(key, { ...w, data });
  }
  return weights;
}
