// Path-wise rewinding (issue 13): weights between the base model and a checkpoint, measured for the
// task-vs-forgetting chart. It works on an adapter's trained tensors by checkpoint name, as
// TrainableAdapter.getTensors/setTensors and checkpoints hold them, for any adapter whose tensors are
// `<module>.<kind>`; each module has one "update" tensor whose zero is the base model:
// - LoRA (`.lora_A`, `.lora_B`): ΔW = s·A·B (A [in, r], B [r, out], math layout), so alpha·ΔW is exactly
//   B scaled by alpha with A unchanged, and B = 0 is the base model.
// - OFT (`.oft_R`, the packed skew-symmetric Q): scaling gives alpha·Q, so the rotation is cayley(alpha·Q),
//   the same path the adapter's strength follows (strength alpha with Q is alpha·Q at strength 1), and
//   Q = 0 (R = I) is the base model. For OFT the path is in rotation-generator space: (R(alpha) - I)·W is
//   not alpha·ΔW.
// Rewinding a layer's modules to the base model zeroes their update tensors (keeping the others, e.g.
// LoRA's A); rewinding them to another checkpoint takes all their tensors from it. The data functions are
// pure (new maps, inputs never changed); explorePath drives an adapter through the candidates and puts its
// weights back; applyRecipe rebuilds a candidate's tensors from its recipe (to store it as a checkpoint).
import type { TrainableAdapter } from '../loop';
import type { TradeoffPoint, TradeoffRecipe } from './decisions';

/** An adapter's trained tensors by checkpoint name (`<module>.lora_A`, `<module>.lora_B`, `<module>.oft_R`). */
export type AdapterTensors = Map<string, Float32Array>;
type TensorsIn = ReadonlyMap<string, Float32Array>;

/** The kinds of trained tensor the path knows, and whether each is its module's update (zero = base model). */
const KINDS: Readonly<Record<string, { update: boolean }>> = { lora_A: { update: false }, lora_B: { update: true }, oft_R: { update: true } };
const TENSOR = /^(.+)\.([^.]+)$/;

function kindOf(name: string): { module: string; update: boolean } {
  const m = TENSOR.exec(name);
  const k = m && Object.hasOwn(KINDS, m[2]!) ? KINDS[m[2]!]! : null;
  if (!k) throw new Error(`${name} is not an adapter tensor (<module>.${Object.keys(KINDS).join(' | ')})`);
  return { module: m![1]!, update: k.update };
}

/** The module a trained tensor belongs to (`<module>.lora_B` -> `<module>`); throws for other names. */
export function moduleOf(tensor: string): string {
  return kindOf(tensor).module;
}

/** Whether the tensor is its module's update (LoRA's B, OFT's Q), which alpha scales and the base model zeroes. */
export function isUpdateTensor(tensor: string): boolean {
  return kindOf(tensor).update;
}

/**
 * The adapter's trained tensors from a checkpoint's tensors by name (leaving out the optimizer's moments,
 * `<param>.adam_m` / `.adam_v`). The arrays are the checkpoint's own (not copied).
 */
export function adapterTensors(tensors: Readonly<Record<string, { data: Float32Array }>>): AdapterTensors {
  const out: AdapterTensors = new Map();
  for (const [name, t] of Object.entries(tensors)) {
    const m = TENSOR.exec(name);
    if (m && Object.hasOwn(KINDS, m[2]!)) out.set(name, t.data);
  }
  return out;
}

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

/**
 * The tensors of the update scaled by alpha: every update tensor (LoRA's B, OFT's Q) times alpha (alpha 0:
 * zeros, as rewinding to the base model gives, no -0), the others unchanged (copies).
 */
export function scaleUpdate(w: TensorsIn, alpha: number): AdapterTensors {
  const out: AdapterTensors = new Map();
  for (const [name, t] of w) {
    if (alpha === 1 || !isUpdateTensor(name)) out.set(name, t.slice());
    else out.set(name, alpha === 0 ? new Float32Array(t.length) : t.map((x) => x * alpha));
  }
  return out;
}

function rewindWhere(w: TensorsIn, to: TensorsIn | null, rewound: (module: string) => boolean): AdapterTensors {
  const out: AdapterTensors = new Map();
  for (const [name, t] of w) {
    const { module, update } = kindOf(name);
    if (!rewound(module)) out.set(name, t.slice());
    else if (to === null) out.set(name, update ? new Float32Array(t.length) : t.slice());
    else {
      const x = to.get(name);
      if (!x) throw new Error(`the checkpoint rewound to has no weights for ${name}`);
      out.set(name, x.slice());
    }
  }
  return out;
}

