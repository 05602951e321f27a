// attention() on tfjs-wasm runs one (sequence, key/value head) pair at a time (faster there); the
// batched form is the reference: both must give the same output and the same gradients, padding and
// grouped-query heads included. The embedding's hand-written gradient is checked against one-hot math.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './backend';
import { attention, attentionMask, embedding, gatherRowsCpu, setCpuFusedOps, setPerEntryAttention } from './ops';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

describe('ops on wasm', () => {
  beforeAll(async () => {
    expect((await setupBackend('wasm')).name).toBe('wasm');
    setCpuFusedOps(false); // the TF.js paths (the fused ones are checked against them in cpu-attention.test.ts)
  });
  afterAll(() => {
    setPerEntryAttention(true);
    setCpuFusedOps(true);
  });

  it('gatherRowsCpu: the rows tf.gather takes, ids repeated and in any order; an id outside the table is refused', () => {
    const table = tf.randomNormal([7, 5], 0, 1, 'float32', 6) as tf.Tensor2D;
    const ids = [3, 0, 6, 3, 1];
    const got = gatherRowsCpu(table, ids);
    const ref = tf.gather(table, tf.tensor1d(ids, 'int32'));
    expect(got.shape).toEqual([5, 5]);
    expect(maxDiff(got, ref)).toBe(0);
    expect(() => gatherRowsCpu(table, [2, 7])).toThrow(/token id 7 is outside the embedding table \(0\.\.6\)/);
    expect(() => gatherRowsCpu(table, [-1])).toThrow(/outside the embedding table/);
    tf.dispose([table, got, ref]);
  });

  it('per-entry attention equals batched attention, values and gradients (GQA, padding, past keys)', () => {
    const [B, H, KV, T, hd, past] = [3, 4, 2, 9, 8, 2];
    const S = past + T;
    const q = tf.randomNormal([B, H, T, hd], 0, 1, 'float32', 1);
    const kT = tf.randomNormal([B, KV, hd, S], 0, 1, 'float32', 2);
    const v = tf.randomNormal([B, KV, S, hd], 0, 1, 'float32', 3);
    const w = tf.randomNormal([B, T, H * hd], 0, 1, 'float32', 4);
    const keyMask = [Array(S).fill(1), [0, 0, 0, ...Array(S - 3).fill(1)], [0, ...Array(S - 1).fill(1)]];
    const mask = attentionMask(keyMask, past, T);
    const run = (perEntry: boolean) => {
      setPerEntryAttention(perEntry);
      const before = tf.memory().numTensors;
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attention(a, b, c, mask), w));
      const out = tf.tidy(() => attention(q, kT, v, mask));
      const grads = tf.grads(f)([q, kT, v]);
      expect(tf.memory().numTensors - before).toBe(4);
      return { out, grads };
    };
    const ref = run(false);
    const per = run(true);
    expect(maxDiff(per.out, ref.out)).toBeLessThan(1e-5);
    per.grads.forEach((g, i) => expect(maxDiff(g, ref.grads[i]!)).toBeLessThan(1e-4));
    tf.dispose([q, kT, v, w, mask, ref.out, per.out, ...ref.grads, ...per.grads]);
  });

  it("a trainable embedding's gradient sums dy into the rows of the ids it looked up (repeats included)", () => {
    const table = tf.randomNormal([7, 3], 0, 1, 'float32', 5) as tf.Tensor2D;
    const ids = [
      [1, 4, 1],
      [6, 0, 1],
    ];
    const dyw = tf.randomNormal([2, 3, 3], 0, 1, 'float32', 6);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embedding(t as tf.Tensor2D, ids, true), dyw)))(table);
    const oh = tf.oneHot(tf.tensor1d(ids.flat(), 'int32'), 7).cast('float32'); // [6, 7]
    const expected = tf.matMul(oh, tf.reshape(dyw, [6, 3]), true, false); // [7, 3]
    expect(maxDiff(g, expected)).toBeLessThan(1e-6);
    const fwd = embedding(table, ids, true);
    expect(maxDiff(fwd, tf.reshape(tf.gather(table, ids.flat()), [2, 3, 3]))).toBe(0);
    tf.dispose([table, dyw, g, oh, expected, fwd]);
  });
});
