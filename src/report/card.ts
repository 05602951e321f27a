// The run report: a Hugging Face model card (README.md) written from a run's own records, and the same
// content as sections the page renders (src/ui/report). Nothing here measures or guesses: every figure is
// read from the CardInput (stored metric points, the run's quality decisions, the checkpoint manifest, the
// dataset doctor's report, the run configuration), and a field the run did not measure says so
// ("not measured: …") instead of being left out.
//
// Layout: YAML front matter (base_model, library_name, pipeline_tag, tags; the license is left to the user
// with a note), then: base model, data, method, training, evaluation, this checkpoint, loss curve, how to
// load, how to reproduce, license. The loss curve is a PNG (src/report/png.ts) written beside the card.
import type { RunQuality } from '../storage/runs';
import type { DataReport } from '../data/doctor';
import type { MetricPoint } from '../train/metrics';

/** What a card is written into: a PEFT adapter folder, a merged model folder, or the card alone. */
export type CardTarget = 'adapter' | 'merged' | 'card';

/** The run's quality decisions as stored (RunQuality), read without the explored path; any criterion name. */
export type CardQuality = Omit<RunQuality, 'path' | 'criterion'> & { criterion: string };

/** Everything a card is written from: plain JSON, so the CLI keeps it beside the adapter (report.json). */
export interface CardInput {
  version: 1;
  target: CardTarget;
  run: {
    id: string;
    name: string;
    /** ms since the epoch (null: not recorded). */
    createdAt: number | null;
    updatedAt: number | null;
    status: string | null;
    /** The run this one continues from (a branch, a rewind), or null. */
    parent: { runId: string; step: number } | null;
    /** How the checkpoint was derived from another (path-wise rewinding), as stored; null when trained. */
    derived: unknown;
  };
  model: {
    /** What the weights are called where they were loaded ("tabtune-tiny"). */
    name: string;
    /** base_model of the card (a Hub id or the folder the run was trained on). */
    baseModel: string;
    /** Where it was loaded from ("http://…/models/tabtune-tiny/", a folder). */
    source: string | null;
    arch: string | null;
    numParams: number | null;
  };
  /** The run configuration (TrainConfig) and the defaults for the model, read as JSON. */
  config: Record<string, unknown> | null;
  defaults: Record<string, unknown> | null;
  data: {
    name: string;
    /** "sha256:<hex>" of the training file's bytes, or null when not recorded. */
    fingerprint: string | null;
    /** The doctor's report (counts, problems, split, stop token), or null with `missing` saying why. */
    report: DataReport | null;
    missing: string | null;
    /** The prompt template the encoder used ('auto' | 'chat-template' | 'plain'), and the plain layout. */
    template: string | null;
    plainFormat: string | null;
    /** The token appended to every reply (id and text) and stop strings. */
    stop: { tokenId: number | null; tokenText: string | null; strings: string[] } | null;
    trainExamples: number | null;
    valExamples: number | null;
  };
  /** Every stored metric point of the run (a branch: its parent's up to the branch step first). */
  points: MetricPoint[];
  quality: CardQuality | null;
  /** The exported checkpoint (its manifest's numbers), or null for a card of the run without one. */
  checkpoint: { step: number; trainLoss: number | null; valLoss: number | null; extra: Record<string, number> | null; pinned: boolean } | null;
  /** Steps of the run's stored checkpoints. */
  storedSteps: number[];
  /** The forgetting probe's base-model measurement (run.probe), or null when the run had none. */
  probe: { samples: number; tokens: number; baseNll: number } | null;
  /** The base model on the held-out split, measured before the first step (run.baseline), or null when not measured. */
  baseline?: { of: string; valLoss: number; extra: Record<string, number> } | null;
  /** The TF.js backend the run trained on, when it was recorded. */
  backend: string | null;
  /** The recipe files (name → text) to reproduce the job elsewhere, or why there is none. */
  recipe: { files: Record<string, string> } | { unavailable: string };
  /** tabtune's own command line for the same job (CLI runs), when known. */
  command: string | null;
  /** The PNG beside the card (null: no loss curve, e.g. a run without steps). */
  lossCurve: string | null;
}

