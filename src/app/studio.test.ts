// The studio's wiring against a scripted fake worker client: what each user action sends, and how the
// answers and events land in the store (the live series, selection, runs, checkpoints, the doctor).
import { describe, expect, it } from 'vitest';
import type { EventHandlers, WorkerClient } from '../protocol/client';
import { RequestError } from '../protocol/client';
import type { CheckpointInfo, DataReport, InspectDataResult, RequestKind, RunSummary, StepMetrics, TrainPayload, TrainStart } from '../protocol/messages';
import { cannotStart, createAppStore, initialState, interruptedRuns, isTraining, patch, type AppStore } from '../store/store';
import { createStudio, type Studio } from './studio';
import { runSummary } from '../testing/studio-fixtures';

interface Sent {
  kind: RequestKind;
  payload: unknown;
  on: EventHandlers;
  id: number;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** A WorkerClient whose answers the test gives: each request waits until the test settles it (or `auto` answers it). */
function fakeClient(auto: Partial<Record<RequestKind, (payload: never) => unknown>> = {}) {
  const sent: Sent[] = [];
  const cancelled: number[] = [];
  let nextId = 1;
  const client = {
    send(kind: RequestKind, payload: unknown, on: EventHandlers = {}) {
      const id = nextId++;
      let resolve!: (v: unknown) => void;
      let reject!: (e: Error) => void;
      const result = new Promise((res, rej) => ((resolve = res), (reject = rej)));
      const s: Sent = { kind, payload, on, id, resolve, reject };
      sent.push(s);
      const a = auto[kind];
      if (a) {
        try {
          resolve(a(payload as never));
        } catch (e) {
          reject(e as Error);
        }
      }
      return { id, result };
    },
    request(kind: RequestKind, payload: unknown, on?: EventHandlers) {
      return this.send(kind, payload, on).result;
    },
    async cancel(target: number) {
      cancelled.push(target);
      return true;
    },
  };
  return { client: client as unknown as WorkerClient, sent, cancelled, last: (kind: RequestKind) => [...sent].reverse().find((s) => s.kind === kind)! };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

function report(over: Partial<DataReport> = {}): DataReport {
  return {
    name: 'd.jsonl',
    format: 'prompt-completion-jsonl',
    container: 'jsonl',
    schema: 'prompt-completion',
    detected: { container: 'jsonl', schema: 'prompt-completion' },
    total: 41,
    records: 40,
    kinds: { pair: 40, chat: 0, preference: 0 },
    bytes: 2900,
    errors: [{ line: 17, severity: 'error', code: 'trailing-comma', message: 'invalid JSON: trailing comma', snippet: '{"prompt": "x",}' }],
    warnings: [],
    errorCount: 1,
    warningCount: 0,
    errorsOmitted: 0,
    warningsOmitted: 0,
    byCode: { 'trailing-comma': 1 },
    tokens: null,
    stop: null,
    split: { train: 36, val: 4, source: 'split', valFraction: 0.1, seed: 0 },
    validation: null,
    ...over,
  };
}

const inspected = (over: Partial<DataReport> = {}, datasetId = 'ds1'): InspectDataResult => ({ datasetId, report: report(over), stored: true, storageError: null, ms: 5 });

function ckpt(runId: string, step: number, over: Partial<CheckpointInfo> = {}): CheckpointInfo {
  return { runId, step, createdAt: 0, sizeBytes: 1000, chunkCount: 1, trainLoss: 1, valLoss: 1, extra: null, pinned: false, isBest: false, isLatest: false, ...over };
}

const run = runSummary;

function metrics(step: number, loss = 3 - step * 0.1): StepMetrics {
  return { step, totalSteps: 10, epoch: step / 10, loss, smoothLoss: loss, lr: 1e-3, gradNorm: 1, tokens: 100, tokensPerSec: 1000, etaSec: 1, memory: { numTensors: 5, numBytes: 100 }, backend: 'wasm' };
}

function setup(auto: Parameters<typeof fakeClient>[0] = {}): { store: AppStore; studio: Studio; fake: ReturnType<typeof fakeClient> } {
  const fake = fakeClient({
    'list-runs': () => ({ runs: [] }),
    'storage-report': () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: { usage: 10, quota: 100 } }),
    'list-checkpoints': () => ({ checkpoints: [] }),
    ...auto,
  });
  const store = createAppStore(initialState());
  patch(store, 'model', { phase: 'ready', summary: { name: 'm', label: 'm', loadMs: 1, arch: 'llama', numParams: 1000, vocabSize: 100, contextLength: 64, hiddenSize: 16, layers: 2, storedDtype: 'F32', training: { modes: ['lora'] } } });
  const studio = createStudio({ client: fake.client, store, fetchExamples: async () => [], absoluteUrl: (p) => `http://x${p}`, whenModelReady: async () => undefined });
  return { store, studio, fake };
}

