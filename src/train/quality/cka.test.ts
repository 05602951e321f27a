import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../io/load-model';
import { setupBackend } from '../../model/backend';
import type { CausalLM } from '../../model/causal-lm';
import type { LanguageModel } from '../../model/load';
import { directorySource } from '../../node/fs-source';
import { BUNDLED_BOS, TINY_DIR } from '../../testing/models';
import { tinyModel } from '../../testing/tiny-model';
import { seededRandom } from '../../util/random';
import { defaultTrainConfig } from '../config';
import { createTrainer, disposeTrainer } from '../job';
import type { Example } from '../loop';
import { baseLayerStates, ckaMetric, layerStates, linearCka } from './cka';
import { sampleProbeSet, type ProbeSet } from './probe';

function randomMatrix(n: number, d: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n * d }, () => rand() * 2 - 1);
}

/** A random d x d orthogonal matrix (Gram-Schmidt on random columns), row-major. */
function orthogonal(d: number, seed: number): Float64Array {
  const rand = seededRandom(seed);
  const cols: number[][] = [];
  for (let j = 0; j < d; j++) {
    const v = Array.from({ length: d }, () => rand() * 2 - 1);
    for (const u of cols) {
      const dot = v.reduce((a, x, i) => a + x * u[i]!, 0);
      for (let i = 0; i < d; i++) v[i]! -= dot * u[i]!;
    }
    const norm = Math.hypot(...v);
    cols.push(v.map((x) => x / norm));
  }
  const Q = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) Q[i * d + j] = cols[j]![i]!;
  return Q;
}

/** X [n, d] times Q [d, d] (and a scale). */
function times(X: Float32Array, Q: Float64Array, n: number, d: number, scale = 1): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += X[i * d + k]! * Q[k * d + j]!;
      out[i * d + j] = s * scale;
    }
  return out;
}

describe('linear CKA', () => {
  it('matches a hand computation', () => {
    // X = [[1,0],[0,1],[-1,-1]], Y = [[1],[1],[-2]] (both already centred): X^T X = [[2,1],[1,2]] (norm sqrt 10),
    // Y^T Y = 6, Y^T X = [3, 3] (squared norm 18): CKA = 18 / (6 sqrt 10) = 3 / sqrt 10.
    const X = Float32Array.from([1, 0, 0, 1, -1, -1]);
    const Y = Float32Array.from([1, 1, -2]);
    expect(linearCka(X, Y, 3, 2, 1)).toBeCloseTo(3 / Math.sqrt(10), 12);
    expect(linearCka(Y, X, 3, 1, 2)).toBeCloseTo(3 / Math.sqrt(10), 12);
    // Columns are centred first: offsets change nothing.
    const Xo = Float32Array.from([1 + 5, 0 - 2, 0 + 5, 1 - 2, -1 + 5, -1 - 2]);
    expect(linearCka(Xo, Y, 3, 2, 1)).toBeCloseTo(3 / Math.sqrt(10), 6);
    // One feature each: CKA is the squared correlation ([-1,0,1] vs [0,-1,1]: r = 1/2).
    expect(linearCka(Float32Array.from([1, 2, 3]), Float32Array.from([1, 0, 2]), 3, 1, 1)).toBeCloseTo(0.25, 12);
  });

  it('is 1 for the same representation, and invariant to orthogonal rotation and isotropic scaling', () => {
    const n = 50;
    const d = 8;
    const X = randomMatrix(n, d, 1);
    expect(linearCka(X, X, n, d, d)).toBeCloseTo(1, 10);
    const Y = randomMatrix(n, 5, 2);
    const base = linearCka(X, Y, n, d, 5);
    const Q = orthogonal(d, 3);
    expect(linearCka(times(X, Q, n, d), X, n, d, d)).toBeCloseTo(1, 6);
    expect(linearCka(times(X, Q, n, d, 7.5), Y, n, d, 5)).toBeCloseTo(base, 6);
    expect(linearCka(times(X, Q, n, d, 0.01), Y, n, d, 5)).toBeCloseTo(base, 6);
    // ... but not to a non-isotropic scaling.
    const S = new Float64Array(d * d);
    for (let i = 0; i < d; i++) S[i * d + i] = i === 0 ? 10 : 1;
    expect(Math.abs(linearCka(times(X, S, n, d), Y, n, d, 5) - base)).toBeGreaterThan(1e-3);
    // Unrelated representations are far from 1, and every value lies in [0, 1].
    expect(base).toBeGreaterThanOrEqual(0);
    expect(base).toBeLessThan(0.5);
    expect(() => linearCka(X, Y, n, d, 4)).toThrow();
    expect(linearCka(new Float32Array(3 * 2).fill(1), Y.subarray(0, 3), 3, 2, 1)).toBeNaN();
  });
});

