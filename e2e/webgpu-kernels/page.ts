// The page e2e/webgpu-kernels.spec.ts opens (served by a Vite dev server): on TF.js's WebGPU backend it runs
// each of tabtune's fused WGSL kernels (src/kernels/webgpu) and the plain TF.js ops they replace on the same
// random inputs, and reports the largest absolute difference of the values and of every gradient (tf.grads of
// a random weighted sum of the output), plus one LoRA training step of a whole model both ways.
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../../src/model/backend';
import { attention, attentionMask, gpuFusedOps, rmsNorm, setGpuFusedAttention, setGpuFusedOps, swiglu } from '../../src/model/ops';
import { gpuProgramRuns } from '../../src/kernels/webgpu/program';
import { ropeGpu } from '../../src/kernels/webgpu/rope';
import { rotateHalfMatrix } from '../../src/model/llama';
import { frozenMatMul } from '../../src/model/ops';
import { maskedCrossEntropy } from '../../src/train/loss';
import { loadModel } from '../../src/io/load-model';
import { urlSource } from '../../src/io/sources';
import { LoraAdapter } from '../../src/lora/adapter';
import { seededRandom } from '../../src/util/random';

export interface KernelCheck {
  name: string;
  /** max |fused - TF.js| of the op's value */
  value: number;
  /** max |fused - TF.js| of each gradient, in input order */
  grads: number[];
  /** the largest |value| and |gradient| of the TF.js path, for scale */
  scale: number;
  /** tensors still alive after the check minus before (0: nothing leaked) */
  leaked: number;
  /** tabtune WGSL programs run with the fused ops off and on (0 and > 0: the fused path really ran) */
  programs: [number, number];
}

export interface ModelCheck {
  name: string;
  loss: [number, number];
  /** max |fused - TF.js| over every LoRA gradient */
  grads: number;
  scale: number;
  /** numTensors after each of several fused training steps */
  numTensors: number[];
  programs: [number, number];
  /** max |difference| of the gradients between two runs of the same step: fused, TF.js ops */
  repeat: [number, number];
}

// Reads are asynchronous: tfjs-backend-webgpu's dataSync goes through OffscreenCanvas copies, which read zeros on SwiftShader here.
async function read(t: tf.Tensor): Promise<number> {
  const v = (await t.data())[0]!;
  t.dispose();
  return v;
}
const maxDiff = (a: tf.Tensor, b: tf.Tensor): Promise<number> => read(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b)))));
const maxAbs = (a: tf.Tensor): Promise<number> => read(tf.tidy(() => tf.max(tf.abs(a))));
const maxOf = async (xs: Promise<number>[]): Promise<number> => Math.max(...(await Promise.all(xs)));

let seed = 1;
const rand = (shape: number[], scale = 1): tf.Tensor => tf.randomNormal(shape, 0, scale, 'float32', seed++);

/** `f` on `inputs` with the fused GPU ops on and off: value and gradients of sum(f(...) * w). */
async function compare(name: string, inputs: tf.Tensor[], f: (...x: tf.Tensor[]) => tf.Tensor): Promise<KernelCheck> {
  const before = tf.memory().numTensors;
  const w = tf.tidy(() => rand(f(...inputs).shape)); // the same weights for both paths
  const run = (fused: boolean) => {
    setGpuFusedOps(fused);
    const runs = gpuProgramRuns();
    const value = tf.tidy(() => f(...inputs));
    const grads = tf.grads((...x: tf.Tensor[]) => tf.sum(tf.mul(f(...x), w)))(inputs);
    return { value, grads, programs: gpuProgramRuns() - runs };
  };
  const off = run(false);
  const on = run(true);
  setGpuFusedOps(true);
  const check = {
    programs: [off.programs, on.programs] as [number, number],
    name,
    value: await maxDiff(on.value, off.value),
    grads: await Promise.all(on.grads.map((g, i) => maxDiff(g, off.grads[i]!))),
    scale: await maxOf([maxAbs(off.value), ...off.grads.map(maxAbs)]),
    leaked: 0,
  };
  tf.dispose([w, on.value, off.value, ...on.grads, ...off.grads]);
  check.leaked = tf.memory().numTensors - before;
  return check;
}

