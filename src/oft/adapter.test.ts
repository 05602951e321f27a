// OFT against references: the Cayley transform's definition and orthogonality, the adapted layer against a
// dense x R W, exact base logits at zero init, gradients against central finite differences, PEFT's block
// sizes, module dropout and COFT's projection.
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inspectDataset, textSource } from '../data/index';
import { loadModel } from '../io/load-model';
import { LoraAdapter } from '../lora/adapter';
import { setupBackend } from '../model/backend';
import type { LanguageModel } from '../model/load';
import { directorySource } from '../node/fs-source';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { defaultTrainConfig } from '../train/config';
import { createTrainer, disposeTrainer, toExamples } from '../train/job';
import type { Example } from '../train/loop';
import { buildCausalLM } from '../model/load';
import { linear } from '../model/ops';
import { mergeLora, readDeltas } from '../lora/merge';
import { tinyConfig, tinyModel, type TinySpec } from '../testing/tiny-model';
import { maskedCrossEntropy } from '../train/loss';
import { seededRandom } from '../util/random';
import { cayley, cayleyNeumann, invertNoPivot, nearestDivisor, OftAdapter, OftError, oftBlocks, skewSize, skewSymmetric, type OftAdapterConfig } from './adapter';

const ids = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const targets = ids.map((r) => [...r.slice(1), 0]);
const weights = ids.map((r) => r.map((_, t) => (t >= 2 && t < r.length - 1 ? 1 : 0)));
const LLAMA_ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const GPT2_ALL = ['c_attn', 'c_proj', 'c_fc'];

function oft(over: Partial<OftAdapterConfig> = {}): OftAdapterConfig {
  return { oft_block_size: 4, module_dropout: 0, target_modules: LLAMA_ALL, coft: false, eps: 6e-5, ...over };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function randomArray(n: number, seed: number, scale: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (rand() - 0.5) * 2 * scale);
}

/** Trained-looking OFT weights (PEFT's init_weights=False draws N(0, 0.1); uniform of similar size here). */
function randomize(ad: OftAdapter, seed: number, scale = 0.15): void {
  let s = seed;
  ad.setWeights(new Map([...ad.modules].map(([name, m]) => [name, randomArray(m.weight.size, s++, scale)])));
}

/** Row-major product of [n, k] and [k, m] in float64. */
function matmul(a: ArrayLike<number>, b: ArrayLike<number>, n: number, k: number, m: number): Float64Array {
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let l = 0; l < k; l++) for (let j = 0; j < m; j++) out[i * m + j]! += a[i * k + l]! * b[l * m + j]!;
  return out;
}

