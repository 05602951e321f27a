// The WebGPU kernels themselves run only in a browser with WebGPU (e2e/webgpu-kernels.spec.ts checks them
// against TF.js's ops); here, in Node, that they stay off elsewhere and say why when called anyway.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../../model/backend';
import { gpuFusedOps, rmsNorm, setGpuFusedOps } from '../../model/ops';
import { rmsNormGpu } from './rms-norm';

describe('fused WebGPU ops off WebGPU', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });
  afterAll(() => setGpuFusedOps(true));

  it('are not used on another backend, switched on or not', () => {
    setGpuFusedOps(true);
    expect(gpuFusedOps()).toBe(false);
    const x = tf.tensor2d([[1, 2, 3]]);
    const g = tf.tensor1d([1, 1, 1]);
    const y = rmsNorm(x, g, 1e-6).dataSync();
    const r = 1 / Math.sqrt(14 / 3 + 1e-6);
    [1, 2, 3].forEach((v, i) => expect(y[i]).toBeCloseTo(v * r, 5));
    tf.dispose([x, g]);
  });

  it('called directly, a kernel names the backend in use and the switch', () => {
    const x = tf.tensor2d([[1, 2, 3]]);
    const g = tf.tensor1d([1, 1, 1]);
    expect(() => rmsNormGpu(x, g, 1e-6)).toThrow(/needs the webgpu backend, but TF\.js runs on cpu: turn the fused GPU ops off \(setGpuFusedOps\(false\)\)/);
    tf.dispose([x, g]);
  });
});
