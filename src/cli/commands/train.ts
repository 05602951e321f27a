// `npm run cli -- train`: the same job as the browser worker, with the filesystem instead of
// IndexedDB. Streams one JSON object per line (steps, evals, checkpoints), writes the PEFT adapter
// and metrics.jsonl (plus recipe/: a TRL script and an Axolotl config of the same job, for LoRA runs) into --out, keeps checkpoints in --out/checkpoints, and --resume continues there.
// --oft trains an OFT adapter instead (PEFT's OFT format), --full every weight (a whole model folder).
// --method dpo trains on preference pairs (DPO; --adapter DIR continues an SFT adapter, which is then the
// frozen reference), --method prompt-tuning learns virtual tokens (PEFT's PROMPT_TUNING format).
import { appendFileSync, existsSync as exists } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import { join, resolve } from 'node:path';
import { inspectDataset } from '../../data/index';
import { PLAIN_FORMAT } from '../../data/encode';
import { fileSource } from '../../node/data-file';
import { directorySource } from '../../node/fs-source';
import { writeFolder } from '../../node/hf-write';
import { exportPeftAdapter, loadPeftAdapter } from '../../io/peft';
import { exportMergedModel, readBaseFiles, readTabtuneRecord, TABTUNE_JSON, tabtuneJson } from '../../io/export';
import { recipeFiles, recipeUnavailable } from '../../io/recipes';
import { loadModel } from '../../io/load-model';
import { FsBackend } from '../../node/fs-backend';
import { TabtuneStore } from '../../storage/index';
import { compareBaseTuned, createTrainer, disposeTrainer, objectiveFor, recipeJob, recordsFor, textWindowLen, toExamples, toPreferenceExamples, type TuningAdapter } from '../../train/job';
import { runReference, type PreferenceExample } from '../../train/dpo';
import { OftAdapter } from '../../oft/adapter';
import { LoraAdapter } from '../../lora/adapter';
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
  OBJECTIVE_OPTION,
  PROMPT_INIT_OPTION,
  RECOMPUTE_OPTION,
  PROMPT_INITS,
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
import type { EvalMetrics, Example, Trainer } from '../../train/loop';
import { decideRun, keepSteps, measureBaseline, qualityPlugins, runProbe, withReplay } from '../../train/quality/index';
import type { ProbeSet } from '../../train/quality/probe';
import { perplexityBaseTuned } from '../../train/text';
import { memorisationSentence, type GenerationDetails } from '../../train/quality/generation';
import { optNum, str, UsageError, type Args, type OptionSpec } from '../args';
import { initBackend } from '../model-args';
import { writeRunCard } from '../report';
import { deviceMemoryLimits } from '../../model/memory-limits';
import { longestSequence, planMemory } from '../../train/memory-plan';

/** The job's own options (what to train on, where to write); the training settings come from src/train/config.ts. */
const JOB_OPTIONS: [flag: string, type: 'string' | 'boolean', help: string][] = [
  ['model', 'string', 'DIR  the base model (a Hugging Face folder)'],
  ['data', 'string', 'FILE  the training data (JSONL, JSON, CSV, TSV; plain text .txt/.md for domain adaptation)'],
  ['format', 'string', 'F  read the data as this format instead of the detected one (text: plain text; jsonl, csv, alpaca, chat, dpo, ...)'],
  ['out', 'string', 'DIR  where the adapter, metrics.jsonl, checkpoints/ and recipe/ go'],
  ['val', 'string', 'FILE  a separate validation file'],
  ['val-split', 'string', 'F  share of the data held out for validation when there is no --val (default 0.1)'],
  ['seq-len', 'string', 'T  longest training sequence in tokens (default: the model\'s context)'],
  ['probe-text', 'string', 'FILE  general text added to the forgetting probe (plain text)'],
  ['adapter', 'string', 'DIR  start from this PEFT adapter, or another run\'s --out folder (LoRA, OFT or prompt tuning; e.g. the SFT adapter DPO continues, which is then DPO\'s frozen reference, or a run continued on fixed data)'],
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
  [OBJECTIVE_OPTION.flag, 'string'],
  [PROMPT_INIT_OPTION.flag, 'string'],
  [PROMPT_INIT_OPTION.textFlag, 'string'],
  [RECOMPUTE_OPTION.flag, 'boolean'],
]);

