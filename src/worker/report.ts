// The run report in the worker: a stored run's (or checkpoint's) card input, read from the store — the run
// record (its job, quality decisions, probe, parent and derivation), its metric points, the checkpoint
// manifests, the stored dataset (fingerprint) and the dataset doctor's report of it (read again with the
// run's frozen options when the run's model is loaded). The `run-report` request answers it; the PEFT and
// merged exports put the card (README.md, loss_curve.png) in their zips.
import { PLAIN_FORMAT } from '../data/encode';
import { baselineSummary, cardCheckpoint, cardPoints, probeSummary, type CardInput, type CardTarget } from '../report/index';
import { cardRecipe } from '../report/recipe';
import { defaultTrainConfig } from '../train/config';
import type { RunReportPayload } from '../protocol/messages';
import { requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { fail } from './errors';
import { parseJob } from './jobs';

export interface ReportDeps {
  worker: Pick<WorkerContext, 'store' | 'model'>;
  datasets: DatasetRegistry;
}

/** The card input of `runId` at checkpoint `step` (default: its newest), for an export of kind `target`. */
export async function runCardInput(deps: ReportDeps, runId: string, step: number | undefined, target: CardTarget): Promise<CardInput> {
  const store = await deps.worker.store();
  const run = await store.runs.get(runId);
  if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`);
  const job = parseJob(run.config);
  const checkpoints = (await store.checkpoints.list(runId, { gc: false })).sort((a, b) => a.step - b.step);
  const ck = step === undefined ? (checkpoints.at(-1) ?? null) : (checkpoints.find((c) => c.step === step) ?? null);
  if (step !== undefined && !ck) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${step}.`);
  const points = cardPoints(await store.runs.readMetrics(runId));

  const model = job ? job.model : null;
  const ctx = deps.worker.model();
  const sameModel = !!(ctx && model && ctx.model.info.numParams === model.numParams && ctx.model.info.arch === model.arch);
  let report: CardInput['data']['report'] = null;
  let missing: string | null = null;
  let recipe: CardInput['recipe'] = { unavailable: 'the dataset report is not available (see Data)' };
  let stopText: string | null = null;
  const stored = job ? await store.datasets.get(job.data.datasetId) : null;
  if (!job) missing = 'the run was not made in this browser, so its dataset is not recorded';
  else if (!sameModel) missing = `the dataset doctor's report is read again with the run's model: load ${model!.name} to include it`;
  else {
    try {
      const data = await deps.datasets.prepare(job.data.datasetId, { model: requireModel(deps.worker).model, requestId: -1 }, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
      report = data.result.report;
      try {
        recipe = cardRecipe(job.train, { baseModel: job.model.baseModel, seqLen: data.encoder.maxSeqLen, valSplit: job.data.valDatasetId ? 0 : (job.data.options.valFraction ?? 0.1), arch: job.model.arch === 'gpt2' ? 'gpt2' : 'llama' }, data.result.records);
      } catch (e) {
        recipe = { unavailable: (e as Error).message };
      }
    } catch (e) {
      missing = `the stored dataset could not be read again (${(e as Error).message})`;
    }
  }
  const stopId = job?.data.options.stop.stopTokenId ?? null;
  if (stopId !== null && sameModel) stopText = ctx!.model.tokenizer.decode([stopId]);
  const q = run.quality ?? null;
  return {
    version: 1,
    target,
    run: {
      id: run.id,
      name: run.name,
      createdAt: run.createdAt,
      updatedAt: run.updatedAt,
      status: run.status,
      parent: run.parentRunId && run.parentCheckpointStep !== null ? { runId: run.parentRunId, step: run.parentCheckpointStep } : null,
      derived: run.recipe ?? null,
    },
    model: model
      ? { name: model.name, baseModel: model.baseModel, source: model.label, arch: model.arch, numParams: model.numParams }
      : { name: 'not recorded', baseModel: ctx?.model.name ?? 'unknown', source: null, arch: null, numParams: null },
    config: job ? (job.train as unknown as Record<string, unknown>) : null,
    defaults: job ? (defaultTrainConfig(job.model.arch) as unknown as Record<string, unknown>) : null,
    data: {
      name: job?.data.name ?? run.dataset?.name ?? 'not recorded',
      fingerprint: stored?.fingerprint ?? run.dataset?.fingerprint ?? null,
      report,
      missing,
      template: report?.tokens ? (report.tokens.format['chat-template'] ? 'chat-template' : 'plain') : job ? (job.data.options.template ?? 'auto') : null,
      plainFormat: job ? PLAIN_FORMAT : null,
      stop: job ? { tokenId: stopId, tokenText: stopText, strings: job.data.options.stop.stopStrings } : null,
      trainExamples: job?.data.trainExamples ?? null,
      valExamples: job?.data.valExamples ?? null,
    },
    points,
    quality: q ? { criterion: q.criterion, bestStep: q.bestStep, recommendedStep: q.recommendedStep, finalStep: q.finalStep, stoppedEarly: q.stoppedEarly, stopReason: q.stopReason, sentence: q.sentence, budgetPct: q.budgetPct } : null,
    checkpoint: cardCheckpoint(ck),
    storedSteps: checkpoints.map((c) => c.step),
    probe: probeSummary(run.probe),
    baseline: baselineSummary(run.baseline),
    backend: job?.backend ?? null,
    recipe,
    command: null,
    lossCurve: null,
  };
}

/** The `run-report` request: the selected run's (or checkpoint's) card input, for the page's Report view. */
export async function runReportRequest(deps: ReportDeps, p: RunReportPayload): Promise<{ input: CardInput }> {
  if (!p || typeof p.runId !== 'string') throw fail('BAD_REQUEST', 'run-report needs a runId.');
  return { input: await runCardInput(deps, p.runId, p.step, 'card') };
}
