import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import { setupBackend } from '../model/backend';
import { seededRandom } from '../util/random';
import { tinyModel, type TinySpec } from '../testing/tiny-model';
import { maskedCrossEntropy } from './loss';
import { collate, Trainer, type Example } from './loop';
import { DEFAULT_TRAIN, type TrainConfig } from './config';
import { dpoObjective, equalSpans, pairLogProbs, referenceLogps, sequenceLogProbs, type PreferenceExample } from './dpo';
import { runTraining } from './run-loop';
import { gradDiff, withForwardShapes } from '../testing/forward';

/** Synthetic pairs on a tiny vocabulary: a prompt, then a chosen and a rejected reply (reply tokens weighted). */
function pairs(n: number, seed: number, vocab = 40): PreferenceExample[] {
  const rand = seededRandom(seed);
  const tok = () => 4 + Math.floor(rand() * (vocab - 4));
  const side = (prompt: number[], reply: number[]): Example => {
    const seq = [1, ...prompt, 3, ...reply, 2];
    const P = prompt.length + 1;
    return { input: seq.slice(0, -1), target: seq.slice(1), weight: seq.slice(1).map((_, t) => (t >= P ? 1 : 0)) };
  };
  return Array.from({ length: n }, () => {
    const prompt = Array.from({ length: 2 + Math.floor(rand() * 3) }, tok);
    // Chosen replies use even token ids, rejected ones odd: a property a random model has no preference for.
    const even = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 2 * Math.floor(tok() / 2));
    const odd = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 2 * Math.floor(tok() / 2) + 1);
    return { chosen: side(prompt, even), rejected: side(prompt, odd) };
  });
}

const SPEC: TinySpec = { arch: 'llama', seed: 7, std: 0.3 };
const LORA_ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function cfg(over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...DEFAULT_TRAIN, objective: 'dpo', lora: { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: LORA_ALL }, warmupSteps: 0, batchSize: 4, evalEvery: 5, saveEvery: 5, genEvalExamples: 0, probeSamples: 0, ...over };
}

/** log softmax + gather, the reference for sequenceLogProbs. */
function refLogProbs(logits: tf.Tensor, targets: number[][], weights: number[][]): Float32Array {
  return tf.tidy(() => {
    const [B, T, V] = logits.shape as [number, number, number];
    const lp = tf.logSoftmax(logits).arraySync() as number[][][];
    const out = new Float32Array(B);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) out[b]! += weights[b]![t]! * lp[b]![t]![targets[b]![t]!]!;
    void V;
    return out;
  });
}

beforeAll(async () => {
  await setupBackend('wasm');
});