export type Block =
  | { kind: 'para'; text: string }
  | { kind: 'facts'; rows: [label: string, value: string][] }
  | { kind: 'table'; head: string[]; rows: string[][] }
  | { kind: 'code'; lang: string; text: string; title?: string }
  | { kind: 'image'; file: string; alt: string };

export interface Section {
  id: string;
  title: string;
  blocks: Block[];
}

export const NOT_MEASURED = 'not measured';
export const LOSS_CURVE_PNG = 'loss_curve.png';
export const CARD_FILE = 'README.md';

const notMeasured = (why: string) => `${NOT_MEASURED}: ${why}`;

// ---------------------------------------------------------------------------------------------------
// Numbers as the card prints them (the test reads them back with the same functions).

/** A loss or another real number: 4 significant digits. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-4) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

export function int(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

export function pct(share: number): string {
  return `${Number((share * 100).toFixed(1))}%`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function duration(s: number): string {
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function isoTime(ms: number | null): string {
  return ms === null ? notMeasured('no time recorded') : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------------
// What the card derives from the input.

type StepP = Extract<MetricPoint, { type: 'step' }>;
type EvalP = Extract<MetricPoint, { type: 'eval' }>;

export function stepPoints(input: Pick<CardInput, 'points'>): StepP[] {
  return input.points.filter((p): p is StepP => p.type === 'step').sort((a, b) => a.step - b.step);
}

export function evalPoints(input: Pick<CardInput, 'points'>): EvalP[] {
  return input.points.filter((p): p is EvalP => p.type === 'eval').sort((a, b) => a.step - b.step);
}

/** The method's name and its tags: LoRA / OFT / prompt tuning / full fine-tuning, SFT / DPO. */
export function methodOf(config: Record<string, unknown> | null): { name: string; tags: string[] } {
  const mode = typeof config?.mode === 'string' ? config.mode : null;
  const objective = typeof config?.objective === 'string' ? config.objective : 'sft';
  const modes: Record<string, [string, string]> = {
    lora: ['LoRA', 'lora'],
    oft: ['OFT', 'oft'],
    prompt: ['prompt tuning', 'prompt-tuning'],
    full: ['full fine-tuning', 'full-fine-tuning'],
  };
  const [modeName, modeTag] = mode && modes[mode] ? modes[mode] : [mode ?? 'unknown method', mode ?? 'unknown'];
  const objName = objective === 'dpo' ? 'DPO (direct preference optimization)' : objective === 'sft' ? 'SFT (supervised fine-tuning)' : objective;
  return { name: `${modeName}, ${objName}`, tags: [modeTag, objective] };
}

/** A PEFT adapter (everything but full fine-tuning) is loaded with PEFT. */
export function isAdapter(input: Pick<CardInput, 'config' | 'target'>): boolean {
  return input.target !== 'merged' && input.config?.mode !== 'full';
}