describe('studio: data', () => {
  it('inspects a dropped file in the worker, shows progress, then the report', async () => {
    const { store, studio, fake } = setup();
    const file = new File(['{"prompt":"a","completion":"b"}\n'], 'd.jsonl');
    const done = studio.inspectFile(file);
    await flush();
    const req = fake.last('inspect-data');
    expect(req.payload).toMatchObject({ source: { kind: 'blob', name: 'd.jsonl' }, options: { valFraction: 0.1, lossOn: 'completion' } });
    expect(store.getState().data).toMatchObject({ phase: 'busy', label: 'd.jsonl' });
    req.on['data-progress']!({ phase: 'read', loaded: 5, total: 10, fraction: 0.5, file: 'train' });
    expect(store.getState().data.progress).toEqual({ file: 'train', phase: 'read', fraction: 0.5 });
    req.resolve(inspected());
    await done;
    expect(store.getState().data).toMatchObject({ phase: 'ready', progress: null, requestId: null });
    expect(store.getState().data.result?.report.errors[0]?.line).toBe(17);
    expect(cannotStart(store.getState())).toBeNull();
  });

  it('a newer file cancels the one being checked, whose late answer is ignored', async () => {
    const { store, studio, fake } = setup();
    const first = studio.inspectFile(new File(['x'], 'a.jsonl'));
    await flush();
    const a = fake.last('inspect-data');
    const second = studio.inspectFile(new File(['y'], 'b.jsonl'));
    await flush();
    const b = fake.last('inspect-data');
    expect(fake.cancelled).toContain(a.id);
    b.resolve(inspected({ name: 'b.jsonl' }, 'b'));
    await second;
    a.resolve(inspected({ name: 'a.jsonl' }, 'a'));
    await first;
    expect(store.getState().data.result?.datasetId).toBe('b');
    expect(store.getState().data.label).toBe('b.jsonl');
  });

  it('changing the format checks the same file again with it', async () => {
    const { store, studio, fake } = setup({ 'inspect-data': () => inspected() });
    await studio.inspectFile(new File(['x'], 'a.jsonl'));
    await studio.setDataOptions({ format: 'alpaca' });
    expect(fake.sent.filter((s) => s.kind === 'inspect-data')).toHaveLength(2);
    expect(fake.last('inspect-data').payload).toMatchObject({ source: { kind: 'blob', name: 'a.jsonl' }, options: { format: 'alpaca' } });
    expect(store.getState().data.options.format).toBe('alpaca');
  });

  it('a validation file is checked with the dataset; removing it splits a share off again; a new dataset drops it', async () => {
    const { store, studio, fake } = setup({ 'inspect-data': () => inspected() });
    await studio.inspectFile(new File(['x'], 'a.jsonl'));
    await studio.setValidationFile(new File(['y'], 'held.jsonl'));
    expect(fake.last('inspect-data').payload).toMatchObject({ source: { kind: 'blob', name: 'a.jsonl' }, validation: { kind: 'blob', name: 'held.jsonl' } });
    expect(store.getState().data.validationLabel).toBe('held.jsonl');
    await studio.setDataOptions({ lossOn: 'all' }); // other options keep it
    expect(fake.last('inspect-data').payload).toMatchObject({ validation: { name: 'held.jsonl' }, options: { lossOn: 'all' } });
    await studio.setValidationFile(null);
    expect(fake.last('inspect-data').payload).not.toHaveProperty('validation');
    await studio.setValidationFile(new File(['y'], 'held.jsonl'));
    await studio.inspectFile(new File(['z'], 'b.jsonl'));
    expect(fake.last('inspect-data').payload).not.toHaveProperty('validation');
    expect(store.getState().data.validationLabel).toBeNull();
  });

  it('an example dataset comes with its own validation file', async () => {
    const { store, studio, fake } = setup({ 'inspect-data': () => inspected() });
    patch(store, 'data', { examples: { phase: 'ready', error: null, entries: [{ id: 'nw', title: 'Numbers', description: '', format: 'x', train: 'nw.train.jsonl', val: 'nw.val.jsonl', trainRecords: 9 }] } });
    await studio.inspectExample('nw');
    expect(fake.last('inspect-data').payload).toMatchObject({
      source: { kind: 'url', url: 'http://x/examples/nw.train.jsonl' },
      validation: { kind: 'url', url: 'http://x/examples/nw.val.jsonl', name: 'nw.val.jsonl' },
    });
    expect(store.getState().data.validationLabel).toBe('nw.val.jsonl');
  });

  it('CSV columns chosen by the user go with the next check of that file and are forgotten for the next file', async () => {
    const { store, studio, fake } = setup({ 'inspect-data': () => inspected() });
    await studio.inspectFile(new File(['q,a\n1,2\n'], 't.csv'));
    expect((fake.last('inspect-data').payload as { options: object }).options).not.toHaveProperty('columns');
    await studio.setDataOptions({ columns: { prompt: ['q'], completion: 'a' } });
    expect(fake.last('inspect-data').payload).toMatchObject({ source: { name: 't.csv' }, options: { columns: { prompt: ['q'], completion: 'a' } } });
    await studio.inspectFile(new File(['x'], 'other.csv'));
    expect((fake.last('inspect-data').payload as { options: object }).options).not.toHaveProperty('columns');
    expect(store.getState().data.options.columns).toBeNull();
  });

  it('a max sequence length is sent with the next check; "the model\'s context" sends none', async () => {
    const { store, studio, fake } = setup({ 'inspect-data': () => inspected() });
    await studio.inspectFile(new File(['x'], 'a.jsonl'));
    expect((fake.last('inspect-data').payload as { options: object }).options).not.toHaveProperty('maxSeqLen');
    await studio.setDataOptions({ maxSeqLen: 64 });
    expect(fake.last('inspect-data').payload).toMatchObject({ options: { maxSeqLen: 64 } });
    await studio.setDataOptions({ maxSeqLen: null });
    expect((fake.last('inspect-data').payload as { options: object }).options).not.toHaveProperty('maxSeqLen');
    expect(store.getState().data.options.maxSeqLen).toBeNull();
  });

  it('a failed inspection says what happened', async () => {
    const { store, studio } = setup({
      'inspect-data': () => {
        throw new RequestError({ code: 'BAD_DATASET', message: 'Could not download', hint: 'Check the address' });
      },
    });
    await studio.inspectExample('missing');
    expect(store.getState().data.phase).toBe('idle'); // unknown example: nothing sent
    await studio.inspectFile(new File(['x'], 'a.jsonl'));
    expect(store.getState().data).toMatchObject({ phase: 'error', error: { code: 'BAD_DATASET', hint: 'Check the address' } });
  });
});

