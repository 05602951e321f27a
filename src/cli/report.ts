// The CLI's run report: `train` writes README.md (the model card), loss_curve.png and report.json (the
// card's input, so `export-merged` can write the same card for the merged folder) into --out, from what the
// run stored there: metrics.jsonl, the checkpoint manifests and run record in checkpoints/, probe.json, the
// dataset doctor's report and job.json's settings.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { InspectResult } from '../data/doctor';
import type { LanguageModel } from '../model/load';
import { writeFolder } from '../node/hf-write';
import { fingerprintBytes, type TabtuneStore } from '../storage/index';
import { baselineSummary, cardCheckpoint, cardFiles, probeSummary, type CardInput, type CardQuality } from '../report/index';
import { cardRecipe } from '../report/recipe';
import { defaultTrainConfig, type TrainConfig } from '../train/config';
import type { MetricPoint } from '../train/metrics';
import { PLAIN_FORMAT } from '../data/encode';

export const REPORT_JSON = 'report.json';

/** A metrics.jsonl line (metricRow's snake_case) read back as a stored metric point; null for other lines. */
export function pointFromRow(row: Record<string, unknown>): MetricPoint | null {
  if (typeof row.step !== 'number') return null;
  const fixed = new Set(['step', 'epoch', 'loss', 'smooth_loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_sec', 'val_loss', 'val_ppl', 'skipped', 'eta_s', 'event']);
  const extra: Record<string, number> = {};
  for (const [k, v] of Object.entries(row)) if (!fixed.has(k) && typeof v === 'number') extra[k] = v;
  const more = Object.keys(extra).length ? { extra } : {};
  if (typeof row.val_loss === 'number') return { type: 'eval', step: row.step, valLoss: row.val_loss, valPpl: typeof row.val_ppl === 'number' ? row.val_ppl : Math.exp(row.val_loss), tokens: 0, ...more };
  if (typeof row.loss === 'number') {
    const n = (k: string) => (typeof row[k] === 'number' ? (row[k] as number) : NaN);
    return { type: 'step', step: row.step, epoch: n('epoch'), loss: row.loss, smoothLoss: n('smooth_loss'), lr: n('lr'), gradNorm: n('grad_norm'), tokens: n('tokens'), tokensPerSec: n('tokens_per_sec'), ...(typeof row.skipped === 'string' ? { skipped: row.skipped } : {}), ...more };
  }
  return null;
}

export async function readMetricsJsonl(path: string): Promise<MetricPoint[]> {
  if (!existsSync(path)) return [];
  const out: MetricPoint[] = [];
  for (const line of (await readFile(path, 'utf8')).split('\n')) {
    if (!line.trim()) continue;
    const p = pointFromRow(JSON.parse(line) as Record<string, unknown>);
    if (p) out.push(p);
  }
  return out;
}

export interface CliCardInput {
  out: string;
  /** job.json: the model and data files and the split. */
  job: { model: string; data: string; val: string | null; valSplit: number };
  model: LanguageModel;
  inspected: Pick<InspectResult, 'report' | 'encoder' | 'records' | 'train' | 'val'>;
  config: TrainConfig;
  /** The run's decision (decideRun). */
  decision: CardQuality;
  store: TabtuneStore;
  runId: string;
  backend: string;
}

