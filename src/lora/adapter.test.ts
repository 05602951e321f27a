import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { setCpuFusedOps } from '../model/ops';
import { seededRandom } from '../util/random';
import { buildCausalLM } from '../model/load';
import { tinyConfig, tinyModel, type TinySpec } from '../testing/tiny-model';
import { maskedCrossEntropy } from '../train/loss';
import { LoraAdapter, LoraError, matchesTarget } from './adapter';
import { mergeLora } from './merge';

const ids = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const targets = ids.map((r) => [...r.slice(1), 0]);
const weights = ids.map((r) => r.map((_, t) => (t >= 2 && t < r.length - 1 ? 1 : 0)));

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Sets every B to small random values so gradients w.r.t. A are non-zero too. */
function randomizeB(ad: LoraAdapter, seed: number): void {
  const rand = seededRandom(seed);
  for (const m of ad.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => (rand() - 0.5) * 0.4), m.B.shape));
}

describe('LoRA adapter', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });
  afterAll(() => setCpuFusedOps(true));

  it('matches target modules like PEFT', () => {
    expect(matchesTarget('model.layers.0.self_attn.q_proj', ['q_proj'])).toBe(true);
    expect(matchesTarget('model.layers.0.self_attn.q_proj', ['proj'])).toBe(false);
    expect(matchesTarget('transformer.h.1.attn.c_proj', ['c_proj'])).toBe(true);
    const lm = tinyModel({ arch: 'llama' });
    expect(() => new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['c_attn'] })).toThrow(LoraError);
    expect(() => new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['c_attn'] })).toThrow(/q_proj/);
    lm.dispose();
  });

  it('initialises A like PEFT (U(-1/sqrt(in), 1/sqrt(in))), B to zero, scale alpha/r', () => {
    const lm = tinyModel({ arch: 'llama', hidden: 32 });
    const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 16, lora_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'] });
    expect(ad.modules.size).toBe(6);
    expect(ad.scale).toBe(4);
    for (const m of ad.modules.values()) {
      const a = m.A.dataSync();
      const bound = 1 / Math.sqrt(m.inDim);
      expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.8 * bound);
      expect(Math.max(...m.B.dataSync().map(Math.abs))).toBe(0);
    }
    ad.dispose();
    lm.dispose();
  });

  for (const arch of ['llama', 'gpt2'] as const) {
    it(`${arch}: with B = 0 the tuned logits equal the base logits exactly; strength and on/off work without reloading`, () => {
      const lm = tinyModel({ arch });
      const base = lm.forward(ids);
      const baseData = base.dataSync();
      const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: arch === 'gpt2' ? ['c_attn', 'c_fc', 'c_proj'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
      const same = lm.forward(ids);
      expect(Array.from(same.dataSync())).toEqual(Array.from(baseData));
      randomizeB(ad, 3);
      const tuned = lm.forward(ids).dataSync();
      expect(maxAbs(tuned, baseData)).toBeGreaterThan(1e-2);
      ad.strength = 0;
      expect(maxAbs(lm.forward(ids).dataSync(), baseData)).toBe(0);
      ad.strength = 1;
      ad.enabled = false;
      expect(maxAbs(lm.forward(ids).dataSync(), baseData)).toBe(0);
      ad.enabled = true;
      ad.strength = 0.5;
      const half = lm.forward(ids).dataSync();
      expect(maxAbs(half, baseData)).toBeGreaterThan(1e-3);
      expect(maxAbs(half, tuned)).toBeGreaterThan(1e-3);
      tf.dispose([base, same]);
      ad.dispose();
      expect(lm.forward(ids).dataSync()).toEqual(baseData);
      lm.dispose();
    });
  }

  for (const spec of [{ arch: 'llama', kvHeads: 2 }, { arch: 'gpt2' }] as TinySpec[]) {
    it(`${spec.arch}: LoRA gradients equal central finite differences (TF.js ops); the fused CPU ops give the same gradients`, () => {
      setCpuFusedOps(false); // float32 finite differences sit near their noise floor: one path, checked against them
      const lm = tinyModel({ ...spec, std: 0.4 });
      const ad = new LoraAdapter(lm, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: spec.arch === 'gpt2' ? ['c_attn', 'c_proj', 'c_fc'] : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, { seed: 5 });
      randomizeB(ad, 9);
      const vars = ad.variables();
      const lossFn = () => maskedCrossEntropy(lm.forward(ids), targets, weights);
      const { grads } = tf.variableGrads(lossFn, vars);
      const g = new Map(vars.map((v) => [v.name, grads[v.name]!.dataSync() as Float32Array]));
      const loss = () => tf.tidy(() => lossFn().dataSync()[0]!);
      const eps = 1e-2;
      // 1) Directional derivative along a random direction over all parameters.
      const rand = seededRandom(11);
      const dir = vars.map((v) => Float32Array.from({ length: v.size }, () => rand() - 0.5));
      const orig = vars.map((v) => v.dataSync().slice() as Float32Array);
      const setAt = (k: number) => vars.forEach((v, i) => v.assign(tf.tensor(orig[i]!.map((x, j) => x + k * dir[i]![j]!), v.shape)));
      const central = (h: number) => {
        setAt(h);
        const lp = loss();
        setAt(-h);
        const ln = loss();
        setAt(0);
        return (lp - ln) / (2 * h);
      };
      // Central differences with Richardson extrapolation (cancels the h^2 error term).
      const fd = (4 * central(eps / 2) - central(eps)) / 3;
      const an = vars.reduce((acc, v, i) => acc + g.get(v.name)!.reduce((a, x, j) => a + x * dir[i]![j]!, 0), 0);
      const rel = Math.abs(fd - an) / Math.max(Math.abs(an), 1e-8);
      console.log(`[gradcheck] ${spec.arch}: directional fd ${fd.toExponential(4)} vs analytic ${an.toExponential(4)}, rel err ${rel.toExponential(2)}`);
      expect(rel).toBeLessThanOrEqual(1e-3);
      // 2) The largest gradient entry of every A and B, one by one.
      let worst = 0;
      vars.forEach((v, i) => {
        const gv = g.get(v.name)!;
        let j = 0;
        for (let k = 1; k < gv.length; k++) if (Math.abs(gv[k]!) > Math.abs(gv[j]!)) j = k;
        const bump = (k: number) => {
          const d = orig[i]!.slice();
          d[j] = d[j]! + k;
          v.assign(tf.tensor(d, v.shape));
        };
        const central = (h: number) => {
          bump(h);
          const a = loss();
          bump(-h);
          const b = loss();
          bump(0);
          return (a - b) / (2 * h);
        };
        // Single entries: a larger step keeps float32 rounding of the loss below the tolerance.
        const fdj = (4 * central(eps) - central(2 * eps)) / 3;
        worst = Math.max(worst, Math.abs(fdj - gv[j]!) / Math.abs(gv[j]!));
      });
      console.log(`[gradcheck] ${spec.arch}: worst per-entry rel err over ${vars.length} tensors ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(1e-3);
      // The fused ops (attention, RMSNorm, x W + s x A B as one op each): the same gradients to float32 rounding.
      setCpuFusedOps(true);
      const fused = tf.variableGrads(lossFn, vars);
      let fusedRel = 0;
      vars.forEach((v) => {
        const want = g.get(v.name)!;
        const got = fused.grads[v.name]!.dataSync();
        const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        want.forEach((x, j) => (fusedRel = Math.max(fusedRel, Math.abs(got[j]! - x) / scale)));
      });
      console.log(`[gradcheck] ${spec.arch}: fused ops vs TF.js ops, worst rel gradient difference ${fusedRel.toExponential(2)}`);
      expect(fusedRel).toBeLessThan(1e-5);
      tf.dispose([fused.value, ...Object.values(fused.grads)]);
      tf.dispose(Object.values(grads));
      ad.dispose();
      lm.dispose();
    });
  }

  for (const arch of ['llama', 'gpt2'] as const) {
    it(`${arch}: merging the adapter into the base weights gives the tuned logits`, () => {
      const spec: TinySpec = { arch, tied: false };
      const lm = tinyModel(spec);
      const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: arch === 'gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'v_proj', 'down_proj'] });
      randomizeB(ad, 4);
      const tuned = lm.forward(ids).dataSync();
      const merged = buildCausalLM({ config: tinyConfig(spec), weights: mergeLora(lm, ad) });
      const m = merged.forward(ids).dataSync();
      console.log(`[merge] ${arch}: max |merged - tuned| = ${maxAbs(m, tuned).toExponential(2)}`);
      expect(maxAbs(m, tuned)).toBeLessThanOrEqual(1e-4);
      merged.dispose();
      ad.dispose();
      lm.dispose();
    });
  }

  it('dropout is active only while training and is reproducible with a seed', () => {
    const lm = tinyModel({ arch: 'llama' });
    const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0.5, target_modules: ['q_proj', 'v_proj'] });
    randomizeB(ad, 2);
    const evalA = lm.forward(ids).dataSync();
    expect(maxAbs(lm.forward(ids).dataSync(), evalA)).toBe(0);
    ad.training = true;
    ad.setDropoutSeed(7);
    const t1 = lm.forward(ids).dataSync();
    ad.setDropoutSeed(7);
    const t2 = lm.forward(ids).dataSync();
    ad.setDropoutSeed(8);
    const t3 = lm.forward(ids).dataSync();
    expect(maxAbs(t1, t2)).toBe(0);
    expect(maxAbs(t1, t3)).toBeGreaterThan(1e-4);
    expect(maxAbs(t1, evalA)).toBeGreaterThan(1e-4);
    ad.dispose();
    lm.dispose();
  });
});
