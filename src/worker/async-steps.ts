// Trainer steps that read from the backend asynchronously, for WebGPU.
//
// Trainer.trainStep / evaluate / checkpoint read the loss, the gradient norm and the weights with
// dataSync(). On WebGPU a synchronous read goes through canvases (there is no synchronous GPU -> CPU
// copy), and in Chromium with SwiftShader that path destroys the device after a couple of dozen reads
// that follow real GPU work ("Device was destroyed"; every later call fails with "createBuffer failed
// … mappedAtCreation"). These versions do exactly the same operations in the same order and await
// data() instead, so they give the same numbers (src/worker/async-steps.test.ts checks it bit for bit
// against the Trainer) and never take the canvas path.
//
// One deliberate difference on WebGPU: the gradient norm's sum of squares is added in groups of at most
// maxStorageBuffersPerShaderStage - 1 tensors (see addNChunked), because the backend's AddN kernel fails
// with more inputs than that; elsewhere it is the same single tf.addN as clipByGlobalNorm.
//
// They write the Trainer's private counters the way trainStep does; the right fix is async variants in
// src/train/loop.ts itself (and a chunked addN in clipByGlobalNorm), after which this file can go.
import * as tf from '@tensorflow/tfjs-core';
import { maskedCrossEntropy } from '../train/loss';
import { collate, type EvalMetrics, type StepMetrics, type Trainer, type TrainerCheckpoint } from '../train/loop';

/** The Trainer's private step state (see src/train/loop.ts). */
interface TrainerState {
  smoothLoss: number | null;
  smoothCount: number;
  badSteps: number;
  lastValLoss: number | null;
  stepTimeEma: number | null;
  lastLoss: number;
}

interface AdamWMoments {
  m: tf.Variable[];
  v: tf.Variable[];
}

const state = (t: Trainer) => t as unknown as TrainerState;

/** Consecutive non-finite steps so far (the Trainer stops at config.maxBadSteps). */
export function badSteps(t: Trainer): number {
  return state(t).badSteps;
}

/**
 * Inputs one kernel may take on this backend. tfjs-backend-webgpu's AddN binds every input as a storage
 * buffer and does not split: past maxStorageBuffersPerShaderStage - 1 its pipeline is invalid, the whole
 * command buffer is dropped and the sum reads back as garbage (clipByGlobalNorm then never clips).
 */
function maxKernelInputs(): number {
  if (tf.getBackend() !== 'webgpu') return Infinity;
  const limits = (tf.backend() as unknown as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } }).device?.limits;
  return Math.max(2, (limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
}

/** tf.addN, in groups small enough for the backend (one kernel where it allows it). */
export function addNChunked(xs: tf.Tensor[], maxInputs = maxKernelInputs()): tf.Tensor {
  if (xs.length <= maxInputs) return tf.addN(xs);
  return tf.tidy(() => {
    let level = xs;
    while (level.length > maxInputs) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += maxInputs) {
        const group = level.slice(i, i + maxInputs);
        next.push(group.length === 1 ? group[0]! : tf.addN(group));
      }
      level = next;
    }
    return tf.addN(level);
  });
}

/** Global L2 norm of the gradients, then the same clipping as clipByGlobalNorm. */
async function clipAsync(grads: tf.Tensor[], maxNorm: number): Promise<{ grads: tf.Tensor[]; norm: number }> {
  const sq = tf.tidy(() => addNChunked(grads.map((g) => tf.sum(tf.square(g)))));
  const norm = Math.sqrt((await sq.data())[0]!);
  sq.dispose();
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { grads, norm };
  const s = maxNorm / (norm + 1e-6);
  const clipped = grads.map((g) => tf.mul(g, s));
  tf.dispose(grads);
  return { grads: clipped, norm };
}