describe('OFT building blocks', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('packs the upper triangle row-major (torch.triu_indices order) into a skew-symmetric Q', () => {
    const q = tf.tidy(() => skewSymmetric(tf.tensor2d([[1, 2, 3, 4, 5, 6]]), 4).arraySync());
    expect(q).toEqual([
      [
        [0, 1, 2, 3],
        [-1, 0, 4, 5],
        [-2, -4, 0, 6],
        [-3, -5, -6, 0],
      ],
    ]);
  });

  it('the Cayley transform is (I - Q)(I + Q)^-1 and orthogonal (R^T R = I), by the JavaScript and the backend-op inverse', () => {
    for (const b of [2, 5, 8]) {
      const K = 3;
      const u = randomArray(K * skewSize(b), b, 1.5); // large entries: far from the identity
      const [rd, qd, ops] = tf.tidy(() => {
        const q = skewSymmetric(tf.tensor2d(u, [K, skewSize(b)]), b);
        const eye = tf.eye(b);
        const byOps = tf.sub(tf.mul(invertNoPivot(tf.add(q, eye) as tf.Tensor3D, 'ops'), 2), eye);
        return [cayley(q).dataSync(), q.dataSync(), byOps.dataSync()];
      });
      let orth = 0;
      let def = 0;
      for (let k = 0; k < K; k++) {
        const R = rd.subarray(k * b * b, (k + 1) * b * b);
        const Q = qd.subarray(k * b * b, (k + 1) * b * b);
        const Rt = Float64Array.from({ length: b * b }, (_, i) => R[(i % b) * b + Math.floor(i / b)]!);
        const I = Float64Array.from({ length: b * b }, (_, i) => (i % (b + 1) === 0 ? 1 : 0));
        orth = Math.max(orth, maxAbs(matmul(Rt, R, b, b, b), I));
        // R (I + Q) = I - Q: what PEFT's solve(I + Q, I - Q, left=False) solves.
        const IpQ = I.map((x, i) => x + Q[i]!);
        const ImQ = I.map((x, i) => x - Q[i]!);
        def = Math.max(def, maxAbs(matmul(R, IpQ, b, b, b), ImQ));
      }
      console.log(`[cayley] b=${b}: max |R^T R - I| ${orth.toExponential(2)}, max |R(I+Q) - (I-Q)| ${def.toExponential(2)}, ops vs js ${maxAbs(ops, rd).toExponential(2)}`);
      expect(orth).toBeLessThanOrEqual(1e-5);
      expect(def).toBeLessThanOrEqual(1e-5);
      expect(maxAbs(ops, rd)).toBeLessThanOrEqual(1e-5);
    }
  });

  it("the inverse's gradient (-M^T G M^T) is the same by both paths and matches finite differences", () => {
    const b = 4;
    const u = tf.variable(tf.tensor2d(randomArray(2 * skewSize(b), 3, 0.8), [2, skewSize(b)]));
    const proj = tf.tensor3d(randomArray(2 * b * b, 4, 1), [2, b, b]);
    const loss = () => tf.sum(tf.mul(cayley(skewSymmetric(u as unknown as tf.Tensor2D, b)), proj)) as tf.Scalar;
    const g = (how: 'js' | 'ops') => {
      const eye = tf.eye(b);
      const f = () => tf.sum(tf.mul(tf.sub(tf.mul(invertNoPivot(tf.add(skewSymmetric(u as unknown as tf.Tensor2D, b), eye) as tf.Tensor3D, how), 2), eye), proj)) as tf.Scalar;
      const { grads, value } = tf.variableGrads(f, [u]);
      const out = grads[u.name]!.dataSync().slice();
      tf.dispose([value, ...Object.values(grads), eye]);
      return out;
    };
    const gj = g('js');
    const go = g('ops');
    expect(maxAbs(gj, go)).toBeLessThanOrEqual(1e-5);
    const orig = u.dataSync().slice();
    const at = (j: number, h: number) => {
      const d = orig.slice();
      d[j] = d[j]! + h;
      u.assign(tf.tensor2d(d, u.shape as [number, number]));
      return tf.tidy(() => loss().dataSync()[0]!);
    };
    let worst = 0;
    for (let j = 0; j < orig.length; j++) {
      const c = (h: number) => (at(j, h) - at(j, -h)) / (2 * h);
      const fd = (4 * c(5e-3) - c(1e-2)) / 3;
      worst = Math.max(worst, Math.abs(fd - gj[j]!) / Math.max(Math.abs(gj[j]!), 1e-3));
    }
    console.log(`[cayley grad] worst rel err over ${orig.length} entries ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-3);
    tf.dispose([u, proj]);
  });

  it("PEFT's Cayley-Neumann series: I + 2Q + 2Q^2 + ... + Q^(t-1), close to (I + Q)(I - Q)^-1 for small Q", () => {
    const b = 3;
    const u = [0.05, -0.02, 0.03];
    const [q, r5, r3, r4, r1, r2] = tf.tidy(() => {
      const Q = skewSymmetric(tf.tensor2d([u]), b);
      return [Q.dataSync(), ...[5, 3, 4, 1, 2].map((t) => cayleyNeumann(Q, t).dataSync())];
    });
    const I = Float64Array.from({ length: 9 }, (_, i) => (i % 4 === 0 ? 1 : 0));
    const Q2 = matmul(q!, q!, 3, 3, 3);
    const Q3 = matmul(Q2, q!, 3, 3, 3);
    const Q4 = matmul(Q3, q!, 3, 3, 3);
    expect(maxAbs(r5!, I.map((x, i) => x + 2 * q![i]! + 2 * Q2[i]! + 2 * Q3[i]! + Q4[i]!))).toBeLessThanOrEqual(1e-7);
    expect(maxAbs(r3!, r4!)).toBe(0); // PEFT's loop: 3 terms build the 4-term series
    expect(maxAbs(r1!, I)).toBe(0);
    expect(maxAbs(r2!, I.map((x, i) => x + 2 * q![i]!))).toBeLessThanOrEqual(1e-7);
    // (I + Q)(I - Q)^-1 is the exact transform of -Q: the series approximates the transpose of cayley(Q).
    const [exact, forward] = tf.tidy(() => [cayley(tf.neg(skewSymmetric(tf.tensor2d([u]), b)) as tf.Tensor3D).dataSync(), cayley(skewSymmetric(tf.tensor2d([u]), b)).dataSync()]);
    expect(maxAbs(r5!, exact)).toBeLessThanOrEqual(5e-5); // truncation: about |Q|^4 (~1e-5 here)
    expect(maxAbs(r5!, forward)).toBeGreaterThan(0.1); // not cayley(Q): that is the transpose
  });

  it("picks PEFT's block sizes: the nearest divisor of in_features (the smaller on a tie), or from r", () => {
    expect(nearestDivisor(176, 32)).toBe(22); // tabtune-tiny's down_proj: 22 is 10 away, 44 is 12
    expect(nearestDivisor(36, 8)).toBe(9);
    expect(nearestDivisor(36, 5)).toBe(4); // 4 and 6 both 1 away
    expect(nearestDivisor(16, 32)).toBe(16);
    expect(oftBlocks(64, { oft_block_size: 32 })).toEqual({ blocks: 2, blockSize: 32, adjustedFrom: null });
    expect(oftBlocks(176, { oft_block_size: 32 })).toEqual({ blocks: 8, blockSize: 22, adjustedFrom: 32 });
    expect(oftBlocks(64, { r: 8, oft_block_size: 0 })).toEqual({ blocks: 8, blockSize: 8, adjustedFrom: null });
    expect(oftBlocks(36, { r: 8, oft_block_size: 0 })).toEqual({ blocks: 9, blockSize: 4, adjustedFrom: 8 });
  });
});

describe('OFT adapter', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('targets like PEFT, sizes blocks per layer, refuses what it cannot build', () => {
    const lm = tinyModel({ arch: 'llama' }); // hidden 16, intermediate 36
    const ad = new OftAdapter(lm, oft({ oft_block_size: 8, target_modules: ['q_proj', 'down_proj'] }));
    expect([...ad.modules.keys()]).toEqual(['model.layers.0.self_attn.q_proj', 'model.layers.0.mlp.down_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.mlp.down_proj']);
    const q = ad.modules.get('model.layers.0.self_attn.q_proj')!;
    const down = ad.modules.get('model.layers.0.mlp.down_proj')!;
    expect([q.blocks, q.blockSize, q.weight.shape]).toEqual([2, 8, [2, 28]]);
    expect([down.blocks, down.blockSize, down.weight.shape]).toEqual([4, 9, [4, 36]]);
    expect(ad.adjusted).toEqual([
      { module: 'model.layers.0.mlp.down_proj', from: 8, to: 9 },
      { module: 'model.layers.1.mlp.down_proj', from: 8, to: 9 },
    ]);
    expect(ad.paramNames[0]).toBe('model.layers.0.self_attn.q_proj.oft_R');
    expect(ad.numParams()).toBe(2 * (2 * 28 + 4 * 36));
    expect(Math.max(...ad.variables().flatMap((v) => [...v.dataSync()].map(Math.abs)))).toBe(0); // PEFT's zero init
    expect(() => new OftAdapter(lm, oft())).toThrow(/already has an adapter/);
    ad.dispose();
    expect(() => new OftAdapter(lm, oft({ target_modules: ['c_attn'] }))).toThrow(OftError);
    expect(() => new OftAdapter(lm, oft({ oft_block_size: 1 }))).toThrow(/block size/);
    expect(() => new OftAdapter(lm, oft({ module_dropout: 1 }))).toThrow(/module_dropout/);
    expect([...lm.linears.values()].every((l) => !l.adapter)).toBe(true);
    lm.dispose();
  });

  for (const [arch, targetsOf] of [
    ['llama', LLAMA_ALL],
    ['gpt2', GPT2_ALL],
  ] as const) {
    it(`${arch}: with zero weights the logits equal the base model's exactly; strength and on/off work without reloading`, () => {
      const lm = tinyModel({ arch });
      const base = lm.forward(ids);
      const baseData = base.dataSync().slice();
      const ad = new OftAdapter(lm, oft({ target_modules: [...targetsOf] }));
      const same = lm.forward(ids);
      expect(Array.from(same.dataSync())).toEqual(Array.from(baseData));
      randomize(ad, 3);
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
      expect(Array.from(lm.forward(ids).dataSync())).toEqual(Array.from(baseData));
      lm.dispose();
    });
  }

  it('the adapted Linear equals the dense x R W + b (R block-diagonal) at strength 1 and 0.4', () => {
    const lm = tinyModel({ arch: 'gpt2', hidden: 12 }); // c_attn: 12 -> 36 with a bias; c_proj (mlp) 48 -> 12
    const ad = new OftAdapter(lm, oft({ oft_block_size: 4, target_modules: GPT2_ALL }));
    randomize(ad, 5, 0.4);
    for (const name of ['transformer.h.0.attn.c_attn', 'transformer.h.1.mlp.c_proj']) {
      const m = ad.modules.get(name)!;
      const l = m.linear;
      const [inDim, outDim] = l.w.shape;
      const N = 5;
      const x = randomArray(N * inDim, 9, 1);
      for (const s of [1, 0.4]) {
        ad.strength = s;
        const y = tf.tidy(() => linear(tf.tensor2d(x, [N, inDim]), l).dataSync());
        const blocks = tf.tidy(() => m.rotation(s).dataSync());
        const b = m.blockSize;
        const R = new Float64Array(inDim * inDim);
        for (let p = 0; p < m.blocks; p++) for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) R[(p * b + i) * inDim + p * b + j] = blocks[(p * b + i) * b + j]!;
        const ref = matmul(matmul(x, R, N, inDim, inDim), l.w.dataSync(), N, inDim, outDim);
        const bias = l.b!.dataSync();
        for (let i = 0; i < ref.length; i++) ref[i]! += bias[i % outDim]!;
        const err = maxAbs(y, ref);
        console.log(`[dense] ${name} strength ${s}: max |layer - x R W - b| ${err.toExponential(2)}`);
        expect(err).toBeLessThanOrEqual(1e-5);
        expect(maxAbs(y, matmul(x, l.w.dataSync(), N, inDim, outDim).map((v, i) => v + bias[i % outDim]!))).toBeGreaterThan(1e-3);
      }
    }
    ad.dispose();
    lm.dispose();
  });

  for (const spec of [{ arch: 'llama', kvHeads: 2 }, { arch: 'gpt2' }] as TinySpec[]) {
    it(`${spec.arch}: gradients w.r.t. the OFT weights equal central finite differences`, () => {
      const lm = tinyModel({ ...spec, std: 0.4 });
      const ad = new OftAdapter(lm, oft({ target_modules: spec.arch === 'gpt2' ? GPT2_ALL : LLAMA_ALL }));
      randomize(ad, 21);
      const vars = ad.variables();
      const lossFn = () => maskedCrossEntropy(lm.forward(ids), targets, weights);
      const { value, grads } = tf.variableGrads(lossFn, vars);
      value.dispose();
      const g = vars.map((v) => grads[v.name]!.dataSync() as Float32Array);
      const loss = () => tf.tidy(() => lossFn().dataSync()[0]!);
      const orig = vars.map((v) => v.dataSync().slice() as Float32Array);
      // 1) Directional derivative along a random direction over every parameter.
      const rand = seededRandom(11);
      const dir = vars.map((v) => Float32Array.from({ length: v.size }, () => rand() - 0.5));
      const setAt = (k: number) => vars.forEach((v, i) => v.assign(tf.tensor(orig[i]!.map((x, j) => x + k * dir[i]![j]!), v.shape)));
      const central = (h: number) => {
        setAt(h);
        const lp = loss();
        setAt(-h);
        const ln = loss();
        setAt(0);
        return (lp - ln) / (2 * h);
      };
      const fd = (4 * central(5e-3) - central(1e-2)) / 3; // Richardson: cancels the h^2 term
      const an = vars.reduce((acc, _, i) => acc + g[i]!.reduce((a, x, j) => a + x * dir[i]![j]!, 0), 0);
      const rel = Math.abs(fd - an) / Math.abs(an);
      console.log(`[gradcheck] ${spec.arch}: directional fd ${fd.toExponential(4)} vs analytic ${an.toExponential(4)}, rel err ${rel.toExponential(2)}`);
      expect(rel).toBeLessThanOrEqual(1e-3);
      // 2) The largest entry of a few tensors (first and last module, one in the middle), one by one.
      let worst = 0;
      for (const i of [0, Math.floor(vars.length / 2), vars.length - 1]) {
        const v = vars[i]!;
        const gv = g[i]!;
        let j = 0;
        for (let k = 1; k < gv.length; k++) if (Math.abs(gv[k]!) > Math.abs(gv[j]!)) j = k;
        const bump = (h: number) => {
          const d = orig[i]!.slice();
          d[j] = d[j]! + h;
          v.assign(tf.tensor(d, v.shape));
        };
        const c = (h: number) => {
          bump(h);
          const a = loss();
          bump(-h);
          const b = loss();
          bump(0);
          return (a - b) / (2 * h);
        };
        const fdj = (4 * c(1e-2) - c(2e-2)) / 3;
        worst = Math.max(worst, Math.abs(fdj - gv[j]!) / Math.abs(gv[j]!));
      }
      console.log(`[gradcheck] ${spec.arch}: worst per-entry rel err ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(1e-3);
      tf.dispose(Object.values(grads));
      ad.dispose();
      lm.dispose();
    });
  }

  for (const arch of ['llama', 'gpt2'] as const) {
    it(`${arch}: merged weights (W <- R W) reproduce base + adapter logits, at strength 1 and 0.5, read synchronously or not`, async () => {
      const spec: TinySpec = { arch, tied: false };
      const lm = tinyModel(spec);
      const ad = new OftAdapter(lm, oft({ oft_block_size: 8, target_modules: arch === 'gpt2' ? GPT2_ALL : ['q_proj', 'v_proj', 'down_proj'] }));
      randomize(ad, 8, 0.4);
      for (const s of [1, 0.5]) {
        ad.strength = s;
        const tuned = lm.forward(ids).dataSync();
        const deltas = await readDeltas(ad, s);
        for (const w of [mergeLora(lm, ad), mergeLora(lm, ad, undefined, deltas)]) {
          const merged = buildCausalLM({ config: tinyConfig(spec), weights: w });
          const err = maxAbs(merged.forward(ids).dataSync(), tuned);
          console.log(`[merge] ${arch} strength ${s}: max |merged - tuned| = ${err.toExponential(2)}`);
          expect(err).toBeLessThanOrEqual(1e-4);
          merged.dispose();
        }
        // The merged weight is the rotated one: W' = R W, for one module checked densely.
        const m = ad.modules.get(arch === 'gpt2' ? 'transformer.h.0.attn.c_attn' : 'model.layers.0.self_attn.q_proj')!;
        const blocks = tf.tidy(() => m.rotation(s).dataSync());
        const W = m.linear.w.dataSync();
        const d = ad.delta(m.linear.name);
        const b = m.blockSize;
        let worst = 0;
        for (let p = 0; p < m.blocks; p++) {
          const Rp = blocks.subarray(p * b * b, (p + 1) * b * b);
          const rw = matmul(Rp, W.subarray(p * b * m.outDim, (p + 1) * b * m.outDim), b, b, m.outDim);
          for (let i = 0; i < rw.length; i++) worst = Math.max(worst, Math.abs(W[p * b * m.outDim + i]! + d[p * b * m.outDim + i]! - rw[i]!));
        }
        expect(worst).toBeLessThanOrEqual(1e-6);
      }
      ad.dispose();
      lm.dispose();
    });
  }

  it('module dropout sets int(p * blocks) blocks to the identity, only while training, reproducibly from the seed', () => {
    const lm = tinyModel({ arch: 'llama' });
    const ad = new OftAdapter(lm, oft({ oft_block_size: 2, module_dropout: 0.5, target_modules: ['q_proj', 'up_proj'] }));
    randomize(ad, 2, 0.5);
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
    // Which blocks: 8 blocks of 2 -> 4 identities, the others untouched.
    const m = ad.modules.get('model.layers.0.self_attn.q_proj')!;
    const full = tf.tidy(() => m.rotation(1).dataSync());
    const dropped = [1, 6, 2, 5];
    const part = tf.tidy(() => m.rotation(1, dropped).dataSync());
    for (let p = 0; p < 8; p++) {
      const blk = (a: ArrayLike<number>) => Array.from(a).slice(p * 4, p * 4 + 4);
      expect(blk(part)).toEqual(dropped.includes(p) ? [1, 0, 0, 1] : blk(full));
    }
    ad.setDropoutSeed(3);
    const drawn = m.dropBlocks();
    expect(drawn.length).toBe(4);
    expect(new Set(drawn).size).toBe(4);
    expect(drawn.every((p) => p >= 0 && p < 8)).toBe(true);
    ad.training = false;
    expect(maxAbs(lm.forward(ids).dataSync(), evalA)).toBe(0);
    ad.dispose();
    lm.dispose();
  });

  it('forwards and gradient steps leave no tensors behind (training, dropout and coft on)', () => {
    const lm = tinyModel({ arch: 'llama' });
    const ad = new OftAdapter(lm, oft({ oft_block_size: 2, module_dropout: 0.25, coft: true, eps: 0.5 }));
    randomize(ad, 6, 0.3);
    ad.training = true;
    const step = (k: number) => {
      ad.setDropoutSeed(k);
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(lm.forward(ids), targets, weights), ad.variables());
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose(lm.forward(ids));
      tf.dispose(ad.deltaTensor(ad.paramNames[0]!.replace(/\.oft_R$/, '')));
    };
    step(0);
    const before = tf.memory().numTensors;
    for (let k = 1; k < 4; k++) step(k);
    expect(tf.memory().numTensors).toBe(before);
    ad.dispose();
    lm.dispose();
  });

  it('coft keeps each block within radius eps / sqrt(blocks) (written back, as PEFT), leaves smaller ones alone', () => {
    const lm = tinyModel({ arch: 'llama' });
    const eps = 0.3;
    const ad = new OftAdapter(lm, oft({ coft: true, eps, target_modules: ['q_proj'] }));
    randomize(ad, 4, 0.5);
    const m = ad.modules.get('model.layers.0.self_attn.q_proj')!; // 4 blocks: radius 0.15
    const before = m.weight.dataSync().slice() as Float32Array;
    const small = 0.01;
    const w = before.slice();
    for (let j = 0; j < skewSize(4); j++) w[j] = small * (j % 2 ? 1 : -1); // block 0 inside the ball
    ad.setWeights(new Map([...ad.getWeights()].map(([k, v]) => [k, k === m.linear.name ? w : v])));
    tf.dispose(lm.forward(ids));
    const after = m.weight.dataSync() as Float32Array;
    const n = skewSize(4);
    const radius = eps / Math.sqrt(m.blocks);
    for (let p = 0; p < m.blocks; p++) {
      const row = after.subarray(p * n, (p + 1) * n);
      const norm = Math.sqrt(2 * row.reduce((a, x) => a + x * x, 0));
      if (p === 0) expect(Array.from(row)).toEqual(Array.from(w.subarray(0, n)));
      else {
        expect(norm).toBeCloseTo(radius, 6);
        const orig = w.subarray(p * n, (p + 1) * n);
        const scale = row[0]! / orig[0]!;
        expect(maxAbs(row, orig.map((x) => x * scale))).toBeLessThanOrEqual(1e-7); // same direction
      }
    }
    ad.dispose();
    lm.dispose();
  });
});

describe('OFT training on tabtune-tiny (createTrainer, the Trainer)', () => {
  let model: LanguageModel;
  let train: Example[];
  const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 24).join('\n') + '\n';

  beforeAll(async () => {
    await setupBackend('cpu');
    model = await loadModel(directorySource(TINY_DIR));
    const ins = await inspectDataset(textSource(DATA), { model, valFraction: 0 });
    train = toExamples(ins.encoder!, ins.train);
  });

  it('lowers the loss, numTensors flat across steps, checkpoints <module>.oft_R, resumes exactly', () => {
    const config = defaultTrainConfig('llama', { mode: 'oft', steps: 8, batchSize: 4, seed: 3, warmupSteps: 1, lr: 1e-2, oft: { ...defaultTrainConfig('llama').oft, module_dropout: 0.1 } });
    const t = createTrainer(model, train, [], config);
    const ad = t.adapter as OftAdapter;
    expect(ad).toBeInstanceOf(OftAdapter);
    // PEFT's block size 32: hidden 64 -> 2 blocks; down_proj's 176 inputs -> blocks of 22 (PEFT's adjustment).
    expect(ad.modules.get('model.layers.0.self_attn.q_proj')!.weight.shape).toEqual([2, 496]);
    expect(ad.modules.get('model.layers.0.mlp.down_proj')!.weight.shape).toEqual([8, 231]);
    expect(t.paramNames).toEqual([...ad.modules.keys()].map((n) => `${n}.oft_R`));
    const before = t.evaluate(train).valLoss;
    const steps = [];
    for (let i = 0; i < 4; i++) steps.push(t.trainStep());
    const ck = t.checkpoint();
    for (let i = 0; i < 4; i++) steps.push(t.trainStep());
    const after = t.evaluate(train).valLoss;
    console.log(`[oft train] loss on the training examples ${before.toFixed(4)} -> ${after.toFixed(4)}; step losses ${steps.map((m) => m.loss.toFixed(3)).join(' ')}`);
    expect(after).toBeLessThan(before - 0.05);
    expect(new Set(steps.slice(1).map((m) => m.memory.numTensors)).size).toBe(1);
    expect(Object.keys(ck.tensors).filter((k) => !k.endsWith('.adam_m') && !k.endsWith('.adam_v'))).toEqual(t.paramNames);
    expect(ck.tensors['model.layers.0.self_attn.q_proj.oft_R']!.shape).toEqual([2, 496]);
    const tuned = ad.getTensors();
    disposeTrainer(t);
    expect([...model.lm.linears.values()].every((l) => !l.adapter)).toBe(true);
    // A fresh trainer restored from the step-4 checkpoint repeats steps 5-8 exactly.
    const r = createTrainer(model, train, [], config);
    r.restore(ck);
    const again = [];
    for (let i = 0; i < 4; i++) again.push(r.trainStep().loss);
    expect(again).toEqual(steps.slice(4).map((m) => m.loss));
    const back = (r.adapter as OftAdapter).getTensors();
    for (const k of Object.keys(tuned)) expect(Array.from(back[k]!.data)).toEqual(Array.from(tuned[k]!.data));
    // setTensors from a checkpoint's tensors (the worker's way back to the last good weights).
    r.adapter!.setTensors(ck.tensors);
    expect(Array.from(r.adapter!.getTensors()['model.layers.1.mlp.up_proj.oft_R']!.data)).toEqual(Array.from(ck.tensors['model.layers.1.mlp.up_proj.oft_R']!.data));
    disposeTrainer(r);
  });

  it("LoRA's checkpoint names are unchanged by the adapter interface", () => {
    const t = createTrainer(model, train, [], defaultTrainConfig('llama', { steps: 1 }));
    const ad = t.adapter as LoraAdapter;
    expect(ad).toBeInstanceOf(LoraAdapter);
    expect(t.paramNames).toEqual([...ad.modules.keys()].flatMap((n) => [`${n}.lora_A`, `${n}.lora_B`]));
    expect(Object.keys(ad.getTensors())).toEqual(t.paramNames);
    disposeTrainer(t);
  });
});