function flatten(v: unknown, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out[prefix] = v;
  return out;
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Settings that differ from the model's defaults: [setting, value, default]. Settings of another mode's group are left out. */
export function changedSettings(input: Pick<CardInput, 'config' | 'defaults'>): [string, string, string][] {
  if (!input.config || !input.defaults) return [];
  const c = flatten(input.config);
  const d = flatten(input.defaults);
  const mode = input.config.mode;
  const objective = input.config.objective;
  // Groups that only one mode or objective reads (their defaults are stored with every run).
  const group: Record<string, (m: unknown, o: unknown) => boolean> = { lora: (m) => m === 'lora', oft: (m) => m === 'oft', prompt: (m) => m === 'prompt' };
  const objectiveOnly: Record<string, string> = { dpoBeta: 'dpo', rpoAlpha: 'dpo' };
  const out: [string, string, string][] = [];
  for (const key of Object.keys(c).sort()) {
    const g = key.split('.')[0]!;
    if (group[g] && !group[g](mode, objective)) continue;
    if (objectiveOnly[key] && objectiveOnly[key] !== objective) continue;
    if (show(c[key]) !== show(d[key])) out.push([key, show(c[key]), key in d ? show(d[key]) : '(none)']);
  }
  return out;
}

/** Why this checkpoint: best, recommended, final, derived, a branch, or picked by hand. */
export function checkpointReasons(input: CardInput): string[] {
  const ck = input.checkpoint;
  if (!ck) return [];
  const q = input.quality;
  const why: string[] = [];
  if (q?.bestStep === ck.step) why.push(`the best checkpoint by ${q.criterion === 'exact_match' ? 'exact match' : 'validation loss'}`);
  if (q?.recommendedStep === ck.step) why.push(`the recommended checkpoint (best task metric within the forgetting budget of ${num(q.budgetPct)}%)`);
  if (q?.finalStep === ck.step) why.push('the last step of the run');
  if (input.run.derived) why.push('derived from another checkpoint (rewound or scaled along the path from the base model)');
  else if (input.run.parent) why.push(`a branch continued from step ${input.run.parent.step} of run ${input.run.parent.runId} (a rewind)`);
  if (!why.length) why.push('chosen by hand (neither the best, the recommended nor the last checkpoint of the run)');
  if (ck.pinned) why.push('pinned (retention keeps it)');
  return why;
}

// ---------------------------------------------------------------------------------------------------
// The sections.

function modelSection(input: CardInput): Section {
  const m = input.model;
  return {
    id: 'base-model',
    title: 'Base model',
    blocks: [
      {
        kind: 'facts',
        rows: [
          ['Name', m.name],
          ['base_model', m.baseModel],
          ['Architecture', m.arch ?? notMeasured('not recorded with the run')],
          ['Parameters', m.numParams !== null ? int(m.numParams) : notMeasured('not recorded with the run')],
          ['Loaded from', m.source ?? notMeasured('not recorded with the run')],
        ],
      },
    ],
  };
}

function dataSection(input: CardInput): Section {
  const d = input.data;
  const r = d.report;
  const rows: [string, string][] = [['File', d.name]];
  rows.push(['SHA-256', d.fingerprint ? d.fingerprint.replace(/^sha256:/, '') : notMeasured('no fingerprint recorded')]);
  if (!r) {
    rows.push(['Size, format, records', notMeasured(d.missing ?? 'the dataset report is not available')]);
  } else {
    rows.push(['Size', `${bytes(r.bytes)} (${int(r.bytes)} bytes)`]);
    rows.push(['Format', `${r.format}${r.detected ? ' (detected)' : ''}`]);
    rows.push(['Records', `${int(r.total)} read, ${int(r.records)} used, ${int(r.total - r.records)} skipped`]);
    const kinds = Object.entries(r.kinds).filter(([, n]) => n > 0).map(([k, n]) => `${int(n)} ${k}`);
    if (kinds.length) rows.push(['Kinds', kinds.join(', ')]);
    const split = r.split;
    rows.push([
      'Train / validation',
      split.source === 'file'
        ? `${int(split.train)} / ${int(split.val)} (validation file ${r.validation?.name ?? ''})`.replace(/ \)$/, ')')
        : split.source === 'split'
          ? `${int(split.train)} / ${int(split.val)} (${pct(split.valFraction)} held out, seed ${split.seed})`
          : `${int(split.train)} / 0 (${notMeasured('no held-out examples')})`,
    ]);
    if (r.tokens) rows.push(['Tokens per epoch', `${int(r.tokens.tokensPerEpoch)} (${int(r.tokens.trainedTokensPerEpoch)} trained on; longest sequence ${int(r.tokens.maxSeqLen)})`]);
  }
  if (d.trainExamples !== null) rows.push(['Examples trained on', `${int(d.trainExamples)} train, ${int(d.valExamples ?? 0)} validation`]);
  rows.push(['Prompt template', d.template ? (d.template === 'plain' && d.plainFormat ? `plain: ${JSON.stringify(d.plainFormat)}` : d.template === 'chat-template' ? "the base model's chat template" : d.template) : notMeasured('not recorded')]);
  const stop = d.stop;
  rows.push([
    'Token that ends replies',
    stop
      ? [stop.tokenId !== null ? `id ${stop.tokenId}${stop.tokenText !== null ? ` (${JSON.stringify(stop.tokenText)})` : ''}` : 'none', stop.strings.length ? `stop strings ${stop.strings.map((s) => JSON.stringify(s)).join(', ')}` : ''].filter(Boolean).join('; ') +
        (r?.stop?.reason ? ` — ${r.stop.reason}` : '')
      : notMeasured('not recorded'),
  ]);
  const blocks: Block[] = [{ kind: 'facts', rows }];
  if (r) {
    const codes = Object.entries(r.byCode ?? {}).filter(([, n]) => (n ?? 0) > 0);
    blocks.push(
      codes.length
        ? { kind: 'table', head: ['Problem the dataset doctor found', 'Count'], rows: codes.map(([c, n]) => [c, int(n ?? 0)]) }
        : { kind: 'para', text: `The dataset doctor found no problems (${r.errorCount} errors, ${r.warningCount} warnings).` },
    );
  }
  return { id: 'data', title: 'Data', blocks };
}

