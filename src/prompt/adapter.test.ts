import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { buildCausalLM } from '../model/load';
import { argmax, generateIds } from '../model/generate';
import type { CausalLM } from '../model/causal-lm';
import type { WeightMap } from '../model/types';
import { tinyConfig, tinyModel, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { maskedCrossEntropy } from '../train/loss';
import { Trainer, type Example } from '../train/loop';
import { DEFAULT_TRAIN, type PromptTuningConfig, type TrainConfig } from '../train/config';
import { seededRandom } from '../util/random';
import { fitInitIds, PromptTuningAdapter, PromptTuningError } from './adapter';

const N = 3;
const cfg = (over: Partial<PromptTuningConfig> = {}): PromptTuningConfig => ({ num_virtual_tokens: N, prompt_tuning_init: 'RANDOM', prompt_tuning_init_text: '', ...over });

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const read = (t: tf.Tensor): Float32Array => {
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
};

/**
 * The reference: the same model with its vocabulary grown by N tokens whose embedding rows are the prompt
 * vectors (tied head, so the first V logits are unchanged). Feeding those N ids before the real ones is
 * "concatenating the embeddings by hand", through the model's own unmodified forward.
 */
function extendedModel(spec: TinySpec, prompt: Float32Array): CausalLM {
  const c = tinyConfig(spec);
  const w = tinyWeights(spec);
  const key = spec.arch === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
  const e = w.get(key)!;
  const [V, D] = e.shape as [number, number];
  const data = new Float32Array((V + N) * D);
  data.set(e.data);
  data.set(prompt, V * D);
  const w2: WeightMap = new Map(w);
  w2.set(key, { shape: [V + N, D], data, dtype: 'F32' });
  return buildCausalLM({ config: { ...c, vocab_size: V + N }, weights: w2 });
}

/** Logits [B, T, V] of the extended model fed [V..V+N-1, ...row], virtual positions dropped, first V columns. */
function referenceLogits(ext: CausalLM, ids: number[][], V: number, mask?: number[][]): Float32Array {
  return read(
    tf.tidy(() => {
      const virt = Array.from({ length: N }, (_, i) => V + i);
      const full = ext.forward(
        ids.map((r) => [...virt, ...r]),
        mask ? { mask: mask.map((m) => [...virt.map(() => 1), ...m]) } : {},
      );
      return tf.slice(full, [0, N, 0], [-1, -1, V]);
    }),
  );
}

const SPECS: TinySpec[] = [
  { arch: 'llama', vocab: 40, hidden: 16, layers: 2, heads: 4, kvHeads: 2, tied: true, seed: 3 },
  { arch: 'gpt2', vocab: 40, hidden: 16, layers: 2, heads: 2, seed: 5 },
];

describe('prompt tuning adapter', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  for (const spec of SPECS) {
    it(`${spec.arch}: forward with virtual tokens equals the model fed the prompt vectors as tokens`, () => {
      const lm = tinyModel(spec);
      const ad = new PromptTuningAdapter(lm, cfg(), { seed: 7 });
      const ext = extendedModel(spec, ad.getWeights());
      const ids = [
        [1, 5, 9, 3, 7, 2],
        [1, 8, 6, 6, 12, 30],
      ];
      const got = lm.forward(ids);
      expect(got.shape).toEqual([2, 6, 40]);
      const ref = referenceLogits(ext, ids, 40);
      expect(maxAbs(read(got), ref)).toBeLessThan(2e-5);
      // lastOnly: the last position of the same thing
      const last = read(lm.forward(ids, { lastOnly: true }));
      for (let b = 0; b < 2; b++) expect(maxAbs(last.subarray(b * 40, (b + 1) * 40), ref.subarray((b * 6 + 5) * 40, (b * 6 + 6) * 40))).toBeLessThan(2e-5);
      // hidden states keep the caller's T
      const hidden: tf.Tensor[] = [];
      lm.forward(ids, { hidden }).dispose();
      expect(hidden.map((h) => h.shape)).toEqual([
        [2, 6, 16],
        [2, 6, 16],
      ]);
      tf.dispose(hidden);
      ad.dispose();
      ext.dispose();
      lm.dispose();
    });

    it(`${spec.arch}: right padding: each row's real positions as if alone`, () => {
      const lm = tinyModel(spec);
      const ad = new PromptTuningAdapter(lm, cfg(), { seed: 9 });
      const rows = [
        [1, 5, 9, 3, 7, 2],
        [1, 8, 6],
      ];
      const ids = rows.map((r) => [...r, ...new Array<number>(6 - r.length).fill(0)]);
      const mask = rows.map((r) => [...r.map(() => 1), ...new Array<number>(6 - r.length).fill(0)]);
      const batched = read(lm.forward(ids, { mask }));
      const ext = extendedModel(spec, ad.getWeights());
      expect(maxAbs(batched, referenceLogits(ext, ids, 40, mask))).toBeLessThan(2e-5);
      rows.forEach((r, b) => {
        const alone = read(lm.forward([r]));
        expect(maxAbs(batched.subarray(b * 6 * 40, (b * 6 + r.length) * 40), alone)).toBeLessThan(2e-5);
      });
      ad.dispose();
      ext.dispose();
      lm.dispose();
    });

    it(`${spec.arch}: greedy KV-cached generation equals uncached decoding with the prompt on (left-padded batch)`, async () => {
      const lm = tinyModel(spec);
      const ad = new PromptTuningAdapter(lm, cfg({ prompt_tuning_init: 'SAMPLE_VOCAB' }), { seed: 2 });
      const prompts = [
        [1, 5, 9, 3],
        [1, 8],
      ];
      const res = await generateIds(lm, prompts, [], { maxNewTokens: 8, temperature: 0 }, { newStream: () => ({ push: () => '', flush: () => '' }) });
      for (let b = 0; b < prompts.length; b++) {
        const seq = [...prompts[b]!];
        for (let k = 0; k < 8; k++) {
          const logits = read(lm.forward([seq], { lastOnly: true }));
          seq.push(argmax(logits));
        }
        expect(res[b]!.tokens).toEqual(seq.slice(prompts[b]!.length));
      }
      // the prompt changes what is generated (else the test above proves nothing about the prefix)
      ad.enabled = false;
      const base = await generateIds(lm, prompts, [], { maxNewTokens: 8, temperature: 0 }, { newStream: () => ({ push: () => '', flush: () => '' }) });
      expect(base.map((r) => r.tokens)).not.toEqual(res.map((r) => r.tokens));
      ad.dispose();
      lm.dispose();
    });
  }

  it('off (enabled false, strength 0, disposed) is exactly the base model', () => {
    const lm = tinyModel(SPECS[0]!);
    const ids = [[1, 5, 9, 3, 7, 2]];
    const base = read(lm.forward(ids));
    const ad = new PromptTuningAdapter(lm, cfg(), { seed: 1 });
    const on = read(lm.forward(ids));
    expect(maxAbs(on, base)).toBeGreaterThan(1e-3);
    ad.enabled = false;
    expect(read(lm.forward(ids))).toEqual(base);
    ad.enabled = true;
    ad.strength = 0;
    expect(read(lm.forward(ids))).toEqual(base);
    ad.strength = 0.5;
    expect(read(lm.forward(ids))).toEqual(on);
    ad.dispose();
    expect(lm.prefix).toBeNull();
    expect(read(lm.forward(ids))).toEqual(base);
    lm.dispose();
  });

  it('counts the virtual tokens against the context', () => {
    const lm = tinyModel({ ...SPECS[0]!, ctx: 8 });
    const ad = new PromptTuningAdapter(lm, cfg(), { seed: 1 });
    expect(() => lm.forward([[1, 2, 3, 4, 5, 6]])).toThrow(/9 tokens \(3 of them virtual/);
    lm.forward([[1, 2, 3, 4, 5]]).dispose();
    ad.dispose();
    lm.dispose();
  });

  it('initialises as PEFT: TEXT from the text ids cut or repeated, SAMPLE_VOCAB from vocabulary rows, RANDOM at the embeddings scale', () => {
    expect(fitInitIds([4, 5], 5)).toEqual([4, 5, 4, 5, 4]);
    expect(fitInitIds([4, 5, 6, 7], 3)).toEqual([4, 5, 6]);
    expect(() => fitInitIds([], 3)).toThrow(PromptTuningError);
    const spec = { ...SPECS[0]!, hidden: 32 };
    const lm = tinyModel(spec);
    const table = tinyWeights(spec).get('model.embed_tokens.weight')!.data;
    const D = 32;
    const rowOf = (id: number) => table.subarray(id * D, (id + 1) * D);
    let ad = new PromptTuningAdapter(lm, cfg({ prompt_tuning_init: 'TEXT', num_virtual_tokens: 5 }), { initIds: [7, 11] });
    const text = ad.getWeights();
    [7, 11, 7, 11, 7].forEach((id, i) => expect(Array.from(text.subarray(i * D, (i + 1) * D))).toEqual(Array.from(rowOf(id))));
    ad.dispose();
    expect(() => new PromptTuningAdapter(lm, cfg({ prompt_tuning_init: 'TEXT' }))).toThrow(/token ids/);
    ad = new PromptTuningAdapter(lm, cfg({ prompt_tuning_init: 'SAMPLE_VOCAB', num_virtual_tokens: 4 }), { seed: 3 });
    const sv = ad.getWeights();
    for (let i = 0; i < 4; i++) {
      const row = Array.from(sv.subarray(i * D, (i + 1) * D));
      expect(Array.from({ length: 40 }, (_, id) => id).some((id) => Array.from(rowOf(id)).every((v, j) => v === row[j]))).toBe(true);
    }
    ad.dispose();
    ad = new PromptTuningAdapter(lm, cfg({ num_virtual_tokens: 64 }), { seed: 3 });
    const r = ad.getWeights();
    const rms = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0) / a.length);
    expect(rms(r) / rms(table)).toBeGreaterThan(0.85);
    expect(rms(r) / rms(table)).toBeLessThan(1.15);
    const again = new Float32Array(r);
    ad.dispose();
    ad = new PromptTuningAdapter(lm, cfg({ num_virtual_tokens: 64 }), { seed: 3 });
    expect(ad.getWeights()).toEqual(again); // seeded
    expect(() => new PromptTuningAdapter(lm, cfg())).toThrow(/already has virtual tokens/);
    ad.dispose();
    lm.dispose();
  });

  for (const spec of SPECS) {
    it(`${spec.arch}: gradient w.r.t. prompt_embeddings matches central finite differences`, () => {
      const lm = tinyModel(spec);
      const ad = new PromptTuningAdapter(lm, cfg(), { seed: 4 });
      const ids = [
        [1, 5, 9, 3, 7, 2, 11],
        [1, 8, 6, 12, 0, 0, 0],
      ];
      const mask = [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0],
      ];
      const target = ids.map((r) => [...r.slice(1), 0]);
      const weight = mask.map((m) => m.map((v, t) => (t < m.length - 1 && m[t + 1] ? v : 0)));
      const loss = () => maskedCrossEntropy(lm.forward(ids, { mask }), target, weight);
      const { value, grads } = tf.variableGrads(loss, [ad.embedding]);
      value.dispose();
      const g = read(grads[ad.embedding.name]!);
      const p0 = ad.getWeights().slice();
      const rand = seededRandom(11);
      const at = (p: Float32Array) => {
        ad.setWeights(p);
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      const eps = 3e-3; // float32: the truncation error of larger steps and the rounding of smaller ones both stay under 0.3% here
      // directional derivatives along random directions (every entry at once), and a few single entries
      const dirs: Float32Array[] = [0, 1, 2].map(() => Float32Array.from(p0, () => rand() * 2 - 1));
      for (const k of [0, 17, 40]) {
        const d = new Float32Array(p0.length);
        d[k] = 1;
        dirs.push(d);
      }
      for (const d of dirs) {
        const plus = at(Float32Array.from(p0, (v, i) => v + eps * d[i]!));
        const minus = at(Float32Array.from(p0, (v, i) => v - eps * d[i]!));
        const fd = (plus - minus) / (2 * eps);
        const an = g.reduce((s, v, i) => s + v * d[i]!, 0);
        expect(Math.abs(an)).toBeGreaterThan(1e-4);
        expect(Math.abs(fd - an) / Math.abs(an)).toBeLessThan(1e-2);
      }
      ad.dispose();
      lm.dispose();
    });
  }
});

