// The run configuration: one home for every setting of a training run — its type, default, bounds,
// one-line help and command-line flag — and the one function that checks a configuration, with the
// capabilities of the place that runs it (the browser worker trains LoRA, OFT and prompt-tuning adapters; the CLI also
// trains every weight). The Train panel, the worker and the CLI all read this table and call parseTrainConfig; the
// CLI's flags and `train --help` are generated from it. Plain data and zod, no TF.js: the page imports it.
import { z } from 'zod';

export type TrainMode = 'lora' | 'oft' | 'prompt' | 'full';
/** What a step minimises: supervised next-token loss (SFT) or Direct Preference Optimization on preference pairs. */
export type TrainObjective = 'sft' | 'dpo';
/** How prompt tuning's virtual tokens start, as PEFT's PromptTuningInit names it. */
export type PromptTuningInit = 'TEXT' | 'SAMPLE_VOCAB' | 'RANDOM';
export type ScheduleKind = 'constant' | 'linear' | 'cosine';
export type Arch = 'llama' | 'gpt2';
/** What "better" means for the best checkpoint and early stopping. */
export type BestMetric = 'val_loss' | 'exact_match';

/** LoRA as PEFT names it (adapter_config.json's fields). */
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Module name suffixes, as in PEFT: "q_proj" matches "model.layers.0.self_attn.q_proj". */
  target_modules: string[];
}

/**
 * OFT as PEFT names it (adapter_config.json's fields, PEFT >= 0.14): each targeted layer's input is rotated
 * by a block-diagonal orthogonal matrix, blocks of oft_block_size (PEFT's r, the number of blocks, is then
 * in_features / oft_block_size per layer). See src/oft/adapter.ts.
 */
export interface OftConfig {
  oft_block_size: number;
  /** Share of a layer's blocks set to the identity at each training forward (PEFT's multiplicative dropout). */
  module_dropout: number;
  target_modules: string[];
  /** Constrained OFT: each block's skew-symmetric parameter kept within a ball of radius eps / sqrt(blocks). */
  coft: boolean;
  eps: number;
}

/**
 * Prompt tuning as PEFT names it (adapter_config.json's fields, peft_type PROMPT_TUNING): num_virtual_tokens
 * learned input embeddings prepended to every input; only they train. See src/prompt/adapter.ts.
 */
export interface PromptTuningConfig {
  num_virtual_tokens: number;
  /** TEXT: the embeddings of prompt_tuning_init_text's tokens (cut or repeated to the count); SAMPLE_VOCAB: of random vocabulary tokens; RANDOM: small random values. */
  prompt_tuning_init: PromptTuningInit;
  prompt_tuning_init_text: string;
}

export interface TrainConfig {
  mode: TrainMode;
  /** SFT (pairs, chats, text) or DPO (preference pairs); stored configurations from before DPO are SFT. */
  objective: TrainObjective;
  lora: LoraConfig;
  /** OFT's settings (mode 'oft'); stored configurations from before OFT take the defaults. */
  oft: OftConfig;
  /** Prompt tuning's settings (mode 'prompt'); stored configurations from before it take the defaults. */
  prompt: PromptTuningConfig;
  /** DPO's beta: how far the tuned model may move from the reference (higher: closer to it). */
  dpoBeta: number;
  /** Weight of an SFT loss on the chosen replies added to the DPO loss (RPO); 0 = pure DPO. */
  rpoAlpha: number;
  lr: number;
  schedule: ScheduleKind;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  maxGradNorm: number;
  batchSize: number;
  gradAccum: number;
  /** Optimizer steps; when 0, `epochs` decides (see totalSteps). */
  steps: number;
  epochs: number;
  /** Steps between evaluations (0 = only at the end). */
  evalEvery: number;
  /** Steps between checkpoints (0 = only at the end). */
  saveEvery: number;
  seed: number;
  /** Consecutive non-finite steps tolerated before the run stops. */
  maxBadSteps: number;
  // Knowing when to stop (src/train/quality): what each evaluation measures and decides.
  /** The best checkpoint's criterion (early stopping watches the same one). */
  bestMetric: BestMetric;
  /** Evaluations without an improvement (by more than earlyStopMinDelta) before the run stops; 0 = never. */
  earlyStopPatience: number;
  earlyStopMinDelta: number;
  /** Held-out examples generated greedily at each evaluation (exact match, token F1, labels); 0 = none. */
  genEvalExamples: number;
  /** Continuations sampled from the base model before training, scored at each evaluation (forgetting); 0 = none. */
  probeSamples: number;
  /** Tokens per probe continuation. */
  probeTokens: number;
  /** How much the probe NLL may rise (in %) for a checkpoint to be recommended. */
  forgetBudgetPct: number;
  /** Share of each epoch made of base-model text (replay against forgetting); 0 = none. */
  replayFraction: number;
  /**
   * Activation recomputation (gradient checkpointing per layer): each layer keeps only its input for the
   * backward and is run again there, so long sequences and larger batches fit, for about a quarter more time
   * per step. Stored configurations from before it are off.
   */
  recompute: boolean;
}

