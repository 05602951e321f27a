import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './backend';
import { ropeCpu, ropePassJs, swigluCpu } from './cpu-fused';
import { rotateHalfMatrix } from './llama';
import { silu } from './ops';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`fused CPU SwiGLU and RoPE (cpu-fused.ts) against the TF.js ops, ${backend}`, () => {
    beforeAll(async () => {
      await setupBackend(backend);
    });

    it('SwiGLU: output and both gradients within 1e-5 (sizes off the SIMD width included)', () => {
      for (const shape of [[2, 3, 7], [1, 1, 1], [4, 16]]) {
        const before = tf.memory().numTensors;
        const g = tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 1), 3)); // wide range: sigmoid's tails
        const u = tf.randomNormal(shape, 0, 1, 'float32', 2);
        const w = tf.randomNormal(shape, 0, 1, 'float32', 3);
        const ref = tf.tidy(() => tf.mul(silu(g), u));
        const got = tf.tidy(() => swigluCpu(g, u));
        expect(maxDiff(got, ref)).toBeLessThan(1e-5);
        const lossRef = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.mul(silu(a), b), w)));
        const lossGot = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(swigluCpu(a, b), w)));
        const gr = lossRef([g, u]);
        const gg = lossGot([g, u]);
        gr.forEach((r, i) => expect(maxDiff(gg[i]!, r)).toBeLessThan(1e-5));
        expect(tf.tidy(() => tf.max(tf.abs(gg[0]!)).dataSync()[0]!)).toBeGreaterThan(1e-2);
        tf.dispose([g, u, w, ref, got, ...gr, ...gg]);
        expect(tf.memory().numTensors).toBe(before);
      }
    });

    it.each([8, 6, 12])('RoPE, head size %i: output and gradient within 1e-5 of x cos + (x R) sin; the JavaScript fallback agrees', (hd: number) => {
      const [B, N, T] = [2, 3, 5];
      const before = tf.memory().numTensors;
      const x = tf.randomNormal([B, N, T, hd], 0, 1, 'float32', 4);
      const w = tf.randomNormal([B, N, T, hd], 0, 1, 'float32', 5);
      const ang = tf.randomUniform([B, 1, T, hd], -3, 3, 'float32', 6);
      const cos = tf.cos(ang);
      const sin = tf.sin(ang);
      const rot = rotateHalfMatrix(hd);
      const ref = (a: tf.Tensor) => tf.add(tf.mul(a, cos), tf.mul(tf.reshape(tf.matMul(tf.reshape(a, [-1, hd]), rot), a.shape), sin));
      const outRef = tf.tidy(() => ref(x));
      const outGot = tf.tidy(() => ropeCpu(x, cos, sin));
      expect(maxDiff(outGot, outRef)).toBeLessThan(1e-5);
      const [gr] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(ref(a), w)))([x]);
      const [gg] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(ropeCpu(a, cos, sin), w)))([x]);
      expect(maxDiff(gg!, gr!)).toBeLessThan(1e-5);
      expect(tf.tidy(() => tf.max(tf.abs(gg!)).dataSync()[0]!)).toBeGreaterThan(1e-2);
      // The JavaScript pass (used where WebAssembly SIMD is missing), forward and backward, against the same references.
      const c = cos.dataSync() as Float32Array;
      const s = sin.dataSync() as Float32Array;
      const jsOut = tf.tensor(ropePassJs(x.dataSync() as Float32Array, c, s, [B, N, T, hd], false), x.shape);
      const dy = w.dataSync() as Float32Array; // the loss sum(rope(x) w) has dy = w
      const jsGrad = tf.tensor(ropePassJs(dy, c, s, [B, N, T, hd], true), x.shape);
      expect(maxDiff(jsOut, outRef)).toBeLessThan(1e-5);
      expect(maxDiff(jsGrad, gr!)).toBeLessThan(1e-5);
      tf.dispose([x, w, ang, cos, sin, rot, outRef, outGot, gr!, gg!, jsOut, jsGrad]);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
