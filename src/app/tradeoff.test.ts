// Knowing when to stop, on the page, against a scripted worker (the real WorkerClient): the live series
// get the evaluation's measurements, the trade-off chart is built from the run's checkpoints and its
// explored path, "Rewind to recommended" selects the right checkpoint for Compare and Export (applying a
// path point first), exploring reports progress and ETA and cancels, and the runs list gets the figures
// of each run's best and recommended steps.
import { describe, expect, it } from 'vitest';
import type { CheckpointInfo, EvalMetrics, ExplorePathResult, RunQuality, RunSummary, StepMetrics, TradeoffPoint } from '../protocol/messages';
import { selectedCheckpoint } from '../store/run-context';
import { patch } from '../store/store';
import { niceTicks, rewindTarget, storedPath, tradeoffCheckpoints, tradeoffRunId, tradeoffView } from '../store/tradeoff';
import { tick, WorkerFailure } from '../testing/fake-worker';
import { testPage } from '../testing/page';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';

/** A checkpoint whose step's evaluation measured val loss, exact match and the probe's rise (%). */
function measured(runId: string, step: number, valLoss: number, exact: number, probePct: number, over: Partial<CheckpointInfo> = {}): CheckpointInfo {
  return checkpoint(runId, step, { valLoss, extra: { exact_match: exact, probe_nll_delta_pct: probePct, token_f1: exact }, ...over });
}

// Val loss keeps falling, but the probe's loss rises (forgetting) from step 20 on.
const CKS: CheckpointInfo[] = [
  measured('r1', 10, 1.2, 0.2, 0.5),
  measured('r1', 20, 0.9, 0.5, 2.0),
  measured('r1', 30, 0.8, 0.6, 7.0, { isBest: true }),
  measured('r1', 40, 0.85, 0.6, 9.0, { isLatest: true }),
];

const QUALITY: RunQuality = {
  criterion: 'val_loss',
  bestStep: 30,
  recommendedStep: 20,
  finalStep: 40,
  stoppedEarly: true,
  stopReason: 'early stopping: validation loss did not improve by more than 0 for 1 evaluation (best 0.800 at step 30)',
  sentence: 'step 20: validation loss 0.900, general skill −2%; the final step 40 is 0.850 but −9%.',
  budgetPct: 5,
};

function decided(over: Partial<RunSummary> = {}): RunSummary {
  return { ...run('r1', { name: 'numbers', checkpoints: CKS }), quality: QUALITY, updatedAt: 5, ...over };
}

function setup(runs: RunSummary[] = [decided()], checkpoints: Record<string, CheckpointInfo[]> = { r1: CKS }, now?: () => number) {
  const worker = workerWithRuns(runs, checkpoints);
  worker.on('storage-report', () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: null }));
  worker.on('run-metrics', () => ({ points: [] }));
  const page = testPage(worker.client, { selection: null, model: MODEL, now });
  return { worker, ...page };
}

/** Opens r1 as the Runs panel does and waits for the reads to settle. */
async function opened(p: ReturnType<typeof setup>) {
  await p.actions.refreshRuns();
  await p.actions.openRun('r1');
  await tick(5);
}

const PATH_POINTS: TradeoffPoint[] = [
  { id: 'base', step: 0, label: 'base model', task: 2.0, forgetPct: 0, recipe: { fromStep: 40, alpha: 0 } },
  { id: 'step-40-x0.5', step: 40, label: 'step 40 × 0.5', task: 0.88, forgetPct: 1.0, recipe: { fromStep: 40, alpha: 0.5 } },
  { id: 'step-40-x1', step: 40, label: 'step 40', task: 0.85, forgetPct: 9.0, recipe: { fromStep: 40, alpha: 1 } },
  { id: 'step-40-last-half-base', step: 40, label: 'step 40, last half of layers rewound to base', task: 0.95, forgetPct: 3.0, recipe: { fromStep: 40, alpha: 1, layers: 'last-half', rewindTo: 'base' } },
  { id: 'step-30', step: 30, label: 'step 30', task: 0.8, forgetPct: 7.0 },
];
const EXPLORED: ExplorePathResult = {
  runId: 'r1',
  points: PATH_POINTS,
  recommendation: { pointId: 'step-40-x0.5', sentence: 'step 40 × 0.5: validation loss 0.880, general skill −1%; the final step 40 is 0.850 but −9%.' },
  ms: 50,
};