/** Any setting may be overridden; `lora`, `oft` and `prompt` field by field. */
export type TrainConfigOverrides = Partial<Omit<TrainConfig, 'lora' | 'oft' | 'prompt'>> & { lora?: Partial<LoraConfig>; oft?: Partial<OftConfig>; prompt?: Partial<PromptTuningConfig> };

/** "All linear layers", the LoRA targets per architecture (PEFT module-name suffixes). */
export const LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
export const GPT2_TARGETS = ['c_attn', 'c_proj', 'c_fc'];

export function targetsFor(arch: string | null | undefined): string[] {
  return arch === 'gpt2' ? [...GPT2_TARGETS] : [...LLAMA_TARGETS];
}

export const SCHEDULES: readonly ScheduleKind[] = ['cosine', 'linear', 'constant'];
export const MODES: readonly TrainMode[] = ['lora', 'oft', 'prompt', 'full'];
export const OBJECTIVES: readonly TrainObjective[] = ['sft', 'dpo'];
export const PROMPT_INITS: readonly PromptTuningInit[] = ['TEXT', 'SAMPLE_VOCAB', 'RANDOM'];

/** What the place that runs training can do. */
export interface TrainCapabilities {
  /** Modes it trains (the browser worker: the adapters). */
  modes: readonly TrainMode[];
  /** Why a mode is missing, for the user. */
  unavailable?: Partial<Record<TrainMode, string>>;
}

/** The command line trains every mode. */
export const CLI_TRAINING: TrainCapabilities = { modes: MODES };

/** The browser's worker trains adapters, LoRA, OFT and prompt tuning (full-parameter training needs the command line). */
export const BROWSER_TRAINING: TrainCapabilities = {
  modes: ['lora', 'oft', 'prompt'],
  unavailable: { full: 'Full-parameter training is not available in the browser: train a LoRA adapter here, or use the command line (npm run cli -- train --full).' },
};

/** Why OFT is not trained on GPT-2: PEFT's OFT wraps nn.Linear only, so its Conv1D layers give an adapter PEFT cannot load. */
export const OFT_GPT2 = "OFT is not available for GPT-2 models: PEFT's OFT does not wrap GPT-2's Conv1D layers, so the adapter could not be exported in PEFT's format. Train a LoRA adapter.";

/** What the browser's worker trains on a model of `arch` (no OFT on GPT-2). */
export function browserTraining(arch: string | null | undefined): TrainCapabilities {
  if (arch !== 'gpt2') return BROWSER_TRAINING;
  return { modes: BROWSER_TRAINING.modes.filter((m) => m !== 'oft'), unavailable: { ...BROWSER_TRAINING.unavailable, oft: OFT_GPT2 } };
}

/**
 * Defaults chosen on the example datasets (see the learning test): LoRA r=8 on every linear layer. OFT's
 * are PEFT's (blocks of 32, no module dropout, COFT off with its eps) on every linear layer.
 */
export const DEFAULT_TRAIN: TrainConfig = {
  mode: 'lora',
  objective: 'sft',
  lora: { r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: [...LLAMA_TARGETS] },
  oft: { oft_block_size: 32, module_dropout: 0, target_modules: [...LLAMA_TARGETS], coft: false, eps: 6e-5 },
  prompt: { num_virtual_tokens: 16, prompt_tuning_init: 'SAMPLE_VOCAB', prompt_tuning_init_text: '' },
  dpoBeta: 0.1,
  rpoAlpha: 0,
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
  bestMetric: 'val_loss',
  earlyStopPatience: 0,
  earlyStopMinDelta: 0,
  genEvalExamples: 16,
  probeSamples: 32,
  probeTokens: 32,
  forgetBudgetPct: 5,
  replayFraction: 0,
  recompute: false,
};

