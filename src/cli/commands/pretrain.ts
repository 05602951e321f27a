// `npm run pretrain -- --config models/<name>/train.json [--resume] [--steps N] [--max-minutes M] [--export-only]`
//
// Pretrains one of tabtune's own small Llama models from scratch with the project's engine in
// full-parameter mode (every weight, embeddings included, is a trainable variable; same AdamW,
// schedule, clipping and checkpoint format as LoRA runs), on the token stream that `npm run corpus`
// writes (.cache/corpus/tokens-<V>/, every document as <s> text </s>, documents back to back).
//
// Data: the stream is cut into non-overlapping windows of context+1 tokens (input = first `context`,
// target = the same shifted by one); windows cross document boundaries, the <s>/</s> pair between
// two documents marks them (no attention mask between documents, as in GPT-style packing). Window
// order is the trainer's seeded per-epoch permutation, so a resumed run sees exactly the batches an
// uninterrupted one would.
//
// Run state lives in a git-ignored work folder (config `work`, e.g. .cache/pretrain/<name>/):
// checkpoints (weights + AdamW moments + counters, every `saveEveryMinutes` and on Ctrl-C /
// --max-minutes), metrics.jsonl (one line per step and per evaluation). At the end it evaluates the
// whole held-out split, computes unigram and bigram baselines on the same held-out targets, exports the
// Hugging Face folder into `out` (config.json, model.safetensors, tokenizer files, generation_config.json),
// loads it back through loadModel to generate sample continuations, and writes metrics.json, loss.png
// (scripts/pretrain/plot_loss.py) and the model card README.md.
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { directorySource } from '../../node/fs-source';
import { exportMergedModel } from '../../io/export';
import { writeFolder } from '../../node/hf-write';
import { generate } from '../../model/generate';
import { seededRandom } from '../../util/random';
import { loadModel } from '../../io/load-model';
import { buildCausalLM } from '../../model/load';
import type { WeightMap } from '../../model/types';
import { FsBackend } from '../../node/fs-backend';
import { TabtuneStore } from '../../storage/index';
import { collate, Trainer, type Example, type TrainerCheckpoint } from '../../train/loop';
import { CLI_TRAINING, DEFAULT_TRAIN, parseTrainConfig, type TrainConfig } from '../../train/config';
import { evalPoint, metricRow, stepPoint } from '../../train/metrics';
import { runTraining } from '../../train/run-loop';
import { maskedCrossEntropy } from '../../train/loss';
import type { CausalLM } from '../../model/causal-lm';
import type { ScheduleKind } from '../../train/schedule';
import { optNum, str, UsageError, type Args, type OptionSpec } from '../args';
import { initBackend } from '../model-args';

export const PRETRAIN_USAGE = `usage: npm run pretrain -- --config models/<name>/train.json [options]
  --resume          continue the run saved in the config's work folder
  --steps N         override the number of optimizer steps (e.g. a quick smoke run)
  --max-minutes M   stop this sitting after M minutes of training (with a checkpoint); resume later
  --export-only     skip training: evaluate, export and write the card from the latest checkpoint
  --card-only       only rewrite the card (README.md) from the exported model's metrics.json and learning.json
  --out DIR --work DIR   override the config's output / work folders (e.g. a smoke run)
  --threads K        PyTorch threads (torch trainer)
  --final-windows N  evaluate only the first N held-out windows at the end (smoke runs; default all)
  --backend wasm|cpu`;

export const PRETRAIN_OPTIONS: OptionSpec = {
  config: 'string',
  resume: 'boolean',
  steps: 'string',
  'max-minutes': 'string',
  'export-only': 'boolean',
  'card-only': 'boolean',
  out: 'string',
  work: 'string',
  threads: 'string',
  'final-windows': 'string',
  backend: 'string',
  help: 'boolean',
};

