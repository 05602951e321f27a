// A fine-tuning job end to end, shared by the CLI and the browser worker: records from the dataset
// doctor -> training sequences -> LoRA, OFT, prompt-tuning (or full-parameter) trainer -> held-out comparison of base and
// tuned generations (exact match and token overlap). Nothing here touches the filesystem or the DOM.
import { encodeRecords, preferenceSides, type RecordEncoder } from '../data/encode';
import type { DataRecord, Message, TextRecord } from '../data/types';
import { packText } from '../data/text';
import { textPromptAndAnswer } from './text';
import { LoraAdapter } from '../lora/adapter';
import { OftAdapter } from '../oft/adapter';
import { PromptTuningAdapter } from '../prompt/adapter';
import * as tf from '@tensorflow/tfjs-core';
import { generateIds } from '../model/generate';
import type { CausalLM } from '../model/causal-lm';
import type { LanguageModel } from '../model/load';
import type { RecipeJob } from '../io/recipes';
import { Trainer, TrainingError, type Example, type Objective, type TrainableAdapter } from './loop';
import { contextLength } from '../model/config';
import type { TrainConfig } from './config';
import { dpoObjective, type PreferenceExample } from './dpo';


/**
 * The SFT examples of records: pairs and chats encoded one by one; plain-text paragraphs packed into windows
 * of `windowLen` tokens (default the encoder's max sequence length; src/data/text.ts).
 */
export function toExamples(encoder: RecordEncoder, records: DataRecord[], windowLen = encoder.maxSeqLen): Example[] {
  const text = records.filter((r): r is TextRecord => r.kind === 'text');
  const encoded = encodeRecords(encoder, records.filter((r) => r.kind !== 'preference' && r.kind !== 'text')).examples.map(({ input, target, weight }) => ({ input, target, weight }));
  return text.length ? [...encoded, ...packText(encoder.tokenizer, text, windowLen)] : encoded;
}

/** The windows plain text is packed into for a run: prompt tuning's virtual tokens take their room in the context. */
export function textWindowLen(encoder: RecordEncoder, lm: CausalLM, config: Pick<TrainConfig, 'mode' | 'prompt'>): number {
  return config.mode === 'prompt' ? Math.min(encoder.maxSeqLen, contextLength(lm.config) - config.prompt.num_virtual_tokens) : encoder.maxSeqLen;
}

/** The preference pairs among `records`, encoded for DPO (a pair that cannot be encoded is left out: the doctor reported it). */
export function toPreferenceExamples(encoder: RecordEncoder, records: readonly DataRecord[]): PreferenceExample[] {
  const out: PreferenceExample[] = [];
  for (const r of records) {
    if (r.kind !== 'preference') continue;
    const e = encoder.encodePreference(r);
    if (e.ok) out.push({ chosen: pick(e.chosen), rejected: pick(e.rejected) });
  }
  return out;
}

const pick = ({ input, target, weight }: Example): Example => ({ input, target, weight });

/**
 * What a run's objective trains on, from the doctor's records: SFT the pairs and chats, DPO the preference
 * pairs. Records of the other kind are counted in `left` (the host tells the user); none at all is an error.
 */
export function recordsFor(config: Pick<TrainConfig, 'objective'>, records: readonly DataRecord[]): { use: DataRecord[]; left: number } {
  const dpo = config.objective === 'dpo';
  const use = records.filter((r) => (r.kind === 'preference') === dpo);
  return { use, left: records.length - use.length };
}

/** The objective a configuration trains with: DPO (beta, RPO weight) or, by default, the causal-LM loss. */
export function objectiveFor(config: TrainConfig): Objective<PreferenceExample> | null {
  return config.objective === 'dpo' ? dpoObjective({ beta: config.dpoBeta, rpoAlpha: config.rpoAlpha }) : null;
}

/** The adapters a job trains (mode 'lora', 'oft', 'prompt'); tell them apart with instanceof. */
export type TuningAdapter = LoraAdapter | OftAdapter | PromptTuningAdapter;

