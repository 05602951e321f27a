import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from './backend';
import { dropoutCpu, ropeCpu, ropePassJs, swigluCpu } from './cpu-fused';
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

    it('dropout: keeps about 1 - p of the elements scaled by 1 / (1 - p), the same mask for the same seed, its gradient through that mask', () => {
      const before = tf.memory().numTensors;
      const n = 100_003; // not a multiple of the SIMD width
      const x = tf.randomUniform([n], 0.5, 1.5, 'float32', 7);
      const xs = x.dataSync();
      for (const p of [0.05, 0.5]) {
        const y = dropoutCpu(x, p, 1234);
        const ys = y.dataSync();
        let kept = 0;
        for (let i = 0; i < n; i++) {
          if (ys[i] === 0) continue;
          kept++;
          expect(Math.abs(ys[i]! - xs[i]! / (1 - p))).toBeLessThan(1e-6);
        }
        // Binomial: 5 standard deviations.
        expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
        // The same seed draws the same mask; another seed another one; the tail (past the last multiple of 4) too.
        const again = dropoutCpu(x, p, 1234);
        const other = dropoutCpu(x, p, 1235);
        expect(Array.from(again.dataSync())).toEqual(Array.from(ys));
        const od = other.dataSync();
        let differ = 0;
        for (let i = 0; i < n; i++) if ((od[i] === 0) !== (ys[i] === 0)) differ++;
        expect(differ).toBeGreaterThan(n * p * (1 - p));
        // d sum(dropout(x) w) / dx = w / (1 - p) where kept, 0 where dropped: the forward's mask.
        const w = tf.randomNormal([n], 0, 1, 'float32', 8);
        const [g] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(dropoutCpu(a, p, 1234), w)))([x]);
        const gs = g!.dataSync();
        const ws = w.dataSync();
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(gs[i]! - (ys[i] === 0 ? 0 : ws[i]! / (1 - p))));
        expect(worst).toBeLessThan(1e-6);
        tf.dispose([y, again, other, w, g!]);
      }
      x.dispose();
      expect(tf.memory().numTensors).toBe(before);
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