function methodSection(input: CardInput): Section {
  const c = input.config;
  const { name } = methodOf(c);
  const blocks: Block[] = [{ kind: 'para', text: `Method: ${name}.` }];
  if (!c) {
    blocks.push({ kind: 'para', text: notMeasured('the run has no tabtune configuration recorded') });
    return { id: 'method', title: 'Method', blocks };
  }
  const g = (k: string) => (c as Record<string, Record<string, unknown>>)[k] ?? {};
  const facts: [string, string][] = [];
  if (c.mode === 'lora') facts.push(['LoRA', `r ${show(g('lora').r)}, lora_alpha ${show(g('lora').lora_alpha)}, lora_dropout ${show(g('lora').lora_dropout)}, target_modules ${show(g('lora').target_modules)}`]);
  if (c.mode === 'oft') facts.push(['OFT', `oft_block_size ${show(g('oft').oft_block_size)}, module_dropout ${show(g('oft').module_dropout)}, coft ${show(g('oft').coft)}, target_modules ${show(g('oft').target_modules)}`]);
  if (c.mode === 'prompt') facts.push(['Prompt tuning', `num_virtual_tokens ${show(g('prompt').num_virtual_tokens)}, prompt_tuning_init ${show(g('prompt').prompt_tuning_init)}${g('prompt').prompt_tuning_init_text ? `, prompt_tuning_init_text ${JSON.stringify(g('prompt').prompt_tuning_init_text)}` : ''}`]);
  if (c.objective === 'dpo') facts.push(['DPO', `beta ${show(c.dpoBeta)}, RPO weight (SFT loss on the chosen replies) ${show(c.rpoAlpha)}`]);
  facts.push(['Optimizer', `AdamW, lr ${show(c.lr)}, ${show(c.schedule)} schedule, ${show(c.warmupSteps)} warmup steps, weight decay ${show(c.weightDecay)}, gradient clipping ${show(c.maxGradNorm)}`]);
  facts.push(['Batch', `${show(c.batchSize)} × ${show(c.gradAccum)} accumulation`]);
  facts.push(['Length', Number(c.steps) > 0 ? `${show(c.steps)} steps` : `${show(c.epochs)} epochs`]);
  facts.push(['Seed', show(c.seed)]);
  blocks.push({ kind: 'facts', rows: facts });
  const changed = changedSettings(input);
  blocks.push(
    changed.length
      ? { kind: 'table', head: ['Setting that differs from the defaults', 'This run', 'Default'], rows: changed }
      : { kind: 'para', text: input.defaults ? 'Every setting is at its default.' : notMeasured('the defaults for this model are not known, so the changed settings cannot be listed') },
  );
  blocks.push({ kind: 'code', lang: 'json', title: 'Every setting', text: JSON.stringify(c, null, 2) });
  return { id: 'method', title: 'Method', blocks };
}

