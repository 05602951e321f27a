import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../io/load-model';
import { LoraAdapter } from '../lora/adapter';
import { setupBackend } from '../model/backend';
import { setCpuFusedOps } from '../model/ops';
import { directorySource } from '../node/fs-source';
import { BASE_DIR, TINY_DIR } from '../testing/models';
import { defaultTrainConfig, type TrainConfig } from './config';
import { Trainer, type Example } from './loop';
import { estimateTrainingMemory, HEADROOM, limitsFor, memoryLine, planMemory, WASM_HEAP_MAX, type ModelShape } from './memory-plan';

// SmolLM2-135M's shapes (src/io/smol-shaped.ts), as ModelInfo reports them.
const SMOL: ModelShape = { arch: 'llama', numParams: 134_515_008, vocabSize: 49_152, hiddenSize: 576, layers: 30, intermediateSize: 1536, heads: 9, kvHeads: 3, headDim: 64, tiedHead: true };
const WASM = limitsFor('wasm');

describe('memory plan', () => {
  it('grows with batch, sequence (attention quadratically), rank and targets; DPO doubles the rows', () => {
    const c = defaultTrainConfig('llama');
    const e = (over: Partial<TrainConfig>, T = 128) => estimateTrainingMemory(SMOL, { ...c, ...over }, T);
    expect(e({ batchSize: 8 }).activations).toBeGreaterThan(e({ batchSize: 4 }).activations);
    // TF.js's attention (the GPU backends) keeps the T x T scores; the fused CPU op does not.
    const gpu = (T: number) => estimateTrainingMemory(SMOL, { ...c, batchSize: 1 }, T, 'webgpu').activations;
    expect(gpu(256) - gpu(128)).toBeGreaterThan(gpu(128) - gpu(0));
    expect(e({ batchSize: 1 }, 256).activations - e({ batchSize: 1 }, 128).activations).toBeCloseTo(e({ batchSize: 1 }, 128).activations - e({ batchSize: 1 }, 0).activations, -3);
    expect(e({ lora: { ...c.lora, target_modules: ['q_proj', 'v_proj'] } }).total).toBeLessThan(e({}).total);
    expect(e({ lora: { ...c.lora, r: 16 } }).trainableParams).toBe(2 * e({}).trainableParams);
    expect(e({ objective: 'dpo', batchSize: 2 }).activations).toBe(e({ batchSize: 4 }).activations);
    // A frozen tied head keeps the embedding transposed: V x D more than the parameters.
    expect(e({}).weights).toBe((SMOL.numParams + 49_152 * 576) * 4);
    expect(e({ mode: 'full' }).weights).toBe(SMOL.numParams * 4);
    expect(e({ mode: 'full' }).trainable).toBe(SMOL.numParams * 4 * 3);
  });

  it('keeps a batch that fits; makes micro-batches smaller with the same effective batch when it does not', () => {
    const c = { ...defaultTrainConfig('llama'), batchSize: 8, gradAccum: 2 };
    const small: ModelShape = { ...SMOL, numParams: 447_040, vocabSize: 4096, hiddenSize: 64, layers: 4, intermediateSize: 176, heads: 4, kvHeads: 2, headDim: 16 };
    const fits = planMemory(small, c, 64, WASM);
    expect(fits).toMatchObject({ fits: true, changed: false, batchSize: 8, gradAccum: 2, message: null });
    expect(memoryLine(fits)).toMatch(/^Memory: ~\d[\d,]* MB of 3,072 MB available \(weights \d+ MB, activations [\d,]+ MB, adapter\+optimizer \d+ MB\)$/);

    const p = planMemory(SMOL, c, 256, WASM);
    expect(p.requested.total).toBeGreaterThan(WASM_HEAP_MAX * HEADROOM);
    expect(p.fits).toBe(false); // even one 256-token sequence of the 135M shape on every linear layer
    expect(p.message).toMatch(/will not fit in memory: even one 256-token sequence per micro-batch needs about [\d,]+ MB of the 3,072 MB WASM can use/);
    expect(p.message).toMatch(/shorter max sequence length \(now 256 tokens\), fewer LoRA targets .*, a smaller model/);

    const q = planMemory(SMOL, { ...c, lora: { ...c.lora, target_modules: ['q_proj', 'v_proj'] } }, 64, WASM);
    expect(q).toMatchObject({ fits: true, changed: true });
    expect(q.batchSize * q.gradAccum).toBe(16);
    expect(8 % q.batchSize).toBe(0);
    expect(q.estimate.total).toBeLessThanOrEqual(q.budget!);
    // The next larger divisor of the batch would not fit.
    const next = [2, 4, 8].find((b) => b > q.batchSize)!;
    expect(estimateTrainingMemory(SMOL, { ...c, lora: { ...c.lora, target_modules: ['q_proj', 'v_proj'] }, batchSize: next }, 64).total).toBeGreaterThan(q.budget!);
    expect(q.message).toBe(`Batch 8 of 64-token sequences will not fit: it needs about ${(Math.round(q.requested.total / 2 ** 20)).toLocaleString('en-US')} MB of the 3,072 MB WASM can use (75% of the WASM heap's 4 GB cap). Training with micro-batches of ${q.batchSize} x ${q.gradAccum} accumulation steps (about ${Math.round(q.estimate.total / 2 ** 20).toLocaleString('en-US')} MB), the same effective batch of 16.`);
  });

  it('with recomputation counts one layer of activations plus every layer\'s input, and offers it when nothing else fits', () => {
    const c = { ...defaultTrainConfig('llama'), batchSize: 8, gradAccum: 1 };
    const plain = estimateTrainingMemory(SMOL, c, 256);
    const re = estimateTrainingMemory(SMOL, { ...c, recompute: true }, 256);
    expect(re.recompute).toBe(true);
    expect(re.activations).toBeLessThan(plain.activations / 3);
    expect(re.weights).toBe(plain.weights);
    expect(re.trainable).toBe(plain.trainable);
    // The 135M shape on every linear layer: not even one 256-token sequence fits without it; with it, it does.
    const p = planMemory(SMOL, c, 256, WASM);
    expect(p.fits).toBe(false);
    expect(p.withRecompute).not.toBeNull();
    const w = p.withRecompute!;
    expect(w.batchSize * w.gradAccum).toBe(8);
    expect(w.estimate.total).toBeLessThanOrEqual(p.budget!);
    expect(p.message).toContain(`Turn on Recompute activations (each layer's activations recomputed in the backward pass, about a quarter more time per step): then`);
    expect(p.message).toMatch(/\(about [\d,]+ MB\)\. Or try a shorter max sequence length \(now 256 tokens\)/);
    // Turned on, the same run fits at that micro-batch, and the line says so.
    const on = planMemory(SMOL, { ...c, recompute: true }, 256, WASM);
    expect(on).toMatchObject({ fits: true, batchSize: w.batchSize, gradAccum: w.gradAccum, withRecompute: null });
    expect(memoryLine(on)).toMatch(/activations [\d,]+ MB recomputed per layer/);
    // A batch that smaller micro-batches make fit is not offered recomputation (it costs time; micro-batches do not).
    const q = planMemory(SMOL, { ...c, lora: { ...c.lora, target_modules: ['q_proj', 'v_proj'] } }, 64, WASM);
    expect(q).toMatchObject({ fits: true, changed: true, withRecompute: null });
    expect(q.message).not.toContain('Recompute');
    // Already on and still too large: the other fixes only.
    const huge = planMemory(SMOL, { ...c, recompute: true }, 4096, WASM);
    expect(huge.fits).toBe(false);
    expect(huge.message).not.toContain('Recompute');
    expect(huge.message).toMatch(/Try a shorter max sequence length \(now 4096 tokens\)/);
  });

  it("on WebGPU checks the largest tensor against the GPU's buffer limit", () => {
    const c = { ...defaultTrainConfig('llama'), batchSize: 8 };
    const gpu = limitsFor('webgpu', { maxBufferSize: 256 * 2 ** 20, maxStorageBufferBindingSize: 128 * 2 ** 20 });
    expect(gpu).toMatchObject({ totalBytes: null, maxTensorBytes: 128 * 2 ** 20 });
    // 8 x 256 tokens x 49,152 logits = 403 MB in one tensor: micro-batches of 2 (101 MB) fit.
    const p = planMemory(SMOL, c, 256, gpu);
    expect(p).toMatchObject({ fits: true, changed: true, batchSize: 2, gradAccum: 4 });
    expect(p.message).toMatch(/the logits \(8 x 256 tokens x 49152 vocabulary\) take 384 MB in one tensor, more than this GPU's 128 MB buffer limit/);
    expect(memoryLine(p)).toMatch(/largest tensor 96 MB of the GPU's 128 MB buffer limit/);
    // A small device's memory bounds WASM below its cap.
    expect(limitsFor('wasm', { deviceMemoryGiB: 2 }).totalBytes).toBe(2 ** 30);
  });

  // Calibration: the estimate against the peak tensor bytes of a real LoRA step on tfjs-wasm (tf.profile's
  // peakBytes, which the WASM heap's growth tracked within 20% when measured in fresh processes).
  it('is within 30% of the measured peak of a LoRA training step on tfjs-wasm (tabtune-tiny, tabtune-base), with the fused attention and with TF.js ops', async () => {
    await setupBackend('wasm');
    const rows: string[] = [];
    for (const [dir, shapes, fused] of [[TINY_DIR, [[1, 64], [4, 32], [2, 128]], true], [BASE_DIR, [[1, 64], [2, 128]], true], [TINY_DIR, [[2, 128]], false], [BASE_DIR, [[1, 128]], false]] as const) {
      setCpuFusedOps(fused);
      const m = await loadModel(directorySource(dir));
      try {
        for (const [B, T] of shapes) {
          for (const targets of [['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], ['q_proj', 'v_proj']]) {
            const c: TrainConfig = { ...defaultTrainConfig('llama'), batchSize: B, steps: 1, epochs: 0, lora: { r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: targets } };
            const ex: Example[] = Array.from({ length: B }, (_, i) => {
              const ids = Array.from({ length: T + 1 }, (_, t) => 5 + ((i * 31 + t * 7) % 200));
              return { input: ids.slice(0, -1), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
            });
            const ad = new LoraAdapter(m.lm, c.lora, { seed: 1 });
            const tr = new Trainer(m.lm, ex, [], c, ad);
            try {
              const before = tf.memory().numBytes;
              const prof = await tf.profile(() => void tr.trainStep());
              const measured = prof.peakBytes - before;
              // TF.js's attention ops are the GPU backends' path: their estimate.
              const e = estimateTrainingMemory(m.info, c, T, fused ? 'wasm' : 'webgpu');
              // The step's own bytes: activations, the adapter's gradients and moments (its values existed before).
              const estimated = e.activations + e.trainable - e.trainableParams * 4;
              rows.push(`${m.name} ${B}x${T} ${targets.length} targets, ${fused ? 'fused' : 'TF.js'} attention: estimate ${(estimated / 1e6).toFixed(1)} MB, measured ${(measured / 1e6).toFixed(1)} MB (${(estimated / measured).toFixed(2)})`);
              expect(estimated / measured, rows.at(-1)).toBeGreaterThan(0.75);
              expect(estimated / measured, rows.at(-1)).toBeLessThan(1.3);
            } finally {
              tr.dispose();
              ad.dispose();
            }
          }
        }
      } finally {
        m.dispose();
        setCpuFusedOps(true);
      }
    }
    console.log(`[memory plan]\n${rows.join('\n')}`);
  });

  it('with recomputation is within 30% of the measured peak of a LoRA step on tfjs-wasm, and below the peak without it', async () => {
    await setupBackend('wasm');
    const rows: string[] = [];
    for (const [dir, shapes] of [[TINY_DIR, [[1, 64], [2, 128]]], [BASE_DIR, [[1, 64], [4, 128]]]] as const) {
      const m = await loadModel(directorySource(dir));
      try {
        for (const [B, T] of shapes) {
          const ex: Example[] = Array.from({ length: B }, (_, i) => {
            const ids = Array.from({ length: T + 1 }, (_, t) => 5 + ((i * 31 + t * 7) % 200));
            return { input: ids.slice(0, -1), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
          });
          const peak = async (recompute: boolean) => {
            const c: TrainConfig = { ...defaultTrainConfig('llama'), batchSize: B, steps: 1, epochs: 0, recompute };
            const ad = new LoraAdapter(m.lm, c.lora, { seed: 1 });
            const tr = new Trainer(m.lm, ex, [], c, ad);
            try {
              const before = tf.memory().numBytes;
              const prof = await tf.profile(() => void tr.trainStep());
              const e = estimateTrainingMemory(m.info, c, T);
              return { measured: prof.peakBytes - before, estimated: e.activations + e.trainable - e.trainableParams * 4 };
            } finally {
              tr.dispose();
              ad.dispose();
            }
          };
          const plain = await peak(false);
          const re = await peak(true);
          rows.push(`${m.name} ${B}x${T} recompute: estimate ${(re.estimated / 1e6).toFixed(1)} MB, measured ${(re.measured / 1e6).toFixed(1)} MB (${(re.estimated / re.measured).toFixed(2)}); without: measured ${(plain.measured / 1e6).toFixed(1)} MB`);
          expect(re.estimated / re.measured, rows.at(-1)).toBeGreaterThan(0.75);
          expect(re.estimated / re.measured, rows.at(-1)).toBeLessThan(1.3);
          expect(re.measured, rows.at(-1)).toBeLessThan(0.7 * plain.measured);
          expect(re.estimated).toBeLessThan(plain.estimated);
        }
      } finally {
        m.dispose();
      }
    }
    console.log(`[memory plan, recompute]\n${rows.join('\n')}`);
  });
});
