// The benchmark's measurements, host-neutral: plain TypeScript over TF.js and the engine's public APIs
// (loadModel, Trainer + LoraAdapter, generateIds, the CausalLM forward with a KV cache), no Node and no
// DOM, so the Node runner (bench/main.ts) and the browser page (bench/browser/) run the same code.
// Everything here times with performance.now() and reports figures; nothing asserts a time.
import * as tf from '@tensorflow/tfjs-core';
import { loadModel } from '../src/io/load-model';
import type { ModelSource } from '../src/io/source';
import { LoraAdapter } from '../src/lora/adapter';
import { generateIds } from '../src/model/generate';
import type { LanguageModel } from '../src/model/load';
import { deviceMemoryLimits } from '../src/model/memory-limits';
import { DEFAULT_TRAIN, type TrainConfig } from '../src/train/config';
import { planMemory } from '../src/train/memory-plan';
import { Trainer, type Example } from '../src/train/loop';
import { seededRandom } from '../src/util/random';
import { decodeFlops, prefillFlops, trainStepFlops, trainStepFlops6N, type LinearShape, type ModelShape } from './flops';
import { benchPlan, type BenchPlan } from './plan';
import { measurement, type Measurement } from './records';

/** Where a run happens, stamped on every measurement. */
export interface RunContext {
  model: string;
  backend: string;
  threads: number;
  /** 'node' or 'browser' (the PyTorch peer stamps 'torch'). */
  host: string;
  /** JS heap in use now (Node: process.memoryUsage().heapUsed; Chrome: performance.memory), null when unknown. */
  jsHeap(): number | null;
  /**
   * CPU time of the computing thread so far in ms (Node: the main thread's, from /proc), null where unknown
   * (a page). With one thread it measures the work without the time other processes take the core: the
   * robust figure on a shared machine (*_cpu fields). Coarse (10 ms ticks): summed over all repetitions.
   */
  cpuMs(): number | null;
}

/** Peaks of memory seen at the sampling points (after loading, after every step, after every phase). */
export class MemoryPeaks {
  tfBytes = 0;
  wasmHeap: number | null = null;
  jsHeap: number | null = null;
  /** The WASM heap right after the model was loaded (before any activation). */
  wasmHeapAfterLoad: number | null = null;
  constructor(private readonly ctx: RunContext) {}
  sample(): void {
    this.tfBytes = Math.max(this.tfBytes, tf.memory().numBytes);
    const w = wasmHeapBytes();
    if (w !== null) this.wasmHeap = Math.max(this.wasmHeap ?? 0, w);
    const j = this.ctx.jsHeap();
    if (j !== null) this.jsHeap = Math.max(this.jsHeap ?? 0, j);
  }
}

/** Size of the WASM backend's linear memory (it only grows, so this is also its peak), null on other backends. */
export function wasmHeapBytes(): number | null {
  if (tf.getBackend() !== 'wasm') return null;
  const m = (tf.backend() as unknown as { wasm?: { wasmMemory?: WebAssembly.Memory; HEAPU8?: Uint8Array } }).wasm;
  return m?.wasmMemory?.buffer.byteLength ?? m?.HEAPU8?.buffer.byteLength ?? null;
}

/** The shapes the FLOP counts need, read from a loaded model. */
export function modelShape(model: LanguageModel): ModelShape {
  const c = model.lm.config;
  const linears: LinearShape[] = [...model.lm.linears.values()].map((l) => ({ name: l.name, in: l.w.shape[0], out: l.w.shape[1] }));
  const heads = c.arch === 'gpt2' ? c.n_head : c.num_attention_heads;
  const headDim = c.arch === 'gpt2' ? c.n_embd / c.n_head : c.head_dim;
  return { layers: model.info.layers, heads, headDim, hidden: model.info.hiddenSize, vocab: model.info.vocabSize, context: model.info.contextLength, linears, numParams: model.info.numParams };
}