function trainingSection(input: CardInput): Section {
  const steps = stepPoints(input);
  const evals = evalPoints(input);
  const last = steps.at(-1);
  const lastEval = evals.at(-1);
  const rows: [string, string][] = [];
  rows.push(['Steps', last ? `${int(last.step)}${input.quality ? ` (the run's last step: ${int(input.quality.finalStep)})` : ''}` : notMeasured('no training step recorded')]);
  rows.push(['Epochs', last ? num(last.epoch) : notMeasured('no training step recorded')]);
  const tokens = lastEval?.extra?.train_tokens;
  rows.push(['Tokens trained on', tokens !== undefined ? int(tokens) : steps.length ? `${int(steps.reduce((a, p) => a + p.tokens, 0))} (sum of the recorded steps)` : notMeasured('no training step recorded')]);
  const elapsed = lastEval?.extra?.elapsed_s;
  rows.push(['Training time', elapsed !== undefined ? `${duration(elapsed)} (at the last evaluation, step ${lastEval!.step})` : notMeasured('no evaluation recorded the elapsed time')]);
  rows.push(['Backend', input.backend ?? notMeasured('the backend is not recorded with browser runs')]);
  rows.push(['Final training loss', last ? `${num(last.loss)} (smoothed ${num(last.smoothLoss)}) at step ${last.step}` : notMeasured('no training step recorded')]);
  const best = evals.length ? evals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a)) : null;
  rows.push(['Best validation loss', best ? `${num(best.valLoss)} at step ${best.step}` : notMeasured('no evaluation on held-out examples')]);
  rows.push(['Final validation loss', lastEval ? `${num(lastEval.valLoss)} at step ${lastEval.step}` : notMeasured('no evaluation on held-out examples')]);
  const skipped = steps.filter((p) => p.skipped).length;
  if (skipped) rows.push(['Skipped steps', `${skipped} (non-finite loss or gradients)`]);
  const q = input.quality;
  rows.push(['Early stopping', q ? (q.stoppedEarly ? `stopped early: ${q.stopReason ?? 'no reason recorded'}` : 'did not stop early') : notMeasured('the run has no recorded decision (it has not ended)')]);
  rows.push(['Run', `${input.run.name} (${input.run.id}), ${input.run.status ?? 'status not recorded'}, started ${isoTime(input.run.createdAt)}, last updated ${isoTime(input.run.updatedAt)}`]);
  return { id: 'training', title: 'Training', blocks: [{ kind: 'facts', rows }] };
}

/** Evaluation metrics tabtune stores, in the order the card shows them, with how they read. */
const EVAL_METRICS: [key: string, label: string, kind: 'share' | 'num' | 'pct'][] = [
  ['gen_examples', 'Held-out answers generated', 'num'],
  ['exact_match', 'Exact match (held-out answers)', 'share'],
  ['token_f1', 'Token F1 (held-out answers)', 'share'],
  ['label_accuracy', 'Label accuracy', 'share'],
  ['memorised_share', 'Answers that are another training answer (memorised)', 'share'],
  ['probe_nll', 'General-text NLL (forgetting probe)', 'num'],
  ['probe_nll_delta_pct', 'General-text NLL change vs base', 'pct'],
  ['cka_min', 'Lowest layer CKA vs base', 'num'],
  ['cka_mean', 'Mean layer CKA vs base', 'num'],
  ['eval_rewards/accuracies', 'DPO reward accuracy (held-out pairs)', 'share'],
  ['eval_rewards/margins', 'DPO reward margin (held-out pairs)', 'num'],
];

/** Evaluation measurements the card reports elsewhere (Training) or that repeat another one. */
const EVAL_ELSEWHERE = new Set(['elapsed_s', 'train_tokens', 'probe_nll_delta', 'memorised_count']);

function metricValue(v: number | undefined, kind: 'share' | 'num' | 'pct'): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return kind === 'share' ? pct(v) : kind === 'pct' ? `${v > 0 ? '+' : ''}${v.toFixed(2)}%` : num(v);
}

