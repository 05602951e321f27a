// The memory plan in the worker (src/train/memory-plan.ts), applied before the first step: a batch that will
// not fit is split into micro-batches with gradient accumulation, and a run that cannot fit at all is refused
// with the numbers.
import type { ModelInfo } from '../model/load';
import { deviceMemoryLimits } from '../model/memory-limits';
import { RECOMPUTE_OPTION, type TrainConfig } from '../train/config';
import { longestSequence, planMemory, type MemoryPlan } from '../train/memory-plan';
import { fail } from './errors';

/**
 * The configuration a run trains with on this device: `config` when it fits, else with the plan's micro-batch and
 * accumulation (and the plan's message for the run's warnings). Throws TOO_LARGE when not even one sequence fits.
 */
export function applyMemoryPlan(info: ModelInfo, config: TrainConfig, examples: readonly unknown[], limits = deviceMemoryLimits()): { config: TrainConfig; plan: MemoryPlan } {
  const plan = planMemory(info, config, Math.max(1, longestSequence(examples)), limits);
  if (!plan.fits) {
    const first = plan.withRecompute ? `Turn on ${RECOMPUTE_OPTION.label} (Train panel), or lower` : 'Lower';
    throw fail('TOO_LARGE', plan.message!, `${first} the max sequence length when reading the dataset, train fewer LoRA targets, or load a smaller model.`);
  }
  return { config: plan.changed ? { ...config, batchSize: plan.batchSize, gradAccum: plan.gradAccum } : config, plan };
}
