import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './backend';
import { cpuAttention, cpuAttentionAvailable } from './cpu-attention';
import { attention, attentionMask, rmsNorm, setCpuFusedOps } from './ops';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

for (const backend of ['wasm', 'cpu'] as const)
describe(`fused CPU attention (cpu-attention.ts) against the TF.js ops, ${backend}`, () => {
  beforeAll(async () => {
    await setupBackend(backend);
  });
  afterAll(() => setCpuFusedOps(true));

  const cases: { name: string; B: number; H: number; KV: number; T: number; past: number; hd: number; keyMask?: number[][] }[] = [
    { name: 'causal, grouped heads (6 query heads on 2 key/value heads)', B: 2, H: 6, KV: 2, T: 9, past: 0, hd: 8 },
    { name: 'right padding (training batches)', B: 2, H: 4, KV: 4, T: 7, past: 0, hd: 4, keyMask: [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0]] },
    { name: 'left padding and a cache (generation)', B: 2, H: 4, KV: 2, T: 3, past: 5, hd: 6, keyMask: [[0, 0, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]] },
    { name: 'one new token (decoding)', B: 1, H: 2, KV: 1, T: 1, past: 6, hd: 5 },
    // Rows of 16 keys and more (the kernels' widest blocks) and larger heads, odd sizes.
    { name: '37 tokens, head size 20', B: 2, H: 4, KV: 2, T: 37, past: 0, hd: 20 },
    { name: 'left padding, a cache, head size 64, 2 query heads per key head', B: 2, H: 6, KV: 3, T: 21, past: 13, hd: 64, keyMask: [[0, 0, 0, ...new Array<number>(31).fill(1)], new Array<number>(34).fill(1)] },
    { name: 'head size 3', B: 1, H: 2, KV: 2, T: 19, past: 0, hd: 3 },
  ];

  for (const c of cases) {
    it(`${c.name}: output and the gradients of q, k and v within 1e-5`, () => {
      const S = c.past + c.T;
      const km = c.keyMask ?? Array.from({ length: c.B }, () => new Array<number>(S).fill(1));
      const before = tf.memory().numTensors;
      const q = tf.randomNormal([c.B, c.H, c.T, c.hd], 0, 1, 'float32', 1);
      const kT = tf.randomNormal([c.B, c.KV, c.hd, S], 0, 1, 'float32', 2);
      const v = tf.randomNormal([c.B, c.KV, S, c.hd], 0, 1, 'float32', 3);
      const w = tf.randomNormal([c.B, c.T, c.H * c.hd], 0, 1, 'float32', 4); // a loss that weighs every output
      const mask = attentionMask(km, c.past, c.T);
      // Rows with no visible key (left padding) give a finite, unused output in both: leave them out of the loss.
      const rowSeen = tf.tensor(km.flatMap((r) => Array.from({ length: c.T }, (_, i) => (r.slice(0, c.past + i + 1).some((x) => x) ? 1 : 0))), [c.B, c.T, 1]);
      const lossOf = (fused: boolean) => {
        setCpuFusedOps(fused);
        const g = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(tf.mul(attention(qq, kk, vv, mask), w), rowSeen)));
        return (xs: tf.Tensor[]) => tf.tidy(() => g(xs));
      };
      expect(cpuAttentionAvailable(q, kT)).toBe(true);
      const ref = lossOf(false)([q, kT, v]);
      const got = lossOf(true)([q, kT, v]);
      setCpuFusedOps(false);
      const outRef = tf.tidy(() => tf.mul(attention(q, kT, v, mask), rowSeen));
      const outGot = tf.tidy(() => tf.mul(cpuAttention(q, kT, v, mask), rowSeen));
      expect(maxDiff(outGot, outRef)).toBeLessThan(1e-5);
      ref.forEach((g, i) => expect(maxDiff(got[i]!, g)).toBeLessThan(1e-5));
      // The gradients are not trivially zero.
      expect(tf.tidy(() => tf.max(tf.abs(got[1]!)).dataSync()[0]!)).toBeGreaterThan(1e-3);
      tf.dispose([q, kT, v, w, mask, rowSeen, ...ref, ...got, outRef, outGot]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

describe('fused CPU RMSNorm (ops.ts rmsNormCpu) against the TF.js ops', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });
  afterAll(() => setCpuFusedOps(true));

  it.each([
    [[3, 5, 24]],
    [[2, 3, 7]], // a row length off the SIMD width
    [[64, 8, 64]], // many rows adding into the gain's gradient
  ])('output and the gradients of x and of the gain within 1e-5, x %j', (shape: number[]) => {
    const before = tf.memory().numTensors;
    const D = shape[2]!;
    const x = tf.randomNormal(shape, 0, 2, 'float32', 11);
    const g = tf.randomNormal([D], 1, 0.3, 'float32', 12);
    const w = tf.randomNormal(shape, 0, 1, 'float32', 13);
    const run = (fused: boolean) => {
      setCpuFusedOps(fused);
      const grads = tf.grads((xx: tf.Tensor, gg: tf.Tensor) => tf.sum(tf.mul(rmsNorm(xx, gg as tf.Tensor1D, 1e-5), w)));
      return tf.tidy(() => [rmsNorm(x, g as tf.Tensor1D, 1e-5), ...grads([x, g])]);
    };
    const ref = run(false);
    const got = run(true);
    // [y, dx, dg]: 1e-5, relative to the largest value for the gain's gradient (a sum over every row, in float32 both ways).
    ref.forEach((r, i) => expect(maxDiff(got[i]!, r)).toBeLessThan(i === 2 ? 1e-5 * Math.max(1, tf.tidy(() => tf.max(tf.abs(r)).dataSync()[0]!)) : 1e-5));
    tf.dispose([x, g, w, ...ref, ...got]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
