// Path-wise rewinding (issue 13): weights between the base model and a checkpoint, measured for the
// task-vs-forgetting chart. LoRA's update of a module is ΔW = s·A·B (A [in, r], B [r, out], math layout),
// so alpha·ΔW is exactly B scaled by alpha with A unchanged, and rewinding a layer is taking another
// checkpoint's A and B for its modules (or B = 0: the base model). The data functions are pure (new
// maps, inputs never changed); explorePath drives an adapter through the candidates and puts its
// weights back; applyRecipe rebuilds a candidate's weights from its recipe (to store it as a checkpoint).
import type { LoraAdapter } from '../../lora/adapter';
import type { TradeoffPoint, TradeoffRecipe } from './decisions';

/** A LoRA adapter's weights by module name, math layout: A [in, r], B [r, out]. */
export type LoraWeights = Map<string, { A: Float32Array; B: Float32Array }>;
type WeightsIn = ReadonlyMap<string, { readonly A: Float32Array; readonly B: Float32Array }>;

export type LayerHalf = 'first-half' | 'last-half';

export const DEFAULT_ALPHAS: readonly number[] = [0, 0.25, 0.5, 0.75, 1];

/** The decoder layer a module belongs to ("model.layers.N." Llama, "transformer.h.N." GPT-2), or null. */
export function layerOf(module: string): number | null {
  const m = /(?:^|\.)(?:model\.layers|transformer\.h)\.(\d+)\./.exec(module);
  return m ? Number(m[1]) : null;
}

/** Whether a module lies in the chosen half of numLayers layers (an odd middle layer is in the first half). */
export function inHalf(module: string, which: LayerHalf, numLayers: number): boolean {
  const layer = layerOf(module);
  if (layer === null) return false;
  if (layer >= numLayers) throw new Error(`${module} is in layer ${layer}, but the model has ${numLayers} layers`);
  return which === 'first-half' ? layer < numLayers / 2 : layer >= numLayers / 2;
}

/** The weights of alpha·ΔW: every B scaled by alpha, A unchanged (copies). */
export function scaleUpdate(w: WeightsIn, alpha: number): LoraWeights {
  const out: LoraWeights = new Map();
  for (const [name, { A, B }] of w) out.set(name, { A: A.slice(), B: alpha === 1 ? B.slice() : B.map((x) => x * alpha) });
  return out;
}

function rewindWhere(w: WeightsIn, to: WeightsIn | null, rewound: (module: string) => boolean): LoraWeights {
  const out: LoraWeights = new Map();
  for (const [name, { A, B }] of w) {
    if (!rewound(name)) out.set(name, { A: A.slice(), B: B.slice() });
    else if (to === null) out.set(name, { A: A.slice(), B: new Float32Array(B.length) });
    else {
      const t = to.get(name);
      if (!t) throw new Error(`the checkpoint rewound to has no weights for ${name}`);
      out.set(name, { A: t.A.slice(), B: t.B.slice() });
    }
  }
  return out;
}

/**
 * `w` with the modules of one half of the layers rewound: they take `to`'s A and B, or B = 0 (the base
 * model) when `to` is null. Modules outside that half, and those in no numbered layer, keep w's.
 */
export function rewindLayers(w: WeightsIn, to: WeightsIn | null, which: LayerHalf, numLayers: number): LoraWeights {
  return rewindWhere(w, to, (name) => inHalf(name, which, numLayers));
}

/**
 * A trade-off point's weights from its recipe: the checkpoint at fromStep, with its rewound layers
 * taken from rewindTo (default the base model), then its update scaled by alpha.
 */
export function applyRecipe(checkpointsByStep: ReadonlyMap<number, WeightsIn>, recipe: TradeoffRecipe, numLayers: number): LoraWeights {
  const at = (step: number) => {
    const w = checkpointsByStep.get(step);
    if (!w) throw new Error(`no checkpoint at step ${step}`);
    return w;
  };
  const from = at(recipe.fromStep);
  let w: WeightsIn = from;
  if (recipe.layers) {
    const rewindTo = recipe.rewindTo ?? 'base';
    const to = rewindTo === 'base' ? null : at(rewindTo);
    const layers = recipe.layers;
    w = layers === 'all' ? rewindWhere(from, to, () => true) : rewindLayers(from, to, layers, numLayers);
  }
  return scaleUpdate(w, recipe.alpha);
}