function evaluationSection(input: CardInput): Section {
  const evals = evalPoints(input);
  const ck = input.checkpoint;
  const blocks: Block[] = [];
  if (!evals.length) {
    blocks.push({ kind: 'para', text: notMeasured('the run made no evaluation on held-out examples') });
    return { id: 'evaluation', title: 'Evaluation', blocks };
  }
  const first = evals[0]!;
  const at = ck ? (evals.find((e) => e.step === ck.step) ?? null) : evals.at(-1)!;
  const atLabel = ck ? `Checkpoint (step ${ck.step})` : `Last evaluation (step ${at!.step})`;
  const metric = (e: EvalP | null, key: string) => (e ? (key === 'val_loss' ? e.valLoss : e.extra?.[key]) : undefined);
  const rows: string[][] = [];
  const bl = input.baseline ?? null;
  rows.push(['Validation loss', bl ? num(bl.valLoss) : NOT_MEASURED, num(first.valLoss), at ? num(at.valLoss) : ck?.valLoss !== null && ck?.valLoss !== undefined ? num(ck.valLoss) : '–']);
  // The known measurements in their order, then any other one the evaluations stored (e.g. a new objective's), by name.
  const known = new Set(EVAL_METRICS.map(([k]) => k));
  const others = [...new Set(evals.flatMap((e) => Object.keys(e.extra ?? {})))].filter((k) => !known.has(k) && !EVAL_ELSEWHERE.has(k)).sort();
  for (const [key, label, kind] of [...EVAL_METRICS, ...others.map((k) => [k, k, 'num'] as const)]) {
    const vFirst = metric(first, key);
    const vAt = metric(at, key) ?? (ck && !at ? ck.extra?.[key] : undefined);
    if (vFirst === undefined && vAt === undefined) continue;
    const base =
      key === 'probe_nll' && input.probe ? num(input.probe.baseNll) : key === 'probe_nll_delta_pct' && input.probe ? '0%' : bl?.extra[key] !== undefined ? metricValue(bl.extra[key], kind) : NOT_MEASURED;
    rows.push([label, base, metricValue(vFirst, kind), metricValue(vAt, kind)]);
  }
  const fromStart = bl !== null && bl.of !== 'base model';
  blocks.push({ kind: 'table', head: ['Metric', fromStart ? 'Start' : 'Base model', `First evaluation (step ${first.step})`, atLabel], rows });
  blocks.push({
    kind: 'para',
    text: fromStart
      ? `Start column: the model this run started from (the base model with the adapter it continued: ${bl!.of}) measured on the same held-out examples before the first step; a metric it was not measured on says so.`
      : bl
      ? 'Base model column: the base model (adapter off) measured on the same held-out examples before the first step; a metric it was not measured on says so.'
      : `Base model column: ${input.probe ? 'this run measured the base model on the forgetting probe only' : 'the run did not measure the base model'} (runs made before the base model was measured on the held-out split), so the rest of the column is ${NOT_MEASURED}.`,
  });
  if (ck && !at) blocks.push({ kind: 'para', text: `No evaluation ran at step ${ck.step}: its column shows the checkpoint's own record (train loss ${num(ck.trainLoss)}).` });
  const measured = new Set(evals.flatMap((e) => Object.keys(e.extra ?? {})));
  const missing: string[] = [];
  if (!measured.has('exact_match')) missing.push(`generated held-out answers (exact match, token F1): ${notMeasured('genEvalExamples was 0 or no held-out record has an answer')}`);
  if (!input.probe) missing.push(`retained general skill: ${notMeasured('the run had no forgetting probe (probeSamples 0)')}`);
  else {
    const d = metric(at, 'probe_nll_delta_pct');
    const budget = input.quality?.budgetPct ?? (typeof input.config?.forgetBudgetPct === 'number' ? input.config.forgetBudgetPct : null);
    if (d !== undefined && Number.isFinite(d)) {
      missing.push(
        `Retained general skill: the general-text NLL (${input.probe.samples} base-model continuations of ${input.probe.tokens} tokens) changed by ${metricValue(d, 'pct')} from the base model's ${num(input.probe.baseNll)} nats${budget !== null ? `; the forgetting budget was ${num(budget)}% (${d <= budget ? 'within' : 'over'} it)` : ''}.`,
      );
    }
  }
  if (input.quality?.sentence) missing.push(`Recommendation: ${input.quality.sentence}`);
  for (const m of missing) blocks.push({ kind: 'para', text: m });
  return { id: 'evaluation', title: 'Evaluation', blocks };
}

