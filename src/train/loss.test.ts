import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { setCpuFusedOps } from '../model/ops';
import { seededRandom } from '../util/random';
import { maskedCrossEntropy } from './loss';

describe('masked cross-entropy: the fused CPU op (SIMD exp) against the TF.js ops', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });
  afterAll(() => setCpuFusedOps(true));

  it('loss and gradient within 1e-5 relative, masked and fractional weights, logits up to +-40, a vocabulary not a multiple of 4', () => {
    const [B, T, V] = [3, 5, 37];
    const rand = seededRandom(3);
    const targets = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * V)));
    const weights = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b === 1 && t < 2 ? 0 : t === 4 ? 0.5 : 1)));
    const before = tf.memory().numTensors;
    const logits = tf.tidy(() => tf.mul(tf.randomNormal([B, T, V], 0, 1, 'float32', 7), tf.linspace(1, 40, V))); // some logits far from 0
    const run = (fused: boolean) => {
      setCpuFusedOps(fused);
      const { value, grads } = tf.tidy(() => {
        const g = tf.valueAndGrad((l: tf.Tensor) => maskedCrossEntropy(l, targets, weights));
        const r = g(logits);
        return { value: r.value, grads: r.grad };
      });
      return { loss: value.dataSync()[0]!, grad: grads.dataSync() as Float32Array, dispose: () => tf.dispose([value, grads]) };
    };
    const ref = run(false);
    const got = run(true);
    expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    let scale = 0;
    let diff = 0;
    ref.grad.forEach((x, i) => {
      scale = Math.max(scale, Math.abs(x));
      diff = Math.max(diff, Math.abs(x - got.grad[i]!));
    });
    expect(diff / scale).toBeLessThan(1e-5);
    // masked positions get no gradient at all
    for (let v = 0; v < V; v++) expect(got.grad[(1 * T + 0) * V + v]).toBe(0);
    ref.dispose();
    got.dispose();
    logits.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('more rows than one chunk of the SIMD arena (N x V above 4M floats): the same loss and gradient', () => {
    const [B, T, V] = [2, 600, 4096];
    const rand = seededRandom(8);
    const targets = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(rand() * V)));
    const weights = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b === 1 && t > 500 ? 0 : 1)));
    const logits = tf.randomNormal([B, T, V], 0, 3, 'float32', 9);
    const run = (fused: boolean) => {
      setCpuFusedOps(fused);
      return tf.tidy(() => {
        const r = tf.valueAndGrad((l: tf.Tensor) => maskedCrossEntropy(l, targets, weights))(logits);
        return [r.value.dataSync()[0]!, r.grad.dataSync() as Float32Array] as const;
      });
    };
    const [lossRef, gRef] = run(false);
    const [loss, g] = run(true);
    expect(Math.abs(loss - lossRef) / lossRef).toBeLessThan(1e-5);
    let diff = 0;
    let scale = 0;
    gRef.forEach((x, i) => {
      scale = Math.max(scale, Math.abs(x));
      diff = Math.max(diff, Math.abs(x - g[i]!));
    });
    expect(diff / scale).toBeLessThan(1e-5);
    logits.dispose();
  });

  it('another forward between a forward and its backward (the arena it kept taken over): the same gradient', () => {
    const [B, T, V] = [2, 3, 11];
    const targets = [[1, 2, 3], [4, 5, 6]];
    const weights = [[1, 1, 0], [1, 0.5, 1]];
    const logits = tf.randomNormal([B, T, V], 0, 2, 'float32', 4);
    const other = tf.randomNormal([B, T, V], 0, 2, 'float32', 5);
    const grad = (between: boolean, fused: boolean) => {
      setCpuFusedOps(fused);
      return tf.tidy(() =>
        tf.grad((l: tf.Tensor) => {
          const loss = maskedCrossEntropy(l, targets, weights);
          if (between) tf.dispose(maskedCrossEntropy(other, targets, weights)); // e.g. an evaluation
          return loss;
        })(logits).dataSync() as Float32Array,
      );
    };
    const ref = grad(false, false);
    for (const between of [false, true]) {
      const g = grad(between, true);
      ref.forEach((x, i) => expect(Math.abs(x - g[i]!)).toBeLessThan(1e-6));
    }
    tf.dispose([logits, other]);
  });

  it('a target outside the vocabulary at a trained position is refused; masked positions may hold anything', () => {
    setCpuFusedOps(true);
    const l = tf.zeros([1, 2, 5]);
    expect(() => maskedCrossEntropy(l, [[1, 9]], [[1, 1]])).toThrow(/outside the vocabulary/);
    const loss = maskedCrossEntropy(l, [[1, -100]], [[1, 0]]);
    expect(loss.dataSync()[0]).toBeCloseTo(Math.log(5), 5);
    tf.dispose([l, loss]);
  });
});