/**
 * Prompt tuning's learning rate: it moves input vectors of the embeddings' scale, and needs a rate about six
 * times LoRA's (measured on story-sentiment with tabtune-base, scripts/prompt-tuning-learning.ts: 3e-2 best
 * of 1e-2..1; 5e-3 learns next to nothing in the same steps).
 */
export const PROMPT_LR = 3e-2;

/** The default learning rate of a method. */
export function defaultLr(mode: TrainMode): number {
  return mode === 'prompt' ? PROMPT_LR : DEFAULT_TRAIN.lr;
}

/** `c` switched to `mode`; a learning rate still at the old method's default takes the new one's (others are the user's). */
export function withMode(c: TrainConfig, mode: TrainMode): TrainConfig {
  return { ...c, mode, lr: c.lr === defaultLr(c.mode) ? defaultLr(mode) : c.lr };
}

export function defaultTrainConfig(arch: string | null | undefined, over: Partial<TrainConfig> = {}): TrainConfig {
  return { ...DEFAULT_TRAIN, lora: { ...DEFAULT_TRAIN.lora, target_modules: targetsFor(arch) }, oft: { ...DEFAULT_TRAIN.oft, target_modules: targetsFor(arch) }, prompt: { ...DEFAULT_TRAIN.prompt }, ...over };
}

// ---------------------------------------------------------------------------------------------------
// The table: every setting once.

export type NumericKey =
  | Exclude<keyof TrainConfig, 'mode' | 'objective' | 'lora' | 'oft' | 'prompt' | 'schedule' | 'bestMetric' | 'recompute'>
  | 'lora.r'
  | 'lora.lora_alpha'
  | 'lora.lora_dropout'
  | 'oft.oft_block_size'
  | 'prompt.num_virtual_tokens';

interface OptionBase {
  label: string;
  /** One line for the user (the Train panel and `train --help`). */
  help: string;
  /** The command-line flag, without `--`. */
  flag: string;
}

/** A numeric setting: label, help, safe bounds. */
export interface NumericOption extends OptionBase {
  key: NumericKey;
  min: number;
  max: number;
  step: number | 'any';
  integer: boolean;
  /** Added after runs were first stored: a stored configuration without it takes the default. */
  later?: true;
  /** Shown under "When to stop" (quality) or with DPO's settings (dpo) rather than with the optimizer settings. */
  group?: 'quality' | 'dpo';
}