export interface PretrainConfig {
  name: string;
  /** Tokenizer / token-stream vocabulary (selects .cache/corpus/tokenizer-<V> and tokens-<V>). */
  vocab: number;
  model: {
    hidden_size: number;
    intermediate_size: number;
    num_hidden_layers: number;
    num_attention_heads: number;
    num_key_value_heads: number;
    max_position_embeddings: number;
    rope_theta: number;
    rms_norm_eps: number;
    tie_word_embeddings: boolean;
    init_std: number;
  };
  train: {
    lr: number;
    schedule: ScheduleKind;
    warmupSteps: number;
    minLrRatio: number;
    weightDecay: number;
    /** AdamW beta2 (torch trainer only; the TF.js engine's AdamW uses 0.999). */
    beta2?: number;
    maxGradNorm: number;
    batchSize: number;
    gradAccum: number;
    steps: number;
    seed: number;
  };
  evalEvery: number;
  /** Held-out windows used for the periodic evaluation (the final one uses all). */
  evalWindows: number;
  saveEveryMinutes: number;
  /** Output folder of the HF model (relative to the repository root). */
  out: string;
  /** Git-ignored folder for checkpoints and logs. */
  work: string;
  dtype: 'F32' | 'F16';
  prompts: string[];
  /** Free text for the model card (what the samples show, caveats). */
  cardNotes?: string[];
  /** The model card's second sentence: what the model is for (default: the tiny test model's). */
  intro?: string;
  /** Who trains: the project's TF.js engine (default) or scripts/pretrain/train_torch.py (PyTorch, CPU/GPU). */
  trainer?: 'tfjs' | 'torch';
  /** PyTorch threads (torch trainer only; default: PyTorch's own choice). */
  torchThreads?: number;
  /** Largest |TF.js - PyTorch| logit difference accepted on the golden sequences (torch trainer only). */
  logitTolerance?: number;
  /**
   * Continued pretraining (torch trainer): start from this exported model folder's weights (relative to
   * the repository root) instead of a random initialisation; its metrics.json describes the earlier stage.
   */
  initFrom?: string;
  /** The earlier stage's recipe (relative to the repository root), for the card's Reproduce section. */
  initRecipe?: string;
  /**
   * Share of every batch's windows drawn from the copy-rich stream (`npm run corpus:copy`), 0..1 (torch
   * trainer), or a schedule [[fromStep, share], ...]: the last entry whose fromStep has been reached applies.
   */
  copyMix?: number | [number, number][];
}

const repoRoot = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..');

export function loadPretrainConfig(path: string): PretrainConfig {
  const c = JSON.parse(readFileSync(path, 'utf8')) as PretrainConfig;
  for (const k of ['name', 'vocab', 'model', 'train', 'out', 'work'] as const) if (c[k] === undefined) throw new UsageError(`${path}: missing "${k}"`);
  if ((c.initFrom || copyShares(c).some((x) => x > 0)) && c.trainer !== 'torch') throw new UsageError(`${path}: "initFrom" and "copyMix" need "trainer": "torch" (scripts/pretrain/train_torch.py reads them; the TF.js trainer does not)`);
  const bad = copyShares(c).filter((x) => !(x >= 0 && x <= 1));
  if (bad.length) throw new UsageError(`${path}: "copyMix" shares must lie in 0..1 (got ${bad.join(', ')})`);
  return c;
}

/** The copy-rich shares a recipe uses (one, or each of its schedule's). */
export function copyShares(c: Pick<PretrainConfig, 'copyMix'>): number[] {
  const m = c.copyMix ?? 0;
  return typeof m === 'number' ? [m] : m.map(([, share]) => share);
}

/** config.json of the model (Hugging Face LlamaConfig fields). */
export function hfConfig(c: PretrainConfig, ids: { bos: number; eos: number; pad: number }): Record<string, unknown> {
  const m = c.model;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab,
    hidden_size: m.hidden_size,
    intermediate_size: m.intermediate_size,
    num_hidden_layers: m.num_hidden_layers,
    num_attention_heads: m.num_attention_heads,
    num_key_value_heads: m.num_key_value_heads,
    head_dim: m.hidden_size / m.num_attention_heads,
    max_position_embeddings: m.max_position_embeddings,
    hidden_act: 'silu',
    rms_norm_eps: m.rms_norm_eps,
    rope_theta: m.rope_theta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: m.init_std,
    pretraining_tp: 1,
    tie_word_embeddings: m.tie_word_embeddings,
    bos_token_id: ids.bos,
    eos_token_id: ids.eos,
    pad_token_id: ids.pad,
    torch_dtype: 'float32',
    use_cache: true,
  };
}

/**
 * Fresh weights: N(0, std) for embeddings and projections, the residual-output projections (o_proj,
 * down_proj) scaled by 1/sqrt(2 * layers) as in GPT-2, RMSNorm gains 1. Seeded (Box-Muller).
 */
