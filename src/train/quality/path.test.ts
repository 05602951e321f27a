import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadModel } from '../../io/load-model';
import { LoraAdapter } from '../../lora/adapter';
import type { CausalLM } from '../../model/causal-lm';
import type { LanguageModel } from '../../model/load';
import { setupBackend } from '../../model/backend';
import { directorySource } from '../../node/fs-source';
import { OftAdapter } from '../../oft/adapter';
import { TINY_DIR } from '../../testing/models';
import { tinyModel } from '../../testing/tiny-model';
import { seededRandom } from '../../util/random';
import type { TrainableAdapter } from '../loop';
import type { TradeoffRecipe } from './decisions';
import { adapterTensors, applyRecipe, explorePath, inHalf, isUpdateTensor, layerOf, moduleOf, rewindLayers, scaleUpdate, type AdapterTensors } from './path';

const ids = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const LAYERS = 4;

/** Random tensors for every parameter of the adapter (LoRA's A and B, OFT's Q; updates non-zero, so every one matters). */
function randomWeights(ad: TrainableAdapter, seed: number): AdapterTensors {
  const rand = seededRandom(seed);
  const w: AdapterTensors = new Map();
  const vars = ad.variables();
  ad.paramNames.forEach((name, i) => {
    const k = isUpdateTensor(name) ? 0.4 : 1;
    w.set(name, Float32Array.from({ length: vars[i]!.size }, () => (rand() - 0.5) * k));
  });
  return w;
}

/** The adapter's tensors as they are now. */
function tensorsOf(ad: TrainableAdapter): AdapterTensors {
  return adapterTensors(ad.getTensors());
}

function setAll(ad: TrainableAdapter, w: AdapterTensors): void {
  ad.setTensors(Object.fromEntries([...w].map(([n, data]) => [n, { data }])));
}

function copy(w: AdapterTensors): AdapterTensors {
  return new Map([...w].map(([k, v]) => [k, v.slice()]));
}

/** LoRA tensors by name from each module's A and B. */
function lora(modules: [string, number[], number[]][]): AdapterTensors {
  return new Map(modules.flatMap(([m, A, B]) => [[`${m}.lora_A`, Float32Array.from(A)], [`${m}.lora_B`, Float32Array.from(B)]] as const));
}

/** A module's A and B out of LoRA tensors. */
const mod = (w: AdapterTensors, m: string) => ({ A: w.get(`${m}.lora_A`), B: w.get(`${m}.lora_B`) });

function logits(lm: CausalLM): Float32Array {
  return tf.tidy(() => lm.forward(ids).dataSync() as Float32Array).slice();
}

const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);

