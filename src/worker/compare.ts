// Base vs tuned on a run's held-out records (compare-heldout): the same prompts generated and scored
// with the adapter switched off and on (src/train/job.ts compareBaseTuned), inside the model queue.
import { compareBaseTuned } from '../train/job';
import { perplexityBaseTuned } from '../train/text';
import type { ComparePayload, CompareResult } from '../protocol/messages';
import type { Adapters } from './adapters';
import { requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { fail } from './errors';

export interface CompareDeps {
  worker: Pick<WorkerContext, 'post' | 'model' | 'serialModel'>;
  adapters: Adapters;
  datasets: DatasetRegistry;
}

/** `signal` (the worker's `cancel` for this request) stops it between two batches of examples: error CANCELLED. */
export function compareHeldOut(deps: CompareDeps, p: ComparePayload, id: number, signal?: AbortSignal): Promise<CompareResult> {
  const { worker, adapters, datasets } = deps;
  const stopIfCancelled = () => {
    if (signal?.aborted) throw fail('CANCELLED', 'The held-out comparison was cancelled.');
  };
  return worker.serialModel(async () => {
    stopIfCancelled();
    const t0 = performance.now();
    const model = requireModel(worker).model;
    const a = await adapters.ensure(p?.runId, p?.step);
    const data = await datasets.prepare(a.job.data.datasetId, { model, requestId: id }, { frozen: a.job.data.options, valDatasetId: a.job.data.valDatasetId });
    stopIfCancelled();
    let records = data.result.val;
    if (p?.maxExamples !== undefined) records = records.slice(0, Math.max(0, Math.floor(p.maxExamples)));
    if (!records.length) throw fail('BAD_DATASET', 'The run has no held-out records to compare on.', 'Train with a validation split (valFraction > 0) or a validation file.');
    let pass = 0;
    const { base, tuned } = await compareBaseTuned(model, a.adapter, data.encoder, records, {
      maxNewTokens: p?.maxNewTokens,
      signal,
      onProgress: (done, total) => {
        const loaded = done + pass * total;
        worker.post({ kind: 'progress', id, payload: { file: 'held-out', loaded, total: 2 * total, fraction: loaded / (2 * total) } });
        if (done === total) pass = 1;
      },
    });
    // heldOutEval stops between batches when the signal fires: its rows are then partial.
    stopIfCancelled();
    // Plain text: the held-out perplexity of both, on all the held-out windows (the rows continue paragraph openings).
    const ppl = records.some((r) => r.kind === 'text') ? await perplexityBaseTuned(model.lm, a.adapter, data.val) : null;
    const rows = base.rows.map((b, i) => {
      const t = tuned.rows[i]!;
      return {
        line: b.line,
        prompt: b.prompt,
        expected: b.expected,
        base: b.output,
        tuned: t.output,
        baseExact: b.exact,
        tunedExact: t.exact,
        baseOverlap: b.overlap,
        tunedOverlap: t.overlap,
        baseLoss: b.loss,
        tunedLoss: t.loss,
      };
    });
    return {
      runId: a.runId,
      step: a.step,
      rows,
      totals: {
        n: rows.length,
        base: { exact: base.exact, overlap: base.overlap, loss: base.loss },
        tuned: { exact: tuned.exact, overlap: tuned.overlap, loss: tuned.loss },
        ...(ppl ? { ppl } : {}),
      },
      ms: performance.now() - t0,
    };
  });
}