describe('the trade-off chart (src/store/tradeoff.ts)', () => {
  it('places checkpoints by the run criterion and forgetting, marks the front, best, final and the recommended one', () => {
    const v = tradeoffView(decided(), CKS, null);
    expect(v.points.map((p) => [p.id, p.task, p.forgetPct])).toEqual([
      ['step-10', 1.2, 0.5],
      ['step-20', 0.9, 2.0],
      ['step-30', 0.8, 7.0],
      ['step-40', 0.85, 9.0],
    ]);
    // Step 40 is dominated by step 30 (lower loss, less forgetting); the others trade off.
    expect(v.points.filter((p) => p.onFront).map((p) => p.step)).toEqual([10, 20, 30]);
    expect(v.points.find((p) => p.best)?.step).toBe(30);
    expect(v.points.find((p) => p.final)?.step).toBe(40);
    expect(v.recommended?.step).toBe(20);
    expect(v.source).toBe('run');
    expect(v.sentence).toBe(QUALITY.sentence);
    expect(rewindTarget(v)).toEqual({ kind: 'select', step: 20 });
  });

  it('by exact match when that is the criterion; without a decision it recommends from the checkpoints so far', () => {
    const r = { ...run('r1', { checkpoints: CKS }), quality: null, job: { ...run('r1').job!, train: { bestMetric: 'exact_match', forgetBudgetPct: 5 } } } as unknown as RunSummary;
    const v = tradeoffView(r, CKS, null);
    expect(v.criterion).toBe('exact_match');
    expect(v.points.map((p) => p.task)).toEqual([0.2, 0.5, 0.6, 0.6]);
    // Best exact match within the 5% budget: step 20 (step 30's 0.6 forgets 7%).
    expect(v.recommended?.step).toBe(20);
    expect(v.source).toBe('so-far');
    expect(v.sentence).toMatch(/^So far, step 20: exact match 50%, general skill −2%/);
    // A checkpoint saved between evaluations has no measurements: listed, not placed.
    const v2 = tradeoffView(r, [...CKS, checkpoint('r1', 45)], null);
    expect(v2.checkpointCount).toBe(5);
    expect(v2.measuredCount).toBe(4);
  });

  it('an explored path adds its points (a checkpoint re-measured stays that checkpoint) and its recommendation', () => {
    const v = tradeoffView(decided(), CKS, EXPLORED);
    expect(v.points.filter((p) => p.kind === 'path').map((p) => p.id)).toEqual(['base', 'step-40-x0.5', 'step-40-last-half-base']);
    expect(v.recommended).toMatchObject({ id: 'step-40-x0.5', kind: 'path' });
    expect(v.source).toBe('explored');
    expect(rewindTarget(v)).toMatchObject({ kind: 'apply', point: { recipe: { fromStep: 40, alpha: 0.5 } } });
    // The base model forgets nothing: it joins the front.
    expect(v.points.find((p) => p.id === 'base')?.onFront).toBe(true);
    // A recommendation of a checkpoint's own weights is that checkpoint.
    const own = tradeoffView(decided(), CKS, { ...EXPLORED, recommendation: { pointId: 'step-40-x1', sentence: 's' } });
    expect(rewindTarget(own)).toEqual({ kind: 'select', step: 40 });
    // The path stored with the run reads back the same way.
    expect(storedPath({ ...QUALITY, path: { points: PATH_POINTS, recommendation: EXPLORED.recommendation, measuredAt: 1 } as never })).toEqual({ points: PATH_POINTS, recommendation: EXPLORED.recommendation });
    expect(storedPath(QUALITY)).toBeNull();
  });

  it('nice ticks', () => {
    expect(niceTicks(0, 9.3, 5)).toEqual([0, 2, 4, 6, 8]);
    expect(niceTicks(-0.4, 1.1, 4)).toEqual([0, 0.5, 1]);
    expect(niceTicks(-3, 12, 5)).toEqual([0, 5, 10]);
    expect(niceTicks(-3.2, 1, 4)).toEqual([-2, 0]);
    expect(niceTicks(0.8, 1.2, 4)).toEqual([0.8, 0.9, 1, 1.1, 1.2]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});

describe('the live series get the evaluation measurements', () => {
  function metrics(step: number): StepMetrics {
    return { step, totalSteps: 4, epoch: step / 4, loss: 2 - step * 0.1, smoothLoss: 2, lr: 1e-3, gradNorm: 1, tokens: 10, tokensPerSec: 100, etaSec: 1, memory: { numTensors: 1, numBytes: 1 }, backend: 'wasm' };
  }
  const evalAt = (step: number, probe: number): EvalMetrics => ({
    step,
    valLoss: 1 / step,
    valPpl: Math.exp(1 / step),
    tokens: 10,
    extra: { probe_nll_delta_pct: probe, exact_match: step / 4, token_f1: 0.5 },
    details: { generation: { confusion: { labels: ['a', 'b'], counts: [[2, 0, 0], [1, 1, 0]] } }, cka: { layers: [0.99, 0.9] } },
  });

  it('streamed during training and read back for a stored run', async () => {
    const p = setup([run('r2')], { r2: [] });
    p.worker.on('train', async (_payload, ctx) => {
      ctx.emit('run', { runId: 'r2', name: 'r2', startStep: 0, totalSteps: 4, trainableParams: 10, trainExamples: 4, valExamples: 2, backend: 'wasm', config: {} as never, resumedFrom: null });
      for (const s of [1, 2, 3, 4]) {
        await tick(1);
        ctx.emit('metrics', metrics(s));
        if (s % 2 === 0) ctx.emit('eval', evalAt(s, s * 1.5));
      }
      await tick(1);
      return { runId: 'r2', name: 'r2', reason: 'done', step: 4, totalSteps: 4, finalTrainLoss: 1.6, finalValLoss: 0.25, checkpoint: null, resumedFrom: null, stoppedBy: null, quality: null, ms: 5, tokensPerSecond: 10 };
    });
    patch(p.store, 'data', { result: { datasetId: 'd', report: { name: 'd', split: { train: 4, val: 2 } } as never, stored: true, storageError: null, ms: 1 } });
    await p.actions.startTraining();
    const live = p.store.getState().live;
    expect(live.series.step).toEqual([1, 2, 3, 4]);
    expect(live.series.probe).toEqual([null, 3, null, 6]);
    expect(live.series.exact).toEqual([null, 0.5, null, 1]);
    expect(live.series.f1).toEqual([null, 0.5, null, 0.5]);
    expect(live.series.label).toEqual([null, null, null, null]);
    expect(live.lastEval?.details).toEqual(evalAt(4, 6).details);

    // The same run opened from the list: its stored points, eval points with extra and details.
    const q = setup([run('r2')], { r2: [] });
    q.worker.on('run-metrics', () => ({
      points: [1, 2].flatMap((s) => [
        { type: 'step' as const, step: s, epoch: 0, loss: 1, smoothLoss: 1, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
        ...(s === 2 ? [{ type: 'eval' as const, ...evalAt(2, -0.5) }] : []),
      ]),
    }));
    await q.actions.openRun('r2');
    expect(q.store.getState().live.series.probe).toEqual([null, -0.5]);
    expect(q.store.getState().live.lastEval?.extra?.exact_match).toBe(0.5);
    expect(q.store.getState().live.lastEval?.details).toEqual(evalAt(2, -0.5).details);
  });
});

describe('trade-off actions (src/app/tradeoff.ts)', () => {
  it('"Rewind to recommended" selects the recommended checkpoint; Compare and Export then name it', async () => {
    const p = setup();
    await opened(p);
    expect(selectedCheckpoint(p.store.getState())).toEqual({ runId: 'r1', step: null });
    await p.actions.rewindToRecommended();
    await tick(5);
    expect(selectedCheckpoint(p.store.getState())).toEqual({ runId: 'r1', step: 20 });
    expect(p.store.getState().selectedRun.run?.checkpoint?.step).toBe(20);
    expect(p.worker.callsOf('apply-recipe')).toHaveLength(0);
  });

  it('without a recommendation it says so and selects nothing', async () => {
    // Its one checkpoint was saved between evaluations: nothing measured.
    const ck = checkpoint('r1', 5, { valLoss: null });
    const p = setup([{ ...run('r1', { checkpoints: [ck] }), quality: null }], { r1: [ck] });
    await opened(p);
    await p.actions.rewindToRecommended();
    expect(p.store.getState().tradeoff.apply).toMatchObject({ phase: 'error', error: { code: 'NOT_FOUND', message: 'There is no recommended checkpoint yet.' } });
    expect(selectedCheckpoint(p.store.getState())).toEqual({ runId: 'r1', step: null });
  });

  it('explores the path with progress and ETA, shows its points and recommendation, then applies a path point and selects it', async () => {
    let t = 1000;
    const runs = [decided()];
    const cks: Record<string, CheckpointInfo[]> = { r1: CKS };
    const p = setup(runs, cks, () => t);
    const w = p.worker;
    const progressSeen: unknown[] = [];
    w.on('explore-path', async (payload, ctx) => {
      expect(payload).toEqual({ runId: 'r1' });
      for (let i = 1; i <= 4; i++) {
        t += 1000;
        ctx.emit('progress', { file: PATH_POINTS[i - 1]!.label, loaded: i, total: 4, fraction: i / 4 });
        await tick(2);
      }
      // The worker stores the path with the run.
      runs[0] = { ...runs[0]!, quality: { ...QUALITY, path: { points: PATH_POINTS, recommendation: EXPLORED.recommendation, measuredAt: 1 } as never }, updatedAt: 6 };
      return EXPLORED;
    });
    const branchCk = checkpoint('r1b', 40, { pinned: true, isLatest: true, valLoss: 0.88, extra: { probe_nll_delta_pct: 1 } });
    w.on('apply-recipe', (payload) => {
      expect(payload).toEqual({ runId: 'r1', recipe: { fromStep: 40, alpha: 0.5 } });
      const branch: RunSummary = { ...run('r1b', { name: 'numbers (step 40, × 0.5)', checkpoints: [branchCk] }), parentRunId: 'r1', parentCheckpointStep: 40, recipe: { fromStep: 40, alpha: 0.5 } };
      runs.push(branch);
      cks.r1b = [branchCk];
      return { run: branch, checkpoint: branchCk };
    });
    await opened(p);

    const exploring = p.actions.explorePath();
    await tick(1);
    expect(p.store.getState().tradeoff.explore).toMatchObject({ phase: 'busy', runId: 'r1', startedAt: 1000 });
    await tick(5);
    progressSeen.push(p.store.getState().tradeoff.explore.progress);
    await exploring;
    expect(progressSeen[0]).toMatchObject({ total: 4 });
    expect(p.store.getState().tradeoff.explore).toMatchObject({ phase: 'ready', progress: null, result: { recommendation: { pointId: 'step-40-x0.5' } } });
    // The runs list was read again (the stored path came with it).
    expect(p.store.getState().runs.list[0]!.quality?.path).toBeTruthy();

    await p.actions.rewindToRecommended();
    await tick(5);
    expect(p.worker.callsOf('apply-recipe')).toHaveLength(1);
    const s = p.store.getState();
    expect(selectedCheckpoint(s)).toEqual({ runId: 'r1b', step: 40 });
    expect(s.runs.list.map((r) => r.id)).toContain('r1b');
    expect(s.tradeoff.apply).toMatchObject({ phase: 'ready', made: { runId: 'r1b', step: 40 } });
    expect(s.selectedRun.run).toMatchObject({ runId: 'r1b', runName: 'numbers (step 40, × 0.5)', checkpoint: { step: 40 } });
    // The chart stays the parent's (the branch is one of its points), read for the section itself.
    expect(tradeoffRunId(s)).toBe('r1');
    expect(tradeoffCheckpoints(s)).toMatchObject({ phase: 'ready' });
    expect(tradeoffCheckpoints(s).list.map((c) => c.step)).toEqual([10, 20, 30, 40]);

    // The same point again (after picking another checkpoint): its branch holds it already, nothing is stored twice.
    await p.actions.openRun('r1');
    p.actions.selectCheckpoint('r1', 10);
    await p.actions.applyPoint('step-40-x0.5');
    await tick(5);
    expect(p.worker.callsOf('apply-recipe')).toHaveLength(1);
    expect(selectedCheckpoint(p.store.getState())).toEqual({ runId: 'r1b', step: 40 });
    // A checkpoint point is selected, never applied.
    await p.actions.applyPoint('step-10');
    expect(selectedCheckpoint(p.store.getState())).toEqual({ runId: 'r1', step: 10 });
    expect(p.worker.callsOf('apply-recipe')).toHaveLength(1);
  });

  it('reports the measured progress with an ETA, and Cancel stops the worker and keeps nothing', async () => {
    let t = 0;
    const page = setup(undefined, undefined, () => t);
    const p = page;
    p.worker.cancellable = (kind) => kind === 'explore-path';
    let stoppedAt: number | null = null;
    p.worker.on('explore-path', async (_payload, ctx) => {
      for (let i = 1; i <= 10; i++) {
        if (ctx.cancelled()) {
          stoppedAt = i;
          throw new WorkerFailure({ code: 'CANCELLED', message: 'Exploring the path was cancelled.' });
        }
        t += 2000;
        ctx.emit('progress', { file: `point ${i}`, loaded: i, total: 10, fraction: i / 10 });
        await tick(3);
      }
      return EXPLORED;
    });
    await opened(page);
    const exploring = page.actions.explorePath();
    await tick(12);
    const prog = page.store.getState().tradeoff.explore.progress!;
    expect(prog.done).toBeGreaterThanOrEqual(2);
    expect(prog.label).toBe(`point ${prog.done}`);
    // 2 s per point: the first point's rate counts from the start, later points' from the first point.
    expect(prog.etaMs).toBeCloseTo((10 - prog.done) * 2000, 6);
    await page.actions.cancelExplore();
    await exploring;
    await tick(10);
    expect(stoppedAt).not.toBeNull();
    expect(page.worker.callsOf('cancel').length).toBe(1);
    expect(page.store.getState().tradeoff.explore).toMatchObject({ phase: 'idle', progress: null, result: null, cancelled: 'Cancelled: no point of the path was kept.' });
  });

  it('an error of explore-path (the run is training) is shown, not swallowed', async () => {
    const p = setup();
    p.worker.on('explore-path', () => {
      throw new WorkerFailure({ code: 'BUSY', message: 'This run is training.', hint: 'Wait for it to finish.' });
    });
    await opened(p);
    await p.actions.explorePath();
    expect(p.store.getState().tradeoff.explore).toMatchObject({ phase: 'error', error: { code: 'BUSY', message: 'This run is training.' } });
  });

  it('the runs list gets the checkpoints of each decided run\'s best and recommended steps', async () => {
    const p = setup([decided(), { ...run('r3'), quality: null }]);
    await p.actions.refreshRuns();
    await tick(5);
    const f = p.store.getState().runs.figures;
    expect(Object.keys(f)).toEqual(['r1']);
    expect(f.r1!.checkpoints.map((c) => c.step)).toEqual([20, 30]);
    // Read once per version of the run.
    await p.actions.refreshRuns();
    await tick(5);
    expect(p.worker.callsOf('list-checkpoints').filter((c) => c.payload.runId === 'r1')).toHaveLength(1);
  });
});