describe('studio: training', () => {
  it('sends the general text the user added to the forgetting probe, until it is removed', async () => {
    const { store, studio, fake } = setup();
    patch(store, 'data', { phase: 'ready', result: inspected() });
    studio.setProbeText({ name: 'wiki.txt', text: 'Some general text.' });
    void studio.startTraining();
    await flush();
    expect((fake.last('train').payload as TrainPayload).probeText).toEqual({ name: 'wiki.txt', text: 'Some general text.' });
    studio.setProbeText(null);
    expect(store.getState().train.probeText).toBeNull();
  });

  it('Recompute activations keeps the preset (memory and time, not what the run learns); a preset keeps it; it goes to the worker', async () => {
    const { store, studio, fake } = setup();
    patch(store, 'data', { phase: 'ready', result: inspected() });
    studio.choosePreset('quick');
    studio.setTrainConfig({ ...store.getState().train.config, recompute: true });
    expect(store.getState().train).toMatchObject({ preset: 'quick', config: { recompute: true } });
    studio.choosePreset('thorough');
    expect(store.getState().train).toMatchObject({ preset: 'thorough', config: { recompute: true } });
    studio.setTrainConfig({ ...store.getState().train.config, lr: 1e-3 });
    expect(store.getState().train.preset).toBe('custom');
    void studio.startTraining();
    await flush();
    expect((fake.last('train').payload as TrainPayload).config).toMatchObject({ recompute: true, lr: 1e-3 });
  });

  it('will not start without data, or with out-of-bounds settings', async () => {
    const { store, studio, fake } = setup();
    await studio.startTraining();
    expect(store.getState().train).toMatchObject({ phase: 'error', error: { message: 'Add a dataset first (Data, above).' } });
    patch(store, 'data', { phase: 'ready', result: inspected() });
    studio.setTrainConfig({ ...store.getState().train.config, lr: -1 });
    await studio.startTraining();
    expect(store.getState().train.error?.message).toMatch(/Learning rate: must be between/);
    expect(fake.sent.some((s) => s.kind === 'train')).toBe(false);
  });

  it('streams steps and evaluations into the series (one store update each), selects the run, lists checkpoints', async () => {
    const { store, studio, fake } = setup();
    patch(store, 'data', { phase: 'ready', result: inspected() });
    studio.choosePreset('quick');
    const training = studio.startTraining();
    await flush();
    const req = fake.last('train');
    expect(req.payload).toMatchObject({ datasetId: 'ds1', name: 'd.jsonl', config: { steps: 60, lora: { r: 4 } } });
    expect((req.payload as TrainPayload).probeText).toBeUndefined();
    expect(store.getState().train.phase).toBe('starting');
    req.on.run!({ runId: 'r1', name: 'd.jsonl', startStep: 0, totalSteps: 10 } as TrainStart);
    expect(store.getState().selection).toEqual({ runId: 'r1', step: null });
    expect(isTraining(store.getState())).toBe(true);
    let updates = 0;
    const unsub = store.subscribe(() => updates++);
    for (let s = 1; s <= 4; s++) req.on.metrics!(metrics(s));
    req.on.eval!({ step: 4, valLoss: 2.5, valPpl: 12, tokens: 40 });
    unsub();
    expect(updates).toBe(5);
    const live = store.getState().live;
    expect(live.runId).toBe('r1');
    expect(live.series.step).toEqual([1, 2, 3, 4]);
    expect(live.series.val).toEqual([null, null, null, 2.5]);
    expect(live.version).toBe(5);
    expect(live.last?.step).toBe(4);
    const before = fake.sent.filter((s) => s.kind === 'list-checkpoints').length;
    req.on.checkpoint!({ ...ckpt('r1', 4), deletedSteps: [], ms: 1 });
    expect(fake.sent.filter((s) => s.kind === 'list-checkpoints').length).toBe(before + 1);
    req.resolve({ runId: 'r1', reason: 'done', step: 4, totalSteps: 4, finalTrainLoss: 2.6, finalValLoss: 2.5, checkpoint: null, resumedFrom: null, ms: 100, tokensPerSecond: 900 });
    await training;
    expect(store.getState().train).toMatchObject({ phase: 'done', requestId: null, outcome: { tokensPerSecond: 900 } });
  });

  it('pause, resume and cancel go to the worker', async () => {
    const { store, studio, fake } = setup({ pause: () => ({ paused: true, runId: 'r1', step: 2, checkpoint: null }), 'resume-train': () => ({ resumed: true, runId: 'r1', step: 2 }) });
    patch(store, 'data', { phase: 'ready', result: inspected() });
    const training = studio.startTraining();
    await flush();
    const req = fake.last('train');
    req.on.run!({ runId: 'r1', name: 'x', startStep: 0, totalSteps: 10 } as TrainStart);
    await studio.pauseTraining();
    expect(store.getState().train.phase).toBe('paused');
    await studio.resumeTraining();
    expect(store.getState().train.phase).toBe('running');
    await studio.cancelTraining();
    expect(fake.cancelled).toEqual([req.id]);
    expect(store.getState().train.phase).toBe('stopping');
    req.resolve({ runId: 'r1', reason: 'cancelled', step: 3, totalSteps: 10, finalTrainLoss: 1, finalValLoss: null, checkpoint: null, resumedFrom: null, ms: 1, tokensPerSecond: 1 });
    await training;
    expect(store.getState().train.phase).toBe('done');
  });

  it('a resumed run shows its stored history up to the checkpoint, then the new steps', async () => {
    const { store, studio, fake } = setup();
    const resuming = studio.resumeRun('r1');
    await flush();
    const req = fake.last('resume-run');
    expect(req.payload).toEqual({ runId: 'r1' });
    req.on.run!({ runId: 'r1', name: 'x', startStep: 2, totalSteps: 5 } as TrainStart);
    // A step arrives before the stored history does.
    req.on.metrics!(metrics(3));
    const history = fake.last('run-metrics');
    expect(history.payload).toEqual({ runId: 'r1' });
    history.resolve({
      points: [
        { type: 'step', step: 1, epoch: 0, loss: 3, smoothLoss: 3, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
        { type: 'step', step: 2, epoch: 0, loss: 2.9, smoothLoss: 2.9, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
        { type: 'eval', step: 2, valLoss: 2.8, valPpl: 1, tokens: 1 },
        // Stored after the checkpoint the run resumes from: replaced by the new steps.
        { type: 'step', step: 3, epoch: 0, loss: 9, smoothLoss: 9, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
      ],
    });
    await flush();
    req.on.metrics!(metrics(4));
    const s = store.getState().live.series;
    expect(s.step).toEqual([1, 2, 3, 4]);
    expect(s.loss[2]).toBeCloseTo(metrics(3).loss);
    expect(s.val).toEqual([null, 2.8, null, null]);
    req.resolve({ runId: 'r1', reason: 'done', step: 5, totalSteps: 5, finalTrainLoss: 1, finalValLoss: 1, checkpoint: null, resumedFrom: { runId: 'r1', step: 2 }, ms: 1, tokensPerSecond: 1 });
    await resuming;
  });

  it('a training error keeps what the worker said, and the runs are listed again', async () => {
    const { store, studio, fake } = setup();
    patch(store, 'data', { phase: 'ready', result: inspected() });
    const training = studio.startTraining();
    await flush();
    const lists = fake.sent.filter((s) => s.kind === 'list-runs').length;
    fake.last('train').reject(new RequestError({ code: 'NON_FINITE_LOSS', message: 'The loss became NaN', hint: 'Lower the learning rate' }));
    await training;
    expect(store.getState().train).toMatchObject({ phase: 'error', error: { code: 'NON_FINITE_LOSS', hint: 'Lower the learning rate' } });
    expect(fake.sent.filter((s) => s.kind === 'list-runs').length).toBeGreaterThan(lists);
  });
});

describe('studio: runs and checkpoints', () => {
  it('after a reload: lists runs, opens the newest with its chart, brings its stored dataset back, offers the interrupted one', async () => {
    const job = { kind: 'tabtune-run', version: 1, data: { datasetId: 'ds9', name: 'planted.jsonl', requested: { valFraction: 0.02 } }, train: {}, model: {} } as unknown as RunSummary['job'];
    const runs = [run('old', { updatedAt: 1 }), run('new', { updatedAt: 5, status: 'interrupted', latestCheckpoint: ckpt('new', 6), job })];
    const { store, studio, fake } = setup({
      'list-runs': () => ({ runs }),
      'list-checkpoints': (p: { runId: string }) => ({ checkpoints: [ckpt(p.runId, 6, { isLatest: true, isBest: true })] }),
      'run-metrics': () => ({ points: [{ type: 'step', step: 1, epoch: 0, loss: 3, smoothLoss: 3, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 }] }),
      'inspect-data': () => inspected({ name: 'planted.jsonl' }, 'ds9'),
    });
    await studio.afterModelReady();
    const s = store.getState();
    expect(s.runs.list.map((r) => r.id)).toEqual(['new', 'old']);
    expect(s.runs.storage?.estimate).toEqual({ usage: 10, quota: 100 });
    expect(s.selection).toEqual({ runId: 'new', step: null });
    expect(s.checkpoints).toMatchObject({ runId: 'new', phase: 'ready' });
    expect(s.live.series.step).toEqual([1]);
    expect(fake.last('inspect-data').payload).toMatchObject({ source: { kind: 'stored', datasetId: 'ds9' }, options: { valFraction: 0.02 } });
    expect(fake.last('inspect-data').payload).not.toHaveProperty('validation');
    expect(s.data).toMatchObject({ phase: 'ready', label: 'planted.jsonl (kept in this browser)', validationLabel: null });
    expect(interruptedRuns(s.runs.list).map((r) => r.id)).toEqual(['new']);
  });

  it('after a reload, a run trained with a validation file gets it back from storage too', async () => {
    const job = { kind: 'tabtune-run', version: 1, data: { datasetId: 'ds9', valDatasetId: 'ds10', name: 'a.jsonl', requested: {} }, train: {}, model: {} } as unknown as RunSummary['job'];
    const { store, studio, fake } = setup({
      'list-runs': () => ({ runs: [run('r', { latestCheckpoint: ckpt('r', 2), job })] }),
      'run-metrics': () => ({ points: [] }),
      'inspect-data': () => inspected({ name: 'a.jsonl' }, 'ds9'),
    });
    await studio.afterModelReady();
    expect(fake.last('inspect-data').payload).toMatchObject({ source: { kind: 'stored', datasetId: 'ds9' }, validation: { kind: 'stored', datasetId: 'ds10' } });
    expect(store.getState().data.validationLabel).toBe('validation file (kept in this browser)');
  });

  it('select, pin, delete a checkpoint; rewind makes a branch; rename and delete a run', async () => {
    const { store, studio, fake } = setup({
      'pin-checkpoint': (p: { runId: string; step: number }) => ({ checkpoint: ckpt(p.runId, p.step, { pinned: true }) }),
      'delete-checkpoint': () => ({ deleted: true }),
      'rename-run': (p: { runId: string; name: string }) => ({ run: run(p.runId, { name: p.name }) }),
      'delete-run': () => ({ deleted: true }),
      'run-metrics': () => ({ points: [] }),
      'list-runs': () => ({ runs: [run('r1', { name: 'first' })] }),
    });
    await studio.openRun('r1');
    studio.selectCheckpoint('r1', 6);
    expect(store.getState().selection).toEqual({ runId: 'r1', step: 6 });
    await studio.pinCheckpoint('r1', 6, true);
    expect(fake.last('pin-checkpoint').payload).toEqual({ runId: 'r1', step: 6, pinned: true });
    await studio.deleteCheckpoint('r1', 6);
    expect(fake.last('delete-checkpoint').payload).toEqual({ runId: 'r1', step: 6 });
    // The selected checkpoint is gone from the list: the selection falls back to the newest.
    expect(store.getState().selection).toEqual({ runId: 'r1', step: null });
    await studio.refreshRuns();
    const rewinding = studio.rewindTo('r1', 6);
    await flush();
    expect(fake.last('resume-run').payload).toEqual({ runId: 'r1', step: 6, name: 'first from step 6' });
    fake.last('resume-run').resolve({ runId: 'b1', reason: 'done', step: 8, totalSteps: 8, finalTrainLoss: 1, finalValLoss: 1, checkpoint: null, resumedFrom: { runId: 'r1', step: 6 }, ms: 1, tokensPerSecond: 1 });
    await rewinding;
    const named = studio.rewindTo('r1', 6, 'lower lr');
    await flush();
    expect(fake.last('resume-run').payload).toEqual({ runId: 'r1', step: 6, name: 'lower lr' });
    fake.last('resume-run').resolve({ runId: 'b2', reason: 'done', step: 8, totalSteps: 8, finalTrainLoss: 1, finalValLoss: 1, checkpoint: null, resumedFrom: { runId: 'r1', step: 6 }, ms: 1, tokensPerSecond: 1 });
    await named;
    await studio.renameRun('r1', 'better name');
    expect(fake.last('rename-run').payload).toEqual({ runId: 'r1', name: 'better name' });
    studio.selectCheckpoint('r1', null);
    await studio.deleteRun('r1');
    expect(store.getState().selection).toEqual({ runId: null, step: null });
    expect(store.getState().checkpoints.runId).toBeNull();
  });

  it('a failed run action is shown, not thrown', async () => {
    const { store, studio } = setup({
      'delete-run': () => {
        throw new RequestError({ code: 'BUSY', message: 'This run is training.', hint: 'Cancel it first' });
      },
    });
    await studio.deleteRun('r1');
    expect(store.getState().runs.actionError).toMatchObject({ code: 'BUSY' });
  });
});
