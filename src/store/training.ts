// Training settings as the studio offers them: presets, every engine option with its explanation and
// safe bounds, and a memory estimate for a model and settings. Plain data and arithmetic (no TF.js):
// the store, the controller and the components share it.
import type { ModelSummary, TrainConfig, TrainConfigOverrides } from '../protocol/messages';
import { defaultTrainConfig } from '../train/defaults';

export type PresetName = 'quick' | 'balanced' | 'thorough';

export { GPT2_TARGETS, LLAMA_TARGETS, targetsFor } from '../train/defaults';

/** The engine's defaults (src/train/defaults.ts, the same module the worker and the CLI use). */
export function baseTrainConfig(arch: string | null | undefined = 'llama'): TrainConfig {
  return defaultTrainConfig(arch);
}

export interface Preset {
  name: PresetName;
  label: string;
  /** One line for the user. */
  summary: string;
  apply(base: TrainConfig): TrainConfig;
}

export const PRESETS: readonly Preset[] = [
  {
    name: 'quick',
    label: 'Quick',
    summary: '60 steps, rank 4 on the attention layers: a first look at whether the data teaches anything (about a minute on small models).',
    apply: (b) => ({
      ...b,
      lora: { ...b.lora, r: 4, lora_alpha: 8, target_modules: b.lora.target_modules.filter((t) => ['q_proj', 'v_proj', 'c_attn'].includes(t)) },
      steps: 60,
      epochs: 1,
      warmupSteps: 5,
      evalEvery: 10,
      saveEvery: 20,
    }),
  },
  {
    name: 'balanced',
    label: 'Balanced',
    summary: '3 epochs, rank 8 on every linear layer: the engine defaults, which learn both example tasks.',
    apply: (b) => ({ ...b, steps: 0, epochs: 3, evalEvery: 25, saveEvery: 50 }),
  },
  {
    name: 'thorough',
    label: 'Thorough',
    summary: '6 epochs, rank 16, a lower learning rate: slower, for larger or harder datasets.',
    apply: (b) => ({ ...b, lora: { ...b.lora, r: 16, lora_alpha: 32 }, lr: 3e-3, steps: 0, epochs: 6, warmupSteps: 20, evalEvery: 50, saveEvery: 100 }),
  },
];

export function presetConfig(name: PresetName, arch: string | null | undefined): TrainConfig {
  return PRESETS.find((p) => p.name === name)!.apply(baseTrainConfig(arch));
}

/** A numeric engine option: label, one-line explanation, safe bounds. */
export interface NumericOption {
  key: Exclude<keyof TrainConfig, 'mode' | 'lora' | 'schedule'> | 'lora.r' | 'lora.lora_alpha' | 'lora.lora_dropout';
  label: string;
  help: string;
  min: number;
  max: number;
  step: number | 'any';
  integer: boolean;
}

export const NUMERIC_OPTIONS: readonly NumericOption[] = [
  { key: 'lr', label: 'Learning rate', help: 'How far each step moves the weights. Too high: the loss jumps or becomes NaN; too low: nothing is learned.', min: 1e-6, max: 0.1, step: 'any', integer: false },
  { key: 'steps', label: 'Steps', help: 'Optimizer steps to run. 0 = use Epochs instead.', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'epochs', label: 'Epochs', help: 'Passes over the training set (used when Steps is 0).', min: 0.1, max: 100, step: 'any', integer: false },
  { key: 'batchSize', label: 'Batch size', help: 'Examples per micro-batch. Larger: smoother loss, more memory.', min: 1, max: 128, step: 1, integer: true },
  { key: 'gradAccum', label: 'Gradient accumulation', help: 'Micro-batches summed per step: a larger effective batch without more memory.', min: 1, max: 64, step: 1, integer: true },
  { key: 'lora.r', label: 'LoRA rank', help: 'Size of the low-rank update. Higher learns more, trains more parameters.', min: 1, max: 256, step: 1, integer: true },
  { key: 'lora.lora_alpha', label: 'LoRA alpha', help: 'Scale of the update (alpha / rank). Usually twice the rank.', min: 1, max: 512, step: 1, integer: true },
  { key: 'lora.lora_dropout', label: 'LoRA dropout', help: 'Randomly drops the adapter input during training; 0 to 0.3 helps against overfitting.', min: 0, max: 0.5, step: 0.01, integer: false },
  { key: 'warmupSteps', label: 'Warmup steps', help: 'Steps over which the learning rate rises from 0 at the start.', min: 0, max: 10_000, step: 1, integer: true },
  { key: 'minLrRatio', label: 'Final learning-rate ratio', help: 'Where the schedule ends, as a fraction of the learning rate.', min: 0, max: 1, step: 0.05, integer: false },
  { key: 'weightDecay', label: 'Weight decay', help: 'AdamW decay pulling trained weights toward 0 (0 to 0.1).', min: 0, max: 1, step: 0.01, integer: false },
  { key: 'maxGradNorm', label: 'Gradient clipping', help: 'Largest gradient norm per step; 1 keeps early steps stable. 0 turns clipping off.', min: 0, max: 100, step: 0.1, integer: false },
  { key: 'evalEvery', label: 'Validate every', help: 'Steps between validation-loss measurements (0 = only at the end).', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'saveEvery', label: 'Checkpoint every', help: 'Steps between checkpoints saved in this browser (0 = only at the end).', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'seed', label: 'Seed', help: 'Fixes every random choice: the same seed and data repeat a run exactly.', min: 0, max: 2 ** 31 - 1, step: 1, integer: true },
  { key: 'maxBadSteps', label: 'NaN tolerance', help: 'Consecutive NaN/Inf steps skipped before the run stops.', min: 1, max: 100, step: 1, integer: true },
];

