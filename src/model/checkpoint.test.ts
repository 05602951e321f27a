// Activation recomputation (checkpoint.ts) must not change what a step computes: the loss and every gradient
// with `recompute` equal those without, for each way tabtune trains (LoRA on every linear layer with dropout,
// OFT with module dropout and COFT, prompt tuning, every weight), on the CPU and WASM backends with and
// without tabtune's fused CPU ops; dropout draws the same masks in the recompute as in the forward; and a
// run with it keeps the tensor count flat from step to step.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import { OftAdapter } from '../oft/adapter';
import { PromptTuningAdapter } from '../prompt/adapter';
import { tinyConfig, tinyModel, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { DEFAULT_TRAIN, GPT2_TARGETS, LLAMA_TARGETS, type TrainConfig } from '../train/config';
import { maskedCrossEntropy } from '../train/loss';
import { Trainer, type Example, type TrainableAdapter } from '../train/loop';
import { seededRandom } from '../util/random';
import { setupBackend } from './backend';
import type { CausalLM } from './causal-lm';
import { buildCausalLM } from './load';
import { setCpuFusedOps } from './ops';

const LLAMA: TinySpec = { arch: 'llama', vocab: 40, hidden: 16, layers: 3, heads: 4, kvHeads: 2, seed: 3 };
const GPT2: TinySpec = { arch: 'gpt2', vocab: 40, hidden: 16, layers: 2, heads: 2, seed: 4 };

// Two rows, the second right-padded (its last positions masked out of attention and of the loss).
const IDS = [
  [1, 5, 7, 9, 3, 4, 8, 11, 6, 2],
  [1, 6, 3, 12, 30, 22, 0, 0, 0, 0],
];
const MASK = IDS.map((r, b) => r.map((_, t) => (b === 1 && t >= 6 ? 0 : 1)));
const TARGET = IDS.map((r) => [...r.slice(1), 2]);
const WEIGHT = MASK.map((r) => r.map((m, t) => (t === 0 ? 0 : m)));

/** Overwrites every variable with seeded random values (LoRA's B and OFT's weights start at zero: no gradient would reach much). */
function randomize(vars: readonly tf.Variable[], scale: number, seed: number): void {
  vars.forEach((v, i) => tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, scale, 'float32', seed + i))));
}

