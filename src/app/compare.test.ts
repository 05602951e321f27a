// Compare's actions against a scripted worker (the real WorkerClient): what they ask the worker, in
// which order, and what lands in the app store (`compare`, `selectedRun`).
import { describe, expect, it } from 'vitest';
import type { GenerateOutcome, GenerateParams, ModelSummary } from '../protocol/messages';
import { clampSettings, compareBlocker, formatTotals, promptToSend } from '../store/compare';
import type { Selection } from '../store/run-context';
import { patch } from '../store/store';
import { formatDuration } from '../store/time';
import { tick, WorkerFailure, type FakeWorker } from '../testing/fake-worker';
import { checkpoint, COMPARE_RESULT, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { testPage } from '../testing/page';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true, isBest: true })] };

function setup(opts: { selection?: Selection | null; model?: ModelSummary | null; worker?: FakeWorker; now?: () => number } = {}) {
  const worker = opts.worker ?? workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1, stopStrings: ['\n\n'], template: 'auto' })], CKS);
  const page = testPage(worker.client, { selection: opts.selection === undefined ? { runId: 'r1', step: null } : opts.selection, model: opts.model === undefined ? MODEL : opts.model, now: opts.now });
  return { worker, ...page };
}

/** Streams `text` word by word as token events, then answers (or stops early when cancelled). */
function streamingGenerate(worker: FakeWorker, texts: { base: string; tuned: string }, delayMs = 1) {
  worker.on('generate', async (p, ctx) => {
    const words = (p.useAdapter ? texts.tuned : texts.base).split(/(?<= )/);
    let out = '';
    const tokens: number[] = [];
    for (const w of words) {
      if (ctx.cancelled()) break;
      await tick(delayMs);
      out += w;
      tokens.push(tokens.length + 10);
      ctx.emit('token', { token: tokens.at(-1)!, text: w });
    }
    const outcome: GenerateOutcome = {
      promptTokens: [1, 2],
      tokens,
      text: out,
      finishReason: ctx.cancelled() ? 'cancelled' : 'length',
      ms: 10,
      tokensPerSecond: tokens.length * 100,
      adapter: p.useAdapter ? { runId: 'r1', step: 6, strength: p.adapterStrength ?? 1 } : null,
    };
    return outcome;
  });
}

