// Test helper (Node): protocol values for the page's tests (a model, a run, its checkpoints, a comparison).
import type { CheckpointInfo, CompareResult, ModelSummary, RunJob, RunSummary } from '../protocol/messages';
import { FakeWorker } from './fake-worker';

export const MODEL: ModelSummary = {
  name: 'tabtune-tiny',
  label: 'http://localhost/models/tabtune-tiny/',
  loadMs: 120,
  arch: 'llama',
  numParams: 447_000,
  vocabSize: 512,
  contextLength: 256,
  hiddenSize: 64,
  layers: 4,
  storedDtype: 'float32',
  training: { modes: ['lora'] },
};

export function checkpoint(runId: string, step: number, extra: Partial<CheckpointInfo> = {}): CheckpointInfo {
  return { runId, step, createdAt: 1_700_000_000_000 + step, sizeBytes: 4096, chunkCount: 1, trainLoss: 1 / step, valLoss: 2 / step, extra: null, pinned: false, isBest: false, isLatest: false, ...extra };
}

export function run(id: string, opts: { name?: string; active?: boolean; checkpoints?: CheckpointInfo[]; model?: Partial<RunJob['model']>; stopStrings?: string[]; template?: 'auto' | 'plain' | 'chat-template'; job?: boolean } = {}): RunSummary {
  const cks = opts.checkpoints ?? [];
  const job = {
    kind: 'tabtune-run',
    version: 1,
    train: {},
    data: { datasetId: 'd1', valDatasetId: null, name: 'numbers', requested: {}, options: { template: opts.template ?? 'auto', stop: { stopTokenId: 1, stopStrings: opts.stopStrings ?? [] } }, trainExamples: 36, valExamples: 4 },
    model: { name: MODEL.name, label: MODEL.label, arch: MODEL.arch, numParams: MODEL.numParams, vocabSize: MODEL.vocabSize, baseModel: MODEL.name, ...opts.model },
  } as unknown as RunJob;
  return runSummary(id, {
    name: opts.name ?? id,
    active: opts.active ?? false,
    latestCheckpoint: cks.at(-1) ?? null,
    checkpointCount: cks.length,
    job: opts.job === false ? null : job,
  });
}

/** A stored run as list-runs reports it: finished, no job, no checkpoints, unless `over` says otherwise. */
export function runSummary(id: string, over: Partial<RunSummary> = {}): RunSummary {
  return {
    id,
    name: id,
    createdAt: 0,
    updatedAt: 0,
    config: null,
    dataset: null,
    status: 'finished',
    error: null,
    heartbeatAt: null,
    bestValLoss: null,
    bestValStep: null,
    metricsCount: 0,
    metricsPageSize: 100,
    parentRunId: null,
    parentCheckpointStep: null,
    active: false,
    latestCheckpoint: null,
    checkpointCount: 0,
    job: null,
    ...over,
  };
}

export const COMPARE_RESULT: CompareResult = {
  runId: 'r1',
  step: 6,
  rows: [
    { line: 3, prompt: 'Write as digits: forty two', expected: '42', base: 'Once upon a time', tuned: '42', baseExact: false, tunedExact: true, baseOverlap: 0, tunedOverlap: 1, baseLoss: 4.21, tunedLoss: 0.35 },
    { line: 9, prompt: 'Write as digits: seven', expected: '7', base: '<b>bold</b>', tuned: '7 7', baseExact: false, tunedExact: false, baseOverlap: 0, tunedOverlap: 0.67, baseLoss: null, tunedLoss: null },
  ],
  totals: { n: 2, base: { exact: 0.03, overlap: 0.1, loss: 4.21 }, tuned: { exact: 0.94, overlap: 0.835, loss: 0.35 } },
  ms: 1234,
};

/** A fake worker that knows the given runs (list-runs / list-checkpoints) and loads their adapters. */
export function workerWithRuns(runs: RunSummary[], checkpoints: Record<string, CheckpointInfo[]>): FakeWorker {
  const w = new FakeWorker();
  w.on('list-runs', () => ({ runs }));
  w.on('list-checkpoints', (p) => ({ checkpoints: checkpoints[p.runId] ?? [] }));
  w.on('load-adapter', (p) => {
    const r = runs.find((x) => x.id === p.runId)!;
    const cks = checkpoints[r.id] ?? [];
    const step = p.step ?? cks.at(-1)?.step ?? 0;
    return { adapter: { runId: r.id, runName: r.name, step, params: 1000, training: r.active } };
  });
  return w;
}