export const NUMERIC_OPTIONS: readonly NumericOption[] = [
  { key: 'lr', flag: 'lr', label: 'Learning rate', help: 'How far each step moves the weights. Too high: the loss jumps or becomes NaN; too low: nothing is learned.', min: 1e-6, max: 10, step: 'any', integer: false },
  { key: 'steps', flag: 'steps', label: 'Steps', help: 'Optimizer steps to run. 0 = use Epochs instead.', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'epochs', flag: 'epochs', label: 'Epochs', help: 'Passes over the training set (used when Steps is 0).', min: 0, max: 100, step: 'any', integer: false },
  { key: 'batchSize', flag: 'batch-size', label: 'Batch size', help: 'Examples per micro-batch. Larger: smoother loss, more memory.', min: 1, max: 128, step: 1, integer: true },
  { key: 'gradAccum', flag: 'grad-accum', label: 'Gradient accumulation', help: 'Micro-batches summed per step: a larger effective batch without more memory.', min: 1, max: 64, step: 1, integer: true },
  { key: 'lora.r', flag: 'rank', label: 'LoRA rank', help: 'Size of the low-rank update. Higher learns more, trains more parameters.', min: 1, max: 256, step: 1, integer: true },
  { key: 'lora.lora_alpha', flag: 'alpha', label: 'LoRA alpha', help: 'Scale of the update (alpha / rank). Usually twice the rank.', min: 1, max: 512, step: 1, integer: true },
  { key: 'lora.lora_dropout', flag: 'dropout', label: 'LoRA dropout', help: 'Randomly drops the adapter input during training; 0 to 0.3 helps against overfitting.', min: 0, max: 0.5, step: 0.01, integer: false },
  { key: 'oft.oft_block_size', flag: 'oft-block-size', label: 'OFT block size', help: 'Inputs each OFT rotation block mixes (a layer whose width it does not divide uses the nearest divisor). Larger learns more, trains more parameters.', min: 2, max: 256, step: 1, integer: true },
  { key: 'prompt.num_virtual_tokens', flag: 'virtual-tokens', label: 'Virtual tokens', help: 'Learned embeddings put before every input (prompt tuning). More can learn more; each costs one position of the context.', min: 1, max: 256, step: 1, integer: true, later: true },
  { key: 'warmupSteps', flag: 'warmup', label: 'Warmup steps', help: 'Steps over which the learning rate rises from 0 at the start.', min: 0, max: 10_000, step: 1, integer: true },
  { key: 'minLrRatio', flag: 'min-lr-ratio', label: 'Final learning-rate ratio', help: 'Where the schedule ends, as a fraction of the learning rate.', min: 0, max: 1, step: 0.05, integer: false },
  { key: 'weightDecay', flag: 'weight-decay', label: 'Weight decay', help: 'AdamW decay pulling trained weights toward 0 (0 to 0.1).', min: 0, max: 1, step: 0.01, integer: false },
  { key: 'maxGradNorm', flag: 'max-grad-norm', label: 'Gradient clipping', help: 'Largest gradient norm per step; 1 keeps early steps stable. 0 turns clipping off.', min: 0, max: 100, step: 0.1, integer: false },
  { key: 'evalEvery', flag: 'eval-every', label: 'Validate every', help: 'Steps between validation-loss measurements (0 = only at the end).', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'saveEvery', flag: 'save-every', label: 'Checkpoint every', help: 'Steps between checkpoints (0 = only at the end).', min: 0, max: 100_000, step: 1, integer: true },
  { key: 'seed', flag: 'seed', label: 'Seed', help: 'Fixes every random choice: the same seed and data repeat a run exactly.', min: 0, max: 2 ** 31 - 1, step: 1, integer: true },
  { key: 'maxBadSteps', flag: 'max-bad-steps', label: 'NaN tolerance', help: 'Consecutive NaN/Inf steps skipped before the run stops.', min: 1, max: 100, step: 1, integer: true },
  { key: 'earlyStopPatience', flag: 'early-stop-patience', label: 'Early-stopping patience', help: 'Evaluations in a row without improvement before the run stops (0 = never stop early).', min: 0, max: 100, step: 1, integer: true, later: true, group: 'quality' },
  { key: 'earlyStopMinDelta', flag: 'early-stop-min-delta', label: 'Smallest improvement', help: 'How much better an evaluation must be to count as an improvement (loss in nats, exact match as a fraction).', min: 0, max: 10, step: 'any', integer: false, later: true, group: 'quality' },
  { key: 'genEvalExamples', flag: 'gen-eval-examples', label: 'Held-out answers generated', help: 'Held-out examples answered greedily at each evaluation for exact match, token F1 and label accuracy (0 = none).', min: 0, max: 1000, step: 1, integer: true, later: true, group: 'quality' },
  { key: 'probeSamples', flag: 'probe-samples', label: 'Forgetting probe size', help: 'Texts sampled from the base model before training; their loss at each evaluation shows what the model forgets (0 = off).', min: 0, max: 1024, step: 1, integer: true, later: true, group: 'quality' },
  { key: 'probeTokens', flag: 'probe-tokens', label: 'Probe text length', help: 'Tokens per probe text.', min: 4, max: 512, step: 1, integer: true, later: true, group: 'quality' },
  { key: 'forgetBudgetPct', flag: 'forget-budget', label: 'Forgetting budget (%)', help: 'How much the probe loss may rise for a checkpoint to be recommended.', min: 0, max: 1000, step: 'any', integer: false, later: true, group: 'quality' },
  { key: 'dpoBeta', flag: 'beta', label: 'DPO beta', help: 'How strongly DPO keeps the model near the reference (the model it started from): higher stays closer. 0.1 is usual.', min: 0.001, max: 10, step: 'any', integer: false, later: true, group: 'dpo' },
  { key: 'rpoAlpha', flag: 'rpo-alpha', label: 'SFT weight on chosen', help: 'Adds the chosen replies\' supervised loss, times this weight, to the DPO loss (RPO); it keeps the chosen replies likely. 0 = pure DPO.', min: 0, max: 10, step: 'any', integer: false, later: true, group: 'dpo' },
  { key: 'replayFraction', flag: 'replay', label: 'Replay share', help: 'Share of training examples that are base-model text, to keep general skill (0 = none; 0.01 to 0.1 is typical).', min: 0, max: 0.5, step: 0.01, integer: false, later: true, group: 'quality' },
];