async function checkRmsNorm(shape: number[]): Promise<KernelCheck> {
  const D = shape[shape.length - 1]!;
  const x = rand(shape, 2);
  const g = tf.add(rand([D], 0.5), 1) as tf.Tensor1D;
  const c = await compare(`rmsNorm ${shape.join('x')}`, [x, g], (xi, gi) => rmsNorm(xi!, gi as tf.Tensor1D, 1e-5));
  tf.dispose([x, g]);
  return c;
}

async function checkSwiglu(shape: number[]): Promise<KernelCheck> {
  const gate = rand(shape, 3);
  const up = rand(shape);
  const c = await compare(`swiglu ${shape.join('x')}`, [gate, up], (a, b) => swiglu(a!, b!));
  tf.dispose([gate, up]);
  return c;
}

/** RoPE as llama.ts computes it without the fused op (rotate_half as a matMul) vs ropeGpu. */
async function checkRope(B: number, N: number, T: number, hd: number): Promise<KernelCheck> {
  const x = rand([B, N, T, hd]);
  const angles = tf.mul(tf.randomUniform([B, 1, T, hd / 2], 0, 1, 'float32', seed++), 40);
  const a = tf.concat([angles, angles], 3);
  const cos = tf.cos(a);
  const sin = tf.sin(a);
  const rot = rotateHalfMatrix(hd);
  const plain = (xi: tf.Tensor) => {
    const xr = tf.reshape(frozenMatMul(tf.reshape(xi, [-1, hd]) as tf.Tensor2D, rot), xi.shape);
    return tf.add(tf.mul(xi, cos), tf.mul(xr, sin));
  };
  const c = await compare(`rope ${[B, N, T, hd].join('x')}`, [x], (xi) => (gpuFusedOps() ? ropeGpu(xi!, cos, sin) : plain(xi!)));
  tf.dispose([x, angles, a, cos, sin, rot]);
  return c;
}

/** keyMask rows: row 0 sees everything, row 1 starts with `pad` padding keys (its first queries see none). */
async function checkAttention(B: number, H: number, KV: number, T: number, hd: number, past: number, pad: number): Promise<KernelCheck> {
  const S = past + T;
  const q = rand([B, H, T, hd]);
  const kT = rand([B, KV, hd, S]);
  const v = rand([B, KV, S, hd]);
  const keyMask = Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, j) => (b % 2 === 1 && j < pad ? 0 : 1)));
  const mask = attentionMask(keyMask, past, T);
  const c = await compare(`attention B${B} H${H} KV${KV} T${T} past${past} hd${hd} pad${pad}`, [q, kT, v], (a, b, d) => attention(a!, b!, d!, mask));
  tf.dispose([q, kT, v, mask]);
  return c;
}

async function checkCrossEntropy(B: number, T: number, V: number): Promise<KernelCheck> {
  const logits = rand([B, T, V], 3);
  const r = seededRandom(seed++);
  const targets = Array.from({ length: B }, () => Array.from({ length: T }, () => Math.floor(r() * V)));
  // masked positions (weight 0), one with an out-of-vocabulary target as padding rows carry; weights 0..2
  const weights = targets.map((row, b) => row.map((_, t) => (t === 0 || (b === 1 && t >= T - 2) ? 0 : 1 + Math.floor(r() * 2))));
  if (B > 1) targets[1]![T - 1] = -100;
  const c = await compare(`cross-entropy ${[B, T, V].join('x')} (masked rows)`, [logits], (l) => maskedCrossEntropy(l!, targets, weights));
  logits.dispose();
  return c;
}