describe('pure weight functions', () => {
  it('finds the layer of Llama and GPT-2 modules and splits the layers in halves', () => {
    expect(layerOf('model.layers.12.self_attn.q_proj')).toBe(12);
    expect(layerOf('transformer.h.3.attn.c_attn')).toBe(3);
    expect(layerOf('base_model.model.model.layers.0.mlp.up_proj')).toBe(0);
    expect(layerOf('lm_head')).toBeNull();
    expect([0, 1, 2, 3, 4].map((l) => inHalf(`model.layers.${l}.mlp.up_proj`, 'first-half', 5))).toEqual([true, true, true, false, false]);
    expect([0, 1, 2, 3, 4].map((l) => inHalf(`model.layers.${l}.mlp.up_proj`, 'last-half', 5))).toEqual([false, false, false, true, true]);
    expect(() => inHalf('transformer.h.4.attn.c_attn', 'last-half', 4)).toThrow(/layer 4, but the model has 4 layers/);
  });

  it('scaleUpdate scales B only, rewindLayers swaps one half; neither changes its inputs', () => {
    const w = lora([
      ['transformer.h.0.attn.c_attn', [1, 2], [3, 4]],
      ['transformer.h.1.attn.c_attn', [5, 6], [7, 8]],
      ['lm_head', [9], [10]],
    ]);
    const to = lora(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn', 'lm_head'].map((k) => [k, [-1, -1], [-2, -2]]));
    const before = copy(w);
    const s = scaleUpdate(w, 0.5);
    expect(mod(s, 'transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(5, 6), B: Float32Array.of(3.5, 4) });
    expect(s.get('transformer.h.0.attn.c_attn.lora_A')).not.toBe(w.get('transformer.h.0.attn.c_attn.lora_A'));
    const last = rewindLayers(w, to, 'last-half', 2);
    expect(mod(last, 'transformer.h.0.attn.c_attn')).toEqual(mod(w, 'transformer.h.0.attn.c_attn'));
    expect(mod(last, 'transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(-1, -1), B: Float32Array.of(-2, -2) });
    expect(mod(last, 'lm_head')).toEqual(mod(w, 'lm_head'));
    const first = rewindLayers(w, null, 'first-half', 2);
    expect(mod(first, 'transformer.h.0.attn.c_attn')).toEqual({ A: Float32Array.of(1, 2), B: Float32Array.of(0, 0) });
    expect(mod(first, 'transformer.h.1.attn.c_attn')).toEqual(mod(w, 'transformer.h.1.attn.c_attn'));
    expect(w).toEqual(before);
    expect(() => rewindLayers(w, new Map(), 'first-half', 2)).toThrow(/no weights for transformer.h.0/);
    // applyRecipe: a rewind, then the scale; every layer at once; unknown steps say so.
    const cks = new Map([
      [800, w],
      [300, to],
    ]);
    expect(mod(applyRecipe(cks, { fromStep: 800, alpha: 0.5, layers: 'last-half', rewindTo: 300 }, 2), 'transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(-1, -1), B: Float32Array.of(-1, -1) });
    expect(mod(applyRecipe(cks, { fromStep: 800, alpha: 1, layers: 'all' }, 2), 'lm_head')).toEqual({ A: Float32Array.of(9), B: Float32Array.of(0) });
    expect(() => applyRecipe(cks, { fromStep: 500, alpha: 1 }, 2)).toThrow(/no checkpoint at step 500/);
    expect(w).toEqual(before);
  });

  it('works on OFT tensors the same way: Q scaled, Q = 0 for the base, all of a module from an earlier checkpoint', () => {
    const q = (l: number) => `model.layers.${l}.self_attn.q_proj.oft_R`;
    const w: AdapterTensors = new Map([
      [q(0), Float32Array.of(1, -2, 3)],
      [q(1), Float32Array.of(4, 5, -6)],
    ]);
    const to: AdapterTensors = new Map([
      [q(0), Float32Array.of(7, 7, 7)],
      [q(1), Float32Array.of(8, 8, 8)],
    ]);
    const before = copy(w);
    expect(moduleOf(q(1))).toBe('model.layers.1.self_attn.q_proj');
    expect(isUpdateTensor(q(1))).toBe(true);
    expect(isUpdateTensor('model.layers.1.self_attn.q_proj.lora_A')).toBe(false);
    expect(scaleUpdate(w, 0.25).get(q(1))).toEqual(Float32Array.of(1, 1.25, -1.5));
    expect(scaleUpdate(w, 0).get(q(0))).toEqual(new Float32Array(3));
    const first = rewindLayers(w, null, 'first-half', 2);
    expect(first.get(q(0))).toEqual(new Float32Array(3));
    expect(first.get(q(1))).toEqual(w.get(q(1)));
    expect(rewindLayers(w, to, 'last-half', 2).get(q(1))).toEqual(Float32Array.of(8, 8, 8));
    const cks = new Map([
      [9, w],
      [4, to],
    ]);
    const r = applyRecipe(cks, { fromStep: 9, alpha: 0.5, layers: 'first-half', rewindTo: 4 }, 2);
    expect([...r]).toEqual([
      [q(0), Float32Array.of(3.5, 3.5, 3.5)],
      [q(1), Float32Array.of(2, 2.5, -3)],
    ]);
    expect(w).toEqual(before);
    // A checkpoint's trained tensors, without the optimizer's moments; other names are refused.
    const ck = { [q(0)]: { data: Float32Array.of(1) }, [`${q(0)}.adam_m`]: { data: Float32Array.of(2) }, [`${q(0)}.adam_v`]: { data: Float32Array.of(3) } };
    expect([...adapterTensors(ck).keys()]).toEqual([q(0)]);
    expect(() => scaleUpdate(new Map([[`${q(0)}.adam_m`, Float32Array.of(1)]]), 0.5)).toThrow(/not an adapter tensor/);
  });
});

describe('path-wise rewinding on a tiny model', () => {
  let lm: CausalLM;
  let ad: LoraAdapter;
  beforeAll(async () => {
    await setupBackend('cpu');
  });
  beforeEach(() => {
    lm = tinyModel({ arch: 'llama', layers: LAYERS });
    ad = new LoraAdapter(lm, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 2 });
  });
  afterEach(() => {
    ad.dispose();
    lm.dispose();
  });

  it('scaleUpdate is alpha times the update s·A·B', () => {
    const w = randomWeights(ad, 5);
    setAll(ad, w);
    const full = new Map([...ad.modules.keys()].map((n) => [n, ad.delta(n)]));
    for (const alpha of [0, 0.25, 0.5, 0.75, 1]) {
      setAll(ad, scaleUpdate(w, alpha));
      for (const [n, d] of full) {
        const got = ad.delta(n);
        let worst = 0;
        for (let i = 0; i < d.length; i++) worst = Math.max(worst, Math.abs(got[i]! - alpha * d[i]!));
        expect(worst).toBeLessThanOrEqual(1e-6);
      }
    }
    expect(Math.max(...full.values().next().value!.map(Math.abs))).toBeGreaterThan(1e-2);
  });

  it('explores each checkpoint, measures at full strength, and applyRecipe rebuilds what was measured bit for bit', async () => {
    const ck300 = randomWeights(ad, 11);
    const ck800 = randomWeights(ad, 12);
    const original = randomWeights(ad, 13);
    setAll(ad, original);
    ad.strength = 0.3;
    ad.enabled = false;
    const baseLogits = logits(lm);
    const tensors = tf.memory().numTensors;
    const seen = new Map<string, { weights: AdapterTensors; logits: Float32Array }>();
    const points = await explorePath({
      adapter: ad,
      checkpoints: [
        { step: 800, weights: ck800 },
        { step: 300, weights: ck300 },
      ],
      numLayers: LAYERS,
      measure: async (recipe: TradeoffRecipe) => {
        expect(ad.strength).toBe(1);
        expect(ad.enabled).toBe(true);
        const l = logits(lm);
        seen.set(JSON.stringify(recipe), { weights: tensorsOf(ad), logits: l });
        return { task: l[0]!, forgetPct: l[1]! };
      },
    });
    // Alphas 0.25..1 per checkpoint plus the base once; halves to base (300) and to base and 300 (800).
    expect(points.map((p) => p.label)).toEqual([
      'base model',
      'step 300 × 0.25',
      'step 300 × 0.5',
      'step 300 × 0.75',
      'step 300',
      'step 300, first half of layers rewound to base',
      'step 300, last half of layers rewound to base',
      'step 800 × 0.25',
      'step 800 × 0.5',
      'step 800 × 0.75',
      'step 800',
      'step 800, first half of layers rewound to base',
      'step 800, first half of layers rewound to step 300',
      'step 800, last half of layers rewound to base',
      'step 800, last half of layers rewound to step 300',
    ]);
    expect(new Set(points.map((p) => p.id)).size).toBe(points.length);
    expect(points[0]).toMatchObject({ step: 0, recipe: { fromStep: 300, alpha: 0 } });
    expect(points[14]).toMatchObject({ step: 800, recipe: { fromStep: 800, alpha: 1, layers: 'last-half', rewindTo: 300 } });
    // Put back: weights, strength, switch; no tensor left behind.
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tensorsOf(ad)).toEqual(original);
    expect(ad.strength).toBe(0.3);
    expect(ad.enabled).toBe(false);

    // What was measured is what the recipe says.
    const measured = (i: number) => seen.get(JSON.stringify(points[i]!.recipe))!;
    expect(same(measured(0).logits, baseLogits)).toBe(true);
    expect(measured(4).weights).toEqual(ck300);
    const rewound = measured(14).weights;
    for (const [name, v] of rewound) expect(v).toEqual((layerOf(name)! >= LAYERS / 2 ? ck300 : ck800).get(name));
    for (const [name, v] of measured(11).weights) {
      const from = ck800.get(name)!;
      expect(v).toEqual(layerOf(name)! < LAYERS / 2 && name.endsWith('.lora_B') ? new Float32Array(from.length) : from);
    }
    for (const [name, v] of measured(8).weights) expect(v).toEqual(name.endsWith('.lora_B') ? ck800.get(name)!.map((x) => x * 0.5) : ck800.get(name));
    // applyRecipe reproduces every point's weights and logits exactly.
    const byStep = new Map([
      [300, ck300],
      [800, ck800],
    ]);
    ad.strength = 1;
    ad.enabled = true;
    for (const p of points) {
      const m = measured(points.indexOf(p));
      const w = applyRecipe(byStep, p.recipe!, LAYERS);
      expect(w).toEqual(m.weights);
      setAll(ad, w);
      const l = logits(lm);
      expect(same(l, m.logits), p.label).toBe(true);
      expect(p.task).toBe(l[0]);
    }
    // The candidates differ from each other (the measurements are real).
    expect(new Set(points.map((p) => p.task)).size).toBe(points.length);
  });

  it('puts the weights back on an error and on an abort, leaking no tensors', async () => {
    const ck = randomWeights(ad, 21);
    const original = randomWeights(ad, 22);
    setAll(ad, original);
    const tensors = tf.memory().numTensors;
    let calls = 0;
    const failing = explorePath({
      adapter: ad,
      checkpoints: [{ step: 100, weights: ck }],
      numLayers: LAYERS,
      measure: async () => {
        if (++calls === 3) throw new Error('probe failed');
        return { task: 0, forgetPct: null };
      },
    });
    await expect(failing).rejects.toThrow('probe failed');
    expect(tensorsOf(ad)).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);

    const ctl = new AbortController();
    calls = 0;
    const aborted = explorePath({
      adapter: ad,
      checkpoints: [{ step: 100, weights: ck }],
      alphas: [0.5, 1],
      numLayers: LAYERS,
      signal: ctl.signal,
      measure: async () => {
        if (++calls === 2) ctl.abort();
        return { task: calls, forgetPct: 0 };
      },
    });
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect(calls).toBe(2);
    expect(tensorsOf(ad)).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);

    // A checkpoint missing a module is refused before anything is measured; the adapter is unchanged.
    calls = 0;
    const partial = new Map([...ck].slice(1));
    await expect(explorePath({ adapter: ad, checkpoints: [{ step: 100, weights: partial }], numLayers: LAYERS, measure: async () => ({ task: ++calls, forgetPct: 0 }) })).rejects.toThrow(/no weights for/);
    expect(calls).toBe(0);
    expect(tensorsOf(ad)).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});

describe('path-wise rewinding of an OFT adapter on the bundled tabtune-tiny', () => {
  let model: LanguageModel;
  let ad: OftAdapter;
  let layers: number;
  beforeAll(async () => {
    await setupBackend('cpu');
    model = await loadModel(directorySource(TINY_DIR));
    layers = model.info.layers;
  }, 60_000);
  afterAll(() => model?.dispose());
  beforeEach(() => {
    ad = new OftAdapter(model.lm, { oft_block_size: 16, module_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'], coft: false, eps: 6e-5 });
  });
  afterEach(() => ad.dispose());

  it('scale 0 is the base model exactly; scaling Q by alpha is the adapter at strength alpha', () => {
    ad.enabled = false;
    const baseLogits = logits(model.lm);
    ad.enabled = true;
    const w = randomWeights(ad, 31);
    expect([...w.keys()].every((n) => n.endsWith('.oft_R'))).toBe(true);
    setAll(ad, w);
    const tuned = logits(model.lm);
    expect(same(tuned, baseLogits)).toBe(false);
    setAll(ad, scaleUpdate(w, 0));
    expect(same(logits(model.lm), baseLogits)).toBe(true);
    // The path follows the strength: alpha·Q at strength 1 gives the logits of Q at strength alpha.
    for (const alpha of [0.25, 0.5]) {
      setAll(ad, scaleUpdate(w, alpha));
      const scaled = logits(model.lm);
      setAll(ad, w);
      ad.strength = alpha;
      const strength = logits(model.lm);
      ad.strength = 1;
      // Bit for bit: alpha·u rounds to float32 as tf's alpha·Q does (a float32 product, correctly rounded).
      expect(same(scaled, strength), `alpha ${alpha}`).toBe(true);
      expect(same(scaled, tuned)).toBe(false);
    }
  });

  it('explores an OFT adapter, puts it back, and applyRecipe rebuilds what was measured bit for bit', async () => {
    const ck2 = randomWeights(ad, 41);
    const ck6 = randomWeights(ad, 42);
    const original = randomWeights(ad, 43);
    setAll(ad, original);
    ad.strength = 0.6;
    ad.enabled = false;
    const baseLogits = logits(model.lm);
    const tensors = tf.memory().numTensors;
    const seen = new Map<string, { weights: AdapterTensors; logits: Float32Array }>();
    const points = await explorePath({
      adapter: ad,
      checkpoints: [
        { step: 6, weights: ck6 },
        { step: 2, weights: ck2 },
      ],
      numLayers: layers,
      measure: async (recipe) => {
        expect(ad.strength).toBe(1);
        expect(ad.enabled).toBe(true);
        const l = logits(model.lm);
        seen.set(JSON.stringify(recipe), { weights: tensorsOf(ad), logits: l });
        return { task: l[0]!, forgetPct: l[1]! };
      },
    });
    expect(points.map((p) => p.id)).toEqual([
      'base',
      'step-2-x0.25',
      'step-2-x0.5',
      'step-2-x0.75',
      'step-2-x1',
      'step-2-first-half-base',
      'step-2-last-half-base',
      'step-6-x0.25',
      'step-6-x0.5',
      'step-6-x0.75',
      'step-6-x1',
      'step-6-first-half-base',
      'step-6-first-half-step-2',
      'step-6-last-half-base',
      'step-6-last-half-step-2',
    ]);
    // Put back: tensors, strength, switch; no tensor left behind.
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tensorsOf(ad)).toEqual(original);
    expect(ad.strength).toBe(0.6);
    expect(ad.enabled).toBe(false);

    const measured = (i: number) => seen.get(JSON.stringify(points[i]!.recipe))!;
    expect(same(measured(0).logits, baseLogits)).toBe(true);
    expect(measured(4).weights).toEqual(ck2);
    for (const [name, v] of measured(11).weights) expect(v).toEqual(layerOf(name)! < layers / 2 ? new Float32Array(v.length) : ck6.get(name));
    for (const [name, v] of measured(14).weights) expect(v).toEqual((layerOf(name)! >= layers / 2 ? ck2 : ck6).get(name));
    for (const [name, v] of measured(8).weights) expect(v).toEqual(ck6.get(name)!.map((x) => x * 0.5));
    const byStep = new Map([
      [2, ck2],
      [6, ck6],
    ]);
    ad.strength = 1;
    ad.enabled = true;
    for (const [i, p] of points.entries()) {
      const w = applyRecipe(byStep, p.recipe!, layers);
      expect(w).toEqual(measured(i).weights);
      setAll(ad, w);
      const l = logits(model.lm);
      expect(same(l, measured(i).logits), p.label).toBe(true);
      expect(p.task).toBe(l[0]);
    }
    expect(new Set(points.map((p) => p.task)).size).toBe(points.length);
    setAll(ad, original);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('puts an OFT adapter back on an error and refuses a checkpoint that is not its own', async () => {
    const original = randomWeights(ad, 51);
    setAll(ad, original);
    const tensors = tf.memory().numTensors;
    let calls = 0;
    const failing = explorePath({
      adapter: ad,
      checkpoints: [{ step: 3, weights: randomWeights(ad, 52) }],
      numLayers: layers,
      measure: async () => {
        if (++calls === 2) throw new Error('probe failed');
        return { task: 0, forgetPct: null };
      },
    });
    await expect(failing).rejects.toThrow('probe failed');
    expect(tensorsOf(ad)).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);
    // A LoRA checkpoint is not this adapter's: refused before anything is measured.
    calls = 0;
    const loraCk = new Map([...original.keys()].flatMap((n) => [[n.replace(/oft_R$/, 'lora_A'), Float32Array.of(1)], [n.replace(/oft_R$/, 'lora_B'), Float32Array.of(1)]] as const));
    await expect(explorePath({ adapter: ad, checkpoints: [{ step: 3, weights: loraCk }], numLayers: layers, measure: async () => ({ task: ++calls, forgetPct: 0 }) })).rejects.toThrow(/no weights for .*oft_R/);
    const short = new Map([...original].map(([n, v]) => [n, v.subarray(1)]));
    await expect(explorePath({ adapter: ad, checkpoints: [{ step: 3, weights: short }], numLayers: layers, measure: async () => ({ task: ++calls, forgetPct: 0 }) })).rejects.toThrow(/holds \d+ values/);
    expect(calls).toBe(0);
    expect(tensorsOf(ad)).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