export function initWeights(c: PretrainConfig, seed: number): WeightMap {
  const m = c.model;
  const rand = seededRandom(seed);
  const D = m.hidden_size;
  const hd = D / m.num_attention_heads;
  const kv = m.num_key_value_heads * hd;
  const w: WeightMap = new Map();
  const normal = (n: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(rand(), 1e-12);
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      const t = 2 * Math.PI * rand();
      a[i] = r * Math.cos(t);
      if (i + 1 < n) a[i + 1] = r * Math.sin(t);
    }
    return a;
  };
  const add = (name: string, shape: number[], std: number | 'one') => {
    const n = shape.reduce((a, b) => a * b, 1);
    w.set(name, { shape, data: std === 'one' ? new Float32Array(n).fill(1) : normal(n, std), dtype: 'F32' });
  };
  const std = m.init_std;
  const outStd = std / Math.sqrt(2 * m.num_hidden_layers);
  add('model.embed_tokens.weight', [c.vocab, D], std);
  for (let i = 0; i < m.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [D], 'one');
    add(`${p}.self_attn.q_proj.weight`, [D, D], std);
    add(`${p}.self_attn.k_proj.weight`, [kv, D], std);
    add(`${p}.self_attn.v_proj.weight`, [kv, D], std);
    add(`${p}.self_attn.o_proj.weight`, [D, D], outStd);
    add(`${p}.post_attention_layernorm.weight`, [D], 'one');
    add(`${p}.mlp.gate_proj.weight`, [m.intermediate_size, D], std);
    add(`${p}.mlp.up_proj.weight`, [m.intermediate_size, D], std);
    add(`${p}.mlp.down_proj.weight`, [D, m.intermediate_size], outStd);
  }
  add('model.norm.weight', [D], 'one');
  if (!m.tie_word_embeddings) add('lm_head.weight', [c.vocab, D], std);
  return w;
}

/** Reads a uint16 little-endian token file. */
export function readTokens(path: string): Uint16Array {
  const b = readFileSync(path);
  const out = new Uint16Array(b.byteLength / 2);
  new Uint8Array(out.buffer).set(b);
  return out;
}

/**
 * The stream's windows as Examples, built on demand (the Trainer only reads `length` and indexes), so
 * millions of tokens cost no more memory than the Uint16Array itself.
 */
export function windowExamples(stream: Uint16Array, T: number): Example[] {
  const n = Math.max(0, Math.floor((stream.length - 1) / T));
  const weight = new Array<number>(T).fill(1);
  const get = (k: number): Example => ({ input: Array.from(stream.subarray(k * T, k * T + T)), target: Array.from(stream.subarray(k * T + 1, k * T + T + 1)), weight });
  return new Proxy([] as Example[], {
    get(target, p, recv) {
      if (p === 'length') return n;
      if (typeof p === 'string' && /^\d+$/.test(p)) {
        const k = Number(p);
        return k < n ? get(k) : undefined;
      }
      if (p === 'slice') return (a = 0, b = n) => Array.from({ length: Math.max(0, Math.min(b, n) - a) }, (_, i) => get(a + i));
      return Reflect.get(target, p, recv);
    },
  });
}

/**
 * Unigram (add-one) and interpolated Kneser-Ney bigram (discount 0.75) models estimated on the training
 * stream, scored on exactly the (previous, target) pairs of the held-out windows: mean NLL in nats.
 */
export function ngramBaselines(train: Uint16Array, held: Uint16Array, V: number, T: number, maxWindows = Infinity): { unigram: number; bigram: number; tokens: number } {
  const uni = new Float64Array(V);
  for (let i = 0; i < train.length; i++) uni[train[i]!]!++;
  const big = new Uint32Array(V * V);
  for (let i = 1; i < train.length; i++) big[train[i - 1]! * V + train[i]!]!++;
  const ctxCount = new Float64Array(V); // c(v .)
  const followers = new Float64Array(V); // N1+(v .)
  const preceders = new Float64Array(V); // N1+(. w)
  let types = 0;
  for (let v = 0; v < V; v++)
    for (let w = 0; w < V; w++) {
      const c = big[v * V + w]!;
      if (!c) continue;
      ctxCount[v]! += c;
      followers[v]!++;
      preceders[w]!++;
      types++;
    }
  const N = train.length;
  const d = 0.75;
  let nllU = 0;
  let nllB = 0;
  let n = 0;
  const windows = Math.min(maxWindows, Math.floor((held.length - 1) / T));
  for (let k = 0; k < windows; k++)
    for (let t = 0; t < T; t++) {
      const v = held[k * T + t]!;
      const w = held[k * T + t + 1]!;
      nllU -= Math.log((uni[w]! + 1) / (N + V));
      const pCont = (preceders[w]! + 1) / (types + V);
      const cv = ctxCount[v]!;
      const p = cv > 0 ? Math.max(big[v * V + w]! - d, 0) / cv + ((d * followers[v]!) / cv) * pCont : pCont;
      nllB -= Math.log(p);
      n++;
    }
  return { unigram: nllU / n, bigram: nllB / n, tokens: n };
}