/** The loss and each variable's gradient of one training forward (the adapter in training mode, its dropout seeded). */
function step(lm: CausalLM, vars: tf.Variable[], adapter: TrainableAdapter | null, recompute: boolean): { loss: number; grads: Float32Array[] } {
  if (adapter) {
    adapter.training = true;
    adapter.setDropoutSeed(1234);
  }
  try {
    const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(lm.forward(IDS, { mask: MASK, recompute }), TARGET, WEIGHT), vars);
    const out = { loss: value.dataSync()[0]!, grads: vars.map((v) => grads[v.name]!.dataSync() as Float32Array) };
    tf.dispose([value, ...Object.values(grads)]);
    return out;
  } finally {
    if (adapter) adapter.training = false;
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** With and without recompute: same loss, same gradients (to 1e-5), the tensor count back where it was. */
function expectSameStep(lm: CausalLM, vars: tf.Variable[], adapter: TrainableAdapter | null): { loss: number; grads: Float32Array[] } {
  const plain = step(lm, vars, adapter, false);
  const before = tf.memory().numTensors;
  const re = step(lm, vars, adapter, true);
  expect(tf.memory().numTensors).toBe(before);
  expect(Math.abs(re.loss - plain.loss)).toBeLessThan(1e-5);
  plain.grads.forEach((g, i) => {
    expect(g.some((x) => x !== 0)).toBe(true); // a gradient that reaches the variable
    expect(maxAbsDiff(re.grads[i]!, g), vars[i]!.name).toBeLessThan(1e-5);
  });
  return plain;
}

const cases: { backend: 'cpu' | 'wasm'; fused: boolean }[] = [
  { backend: 'cpu', fused: true },
  { backend: 'wasm', fused: true },
  { backend: 'wasm', fused: false },
];

describe.each(cases)('activation recomputation on $backend (fused CPU ops: $fused)', ({ backend, fused }) => {
  it('sets up the backend', async () => {
    expect((await setupBackend(backend)).name).toBe(backend);
    setCpuFusedOps(fused);
  });
  afterAll(() => setCpuFusedOps(true));

  it('LoRA on every linear layer with dropout: the same loss and gradients, the same dropout masks replayed', () => {
    const lm = tinyModel(LLAMA);
    const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0.2, target_modules: LLAMA_TARGETS }, { seed: 5 });
    randomize(ad.variables(), 0.2, 10);
    const withDropout = expectSameStep(lm, ad.variables(), ad);
    // Dropout really acts here (so a recompute drawing other masks would have failed above).
    const noDropout = step(lm, ad.variables(), null, false);
    expect(Math.abs(noDropout.loss - withDropout.loss)).toBeGreaterThan(1e-4);
    ad.dispose();
    lm.dispose();
  });

  it('LoRA on GPT-2 (fused qkv, LayerNorm, GELU)', () => {
    const lm = tinyModel(GPT2);
    const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: GPT2_TARGETS }, { seed: 6 });
    randomize(ad.variables(), 0.2, 20);
    expectSameStep(lm, ad.variables(), ad);
    ad.dispose();
    lm.dispose();
  });

  it('OFT with module dropout and COFT', () => {
    const lm = tinyModel(LLAMA);
    const ad = new OftAdapter(lm, { oft_block_size: 4, module_dropout: 0.5, target_modules: LLAMA_TARGETS, coft: true, eps: 0.5 });
    randomize(ad.variables(), 0.05, 30);
    expectSameStep(lm, ad.variables(), ad);
    ad.dispose();
    lm.dispose();
  });

  it('prompt tuning (the virtual tokens feed the first block)', () => {
    const lm = tinyModel(LLAMA);
    const ad = new PromptTuningAdapter(lm, { num_virtual_tokens: 3, prompt_tuning_init: 'SAMPLE_VOCAB', prompt_tuning_init_text: '' }, { seed: 7 });
    expectSameStep(lm, ad.variables(), ad);
    ad.dispose();
    lm.dispose();
  });

  it('every weight (full-parameter), Llama and GPT-2', () => {
    for (const spec of [LLAMA, GPT2]) {
      const lm = buildCausalLM({ config: tinyConfig(spec), weights: tinyWeights(spec) }, { trainable: true });
      expectSameStep(lm, lm.trainableVariables(), null);
      lm.dispose();
    }
  });
});

describe('a training run with recompute on', () => {
  it('trains as the same run without it and keeps the tensor count flat across steps', async () => {
    expect((await setupBackend('wasm')).name).toBe('wasm');
    const rand = seededRandom(9);
    const train: Example[] = Array.from({ length: 8 }, () => {
      const seq = [1, ...Array.from({ length: 4 + Math.floor(rand() * 5) }, () => 4 + Math.floor(rand() * 36)), 2];
      return { input: seq.slice(0, -1), target: seq.slice(1), weight: seq.slice(1).map(() => 1) };
    });
    const run = (recompute: boolean) => {
      const c: TrainConfig = { ...DEFAULT_TRAIN, lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: LLAMA_TARGETS }, batchSize: 4, steps: 4, epochs: 0, warmupSteps: 1, recompute };
      const lm = tinyModel(LLAMA);
      const ad = new LoraAdapter(lm, c.lora, { seed: 1 });
      const t = new Trainer(lm, train, [], c, ad);
      const losses: number[] = [];
      const counts: number[] = [];
      for (let s = 0; s < 4; s++) {
        losses.push(t.trainStep().loss);
        counts.push(tf.memory().numTensors);
      }
      t.dispose();
      ad.dispose();
      lm.dispose();
      return { losses, counts };
    };
    const plain = run(false);
    const re = run(true);
    re.losses.forEach((l, i) => expect(Math.abs(l - plain.losses[i]!)).toBeLessThan(1e-5));
    expect(new Set(re.counts.slice(1)).size).toBe(1);
  });
});
