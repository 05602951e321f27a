// The training loop: an adapter's variables only (LoRA, OFT) or full-parameter (every weight), AdamW,
// warmup + schedule, global-norm clipping, micro-batches with gradient accumulation, right padding
// with attention masks, periodic validation and checkpoints, a NaN/Inf guard, pause/resume/cancel.
//
// Every random choice derives from (seed, step) or (seed, epoch): data order, dropout, LoRA init.
// A checkpoint therefore needs only the weights, the AdamW moments and a few counters for a
// resumed run to reproduce an uninterrupted one exactly.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM, ForwardOptions } from '../model/causal-lm';
import { shuffle } from '../util/random';
import { maskedCrossEntropy } from './loss';
import { AdamW, clipScale, DEFAULT_ADAMW, squaredNorm } from './optimizer';
import { learningRate } from './schedule';
import { yieldToEventLoop } from '../util/async';
import { microBatchesPerEpoch, totalSteps, type TrainConfig } from './config';

/**
 * What the Trainer and its hosts need of an adapter (LoraAdapter, OftAdapter): the trained variables with
 * their checkpoint names, the training switch (dropout) and its seed, and the inference knobs.
 */
export interface TrainableAdapter {
  /** Checkpoint names of variables(), in order (LoRA: `<module>.lora_A`, `<module>.lora_B`; OFT: `<module>.oft_R`). */
  readonly paramNames: readonly string[];
  variables(): tf.Variable[];
  numParams(): number;
  /** Dropout is active only while training. */
  training: boolean;
  /** Seeds dropout reproducibly: each micro-batch sets a base. */
  setDropoutSeed(base: number): void;
  /** Off: the base model. */
  enabled: boolean;
  /** 0 = base model, 1 = tuned. */
  strength: number;
  /** The trained tensors by checkpoint name, as a checkpoint holds them. */
  getTensors(): Record<string, { shape: number[]; data: Float32Array }>;
  /** Sets them from tensors by checkpoint name (a checkpoint's `tensors` will do). */
  setTensors(t: Readonly<Record<string, { data: Float32Array }>>): void;
  /** Detaches from the model and frees the variables. */
  dispose(): void;
}

/** One training sequence: target[t] is the token to predict after input[0..t]; weight[t] 1 = trained. */
export interface Example {
  input: number[];
  target: number[];
  weight: number[];
}

export interface StepMetrics {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  smoothLoss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensPerSec: number;
  etaSec: number;
  memory: { numTensors: number; numBytes: number };
  backend: string;
  /** Set when this step was skipped by the NaN/Inf guard, with the reason. */
  skipped?: string;
  /** The objective's own statistics of this step (DPO: rewards/chosen, rewards/margins, …), means over its micro-batches. */
  extra?: Record<string, number>;
}

export interface EvalMetrics {
  step: number;
  valLoss: number;
  valPpl: number;
  tokens: number;
  /** Measurements plugged into the loop (LoopOptions.metrics), by name. */
  extra?: Record<string, number>;
  /** Their detail (tables, per-layer values, sample answers), by metric name. */
  details?: Record<string, unknown>;
}

/** What a checkpoint holds: tensors by name plus JSON state. */
export interface TrainerCheckpoint {
  step: number;
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
  state: TrainerState;
  /** valStep: the step valLoss was measured at (an earlier one when the checkpoint falls between evaluations). */
  metrics: { trainLoss?: number; valLoss?: number; valStep?: number; extra?: Record<string, number> };
}

export interface TrainerState {
  step: number;
  /** Micro-batches consumed (the data-order cursor). */
  micro: number;
  seed: number;
  smoothLoss: number | null;
  smoothCount: number;
  badSteps: number;
  optimizerT: number;
  lastValLoss: number | null;
  /** The step `lastValLoss` was measured at (absent in checkpoints made before it was recorded). */
  lastValStep?: number | null;
  /** Names of the trained tensors, in optimizer order. */
  params: string[];
  /** The run's planned steps (absent in checkpoints made before it was recorded). */
  totalSteps?: number;
}

