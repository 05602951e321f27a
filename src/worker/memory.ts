// The memory plan in the worker: the device's limits as TF.js sees them, and the plan a run trains with
// (src/train/memory-plan.ts), applied before the first step: a batch that will not fit is split into
// micro-batches with gradient accumulation, and a run that cannot fit at all is refused with the numbers.
import * as tf from '@tensorflow/tfjs-core';
import type { ModelInfo } from '../model/load';
import type { TrainConfig } from '../train/config';
import { limitsFor, planMemory, type DeviceMemoryLimits, type MemoryPlan } from '../train/memory-plan';
import { fail } from './errors';

/** The current backend's limits: WebGPU's buffer limits from its device, the WASM heap's cap and the device memory the browser reports. */
export function deviceMemoryLimits(): DeviceMemoryLimits {
  const name = tf.getBackend();
  const deviceMemoryGiB = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  if (name === 'webgpu') {
    const limits = (tf.backend() as unknown as { device?: { limits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number } } }).device?.limits;
    return limitsFor(name, { maxBufferSize: limits?.maxBufferSize, maxStorageBufferBindingSize: limits?.maxStorageBufferBindingSize, deviceMemoryGiB });
  }
  return limitsFor(name, { deviceMemoryGiB });
}

/** The longest sequence a run's examples hold (an Example's input; both replies of a preference pair). */
export function longestSequence(examples: readonly unknown[]): number {
  let n = 0;
  for (const e of examples) {
    const x = e as { input?: number[]; chosen?: { input: number[] }; rejected?: { input: number[] } };
    n = Math.max(n, x.input?.length ?? 0, x.chosen?.input.length ?? 0, x.rejected?.input.length ?? 0);
  }
  return n;
}

/**
 * The configuration a run trains with on this device: `config` when it fits, else with the plan's micro-batch and
 * accumulation (and the plan's message for the run's warnings). Throws TOO_LARGE when not even one sequence fits.
 */
export function applyMemoryPlan(info: ModelInfo, config: TrainConfig, examples: readonly unknown[], limits = deviceMemoryLimits()): { config: TrainConfig; plan: MemoryPlan } {
  const plan = planMemory(info, config, Math.max(1, longestSequence(examples)), limits);
  if (!plan.fits) throw fail('TOO_LARGE', plan.message!, 'Lower the max sequence length when reading the dataset, train fewer LoRA targets, or load a smaller model.');
  return { config: plan.changed ? { ...config, batchSize: plan.batchSize, gradAccum: plan.gradAccum } : config, plan };
}
