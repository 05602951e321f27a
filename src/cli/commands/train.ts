// `npm run cli -- train`: the same job as the browser worker, with the filesystem instead of
// IndexedDB. Streams one JSON object per line (steps, evals, checkpoints), writes the PEFT adapter
// and metrics.jsonl (plus recipe/: a TRL script and an Axolotl config of the same job) into --out, keeps checkpoints in --out/checkpoints, and --resume continues there.
import { appendFileSync, existsSync as exists } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { join, resolve } from 'node:path';
import { inspectDataset } from '../../data/index';
import { PLAIN_FORMAT } from '../../data/encode';
import { fileSource } from '../../data/node';
import { directorySource } from '../../io/fs-source';
import { writeFolder } from '../../io/hf-write';
import { exportPeftAdapter } from '../../io/peft';
import { exportMergedModel, readBaseFiles, TABTUNE_JSON, tabtuneJson } from '../../io/export';
import { recipeFiles } from '../../io/recipes';
import { loadModel } from '../../model/load';
import { FsBackend } from '../../storage/fs-backend';
import { TabtuneStore } from '../../storage/index';
import { compareBaseTuned, createTrainer, defaultTrainConfig, disposeTrainer, recipeJob, toExamples } from '../../train/job';
import type { TrainConfig } from '../../train/loop';
import type { ScheduleKind } from '../../train/schedule';
import { optNum, str, UsageError, type Args } from '../args';
import { initBackend } from '../model-args';

export const TRAIN_USAGE = `usage: npm run cli -- train --model DIR --data FILE --out DIR [options]
  --steps N | --epochs E       length of the run (default: 3 epochs)
  --lr F --schedule constant|linear|cosine --warmup N --weight-decay F --max-grad-norm F
  --rank R --alpha A --dropout P --targets q_proj,v_proj,...   (LoRA)
  --full                       train every weight (writes a whole HF model folder instead of an adapter)
  --batch-size B --grad-accum K --seq-len T --val FILE | --val-split F
  --eval-every N --save-every N --seed S --backend wasm|cpu
  --compare    after training, greedy base vs tuned on the held-out split (exact match, overlap)
  --resume     continue the run saved in --out`;

