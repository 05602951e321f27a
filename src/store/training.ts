// Training settings as the studio offers them: presets over the run configuration (src/train/config.ts:
// every setting's default, bounds, help, the one validation and the step count) and a memory estimate
// for a model and settings; the method labels (LoRA r8, OFT b32, Prompt 16 tokens; SFT or DPO), the method
// picker's choices, and what DPO needs (preference data, where it starts). Plain data and arithmetic (no TF.js): the store, the controller and
// the components share it.
import type { DataReport, ModelSummary, RunSummary, TrainConfig, TrainConfigOverrides } from '../protocol/messages';
import { estimateTrainingMemory, oftLayerParams, type MemoryEstimate } from '../train/memory-plan';
import { DEFAULT_TRAIN, defaultLr, defaultTrainConfig, MODE_OPTION, nearestDivisor, totalSteps, type TrainCapabilities, type TrainMode, type TrainObjective } from '../train/config';

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
    summary: '60 steps, rank 4 on the attention layers, stops after 2 evaluations without improvement: a first look at whether the data teaches anything.',
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
    summary: '3 epochs (at least 150 steps), rank 8 on every linear layer, stops after 3 evaluations without improvement: the engine defaults (which learn both example tasks) with early stopping.',
    apply: (b) => ({ ...b, steps: 0, epochs: 3, evalEvery: 25, saveEvery: 50, earlyStopPatience: 3 }),
  },
  {
    name: 'thorough',
    label: 'Thorough',
    summary: '6 epochs (at least 300 steps), rank 16, a lower learning rate, stops after 3 evaluations without improvement: slower, for larger or harder datasets.',
    apply: (b) => ({ ...b, lora: { ...b.lora, r: 16, lora_alpha: 32 }, lr: 3e-3, steps: 0, epochs: 6, warmupSteps: 20, evalEvery: 50, saveEvery: 100, earlyStopPatience: 3 }),
  },
];

/**
 * The fewest optimizer steps each preset runs on a dataset of known size: on small datasets a few epochs
 * are only a few steps, and Quick's fixed 60 steps would be the longest. With these floors the presets
 * grow Quick < Balanced < Thorough for every dataset size (Thorough runs twice Balanced's epochs and floor).
 */
export const PRESET_MIN_STEPS: Readonly<Record<PresetName, number>> = { quick: 60, balanced: 150, thorough: 300 };

/** A preset's settings; with `trainExamples` (the dataset's training split), its epochs raised to PRESET_MIN_STEPS where they run fewer steps. */
export function presetConfig(name: PresetName, arch: string | null | undefined, trainExamples?: number | null): TrainConfig {
  const c = PRESETS.find((p) => p.name === name)!.apply(baseTrainConfig(arch));
  if (!trainExamples || trainExamples <= 0 || c.steps > 0) return c;
  const min = PRESET_MIN_STEPS[name];
  return totalSteps(c, trainExamples) < min ? { ...c, steps: min } : c;
}