/** A new adapter of the configuration's kind on `model` (null for full-parameter training). */
export function createAdapter(model: Pick<LanguageModel, 'lm' | 'tokenizer'>, config: TrainConfig): TuningAdapter | null {
  if (config.mode === 'lora') return new LoraAdapter(model.lm, config.lora, { seed: config.seed });
  if (config.mode === 'oft') return new OftAdapter(model.lm, config.oft);
  if (config.mode === 'prompt') {
    const p = config.prompt;
    // PEFT tokenizes the init text as the tokenizer does by default (with BOS where it adds one).
    const initIds = p.prompt_tuning_init === 'TEXT' ? model.tokenizer.encode(p.prompt_tuning_init_text) : undefined;
    return new PromptTuningAdapter(model.lm, p, { seed: config.seed, initIds });
  }
  return null;
}

/**
 * Builds the adapter (LoRA, OFT or prompt-tuning mode; or takes `o.adapter`, e.g. an SFT adapter DPO continues) and the
 * trainer for a model and encoded data, with `o.objective` (default: the causal-LM loss on Examples).
 */
export function createTrainer<E = Example>(model: LanguageModel, train: E[], val: E[], config: TrainConfig, o: { objective?: Objective<E> | null; adapter?: TuningAdapter } = {}): Trainer<E, TuningAdapter> {
  const adapter = o.adapter ?? createAdapter(model, config);
  try {
    if (adapter instanceof PromptTuningAdapter) checkPromptContext(model.lm, adapter.numVirtualTokens, [...train, ...val]);
    return new Trainer<E, TuningAdapter>(model.lm, train, val, config, adapter, o.objective ?? undefined);
  } catch (e) {
    adapter?.dispose();
    throw e;
  }
}

/** The token lengths of a training example (an Example's input; both sides of a preference pair). */
function sequenceLengths(e: unknown): number[] {
  const x = e as Partial<Example & PreferenceExample>;
  if (Array.isArray(x.input)) return [x.input.length];
  return [x.chosen?.input.length ?? 0, x.rejected?.input.length ?? 0];
}

/** Prompt tuning's virtual tokens take their place in the context: the longest sequence must leave room for them. */
function checkPromptContext(lm: CausalLM, virtual: number, examples: readonly unknown[]): void {
  const ctx = contextLength(lm.config);
  let longest = 0;
  for (const e of examples) for (const n of sequenceLengths(e)) longest = Math.max(longest, n);
  if (longest + virtual > ctx) {
    throw new TrainingError(
      'BAD_DATA',
      `the longest example is ${longest} tokens and prompt tuning puts ${virtual} virtual tokens before it: ${longest + virtual} is more than the model's context (${ctx})`,
      `Set the max sequence length to ${ctx - virtual} or less, or use fewer virtual tokens.`,
    );
  }
}

/** The prompt a record's expected answer follows, and that answer (a preference pair's: its chosen reply). */
export function promptAndAnswer(r: DataRecord): { prompt: { prompt: string } | { messages: Message[] }; expected: string; shown: string } | null {
  if (r.kind === 'pair') return { prompt: { prompt: r.prompt }, expected: r.completion, shown: r.prompt };
  if (r.kind === 'preference') {
    // Prompted as DPO trains it (preferenceSides): one user turn as a pair's prompt.
    const [side] = preferenceSides(r);
    return promptAndAnswer(side!);
  }
  if (r.kind === 'chat') {
    let last = r.messages.length - 1;
    while (last >= 0 && r.messages[last]!.role !== 'assistant') last--;
    if (last < 0) return null;
    const before = r.messages.slice(0, last);
    const lastUser = [...before].reverse().find((m) => m.role === 'user');
    return { prompt: { messages: before }, expected: r.messages[last]!.content, shown: lastUser?.content ?? '' };
  }
  return null;
}