describe('DPO', () => {
  it('sequence log-probabilities and their gradient equal log-softmax + gather and finite differences', () => {
    const rand = seededRandom(3);
    const [B, T, V] = [3, 5, 11];
    const data = Float32Array.from({ length: B * T * V }, () => (rand() - 0.5) * 4);
    const targets = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * V)));
    const weights = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (t >= b ? 1 : 0)));
    const x = tf.variable(tf.tensor3d(data, [B, T, V]));
    const got = tf.tidy(() => sequenceLogProbs(x, targets, weights).dataSync());
    const want = refLogProbs(x, targets, weights);
    for (let b = 0; b < B; b++) expect(got[b]!).toBeCloseTo(want[b]!, 4);
    // d/dx of a weighted sum of the outputs (each row's dy differs).
    const coef = tf.tensor1d([0.7, -1.3, 2.1]);
    const f = () => tf.sum(tf.mul(sequenceLogProbs(x, targets, weights), coef)) as tf.Scalar;
    const { grads } = tf.variableGrads(f, [x]);
    const g = grads[x.name]!.dataSync();
    let worst = 0;
    for (const j of [0, 17, 60, 101, B * T * V - 1]) {
      const at = (h: number) => {
        const d = data.slice();
        d[j] = d[j]! + h;
        return tf.tidy(() => tf.sum(tf.mul(sequenceLogProbs(tf.tensor3d(d, [B, T, V]), targets, weights), coef)).dataSync()[0]!);
      };
      const fd = (at(1e-2) - at(-1e-2)) / 2e-2;
      worst = Math.max(worst, Math.abs(fd - g[j]!) / Math.max(1e-3, Math.abs(g[j]!)));
    }
    expect(worst).toBeLessThan(2e-3);
    tf.dispose([x, coef, ...Object.values(grads)]);
  });

  it('equalSpans: L positions per row from its first weighed one, moved back at the row end; null when L is every position', () => {
    expect(equalSpans([[0, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]])).toEqual({ ranges: [[1, 6], [1, 6], [0, 5]], L: 5 });
    expect(equalSpans([[0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0]])).toEqual({ ranges: [[2, 4], [5, 7], [0, 2]], L: 2 });
    expect(equalSpans([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1]])).toEqual({ ranges: [[3, 6], [3, 6]], L: 3 });
    expect(equalSpans([[1, 0, 1]])).toBeNull();
  });

  it('pair log-probabilities from the replies\' logits alone equal those from every position, gradients too', () => {
    const lm = tinyModel(SPEC);
    const ad = new LoraAdapter(lm, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: LORA_ALL }, { seed: 5 });
    ad.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 40 + i)));
    const ps = pairs(5, 3);
    const c = collate([...ps.map((p) => p.chosen), ...ps.map((p) => p.rejected)]);
    expect(equalSpans(c.weight)).not.toBeNull();
    const coef = tf.tensor1d(Array.from({ length: 2 * ps.length }, (_, i) => 1 + 0.37 * i));
    const vars = ad.variables();
    const full = tf.variableGrads(() => tf.sum(tf.mul(sequenceLogProbs(lm.forward(c.ids, { mask: c.mask }), c.target, c.weight), coef)) as tf.Scalar, vars);
    const { result: cut, shapes } = withForwardShapes(lm, () => tf.variableGrads(() => tf.sum(tf.mul(tf.concat(pairLogProbs(lm, ps)), coef)) as tf.Scalar, vars));
    // Only the replies' logits: L of each row's T positions.
    const { L } = equalSpans(c.weight)!;
    expect(L).toBeLessThan(c.ids[0]!.length);
    expect(shapes).toEqual([[1, 2 * ps.length * L, lm.config.vocab_size]]);
    expect(cut.value.dataSync()[0]).toBeCloseTo(full.value.dataSync()[0]!, 3);
    const a = tf.tidy(() => sequenceLogProbs(lm.forward(c.ids, { mask: c.mask }), c.target, c.weight).arraySync());
    const b = tf.tidy(() => tf.concat(pairLogProbs(lm, ps)).arraySync());
    b.forEach((x, i) => expect(x).toBeCloseTo(a[i]!, 4));
    const { worst, largest } = gradDiff(full.grads, cut.grads);
    expect(largest).toBeGreaterThan(1e-2);
    expect(worst).toBeLessThan(1e-4 * largest);
    tf.dispose([coef, full.value, cut.value, ...Object.values(full.grads), ...Object.values(cut.grads)]);
    ad.dispose();
    lm.dispose();
  });

  it('the loss is ln 2 with zero rewards against itself as reference; loss, rewards and the RPO term follow their formulas', async () => {
    const lm = tinyModel(SPEC);
    const ps = pairs(6, 1);
    // The same batch as the loss below: the same numbers bit for bit (another padding would differ in the last bits).
    await referenceLogps(lm, ps, 6);
    const obj = dpoObjective({ beta: 0.1 });
    const stats: Record<string, number> = {};
    const l = tf.tidy(() => obj.loss(lm, ps, (n, v) => (stats[n] = v.dataSync()[0]!)).dataSync()[0]!);
    expect(l).toBeCloseTo(Math.log(2), 5);
    expect(stats['rewards/margins']).toBeCloseTo(0, 5);
    expect(stats['rewards/accuracies']).toBe(0);
    // Against another reference, the loss and rewards follow the formula.
    const shifted = ps.map((p, i) => ({ ...p, ref: { chosen: p.ref!.chosen + 0.5 * i, rejected: p.ref!.rejected - 0.25 * i } }));
    const beta = 0.3;
    const obj2 = dpoObjective({ beta, rpoAlpha: 0.5 });
    const s2: Record<string, number> = {};
    const got = tf.tidy(() => obj2.loss(lm, shifted, (n, v) => (s2[n] = v.dataSync()[0]!)).dataSync()[0]!);
    const [c, r] = tf.tidy(() => pairLogProbs(lm, shifted).map((t) => t.arraySync() as number[])) as unknown as [number[], number[]];
    const margins = shifted.map((p, i) => beta * (c[i]! - p.ref!.chosen) - beta * (r[i]! - p.ref!.rejected));
    const dpo = margins.reduce((a, m) => a + Math.log1p(Math.exp(-m)), 0) / margins.length;
    const cb = collate(shifted.map((p) => p.chosen));
    const nll = tf.tidy(() => maskedCrossEntropy(lm.forward(cb.ids, { mask: cb.mask }), cb.target, cb.weight).dataSync()[0]!);
    expect(got).toBeCloseTo(dpo + 0.5 * nll, 4);
    expect(s2['rewards/margins']).toBeCloseTo(margins.reduce((a, b) => a + b, 0) / margins.length, 4);
    expect(s2['rewards/accuracies']).toBeCloseTo(margins.filter((m) => m > 0).length / margins.length, 6);
    expect(s2['logps/chosen']).toBeCloseTo(c.reduce((a, b) => a + b, 0) / c.length, 3);
    lm.dispose();
  });

  it("the DPO loss's gradient with respect to the LoRA weights equals finite differences", async () => {
    const lm = tinyModel(SPEC);
    const ps = pairs(4, 2);
    await referenceLogps(lm, ps, 4);
    const ad = new LoraAdapter(lm, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 5 });
    // B = 0 at init: give it values so the policy differs from the reference and every path carries gradient.
    const rand = seededRandom(9);
    for (const v of ad.variables()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => (rand() - 0.5) * 0.6), v.shape));
    const obj = dpoObjective({ beta: 0.5, rpoAlpha: 0.2 });
    const lossFn = () => obj.loss(lm, ps);
    const vars = ad.variables();
    const { grads } = tf.variableGrads(lossFn, vars);
    let worst = 0;
    for (const v of vars.slice(0, 6)) {
      const g = grads[v.name]!.dataSync();
      let j = 0;
      for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[j]!)) j = k;
      const orig = v.dataSync().slice();
      const at = (h: number) => {
        const d = orig.slice();
        d[j] = d[j]! + h;
        v.assign(tf.tensor(d, v.shape));
        const l = tf.tidy(() => lossFn().dataSync()[0]!);
        v.assign(tf.tensor(orig, v.shape));
        return l;
      };
      const central = (h: number) => (at(h) - at(-h)) / (2 * h);
      const fd = (4 * central(1e-2) - central(2e-2)) / 3;
      worst = Math.max(worst, Math.abs(fd - g[j]!) / Math.abs(g[j]!));
    }
    console.log(`[gradcheck] DPO + RPO through LoRA: worst rel err ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(5e-3);
    tf.dispose(Object.values(grads));
    ad.dispose();
    lm.dispose();
  });

  it('trains in the one loop: held-out preference accuracy rises, metrics are reported, the reference rides in checkpoints and resume is exact', async () => {
    const lm = tinyModel(SPEC);
    const train = pairs(128, 11);
    const val = pairs(32, 12);
    const c = cfg({ steps: 60, lr: 1e-2, evalEvery: 10, saveEvery: 20 });
    const ad = new LoraAdapter(lm, c.lora, { seed: c.seed });
    ad.enabled = false;
    await referenceLogps(lm, [...train, ...val], 8);
    ad.enabled = true;
    const t = new Trainer(lm, train, val, c, ad, dpoObjective({ beta: c.dpoBeta }));
    const before = t.evaluate();
    expect(before.valLoss).toBeCloseTo(Math.log(2), 4);
    const evals: number[] = [];
    const steps: Record<string, number>[] = [];
    let ck20: ReturnType<Trainer['checkpoint']> | null = null;
    const numTensors: number[] = [];
    await runTraining(t as unknown as Trainer, {}, (e) => {
      if (e.type === 'step') {
        steps.push(e.metrics.extra!);
        numTensors.push(e.metrics.memory.numTensors);
      }
      if (e.type === 'eval') evals.push(e.metrics.extra!['eval_rewards/accuracies']!);
      if (e.type === 'checkpoint' && e.checkpoint.step === 20) ck20 = e.checkpoint;
    });
    console.log(`[dpo] tiny model, even-token preference: held-out accuracy ${evals.map((a) => a.toFixed(2)).join(' -> ')}`);
    expect(Object.keys(steps[0]!).sort()).toEqual(['logps/chosen', 'logps/rejected', 'rewards/accuracies', 'rewards/chosen', 'rewards/margins', 'rewards/rejected']);
    expect(evals[evals.length - 1]!).toBeGreaterThanOrEqual(0.9);
    expect(steps[steps.length - 1]!['rewards/margins']!).toBeGreaterThan(steps[0]!['rewards/margins']!);
    expect(new Set(numTensors.slice(2)).size).toBe(1);
    const final = t.checkpoint();
    expect(ck20!.tensors['dpo.reference_logps']!.shape).toEqual([160, 2]);

    // Resume from step 20 with the references recomputed nowhere: restored from the checkpoint.
    const fresh = pairs(128, 11);
    const freshVal = pairs(32, 12);
    ad.dispose();
    const ad2 = new LoraAdapter(lm, c.lora, { seed: c.seed });
    const t2 = new Trainer(lm, fresh, freshVal, c, ad2, dpoObjective({ beta: c.dpoBeta }));
    t2.restore(ck20!);
    expect(fresh[3]!.ref).toEqual(train[3]!.ref);
    await runTraining(t2 as unknown as Trainer, {}, () => {});
    const resumed = t2.checkpoint();
    for (const name of t2.paramNames) expect(Array.from(resumed.tensors[name]!.data)).toEqual(Array.from(final.tensors[name]!.data));
    // Other data: refused with the reason.
    ad2.dispose();
    const ad3 = new LoraAdapter(lm, c.lora, { seed: c.seed });
    const t3 = new Trainer(lm, pairs(10, 1), [], c, ad3, dpoObjective({ beta: 0.1 }));
    expect(() => t3.restore(ck20!)).toThrow(/covers 160 pairs, the data has 10: the preference data changed/);
    ad3.dispose();
    // The same number of pairs, one token changed: refused too (the checkpoint keeps the pairs' fingerprint).
    const edited = pairs(128, 11);
    edited[5]!.chosen.input[1] = edited[5]!.chosen.input[1] === 4 ? 5 : 4;
    const ad4 = new LoraAdapter(lm, c.lora, { seed: c.seed });
    const t4 = new Trainer(lm, edited, pairs(32, 12), c, ad4, dpoObjective({ beta: 0.1 }));
    expect(() => t4.restore(ck20!)).toThrow(/pairs differ from those the checkpoint's DPO reference was computed on/);
    ad4.dispose();
    lm.dispose();
  }, 120_000);
});
