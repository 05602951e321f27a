// A run's stored job (RunRecord.config of runs trained in the browser): made from the loaded model, a
// run configuration and a prepared dataset; read back from the store; checked against the loaded model
// and the data before a run resumes or its adapter is attached.
import type { DataRecord } from '../data/types';
import type { RunRecord, TabtuneStore } from '../storage/index';
import type { TrainConfig } from '../train/config';
import type { RunJob } from '../protocol/messages';
import type { ModelContext } from './context';
import type { PreparedData } from './datasets';
import { fail } from './errors';

export function parseJob(config: unknown): RunJob | null {
  const j = config as Partial<RunJob> | null;
  return j && typeof j === 'object' && j.kind === 'tabtune-run' && j.version === 1 && j.train && j.data && j.model ? (j as RunJob) : null;
}

function baseModelName(ctx: ModelContext): string {
  if (ctx.location.kind === 'hub') return ctx.location.id;
  return ctx.model.name;
}

export function makeJob(ctx: ModelContext, config: TrainConfig, data: PreparedData): RunJob {
  const info = ctx.model.info;
  return {
    kind: 'tabtune-run',
    version: 1,
    train: config,
    data: { datasetId: data.datasetId, valDatasetId: data.valDatasetId, name: data.name, requested: data.requested, options: data.frozen, trainExamples: data.train.length, valExamples: data.val.length },
    model: { name: ctx.model.name, label: ctx.source.label, arch: info.arch, numParams: info.numParams, vocabSize: info.vocabSize, baseModel: baseModelName(ctx) },
  };
}

/** A branch starts with its parent's metric points up to the step it continues from (its charts show the whole path). */
export async function copyParentMetrics(store: TabtuneStore, parentId: string, branchId: string, upTo: number): Promise<void> {
  const points = (await store.runs.readMetrics(parentId)).filter((m) => typeof (m as { step?: unknown })?.step === 'number' && (m as { step: number }).step <= upTo);
  if (points.length) await store.runs.appendMetrics(branchId, points);
}

/** MODEL_MISMATCH unless the run was trained on the loaded model. */
export function checkModel(job: RunJob, ctx: ModelContext, run: Pick<RunRecord, 'name'>): void {
  const info = ctx.model.info;
  if (job.model.arch !== info.arch || job.model.numParams !== info.numParams || job.model.vocabSize !== info.vocabSize) {
    throw fail(
      'MODEL_MISMATCH',
      `Run "${run.name}" was trained on ${job.model.name} (${job.model.numParams.toLocaleString('en-US')} parameters), not on the loaded ${ctx.model.name}.`,
      `Load ${job.model.name} (${job.model.label}) first.`,
    );
  }
}

/** BAD_DATASET unless `data` is the file and the split the run was trained on (a resume must see the same data). */
export function checkData(job: RunJob, run: RunRecord, data: PreparedData): void {
  const fp = run.dataset?.fingerprint;
  if (fp?.startsWith('sha256:') && data.fingerprint.startsWith('sha256:') && fp !== data.fingerprint) {
    throw fail('BAD_DATASET', `This is not the file run "${run.name}" was trained on (${run.dataset?.name}).`, 'Add the same file again to resume, or start a new run.');
  }
  // SFT counts encoded examples, DPO preference pairs (a pair the doctor kept always encodes).
  const dpo = job.train.objective === 'dpo';
  const pairs = (rs: readonly DataRecord[]) => rs.filter((r) => r.kind === 'preference').length;
  const train = dpo ? pairs(data.result.train) : data.train.length;
  const val = dpo ? pairs(data.result.val) : data.val.length;
  if (train !== job.data.trainExamples || val !== job.data.valExamples) {
    throw fail(
      'BAD_DATASET',
      `The dataset now gives ${train} training / ${val} validation ${dpo ? 'preference pairs' : 'examples'}, but run "${run.name}" had ${job.data.trainExamples} / ${job.data.valExamples}.`,
      'A resumed run must see exactly the same data: add the original file again, or start a new run.',
    );
  }
}