/**
 * `w` with the modules of one half of the layers rewound: all their tensors taken from `to`, or, when `to`
 * is null, their update tensors zeroed (the base model: LoRA's B = 0, OFT's Q = 0). Modules outside that
 * half, and those in no numbered layer, keep w's.
 */
export function rewindLayers(w: TensorsIn, to: TensorsIn | null, which: LayerHalf, numLayers: number): AdapterTensors {
  return rewindWhere(w, to, (module) => inHalf(module, which, numLayers));
}

/**
 * A trade-off point's tensors from its recipe: the checkpoint at fromStep, with its rewound layers
 * taken from rewindTo (default the base model), then its update scaled by alpha.
 */
export function applyRecipe(checkpointsByStep: ReadonlyMap<number, TensorsIn>, recipe: TradeoffRecipe, numLayers: number): AdapterTensors {
  const at = (step: number) => {
    const w = checkpointsByStep.get(step);
    if (!w) throw new Error(`no checkpoint at step ${step}`);
    return w;
  };
  const from = at(recipe.fromStep);
  let w: TensorsIn = from;
  if (recipe.layers) {
    const rewindTo = recipe.rewindTo ?? 'base';
    const to = rewindTo === 'base' ? null : at(rewindTo);
    const layers = recipe.layers;
    w = layers === 'all' ? rewindWhere(from, to, () => true) : rewindLayers(from, to, layers, numLayers);
  }
  return scaleUpdate(w, recipe.alpha);
}

/** The adapter's trained tensors by checkpoint name, read asynchronously (synchronous reads are unsafe on WebGPU). */
async function readTensors(adapter: TrainableAdapter): Promise<AdapterTensors> {
  const vars = adapter.variables();
  const names = adapter.paramNames;
  if (vars.length !== names.length) throw new Error(`the adapter has ${vars.length} variables but ${names.length} tensor names`);
  const data = await Promise.all(vars.map((v) => v.data()));
  return new Map(names.map((n, i) => [n, data[i] as Float32Array]));
}

function setTensors(adapter: TrainableAdapter, w: TensorsIn): void {
  adapter.setTensors(Object.fromEntries([...w].map(([name, data]) => [name, { data }])));
}

/** Refuses a checkpoint whose tensors are not exactly the adapter's (by name and size). */
function checkTensors(step: number, w: TensorsIn, like: TensorsIn): void {
  for (const [name, t] of like) {
    const x = w.get(name);
    if (!x) throw new Error(`the checkpoint at step ${step} has no weights for ${name}`);
    if (x.length !== t.length) throw new Error(`the checkpoint at step ${step} holds ${x.length} values for ${name}, the adapter ${t.length}`);
  }
  for (const name of w.keys()) if (!like.has(name)) throw new Error(`the checkpoint at step ${step} holds ${name}, which the adapter does not have`);
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('aborted', 'AbortError');
}

const HALF_NAME: Record<LayerHalf, string> = { 'first-half': 'first', 'last-half': 'last' };

export interface ExploreOptions {
  /** The adapter attached to the model that measure uses (LoRA or OFT). */
  adapter: TrainableAdapter;
  /** The checkpoints to explore from (the final and the best), any order: the adapter's tensors by name. */
  checkpoints: readonly { step: number; weights: TensorsIn }[];
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
 * A checkpoint whose tensors are not the adapter's is refused before anything is measured.
 */
export async function explorePath(o: ExploreOptions): Promise<TradeoffPoint[]> {
  const { adapter, numLayers } = o;
  const cks = [...o.checkpoints].sort((a, b) => a.step - b.step);
  const byStep = new Map(cks.map((c) => [c.step, c.weights]));
  const original = await readTensors(adapter);
  for (const ck of cks) checkTensors(ck.step, ck.weights, original);
  const modules = [...new Set([...original.keys()].map(moduleOf))];
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
  const saved = { strength: adapter.strength, enabled: adapter.enabled };
  const points: TradeoffPoint[] = [];
  try {
    adapter.strength = 1;
    adapter.enabled = true;
    for (const c of candidates) {
      throwIfAborted(o.signal);
      setTensors(adapter, applyRecipe(byStep, c.recipe, numLayers));
      const m = await o.measure(c.recipe);
      points.push({ ...c, task: m.task, forgetPct: m.forgetPct });
      o.onProgress?.(points.length, candidates.length, c.label);
    }
    throwIfAborted(o.signal);
  } finally {
    setTensors(adapter, original);
    adapter.strength = saved.strength;
    adapter.enabled = saved.enabled;
  }
  return points;
}
