import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lora/adapter';
import type { CausalLM } from '../../model/causal-lm';
import { setupBackend } from '../../model/backend';
import { tinyModel } from '../../testing/tiny-model';
import { seededRandom } from '../../util/random';
import type { TradeoffRecipe } from './decisions';
import { applyRecipe, explorePath, inHalf, layerOf, rewindLayers, scaleUpdate, type LoraWeights } from './path';

const ids = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const LAYERS = 4;

/** Random A and B for every module of the adapter (B non-zero, so every update matters). */
function randomWeights(ad: LoraAdapter, seed: number): LoraWeights {
  const rand = seededRandom(seed);
  const w: LoraWeights = new Map();
  for (const [name, m] of ad.modules) w.set(name, { A: Float32Array.from({ length: m.A.size }, () => rand() - 0.5), B: Float32Array.from({ length: m.B.size }, () => (rand() - 0.5) * 0.4) });
  return w;
}

function copy(w: LoraWeights): LoraWeights {
  return new Map([...w].map(([k, v]) => [k, { A: v.A.slice(), B: v.B.slice() }]));
}

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
    const w: LoraWeights = new Map([
      ['transformer.h.0.attn.c_attn', { A: Float32Array.of(1, 2), B: Float32Array.of(3, 4) }],
      ['transformer.h.1.attn.c_attn', { A: Float32Array.of(5, 6), B: Float32Array.of(7, 8) }],
      ['lm_head', { A: Float32Array.of(9), B: Float32Array.of(10) }],
    ]);
    const to: LoraWeights = new Map([...w.keys()].map((k) => [k, { A: Float32Array.of(-1, -1), B: Float32Array.of(-2, -2) }]));
    const before = copy(w);
    const s = scaleUpdate(w, 0.5);
    expect(s.get('transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(5, 6), B: Float32Array.of(3.5, 4) });
    expect(s.get('transformer.h.0.attn.c_attn')!.A).not.toBe(w.get('transformer.h.0.attn.c_attn')!.A);
    const last = rewindLayers(w, to, 'last-half', 2);
    expect(last.get('transformer.h.0.attn.c_attn')).toEqual(w.get('transformer.h.0.attn.c_attn'));
    expect(last.get('transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(-1, -1), B: Float32Array.of(-2, -2) });
    expect(last.get('lm_head')).toEqual(w.get('lm_head'));
    const first = rewindLayers(w, null, 'first-half', 2);
    expect(first.get('transformer.h.0.attn.c_attn')).toEqual({ A: Float32Array.of(1, 2), B: Float32Array.of(0, 0) });
    expect(first.get('transformer.h.1.attn.c_attn')).toEqual(w.get('transformer.h.1.attn.c_attn'));
    expect(w).toEqual(before);
    expect(() => rewindLayers(w, new Map(), 'first-half', 2)).toThrow(/no weights for transformer.h.0/);
    // applyRecipe: a rewind, then the scale; every layer at once; unknown steps say so.
    const cks = new Map([
      [800, w],
      [300, to],
    ]);
    expect(applyRecipe(cks, { fromStep: 800, alpha: 0.5, layers: 'last-half', rewindTo: 300 }, 2).get('transformer.h.1.attn.c_attn')).toEqual({ A: Float32Array.of(-1, -1), B: Float32Array.of(-1, -1) });
    expect(applyRecipe(cks, { fromStep: 800, alpha: 1, layers: 'all' }, 2).get('lm_head')).toEqual({ A: Float32Array.of(9), B: Float32Array.of(0) });
    expect(() => applyRecipe(cks, { fromStep: 500, alpha: 1 }, 2)).toThrow(/no checkpoint at step 500/);
    expect(w).toEqual(before);
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
    ad.setWeights(w);
    const full = new Map([...ad.modules.keys()].map((n) => [n, ad.delta(n)]));
    for (const alpha of [0, 0.25, 0.5, 0.75, 1]) {
      ad.setWeights(scaleUpdate(w, alpha));
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
    ad.setWeights(original);
    ad.strength = 0.3;
    ad.enabled = false;
    const baseLogits = logits(lm);
    const tensors = tf.memory().numTensors;
    const seen = new Map<string, { weights: LoraWeights; logits: Float32Array }>();
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
        seen.set(JSON.stringify(recipe), { weights: ad.getWeights(), logits: l });
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
    expect(ad.getWeights()).toEqual(original);
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
      expect(v).toEqual(layerOf(name)! < LAYERS / 2 ? { A: from.A, B: new Float32Array(from.B.length) } : from);
    }
    for (const [name, v] of measured(8).weights) expect(v.B).toEqual(ck800.get(name)!.B.map((x) => x * 0.5));
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
      ad.setWeights(w);
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
    ad.setWeights(original);
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
    expect(ad.getWeights()).toEqual(original);
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
    expect(ad.getWeights()).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);

    // A checkpoint missing a module is refused before anything is measured; the adapter is unchanged.
    calls = 0;
    const partial = new Map([...ck].slice(1));
    await expect(explorePath({ adapter: ad, checkpoints: [{ step: 100, weights: partial }], numLayers: LAYERS, measure: async () => ({ task: ++calls, forgetPct: 0 }) })).rejects.toThrow(/no weights for/);
    expect(calls).toBe(0);
    expect(ad.getWeights()).toEqual(original);
    expect(tf.memory().numTensors).toBe(tensors);
  });
});