/** The adapter's weights, read asynchronously (synchronous reads are unsafe on WebGPU). */
async function readWeights(adapter: LoraAdapter): Promise<LoraWeights> {
  const out: LoraWeights = new Map();
  for (const [name, m] of adapter.modules) out.set(name, { A: (await m.A.data()) as Float32Array, B: (await m.B.data()) as Float32Array });
  return out;
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
}

const HALF_NAME: Record<LayerHalf, string> = { 'first-half': 'first', 'last-half': 'last' };

export interface ExploreOptions {
  adapter: LoraAdapter;
  /** The checkpoints to explore from (the final and the best), any order. */
  checkpoints: readonly { step: number; weights: WeightsIn }[];
  /** Scales of each checkpoint's update; default DEFAULT_ALPHAS. 0 (the base model) is measured once. */
  alphas?: readonly number[];
  numLayers: number;
  /** Measures the adapter as it is now set (the task metric and the probe's NLL increase in %). */
  measure: (recipe: TradeoffRecipe) => Promise<{ task: number; forgetPct: number | null }>;
  signal?: AbortSignal;
  /** Called after each point is measured (done of total), e.g. for a progress bar. */
  onProgress?: (done: number, total: number, label: string) => void;
}

/**
 * Measures, for each checkpoint, its update scaled by each alpha and each half of its layers rewound to
 * the base model and to every earlier checkpoint given, with the adapter at full strength and enabled;
 * then puts the adapter's weights, strength and switch back (also on an error or an abort, which
 * rethrows the signal's reason). Points come in the order measured, each with its recipe and label.
 */
export async function explorePath(o: ExploreOptions): Promise<TradeoffPoint[]> {
  const { adapter, numLayers } = o;
  const cks = [...o.checkpoints].sort((a, b) => a.step - b.step);
  const byStep = new Map(cks.map((c) => [c.step, c.weights]));
  const modules = [...adapter.modules.keys()];
  const candidates: { id: string; step: number; label: string; recipe: TradeoffRecipe }[] = [];
  let base = false;
  for (const ck of cks) {
    const s = ck.step;
    for (const alpha of o.alphas ?? DEFAULT_ALPHAS) {
      if (alpha === 0) {
        if (!base) candidates.push({ id: 'base', step: 0, label: 'base model', recipe: { fromStep: s, alpha: 0 } });
        base = true;
      } else candidates.push({ id: `step-${s}-x${alpha}`, step: s, label: alpha === 1 ? `step ${s}` : `step ${s} × ${alpha}`, recipe: { fromStep: s, alpha } });
    }
    for (const layers of ['first-half', 'last-half'] as const) {
      // A half with no adapted module (a one-layer model's last half) would change nothing.
      if (!modules.some((m) => inHalf(m, layers, numLayers))) continue;
      const half = `step ${s}, ${HALF_NAME[layers]} half of layers rewound to`;
      candidates.push({ id: `step-${s}-${layers}-base`, step: s, label: `${half} base`, recipe: { fromStep: s, alpha: 1, layers, rewindTo: 'base' } });
      for (const e of cks) {
        if (e.step >= s) break;
        candidates.push({ id: `step-${s}-${layers}-step-${e.step}`, step: s, label: `${half} step ${e.step}`, recipe: { fromStep: s, alpha: 1, layers, rewindTo: e.step } });
      }
    }
  }
  const original = await readWeights(adapter);
  const saved = { strength: adapter.strength, enabled: adapter.enabled };
  const points: TradeoffPoint[] = [];
  try {
    adapter.strength = 1;
    adapter.enabled = true;
    for (const c of candidates) {
      throwIfAborted(o.signal);
      adapter.setWeights(applyRecipe(byStep, c.recipe, numLayers));
      const m = await o.measure(c.recipe);
      points.push({ ...c, task: m.task, forgetPct: m.forgetPct });
      o.onProgress?.(points.length, candidates.length, c.label);
    }
    throwIfAborted(o.signal);
  } finally {
    adapter.setWeights(original);
    adapter.strength = saved.strength;
    adapter.enabled = saved.enabled;
  }
  return points;
}