/** Llama: logits = rmsnorm(x) E^T; GPT-2: logits = layernorm(x) wte^T (tied heads), in float64. */
function headOf(lm: CausalLM, x: Float32Array, rows: number): Float64Array {
  const w = lm.exportWeights();
  const get = (suffix: string) => [...w.entries()].find(([k]) => k.endsWith(suffix))![1].data as Float32Array;
  const gpt2 = lm.config.arch === 'gpt2';
  const E = get(gpt2 ? 'wte.weight' : 'embed_tokens.weight');
  const g = get(gpt2 ? 'ln_f.weight' : 'model.norm.weight');
  const bias = gpt2 ? get('ln_f.bias') : null;
  const D = g.length;
  const V = E.length / D;
  const out = new Float64Array(rows * V);
  for (let r = 0; r < rows; r++) {
    const v = Array.from(x.subarray(r * D, (r + 1) * D));
    const mean = gpt2 ? v.reduce((a, b) => a + b, 0) / D : 0;
    const c = v.map((a) => a - mean);
    const h = c.map((a, i) => (a / Math.sqrt(c.reduce((s, b) => s + b * b, 0) / D + 1e-5)) * g[i]! + (bias?.[i] ?? 0));
    for (let t = 0; t < V; t++) out[r * V + t] = h.reduce((s, a, i) => s + a * E[t * D + i]!, 0);
  }
  return out;
}

describe.each(['llama', 'gpt2'] as const)('forward collects the residual stream (%s)', (arch) => {
  let lm: CausalLM;
  beforeAll(async () => {
    await setupBackend('cpu');
    lm = tinyModel({ arch, layers: 3, seed: 5 });
  });
  afterAll(() => lm?.dispose());

  it('one [B, T, D] state per layer; the logits do not change; the last state is what the final norm reads', () => {
    const ids = [
      [1, 5, 9, 12, 7],
      [1, 30, 2, 0, 0],
    ];
    const mask = [
      [1, 1, 1, 1, 1],
      [1, 1, 1, 0, 0],
    ];
    const plain = lm.forward(ids, { mask });
    const n0 = tf.memory().numTensors;
    const hidden: tf.Tensor[] = [];
    const logits = lm.forward(ids, { mask, hidden });
    expect(tf.memory().numTensors).toBe(n0 + 1 + 3);
    expect(hidden.map((h) => h.shape)).toEqual([[2, 5, 16], [2, 5, 16], [2, 5, 16]]);
    expect(Array.from(logits.dataSync())).toEqual(Array.from(plain.dataSync()));
    const want = headOf(lm, hidden[2]!.dataSync() as Float32Array, 10);
    const got = logits.dataSync();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
    // The states differ layer to layer (each block adds to the stream).
    expect(Array.from(hidden[1]!.dataSync())).not.toEqual(Array.from(hidden[2]!.dataSync()));
    tf.dispose([plain, logits, ...hidden]);
  });

  it('with a KV cache and lastOnly: full-length states, and the cache stays right', () => {
    const full = lm.forward([[1, 5, 9, 12, 7, 22]]);
    const cache = lm.createCache(1);
    const hidden: tf.Tensor[] = [];
    const first = lm.forward([[1, 5, 9, 12]], { cache, lastOnly: true, hidden });
    expect(first.shape).toEqual([1, 1, 40]);
    expect(hidden.map((h) => h.shape)).toEqual([[1, 4, 16], [1, 4, 16], [1, 4, 16]]);
    const next = lm.forward([[7, 22]], { cache, lastOnly: true });
    const want = tf.slice(full, [0, 5, 0], [1, 1, -1]);
    const a = next.dataSync();
    const b = want.dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 4);
    tf.dispose([full, first, next, want, ...hidden]);
    cache.dispose();
  });
});