/** The card's input for the adapter (or full model) that `train` wrote into --out: its last step. */
export async function cliCardInput(o: CliCardInput): Promise<CardInput> {
  const arch = o.model.info.arch;
  const checkpoints = await o.store.checkpoints.list(o.runId, { gc: false });
  const last = checkpoints.reduce<(typeof checkpoints)[number] | null>((a, c) => (!a || c.step > a.step ? c : a), null);
  const run = await o.store.runs.get(o.runId);
  const probePath = join(o.out, 'probe.json');
  const probe = existsSync(probePath) ? probeSummary(JSON.parse(await readFile(probePath, 'utf8'))) : null;
  const baselinePath = join(o.out, 'baseline.json');
  const baseline = existsSync(baselinePath) ? baselineSummary(JSON.parse(await readFile(baselinePath, 'utf8'))) : null;
  const enc = o.inspected.encoder;
  const stopId = enc?.stop.stopTokenId ?? null;
  let recipe: CardInput['recipe'];
  try {
    recipe = cardRecipe(o.config, { baseModel: o.job.model, seqLen: enc?.maxSeqLen ?? o.model.info.contextLength, valSplit: o.job.val ? 0 : o.job.valSplit, arch: arch === 'gpt2' ? 'gpt2' : 'llama' }, o.inspected.records);
  } catch (e) {
    recipe = { unavailable: (e as Error).message };
  }
  return {
    version: 1,
    target: o.config.mode === 'full' ? 'merged' : 'adapter',
    run: { id: o.runId, name: basename(o.out), createdAt: run?.createdAt ?? null, updatedAt: run?.updatedAt ?? null, status: 'finished', parent: null, derived: null },
    model: { name: o.model.name, baseModel: o.job.model, source: o.job.model, arch, numParams: o.model.info.numParams },
    config: o.config as unknown as Record<string, unknown>,
    defaults: defaultTrainConfig(arch) as unknown as Record<string, unknown>,
    data: {
      name: basename(o.job.data),
      fingerprint: await fingerprintBytes(new Uint8Array(await readFile(o.job.data))),
      report: o.inspected.report,
      missing: null,
      template: o.inspected.report.tokens ? (o.inspected.report.tokens.format['chat-template'] ? 'chat-template' : 'plain') : null,
      plainFormat: PLAIN_FORMAT,
      stop: enc ? { tokenId: stopId, tokenText: stopId !== null ? o.model.tokenizer.decode([stopId]) : null, strings: enc.stop.stopStrings } : null,
      trainExamples: o.inspected.train.length,
      valExamples: o.inspected.val.length,
    },
    points: await readMetricsJsonl(join(o.out, 'metrics.jsonl')),
    quality: o.decision,
    checkpoint: cardCheckpoint(last),
    storedSteps: checkpoints.map((c) => c.step).sort((a, b) => a - b),
    probe,
    baseline,
    backend: o.backend,
    recipe,
    command: null,
    lossCurve: null,
  };
}

/** Writes README.md, loss_curve.png and report.json into --out (called once `train` has written the adapter). */
export async function writeRunCard(o: CliCardInput): Promise<string[]> {
  const input = await cliCardInput(o);
  const files = cardFiles(input);
  await writeFolder(o.out, files);
  await writeFile(join(o.out, REPORT_JSON), JSON.stringify(input));
  return [...files.keys(), REPORT_JSON].map((f) => join(o.out, f));
}

/**
 * The card of a merged folder made from an adapter folder: the run's own card input (report.json, written by
 * `train`) for the merged target, or, for an adapter tabtune did not train, a card that says what is not known.
 */
export async function mergedCardInput(adapterDir: string, model: LanguageModel, baseModel: string): Promise<CardInput> {
  const path = join(adapterDir, REPORT_JSON);
  if (existsSync(path)) return { ...(JSON.parse(await readFile(path, 'utf8')) as CardInput), target: 'merged' };
  const why = `${adapterDir} has no ${REPORT_JSON} (the adapter was not trained by tabtune train)`;
  return {
    version: 1,
    target: 'merged',
    run: { id: basename(adapterDir), name: basename(adapterDir), createdAt: null, updatedAt: null, status: null, parent: null, derived: null },
    model: { name: model.name, baseModel, source: baseModel, arch: model.info.arch, numParams: model.info.numParams },
    config: null,
    defaults: null,
    data: { name: 'not recorded', fingerprint: null, report: null, missing: why, template: null, plainFormat: null, stop: null, trainExamples: null, valExamples: null },
    points: [],
    quality: null,
    checkpoint: null,
    storedSteps: [],
    probe: null,
    backend: null,
    recipe: { unavailable: why },
    command: null,
    lossCurve: null,
  };
}