/** The run configuration of a pretraining run (full-parameter), checked like every other run's. */
export function trainConfig(c: PretrainConfig, steps: number): TrainConfig {
  const t = c.train;
  const r = parseTrainConfig({
    ...DEFAULT_TRAIN,
    mode: 'full',
    lr: t.lr,
    schedule: t.schedule,
    warmupSteps: t.warmupSteps,
    minLrRatio: t.minLrRatio,
    weightDecay: t.weightDecay,
    maxGradNorm: t.maxGradNorm,
    batchSize: t.batchSize,
    gradAccum: t.gradAccum,
    steps,
    epochs: 0,
    evalEvery: c.evalEvery,
    saveEvery: 0, // time-based here (the loop's saveAt)
    seed: t.seed,
  }, CLI_TRAINING);
  if (!r.ok) throw new UsageError(`${c.name}: invalid training settings in train.json: ${r.problems.join(' ')}`);
  return r.config;
}

interface RunMeta {
  /** Seconds of training (steps only) over all sittings. */
  trainSeconds: number;
  tokens: number;
  sittings: number;
  steps: number;
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

/** What the card writer gets: the config, metrics.json's content and the corpus' sources.json. */
export type ModelCardWriter = (c: PretrainConfig, metrics: PretrainMetrics, sources: Record<string, unknown>) => string;

export interface PretrainMetrics {
  name: string;
  params: number;
  steps: number;
  tokens_seen: number;
  train_seconds: number;
  tokens_per_second: number;
  sittings: number;
  backend: string;
  heldout: { windows: number; tokens: number; loss: number; ppl: number };
  baselines: { tokens: number; unigram_loss: number; unigram_ppl: number; bigram_loss: number; bigram_ppl: number };
  train_tokens_available: number;
  samples: { prompt: string; greedy: string; sampled: string[] }[];
  /** The evaluations of the run (metrics.jsonl lines with a val_loss): copy-stream loss and induction accuracy where measured. */
  evals?: { step: number; val_loss: number; val_ppl: number; val_copy_loss?: number; induction_acc?: number }[];
  /** With `initFrom`: the earlier stage's metrics.json. */
  initial?: PretrainMetrics;
  /** With `copyMix`: the copy-rich stream's copy-index.json. */
  copy?: Record<string, unknown>;
}

/** Token-weighted mean NLL of `lm` over examples (no gradients): the full held-out evaluation. */
export function evaluateLM(lm: CausalLM, examples: Example[], batchSize: number): { loss: number; tokens: number } {
  let nll = 0;
  let tokens = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const b = collate(examples.slice(i, i + batchSize));
    const n = b.weight.flat().reduce((a, x) => a + x, 0);
    nll += tf.tidy(() => maskedCrossEntropy(lm.forward(b.ids, { mask: b.mask }), b.target, b.weight).dataSync()[0]!) * n;
    tokens += n;
  }
  return { loss: nll / tokens, tokens };
}

interface Paths {
  cfgPath: string;
  work: string;
  out: string;
  tokDir: string;
  streamDir: string;
}

