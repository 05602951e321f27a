// The requests the studio added to the worker: rename-run, pin-checkpoint, run-metrics, and
// inspect-data from a dataset already stored (a run's, after a reload).
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl'), 'utf8');

describe('studio requests in the worker (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    const backend = freshIdb();
    w = connectInProcess({ store: () => new TabtuneStore(backend) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
  });
  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('renames a run, pins a checkpoint, reads the stored metrics, and inspects the stored dataset again', async () => {
    const client = w.client;
    const first = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'planted.jsonl' } });
    expect(first.stored).toBe(true);
    const out = await client.request('train', { datasetId: first.datasetId, name: 'r', config: { steps: 4, batchSize: 2, saveEvery: 2, evalEvery: 2, seed: 1, warmupSteps: 1 } });

    const renamed = await client.request('rename-run', { runId: out.runId, name: '  my run  ' });
    expect(renamed.run.name).toBe('my run');
    expect((await client.request('list-runs', {})).runs.find((r) => r.id === out.runId)?.name).toBe('my run');
    await expect(client.request('rename-run', { runId: out.runId, name: ' ' })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.request('rename-run', { runId: 'nope', name: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const pinned = await client.request('pin-checkpoint', { runId: out.runId, step: 2, pinned: true });
    expect(pinned.checkpoint).toMatchObject({ step: 2, pinned: true });
    const unpinned = await client.request('pin-checkpoint', { runId: out.runId, step: 2, pinned: false });
    expect(unpinned.checkpoint.pinned).toBe(false);

    const { points } = await client.request('run-metrics', { runId: out.runId });
    expect(points.filter((p) => p.type === 'step').map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(points.filter((p) => p.type === 'eval').map((p) => p.step)).toEqual([2, 4]);

    const again = await client.request('inspect-data', { source: { kind: 'stored', datasetId: first.datasetId } });
    expect(again.datasetId).toBe(first.datasetId);
    expect(again.report).toMatchObject({ name: 'planted.jsonl', total: 41, records: 40, errorCount: 1 });
    await expect(client.request('inspect-data', { source: { kind: 'stored', datasetId: 'gone' } })).rejects.toMatchObject({ code: 'BAD_DATASET' });
  });

  it("a run's separate validation file is stored with it and comes back as a stored source", async () => {
    const client = w.client;
    const lines = DATA.split('\n').filter((l) => l.startsWith('{"prompt"'));
    const val = lines.slice(0, 5).join('\n') + '\n';
    const first = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'planted.jsonl' }, validation: { kind: 'text', text: val, name: 'held.jsonl' } });
    expect(first.report.split).toMatchObject({ source: 'file', val: 5 });
    expect(first.report.validation).toMatchObject({ name: 'held.jsonl', records: 5, overlap: 5 });
    const out = await client.request('train', { datasetId: first.datasetId, name: 'v', config: { steps: 2, batchSize: 2, saveEvery: 2, evalEvery: 2, seed: 1, warmupSteps: 1 } });
    const job = (await client.request('list-runs', {})).runs.find((r) => r.id === out.runId)!.job!;
    expect(job.data.valDatasetId).toEqual(expect.any(String));
    const again = await client.request('inspect-data', { source: { kind: 'stored', datasetId: job.data.datasetId }, validation: { kind: 'stored', datasetId: job.data.valDatasetId! } });
    expect(again.report.split).toMatchObject({ source: 'file', val: 5 });
    expect(again.report.validation).toMatchObject({ name: 'held.jsonl', records: 5 });
  });
});