function words(s: string): string[] {
  return s
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

/** Token-overlap F1 over lower-cased words (as in SQuAD): 1 = same words, 0 = none shared. */
export function overlapF1(output: string, expected: string): number {
  const a = words(output);
  const b = words(expected);
  if (!a.length && !b.length) return 1;
  if (!a.length || !b.length) return 0;
  const counts = new Map<string, number>();
  for (const w of b) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of a) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (!common) return 0;
  const p = common / a.length;
  const rc = common / b.length;
  return (2 * p * rc) / (p + rc);
}

/** Exact match after trimming surrounding whitespace. */
export function exactMatch(output: string, expected: string): boolean {
  return output.trim() === expected.trim();
}

export interface HeldOutRow {
  line: number;
  prompt: string;
  expected: string;
  output: string;
  exact: boolean;
  overlap: number;
  finishReason: string;
  /**
   * Loss of the expected answer given the prompt: mean negative log-likelihood (nats) of the tokens
   * training puts the loss on, exactly as the trainer computes it for this example; null when the
   * record cannot be encoded (too long for the model).
   */
  loss: number | null;
}

export interface HeldOutResult {
  rows: HeldOutRow[];
  /** Fractions in [0, 1]. */
  exact: number;
  overlap: number;
  /** Mean of the rows' losses (null when none could be scored). */
  loss: number | null;
}

/**
 * Weighted mean NLL (nats) of an encoded example's targets: the training loss of that one example.
 * The value is read asynchronously (a synchronous read loses the WebGPU device in Chromium).
 */
export async function exampleLoss(lm: CausalLM, ex: Pick<Example, 'input' | 'target' | 'weight'>): Promise<number | null> {
  const w = ex.weight.reduce((a, b) => a + b, 0);
  if (!w) return null;
  const nll = tf.tidy(() => {
    const T = ex.input.length;
    const logits = lm.forward([ex.input]); // [1, T, V]
    const lp = tf.reshape(tf.logSoftmax(logits), [T, -1]); // [T, V]
    const picked = tf.sum(tf.mul(lp, tf.cast(tf.oneHot(tf.tensor1d(ex.target, 'int32'), lm.config.vocab_size), 'float32')), 1); // [T]
    return tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(ex.weight))));
  });
  try {
    return (await nll.data())[0]! / w;
  } finally {
    nll.dispose();
  }
}

/**
 * Greedy generation for every held-out record with the model as it is now (attach, detach or scale
 * an adapter before calling), stopping on the job's stop token or strings.
 */
