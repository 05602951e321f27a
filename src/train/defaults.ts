// The engine's default training settings, in a module without TF.js so the page's store can read the
// same values the worker and the CLI use (one source of truth for the defaults).
import type { TrainConfig } from './loop';

/** "All linear layers", the default LoRA targets per architecture (PEFT module-name suffixes). */
export const LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const GPT2_TARGETS = ['c_attn', 'c_proj', 'c_fc'];

export function targetsFor(arch: string | null | undefined): string[] {
  return arch === 'gpt2' ? [...GPT2_TARGETS] : [...LLAMA_TARGETS];
}

export const DEFAULT_TRAIN: TrainConfig = {
  mode: 'lora',
  lora: { r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: ['q_proj', 'v_proj'] },
  lr: 5e-3,
  schedule: 'cosine',
  warmupSteps: 10,
  minLrRatio: 0.1,
  weightDecay: 0,
  maxGradNorm: 1,
  batchSize: 8,
  gradAccum: 1,
  steps: 0,
  epochs: 3,
  evalEvery: 25,
  saveEvery: 50,
  seed: 42,
  maxBadSteps: 5,
};

/** Defaults chosen on the example datasets (see the learning test): LoRA r=8 on every linear layer. */
export function defaultTrainConfig(arch: string | null | undefined, over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...DEFAULT_TRAIN, lora: { ...DEFAULT_TRAIN.lora, target_modules: targetsFor(arch) }, ...over };
}