interface JobFile {
  model: string;
  data: string;
  val: string | null;
  valSplit: number;
  seqLen: number | null;
  config: TrainConfig;
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function configFromArgs(args: Args, arch: 'llama' | 'gpt2'): TrainConfig {
  const base = defaultTrainConfig(arch);
  const num = (k: string, d: number) => optNum(args, k, d)!;
  const schedule = (args.schedule ?? base.schedule) as ScheduleKind;
  if (!['constant', 'linear', 'cosine'].includes(schedule)) throw new UsageError(`--schedule must be constant, linear or cosine`);
  const targets = typeof args.targets === 'string' ? args.targets.split(',').map((s) => s.trim()).filter(Boolean) : base.lora.target_modules;
  const steps = num('steps', 0);
  return {
    ...base,
    mode: args.full ? 'full' : 'lora',
    lora: { r: num('rank', base.lora.r), lora_alpha: num('alpha', base.lora.lora_alpha), lora_dropout: num('dropout', base.lora.lora_dropout), target_modules: targets },
    lr: num('lr', base.lr),
    schedule,
    warmupSteps: num('warmup', base.warmupSteps),
    weightDecay: num('weight-decay', base.weightDecay),
    maxGradNorm: num('max-grad-norm', base.maxGradNorm),
    batchSize: num('batch-size', base.batchSize),
    gradAccum: num('grad-accum', base.gradAccum),
    steps,
    epochs: steps ? 0 : num('epochs', base.epochs),
    evalEvery: num('eval-every', base.evalEvery),
    saveEvery: num('save-every', base.saveEvery),
    seed: num('seed', base.seed),
  };
}

export async function trainCommand(args: Args): Promise<void> {
  const out = resolve(str(args, 'out', TRAIN_USAGE));
  const jobPath = join(out, 'job.json');
  let job: JobFile;
  if (args.resume) {
    if (!exists(jobPath)) throw new UsageError(`--resume: ${jobPath} does not exist (start the run without --resume first)`);
    job = JSON.parse(await readFile(jobPath, 'utf8')) as JobFile;
  } else {
    if (exists(jobPath)) throw new UsageError(`${out} already holds a run: add --resume to continue it, or pick another --out`);
    const val = typeof args.val === 'string' ? resolve(args.val) : null;
    job = { model: resolve(str(args, 'model', TRAIN_USAGE)), data: resolve(str(args, 'data', TRAIN_USAGE)), val, valSplit: optNum(args, 'val-split', 0.1)!, seqLen: optNum(args, 'seq-len') ?? null, config: null as unknown as TrainConfig };
  }

  await initBackend(args);
  const full = args.resume ? job.config.mode === 'full' : Boolean(args.full);
  const model = await loadModel(directorySource(job.model), { name: job.model.split('/').pop(), trainable: full });
  const arch = model.lm.config.arch;
  if (!args.resume) job.config = configFromArgs(args, arch);
  const config = job.config;

  const ins = await inspectDataset(await fileSource(job.data), {
    model,
    maxSeqLen: job.seqLen ?? undefined,
    validation: job.val ? await fileSource(job.val) : undefined,
    valFraction: job.valSplit,
    seed: config.seed,
  });
  const r = ins.report;
  for (const e of r.errors.slice(0, 20)) process.stderr.write(`${job.data}:${e.line}: ${e.message}\n`);
  if (r.errorCount) process.stderr.write(`${r.errorCount} bad record(s) skipped; training on the ${r.records} valid ones\n`);
  if (!ins.encoder) throw new Error('no tokenizer: cannot encode the dataset');
  const train = toExamples(ins.encoder, ins.train);
  const val = toExamples(ins.encoder, ins.val);
  emit({ event: 'data', format: r.format, total: r.total, records: r.records, errors: r.errorCount, train: train.length, val: val.length, stop: r.stop ? { token: r.stop.stopTokenId, strings: r.stop.stopStrings, reason: r.stop.reason } : null });

  await mkdir(out, { recursive: true });
  if (!args.resume) await writeFile(jobPath, JSON.stringify(job, null, 2));
  const store = new TabtuneStore(new FsBackend(join(out, 'checkpoints')), { keepLast: 3 });
  const runId = 'cli';
  const trainer = createTrainer(model, train, val, config);
  const metricsPath = join(out, 'metrics.jsonl');
  try {
    if (args.resume) {
      const latest = await store.checkpoints.loadLatest(runId);
      if (!latest) throw new Error(`no checkpoint found in ${join(out, 'checkpoints')} to resume from`);
      trainer.restore(latest.checkpoint as Parameters<typeof trainer.restore>[0]);
      // Drop metrics written after that checkpoint: they will be produced again.
      if (exists(metricsPath)) {
        const kept = (await readFile(metricsPath, 'utf8')).split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= trainer.step);
        await writeFile(metricsPath, kept.map((l) => l + '\n').join(''));
      }
      emit({ event: 'resume', step: trainer.step });
    } else {
      await writeFile(metricsPath, '');
      if (!(await store.runs.get(runId))) await store.runs.create({ id: runId, name: out, config: config as unknown as Record<string, never> });
    }
    emit({ event: 'start', total_steps: trainer.totalSteps, trainable_params: trainer.params.reduce((a, p) => a + p.size, 0), backend: tf.getBackend() });
    let lastVal: number | null = null;
    const outcome = await trainer.run({
      onStep: (m) => {
        const line = { step: m.step, epoch: +m.epoch.toFixed(4), loss: m.loss, smooth_loss: m.smoothLoss, lr: m.lr, grad_norm: m.gradNorm, tokens_per_s: Math.round(m.tokensPerSec), eta_s: Math.round(m.etaSec), ...(m.skipped ? { skipped: m.skipped } : {}) };
        emit(line);
        appendFileSync(metricsPath, JSON.stringify(line) + '\n');
      },
      onEval: (e) => {
        lastVal = e.valLoss;
        const line = { step: e.step, val_loss: e.valLoss, val_ppl: e.valPpl };
        emit(line);
        appendFileSync(metricsPath, JSON.stringify(line) + '\n');
      },
      onCheckpoint: async (c) => {
        const { info } = await store.checkpoints.save(runId, c);
        emit({ event: 'checkpoint', step: info.step, bytes: info.sizeBytes });
      },
    });
    if (outcome.reason === 'failed') throw outcome.error;
    const baseFiles = await readBaseFiles(directorySource(job.model));
    // LoRA: the PEFT adapter; full-parameter: the whole model as an HF folder.
    // How tuned outputs end and how prompts were formatted (tabtune.json): read back by `generate`; a
    // full-parameter model also gets the stop token among its generation_config.json EOS ids.
    const tabtune = { stop_token_id: ins.encoder.stop.stopTokenId, stop_strings: ins.encoder.stop.stopStrings, plain_format: PLAIN_FORMAT };
    const files = trainer.adapter ? exportPeftAdapter(trainer.adapter, { baseModel: job.model, arch }) : exportMergedModel({ lm: model.lm, baseFiles }, null, { tabtune });
    files.set(TABTUNE_JSON, tabtuneJson(tabtune));
    await writeFolder(out, files);
    const recipe = recipeFiles(recipeJob(config, { baseModel: job.model, seqLen: ins.encoder.maxSeqLen, valSplit: job.val ? 0 : job.valSplit, arch }), ins.records);
    await writeFolder(join(out, 'recipe'), recipe);
    emit({ event: 'done', step: trainer.step, val_loss: lastVal, files: [...files.keys()].map((f) => join(out, f)) });
    if (args.compare && ins.val.length && trainer.adapter) {
      const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, ins.encoder, ins.val);
      emit({ event: 'compare', n: tuned.rows.length, exact_base: base.exact, exact_tuned: tuned.exact, overlap_base: base.overlap, overlap_tuned: tuned.overlap });
    }
  } finally {
    disposeTrainer(trainer);
    model.dispose();
  }
}