/** Deterministic token ids in [4, vocab) (ids 0-3 are special in the bundled models). */
export function tokenIds(n: number, vocab: number, seed: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => 4 + Math.floor(rand() * (vocab - 4)));
}

const now = (): number => performance.now();
/** tokens/s from CPU time: null when the host has no CPU clock or more than one thread shares the work. */
const cpuRate = (ctx: RunContext, tokens: number, cpuMs: number | null): number | null => (cpuMs !== null && ctx.threads === 1 && cpuMs > 0 ? tokens / (cpuMs / 1000) : null);
const cpuSince = (ctx: RunContext, c0: number | null): number | null => {
  const c = ctx.cpuMs();
  return c === null || c0 === null ? null : c - c0;
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Loads a model and times it. */
export async function timeLoad(source: ModelSource, name: string, ctx: RunContext, peaks: MemoryPeaks): Promise<{ model: LanguageModel; record: Measurement }> {
  const before = tf.memory().numTensors;
  const t0 = now();
  const model = await loadModel(source, { name });
  const ms = now() - t0;
  peaks.sample();
  peaks.wasmHeapAfterLoad = wasmHeapBytes();
  const record = measurement('load', ctx, {
    load_ms: ms,
    params: model.info.numParams,
    weight_tensors: tf.memory().numTensors - before,
    note: `${model.info.arch}, ${model.info.layers} layers, hidden ${model.info.hiddenSize}, vocab ${model.info.vocabSize}, context ${model.info.contextLength}`,
  });
  return { model, record };
}

export interface MatmulOptions {
  /** Wall time to spend per shape (at least `minReps` repetitions). */
  budgetMs: number;
  minReps: number;
}

/**
 * fp32 matMul GFLOP/s on the current backend for the model's real training shapes ([B*T, in] x [in, out]
 * for each distinct projection, the vocabulary projection included): best of several repetitions per
 * shape; the peak is the best shape. Each timed round ends with a read of a scalar (sum of the last
 * product), which waits for the GPU on WebGPU and costs a negligible O(rows * out) on the CPU backends.
 */
export async function matmulPeak(shapes: [number, number, number][], ctx: RunContext, o: MatmulOptions): Promise<Measurement> {
  const results: { shape: string; gflops: number }[] = [];
  for (const [rows, inD, outD] of shapes) {
    const a = tf.randomNormal([rows, inD]) as tf.Tensor2D;
    const b = tf.randomNormal([inD, outD]) as tf.Tensor2D;
    const flops = 2 * rows * inD * outD;
    const round = async (k: number): Promise<number> => {
      const t0 = now();
      let last: tf.Tensor | null = null;
      for (let i = 0; i < k; i++) {
        last?.dispose();
        last = tf.matMul(a, b);
      }
      const s = tf.sum(last!);
      await s.data();
      s.dispose();
      last!.dispose();
      return (now() - t0) / k;
    };
    const first = await round(1); // warm-up: kernel set-up, weight packing
    const k = Math.max(1, Math.min(8, Math.floor(o.budgetMs / 4 / Math.max(first, 0.01))));
    let best = Infinity;
    const start = now();
    for (let rep = 0; rep < o.minReps || (now() - start < o.budgetMs && rep < 20); rep++) best = Math.min(best, await round(k));
    results.push({ shape: `${rows}x${inD}x${outD}`, gflops: flops / best / 1e6 });
    a.dispose();
    b.dispose();
  }
  const peak = Math.max(...results.map((r) => r.gflops));
  return measurement('matmul_peak', ctx, { gflops: peak, shapes: results });
}

export interface TrainOptions {
  batch: number;
  seq: number;
  targets: string[];
  r: number;
  alpha: number;
  warmup: number;
  steps: number;
  /** Activation recomputation (TrainConfig.recompute): each layer recomputed in the backward. */
  recompute?: boolean;
}

/** Training examples of random ids, `seq` tokens each (input and shifted target). */
export function syntheticExamples(n: number, seq: number, vocab: number, seed: number): Example[] {
  return Array.from({ length: n }, (_, i) => {
    const ids = tokenIds(seq + 1, vocab, seed + i);
    return { input: ids.slice(0, seq), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
  });
}

/**
 * LoRA training steps through the project's Trainer (forward, masked cross-entropy, backward, global-norm
 * clipping, AdamW) with a LoraAdapter of rank r on `targets`, dropout 0, under the app's memory plan (a
 * batch that will not fit trains in micro-batches with gradient accumulation, same effective batch; one
 * that cannot fit at all is reported as skipped, not run). `warmup` steps are excluded;
 * ms_per_step is the median of the timed steps (mean and min beside it); numTensors is read before and
 * after the timed steps (it must not move).
 */
export async function trainLora(model: LanguageModel, ctx: RunContext, peaks: MemoryPeaks, o: TrainOptions, peakGflops: number | null): Promise<Measurement> {
  const shape = modelShape(model);
  const seq = Math.min(o.seq, shape.context);
  let cfg: TrainConfig = {
    ...DEFAULT_TRAIN,
    mode: 'lora',
    lora: { r: o.r, lora_alpha: o.alpha, lora_dropout: 0, target_modules: o.targets },
    batchSize: o.batch,
    gradAccum: 1,
    warmupSteps: 0,
    steps: o.warmup + o.steps + 1,
    recompute: o.recompute ?? false,
  };
  const plan = planMemory(model.info, cfg, seq, deviceMemoryLimits());
  const planned = { micro_batch: plan.batchSize, grad_accum: plan.gradAccum, memory_estimate_bytes: plan.estimate.total, memory_plan: plan.message, recompute: cfg.recompute };
  if (!plan.fits) return measurement('train_lora', ctx, { batch: o.batch, seq, targets: o.targets, r: o.r, skipped: plan.message, ...planned });
  cfg = { ...cfg, batchSize: plan.batchSize, gradAccum: plan.gradAccum };
  const adapter = new LoraAdapter(model.lm, cfg.lora, { seed: 1 });
  const trainer = new Trainer(model.lm, syntheticExamples(o.batch * 2, seq, shape.vocab, 7), [], cfg, adapter);
  // WebGPU: synchronous reads do not wait for the GPU in a worker (and read zeros): the async step there.
  const step = tf.getBackend() === 'webgpu' ? () => trainer.trainStepAsync() : async () => trainer.trainStep();
  let loss = NaN;
  try {
    for (let i = 0; i < o.warmup; i++) await step();
    peaks.sample();
    const tensorsBefore = tf.memory().numTensors;
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const c0 = ctx.cpuMs();
      const t0 = now();
      loss = (await step()).loss;
      times.push(now() - t0);
      const c = cpuSince(ctx, c0);
      if (c !== null) cpu.push(c);
      peaks.sample();
    }
    const tensorsAfter = tf.memory().numTensors;
    // The median step: robust to another process taking the core for a while (shared machines).
    const ms = median(times);
    const flops = trainStepFlops(shape, { r: o.r, targets: o.targets }, o.batch, seq);
    // The clock ticks are coarse: the mean over all timed steps.
    const cpuMean = cpu.length === times.length ? cpu.reduce((a, b) => a + b, 0) / cpu.length : null;
    const gflops = flops / ms / 1e6;
    return measurement('train_lora', ctx, {
      batch: o.batch,
      seq,
      targets: o.targets,
      r: o.r,
      steps: o.steps,
      ms_per_step: ms,
      ms_per_step_mean: times.reduce((a, b) => a + b, 0) / times.length,
      ms_per_step_min: Math.min(...times),
      cpu_ms_per_step: cpuMean,
      tokens_per_s_cpu: cpuRate(ctx, o.batch * seq, cpuMean),
      mfu_cpu: cpuMean && peakGflops && ctx.threads === 1 ? flops / cpuMean / 1e6 / peakGflops : null,
      tokens_per_s: (o.batch * seq) / (ms / 1000),
      flops_per_step: flops,
      gflops,
      mfu: peakGflops ? gflops / peakGflops : null,
      mfu_6n: peakGflops ? trainStepFlops6N(shape, o.batch, seq) / ms / 1e6 / peakGflops : null,
      tensors_before: tensorsBefore,
      tensors_after: tensorsAfter,
      leak: tensorsAfter !== tensorsBefore,
      loss,
      ...planned,
    });
  } finally {
    trainer.dispose();
    adapter.dispose();
  }
}

export interface GenerateBenchOptions {
  promptTokens: number;
  newTokens: number;
  reps: number;
}

/**
 * Greedy decoding with the KV cache, batch 1, through generateIds (what the app's Generate runs), EOS
 * ignored so the length is fixed: new tokens per second of the whole call (the prompt's forward included).
 */
export async function generateBench(model: LanguageModel, ctx: RunContext, peaks: MemoryPeaks, o: GenerateBenchOptions): Promise<Measurement> {
  const shape = modelShape(model);
  const p = Math.min(o.promptTokens, shape.context - 1);
  const n = Math.min(o.newTokens, shape.context - p);
  const prompt = tokenIds(p, shape.vocab, 11);
  const hooks = { newStream: (ids: number[]) => model.tokenizer.createStreamDecoder(true, ids) };
  const run = async (k: number) => {
    const c0 = ctx.cpuMs();
    const t0 = now();
    const [r] = await generateIds(model.lm, [prompt], model.eosIds, { maxNewTokens: k, temperature: 0, ignoreEos: true }, hooks);
    return { ms: now() - t0, cpu: cpuSince(ctx, c0), tokens: r!.tokens.length };
  };
  await run(Math.min(8, n)); // warm-up
  const runs: { ms: number; cpu: number | null; tokens: number }[] = [];
  for (let i = 0; i < o.reps; i++) {
    runs.push(await run(n));
    peaks.sample();
  }
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  const gflops = decodeFlops(shape, p, best.tokens) / best.ms / 1e6;
  const cpuBest = runs.every((r) => r.cpu !== null) ? runs.reduce((a, r) => a + r.cpu!, 0) / runs.length : null;
  return measurement('generate', ctx, { batch: 1, seq: p + best.tokens, prompt_tokens: p, new_tokens: best.tokens, ms: best.ms, tokens_per_s: best.tokens / (best.ms / 1000), gflops, cpu_ms: cpuBest, tokens_per_s_cpu: cpuRate(ctx, best.tokens, cpuBest) });
}

/** A forward over a `len`-token prompt into an empty KV cache (logits of the last position), as generation's first step. */
export async function prefillBench(model: LanguageModel, ctx: RunContext, peaks: MemoryPeaks, o: { len: number; reps: number }, peakGflops: number | null): Promise<Measurement> {
  const shape = modelShape(model);
  const T = Math.min(o.len, shape.context);
  const ids = tokenIds(T, shape.vocab, 13);
  const once = async (): Promise<{ ms: number; cpu: number | null }> => {
    const cache = model.lm.createCache(1);
    try {
      const c0 = ctx.cpuMs();
      const t0 = now();
      const logits = model.lm.forward([ids], { cache, lastOnly: true });
      await logits.data();
      const ms = now() - t0;
      const cpu = cpuSince(ctx, c0);
      logits.dispose();
      return { ms, cpu };
    } finally {
      cache.dispose();
    }
  };
  await once();
  const runs: { ms: number; cpu: number | null }[] = [];
  for (let i = 0; i < o.reps; i++) runs.push(await once());
  peaks.sample();
  const ms = median(runs.map((r) => r.ms));
  const cpuMs = runs.every((r) => r.cpu !== null) ? runs.reduce((a, r) => a + r.cpu!, 0) / runs.length : null;
  const gflops = prefillFlops(shape, T) / ms / 1e6;
  return measurement('prefill', ctx, { batch: 1, seq: T, ms, tokens_per_s: T / (ms / 1000), gflops, mfu: peakGflops ? gflops / peakGflops : null, cpu_ms: cpuMs, tokens_per_s_cpu: cpuRate(ctx, T, cpuMs) });
}

/** The memory peaks of a model's run as one measurement. */
export function memoryRecord(ctx: RunContext, peaks: MemoryPeaks): Measurement {
  return measurement('memory', ctx, { tf_bytes_peak: peaks.tfBytes, wasm_heap_bytes: peaks.wasmHeap, wasm_heap_after_load: peaks.wasmHeapAfterLoad, js_heap_bytes: peaks.jsHeap });
}

/**
 * Every measurement of one model on the current backend, in order: load, matmul peak, prefill, generation,
 * LoRA training (the plan's shapes and targets), the numTensors check, the memory peaks. `emit` gets each
 * measurement as soon as it is made; `log` gets progress lines. Returns the plan (the PyTorch peer runs it too).
 */
export async function benchModel(
  source: ModelSource,
  ctx: RunContext,
  o: { steps: number; leakSteps: number; quick: boolean; recompute?: boolean },
  emit: (m: Measurement) => void,
  log: (s: string) => void,
  adjust: (p: BenchPlan) => BenchPlan = (p) => p,
): Promise<BenchPlan> {
  const peaks = new MemoryPeaks(ctx);
  const tensorsAtStart = tf.memory().numTensors;
  const tag = `[${ctx.model} ${ctx.host} ${ctx.backend}]`;
  log(`${tag} loading ${source.label}`);
  const { model, record } = await timeLoad(source, ctx.model, ctx, peaks);
  emit(record);
  try {
    const plan = adjust(benchPlan(modelShape(model), o));
    log(`${tag} matmul peak over ${plan.matmulShapes.length} shapes`);
    const peak = await matmulPeak(plan.matmulShapes, ctx, { budgetMs: plan.matmulBudgetMs, minReps: plan.matmulMinReps });
    emit(peak);
    log(`${tag} prefill ${plan.prefill.seq} tokens`);
    emit(await prefillBench(model, ctx, peaks, { len: plan.prefill.seq, reps: plan.prefill.reps }, peak.gflops));
    log(`${tag} generate ${plan.generate.new_tokens} tokens`);
    emit(await generateBench(model, ctx, peaks, { promptTokens: plan.generate.prompt_tokens, newTokens: plan.generate.new_tokens, reps: plan.generate.reps }));
    for (const t of plan.train) {
      log(`${tag} LoRA ${t.batch}x${t.seq} on ${t.targets.join(',')}${t.recompute ? ', recompute' : ''}: ${t.warmup} + ${t.steps} steps`);
      emit(await trainLora(model, ctx, peaks, t, peak.gflops));
    }
    const l = plan.leak;
    if (l.steps > 0) {
      log(`${tag} numTensors check: ${l.steps} steps of ${l.batch}x${l.seq} on ${l.targets.join(',')}`);
      const leak = await trainLora(model, ctx, peaks, l, null);
      emit(measurement('tensors', ctx, { steps: l.steps, what: `LoRA ${l.batch}x${l.seq} ${l.targets.length === 2 ? 'q,v' : 'all linear'}`, tensors_before: leak.tensors_before, tensors_after: leak.tensors_after, leak: leak.leak }));
    }
    emit(memoryRecord(ctx, peaks));
    return plan;
  } finally {
    model.dispose();
    const left = tf.memory().numTensors - tensorsAtStart;
    if (left !== 0) log(`!!! ${ctx.model}: ${left} tensors still alive after disposing the model`);
  }
}