export async function heldOutEval(
  model: LanguageModel,
  encoder: RecordEncoder,
  records: DataRecord[],
  opts: {
    maxNewTokens?: number;
    batchSize?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
    /** Score each expected answer's loss (one more forward per record; default true). false: every loss is null. */
    scoreLoss?: boolean;
  } = {},
): Promise<HeldOutResult> {
  // Plain text: the opening words of each held-out paragraph, continued (the rest is the expected text).
  type Asked = NonNullable<ReturnType<typeof promptAndAnswer>> | ReturnType<typeof textPromptAndAnswer>;
  const items = records.map((r) => ({ r, pa: r.kind === 'text' ? textPromptAndAnswer(r) : promptAndAnswer(r) })).filter((x): x is { r: DataRecord; pa: Asked } => x.pa !== null);
  const stop = encoder.stop;
  const maxNew =
    opts.maxNewTokens ??
    Math.min(
      // Plain text: a continuation of the opening words, not the whole paragraph.
      items.length && items.every((x) => x.r.kind === 'text') ? 48 : 256,
      Math.max(8, ...items.map((x) => model.tokenizer.encode(x.pa.expected, { addBos: false }).length * 2 + 4)),
    );
  const bs = opts.batchSize ?? 8;
  const rows: HeldOutRow[] = [];
  for (let i = 0; i < items.length; i += bs) {
    if (opts.signal?.aborted) break;
    const chunk = items.slice(i, i + bs);
    const results = await generateIds(
      model.lm,
      chunk.map((x) => ('text' in x.pa.prompt ? model.tokenizer.encode(x.pa.prompt.text) : encoder.promptIds(x.pa.prompt))),
      // The job's stop token replaces the model's EOS (which a model like stories260K never emits).
      [],
      { maxNewTokens: maxNew, temperature: 0, stopStrings: chunk.every((x) => x.r.kind === 'text') ? [...stop.stopStrings, '\n\n'] : stop.stopStrings, stopTokenIds: stop.stopTokenId !== null ? [stop.stopTokenId] : [], signal: opts.signal },
      { newStream: (p) => model.tokenizer.createStreamDecoder(true, p) },
    );
    for (const [k, res] of results.entries()) {
      const { r, pa } = chunk[k]!;
      const enc = opts.scoreLoss !== false && r.kind !== 'text' ? encoder.encode(r) : null;
      // A text row's loss: the whole held-out paragraph's, per token (its first window).
      const textWindow = opts.scoreLoss !== false && r.kind === 'text' ? packText(model.tokenizer, [r], encoder.maxSeqLen)[0] : undefined;
      const loss = enc?.ok ? await exampleLoss(model.lm, enc.example) : textWindow ? await exampleLoss(model.lm, textWindow) : null;
      rows.push({ line: r.line, prompt: pa.shown, expected: pa.expected, output: res.text.trim(), exact: exactMatch(res.text, pa.expected), overlap: overlapF1(res.text, pa.expected), finishReason: res.finishReason, loss });
    }
    opts.onProgress?.(rows.length, items.length);
  }
  const n = rows.length || 1;
  const losses = rows.map((r) => r.loss).filter((l): l is number => l !== null);
  return { rows, exact: rows.filter((r) => r.exact).length / n, overlap: rows.reduce((a, r) => a + r.overlap, 0) / n, loss: losses.length ? losses.reduce((a, b) => a + b, 0) / losses.length : null };
}

/** Base vs tuned on the same held-out records: the adapter is switched off, then on (strength 1). */
export async function compareBaseTuned(model: LanguageModel, adapter: Pick<TrainableAdapter, 'enabled' | 'strength'>, encoder: RecordEncoder, records: DataRecord[], opts: Parameters<typeof heldOutEval>[3] = {}): Promise<{ base: HeldOutResult; tuned: HeldOutResult }> {
  const was = { enabled: adapter.enabled, strength: adapter.strength };
  try {
    adapter.enabled = false;
    const base = await heldOutEval(model, encoder, records, opts);
    adapter.enabled = true;
    adapter.strength = 1;
    const tuned = await heldOutEval(model, encoder, records, opts);
    return { base, tuned };
  } finally {
    adapter.enabled = was.enabled;
    adapter.strength = was.strength;
  }
}

/** Frees what a job holds on the backend besides the base model. */
export function disposeTrainer(t: Trainer): void {
  t.dispose();
  t.adapter?.dispose();
}

/** The same job, described for TRL / Axolotl (see src/io/recipes.ts). */
export function recipeJob(config: TrainConfig, o: { baseModel: string; seqLen: number; valSplit: number; arch: 'llama' | 'gpt2'; datasetFile?: string }): Omit<RecipeJob, 'format'> {
  return {
    baseModel: o.baseModel,
    arch: o.arch,
    lora: config.lora,
    datasetFile: o.datasetFile ?? 'data.jsonl',
    train: {
      lr: config.lr,
      schedule: config.schedule,
      warmupSteps: config.warmupSteps,
      weightDecay: config.weightDecay,
      maxGradNorm: config.maxGradNorm,
      batchSize: config.batchSize,
      gradAccum: config.gradAccum,
      steps: config.steps,
      epochs: config.epochs,
      evalEvery: config.evalEvery,
      saveEvery: config.saveEvery,
      seed: config.seed,
      seqLen: o.seqLen,
      valSplit: o.valSplit,
      minLrRatio: config.minLrRatio,
      recompute: config.recompute,
    },
  };
}