describe('compare', () => {
  it('empty states: no model, no selection, a run without checkpoints, a run of another model', async () => {
    const noModel = setup({ model: null });
    expect(compareBlocker(noModel.store.getState())?.code).toBe('NO_MODEL');

    const noSel = setup({ selection: null });
    expect(compareBlocker(noSel.store.getState())).toMatchObject({ code: 'NO_ADAPTER', message: 'No run or checkpoint is selected.' });
    expect(noSel.worker.calls).toHaveLength(0);

    const empty = setup({ worker: workerWithRuns([run('r1')], {}) });
    await tick(5);
    expect(compareBlocker(empty.store.getState())).toMatchObject({ code: 'NOT_FOUND', message: 'Run "r1" has no checkpoint yet.' });

    const other = setup({ worker: workerWithRuns([run('r1', { checkpoints: CKS.r1, model: { name: 'stories260K', numParams: 260_032 } })], CKS) });
    await tick(5);
    expect(compareBlocker(other.store.getState())).toMatchObject({ code: 'MODEL_MISMATCH', hint: 'Load stories260K in the Model panel, then come back.' });

    const gone = setup({ worker: workerWithRuns([], {}) });
    await tick(5);
    expect(compareBlocker(gone.store.getState())?.code).toBe('NOT_FOUND');
    // Pressing a button anyway says why, and asks the worker for nothing.
    await gone.actions.compareHeldout();
    expect(gone.store.getState().compare.heldout).toMatchObject({ phase: 'error', error: { code: 'NOT_FOUND' } });
    expect(gone.worker.callsOf('compare-heldout')).toHaveLength(0);
  });

  it('reads the selected run and follows selection changes', async () => {
    const { store, select, worker } = setup();
    await tick(5);
    expect(store.getState().selectedRun).toMatchObject({ phase: 'ready', run: { runName: 'numbers', checkpoint: { step: 6 }, stopStrings: ['\n\n'] } });
    expect(compareBlocker(store.getState())).toBeNull();
    select({ runId: 'r1', step: 3 });
    await tick(5);
    expect(store.getState().selectedRun.run?.checkpoint?.step).toBe(3);
    expect(worker.callsOf('list-checkpoints').length).toBeGreaterThanOrEqual(2);
    select({ runId: 'r1', step: 99 });
    await tick(5);
    expect(compareBlocker(store.getState())).toMatchObject({ code: 'NOT_FOUND', hint: 'Pick another checkpoint in the timeline.' });
    select(null);
    await tick(5);
    expect(store.getState().selectedRun.run).toBeNull();
  });

  it('prompt: base and tuned stream with the same settings and seed; the tuned side at the chosen strength', async () => {
    const { store, actions, worker } = setup();
    streamingGenerate(worker, { base: 'Once upon a time there', tuned: '42' });
    actions.setCompareSettings({ prompt: 'Write as digits: forty two', temperature: 0.7, topK: 20, topP: 0.9, seed: 7, maxNewTokens: 12, strength: 0.5 });
    const seen: string[] = [];
    const unsub = store.subscribe((s) => seen.push(s.compare.stream.base));
    await actions.comparePrompt();
    unsub();

    // The selected checkpoint (newest = step 6) is loaded first.
    expect(worker.callsOf('load-adapter').map((c) => c.payload)).toEqual([{ runId: 'r1', step: 6 }]);
    const gens = worker.callsOf('generate').map((c) => c.payload as GenerateParams);
    expect(gens).toHaveLength(2);
    // Both sides stop where the run's replies end: its stop strings and its stop token (id 1 in the fixture).
    const same = { prompt: 'Write as digits: forty two\nAnswer:', maxNewTokens: 12, temperature: 0.7, topK: 20, topP: 0.9, seed: 7, stopStrings: ['\n\n'], stopTokenIds: [1] };
    expect(gens[0]).toEqual({ ...same, useAdapter: false });
    expect(gens[1]).toEqual({ ...same, useAdapter: true, adapterStrength: 0.5 });

    const s = store.getState();
    expect(s.compare.prompt).toMatchObject({ phase: 'ready', sentPrompt: same.prompt, strength: 0.5, adapter: { runId: 'r1', step: 6 }, error: null });
    expect(s.compare.prompt.base).toMatchObject({ phase: 'done', outcome: { finishReason: 'length', adapter: null } });
    expect(s.compare.prompt.tuned).toMatchObject({ phase: 'done', outcome: { adapter: { strength: 0.5 } } });
    expect(s.compare.stream).toEqual({ base: 'Once upon a time there', tuned: '42', baseTokens: 5, tunedTokens: 1 });
    // The text grew token by token in the store.
    expect(new Set(seen).size).toBeGreaterThanOrEqual(5);
  });

  it('prompt: raw text when the training format is off or the run used a chat template; empty prompt refused', async () => {
    expect(promptToSend({ prompt: 'hi', trainingFormat: false }, { template: 'plain' })).toBe('hi');
    expect(promptToSend({ prompt: 'hi', trainingFormat: true }, { template: 'chat-template' })).toBe('hi');
    expect(promptToSend({ prompt: 'hi', trainingFormat: true }, { template: 'plain' })).toBe('hi\nAnswer:');
    const { actions, store, worker } = setup();
    await actions.comparePrompt();
    expect(store.getState().compare.prompt).toMatchObject({ phase: 'error', error: { code: 'BAD_REQUEST', message: 'The prompt is empty.' } });
    expect(worker.callsOf('generate')).toHaveLength(0);
  });

  it('prompt: Stop cancels both generations', async () => {
    const { store, actions, worker } = setup();
    streamingGenerate(worker, { base: 'a '.repeat(200), tuned: 'b '.repeat(200) }, 2);
    actions.setCompareSettings({ prompt: 'x' });
    const unsub = store.subscribe((s) => {
      if (s.compare.stream.baseTokens === 3 && !s.compare.prompt.stopped) void actions.stopComparePrompt();
    });
    await actions.comparePrompt();
    unsub();
    const cancels = worker.callsOf('cancel').map((c) => c.payload.target);
    expect(cancels.sort()).toEqual(worker.callsOf('generate').map((c) => c.id).sort());
    const s = store.getState();
    expect(s.compare.prompt.phase).toBe('ready');
    expect(s.compare.prompt.stopped).toBe(true);
    expect(s.compare.prompt.base.outcome?.finishReason).toBe('cancelled');
    expect(s.compare.stream.baseTokens).toBeLessThan(200);
  });

  it('prompt: a worker error lands on its side with the hint', async () => {
    const { store, actions, worker } = setup();
    worker.on('load-adapter', () => {
      throw new WorkerFailure({ code: 'BUSY', message: 'Run "other" is training with its adapter attached.', hint: 'Wait for it to finish or cancel it, then pick another checkpoint.' });
    });
    actions.setCompareSettings({ prompt: 'x' });
    await actions.comparePrompt();
    expect(store.getState().compare.prompt).toMatchObject({ phase: 'error', error: { code: 'BUSY', hint: 'Wait for it to finish or cancel it, then pick another checkpoint.' } });
    expect(worker.callsOf('generate')).toHaveLength(0);
  });

  it('held-out: progress with a measured ETA, then rows and totals of the selected step', async () => {
    let t = 1000;
    const { store, actions, worker } = setup({ selection: { runId: 'r1', step: 3 }, now: () => t });
    const etas: (number | null)[] = [];
    const stages: string[] = [];
    worker.on('compare-heldout', async (p, ctx) => {
      const n = 4;
      for (let loaded = 1; loaded <= 2 * n; loaded++) {
        await tick(1);
        t += 500; // each example takes 0.5 s (on the fake clock)
        ctx.emit('progress', { file: 'held-out', loaded, total: 2 * n, fraction: loaded / (2 * n) });
      }
      return { ...COMPARE_RESULT, step: p.step! };
    });
    const unsub = store.subscribe((s, prev) => {
      if (s.compare.heldout.progress && s.compare.heldout.progress !== prev.compare.heldout.progress && s.compare.heldout.progress.stage !== 'preparing') {
        etas.push(s.compare.heldout.progress.etaMs);
        stages.push(`${s.compare.heldout.progress.stage} ${s.compare.heldout.progress.done}/${s.compare.heldout.progress.total}`);
      }
    });
    await actions.compareHeldout();
    unsub();
    expect(worker.callsOf('compare-heldout').map((c) => c.payload)).toEqual([{ runId: 'r1', step: 3 }]);
    expect(stages).toEqual(['base 1/4', 'base 2/4', 'base 3/4', 'tuned 0/4', 'tuned 1/4', 'tuned 2/4', 'tuned 3/4', 'tuned 4/4']);
    // First point: rate since the start (0.5 s per 1/8) -> 3.5 s left; then from the measured rate.
    expect(etas[0]).toBe(3500);
    expect(etas[1]).toBe(3000);
    expect(etas[3]).toBe(2000);
    expect(etas.at(-1)).toBe(0);
    const h = store.getState().compare.heldout;
    expect(h).toMatchObject({ phase: 'ready', progress: null, resultRunName: 'numbers', result: { step: 3, totals: { n: 2 } } });
    expect(formatTotals(h.result!.totals)).toEqual({
      exact: 'exact match: base 3% → tuned 94%',
      overlap: 'token overlap: base 0.10 → tuned 0.83',
      loss: 'mean loss: base 4.210 → tuned 0.350',
    });
  });

  it('held-out: cancel returns at once and ignores the late result; says when the worker finishes anyway', async () => {
    const { store, actions, worker } = setup();
    let release!: () => void;
    worker.on('compare-heldout', async (_p, ctx) => {
      ctx.emit('progress', { file: 'held-out', loaded: 1, total: 8, fraction: 1 / 8 });
      await new Promise<void>((r) => (release = r));
      return COMPARE_RESULT;
    });
    const running = actions.compareHeldout();
    await tick(10);
    expect(store.getState().compare.heldout.phase).toBe('busy');
    await actions.cancelHeldout();
    expect(store.getState().compare.heldout).toMatchObject({ phase: 'idle', progress: null, result: null });
    expect(store.getState().compare.heldout.cancelled).toMatch(/finishes the comparison it had started/);
    release();
    await running;
    await tick(5);
    expect(store.getState().compare.heldout).toMatchObject({ phase: 'idle', result: null });

    // A worker that honours the cancel: just "Cancelled."
    worker.cancellable = () => true;
    const again = actions.compareHeldout();
    await tick(10);
    await actions.cancelHeldout();
    expect(store.getState().compare.heldout.cancelled).toBe('Cancelled.');
    release();
    await again;
  });

  it('held-out: a worker error keeps what it says and what to do', async () => {
    const { store, actions, worker } = setup();
    worker.on('compare-heldout', () => {
      throw new WorkerFailure({ code: 'BAD_DATASET', message: 'The run has no held-out records to compare on.', hint: 'Train with a validation split (valFraction > 0) or a validation file.' });
    });
    await actions.compareHeldout();
    expect(store.getState().compare.heldout).toMatchObject({ phase: 'error', error: { code: 'BAD_DATASET', hint: 'Train with a validation split (valFraction > 0) or a validation file.' } });
  });

  it('a run that is training: the live adapter (no step) is compared', async () => {
    const cks = { r1: [checkpoint('r1', 3)] };
    const { actions, worker, store } = setup({ worker: workerWithRuns([run('r1', { active: true, checkpoints: cks.r1 })], cks) });
    worker.on('compare-heldout', () => COMPARE_RESULT);
    await actions.compareHeldout();
    expect(worker.callsOf('load-adapter').map((c) => c.payload)).toEqual([{ runId: 'r1', step: undefined }]);
    expect(worker.callsOf('compare-heldout').map((c) => c.payload)).toEqual([{ runId: 'r1', step: undefined }]);
    expect(store.getState().compare.heldout.phase).toBe('ready');
  });

  it('a new model clears results made with the old one', async () => {
    const { store, actions, worker, setModel } = setup();
    worker.on('compare-heldout', () => COMPARE_RESULT);
    await actions.compareHeldout();
    expect(store.getState().compare.heldout.result).not.toBeNull();
    setModel({ ...MODEL, loadMs: 999 });
    expect(store.getState().compare.heldout.result).toBeNull();
    actions.dispose();
  });

  it('reads the run again when its checkpoints change (newest stays the newest)', async () => {
    const cks = { r1: [checkpoint('r1', 3)] };
    const worker = workerWithRuns([run('r1', { checkpoints: cks.r1 })], cks);
    const { store, actions } = setup({ worker });
    await tick(5);
    expect(store.getState().selectedRun.run?.checkpoint?.step).toBe(3);
    cks.r1.push(checkpoint('r1', 9));
    // The studio lists the run's checkpoints again after a checkpoint event.
    patch(store, 'checkpoints', { runId: 'r1', list: [...cks.r1] });
    await tick(5);
    expect(store.getState().selectedRun.run?.checkpoint?.step).toBe(9);
    actions.dispose();
  });

  it('settings are kept within bounds; durations read well', () => {
    expect(clampSettings({ prompt: 'p', trainingFormat: true, maxNewTokens: 9999, temperature: -1, topK: 2.7, topP: 0, seed: Number.NaN, strength: 3 }, 256)).toEqual({
      prompt: 'p',
      trainingFormat: true,
      maxNewTokens: 256,
      temperature: 0,
      topK: 2,
      topP: 0.01,
      seed: 1,
      strength: 1,
    });
    expect(formatDuration(4_400)).toBe('4 s');
    expect(formatDuration(125_000)).toBe('2 min 05 s');
  });
});
