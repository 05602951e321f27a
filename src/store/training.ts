// Training settings as the studio offers them: presets over the run configuration (src/train/config.ts:
// every setting's default, bounds, help, the one validation and the step count) and a memory estimate
// for a model and settings. Plain data and arithmetic (no TF.js): the store, the controller and
// the components share it.
import type { ModelSummary, TrainConfig, TrainConfigOverrides } from '../protocol/messages';
import { DEFAULT_TRAIN, defaultTrainConfig, nearestDivisor } from '../train/config';

export type PresetName = 'quick' | 'balanced' | 'thorough';

/** The engine's defaults (src/train/config.ts, the same module the worker and the CLI use). */
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
    summary: '60 steps, rank 4 on the attention layers, stops after 2 evaluations without improvement: a first look at whether the data teaches anything (about a minute on small models).',
    apply: (b) => ({
      ...b,
      lora: { ...b.lora, r: 4, lora_alpha: 8, target_modules: b.lora.target_modules.filter((t) => ['q_proj', 'v_proj', 'c_attn'].includes(t)) },
      steps: 60,
      epochs: 1,
      warmupSteps: 5,
      evalEvery: 10,
      saveEvery: 20,
      earlyStopPatience: 2,
    }),
  },
  {
    name: 'balanced',
    label: 'Balanced',
    summary: '3 epochs, rank 8 on every linear layer, stops after 3 evaluations without improvement: the engine defaults (which learn both example tasks) with early stopping.',
    apply: (b) => ({ ...b, steps: 0, epochs: 3, evalEvery: 25, saveEvery: 50, earlyStopPatience: 3 }),
  },
  {
    name: 'thorough',
    label: 'Thorough',
    summary: '6 epochs, rank 16, a lower learning rate, stops after 3 evaluations without improvement: slower, for larger or harder datasets.',
    apply: (b) => ({ ...b, lora: { ...b.lora, r: 16, lora_alpha: 32 }, lr: 3e-3, steps: 0, epochs: 6, warmupSteps: 20, evalEvery: 50, saveEvery: 100, earlyStopPatience: 3 }),
  },
];

export function presetConfig(name: PresetName, arch: string | null | undefined): TrainConfig {
  return PRESETS.find((p) => p.name === name)!.apply(baseTrainConfig(arch));
}

/** What the worker's `train` takes: the whole config (explicit beats the engine's defaults). */
export function toOverrides(c: TrainConfig): TrainConfigOverrides {
  return { ...c, lora: { ...c.lora, target_modules: [...c.lora.target_modules] }, oft: { ...c.oft, target_modules: [...c.oft.target_modules] } };
}

/** The layer types the trained adapter targets: OFT's for OFT, LoRA's otherwise (what the Train panel's targets edit). */
export function adapterTargets(c: Pick<TrainConfig, 'mode' | 'lora' | 'oft'>): string[] {
  return c.mode === 'oft' ? c.oft.target_modules : c.lora.target_modules;
}

/** `c` with layer type `module` targeted (`on`) or not by the trained adapter (OFT's targets for OFT, LoRA's otherwise). */
export function withTarget(c: TrainConfig, module: string, on: boolean): TrainConfig {
  const now = adapterTargets(c);
  const next = on ? (now.includes(module) ? [...now] : [...now, module]) : now.filter((x) => x !== module);
  return c.mode === 'oft' ? { ...c, oft: { ...c.oft, target_modules: next } } : { ...c, lora: { ...c.lora, target_modules: next } };
}

/**
 * A run's method in a few characters: "LoRA r8", "OFT b32" (its block size), "full". A configuration
 * stored before OFT existed has no `oft` (its block size is the default's).
 */
export function methodLabel(t: Pick<TrainConfig, 'mode'> & { lora?: Pick<TrainConfig['lora'], 'r'>; oft?: Partial<Pick<TrainConfig['oft'], 'oft_block_size'>> }): string {
  if (t.mode === 'lora') return `LoRA r${t.lora?.r ?? DEFAULT_TRAIN.lora.r}`;
  if (t.mode === 'oft') return `OFT b${t.oft?.oft_block_size ?? DEFAULT_TRAIN.oft.oft_block_size}`;
  return 'full';
}

/** The OFT block size a layer with `inFeatures` inputs gets for a wanted `blockSize` (PEFT's rule, shared with src/oft/adapter.ts oftBlocks). */
export function oftBlockSize(inFeatures: number, blockSize: number): number {
  return nearestDivisor(inFeatures, blockSize);
}

/** OFT's parameters on one linear layer of `inFeatures` inputs: (in / b) blocks of b(b-1)/2 each. */
export function oftLayerParams(inFeatures: number, blockSize: number): number {
  const b = oftBlockSize(inFeatures, blockSize);
  return (inFeatures / b) * ((b * (b - 1)) / 2);
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
    // Per layer, each targeted linear [in, out] gets r * (in + out) parameters (LoRA) or
    // (in / b) * b(b-1)/2 (OFT's blocks of b, the nearest divisor of in).
    const shapes: Record<string, [number, number]> = {
      q_proj: [h, h], k_proj: [h, h], v_proj: [h, h], o_proj: [h, h],
      gate_proj: [h, inter], up_proj: [h, inter], down_proj: [inter, h],
      c_attn: [h, 3 * h], c_proj: [h, h], c_fc: [h, 4 * h],
    };
    let perLayer = 0;
    const oft = c.mode === 'oft';
    for (const t of oft ? c.oft.target_modules : c.lora.target_modules) {
      const s = shapes[t];
      if (s) perLayer += oft ? oftLayerParams(s[0], c.oft.oft_block_size) : c.lora.r * (s[0] + s[1]);
    }
    trainableParams = perLayer * model.layers;
  }
  const trainable = trainableParams * f * 4;
  const tokens = c.batchSize * seqLen;
  const perLayerAct = tokens * (12 * h + 3 * inter) + c.batchSize * heads * seqLen * seqLen * 2;
  const activations = (perLayerAct * model.layers + tokens * model.vocabSize * 3) * f;
  return { weights, trainable, trainableParams, activations, total: weights + trainable + activations };
}
