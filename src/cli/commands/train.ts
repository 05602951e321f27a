// `npm run cli -- train`: the same job as the browser worker, with the filesystem instead of
// IndexedDB. Streams one JSON object per line (steps, evals, checkpoints), writes the PEFT adapter
// and metrics.jsonl (plus recipe/: a TRL script and an Axolotl config of the same job, for LoRA runs) into --out, keeps checkpoints in --out/checkpoints, and --resume continues there.
// --oft trains an OFT adapter instead (PEFT's OFT format), --full every weight (a whole model folder).
import { appendFileSync, existsSync as exists } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { join, resolve } from 'node:path';
import { inspectDataset } from '../../data/index';
import { PLAIN_FORMAT } from '../../data/encode';
import { fileSource } from '../../node/data-file';
import { directorySource } from '../../node/fs-source';
import { writeFolder } from '../../node/hf-write';
import { exportPeftAdapter } from '../../io/peft';
import { exportMergedModel, readBaseFiles, TABTUNE_JSON, tabtuneJson } from '../../io/export';
import { recipeFiles } from '../../io/recipes';
import { loadModel } from '../../io/load-model';
import { FsBackend } from '../../node/fs-backend';
import { TabtuneStore } from '../../storage/index';
import { compareBaseTuned, createTrainer, disposeTrainer, recipeJob, toExamples } from '../../train/job';
import {
  BEST_METRIC_OPTION,
  BEST_METRICS,
  CLI_TRAINING,
  DEFAULT_TRAIN,
  getOption,
  GPT2_TARGETS,
  LLAMA_TARGETS,
  MODE_OPTION,
  NUMERIC_OPTIONS,
  parseTrainConfig,
  resolveTrainConfig,
  SCHEDULE_OPTION,
  SCHEDULES,
  setOption,
  TARGETS_OPTION,
  type TrainConfig,
  type TrainConfigOverrides,
} from '../../train/config';
import { evalPoint, metricRow, stepPoint } from '../../train/metrics';
import { runTraining } from '../../train/run-loop';
import type { EvalMetrics } from '../../train/loop';
import { decideRun, keepSteps, qualityPlugins, runProbe, withReplay } from '../../train/quality/index';
import type { ProbeSet } from '../../train/quality/probe';
import { memorisationSentence, type GenerationDetails } from '../../train/quality/generation';
import { optNum, str, UsageError, type Args, type OptionSpec } from '../args';
import { initBackend } from '../model-args';

/** The job's own options (what to train on, where to write); the training settings come from src/train/config.ts. */
const JOB_OPTIONS: [flag: string, type: 'string' | 'boolean', help: string][] = [
  ['model', 'string', 'DIR  the base model (a Hugging Face folder)'],
  ['data', 'string', 'FILE  the training data (JSONL, JSON, CSV, TSV)'],
  ['out', 'string', 'DIR  where the adapter, metrics.jsonl, checkpoints/ and recipe/ go'],
  ['val', 'string', 'FILE  a separate validation file'],
  ['val-split', 'string', 'F  share of the data held out for validation when there is no --val (default 0.1)'],
  ['seq-len', 'string', 'T  longest training sequence in tokens (default: the model\'s context)'],
  ['probe-text', 'string', 'FILE  general text added to the forgetting probe (plain text)'],
  ['compare', 'boolean', 'after training, greedy base vs tuned on the held-out split (exact match, overlap)'],
  ['resume', 'boolean', 'continue the run saved in --out'],
  ['backend', 'string', 'wasm|cpu  the TF.js backend (default wasm)'],
  ['help', 'boolean', 'print this help'],
];

/** Every option `train` takes: the job's and one per training setting of the run configuration. */
export const TRAIN_OPTIONS: OptionSpec = Object.fromEntries([
  ...JOB_OPTIONS.map(([f, t]) => [f, t]),
  ...NUMERIC_OPTIONS.map((o) => [o.flag, 'string']),
  [MODE_OPTION.flag, 'boolean'],
  [MODE_OPTION.oftFlag, 'boolean'],
  [SCHEDULE_OPTION.flag, 'string'],
  [TARGETS_OPTION.flag, 'string'],
  [BEST_METRIC_OPTION.flag, 'string'],
]);