export function getOption(c: TrainConfig, key: NumericOption['key']): number {
  if (key.startsWith('lora.')) return c.lora[key.slice(5) as 'r' | 'lora_alpha' | 'lora_dropout'];
  return c[key as Exclude<NumericOption['key'], `lora.${string}`>];
}

export function setOption(c: TrainConfig, key: NumericOption['key'], value: number): TrainConfig {
  if (key.startsWith('lora.')) return { ...c, lora: { ...c.lora, [key.slice(5)]: value } };
  return { ...c, [key]: value };
}

/** Problems with a config, one message per bad field (empty: the engine accepts it). */
export function validateConfig(c: TrainConfig): string[] {
  const out: string[] = [];
  for (const o of NUMERIC_OPTIONS) {
    const v = getOption(c, o.key);
    if (!Number.isFinite(v)) out.push(`${o.label}: enter a number.`);
    else if (o.integer && !Number.isInteger(v)) out.push(`${o.label}: must be a whole number.`);
    else if (v < o.min || v > o.max) out.push(`${o.label}: must be between ${o.min} and ${o.max}.`);
  }
  if (c.mode === 'lora' && c.lora.target_modules.length === 0) out.push('LoRA targets: pick at least one layer type.');
  if (c.steps === 0 && !(c.epochs > 0)) out.push('Steps or Epochs must be more than 0.');
  return out;
}

/** What the worker's `train` takes: the whole config (explicit beats the engine's defaults). */
export function toOverrides(c: TrainConfig): TrainConfigOverrides {
  return { ...c, lora: { ...c.lora, target_modules: [...c.lora.target_modules] } };
}

/** Optimizer steps a config runs on `trainExamples` examples. */
export function plannedSteps(c: TrainConfig, trainExamples: number): number {
  if (c.steps > 0) return c.steps;
  const perEpoch = Math.max(1, Math.ceil(trainExamples / (c.batchSize * c.gradAccum)));
  return Math.max(1, Math.ceil(perEpoch * c.epochs));
}

export interface MemoryEstimate {
  /** Base weights (float32). */
  weights: number;
  /** Trained parameters: values, gradients and two AdamW moments. */
  trainable: number;
  trainableParams: number;
  /** Activations kept for the backward pass of one micro-batch, logits included. */
  activations: number;
  total: number;
}

/**
 * A rough upper estimate of the worker's memory for training `model` with `c` on sequences of `seqLen`
 * tokens: float32 weights, trainable parameters x4 (value, gradient, Adam m and v), and the activations
 * of one micro-batch (per layer ~ 12 hidden-sized and 3 MLP-sized vectors per token, plus the attention
 * scores, plus logits and their gradient). The step's measured tensor bytes are shown while training.
 */
export function estimateMemory(
  model: Pick<ModelSummary, 'numParams' | 'hiddenSize' | 'layers' | 'vocabSize' | 'arch'> & { intermediateSize?: number; heads?: number },
  c: TrainConfig,
  seqLen: number,
): MemoryEstimate {
  const f = 4;
  const h = model.hiddenSize;
  const inter = model.intermediateSize ?? Math.round((8 / 3) * h);
  const heads = model.heads ?? Math.max(1, Math.round(h / 64));
  const weights = model.numParams * f;
  let trainableParams: number;
  if (c.mode === 'full') trainableParams = model.numParams;
  else {
    // Per layer, each targeted linear gets r * (in + out) parameters.
    const shapes: Record<string, [number, number]> = {
      q_proj: [h, h], k_proj: [h, h], v_proj: [h, h], o_proj: [h, h],
      gate_proj: [h, inter], up_proj: [h, inter], down_proj: [inter, h],
      c_attn: [h, 3 * h], c_proj: [h, h], c_fc: [h, 4 * h],
    };
    let perLayer = 0;
    for (const t of c.lora.target_modules) {
      const s = shapes[t];
      if (s) perLayer += c.lora.r * (s[0] + s[1]);
    }
    trainableParams = perLayer * model.layers;
  }
  const trainable = trainableParams * f * 4;
  const tokens = c.batchSize * seqLen;
  const perLayerAct = tokens * (12 * h + 3 * inter) + c.batchSize * heads * seqLen * seqLen * 2;
  const activations = (perLayerAct * model.layers + tokens * model.vocabSize * 3) * f;
  return { weights, trainable, trainableParams, activations, total: weights + trainable + activations };
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