describe('layer states and the CKA metric on tabtune-tiny', () => {
  let model: LanguageModel;
  let probe: ProbeSet;
  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(TINY_DIR));
    probe = await sampleProbeSet(model, null, { n: 10, tokens: 12, seed: 11 });
    // Texts of different lengths, so the batches are padded.
    probe.samples[3] = { ...probe.samples[3]!, ids: probe.samples[3]!.ids.slice(0, -5) };
    probe.samples[8] = { ...probe.samples[8]!, ids: probe.samples[8]!.ids.slice(0, -3) };
  });
  afterAll(() => model?.dispose());

  it('are each sample\'s own states at its scored positions, padding never read', async () => {
    const states = await layerStates(model.lm, probe);
    const rows = probe.samples.reduce((a, s) => a + s.ids.length - s.promptLen, 0);
    expect(states.length).toBe(4);
    for (const s of states) expect(s.length).toBe(rows * 64);
    const want: number[][] = [[], [], [], []];
    for (const s of probe.samples) {
      const hidden: tf.Tensor[] = [];
      tf.dispose(model.lm.forward([s.ids.slice(0, -1)], { hidden }));
      for (const [l, h] of hidden.entries()) want[l]!.push(...Array.from(h.dataSync()).slice((s.promptLen - 1) * 64));
      tf.dispose(hidden);
    }
    for (let l = 0; l < 4; l++) {
      expect(want[l]!.length).toBe(rows * 64);
      let worst = 0;
      for (let i = 0; i < want[l]!.length; i++) worst = Math.max(worst, Math.abs(states[l]![i]! - want[l]![i]!));
      expect(worst).toBeLessThan(1e-3);
    }
    // maxTokens keeps the first rows.
    const few = await layerStates(model.lm, probe, 20);
    expect(few[2]).toEqual(states[2]!.subarray(0, 20 * 64));
  });

  it('is 1 at B = 0, falls after high-lr training on unrelated data, and leaks no tensors', async () => {
    const bos = BUNDLED_BOS;
    const train: Example[] = Array.from({ length: 8 }, () => {
      const ids = [bos, ...new Array<number>(24).fill(900)];
      return { input: ids.slice(0, -1), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
    });
    const trainer = createTrainer(model, train, [], defaultTrainConfig('llama', { lr: 3e-2, warmupSteps: 0, steps: 8, batchSize: 4, schedule: 'constant' }));
    try {
      // Base states with a (so far inert) adapter attached: computed with it switched off, and it stays on.
      const base = await baseLayerStates(model.lm, trainer.adapter, probe);
      expect(trainer.adapter!.enabled).toBe(true);
      const metric = ckaMetric(model.lm, probe, base);
      expect(metric.name).toBe('cka');
      const before = await metric.measure(trainer);
      expect(before.values.cka_min).toBeCloseTo(1, 6);
      expect(before.values.cka_mean).toBeCloseTo(1, 6);
      expect((before.details!.layers as number[]).length).toBe(4);
      for (let i = 0; i < 8; i++) trainer.trainStep();
      const n0 = tf.memory().numTensors;
      const after = await metric.measure(trainer);
      await metric.measure(trainer);
      expect(tf.memory().numTensors).toBe(n0);
      const layers = after.details!.layers as number[];
      expect(after.values.cka_min).toBe(Math.min(...layers));
      expect(after.values.cka_mean).toBeCloseTo(layers.reduce((a, b) => a + b, 0) / 4, 12);
      expect(after.values.cka_min).toBeLessThan(0.99);
      for (const c of layers) expect(c).toBeGreaterThan(0);
      // The base states themselves are the adapter-off ones.
      trainer.adapter!.enabled = false;
      expect(await layerStates(model.lm, probe)).toEqual(base);
      trainer.adapter!.enabled = true;
      console.log(`[cka] per layer after 8 steps at lr 3e-2: ${layers.map((c) => c.toFixed(3)).join(' ')}`);
    } finally {
      disposeTrainer(trainer);
    }
  });

  it('refuses base states that do not fit the model', () => {
    expect(() => ckaMetric(model.lm, probe, [])).toThrow();
    expect(() => ckaMetric(model.lm, probe, [new Float32Array(65)])).toThrow();
  });
});