/** The settings that are not numbers. */
export const MODE_OPTION = {
  label: 'What to train',
  help: 'LoRA trains a small add-on and keeps the base model; OFT trains a small rotation of each layer\'s inputs instead (also an add-on); prompt tuning trains only a few input embeddings (the smallest add-on, learns less); full fine-tuning changes every weight and needs far more memory.',
  flag: 'full',
  /** The command-line flag that picks OFT. */
  oftFlag: 'oft',
  choices: { lora: 'LoRA adapter', oft: 'OFT adapter (orthogonal)', prompt: 'Prompt tuning (learned virtual tokens)', full: 'Every weight (full fine-tuning)' } satisfies Record<TrainMode, string>,
  /** One line on each method's trade-off, for the method picker. */
  tradeoffs: {
    lora: 'Low-rank updates to the chosen layers: learns most tasks well, a few MB to store.',
    oft: 'Rotates each layer\'s inputs: keeps more of what the base model knows, learns a little less.',
    prompt: 'Only a few learned input vectors (kilobytes): the base model is untouched; learns formats and labels, less new knowledge.',
    full: 'Every weight changes: learns the most, forgets the most, needs memory for the whole model several times.',
  } satisfies Record<TrainMode, string>,
} as const;
/** The training objective; the CLI's --method also picks prompt tuning (mode 'prompt'). */
export const OBJECTIVE_OPTION = {
  label: 'Objective',
  help: 'SFT learns to reproduce the answers in the data; DPO learns to prefer the chosen reply over the rejected one of each preference pair, starting from the base model or a tuned run.',
  flag: 'method',
  choices: { sft: 'Supervised fine-tuning (SFT)', dpo: 'Preference tuning (DPO)' } satisfies Record<TrainObjective, string>,
} as const;
export const PROMPT_INIT_OPTION = {
  label: 'Virtual tokens start from',
  help: 'TEXT: the embeddings of a text you give (e.g. a task description), cut or repeated to the count; SAMPLE_VOCAB: embeddings of random vocabulary tokens; RANDOM: small random values.',
  flag: 'prompt-init',
  textFlag: 'prompt-init-text',
  choices: { TEXT: 'A text you give', SAMPLE_VOCAB: 'Random vocabulary tokens', RANDOM: 'Random values' } satisfies Record<PromptTuningInit, string>,
} as const;
export const SCHEDULE_OPTION = { label: 'Schedule', help: 'How the learning rate falls after warmup.', flag: 'schedule' } as const;
export const BEST_METRICS: readonly BestMetric[] = ['val_loss', 'exact_match'];
export const BEST_METRIC_OPTION = {
  label: 'Best checkpoint by',
  help: 'What makes a checkpoint the best one (kept in storage; early stopping watches it too). Exact match needs held-out answers generated.',
  flag: 'best-metric',
  choices: { val_loss: 'Validation loss (lower)', exact_match: 'Exact match (higher)' } satisfies Record<BestMetric, string>,
} as const;
export const RECOMPUTE_OPTION = {
  label: 'Recompute activations',
  help: 'Keeps only each layer\'s input during a step and recomputes the rest in the backward pass: much less memory for long sequences and large batches, for about a quarter more time per step. The result is the same.',
  flag: 'recompute',
} as const;
export const TARGETS_OPTION = {
  label: 'LoRA targets',
  help: 'Layers that get an adapter: attention (q, k, v, o) and MLP (gate, up, down). More layers learn more.',
  flag: 'targets',
} as const;

/** The modes a Train panel offers: what `caps` can train, plus the current one marked unavailable if it cannot. */
export function modeChoices(caps: TrainCapabilities, current: TrainMode): { mode: TrainMode; label: string; available: boolean }[] {
  const can = caps.modes;
  return MODES.filter((m) => can.includes(m) || m === current).map((m) => ({
    mode: m,
    label: can.includes(m) ? MODE_OPTION.choices[m] : `${MODE_OPTION.choices[m]} (not available here)`,
    available: can.includes(m),
  }));
}