export async function kernelChecks(): Promise<KernelCheck[]> {
  const checks = [
    () => checkRmsNorm([3, 5, 67]),
    () => checkRmsNorm([2, 70, 200]),
    () => checkSwiglu([2, 7, 131]),
    () => checkRope(2, 3, 5, 16),
    () => checkRope(1, 2, 1, 8),
    () => checkCrossEntropy(2, 5, 301),
    () => checkCrossEntropy(1, 3, 4096),
    () => checkAttention(2, 4, 2, 9, 16, 0, 3),
    () => checkAttention(1, 2, 1, 1, 8, 3, 0),
    () => checkAttention(2, 6, 2, 1, 12, 0, 0),
    () => checkAttention(2, 3, 3, 70, 72, 0, 5),
    () => checkAttention(2, 4, 2, 5, 16, 66, 2),
  ];
  const out: KernelCheck[] = [];
  for (const c of checks) out.push(await c());
  return out;
}

/** One LoRA training step (loss and gradients) of the model at `url` with the fused GPU ops on and off. */
export async function modelCheck(url: string): Promise<ModelCheck> {
  const model = await loadModel(urlSource(url, { cacheName: false }));
  const lm = model.lm;
  const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, { seed: 3 });
  const r = seededRandom(11);
  for (const m of ad.modules.values()) m.B.assign(tf.tensor(Array.from({ length: m.B.size }, () => (r() - 0.5) * 0.2), m.B.shape));
  const V = model.info.vocabSize;
  const T = 12;
  const ids = [Array.from({ length: T }, (_, t) => (t * 37 + 5) % V), [3, 3, 3, ...Array.from({ length: T - 3 }, (_, t) => (t * 91 + 11) % V)]];
  const mask = [Array(T).fill(1) as number[], [0, 0, 0, ...(Array(T - 3).fill(1) as number[])]];
  const targets = ids.map((row) => [...row.slice(1), 0]);
  const weights = mask.map((row) => row.map((m, t) => (m && t < T - 1 ? 1 : 0)));
  const vars = ad.variables();
  const step = async (fused: boolean) => {
    setGpuFusedOps(fused);
    const runs = gpuProgramRuns();
    const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(lm.forward(ids, { mask }), targets, weights), vars);
    return { loss: await read(value), grads: vars.map((v) => grads[v.name]!), programs: gpuProgramRuns() - runs };
  };
  const off = await step(false);
  const on = await step(true);
  const numTensors: number[] = [];
  const repeat: [number, number] = [0, 0];
  for (let i = 0; i < 3; i++) {
    const s = await step(true);
    repeat[0] = Math.max(repeat[0], await maxOf(s.grads.map((g, k) => maxDiff(g, on.grads[k]!))));
    tf.dispose(s.grads);
    numTensors.push(tf.memory().numTensors);
  }
  const off2 = await step(false);
  repeat[1] = await maxOf(off2.grads.map((g, k) => maxDiff(g, off.grads[k]!)));
  tf.dispose(off2.grads);
  setGpuFusedOps(true);
  const check = {
    name: `${model.name}: one LoRA step (r 4, every projection), batch 2 x ${T}, one row padded`,
    loss: [on.loss, off.loss] as [number, number],
    grads: await maxOf(on.grads.map((g, i) => maxDiff(g, off.grads[i]!))),
    scale: await maxOf(off.grads.map(maxAbs)),
    numTensors,
    programs: [off.programs, on.programs] as [number, number],
    repeat,
  };
  tf.dispose([...on.grads, ...off.grads]);
  ad.dispose();
  model.dispose();
  return check;
}

async function start(): Promise<{ backend: string; adapter: string }> {
  const report = await setupBackend('webgpu');
  setGpuFusedAttention(true); // off in the app (see ops.ts): checked here with the other kernels
  return { backend: report.name, adapter: report.adapter ? JSON.stringify(report.adapter) : 'unknown' };
}

(globalThis as { tabtuneKernels?: unknown }).tabtuneKernels = { start, kernelChecks, modelCheck };