function paths(args: Args): { c: PretrainConfig; p: Paths } {
  const cfgPath = resolve(str(args, 'config', PRETRAIN_USAGE));
  const c = loadPretrainConfig(cfgPath);
  const corpus = join(repoRoot, '.cache', 'corpus');
  const p: Paths = {
    cfgPath,
    // --out / --work: e.g. a smoke run that must not overwrite the bundled model.
    work: resolve(repoRoot, typeof args.work === 'string' ? args.work : c.work),
    out: resolve(repoRoot, typeof args.out === 'string' ? args.out : c.out),
    tokDir: join(corpus, `tokenizer-${c.vocab}`),
    streamDir: join(corpus, `tokens-${c.vocab}`),
  };
  if (!existsSync(join(p.streamDir, 'train.bin')) || !existsSync(join(p.tokDir, 'tokenizer.json'))) {
    throw new UsageError(`no corpus for vocab ${c.vocab} in ${corpus}: run \`npm run corpus -- --vocab ${c.vocab}\` first`);
  }
  return { c, p };
}

export async function pretrainCommand(args: Args, hooks: { modelCard?: ModelCardWriter } = {}): Promise<void> {
  const { c, p } = paths(args);
  const { work, out } = p;
  if (args['card-only']) {
    if (!hooks.modelCard) throw new UsageError('--card-only: no card writer');
    const metricsPath = join(out, 'metrics.json');
    if (!existsSync(metricsPath)) throw new UsageError(`--card-only: ${metricsPath} is missing: export the model first`);
    const sources = JSON.parse(readFileSync(join(p.streamDir, 'sources.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(out, 'README.md'), hooks.modelCard({ ...c, out: relative(repoRoot, out) }, JSON.parse(readFileSync(metricsPath, 'utf8')) as PretrainMetrics, sources));
    emit({ event: 'card', out: join(out, 'README.md') });
    return;
  }
  const index = JSON.parse(readFileSync(join(p.streamDir, 'index.json'), 'utf8')) as { bos: number; eos: number; corpus: string };
  const tokenizerConfig = JSON.parse(readFileSync(join(p.tokDir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const tokJson = JSON.parse(readFileSync(join(p.tokDir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  const padId = ((tokJson.added_tokens as { id: number; content: string }[]).find((t) => t.content === '<pad>') ?? { id: 0 }).id;
  const ids = { bos: index.bos, eos: index.eos, pad: padId };
  const T = c.model.max_position_embeddings;

  await initBackend(args);
  mkdirSync(work, { recursive: true });
  const trainStream = readTokens(join(p.streamDir, 'train.bin'));
  const heldStream = readTokens(join(p.streamDir, 'heldout.bin'));
  const heldAll = windowExamples(heldStream, T).slice();
  const finalWindows = optNum(args, 'final-windows');
  const heldFinal = finalWindows ? heldAll.slice(0, finalWindows) : heldAll;
  const config = hfConfig(c, ids);
  const common = { heldAll: heldFinal, trainStream, heldStream, config, tokJson, tokenizerConfig, ids, out, work };

  if (c.trainer === 'torch') {
    const torchOut = await trainWithTorch(c, p, args);
    if (!torchOut) return;
    const files = new Map<string, Uint8Array>([
      ['tokenizer.json', jsonBytes(tokJson)],
      ['tokenizer_config.json', jsonBytes({ ...tokenizerConfig, model_max_length: T })],
    ]);
    await writeFolder(torchOut.dir, files);
    const model = await loadModel(directorySource(torchOut.dir));
    try {
      const diff = compareGolden(model.lm, join(work, 'golden.json'));
      const tol = c.logitTolerance ?? 1e-4;
      emit({ event: 'logits-check', max_abs_diff: diff, tolerance: tol, ok: diff <= tol });
      if (!(diff <= tol)) throw new Error(`TF.js and PyTorch logits differ by ${diff} (> ${tol}): the two implementations disagree`);
      const tm = torchOut.meta;
      const meta: RunMeta = { trainSeconds: tm.train_seconds, tokens: tm.tokens, sittings: tm.sittings, steps: tm.step };
      await finish(c, hooks, { ...common, lm: model.lm, meta, nParams: model.info.numParams, backendLabel: `PyTorch ${tm.torch} on ${tm.device} (${tm.threads} thread${tm.threads === 1 ? '' : 's'}), scripts/pretrain/train_torch.py (the architecture of src/model/llama.ts written again in PyTorch); the exported folder, loaded by tabtune's TF.js runtime (${tf.getBackend()}), reproduces the trainer's own logits on its golden sequences within ${diff.toExponential(1)} (tolerance ${tol})` });
    } finally {
      model.dispose();
    }
    return;
  }

  const metricsPath = join(work, 'metrics.jsonl');
  const runPath = join(work, 'run.json');
  const resume = Boolean(args.resume) || Boolean(args['export-only']);
  if (!resume && existsSync(runPath)) throw new UsageError(`${work} already holds a run: add --resume to continue it (or delete the folder to start over)`);
  const steps = resume ? (JSON.parse(readFileSync(runPath, 'utf8')) as { steps: number }).steps : (optNum(args, 'steps') ?? c.train.steps);
  const train = windowExamples(trainStream, T);
  const stride = Math.max(1, Math.floor(heldAll.length / c.evalWindows));
  const heldSubset = heldAll.filter((_, i) => i % stride === 0).slice(0, c.evalWindows);

  const lm = buildCausalLM({ config, weights: initWeights(c, c.train.seed) }, { trainable: true });
  const trainer = new Trainer(lm, train, heldSubset, trainConfig(c, steps), null);
  const store = new TabtuneStore(new FsBackend(join(work, 'checkpoints')), { keepLast: 2 });
  const runId = c.name;
  let meta: RunMeta = { trainSeconds: 0, tokens: 0, sittings: 0, steps: 0 };
  try {
    if (resume) {
      const latest = await store.checkpoints.loadLatest(runId);
      if (!latest) throw new Error(`no checkpoint found in ${join(work, 'checkpoints')} to resume from (the run stopped before its first checkpoint): delete ${work} and start again without --resume`);
      trainer.restore(latest.checkpoint as unknown as TrainerCheckpoint);
      meta = { ...meta, ...((latest.checkpoint.state as { pretrain?: RunMeta }).pretrain ?? {}) };
      if (existsSync(metricsPath)) {
        const kept = readFileSync(metricsPath, 'utf8')
          .split('\n')
          .filter((l) => l && (JSON.parse(l) as { step: number }).step <= trainer.step);
        writeFileSync(metricsPath, kept.map((l) => l + '\n').join(''));
      }
      emit({ event: 'resume', step: trainer.step, train_seconds: Math.round(meta.trainSeconds) });
    } else {
      writeFileSync(runPath, JSON.stringify({ name: c.name, steps, config: p.cfgPath, corpus: index.corpus, started: new Date().toISOString() }, null, 2) + '\n');
      writeFileSync(metricsPath, '');
      await store.runs.create({ id: runId, name: c.name, config: { steps } as unknown as Record<string, never> });
    }
    if (!args['export-only']) meta.sittings++;
    const nParams = trainer.params.reduce((a, x) => a + x.size, 0);
    emit({ event: 'start', name: c.name, params: nParams, total_steps: trainer.totalSteps, tokens_per_step: c.train.batchSize * c.train.gradAccum * T, train_windows: train.length, heldout_windows: heldAll.length, backend: tf.getBackend() });

    if (!args['export-only']) {
      let stop = false;
      const onSig = () => {
        if (stop) process.exit(130);
        stop = true;
        process.stderr.write('\nstopping after this step (checkpoint first); Ctrl-C again to quit at once\n');
      };
      process.on('SIGINT', onSig);
      process.on('SIGTERM', onSig);
      const maxMs = (optNum(args, 'max-minutes') ?? Infinity) * 60_000;
      const sittingStart = performance.now();
      let lastSave = performance.now();
      // The one training loop; checkpoints are time-based here, and Ctrl-C or --max-minutes stop it with one.
      const outcome = await runTraining(
        trainer,
        {
          saveAt: (_step, total) => trainer.step === total || performance.now() - lastSave > c.saveEveryMinutes * 60_000,
          shouldStop: () => stop || performance.now() - sittingStart > maxMs,
        },
        async (e) => {
          if (e.type === 'step') {
            const m = e.metrics;
            meta.trainSeconds += m.tokens / m.tokensPerSec; // the step's own time (evaluation excluded)
            meta.tokens += m.tokens;
            const line = { ...metricRow(stepPoint(m)), train_s: Math.round(meta.trainSeconds) };
            appendFileSync(metricsPath, JSON.stringify(line) + '\n');
            if (m.step % 10 === 0 || m.step === 1) emit(line);
          } else if (e.type === 'eval') {
            const line = { ...metricRow(evalPoint(e.metrics)), train_s: Math.round(meta.trainSeconds) };
            appendFileSync(metricsPath, JSON.stringify(line) + '\n');
            emit(line);
          } else {
            meta.steps = e.checkpoint.step;
            const { info } = await store.checkpoints.save(runId, { ...e.checkpoint, state: { ...e.checkpoint.state, pretrain: meta } } as never);
            emit({ event: 'checkpoint', step: info.step, bytes: info.sizeBytes });
            lastSave = performance.now();
          }
        },
      );
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
      if (outcome.reason === 'failed') throw Object.assign(outcome.error, { hint: `${outcome.error.hint ?? ''} (npm run pretrain -- --config ${relative(repoRoot, p.cfgPath)} --resume)` });
      if (trainer.step < trainer.totalSteps) {
        emit({ event: 'paused', step: trainer.step, of: trainer.totalSteps, hint: `continue with: npm run pretrain -- --config ${relative(repoRoot, p.cfgPath)} --resume` });
        return;
      }
    }
    meta.steps = trainer.step;
    await finish(c, hooks, { ...common, lm, meta, nParams, backendLabel: `TF.js ${tf.getBackend()} (Node, one thread), src/train/loop.ts full-parameter mode` });
  } finally {
    trainer.dispose();
    lm.dispose();
  }
}

interface TorchMeta {
  train_seconds: number;
  tokens: number;
  sittings: number;
  step: number;
  params: number;
  device: string;
  threads: number;
  torch: string;
}

/** Runs scripts/pretrain/train_torch.py; null when it stopped before the last step (resume later). */
async function trainWithTorch(c: PretrainConfig, p: Paths, args: Args): Promise<{ dir: string; meta: TorchMeta } | null> {
  const dir = join(p.work, 'export');
  const a = [join(repoRoot, 'scripts', 'pretrain', 'train_torch.py'), '--config', p.cfgPath, '--work', p.work, '--export', dir];
  if (args.resume) a.push('--resume');
  if (typeof args.steps === 'string') a.push('--steps', args.steps);
  if (typeof args['max-minutes'] === 'string') a.push('--max-minutes', args['max-minutes']);
  const threads = typeof args.threads === 'string' ? args.threads : c.torchThreads ? String(c.torchThreads) : null;
  if (threads) a.push('--threads', threads);
  if (!args['export-only']) {
    // Debian's python3-torch lives in /usr/bin/python3 (not a pyenv/venv python).
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const r = spawnSync(python, a, { stdio: 'inherit' });
    if (r.status === 3) return null;
    if (r.status !== 0) throw new Error(`train_torch.py failed (exit ${r.status ?? r.signal}); is python3-torch installed? (apt-get install -y python3-torch libopenblas0-openmp)`);
  }
  return { dir, meta: JSON.parse(readFileSync(join(p.work, 'torch_meta.json'), 'utf8')) as TorchMeta };
}

/** Largest |logit difference| between this model and the golden logits written by train_torch.py. */
export function compareGolden(lm: CausalLM, path: string): number {
  const g = JSON.parse(readFileSync(path, 'utf8')) as { input_ids: number[][]; positions: number[][]; logits: number[][][] };
  let max = 0;
  g.input_ids.forEach((seq, i) => {
    const t = lm.forward([seq]);
    const V = t.shape[2];
    const data = t.dataSync();
    t.dispose();
    g.positions[i]!.forEach((pos, k) => {
      const want = g.logits[i]![k]!;
      for (let v = 0; v < V; v++) max = Math.max(max, Math.abs(data[pos * V + v]! - want[v]!));
    });
  });
  return max;
}

interface FinishCtx {
  lm: CausalLM;
  heldAll: Example[];
  trainStream: Uint16Array;
  heldStream: Uint16Array;
  config: Record<string, unknown>;
  tokJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  ids: { bos: number; eos: number; pad: number };
  out: string;
  work: string;
  meta: RunMeta;
  nParams: number;
  backendLabel: string;
}

const jsonBytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');

async function finish(c: PretrainConfig, hooks: { modelCard?: ModelCardWriter }, x: FinishCtx): Promise<void> {
  const T = c.model.max_position_embeddings;
  const t0 = performance.now();
  const full = evaluateLM(x.lm, x.heldAll, c.train.batchSize);
  const ppl = Math.exp(full.loss);
  emit({ event: 'heldout', windows: x.heldAll.length, tokens: full.tokens, loss: full.loss, ppl, seconds: Math.round((performance.now() - t0) / 1000) });
  const base = ngramBaselines(x.trainStream, x.heldStream, c.vocab, T, x.heldAll.length);
  emit({ event: 'baselines', tokens: base.tokens, unigram_ppl: Math.exp(base.unigram), bigram_ppl: Math.exp(base.bigram) });

  const tokenizerConfig = { ...x.tokenizerConfig, model_max_length: T };
  const generationConfig = { bos_token_id: x.ids.bos, eos_token_id: x.ids.eos, pad_token_id: x.ids.pad, max_length: T };
  const baseFiles = new Map<string, Uint8Array>([
    ['config.json', jsonBytes(x.config)],
    ['generation_config.json', jsonBytes(generationConfig)],
    ['tokenizer.json', jsonBytes(x.tokJson)],
    ['tokenizer_config.json', jsonBytes(tokenizerConfig)],
  ]);
  const files = exportMergedModel({ lm: x.lm, baseFiles }, null, { dtype: c.dtype });
  await writeFolder(x.out, files);
  emit({ event: 'exported', out: x.out, files: [...files.keys()], bytes: [...files.values()].reduce((a, b) => a + b.byteLength, 0) });

  // Load the folder back as any user would, and look at what it writes.
  const model = await loadModel(directorySource(x.out));
  const samples: { prompt: string; greedy: string; sampled: string[] }[] = [];
  try {
    for (const prompt of c.prompts) {
      const [g] = await generate(model, [prompt], { maxNewTokens: 48, temperature: 0 });
      const sampled: string[] = [];
      for (const seed of [1, 2]) {
        const [s] = await generate(model, [prompt], { maxNewTokens: 48, temperature: 0.8, topK: 40, seed });
        sampled.push(s!.text);
      }
      samples.push({ prompt, greedy: g!.text, sampled });
      emit({ event: 'sample', prompt, greedy: g!.text, sampled });
    }
  } finally {
    model.dispose();
  }

  const sources = JSON.parse(readFileSync(join(repoRoot, '.cache', 'corpus', `tokens-${c.vocab}`, 'sources.json'), 'utf8')) as Record<string, unknown>;
  const metrics: PretrainMetrics = {
    name: c.name,
    params: x.nParams,
    steps: x.meta.steps,
    tokens_seen: x.meta.tokens,
    train_seconds: Math.round(x.meta.trainSeconds),
    tokens_per_second: Math.round(x.meta.tokens / x.meta.trainSeconds),
    sittings: x.meta.sittings,
    backend: x.backendLabel,
    heldout: { windows: x.heldAll.length, tokens: full.tokens, loss: full.loss, ppl },
    baselines: { tokens: base.tokens, unigram_loss: base.unigram, unigram_ppl: Math.exp(base.unigram), bigram_loss: base.bigram, bigram_ppl: Math.exp(base.bigram) },
    train_tokens_available: x.trainStream.length,
    samples,
    evals: readFileSync(join(x.work, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"val_loss"'))
      .map((l) => JSON.parse(l) as NonNullable<PretrainMetrics['evals']>[number]),
  };
  if (c.initFrom) {
    const prev = join(repoRoot, c.initFrom, 'metrics.json');
    if (existsSync(prev)) metrics.initial = JSON.parse(readFileSync(prev, 'utf8')) as PretrainMetrics;
  }
  if (copyShares(c).some((x) => x > 0)) metrics.copy = JSON.parse(readFileSync(join(repoRoot, '.cache', 'corpus', `tokens-${c.vocab}`, 'copy-index.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(x.out, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
  const png = spawnSync('python3', [join(repoRoot, 'scripts', 'pretrain', 'plot_loss.py'), join(x.work, 'metrics.jsonl'), join(x.out, 'loss.png'), c.name, join(x.out, 'metrics.json')], { encoding: 'utf8' });
  if (png.status !== 0) process.stderr.write(`loss.png: ${png.stderr || png.error?.message}\n`);
  if (hooks.modelCard) writeFileSync(join(x.out, 'README.md'), hooks.modelCard({ ...c, out: relative(repoRoot, x.out) }, metrics, sources));
  emit({ event: 'done', out: x.out, heldout_ppl: ppl, unigram_ppl: metrics.baselines.unigram_ppl, bigram_ppl: metrics.baselines.bigram_ppl });
}
