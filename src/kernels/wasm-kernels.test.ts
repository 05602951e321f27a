import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs'; // gradients of the core ops
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';

describe('wasm Identity and Cast share their input buffer (wasm-kernels.ts)', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });

  it('a clone reads the same values, survives its original and frees the buffer with the last holder', () => {
    const before = tf.memory();
    const x = tf.tensor([1.5, -2, 3.25, 4]);
    const c = tf.clone(x);
    // Shared: one buffer for two tensors.
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers + 1);
    expect(tf.memory().numTensors).toBe(before.numTensors + 2);
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual([1.5, -2, 3.25, 4]);
    const y = tf.add(c, 1); // a kernel reading the shared buffer after the original is gone
    expect(Array.from(y.dataSync())).toEqual([2.5, -1, 4.25, 5]);
    tf.dispose([c, y]);
    expect(tf.memory().numDataBuffers).toBe(before.numDataBuffers);
    expect(tf.memory().numBytes).toBe(before.numBytes);
  });

  it('a Cast to the same dtype shares; to another dtype it converts', () => {
    const x = tf.tensor([1.7, -2.2, 3]);
    const same = tf.cast(x, 'float32');
    const int = tf.cast(x, 'int32');
    expect(Array.from(same.dataSync())).toEqual(Array.from(x.dataSync()));
    expect(int.dtype).toBe('int32');
    expect(Array.from(int.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([x, same, int]);
  });

  it('gradients through saved (cloned) tensors are unchanged and leave no tensors behind', () => {
    const x = tf.variable(tf.tensor2d([[0.5, -1, 2], [3, 0.25, -0.75]]));
    const w = tf.tensor2d([[1, 2], [-1, 0.5], [0.3, -0.2]]);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(tf.sigmoid(x), w))) as tf.Scalar, [x]);
    // d/dx sum((s(x) w)^2) = (2 (s(x) w) w^T) * s(x) (1 - s(x))
    const ref = tf.tidy(() => {
      const s = tf.sigmoid(x);
      return tf.mul(tf.matMul(tf.mul(tf.matMul(s, w), 2), tf.transpose(w)), tf.mul(s, tf.sub(1, s)));
    });
    const g = grads[x.name]!;
    expect(tf.tidy(() => tf.max(tf.abs(tf.sub(g, ref))).dataSync()[0]!)).toBeLessThan(1e-6);
    tf.dispose([value, g, ref]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w]);
  });
});