/** What the worker's `train` takes: the whole config (explicit beats the engine's defaults). */
export function toOverrides(c: TrainConfig): TrainConfigOverrides {
  return { ...c, lora: { ...c.lora, target_modules: [...c.lora.target_modules] }, oft: { ...c.oft, target_modules: [...c.oft.target_modules] }, prompt: { ...c.prompt } };
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

/** What methodLabel reads of a configuration (stored ones may predate OFT, prompt tuning or DPO). */
export type MethodFields = Pick<TrainConfig, 'mode'> & {
  lora?: Pick<TrainConfig['lora'], 'r'>;
  oft?: Partial<Pick<TrainConfig['oft'], 'oft_block_size'>>;
  prompt?: Partial<Pick<TrainConfig['prompt'], 'num_virtual_tokens'>>;
  objective?: TrainObjective;
};

/**
 * A run's adapter in a few characters: "LoRA r8", "OFT b32" (its block size), "Prompt 16 tokens" (its
 * virtual tokens), "full". A configuration stored before OFT or prompt tuning existed takes their defaults.
 */
export function methodLabel(t: MethodFields): string {
  if (t.mode === 'lora') return `LoRA r${t.lora?.r ?? DEFAULT_TRAIN.lora.r}`;
  if (t.mode === 'oft') return `OFT b${t.oft?.oft_block_size ?? DEFAULT_TRAIN.oft.oft_block_size}`;
  if (t.mode === 'prompt') {
    const n = t.prompt?.num_virtual_tokens ?? DEFAULT_TRAIN.prompt.num_virtual_tokens;
    return `Prompt ${n} token${n === 1 ? '' : 's'}`;
  }
  return 'full';
}

/** "SFT" or "DPO" (a configuration stored before DPO existed is SFT). */
export function objectiveLabel(t: { objective?: TrainObjective }): 'SFT' | 'DPO' {
  return t.objective === 'dpo' ? 'DPO' : 'SFT';
}

/** The whole method of a run: "SFT · LoRA r8", "DPO · Prompt 16 tokens" (runs list, compare view). */
export function runMethodLabel(t: MethodFields): string {
  return `${objectiveLabel(t)} · ${methodLabel(t)}`;
}

/** The adapters the Train panel's method picker offers: LoRA, OFT, prompt tuning (full fine-tuning only where it can run). */
export const PICKED_METHODS: readonly TrainMode[] = ['lora', 'oft', 'prompt'];

/** One choice of the method picker: its name, its trade-off, and why it cannot be trained here (null: it can). */
export interface MethodChoice {
  mode: TrainMode;
  label: string;
  tradeoff: string;
  unavailable: string | null;
}

/**
 * The method picker's choices for what `caps` can train: LoRA, OFT and prompt tuning always (the ones it
 * cannot train with the reason), full only when it can or when it is `current` (e.g. a setting kept from elsewhere).
 */
export function methodChoices(caps: TrainCapabilities, current?: TrainMode): MethodChoice[] {
  const modes = caps.modes.includes('full') || current === 'full' ? [...PICKED_METHODS, 'full' as const] : PICKED_METHODS;
  return modes.map((mode) => ({
    mode,
    label: MODE_OPTION.choices[mode],
    tradeoff: MODE_OPTION.tradeoffs[mode],
    unavailable: caps.modes.includes(mode) ? null : (caps.unavailable?.[mode] ?? `${MODE_OPTION.choices[mode]} is not available here.`),
  }));
}

// ---------------------------------------------------------------------------------------------------
// DPO: its data and where it starts.

/** Preference pairs ({prompt, chosen, rejected}) and SFT examples (pairs, chats) in the dataset the doctor read. */
export function dataKinds(report: Pick<DataReport, 'kinds'> | null | undefined): { preference: number; sft: number } {
  const k = report?.kinds;
  return { preference: k?.preference ?? 0, sft: (k?.pair ?? 0) + (k?.chat ?? 0) };
}

/** When the dataset holds preference pairs and no SFT examples: the sentence offering DPO (null otherwise). */
export function dpoOffer(report: Pick<DataReport, 'kinds'> | null | undefined): string | null {
  const { preference, sft } = dataKinds(report);
  if (preference === 0 || sft > 0) return null;
  return `This dataset holds ${preference} preference pair${preference === 1 ? '' : 's'} (prompt, chosen and rejected replies) and no prompt/completion examples: it trains with DPO, which learns to prefer the chosen reply.`;
}

/** Why the objective cannot train on this dataset (null: it can, or no dataset is loaded yet). */
export function objectiveDataProblem(objective: TrainObjective, report: Pick<DataReport, 'kinds'> | null | undefined): string | null {
  if (!report) return null;
  const { preference, sft } = dataKinds(report);
  if (objective === 'dpo' && preference === 0) {
    return 'DPO needs preference pairs, and this dataset has none: add a JSONL file whose lines have "prompt", "chosen" and "rejected" (Data, above; pairs marked in Compare can be exported as one), or pick SFT.';
  }
  if (objective === 'sft' && sft === 0 && preference > 0) {
    return 'SFT needs prompt/completion or chat examples, and this dataset holds only preference pairs: pick DPO as the objective.';
  }
  return null;
}

/** Where a DPO run starts: the base model (null) or a stored run's checkpoint (TrainPayload.startFrom). */
export interface StartFrom {
  runId: string;
  step: number;
}

/** Runs a new run may start from: made on the page, with a checkpoint, not training now, on the loaded model. */
export function startFromRuns(runs: readonly RunSummary[], model: Pick<ModelSummary, 'numParams' | 'arch'> | null): RunSummary[] {
  // A full-parameter run has no adapter to continue.
  return runs.filter((r) => r.job && r.job.train.mode !== 'full' && !r.active && r.latestCheckpoint && (!model || (r.job.model.numParams === model.numParams && r.job.model.arch === model.arch)));
}

/**
 * `c` with the adapter of the run it starts from (the worker builds the adapter from that run's settings, so
 * the method, its shape and the targets are that run's; the plan and labels then say what will train).
 */
export function withStartAdapter(c: TrainConfig, parent: Pick<TrainConfig, 'mode' | 'lora' | 'oft'> & { prompt?: TrainConfig['prompt'] }): TrainConfig {
  return {
    ...c,
    mode: parent.mode,
    lora: { ...parent.lora, target_modules: [...parent.lora.target_modules] },
    oft: parent.oft ? { ...parent.oft, target_modules: [...parent.oft.target_modules] } : c.oft,
    prompt: parent.prompt ? { ...parent.prompt } : c.prompt,
  };
}

/** The checkpoint a run picked to start from offers first: its recommended one, else its best, else its newest (null: it has none). */
export function defaultStartStep(r: { quality?: { recommendedStep: number | null; bestStep: number | null } | null }, steps: readonly number[]): number | null {
  for (const s of [r.quality?.recommendedStep, r.quality?.bestStep]) if (s != null && steps.includes(s)) return s;
  return steps.length ? Math.max(...steps) : null;
}

/** A preset's settings with the method the user picked kept: the adapter kind and prompt tuning's settings, the objective and DPO's settings (and Recompute activations). */
export function keepMethod(preset: TrainConfig, current: TrainConfig): TrainConfig {
  // The preset's learning rate is LoRA's: another method scales it by the ratio of their defaults.
  const lr = preset.lr * (defaultLr(current.mode) / defaultLr(preset.mode));
  // Recompute activations is a memory choice, not part of a recipe: it stays as it was too.
  return { ...preset, mode: current.mode, lr, objective: current.objective, dpoBeta: current.dpoBeta, rpoAlpha: current.rpoAlpha, prompt: { ...current.prompt }, recompute: current.recompute };
}

/** "started from sft-run at step 30" for a run whose adapter started from another run's checkpoint (null otherwise). */
export function lineageText(r: Pick<RunSummary, 'job'>, runs: readonly Pick<RunSummary, 'id' | 'name'>[]): string | null {
  const from = r.job?.startFrom;
  if (!from) return null;
  const parent = runs.find((x) => x.id === from.runId);
  return `started from ${parent ? parent.name : 'a deleted run'} at step ${from.step}`;
}

/** The OFT block size a layer with `inFeatures` inputs gets for a wanted `blockSize` (PEFT's rule, shared with src/oft/adapter.ts oftBlocks). */
export function oftBlockSize(inFeatures: number, blockSize: number): number {
  return nearestDivisor(inFeatures, blockSize);
}

/** OFT's parameters on one linear layer (the memory plan's count, src/train/memory-plan.ts). */
export { oftLayerParams };
export type { MemoryEstimate };

/**
 * The worker's memory for training `model` with `c` on sequences of `seqLen` tokens: the memory plan's
 * estimate (src/train/memory-plan.ts: weights, activations per token x batch x sequence calibrated on
 * tfjs-wasm, adapter and optimizer). The step's measured tensor bytes are shown while training.
 */
export function estimateMemory(model: Pick<ModelSummary, 'numParams' | 'hiddenSize' | 'layers' | 'vocabSize' | 'arch'> & Partial<Pick<ModelSummary, 'intermediateSize' | 'heads' | 'kvHeads' | 'headDim' | 'tiedHead'>>, c: TrainConfig, seqLen: number): MemoryEstimate {
  return estimateTrainingMemory(model, c, seqLen);
}