/**
 * What any LoRA adapter must be to be built at all (also one loaded from a PEFT folder, which may use a
 * rank or dropout outside the bounds above: those are what tabtune trains, these are what LoRA is).
 */
export function loraShapeProblems(l: LoraConfig): string[] {
  const out: string[] = [];
  if (!(Number.isInteger(l.r) && l.r >= 1)) out.push(`LoRA rank r must be a positive integer, got ${l.r}.`);
  if (!(l.lora_alpha > 0 && Number.isFinite(l.lora_alpha))) out.push(`lora_alpha must be positive, got ${l.lora_alpha}.`);
  if (!(l.lora_dropout >= 0 && l.lora_dropout < 1)) out.push(`lora_dropout must be in [0, 1), got ${l.lora_dropout}.`);
  return out;
}

/** What any OFT adapter must be to be built at all (one loaded from PEFT files included). */
export function oftShapeProblems(o: Pick<OftConfig, 'oft_block_size' | 'module_dropout' | 'eps'>): string[] {
  const out: string[] = [];
  if (!(Number.isInteger(o.oft_block_size) && o.oft_block_size >= 2)) out.push(`OFT block size must be a whole number of at least 2, got ${o.oft_block_size}.`);
  if (!(o.module_dropout >= 0 && o.module_dropout < 1)) out.push(`OFT module_dropout must be in [0, 1), got ${o.module_dropout}.`);
  if (!(o.eps > 0 && Number.isFinite(o.eps))) out.push(`OFT eps must be positive, got ${o.eps}.`);
  return out;
}

/** PEFT's adjust_oft_parameters: the divisor of n nearest to want (the smaller on a tie); n when want >= n. (Here, TF.js-free: the page's estimate uses it too.) */
export function nearestDivisor(n: number, want: number): number {
  if (want >= n) return n;
  let hi = want;
  while (hi <= n && n % hi !== 0) hi++;
  let lo = want;
  while (lo > 1 && n % lo !== 0) lo--;
  return want - lo <= hi - want ? lo : hi;
}

type TopNumericKey = Exclude<NumericKey, `lora.${string}` | `oft.${string}` | `prompt.${string}`>;

export function getOption(c: TrainConfig, key: NumericKey): number {
  if (key.startsWith('lora.')) return c.lora[key.slice(5) as 'r' | 'lora_alpha' | 'lora_dropout'];
  if (key.startsWith('oft.')) return c.oft[key.slice(4) as 'oft_block_size'];
  if (key.startsWith('prompt.')) return c.prompt[key.slice(7) as 'num_virtual_tokens'];
  return c[key as TopNumericKey];
}

export function setOption(c: TrainConfig, key: NumericKey, value: number): TrainConfig {
  if (key.startsWith('lora.')) return { ...c, lora: { ...c.lora, [key.slice(5)]: value } };
  if (key.startsWith('oft.')) return { ...c, oft: { ...c.oft, [key.slice(4)]: value } };
  if (key.startsWith('prompt.')) return { ...c, prompt: { ...c.prompt, [key.slice(7)]: value } };
  return { ...c, [key]: value };
}

// ---------------------------------------------------------------------------------------------------
// The schema, built from the table.

function numberSchema(o: NumericOption) {
  let s = z.number({ error: `${o.label}: enter a number.` }).refine(Number.isFinite, `${o.label}: enter a number.`);
  if (o.integer) s = s.refine(Number.isInteger, `${o.label}: must be a whole number.`);
  const checked = s.refine((v) => v >= o.min && v <= o.max, `${o.label}: must be between ${o.min} and ${o.max}.`);
  return o.later ? checked.default(getOption(DEFAULT_TRAIN, o.key)) : checked;
}

const byKey = (k: NumericKey) => numberSchema(NUMERIC_OPTIONS.find((o) => o.key === k)!);

const loraSchema = z.strictObject({
  r: byKey('lora.r'),
  lora_alpha: byKey('lora.lora_alpha'),
  lora_dropout: byKey('lora.lora_dropout'),
  target_modules: z.array(z.string().min(1), { error: `${TARGETS_OPTION.label}: a list of layer names.` }),
});