function checkpointSection(input: CardInput): Section {
  const ck = input.checkpoint;
  if (!ck) return { id: 'checkpoint', title: 'This checkpoint', blocks: [{ kind: 'para', text: notMeasured('the card describes the run, not a stored checkpoint') }] };
  const q = input.quality;
  const rows: [string, string][] = [
    ['Step', String(ck.step)],
    ['Why this one', checkpointReasons(input).join('; ')],
    ['Training loss at this step', num(ck.trainLoss)],
    ['Validation loss at this step', ck.valLoss !== null ? num(ck.valLoss) : notMeasured('no evaluation at this step')],
    ['Best / recommended / last step', q ? `${q.bestStep ?? '–'} / ${q.recommendedStep ?? '–'} / ${q.finalStep}` : notMeasured('the run has no recorded decision')],
    ['Stored checkpoints', input.storedSteps.length ? input.storedSteps.join(', ') : notMeasured('none listed')],
  ];
  if (input.run.derived) rows.push(['Derivation', JSON.stringify(input.run.derived)]);
  return { id: 'checkpoint', title: 'This checkpoint', blocks: [{ kind: 'facts', rows }] };
}

function curveSection(input: CardInput): Section {
  const steps = stepPoints(input);
  const evals = evalPoints(input);
  if (!input.lossCurve || !steps.length) return { id: 'loss-curve', title: 'Loss curve', blocks: [{ kind: 'para', text: notMeasured('no training step recorded') }] };
  const alt = `Training loss over ${steps.length} steps (${num(steps[0]!.loss)} → ${num(steps.at(-1)!.loss)})${evals.length ? ` and validation loss at ${evals.length} evaluations (${num(evals[0]!.valLoss)} → ${num(evals.at(-1)!.valLoss)})` : ''}`;
  return {
    id: 'loss-curve',
    title: 'Loss curve',
    blocks: [
      { kind: 'image', file: input.lossCurve, alt },
      { kind: 'para', text: `${alt}. Blue: training loss per step; orange: validation loss at each evaluation.` },
    ],
  };
}

function loadSection(input: CardInput): Section {
  const base = input.model.baseModel;
  const blocks: Block[] = [];
  if (isAdapter(input)) {
    blocks.push({ kind: 'para', text: 'With tabtune (the folder holds adapter_config.json, adapter_model.safetensors and tabtune.json, which says where replies end):' });
    blocks.push({ kind: 'code', lang: 'bash', text: `npm run cli -- generate --model ${shellWord(base)} --adapter ./this-folder --prompt "…"` });
    blocks.push({ kind: 'para', text: 'With PEFT and transformers:' });
    blocks.push({
      kind: 'code',
      lang: 'python',
      text: [
        'from peft import AutoPeftModelForCausalLM',
        'from transformers import AutoTokenizer',
        '',
        'model = AutoPeftModelForCausalLM.from_pretrained("./this-folder")',
        `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(base)})`,
      ].join('\n'),
    });
  } else {
    blocks.push({ kind: 'para', text: 'With tabtune:' });
    blocks.push({ kind: 'code', lang: 'bash', text: 'npm run cli -- generate --model ./this-folder --prompt "…"' });
    blocks.push({ kind: 'para', text: 'With transformers (generation_config.json lists the run\'s stop token among its eos_token_id):' });
    blocks.push({
      kind: 'code',
      lang: 'python',
      text: ['from transformers import AutoModelForCausalLM, AutoTokenizer', '', 'model = AutoModelForCausalLM.from_pretrained("./this-folder")', 'tokenizer = AutoTokenizer.from_pretrained("./this-folder")'].join('\n'),
    });
  }
  const stop = input.data.stop;
  if (stop && stop.tokenId !== null) blocks.push({ kind: 'para', text: `Stop generating at token id ${stop.tokenId}${stop.tokenText !== null ? ` (${JSON.stringify(stop.tokenText)})` : ''}: every training reply ended with it.` });
  return { id: 'load', title: 'How to load it', blocks };
}

function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function reproduceSection(input: CardInput): Section {
  const blocks: Block[] = [];
  if (input.command) blocks.push({ kind: 'para', text: 'With tabtune:' }, { kind: 'code', lang: 'bash', text: input.command });
  if ('files' in input.recipe) {
    const names = Object.keys(input.recipe.files);
    blocks.push({ kind: 'para', text: `The same job for the Python tools (the recipe export holds ${names.join(', ')} and the training data):` });
    for (const n of names) blocks.push({ kind: 'code', lang: n.endsWith('.py') ? 'python' : n.endsWith('.yaml') ? 'yaml' : '', title: n, text: input.recipe.files[n]! });
  } else blocks.push({ kind: 'para', text: `Recipe for the Python tools: ${notMeasured(input.recipe.unavailable)}.` });
  if (input.config) blocks.push({ kind: 'para', text: 'The settings above (Method) with the same data file and seed reproduce the run in tabtune.' });
  return { id: 'reproduce', title: 'How to reproduce it', blocks };
}