/** --method's values: the objective (sft, dpo) or prompt tuning (an SFT run of mode 'prompt'). */
export const METHODS = ['sft', 'dpo', 'prompt-tuning'] as const;

function usage(): string {
  const d = DEFAULT_TRAIN;
  const line = (flag: string, help: string) => `  --${flag.padEnd(14)} ${help}`;
  return [
    'usage: npm run cli -- train --model DIR --data FILE --out DIR [options]',
    'the job:',
    ...JOB_OPTIONS.map(([f, , h]) => line(f, h)),
    'training settings (default in brackets):',
    line(OBJECTIVE_OPTION.flag, `${METHODS.join('|')}  ${OBJECTIVE_OPTION.help} prompt-tuning: ${MODE_OPTION.tradeoffs.prompt} [sft]`),
    line(MODE_OPTION.flag, `${MODE_OPTION.choices.full}: writes a whole HF model folder instead of an adapter [${MODE_OPTION.choices.lora}]`),
    line(MODE_OPTION.oftFlag, `${MODE_OPTION.choices.oft}: rotates each targeted layer's inputs (PEFT's OFT, Llama-family models) instead of LoRA [${MODE_OPTION.choices.lora}]`),
    ...NUMERIC_OPTIONS.map((o) => line(o.flag, `${o.label}: ${o.help} (${o.min}..${o.max}) [${getOption(d, o.key)}]`)),
    line(SCHEDULE_OPTION.flag, `${SCHEDULES.join('|')}  ${SCHEDULE_OPTION.help} [${d.schedule}]`),
    line(TARGETS_OPTION.flag, `a,b,...  ${TARGETS_OPTION.help} [llama: ${LLAMA_TARGETS.join(',')}; gpt2: ${GPT2_TARGETS.join(',')}]`),
    line(BEST_METRIC_OPTION.flag, `${BEST_METRICS.join('|')}  ${BEST_METRIC_OPTION.help} [${d.bestMetric}]`),
    line(PROMPT_INIT_OPTION.flag, `${PROMPT_INITS.join('|')}  ${PROMPT_INIT_OPTION.help} (prompt-tuning) [${d.prompt.prompt_tuning_init}]`),
    line(PROMPT_INIT_OPTION.textFlag, `TEXT  the text TEXT starts from (prompt-tuning)`),
    line(RECOMPUTE_OPTION.flag, `${RECOMPUTE_OPTION.label}: ${RECOMPUTE_OPTION.help} [${d.recompute ? 'on' : 'off'}]`),
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
  /** The PEFT adapter folder the run started from (--adapter), or null. */
  adapter?: string | null;
  /** --format: the data format forced over the detected one (absent: detected). */
  format?: string | null;
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
  const method = (args[OBJECTIVE_OPTION.flag] ?? 'sft') as string;
  if (!(METHODS as readonly string[]).includes(method)) throw new UsageError(`--${OBJECTIVE_OPTION.flag} ${method}: must be ${METHODS.join(', ')}`);
  const prompt = method === 'prompt-tuning';
  if (method === 'dpo') over.objective = 'dpo';
  if (args[MODE_OPTION.flag] && args[MODE_OPTION.oftFlag]) throw new UsageError(`--${MODE_OPTION.flag} and --${MODE_OPTION.oftFlag}: pick one`);
  if (prompt && (args[MODE_OPTION.flag] || args[MODE_OPTION.oftFlag])) throw new UsageError(`--${OBJECTIVE_OPTION.flag} prompt-tuning trains virtual tokens only: drop --${args[MODE_OPTION.flag] ? MODE_OPTION.flag : MODE_OPTION.oftFlag}`);
  if (args[MODE_OPTION.flag]) over.mode = 'full';
  // A setting of another method or adapter kind would be silently ignored: refuse it.
  const given = (keys: string[]) => NUMERIC_OPTIONS.filter((o) => keys.some((k) => o.key.startsWith(k)) && args[o.flag] !== undefined).map((o) => `--${o.flag}`);
  const loraOnly = given(['lora.']);
  const oftOnly = given(['oft.']);
  const promptOnly = [...given(['prompt.']), ...[PROMPT_INIT_OPTION.flag, PROMPT_INIT_OPTION.textFlag].filter((f) => args[f] !== undefined).map((f) => `--${f}`)];
  const dpoOnly = NUMERIC_OPTIONS.filter((o) => o.group === 'dpo' && args[o.flag] !== undefined).map((o) => `--${o.flag}`);
  if (dpoOnly.length && method !== 'dpo') throw new UsageError(`${dpoOnly.join(' ')}: DPO settings; add --${OBJECTIVE_OPTION.flag} dpo to train on preference pairs, or drop them`);
  if (promptOnly.length && !prompt) throw new UsageError(`${promptOnly.join(' ')}: prompt-tuning settings; add --${OBJECTIVE_OPTION.flag} prompt-tuning, or drop them`);
  if (prompt && (loraOnly.length || args[TARGETS_OPTION.flag] !== undefined)) throw new UsageError(`${[...loraOnly, ...(args[TARGETS_OPTION.flag] !== undefined ? [`--${TARGETS_OPTION.flag}`] : [])].join(' ')}: LoRA settings, but prompt tuning trains virtual tokens only; drop them`);
  if (prompt) {
    over.mode = 'prompt';
    const init = args[PROMPT_INIT_OPTION.flag] as string | undefined;
    const text = args[PROMPT_INIT_OPTION.textFlag] as string | undefined;
    if (text !== undefined && init !== undefined && init.toUpperCase() !== 'TEXT') {
      throw new UsageError(`--${PROMPT_INIT_OPTION.textFlag} gives a text to start from, but --${PROMPT_INIT_OPTION.flag} ${init} does not start from a text: drop one (or use --${PROMPT_INIT_OPTION.flag} TEXT)`);
    }
    over.prompt = { ...over.prompt, ...(init !== undefined ? { prompt_tuning_init: init.toUpperCase() as TrainConfig['prompt']['prompt_tuning_init'] } : text !== undefined ? { prompt_tuning_init: 'TEXT' } : {}), ...(text !== undefined ? { prompt_tuning_init_text: text } : {}) };
  }
  if (args[MODE_OPTION.oftFlag] && loraOnly.length) throw new UsageError(`${loraOnly.join(' ')}: LoRA settings, but --${MODE_OPTION.oftFlag} trains an OFT adapter; drop them (or drop --${MODE_OPTION.oftFlag})`);
  if (!args[MODE_OPTION.oftFlag] && oftOnly.length) throw new UsageError(`${oftOnly.join(' ')}: an OFT setting; add --${MODE_OPTION.oftFlag} to train an OFT adapter, or drop it`);
  if (args[MODE_OPTION.oftFlag]) {
    // PEFT's OFT wraps nn.Linear only: GPT-2's Conv1D layers would give an adapter PEFT cannot load.
    if (arch === 'gpt2') throw new UsageError(`--${MODE_OPTION.oftFlag}: PEFT's OFT does not wrap GPT-2's Conv1D layers, so the adapter could not be exported in PEFT's format; train LoRA on this model`);
    over.mode = 'oft';
  }
  if (args[SCHEDULE_OPTION.flag] !== undefined) over.schedule = args[SCHEDULE_OPTION.flag] as TrainConfig['schedule'];
  if (args[BEST_METRIC_OPTION.flag] !== undefined) over.bestMetric = args[BEST_METRIC_OPTION.flag] as TrainConfig['bestMetric'];
  if (args[RECOMPUTE_OPTION.flag]) over.recompute = true;
  if (typeof args[TARGETS_OPTION.flag] === 'string') {
    const target_modules = (args[TARGETS_OPTION.flag] as string).split(',').map((s) => s.trim()).filter(Boolean);
    if (over.mode === 'oft') over.oft = { ...over.oft, target_modules };
    else over.lora = { ...over.lora, target_modules };
  }
  const r = resolveTrainConfig(arch, over as TrainConfigOverrides, CLI_TRAINING);
  if (r.ok) return r.config;
  const named = r.problems.map((p) => {
    const o = [...NUMERIC_OPTIONS, SCHEDULE_OPTION, TARGETS_OPTION, BEST_METRIC_OPTION, PROMPT_INIT_OPTION, OBJECTIVE_OPTION].find((x) => p.startsWith(`${x.label}:`));
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
    const adapter = typeof args.adapter === 'string' ? resolve(args.adapter) : null;
    job = { model: resolve(str(args, 'model', TRAIN_USAGE)), data: resolve(str(args, 'data', TRAIN_USAGE)), val, valSplit: optNum(args, 'val-split', 0.1)!, seqLen: optNum(args, 'seq-len') ?? null, probeText, adapter, format: typeof args.format === 'string' ? args.format : null, config: null as unknown as TrainConfig };
  }

  await initBackend(args);
  const full = args.resume ? job.config.mode === 'full' : Boolean(args.full);
  const model = await loadModel(directorySource(job.model), { name: job.model.split('/').pop(), trainable: full });
  const arch = model.lm.config.arch;
  if (!args.resume) job.config = configFromArgs(args, arch);
  // --adapter: the run trains that adapter further (its kind and shape are the run's); its replies end as its run's did.
  const start = !args.resume && job.adapter ? await startingAdapter(model, job, args) : null;
  const stop = start?.stop ? { stopTokenId: start.stop.stop_token_id, stopStrings: start.stop.stop_strings } : job.adapter ? await adapterStop(job.adapter) : undefined;
  let config = job.config;

  const ins = await inspectDataset(await fileSource(job.data), {
    model,
    maxSeqLen: job.seqLen ?? undefined,
    validation: job.val ? await fileSource(job.val) : undefined,
    valFraction: job.valSplit,
    seed: config.seed,
    stop,
    ...(job.format ? { format: job.format } : {}),
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
  // The probe is the base model's own text, sampled with the starting adapter switched off.
  if (start) start.adapter.enabled = false;
  const probe = await runProbe(model, null, config, { stored: storedProbe, text: job.probeText ? await readFile(job.probeText, 'utf8') : undefined });
  if (start) start.adapter.enabled = true;
  // SFT trains the pairs and chats, DPO the preference pairs: the rest is left out, and said so.
  const dpo = config.objective === 'dpo';
  const trainRecords = recordsFor(config, ins.train);
  const valRecords = recordsFor(config, ins.val);
  const left = trainRecords.left + valRecords.left;
  if (!trainRecords.use.length) {
    start?.adapter.dispose();
    throw new UsageError(
      dpo
        ? `${job.data} has no preference pairs ({"prompt", "chosen", "rejected"}) to train with DPO: give a preference file, or drop --${OBJECTIVE_OPTION.flag} dpo`
        : `${job.data} holds only preference pairs: train them with --${OBJECTIVE_OPTION.flag} dpo`,
    );
  }
  const windowLen = textWindowLen(ins.encoder, model.lm, config);
  const own = dpo ? [] : toExamples(ins.encoder, trainRecords.use, windowLen);
  const train: (Example | PreferenceExample)[] = dpo ? toPreferenceExamples(ins.encoder, trainRecords.use) : await withReplay(model, null, config, own, probe);
  const val: (Example | PreferenceExample)[] = dpo ? toPreferenceExamples(ins.encoder, valRecords.use) : toExamples(ins.encoder, valRecords.use, windowLen);
  emit({
    event: 'data',
    format: r.format,
    method: dpo ? 'dpo' : config.mode === 'prompt' ? 'prompt-tuning' : 'sft',
    total: r.total,
    records: r.records,
    errors: r.errorCount,
    ...(dpo ? { pairs: train.length } : { train: own.length, replay: train.length - own.length }),
    val: val.length,
    ...(left ? { left_out: left } : {}),
    // Plain text: characters, tokens, the windows it is packed into, and what is held out (whole documents or paragraphs).
    ...(r.text ? { characters: r.text.characters, tokens: r.text.tokens, windows: r.text.windows, seq_len: r.text.seqLen, documents: r.text.documents, paragraphs: r.text.paragraphs, held_out: { by: r.text.split.by, share: r.text.split.share, documents: r.text.split.val.documents, paragraphs: r.text.split.val.paragraphs, tokens: r.text.split.val.tokens } } : {}),
    stop: r.stop ? { token: r.stop.stopTokenId, strings: r.stop.stopStrings, reason: r.stop.reason } : null,
  });
  if (left) emit({ event: 'warning', message: dpo ? `${left} record(s) are not preference pairs: DPO leaves them out` : `${left} preference pair(s) left out: supervised training uses pairs and chats (train preference pairs with --${OBJECTIVE_OPTION.flag} dpo)` });

  await mkdir(out, { recursive: true });
  if (!args.resume) await writeFile(jobPath, JSON.stringify(job, null, 2));
  const store = new TabtuneStore(new FsBackend(join(out, 'checkpoints')), { keepLast: 3 });
  const runId = 'cli';
  // The memory plan (src/train/memory-plan.ts): a batch that will not fit trains in micro-batches with the same
  // effective batch; a run that cannot fit at all stops here, before the first step.
  const memPlan = planMemory(model.info, config, Math.max(1, longestSequence([...train, ...val])), deviceMemoryLimits());
  if (!memPlan.fits) throw new Error(memPlan.withRecompute ? `${memPlan.message!} (${RECOMPUTE_OPTION.label}: --${RECOMPUTE_OPTION.flag})` : memPlan.message!);
  if (memPlan.changed) {
    emit({ event: 'warning', message: memPlan.message });
    config = { ...config, batchSize: memPlan.batchSize, gradAccum: memPlan.gradAccum };
  }
  const trainer = createTrainer(model, train, val, config, { objective: objectiveFor(config) as never, adapter: start?.adapter }) as Trainer<Example | PreferenceExample>;
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
      if (dpo) {
        // DPO's reference: the model as the run starts (the --adapter it continues, else the base model), once;
        // the checkpoints keep it for a resume.
        await runReference(trainer, start !== null);
        emit({ event: 'reference', pairs: train.length + val.length, from: job.adapter ?? 'base model' });
      }
      await writeFile(metricsPath, '');
      if (!(await store.runs.get(runId))) await store.runs.create({ id: runId, name: out, config: config as unknown as Record<string, never> });
    }
    // What each evaluation measures besides the validation loss, and early stopping.
    const quality = await qualityPlugins({ model, adapter: trainer.adapter, config, encoder: ins.encoder, trainRecords: trainRecords.use, valRecords: valRecords.use, probe, history });
    for (const message of quality.warnings) emit({ event: 'warning', message });
    if (probe && !storedProbe) await writeFile(probePath, JSON.stringify(probe));
    if (!args.resume) {
      // The model the run starts from (the base model, or the --adapter it continues) on the held-out split,
      // before the first step (the card's "before").
      const baseline = await measureBaseline(trainer as Trainer, quality.metrics, start ? job.adapter! : null);
      if (baseline) {
        await writeFile(join(out, 'baseline.json'), JSON.stringify(baseline));
        emit({ event: 'baseline', val_loss: baseline.valLoss, ...baseline.extra });
      }
    }
    if (probe) emit({ event: 'probe', samples: probe.samples.length, tokens: probe.tokens, base_nll: probe.baseNll });
    const evals: EvalMetrics[] = [...history];
    // What the adapter started from (--adapter): a PEFT adapter folder, or another run's --out folder (which holds its PEFT files).
    const from = job.adapter ? { from: job.adapter, from_kind: exists(join(job.adapter, 'job.json')) ? 'run' : 'adapter' } : {};
    const memory = { estimate_mb: Math.round(memPlan.estimate.total / 2 ** 20), weights_mb: Math.round(memPlan.estimate.weights / 2 ** 20), activations_mb: Math.round(memPlan.estimate.activations / 2 ** 20), adapter_optimizer_mb: Math.round(memPlan.estimate.trainable / 2 ** 20), recompute: config.recompute, available_mb: memPlan.budget === null ? null : Math.round(memPlan.budget / 2 ** 20), micro_batch: memPlan.batchSize, grad_accum: memPlan.gradAccum };
    emit({ event: 'start', total_steps: trainer.totalSteps, trainable_params: trainer.params.reduce((a, p) => a + p.size, 0), backend: tf.getBackend(), memory, ...from });
    let lastVal: number | null = null;
    const log = (line: Record<string, unknown>) => {
      emit(line);
      appendFileSync(metricsPath, JSON.stringify(line) + '\n');
    };
    const savedSteps = async () => (await store.checkpoints.list(runId, { gc: false })).map((c) => c.step);
    const outcome = await runTraining(trainer as Trainer, { metrics: quality.metrics, stopRules: quality.stopRules, history }, async (e) => {
      if (e.type === 'step') log({ ...metricRow(stepPoint(e.metrics)), ...preferenceAliases(e.metrics.extra, ''), eta_s: Math.round(e.metrics.etaSec) });
      else if (e.type === 'eval') {
        lastVal = e.metrics.valLoss;
        evals.push(e.metrics);
        log({ ...metricRow(evalPoint(e.metrics)), ...preferenceAliases(e.metrics.extra, 'eval_') });
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
    const files = trainer.adapter ? exportPeftAdapter(trainer.adapter as TuningAdapter, { baseModel: job.model, arch }) : exportMergedModel({ lm: model.lm, baseFiles }, null, { tabtune });
    files.set(TABTUNE_JSON, tabtuneJson(tabtune));
    await writeFolder(out, files);
    // The recipes describe supervised LoRA jobs on prompt/completion or chat data (recipeUnavailable says why not).
    if (!recipeUnavailable(config, ins.records)) {
      const recipe = recipeFiles(recipeJob(config, { baseModel: job.model, seqLen: ins.encoder.maxSeqLen, valSplit: job.val ? 0 : job.valSplit, arch }), ins.records);
      await writeFolder(join(out, 'recipe'), recipe);
    }
    // The model card (README.md, loss_curve.png) and its input (report.json), from what the run stored: src/cli/report.ts.
    await writeRunCard({ out, job, model, inspected: ins, config, decision, store, runId, backend: tf.getBackend() });
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
    const textVal = valRecords.use.some((x) => x.kind === 'text');
    if (args.compare && textVal) {
      // Plain text: held-out perplexity of the base model and the tuned one on the held-out windows, and a few
      // held-out paragraphs' openings continued by each (greedy).
      const fromEvals = [...evals].reverse().find((e) => e.extra?.ppl_base !== undefined)?.extra?.ppl_base ?? null;
      const ppl = await perplexityBaseTuned(model.lm, trainer.adapter, val as Example[], config.batchSize);
      const samples = trainer.adapter ? await compareBaseTuned(model, trainer.adapter, ins.encoder, valRecords.use.slice(0, 3), { scoreLoss: false }) : null;
      emit({
        event: 'compare',
        windows: val.length,
        tokens: ppl.tokens,
        ppl_base: trainer.adapter ? ppl.base : fromEvals,
        ppl_tuned: ppl.tuned,
        ...(samples ? { examples: samples.tuned.rows.map((t, i) => ({ line: t.line, opening: t.prompt, expected: t.expected, base: samples.base.rows[i]!.output, tuned: t.output })) } : {}),
      });
    } else if (args.compare && valRecords.use.length && trainer.adapter) {
      // DPO: the base model against the tuned one, each answer compared with the chosen reply.
      const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, ins.encoder, valRecords.use);
      emit({ event: 'compare', n: tuned.rows.length, exact_base: base.exact, exact_tuned: tuned.exact, overlap_base: base.overlap, overlap_tuned: tuned.overlap });
    }
  } finally {
    disposeTrainer(trainer as Trainer);
    model.dispose();
  }
}

/** The CLI's short names for DPO's statistics (beside TRL's): reward_margin, pref_accuracy; val_ for held-out pairs. */
function preferenceAliases(extra: Record<string, number> | undefined, prefix: '' | 'eval_'): Record<string, number> {
  const margin = extra?.[`${prefix}rewards/margins`];
  const acc = extra?.[`${prefix}rewards/accuracies`];
  const p = prefix ? 'val_' : '';
  return { ...(margin !== undefined ? { [`${p}reward_margin`]: margin } : {}), ...(acc !== undefined ? { [`${p}pref_accuracy`]: acc } : {}) };
}

/** The stop of the run an adapter folder came from (its tabtune.json), as the doctor's override. */
async function adapterStop(dir: string): Promise<{ stopTokenId: number | null; stopStrings: string[] } | undefined> {
  const rec = await readTabtuneRecord(directorySource(dir));
  return rec ? { stopTokenId: rec.stop_token_id, stopStrings: rec.stop_strings } : undefined;
}

/**
 * --adapter DIR: the PEFT adapter the run starts from (LoRA, OFT or prompt tuning), attached to the model; the run's configuration takes
 * its kind and shape (settings that would contradict it are refused).
 */
async function startingAdapter(model: Awaited<ReturnType<typeof loadModel>>, job: JobFile, args: Args): Promise<{ adapter: TuningAdapter; stop: Awaited<ReturnType<typeof readTabtuneRecord>> }> {
  const c = job.config;
  if (c.mode === 'full') throw new UsageError(`--adapter continues an adapter: drop --${MODE_OPTION.flag}`);
  const shape = [
    ...NUMERIC_OPTIONS.filter((o) => (o.key.startsWith('lora.') || o.key.startsWith('oft.') || o.key.startsWith('prompt.')) && args[o.flag] !== undefined).map((o) => `--${o.flag}`),
    ...[TARGETS_OPTION.flag, MODE_OPTION.oftFlag, PROMPT_INIT_OPTION.flag, PROMPT_INIT_OPTION.textFlag].filter((f) => args[f] !== undefined).map((f) => `--${f}`),
  ];
  if (shape.length) throw new UsageError(`${shape.join(' ')}: the adapter in ${job.adapter} sets its own kind and shape; drop them`);
  if (exists(join(job.adapter!, 'job.json')) && !exists(join(job.adapter!, 'adapter_config.json'))) {
    throw new UsageError(`--adapter ${job.adapter}: that run's output holds no adapter (a full-parameter run writes a whole model folder): give it as --model instead`);
  }
  const src = directorySource(job.adapter!);
  const adapter = await loadPeftAdapter(model.lm, src, { expectedBaseModel: job.model, onWarning: (message) => emit({ event: 'warning', message }) });
  if (adapter instanceof OftAdapter) {
    const o = adapter.config;
    if (!o.oft_block_size) {
      adapter.dispose();
      throw new UsageError(`${job.adapter}: an OFT adapter given by its number of blocks (r) rather than a block size cannot be trained further here`);
    }
    job.config = { ...c, mode: 'oft', oft: { oft_block_size: o.oft_block_size, module_dropout: o.module_dropout, target_modules: o.target_modules, coft: o.coft, eps: o.eps } };
  } else if (adapter instanceof LoraAdapter) {
    const l = adapter.config;
    job.config = { ...c, mode: 'lora', lora: { r: l.r, lora_alpha: l.lora_alpha, lora_dropout: l.lora_dropout, target_modules: l.target_modules } };
  } else {
    // Prompt tuning: the virtual tokens go on training (their init settings only describe where they began).
    job.config = { ...c, mode: 'prompt', prompt: { ...adapter.config } };
  }
  const checked = parseTrainConfig(job.config, CLI_TRAINING);
  if (!checked.ok) {
    adapter.dispose();
    throw new UsageError(`${job.adapter}: this adapter's settings cannot be trained here: ${checked.problems.join(' ')}`);
  }
  return { adapter, stop: await readTabtuneRecord(src) };
}