/** A toy task: after "1 x y 3" answer the fixed label 7 (the prompt learns it). */
function labelTask(n: number, seed: number): Example[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => {
    const xs = [4 + Math.floor(rand() * 30), 4 + Math.floor(rand() * 30)];
    const seq = [1, ...xs, 3, 7, 2];
    return { input: seq.slice(0, -1), target: seq.slice(1), weight: seq.slice(1).map((_, t) => (t >= 3 ? 1 : 0)) };
  });
}

function promptTrainConfig(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...DEFAULT_TRAIN, mode: 'prompt', prompt: cfg({ num_virtual_tokens: 4 }), lr: 0.05, warmupSteps: 1, batchSize: 4, gradAccum: 1, steps: 12, evalEvery: 0, saveEvery: 0, ...over };
}

describe('prompt tuning in the Trainer', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('trains only the prompt (loss falls), tensors flat across steps, checkpoint/restore reproduces the run', () => {
    const spec = SPECS[0]!;
    const c = promptTrainConfig();
    const data = labelTask(16, 1);
    const lmA = tinyModel(spec);
    const adA = new PromptTuningAdapter(lmA, c.prompt, { seed: c.seed });
    const a = new Trainer(lmA, data, data.slice(0, 4), c, adA);
    expect(a.paramNames).toEqual(['prompt_embeddings']);
    const before = a.evaluate().valLoss;
    a.trainStep();
    a.trainStep();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) a.trainStep();
    expect(tf.memory().numTensors).toBe(tensors);
    const ck = a.checkpoint();
    expect(ck.tensors.prompt_embeddings!.shape).toEqual([4, 16]);
    const restA: number[] = [];
    for (let i = 0; i < 6; i++) restA.push(a.trainStep().loss);
    expect(a.evaluate().valLoss).toBeLessThan(before - 0.3);

    const lmB = tinyModel(spec);
    const adB = new PromptTuningAdapter(lmB, c.prompt, { seed: 99 }); // other init: restore must overwrite it
    const b = new Trainer(lmB, data, data.slice(0, 4), c, adB);
    b.restore(ck);
    const restB: number[] = [];
    for (let i = 0; i < 6; i++) restB.push(b.trainStep().loss);
    expect(restB).toEqual(restA);
    expect(adB.getWeights()).toEqual(adA.getWeights());
    for (const t of [a, b]) {
      t.dispose();
      t.adapter!.dispose();
      t.lm.dispose();
    }
  });
});
