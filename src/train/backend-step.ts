// The training step `time-backends` times on each backend (src/model/backend-timing.ts): LoRA with the
// app's defaults for the architecture (its default targets and rank), on a small fixed batch of token ids,
// so every backend runs exactly the same step. The ids are a deterministic sweep of the vocabulary: what the
// tokens say does not change a step's cost, only the shapes do.
import * as tf from '@tensorflow/tfjs-core';
import type { TimingSession } from '../model/backend-timing';
import { contextLength } from '../model/config';
import type { LanguageModel } from '../model/load';
import { browserTraining, resolveTrainConfig, type TrainConfig } from './config';
import { createTrainer, disposeTrainer } from './job';
import type { Example } from './loop';

/** Windows of `seq` tokens in the timed batch. */
export interface TimingBatch {
  windows: number;
  seq: number;
}

/** One window of 64 tokens: big enough to be a real step, small enough for a second on a slow backend. */
export const DEFAULT_TIMING_BATCH: TimingBatch = { windows: 1, seq: 64 };

/** The batch for this model: `want`, its windows no longer than the model's context. */
export function timingBatch(model: Pick<LanguageModel, 'lm'>, want: TimingBatch = DEFAULT_TIMING_BATCH): TimingBatch {
  if (!Number.isInteger(want.windows) || want.windows < 1 || !Number.isInteger(want.seq) || want.seq < 2) {
    throw new RangeError(`a timing batch needs whole windows >= 1 of >= 2 tokens, got ${want.windows} x ${want.seq}`);
  }
  return { windows: want.windows, seq: Math.min(want.seq, contextLength(model.lm.config)) };
}

/** `windows` examples of `seq` tokens (input and next-token target, every position trained), ids spread over the vocabulary. */
export function timingExamples(vocabSize: number, batch: TimingBatch): Example[] {
  return Array.from({ length: batch.windows }, (_, w) => {
    const ids = Array.from({ length: batch.seq + 1 }, (_, i) => (w * 7919 + i * 104_729 + 17) % vocabSize);
    return { input: ids.slice(0, -1), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
  });
}

/** The app's default LoRA configuration for the model's architecture, one micro-batch of the timing batch per step. */
export function timingConfig(model: Pick<LanguageModel, 'lm'>, batch: TimingBatch): TrainConfig {
  const arch = model.lm.config.arch;
  const r = resolveTrainConfig(arch, { mode: 'lora', objective: 'sft', batchSize: batch.windows, gradAccum: 1, steps: 100_000 }, browserTraining(arch));
  if (!r.ok) throw new Error(`the timing configuration is invalid: ${r.problems.join(' ')}`);
  return r.config;
}

/**
 * The model ready to train on TF.js's current backend: a fresh LoRA adapter (the defaults) and a trainer over
 * the fixed batch. Each `step()` is one optimizer step (asynchronous reads on WebGPU, as training does there).
 * `dispose` frees the trainer and its adapter, and `onDispose` (e.g. the model rebuilt for this backend).
 */
export function openTimingStep(model: LanguageModel, batch: TimingBatch, onDispose?: () => void): TimingSession {
  let trainer: ReturnType<typeof createTrainer<Example>>;
  try {
    const b = timingBatch(model, batch);
    trainer = createTrainer(model, timingExamples(model.info.vocabSize, b), [], timingConfig(model, b));
  } catch (e) {
    onDispose?.();
    throw e;
  }
  return {
    async step() {
      const m = tf.getBackend() === 'webgpu' ? await trainer.trainStepAsync() : trainer.trainStep();
      return m.tokens;
    },
    dispose() {
      disposeTrainer(trainer);
      onDispose?.();
    },
  };
}