function usage(): string {
  const d = DEFAULT_TRAIN;
  const line = (flag: string, help: string) => `  --${flag.padEnd(14)} ${help}`;
  return [
    'usage: npm run cli -- train --model DIR --data FILE --out DIR [options]',
    'the job:',
    ...JOB_OPTIONS.map(([f, , h]) => line(f, h)),
    'training settings (default in brackets):',
    line(MODE_OPTION.flag, `${MODE_OPTION.choices.full}: writes a whole HF model folder instead of an adapter [${MODE_OPTION.choices.lora}]`),
    line(MODE_OPTION.oftFlag, `${MODE_OPTION.choices.oft}: rotates each targeted layer's inputs (PEFT's OFT, Llama-family models) instead of LoRA [${MODE_OPTION.choices.lora}]`),
    ...NUMERIC_OPTIONS.map((o) => line(o.flag, `${o.label}: ${o.help} (${o.min}..${o.max}) [${getOption(d, o.key)}]`)),
    line(SCHEDULE_OPTION.flag, `${SCHEDULES.join('|')}  ${SCHEDULE_OPTION.help} [${d.schedule}]`),
    line(TARGETS_OPTION.flag, `a,b,...  ${TARGETS_OPTION.help} [llama: ${LLAMA_TARGETS.join(',')}; gpt2: ${GPT2_TARGETS.join(',')}]`),
    line(BEST_METRIC_OPTION.flag, `${BEST_METRICS.join('|')}  ${BEST_METRIC_OPTION.help} [${d.bestMetric}]`),
  ].join('\n');
}

export const TRAIN_USAGE = usage();

interface JobFile {
  model: string;
  data: string;
  val: string | null;
  valSplit: number;
  seqLen: number | null;
  /** General text added to the forgetting probe (absent in runs started before it existed). */
  probeText?: string | null;
  config: TrainConfig;
}