const oftSchema = z.strictObject({
  oft_block_size: byKey('oft.oft_block_size'),
  module_dropout: z.number({ error: 'OFT module dropout: enter a number.' }).refine((v) => v >= 0 && v < 1, 'OFT module dropout: must be at least 0 and below 1.'),
  target_modules: z.array(z.string().min(1), { error: `${TARGETS_OPTION.label}: a list of layer names.` }),
  coft: z.boolean({ error: 'OFT coft: true or false.' }),
  eps: z.number({ error: 'OFT eps: enter a number.' }).refine((v) => v > 0 && Number.isFinite(v), 'OFT eps: must be positive.'),
});

const promptSchema = z.strictObject({
  num_virtual_tokens: byKey('prompt.num_virtual_tokens'),
  prompt_tuning_init: z.enum(PROMPT_INITS, { error: `${PROMPT_INIT_OPTION.label}: must be ${PROMPT_INITS.join(', ')}.` }),
  prompt_tuning_init_text: z.string({ error: 'Prompt tuning init text: must be text.' }),
});

const trainSchema = z.strictObject({
  mode: z.enum(MODES, { error: `${MODE_OPTION.label}: must be ${MODES.slice(0, -1).join(', ')} or ${MODES[MODES.length - 1]}.` }),
  objective: z.enum(OBJECTIVES, { error: `${OBJECTIVE_OPTION.label}: must be ${OBJECTIVES.join(' or ')}.` }).default(DEFAULT_TRAIN.objective),
  lora: loraSchema,
  // Stored configurations from before OFT have no `oft`: they take the defaults.
  oft: oftSchema.default(() => ({ ...DEFAULT_TRAIN.oft, target_modules: [...DEFAULT_TRAIN.oft.target_modules] })),
  prompt: promptSchema.default(() => ({ ...DEFAULT_TRAIN.prompt })),
  schedule: z.enum(SCHEDULES, { error: `${SCHEDULE_OPTION.label}: must be ${SCHEDULES.join(', ')}.` }),
  bestMetric: z.enum(BEST_METRICS, { error: `${BEST_METRIC_OPTION.label}: must be ${BEST_METRICS.join(' or ')}.` }).default(DEFAULT_TRAIN.bestMetric),
  recompute: z.boolean({ error: `${RECOMPUTE_OPTION.label}: true or false.` }).default(DEFAULT_TRAIN.recompute),
  ...(Object.fromEntries(NUMERIC_OPTIONS.filter((o) => !o.key.includes('.')).map((o) => [o.key, numberSchema(o)])) as Record<TopNumericKey, ReturnType<typeof numberSchema>>),
});

/** Every key a configuration may hold (for messages about unknown ones). */
export const TRAIN_KEYS: readonly string[] = Object.keys(trainSchema.shape);

export type ParsedConfig = { ok: true; config: TrainConfig } | { ok: false; problems: string[] };

function problemText(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? `${issue.path.join('.')}.` : '';
    const known = issue.path[0] === 'lora' ? Object.keys(loraSchema.shape) : issue.path[0] === 'oft' ? Object.keys(oftSchema.shape) : issue.path[0] === 'prompt' ? Object.keys(promptSchema.shape) : TRAIN_KEYS;
    return `Unknown setting(s): ${issue.keys.map((k) => where + k).join(', ')}. Known settings: ${known.join(', ')}.`;
  }
  if (issue.code === 'invalid_type') {
    let v: unknown = input;
    for (const k of issue.path) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
    if (v === undefined) return `Missing setting: ${issue.path.join('.')}.`;
  }
  return issue.message;
}

/**
 * Checks a whole configuration (an unknown field is an error, not a silent no-op) against the table's
 * bounds and what `caps` can run. Returns every problem, one message per bad field.
 */