function licenseSection(): Section {
  return {
    id: 'license',
    title: 'License',
    blocks: [{ kind: 'para', text: 'Not set: tabtune does not know the terms of the base model and the data. Add `license:` to the front matter (the base model\'s license and the data\'s terms decide it) before publishing.' }],
  };
}

/** The card's content, in order: the page renders these, modelCard() writes them as Markdown. */
export function cardSections(input: CardInput): Section[] {
  return [modelSection(input), dataSection(input), methodSection(input), trainingSection(input), evaluationSection(input), checkpointSection(input), curveSection(input), loadSection(input), reproduceSection(input), licenseSection()];
}

// ---------------------------------------------------------------------------------------------------
// Markdown.

/** A YAML double-quoted scalar (JSON strings are valid YAML 1.2; line breaks and quotes are escaped). */
function yamlStr(s: string): string {
  return JSON.stringify(s);
}

/** The card's front matter fields (what the YAML says), for the page and the test. */
export function frontMatter(input: CardInput): { base_model: string; library_name: string; pipeline_tag: string; tags: string[] } {
  const { tags } = methodOf(input.config);
  return {
    base_model: input.model.baseModel,
    library_name: isAdapter(input) ? 'peft' : 'transformers',
    pipeline_tag: 'text-generation',
    tags: ['tabtune', ...tags, ...(isAdapter(input) ? [] : ['merged'])],
  };
}

function frontMatterYaml(input: CardInput): string {
  const f = frontMatter(input);
  return [
    '---',
    `base_model: ${yamlStr(f.base_model)}`,
    `library_name: ${f.library_name}`,
    `pipeline_tag: ${f.pipeline_tag}`,
    'tags:',
    ...f.tags.map((t) => `  - ${yamlStr(t)}`),
    '# license: not set. tabtune does not know the base model\'s license or the data\'s terms: add it before publishing.',
    '---',
  ].join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function blockMarkdown(b: Block): string {
  switch (b.kind) {
    case 'para':
      return b.text;
    case 'facts':
      return ['| | |', '| --- | --- |', ...b.rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`)].join('\n');
    case 'table':
      return [`| ${b.head.map(cell).join(' | ')} |`, `| ${b.head.map(() => '---').join(' | ')} |`, ...b.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
    case 'code': {
      const fence = b.text.includes('```') ? '~~~~' : '```';
      const code = `${fence}${b.lang}\n${b.text.replace(/\n$/, '')}\n${fence}`;
      return b.title ? `<details><summary>${b.title}</summary>\n\n${code}\n\n</details>` : code;
    }
    case 'image':
      return `![${b.alt.replace(/[[\]]/g, '')}](${b.file})`;
  }
}

/** The run's model card: README.md with YAML front matter, in the Hugging Face convention. */
export function modelCard(input: CardInput): string {
  const { name } = methodOf(input.config);
  const what = input.config?.mode === 'full' ? 'every weight of the base model fine-tuned:' : input.target === 'merged' ? 'the base model with the adapter merged into its weights:' : 'an adapter for the base model';
  const head = [
    frontMatterYaml(input),
    '',
    `# ${input.run.name}`,
    '',
    `${what[0]!.toUpperCase()}${what.slice(1)} ${input.model.baseModel}, tuned with tabtune (${name})${input.checkpoint ? `: checkpoint step ${input.checkpoint.step} of run ${input.run.id}` : ''}. ` +
      'Every figure below comes from the run\'s own records; what the run did not measure says so.',
  ];
  const body = cardSections(input).map((s) => `## ${s.title}\n\n${s.blocks.map(blockMarkdown).join('\n\n')}`);
  return [...head, '', ...body.join('\n\n').split('\n'), ''].join('\n');
}