/** A metrics.jsonl evaluation line read back as the loop's EvalMetrics (a resumed run's history). */
function evalFromRow(row: Record<string, unknown>): EvalMetrics | null {
  if (typeof row.val_loss !== 'number' || typeof row.step !== 'number') return null;
  const extra: Record<string, number> = {};
  for (const [k, v] of Object.entries(row)) if (!['step', 'val_loss', 'val_ppl'].includes(k) && typeof v === 'number') extra[k] = v;
  return { step: row.step, valLoss: row.val_loss, valPpl: typeof row.val_ppl === 'number' ? row.val_ppl : Math.exp(row.val_loss), tokens: 0, extra };
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

/** The run configuration from the command line: the table's flags over the model's defaults, checked. */
export function configFromArgs(args: Args, arch: 'llama' | 'gpt2'): TrainConfig {
  let over = {} as TrainConfig;
  for (const o of NUMERIC_OPTIONS) if (args[o.flag] !== undefined) over = setOption(over, o.key, optNum(args, o.flag)!);
  if (args[MODE_OPTION.flag] && args[MODE_OPTION.oftFlag]) throw new UsageError(`--${MODE_OPTION.flag} and --${MODE_OPTION.oftFlag}: pick one`);
  if (args[MODE_OPTION.flag]) over.mode = 'full';
  // A setting of the other adapter kind would be silently ignored: refuse it.
  const given = (keys: string[]) => NUMERIC_OPTIONS.filter((o) => keys.some((k) => o.key.startsWith(k)) && args[o.flag] !== undefined).map((o) => `--${o.flag}`);
  const loraOnly = given(['lora.']);
  const oftOnly = given(['oft.']);
  if (args[MODE_OPTION.oftFlag] && loraOnly.length) throw new UsageError(`${loraOnly.join(' ')}: LoRA settings, but --${MODE_OPTION.oftFlag} trains an OFT adapter; drop them (or drop --${MODE_OPTION.oftFlag})`);
  if (!args[MODE_OPTION.oftFlag] && oftOnly.length) throw new UsageError(`${oftOnly.join(' ')}: an OFT setting; add --${MODE_OPTION.oftFlag} to train an OFT adapter, or drop it`);
  if (args[MODE_OPTION.oftFlag]) {
    // PEFT's OFT wraps nn.Linear only: GPT-2's Conv1D layers would give an adapter PEFT cannot load.
    if (arch === 'gpt2') throw new UsageError(`--${MODE_OPTION.oftFlag}: PEFT's OFT does not wrap GPT-2's Conv1D layers, so the adapter could not be exported in PEFT's format; train LoRA on this model`);
    over.mode = 'oft';
  }
  if (args[SCHEDULE_OPTION.flag] !== undefined) over.schedule = args[SCHEDULE_OPTION.flag] as TrainConfig['schedule'];
  if (args[BEST_METRIC_OPTION.flag] !== undefined) over.bestMetric = args[BEST_METRIC_OPTION.flag] as TrainConfig['bestMetric'];
  if (typeof args[TARGETS_OPTION.flag] === 'string') {
    const target_modules = (args[TARGETS_OPTION.flag] as string).split(',').map((s) => s.trim()).filter(Boolean);
    if (over.mode === 'oft') over.oft = { ...over.oft, target_modules };
    else over.lora = { ...over.lora, target_modules };
  }
  const r = resolveTrainConfig(arch, over as TrainConfigOverrides, CLI_TRAINING);
  if (r.ok) return r.config;
  const named = r.problems.map((p) => {
    const o = [...NUMERIC_OPTIONS, SCHEDULE_OPTION, TARGETS_OPTION, BEST_METRIC_OPTION].find((x) => p.startsWith(`${x.label}:`));
    return o ? `--${o.flag} (${p})` : p;
  });
  throw new UsageError(`invalid training settings:\n  ${named.join('\n  ')}\n(see: npm run cli -- train --help)`);
}

export async function trainCommand(args: Args): Promise<void> {
  const out = resolve(str(args, 'out', TRAIN_USAGE));
  const jobPath = join(out, 'job.json');
  let job: JobFile;
  if (args.resume) {
    if (!exists(jobPath)) throw new UsageError(`--resume: ${jobPath} does not exist (start the run without --resume first)`);
    const given = Object.keys(args).filter((k) => k !== '_' && !['out', 'resume', 'backend', 'compare'].includes(k));
    if (given.length) throw new UsageError(`--resume continues the run in ${out} with its saved settings: drop ${given.map((k) => `--${k}`).join(' ')}`);
    job = JSON.parse(await readFile(jobPath, 'utf8')) as JobFile;
    const saved = parseTrainConfig(job.config, CLI_TRAINING);
    if (!saved.ok) throw new UsageError(`${jobPath} holds invalid training settings: ${saved.problems.join(' ')}`);
    // Settings added since the run started take their defaults (the parse filled them in).
    job.config = saved.config;
  } else {
    if (exists(jobPath)) throw new UsageError(`${out} already holds a run: add --resume to continue it, or pick another --out`);
    const val = typeof args.val === 'string' ? resolve(args.val) : null;
    const probeText = typeof args['probe-text'] === 'string' ? resolve(args['probe-text']) : null;
    job = { model: resolve(str(args, 'model', TRAIN_USAGE)), data: resolve(str(args, 'data', TRAIN_USAGE)), val, valSplit: optNum(args, 'val-split', 0.1)!, seqLen: optNum(args, 'seq-len') ?? null, probeText, config: null as unknown as TrainConfig };
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
  // Replay (base-model text against forgetting) is sampled before the adapter exists: from the base model.
  // The forgetting probe (sampled from the base model once and kept in --out, so a resumed run measures the
  // same texts), then replay text (base-model text against forgetting, never one of the probe's texts).
  const probePath = join(out, 'probe.json');
  const storedProbe = args.resume && exists(probePath) ? (JSON.parse(await readFile(probePath, 'utf8')) as ProbeSet) : null;
  const probe = await runProbe(model, null, config, { stored: storedProbe, text: job.probeText ? await readFile(job.probeText, 'utf8') : undefined });
  const own = toExamples(ins.encoder, ins.train);
  const train = await withReplay(model, null, config, own, probe);
  const val = toExamples(ins.encoder, ins.val);
  emit({ event: 'data', format: r.format, total: r.total, records: r.records, errors: r.errorCount, train: own.length, replay: train.length - own.length, val: val.length, stop: r.stop ? { token: r.stop.stopTokenId, strings: r.stop.stopStrings, reason: r.stop.reason } : null });

  await mkdir(out, { recursive: true });
  if (!args.resume) await writeFile(jobPath, JSON.stringify(job, null, 2));
  const store = new TabtuneStore(new FsBackend(join(out, 'checkpoints')), { keepLast: 3 });
  const runId = 'cli';
  const trainer = createTrainer(model, train, val, config);
  const metricsPath = join(out, 'metrics.jsonl');
  try {
    const history: EvalMetrics[] = [];
    if (args.resume) {
      const latest = await store.checkpoints.loadLatest(runId);
      if (!latest) throw new Error(`no checkpoint found in ${join(out, 'checkpoints')} to resume from`);
      trainer.restore(latest.checkpoint as Parameters<typeof trainer.restore>[0]);
      // Drop metrics written after that checkpoint: they will be produced again.
      if (exists(metricsPath)) {
        const kept = (await readFile(metricsPath, 'utf8')).split('\n').filter((l) => l && (JSON.parse(l) as { step: number }).step <= trainer.step);
        await writeFile(metricsPath, kept.map((l) => l + '\n').join(''));
        for (const l of kept) {
          const e = evalFromRow(JSON.parse(l) as Record<string, unknown>);
          if (e) history.push(e);
        }
      }
      emit({ event: 'resume', step: trainer.step });
    } else {
      await writeFile(metricsPath, '');
      if (!(await store.runs.get(runId))) await store.runs.create({ id: runId, name: out, config: config as unknown as Record<string, never> });
    }
    // What each evaluation measures besides the validation loss, and early stopping.
    const quality = await qualityPlugins({ model, adapter: trainer.adapter, config, encoder: ins.encoder, trainRecords: ins.train, valRecords: ins.val, probe, history });
    for (const message of quality.warnings) emit({ event: 'warning', message });
    if (probe && !storedProbe) await writeFile(probePath, JSON.stringify(probe));
    if (probe) emit({ event: 'probe', samples: probe.samples.length, tokens: probe.tokens, base_nll: probe.baseNll });
    const evals: EvalMetrics[] = [...history];
    emit({ event: 'start', total_steps: trainer.totalSteps, trainable_params: trainer.params.reduce((a, p) => a + p.size, 0), backend: tf.getBackend() });
    let lastVal: number | null = null;
    const log = (line: Record<string, unknown>) => {
      emit(line);
      appendFileSync(metricsPath, JSON.stringify(line) + '\n');
    };
    const savedSteps = async () => (await store.checkpoints.list(runId, { gc: false })).map((c) => c.step);
    const outcome = await runTraining(trainer, { metrics: quality.metrics, stopRules: quality.stopRules, history }, async (e) => {
      if (e.type === 'step') log({ ...metricRow(stepPoint(e.metrics)), eta_s: Math.round(e.metrics.etaSec) });
      else if (e.type === 'eval') {
        lastVal = e.metrics.valLoss;
        evals.push(e.metrics);
        log(metricRow(evalPoint(e.metrics)));
        // Held-out answers copied from the training set: say so, with the share.
        const memorised = (e.metrics.details?.generation as GenerationDetails | undefined)?.memorised;
        const warning = memorised ? memorisationSentence(memorised) : null;
        if (warning) emit({ event: 'warning', step: e.metrics.step, message: warning });
      } else {
        const keep = keepSteps(evals, config, [...(await savedSteps()), e.checkpoint.step], trainer.totalSteps);
        const { info } = await store.checkpoints.save(runId, e.checkpoint, { keep });
        emit({ event: 'checkpoint', step: info.step, bytes: info.sizeBytes });
      }
    });
    if (outcome.reason === 'failed') throw outcome.error;
    // A run that ended on a skipped step (early stopping right after a non-finite one) saves where it ended.
    if (!(await savedSteps()).includes(trainer.step)) {
      const ck = trainer.checkpoint();
      await store.checkpoints.save(runId, ck, { keep: keepSteps(evals, config, [...(await savedSteps()), ck.step], trainer.totalSteps) });
      emit({ event: 'checkpoint', step: ck.step });
    }
    const stoppedBy = outcome.reason === 'done' ? (outcome.stoppedBy ?? null) : null;
    const decision = decideRun(evals, config, await savedSteps(), trainer.step, stoppedBy);
    const baseFiles = await readBaseFiles(directorySource(job.model));
    // LoRA: the PEFT adapter; full-parameter: the whole model as an HF folder.
    // How tuned outputs end and how prompts were formatted (tabtune.json): read back by `generate`; a
    // full-parameter model also gets the stop token among its generation_config.json EOS ids.
    const tabtune = { stop_token_id: ins.encoder.stop.stopTokenId, stop_strings: ins.encoder.stop.stopStrings, plain_format: PLAIN_FORMAT };
    const files = trainer.adapter ? exportPeftAdapter(trainer.adapter, { baseModel: job.model, arch }) : exportMergedModel({ lm: model.lm, baseFiles }, null, { tabtune });
    files.set(TABTUNE_JSON, tabtuneJson(tabtune));
    await writeFolder(out, files);
    // The recipes describe a LoRA job (TRL's and Axolotl's LoRA settings): none for an OFT run.
    if (config.mode !== 'oft') {
      const recipe = recipeFiles(recipeJob(config, { baseModel: job.model, seqLen: ins.encoder.maxSeqLen, valSplit: job.val ? 0 : job.valSplit, arch }), ins.records);
      await writeFolder(join(out, 'recipe'), recipe);
    }
    emit({
      event: 'done',
      step: trainer.step,
      val_loss: lastVal,
      best_step: decision.bestStep,
      recommended_step: decision.recommendedStep,
      final_step: decision.finalStep,
      stopped_early: decision.stoppedEarly,
      stop_reason: decision.stopReason,
      recommendation: decision.sentence,
      files: [...files.keys()].map((f) => join(out, f)),
    });
    if (args.compare && ins.val.length && trainer.adapter) {
      const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, ins.encoder, ins.val);
      emit({ event: 'compare', n: tuned.rows.length, exact_base: base.exact, exact_tuned: tuned.exact, overlap_base: base.overlap, overlap_tuned: tuned.overlap });
    }
  } finally {
    disposeTrainer(trainer);
    model.dispose();
  }
}