/** Trainer.trainStep with asynchronous reads. */
export async function trainStepAsync(t: Trainer): Promise<StepMetrics> {
  const st = state(t);
  const t0 = performance.now();
  const c = t.config;
  const lr = t.lrAt(t.step);
  let tokens = 0;
  let lossSum = 0;
  let acc: tf.Tensor[] | null = null;
  if (t.adapter) t.adapter.training = true;
  try {
    for (let a = 0; a < c.gradAccum; a++) {
      const batch = collate(t.microBatch(t.micro++));
      tokens += batch.mask.flat().reduce((x, y) => x + y, 0);
      t.adapter?.setDropoutSeed(c.seed * 1_000_003 + t.step * 97 + a);
      const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(t.lm.forward(batch.ids, { mask: batch.mask }), batch.target, batch.weight), t.params);
      lossSum += (await value.data())[0]!;
      value.dispose();
      const g = t.params.map((p) => grads[p.name]!);
      if (!acc) acc = g;
      else {
        const sum: tf.Tensor[] = acc.map((x, i) => tf.add(x, g[i]!));
        tf.dispose([...acc, ...g]);
        acc = sum;
      }
    }
  } finally {
    if (t.adapter) t.adapter.training = false;
  }
  let grads = acc!;
  if (c.gradAccum > 1) {
    const avg = grads.map((g) => tf.div(g, c.gradAccum));
    tf.dispose(grads);
    grads = avg;
  }
  const loss = lossSum / c.gradAccum;
  const clipped = await clipAsync(grads, c.maxGradNorm);
  grads = clipped.grads;
  let skipped: string | undefined;
  if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
    skipped = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${clipped.norm}`;
    st.badSteps++;
  } else {
    t.optimizer.apply(grads, lr);
    st.badSteps = 0;
    st.lastLoss = loss;
    st.smoothCount++;
    st.smoothLoss = 0.9 * (st.smoothLoss ?? 0) + 0.1 * loss;
  }
  tf.dispose(grads);
  t.step++;
  const dt = (performance.now() - t0) / 1000;
  st.stepTimeEma = st.stepTimeEma === null ? dt : 0.8 * st.stepTimeEma + 0.2 * dt;
  const smooth = st.smoothLoss === null ? NaN : st.smoothLoss / (1 - 0.9 ** st.smoothCount);
  const mem = tf.memory();
  return {
    step: t.step,
    totalSteps: t.totalSteps,
    epoch: t.epoch,
    loss,
    smoothLoss: Number.isFinite(smooth) ? smooth : loss,
    lr,
    gradNorm: clipped.norm,
    tokens,
    tokensPerSec: tokens / dt,
    etaSec: st.stepTimeEma * (t.totalSteps - t.step),
    memory: { numTensors: mem.numTensors, numBytes: mem.numBytes },
    backend: tf.getBackend(),
    skipped,
  };
}

/**
 * Trainer.evaluate with asynchronous reads. With `yieldEveryMs` it also lets the event loop run between
 * batches (a validation split can take seconds), so the worker keeps answering meanwhile.
 */
export async function evaluateAsync(t: Trainer, examples = t.val, yieldEveryMs = Infinity): Promise<EvalMetrics> {
  let nll = 0;
  let tokens = 0;
  let last = performance.now();
  for (let i = 0; i < examples.length; i += t.config.batchSize) {
    if (performance.now() - last > yieldEveryMs) {
      await new Promise((r) => setTimeout(r, 0));
      last = performance.now();
    }
    const batch = collate(examples.slice(i, i + t.config.batchSize));
    const n = batch.weight.flat().reduce((a, b) => a + b, 0);
    if (!n) continue;
    const loss = tf.tidy(() => maskedCrossEntropy(t.lm.forward(batch.ids, { mask: batch.mask }), batch.target, batch.weight));
    nll += (await loss.data())[0]! * n;
    loss.dispose();
    tokens += n;
  }
  const valLoss = tokens ? nll / tokens : NaN;
  state(t).lastValLoss = valLoss;
  return { step: t.step, valLoss, valPpl: Math.exp(valLoss), tokens };
}

/** Downloads the given tensors so that dataSync() on them reads the backend's CPU copy. */
export async function prefetch(tensors: readonly tf.Tensor[]): Promise<void> {
  await Promise.all(tensors.map((x) => x.data()));
}

/** Trainer.checkpoint, with the weights and moments downloaded asynchronously first. */
export async function checkpointAsync(t: Trainer): Promise<TrainerCheckpoint> {
  const opt = t.optimizer as unknown as AdamWMoments;
  await prefetch([...t.params, ...opt.m, ...opt.v]);
  return t.checkpoint();
}
