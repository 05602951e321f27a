// Export's actions against a scripted worker: which export they ask for (run, step), the files they
// hand to the page, and the errors the `export` slice keeps.
import { describe, expect, it } from 'vitest';
import type { ExportPayload, ExportResult, ModelSummary } from '../protocol/messages';
import { describeExportStage, exportBlocker, type ExportProgress } from '../store/export';
import type { Selection } from '../store/run-context';
import { WorkerFailure, tick, type FakeWorker } from '../testing/fake-worker';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { testPage } from '../testing/page';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true })] };

function exportsAnything(worker: FakeWorker) {
  worker.on('export', (p: ExportPayload): ExportResult => {
    const name = { peft: 'numbers-step6-lora.zip', merged: 'numbers-step6-merged.zip', 'metrics-csv': 'numbers-metrics.csv', recipe: 'numbers-recipe.zip' }[p.kind];
    const files = p.kind === 'peft' ? ['adapter_config.json', 'adapter_model.safetensors', 'tabtune.json'] : [name];
    return { kind: p.kind, filename: name, mimeType: p.kind === 'metrics-csv' ? 'text/csv' : 'application/zip', bytes: new Uint8Array(2048), files, runId: p.runId!, step: p.kind === 'peft' || p.kind === 'merged' ? (p.step ?? 6) : null };
  });
}

function setup(opts: { selection?: Selection | null; model?: ModelSummary | null; worker?: FakeWorker } = {}) {
  const worker = opts.worker ?? workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
  exportsAnything(worker);
  const page = testPage(worker.client, { selection: opts.selection === undefined ? { runId: 'r1', step: null } : opts.selection, model: opts.model === undefined ? MODEL : opts.model });
  return { worker, ...page };
}

describe('export', () => {
  it('merged export: progress from the worker, with an ETA measured between its points', async () => {
    const worker = workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
    let clock = 1000;
    const points: [string, number, number][] = [
      ['merged: read', 10, 24],
      ['merged: merge', 12, 24],
      ['merged: merge', 14, 24],
      ['merged: write', 24, 24],
    ];
    worker.on('export', async (p: ExportPayload, ctx): Promise<ExportResult> => {
      for (const [file, loaded, total] of points) {
        clock += 1000;
        ctx.emit('progress', { file, loaded, total, fraction: loaded / total });
        await tick(2);
      }
      return { kind: p.kind, filename: 'm.zip', mimeType: 'application/zip', bytes: new Uint8Array(8), files: ['model.safetensors'], runId: p.runId!, step: 6 };
    });
    const { store, actions } = testPage(worker.client, { selection: { runId: 'r1', step: null }, model: MODEL, now: () => clock });
    const seen: ExportProgress[] = [];
    const unsub = store.subscribe((s) => {
      const pr = s.export.merged.progress;
      if (pr && pr !== seen.at(-1)) seen.push(pr);
    });
    expect(await actions.exportFile('merged')).not.toBeNull();
    unsub();
    expect(seen.map((x) => x.stage)).toEqual(points.map((x) => x[0]));
    // First point: 10/24 done 1 s after the start -> 1.4 s left; then 2 units per second measured -> 5 s left.
    expect(seen[0]!.etaMs).toBeCloseTo(1400, 6);
    expect(seen[1]!.etaMs).toBeCloseTo(6000, 6);
    expect(seen[2]!.etaMs).toBeCloseTo(5000, 6);
    expect(seen[3]!.etaMs).toBe(0);
    expect(describeExportStage(seen[1]!)).toBe('Merging the adapter into the weights: 12 / 24 tensors');
    expect(store.getState().export.merged).toMatchObject({ phase: 'ready', progress: null });
  });

  it('exports the PEFT adapter of the newest checkpoint, or of the selected one', async () => {
    const { actions, worker, store, select } = setup();
    const r = await actions.exportFile('peft');
    expect(r?.filename).toBe('numbers-step6-lora.zip');
    expect(r?.bytes.byteLength).toBe(2048);
    expect(worker.callsOf('export').at(-1)!.payload).toEqual({ kind: 'peft', runId: 'r1', step: 6 });
    expect(store.getState().export.peft).toMatchObject({ phase: 'ready', last: { filename: 'numbers-step6-lora.zip', size: 2048, step: 6, files: ['adapter_config.json', 'adapter_model.safetensors', 'tabtune.json'] } });

    select({ runId: 'r1', step: 3 });
    await actions.exportFile('merged');
    expect(worker.callsOf('export').at(-1)!.payload).toEqual({ kind: 'merged', runId: 'r1', step: 3 });
  });

  it('metrics CSV and recipe describe the run (no step); the CSV needs no model', async () => {
    const { actions, worker, store, setModel } = setup();
    await actions.exportFile('recipe');
    expect(worker.callsOf('export').at(-1)!.payload).toEqual({ kind: 'recipe', runId: 'r1', step: undefined });
    setModel(null);
    const csv = await actions.exportFile('metrics-csv');
    expect(csv?.mimeType).toBe('text/csv');
    expect(await actions.exportFile('peft')).toBeNull();
    expect(store.getState().export.peft.error?.code).toBe('NO_MODEL');
  });

  it('empty state: nothing selected; a run without checkpoints still exports its metrics', async () => {
    const none = setup({ selection: null });
    expect(exportBlocker(none.store.getState(), 'peft')).toMatchObject({ code: 'NO_ADAPTER', message: 'No run is selected.' });
    expect(exportBlocker(none.store.getState(), 'metrics-csv')?.code).toBe('NO_ADAPTER');

    const fresh = setup({ worker: workerWithRuns([run('r2')], {}), selection: { runId: 'r2', step: null } });
    await tick(5);
    expect(exportBlocker(fresh.store.getState(), 'peft')).toMatchObject({ code: 'NOT_FOUND', message: 'Run "r2" has no checkpoint yet.' });
    expect(exportBlocker(fresh.store.getState(), 'metrics-csv')).toBeNull();
    expect(exportBlocker(fresh.store.getState(), 'recipe')).toBeNull();
  });

  it('a failed merged export shows what went wrong and what to do, until another selection', async () => {
    const { actions, worker, store, select } = setup();
    worker.on('export', () => {
      throw new WorkerFailure({
        code: 'MODEL_MISMATCH',
        message: 'The base folder\'s config.json is for model_type "gpt2" but the model is "llama".',
        hint: 'Load the base model the run was trained on, then export again.',
      });
    });
    expect(await actions.exportFile('merged')).toBeNull();
    expect(store.getState().export.merged).toMatchObject({ phase: 'error', error: { code: 'MODEL_MISMATCH', hint: expect.stringMatching(/Load the base model/) } });
    // Another selection clears the stale error.
    select({ runId: 'r1', step: 3 });
    expect(store.getState().export.merged).toMatchObject({ phase: 'idle', error: null });
  });

  it('is busy while the worker builds the file', async () => {
    const { actions, worker, store } = setup();
    let release!: () => void;
    worker.on('export', async (p) => {
      await new Promise<void>((r) => (release = r));
      return { kind: p.kind, filename: 'x.zip', mimeType: 'application/zip', bytes: new Uint8Array(3), files: [], runId: 'r1', step: 6 };
    });
    const pending = actions.exportFile('peft');
    await tick(10);
    expect(store.getState().export.peft.phase).toBe('busy');
    expect(store.getState().export.peft.startedAt).not.toBeNull();
    expect(await actions.exportFile('peft')).toBeNull(); // one at a time per kind
    release();
    expect((await pending)?.filename).toBe('x.zip');
    expect(store.getState().export.peft.phase).toBe('ready');
    actions.dispose();
  });
});