export function parseTrainConfig(input: unknown, caps: TrainCapabilities): ParsedConfig {
  const r = trainSchema.safeParse(input);
  const problems = r.success ? [] : r.error.issues.map((i) => problemText(i, input));
  if (r.success) {
    const c = r.data as TrainConfig;
    if (!caps.modes.includes(c.mode)) problems.push(caps.unavailable?.[c.mode] ?? `${MODE_OPTION.choices[c.mode]} is not available here.`);
    if (c.mode === 'lora' && c.lora.target_modules.length === 0) problems.push(`${TARGETS_OPTION.label}: pick at least one layer type.`);
    if (c.mode === 'oft' && c.oft.target_modules.length === 0) problems.push('OFT targets: pick at least one layer type.');
    if (c.mode === 'prompt' && c.prompt.prompt_tuning_init === 'TEXT' && !c.prompt.prompt_tuning_init_text.trim()) {
      problems.push(`${PROMPT_INIT_OPTION.label}: a text is needed to start from a text (or start from random vocabulary tokens).`);
    }
    if (c.steps === 0 && !(c.epochs > 0)) problems.push('Steps or Epochs must be more than 0.');
    if (c.objective === 'dpo' && c.replayFraction > 0) problems.push(`${NUMERIC_OPTIONS.find((o) => o.key === 'replayFraction')!.label}: replay mixes base-model text into supervised training; DPO trains on preference pairs only (set it to 0).`);
    if (c.bestMetric === 'exact_match' && c.genEvalExamples === 0) problems.push(`${BEST_METRIC_OPTION.label}: exact match needs held-out answers generated (set "Held-out answers generated" above 0).`);
    if (!problems.length) return { ok: true, config: c };
  }
  return { ok: false, problems };
}

/** Problems with a config, one message per bad field (empty: it can run with `caps`). */
export function validateConfig(c: TrainConfig, caps: TrainCapabilities): string[] {
  const r = parseTrainConfig(c, caps);
  return r.ok ? [] : r.problems;
}

/**
 * The defaults for `arch` with `over` applied (lora and oft field by field), checked. Giving steps without
 * epochs means "run that many steps".
 */
export function resolveTrainConfig(arch: string | null | undefined, over: TrainConfigOverrides, caps: TrainCapabilities): ParsedConfig {
  if (!over || typeof over !== 'object') return { ok: false, problems: ['The training settings must be an object.'] };
  const base = defaultTrainConfig(arch);
  const lora = over.lora && typeof over.lora === 'object' ? { ...base.lora, ...over.lora } : (over.lora ?? base.lora);
  const oft = over.oft && typeof over.oft === 'object' ? { ...base.oft, ...over.oft } : (over.oft ?? base.oft);
  const prompt = over.prompt && typeof over.prompt === 'object' ? { ...base.prompt, ...over.prompt } : (over.prompt ?? base.prompt);
  const merged = { ...base, ...over, lora, oft, prompt };
  // A method asked for without a learning rate gets that method's default.
  if (over.mode !== undefined && over.lr === undefined && MODES.includes(over.mode)) merged.lr = defaultLr(over.mode);
  if (over.steps && over.epochs === undefined) merged.epochs = 0;
  return parseTrainConfig(merged, caps);
}

// ---------------------------------------------------------------------------------------------------
// Arithmetic every host shares.

/** Micro-batches in one epoch of `trainExamples` examples. */
export function microBatchesPerEpoch(c: Pick<TrainConfig, 'batchSize'>, trainExamples: number): number {
  return Math.max(1, Math.ceil(trainExamples / c.batchSize));
}

/**
 * Optimizer steps a config runs on `trainExamples` examples: `steps` when given, otherwise epochs x
 * steps per epoch rounded up (as transformers' Trainer does: 1.1 epochs of 3 steps is 4 steps).
 */
export function totalSteps(c: Pick<TrainConfig, 'steps' | 'epochs' | 'batchSize' | 'gradAccum'>, trainExamples: number): number {
  if (c.steps > 0) return c.steps;
  const perEpoch = Math.ceil(microBatchesPerEpoch(c, trainExamples) / c.gradAccum);
  // The epsilon keeps 3 epochs of 113 steps at 339 (3 * 113 in floating point is exact, 0.1 * 30 is not).
  return Math.max(1, Math.ceil(c.epochs * perEpoch - 1e-9));
}

/** Whether step `step` (1-based, after the update) evaluates / saves: every N steps and at the last. */
export function isEvalStep(c: Pick<TrainConfig, 'evalEvery'>, step: number, total: number): boolean {
  return step === total || (c.evalEvery > 0 && step % c.evalEvery === 0);
}

export function isSaveStep(c: Pick<TrainConfig, 'saveEvery'>, step: number, total: number): boolean {
  return step === total || (c.saveEvery > 0 && step % c.saveEvery === 0);
}
