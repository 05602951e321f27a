// Exports (the export request): a run's adapter as a PEFT folder, the base model with the adapter merged
// in, the run's metrics as CSV, or a recipe to train it again with the Python tools; zipped.
import { PLAIN_FORMAT } from '../data/encode';
import { exportMergedModel, readBaseFiles, TABTUNE_JSON, tabtuneJson } from '../io/export';
import { exportPeftAdapter } from '../io/peft';
import { recipeFiles, recipeUnavailable } from '../io/recipes';
import { zipFiles } from '../io/zip';
import { cardFiles } from '../report/index';
import { readDeltas } from '../lora/merge';
import { OftAdapter } from '../oft/adapter';
import { PROMPT_NO_MERGE, PromptTuningAdapter } from '../prompt/adapter';
import { recipeJob } from '../train/job';
import { metricsCsv } from '../train/metrics';
import type { ExportPayload, ExportResult } from '../protocol/messages';
import type { Adapters } from './adapters';
import { asyncReads, requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { fail } from './errors';
import { parseJob } from './jobs';
import { runCardInput } from './report';
import { dropKeptDecoderWeights } from '../model/fast-decode';

export interface ExportDeps {
  worker: Pick<WorkerContext, 'post' | 'store' | 'model' | 'serialModel'>;
  adapters: Adapters;
  datasets: DatasetRegistry;
}

/** A file-name stem from a run name (runs are named after their dataset file: its extension goes). */
function slug(s: string): string {
  return s.replace(/\.(jsonl|ndjson|json|csv|tsv|txt)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'run';
}

function zipResult(kind: ExportResult['kind'], filename: string, files: Map<string, Uint8Array>, runId: string, step: number | null): ExportResult {
  return { kind, filename, mimeType: 'application/zip', bytes: zipFiles(files), files: [...files.keys()], runId, step };
}

/** `id` >= 0: the merged model sends `progress` events for that request, tensor by tensor. */
export async function exportRun(deps: ExportDeps, p: ExportPayload, id = -1): Promise<ExportResult> {
  const { worker, adapters, datasets } = deps;
  const kind = p?.kind;
  if (kind === 'metrics-csv') {
    const runId = p.runId ?? adapters.current?.runId;
    if (!runId) throw fail('NO_ADAPTER', 'Which run? There is no active run.', 'Give a runId.');
    const store = await worker.store();
    const run = await store.runs.get(runId);
    if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    const filename = `${slug(run.name)}-metrics.csv`;
    return { kind, filename, mimeType: 'text/csv', bytes: new TextEncoder().encode(metricsCsv(await store.runs.readMetrics(runId))), files: [filename], runId, step: null };
  }
  if (kind !== 'peft' && kind !== 'merged' && kind !== 'recipe') throw fail('BAD_REQUEST', `Unknown export kind ${JSON.stringify(kind)}.`, 'Use peft, merged, metrics-csv or recipe.');
  return worker.serialModel(async () => {
    const ctx = requireModel(worker);
    if (kind === 'recipe') {
      const runId = p.runId ?? adapters.current?.runId;
      if (!runId) throw fail('NO_ADAPTER', 'Which run? There is no active run.', 'Give a runId.');
      const run = await (await worker.store()).runs.get(runId);
      const job = run && parseJob(run.config);
      if (!run || !job) throw fail('NOT_FOUND', `There is no browser run ${runId}.`);
      // The recipes describe supervised LoRA jobs on prompt/completion or chat data (src/io/recipes.ts).
      const refuse = (why: string) => fail('BAD_REQUEST', `Run "${run.name}": ${why}.`, job.train.mode === 'prompt' ? 'Export the PEFT adapter.' : 'Export the PEFT adapter or the merged model.');
      const early = recipeUnavailable(job.train, null);
      if (early) throw refuse(early);
      const data = await datasets.prepare(job.data.datasetId, { model: ctx.model, requestId: -1 }, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
      const why = recipeUnavailable(job.train, data.result.records);
      if (why) throw refuse(why);
      const files = recipeFiles(
        recipeJob(job.train, { baseModel: job.model.baseModel, seqLen: data.encoder.maxSeqLen, valSplit: job.data.valDatasetId ? 0 : (job.data.options.valFraction ?? 0.1), arch: job.model.arch === 'gpt2' ? 'gpt2' : 'llama', datasetFile: 'data.jsonl' }),
        data.result.records,
      );
      return zipResult(kind, `${slug(run.name)}-recipe.zip`, files, runId, null);
    }
    const a = await adapters.ensure(p.runId, p.step);
    const arch = ctx.model.lm.config.arch;
    let files: Map<string, Uint8Array>;
    const stop = a.job.data.options.stop;
    const meta = { stop_token_id: stop.stopTokenId, stop_strings: stop.stopStrings, plain_format: PLAIN_FORMAT, base_model: a.job.model.baseModel, run: a.runName, step: a.step };
    if (kind === 'peft') {
      await Promise.all(a.adapter.variables().map((v) => v.data())); // then dataSync reads the CPU copy
      files = exportPeftAdapter(a.adapter, { baseModel: a.job.model.baseModel, arch });
      files.set(TABTUNE_JSON, tabtuneJson(meta));
    } else if (a.adapter instanceof PromptTuningAdapter) {
      throw fail('BAD_REQUEST', `Run "${a.runName}" trained a prompt-tuning adapter. ${PROMPT_NO_MERGE}`);
    } else {
      const adapter = a.adapter;
      const was = { enabled: adapter.enabled, strength: adapter.strength };
      try {
        adapter.enabled = true;
        adapter.strength = 1;
        dropKeptDecoderWeights(); // merging copies the weights once more: not a third copy beside them
        const baseFiles = await readBaseFiles(ctx.source);
        // Merging reads every weight (model/weights.ts) and every update; on WebGPU a synchronous read
        // destroys the device in Chromium after a few dozen (see Trainer.trainStepAsync), so there the
        // weights are downloaded and the updates read asynchronously first.
        let deltas: Map<string, Float32Array> | undefined;
        if (asyncReads()) {
          await Promise.all(ctx.model.lm.weightTensors().map((t) => t.data()));
          deltas = await readDeltas(adapter, 1);
        }
        files = exportMergedModel({ lm: ctx.model.lm, baseFiles }, adapter, {
          deltas,
          tabtune: meta, // the run's stop token in generation_config.json, its record in tabtune.json
          onProgress:
            id >= 0
              ? (pr) => worker.post({ kind: 'progress', id, payload: { file: `merged: ${pr.stage}`, loaded: pr.done, total: pr.total, fraction: pr.done / pr.total } })
              : undefined,
        });
      } finally {
        Object.assign(adapter, was);
      }
    }
    // The run report: README.md (the model card) and loss_curve.png, from the run's records (./report.ts).
    for (const [name, bytes] of cardFiles(await runCardInput({ worker, datasets }, a.runId, a.step, kind === 'peft' ? 'adapter' : 'merged'))) files.set(name, bytes);
    const what = kind === 'peft' ? (a.adapter instanceof OftAdapter ? 'oft' : a.adapter instanceof PromptTuningAdapter ? 'prompt' : 'lora') : 'merged';
    return zipResult(kind, `${slug(a.runName)}-step${a.step}-${what}.zip`, files, a.runId, a.step);
  });
}