export class TrainingError extends Error {
  override name = 'TrainingError';
  constructor(
    readonly code: 'NON_FINITE_LOSS' | 'BAD_DATA',
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** Seeded permutation of 0..n-1 (the data order of one epoch). */
export function permutation(n: number, seed: number): number[] {
  return shuffle(Array.from({ length: n }, (_, i) => i), seed);
}

/** Right-pads a micro-batch to its longest example; padded positions are masked out of attention and loss. */
export function collate(batch: Example[], padId = 0): { ids: number[][]; mask: number[][]; target: number[][]; weight: number[][] } {
  const T = Math.max(...batch.map((e) => e.input.length));
  const pad = (a: number[], v: number) => [...a, ...new Array<number>(T - a.length).fill(v)];
  return {
    ids: batch.map((e) => pad(e.input, padId)),
    mask: batch.map((e) => pad(e.input.map(() => 1), 0)),
    target: batch.map((e) => pad(e.target, 0)),
    weight: batch.map((e) => pad(e.weight, 0)),
  };
}

/**
 * Where an objective reports statistics of a micro-batch besides its loss (DPO's rewards): scalars made
 * inside the loss computation, kept by the sink (tf.keep) and read with the loss. Steps report them in
 * StepMetrics.extra under `name`, evaluations in EvalMetrics.extra under `eval_${name}` (as TRL logs them),
 * both averaged with the batches' weights.
 */
export type StatSink = (name: string, value: tf.Scalar) => void;

/**
 * What a step minimises. The default is next-token cross-entropy on masked sequences (pairs with the loss
 * on the completion, or plain text with the loss everywhere); preference pairs (DPO) are another objective
 * over their own example type, driven by the same Trainer and loop.
 */
export interface Objective<E> {
  name: string;
  /**
   * Mean loss of a micro-batch: a scalar, computed inside tf.variableGrads / tf.tidy; statistics go to `stat`;
   * `forward` is passed on to the model's forward (training steps: activation recomputation).
   */
  loss(lm: CausalLM, batch: E[], stat?: StatSink, forward?: TrainForward): tf.Scalar;
  /** Tokens a micro-batch feeds (throughput) and the weight of its mean loss (evaluation averages by it). */
  count(batch: E[]): { tokens: number; weight: number };
  /** State the objective keeps with every checkpoint (DPO: its cached reference log-probabilities). */
  checkpointTensors?(train: readonly E[], val: readonly E[]): Record<string, { shape: number[]; data: Float32Array }>;
  /** Restores it from a checkpoint's tensors (Trainer.restore). */
  restoreTensors?(tensors: Readonly<Record<string, { data: Float32Array }>>, train: readonly E[], val: readonly E[]): void;
}

/** What a training step asks of the model's forward beyond the batch (the run's Recompute activations). */
export type TrainForward = Pick<ForwardOptions, 'recompute'>;

/** Statistics collected from micro-batches (kept tensors until read), averaged by weight. */
export class Stats {
  private pending: { name: string; t: tf.Scalar; w: number }[] = [];
  private sums = new Map<string, { v: number; w: number }>();
  sink(weight: number): StatSink {
    return (name, value) => this.pending.push({ name, t: tf.keep(value), w: weight });
  }
  get size(): number {
    return this.pending.length;
  }
  private take(values: number[]): void {
    this.pending.forEach((p, i) => {
      const s = this.sums.get(p.name) ?? { v: 0, w: 0 };
      this.sums.set(p.name, { v: s.v + values[i]! * p.w, w: s.w + p.w });
    });
    tf.dispose(this.pending.map((p) => p.t));
    this.pending = [];
  }
  readSync(): void {
    this.take(this.pending.map((p) => p.t.dataSync()[0]!));
  }
  async read(): Promise<void> {
    const values: number[] = [];
    for (const p of this.pending) values.push((await p.t.data())[0]!);
    this.take(values);
  }
  /** Frees what was never read (a step that threw). */
  dispose(): void {
    tf.dispose(this.pending.map((p) => p.t));
    this.pending = [];
  }
  means(prefix = ''): Record<string, number> | undefined {
    if (!this.sums.size) return undefined;
    return Object.fromEntries([...this.sums].map(([k, s]) => [prefix + k, s.w ? s.v / s.w : NaN]));
  }
}

/**
 * Per row, the positions from its first to its last weighed one ([start, end)); null when that is every
 * position of the batch (nothing to leave out). A row with no weight at all is left out.
 */
export function weighedPositions(weight: number[][]): { ranges: [number, number][] } | null {
  const ranges = weight.map(weighedSpan);
  const kept = ranges.reduce((n, [s, e]) => n + e - s, 0);
  const all = weight.reduce((n, w) => n + w.length, 0);
  return kept < all && kept > 0 ? { ranges } : null;
}

/** A row's positions from its first to its last weighed one, [start, end); [0, 0] when none is weighed. */
export function weighedSpan(w: readonly number[]): [number, number] {
  const s = w.findIndex((x) => x > 0);
  if (s < 0) return [0, 0];
  let e = w.length;
  while (!(w[e - 1]! > 0)) e--;
  return [s, e];
}

/** Next-token cross-entropy on right-padded, masked sequences. */
export const causalLmObjective: Objective<Example> = {
  name: 'causal-lm',
  loss(lm, batch, _stat, forward) {
    const b = collate(batch);
    const w = weighedPositions(b.weight);
    if (!w) return maskedCrossEntropy(lm.forward(b.ids, { ...forward, mask: b.mask }), b.target, b.weight);
    // Logits only where the loss looks (the vocabulary projection is most of a small model's step).
    const pick = (rows: number[][]) => [w.ranges.flatMap(([s, e], i) => rows[i]!.slice(s, e))];
    return maskedCrossEntropy(lm.forward(b.ids, { ...forward, mask: b.mask, logitRanges: w.ranges }), pick(b.target), pick(b.weight));
  },
  count(batch) {
    let tokens = 0;
    let weight = 0;
    for (const e of batch) {
      tokens += e.input.length;
      for (const w of e.weight) weight += w;
    }
    return { tokens, weight };
  },
};

function* evalBatches<E>(objective: Objective<E>, examples: E[], batchSize: number): Generator<{ batch: E[]; n: number }> {
  for (let i = 0; i < examples.length; i += batchSize) {
    const batch = examples.slice(i, i + batchSize);
    const n = objective.count(batch).weight;
    if (n) yield { batch, n };
  }
}

/**
 * The summed loss of `examples` under `lm` as it is now (weighted by each batch's count) and the weight:
 * what an evaluation measures, read asynchronously (also outside a Trainer: measuring points along the
 * path from base to tuned). With `yieldEveryMs` the event loop runs between batches.
 */
export async function evaluateLoss<E>(lm: CausalLM, objective: Objective<E>, examples: E[], batchSize: number, yieldEveryMs = Infinity): Promise<{ nll: number; tokens: number; extra?: Record<string, number> }> {
  let nll = 0;
  let tokens = 0;
  let last = performance.now();
  const stats = new Stats();
  try {
    for (const { batch, n } of evalBatches(objective, examples, batchSize)) {
      if (performance.now() - last > yieldEveryMs) {
        await yieldToEventLoop();
        last = performance.now();
      }
      const l = tf.tidy(() => objective.loss(lm, batch, stats.sink(n)));
      nll += (await l.data())[0]! * n;
      l.dispose();
      await stats.read();
      tokens += n;
    }
  } finally {
    stats.dispose();
  }
  const extra = stats.means('eval_');
  return { nll, tokens, ...(extra ? { extra } : {}) };
}

/** A step whose GPU work is queued but whose numbers are not read yet. */
interface PendingStep {
  t0: number;
  lr: number;
  tokens: number;
  losses: tf.Tensor[];
  grads: tf.Tensor[];
  normSq: tf.Tensor;
  /** The objective's statistics of the step's micro-batches. */
  stats: Stats;
}

export class Trainer<E = Example, A extends TrainableAdapter = TrainableAdapter> {
  readonly params: tf.Variable[];
  readonly paramNames: string[];
  readonly optimizer: AdamW;
  /** The run's planned steps: totalSteps() of the config; a restored checkpoint keeps the plan it was made with. */
  totalSteps: number;
  readonly microPerEpoch: number;
  step = 0;
  micro = 0;
  private smoothLoss: number | null = null;
  private smoothCount = 0;
  private badSteps = 0;
  private lastValLoss: number | null = null;
  private lastValStep: number | null = null;
  private stepTimeEma: number | null = null;
  private lastLoss = NaN;

  constructor(
    readonly lm: CausalLM,
    readonly train: E[],
    readonly val: E[],
    readonly config: TrainConfig,
    readonly adapter: A | null,
    // The default objective reads Examples: a Trainer over another example type passes its own.
    readonly objective: Objective<E> = causalLmObjective as unknown as Objective<E>,
  ) {
    if (!train.length) throw new TrainingError('BAD_DATA', 'there are no training examples', 'Add valid records to the dataset.');
    if (config.mode !== 'full') {
      if (!adapter) throw new Error(`${config.mode} mode needs an adapter`);
      this.params = adapter.variables();
      this.paramNames = [...adapter.paramNames];
    } else {
      this.params = lm.trainableVariables();
      if (!this.params.length) throw new Error('full-parameter mode needs a model built with { trainable: true }');
      this.paramNames = [...lm.exportWeights().keys()];
    }
    this.optimizer = new AdamW(this.params, { ...DEFAULT_ADAMW, weightDecay: config.weightDecay });
    this.microPerEpoch = microBatchesPerEpoch(config, train.length);
    this.totalSteps = totalSteps(config, train.length);
  }

  get epoch(): number {
    return this.micro / this.microPerEpoch;
  }

  lrAt(step: number): number {
    const c = this.config;
    return learningRate({ kind: c.schedule, lr: c.lr, warmupSteps: c.warmupSteps, totalSteps: this.totalSteps, minRatio: c.minLrRatio }, step);
  }

  /** The examples of micro-batch number k (epoch order reshuffled per epoch from the seed). */
  microBatch(k: number): E[] {
    const epoch = Math.floor(k / this.microPerEpoch);
    const i = k % this.microPerEpoch;
    const order = permutation(this.train.length, this.config.seed * 7919 + epoch);
    return order.slice(i * this.config.batchSize, (i + 1) * this.config.batchSize).map((j) => this.train[j]!);
  }

  /**
   * One optimizer step over gradAccum micro-batches. The numbers it needs (the losses, the gradient
   * norm) are read with dataSync(); trainStepAsync does the same step with asynchronous reads.
   */
  trainStep(): StepMetrics {
    const p = this.beginStep();
    p.stats.readSync();
    return this.endStep(p, p.losses.map((l) => l.dataSync()[0]!), p.normSq.dataSync()[0]!);
  }

  /**
   * trainStep with asynchronous reads, for WebGPU: there a synchronous read goes through canvases, and
   * in Chromium with SwiftShader that path destroys the device after a couple of dozen reads that follow
   * real GPU work. Same operations in the same order, so the same numbers bit for bit (trainer-async.test.ts).
   */
  async trainStepAsync(): Promise<StepMetrics> {
    const p = this.beginStep();
    const losses: number[] = [];
    let normSq: number;
    try {
      for (const l of p.losses) losses.push((await l.data())[0]!);
      await p.stats.read();
      normSq = (await p.normSq.data())[0]!;
    } catch (e) {
      // A read failed (a lost device): free the step's tensors before saying so.
      p.stats.dispose();
      tf.dispose([...p.losses, ...p.grads, p.normSq]);
      throw e;
    }
    return this.endStep(p, losses, normSq);
  }

  /** The part of a step that only queues work: forward/backward per micro-batch, the gradients' squared norm. */
  private beginStep(): PendingStep {
    const t0 = performance.now();
    const c = this.config;
    const lr = this.lrAt(this.step);
    let tokens = 0;
    const losses: tf.Tensor[] = [];
    const stats = new Stats();
    let acc: tf.Tensor[] | null = null;
    if (this.adapter) this.adapter.training = true;
    try {
      for (let a = 0; a < c.gradAccum; a++) {
        const batch = this.microBatch(this.micro++);
        tokens += this.objective.count(batch).tokens;
        this.adapter?.setDropoutSeed(c.seed * 1_000_003 + this.step * 97 + a);
        const sink = stats.sink(1);
        const { value, grads } = tf.variableGrads(() => this.objective.loss(this.lm, batch, sink, { recompute: c.recompute }), this.params);
        losses.push(value);
        const g = this.params.map((p) => grads[p.name]!);
        if (!acc) acc = g;
        else {
          const sum: tf.Tensor[] = acc.map((x, i) => tf.add(x, g[i]!));
          tf.dispose([...acc, ...g]);
          acc = sum;
        }
      }
    } catch (e) {
      // A micro-batch failed: free what the earlier ones made (their losses, the summed gradients).
      stats.dispose();
      tf.dispose([...losses, ...(acc ?? [])]);
      throw e;
    } finally {
      if (this.adapter) this.adapter.training = false;
    }
    let grads = acc!;
    if (c.gradAccum > 1) {
      const avg = grads.map((g) => tf.div(g, c.gradAccum));
      tf.dispose(grads);
      grads = avg;
    }
    return { t0, lr, tokens, losses, grads, normSq: squaredNorm(grads), stats };
  }

  /** The rest of a step, once its losses and squared gradient norm have been read: clip, update, count. */
  private endStep(p: PendingStep, losses: number[], normSq: number): StepMetrics {
    const c = this.config;
    tf.dispose([...p.losses, p.normSq]);
    const loss = losses.reduce((a, b) => a + b, 0) / c.gradAccum;
    const norm = Math.sqrt(normSq);
    let skipped: string | undefined;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      skipped = !Number.isFinite(loss) ? `loss is ${loss}` : `gradient norm is ${norm}`;
      this.badSteps++;
    } else {
      this.optimizer.apply(p.grads, p.lr, clipScale(norm, c.maxGradNorm)); // clipped to maxGradNorm
      this.badSteps = 0;
      this.lastLoss = loss;
      this.smoothCount++;
      this.smoothLoss = 0.9 * (this.smoothLoss ?? 0) + 0.1 * loss;
    }
    tf.dispose(p.grads);
    this.step++;
    const dt = (performance.now() - p.t0) / 1000;
    this.stepTimeEma = this.stepTimeEma === null ? dt : 0.8 * this.stepTimeEma + 0.2 * dt;
    // Zero-initialised EMA with bias correction (as Adam's moments): early values are not dragged to 0.
    const smooth = this.smoothLoss === null ? NaN : this.smoothLoss / (1 - 0.9 ** this.smoothCount);
    const mem = tf.memory();
    const extra = p.stats.means();
    return {
      step: this.step,
      totalSteps: this.totalSteps,
      epoch: this.epoch,
      loss,
      smoothLoss: Number.isFinite(smooth) ? smooth : loss,
      lr: p.lr,
      gradNorm: norm,
      tokens: p.tokens,
      tokensPerSec: p.tokens / dt,
      etaSec: this.stepTimeEma * (this.totalSteps - this.step),
      memory: { numTensors: mem.numTensors, numBytes: mem.numBytes },
      backend: tf.getBackend(),
      skipped,
      ...(extra ? { extra } : {}),
    };
  }

  /** Consecutive non-finite steps so far (the loop stops at config.maxBadSteps). */
  get badStepCount(): number {
    return this.badSteps;
  }

  /** Token-weighted mean loss over examples (no dropout, no gradients). */
  evaluate(examples: E[] = this.val): EvalMetrics {
    let nll = 0;
    let tokens = 0;
    const stats = new Stats();
    try {
      for (const { batch, n } of evalBatches(this.objective, examples, this.config.batchSize)) {
        const l = tf.tidy(() => this.objective.loss(this.lm, batch, stats.sink(n)));
        nll += l.dataSync()[0]! * n;
        l.dispose();
        stats.readSync();
        tokens += n;
      }
    } finally {
      stats.dispose();
    }
    return this.evalResult(nll, tokens, stats.means('eval_'));
  }

  /**
   * evaluate with asynchronous reads (see trainStepAsync). With `yieldEveryMs` it also lets the event
   * loop run between batches (a validation split can take seconds), so a worker keeps answering.
   */
  async evaluateAsync(examples: E[] = this.val, yieldEveryMs = Infinity): Promise<EvalMetrics> {
    const { nll, tokens, extra } = await evaluateLoss(this.lm, this.objective, examples, this.config.batchSize, yieldEveryMs);
    return this.evalResult(nll, tokens, extra);
  }

  private evalResult(nll: number, tokens: number, extra?: Record<string, number>): EvalMetrics {
    const valLoss = tokens ? nll / tokens : NaN;
    this.lastValLoss = valLoss;
    this.lastValStep = this.step;
    return { step: this.step, valLoss, valPpl: Math.exp(valLoss), tokens, ...(extra ? { extra } : {}) };
  }

  /** checkpoint() with the weights and optimizer moments downloaded asynchronously first (WebGPU). */
  async checkpointAsync(): Promise<TrainerCheckpoint> {
    await Promise.all([...this.params, ...this.optimizer.moments()].map((x) => x.data()));
    return this.checkpoint();
  }

  checkpoint(): TrainerCheckpoint {
    const tensors: TrainerCheckpoint['tensors'] = {};
    const opt = this.optimizer.getState();
    this.params.forEach((p, i) => {
      const name = this.paramNames[i]!;
      tensors[name] = { shape: [...p.shape], data: p.dataSync() as Float32Array };
      tensors[`${name}.adam_m`] = { shape: [...p.shape], data: opt.m[i]! };
      tensors[`${name}.adam_v`] = { shape: [...p.shape], data: opt.v[i]! };
    });
    Object.assign(tensors, this.objective.checkpointTensors?.(this.train, this.val));
    return {
      step: this.step,
      tensors,
      state: {
        step: this.step,
        micro: this.micro,
        seed: this.config.seed,
        smoothLoss: this.smoothLoss,
        smoothCount: this.smoothCount,
        badSteps: this.badSteps,
        optimizerT: opt.t,
        lastValLoss: this.lastValLoss,
        lastValStep: this.lastValStep,
        params: this.paramNames,
        totalSteps: this.totalSteps,
      },
      metrics: { trainLoss: Number.isFinite(this.lastLoss) ? this.lastLoss : undefined, valLoss: this.lastValLoss ?? undefined, ...(this.lastValLoss !== null && this.lastValStep !== null ? { valStep: this.lastValStep } : {}) },
    };
  }

  restore(c: TrainerCheckpoint): void {
    const s = c.state;
    if (s.params.join('\n') !== this.paramNames.join('\n')) {
      throw new Error('the checkpoint was made for different trainable tensors (another model, mode or target_modules)');
    }
    this.objective.restoreTensors?.(c.tensors, this.train, this.val);
    const m: Float32Array[] = [];
    const v: Float32Array[] = [];
    this.params.forEach((p, i) => {
      const name = this.paramNames[i]!;
      const get = (k: string) => {
        const t = c.tensors[k];
        if (!t) throw new Error(`checkpoint is missing tensor ${k}`);
        return t.data;
      };
      p.assign(tf.tensor(get(name), p.shape));
      m.push(get(`${name}.adam_m`));
      v.push(get(`${name}.adam_v`));
    });
    this.optimizer.setState({ t: s.optimizerT, m, v });
    this.step = s.step;
    this.micro = s.micro;
    this.smoothLoss = s.smoothLoss;
    this.smoothCount = s.smoothCount;
    this.badSteps = s.badSteps;
    this.lastValLoss = s.lastValLoss;
    this.lastValStep = s.lastValStep ?? null;
    // An epoch-based run keeps the step count it was planned with (and so its schedule). Checkpoints made
    // before the count was recorded come from a version that rounded epochs x steps per epoch to nearest.
    if (this.config.steps === 0) {
      const perEpoch = Math.ceil(this.microPerEpoch / this.config.gradAccum);
      this.totalSteps = s.totalSteps ?? Math.max(1, Math.round(this.config.epochs * perEpoch));
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
