import { describe, expect, it } from 'vitest';
import type { CheckpointInfo, CompareResult, CompareRow, RunMetricPoint, RunSummary } from '../protocol/messages';
import { defaultTrainConfig } from '../train/config';
import {
  bestOf,
  compareRunsBlocker,
  curveOffset,
  exampleRows,
  heldoutScore,
  overlayColumns,
  parentText,
  runCurves,
  runFigures,
  runParent,
  runSettings,
  settingsTable,
  sortRuns,
  togglePicked,
} from './runs-compare';

const step = (s: number, loss: number, tokens = 10): RunMetricPoint => ({ type: 'step', step: s, epoch: 0, loss: loss + 0.05, smoothLoss: loss, lr: 1e-3, gradNorm: 1, tokens, tokensPerSec: 100 });
const evalAt = (s: number, valLoss: number, extra?: Record<string, number>): RunMetricPoint => ({ type: 'eval', step: s, valLoss, valPpl: Math.exp(valLoss), tokens: 99, ...(extra ? { extra } : {}) });

function ckpt(step: number, extra: Record<string, number> | null): CheckpointInfo {
  return { runId: 'r', step, createdAt: 0, sizeBytes: 1, chunkCount: 1, trainLoss: null, valLoss: null, extra, pinned: false, isBest: false, isLatest: false };
}

function run(id: string, o: Partial<RunSummary> = {}): RunSummary {
  return {
    id,
    name: `run ${id}`,
    createdAt: 0,
    updatedAt: 0,
    config: null,
    dataset: { fingerprint: `sha256:${id.repeat(20)}`, name: 'd.jsonl', datasetId: 'ds' },
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
    ...o,
  };
}

function job(train: Partial<ReturnType<typeof defaultTrainConfig>>, data: { name: string; trainExamples?: number }, startFrom?: { runId: string; step: number }): RunSummary['job'] {
  return {
    kind: 'tabtune-run',
    version: 1,
    train: { ...defaultTrainConfig('llama'), ...train },
    data: { datasetId: 'ds', valDatasetId: null, name: data.name, requested: {}, options: { stop: { stopTokenId: null, stopStrings: [] } }, trainExamples: data.trainExamples ?? 36, valExamples: 4 },
    model: { name: 'tiny', label: 'tabtune-tiny', arch: 'llama', numParams: 1000, vocabSize: 50, baseModel: 'tiny' },
    ...(startFrom ? { startFrom } : {}),
  };
}

function row(prompt: string, expected: string, tuned: string, line = 1): CompareRow {
  return { line, prompt, expected, base: '', tuned, baseExact: false, tunedExact: tuned === expected, baseOverlap: 0, tunedOverlap: tuned === expected ? 1 : 0, baseLoss: 2, tunedLoss: 1 };
}

function result(step: number, rows: CompareRow[]): CompareResult {
  const exact = rows.filter((r) => r.tunedExact).length / rows.length;
  return { runId: 'x', step, rows, totals: { n: rows.length, base: { exact: 0, overlap: 0, loss: 2 }, tuned: { exact, overlap: exact, loss: 1 } }, ms: 1 };
}

describe('picking and ordering runs', () => {
  it('ticks and unticks runs in the order they were ticked; two known runs are needed', () => {
    let p = togglePicked([], 'a', true);
    p = togglePicked(p, 'b', true);
    p = togglePicked(p, 'a', true);
    expect(p).toEqual(['b', 'a']);
    expect(togglePicked(p, 'b', false)).toEqual(['a']);
    expect(compareRunsBlocker(['a'], [run('a')])).toMatch(/two or more runs.*1 ticked/);
    expect(compareRunsBlocker(['a', 'gone'], [run('a')])).toMatch(/1 ticked/);
    expect(compareRunsBlocker(['a', 'b'], [run('a'), run('b')])).toBeNull();
  });

  it('sorts by best validation loss (lowest first) and by held-out exact match (highest first), runs without the figure last', () => {
    const list = [
      run('a', { updatedAt: 3, bestValLoss: 1.5 }),
      run('b', { updatedAt: 2, bestValLoss: 0.9 }),
      run('c', { updatedAt: 1, bestValLoss: null }),
      run('d', { updatedAt: 4, bestValLoss: 1.2, latestCheckpoint: ckpt(10, { exact_match: 0.25 }) }),
    ];
    expect(sortRuns(list, 'newest').map((r) => r.id)).toEqual(['d', 'a', 'b', 'c']);
    expect(sortRuns(list, 'val-loss').map((r) => r.id)).toEqual(['b', 'd', 'a', 'c']);
    const figures = { a: { checkpoints: [ckpt(5, { exact_match: 0.5 }), ckpt(9, { exact_match: 0.75 })] }, b: { checkpoints: [ckpt(5, { val_loss: 1 })] } };
    expect(heldoutScore(list[0]!, figures.a.checkpoints)).toBe(0.75);
    expect(heldoutScore(list[1]!, figures.b.checkpoints)).toBeNull();
    // a 0.75, d 0.25; b and c have none: newest first among them.
    expect(sortRuns(list, 'heldout', figures).map((r) => r.id)).toEqual(['a', 'd', 'b', 'c']);
    // A DPO run's loss (about 0.69 and falling) is not ranked against cross-entropy: DPO runs come after, in their own order.
    const dpo = (id: string, v: number) => ({ ...run(id, { updatedAt: 5, bestValLoss: v }), job: { train: { objective: 'dpo' } } });
    expect(sortRuns([...list, dpo('p', 0.6), dpo('q', 0.2)], 'val-loss').map((r) => r.id)).toEqual(['b', 'd', 'a', 'c', 'q', 'p']);
  });

  it("names a run's parent: continued from (startFrom) or a branch, and a deleted parent", () => {
    const runs = [run('p', { name: 'first' })];
    const cont = run('c', { job: job({}, { name: 'd.v2.jsonl' }, { runId: 'p', step: 10 }) });
    expect(parentText(runParent(cont, runs))).toBe('continued from first at step 10');
    const branch = run('b', { parentRunId: 'p', parentCheckpointStep: 20 });
    expect(parentText(runParent(branch, runs))).toBe('branch of first at step 20');
    expect(parentText(runParent(branch, []))).toBe('branch of a deleted run at step 20');
    expect(parentText(runParent(run('x'), runs))).toBeNull();
  });
});

describe('curves', () => {
  it('counts training tokens seen, and places evaluations at the tokens seen by their step; a step stored twice counts once', () => {
    const c = runCurves([step(1, 3, 10), step(2, 2.5, 12), evalAt(2, 2.8), step(2, 2.4, 12), step(3, 2, 8), evalAt(3, 2.6)]);
    expect(c.steps).toEqual([1, 2, 3]);
    expect(c.loss).toEqual([3, 2.4, 2]);
    expect(c.tokens).toEqual([10, 22, 30]);
    expect(c.evalSteps).toEqual([2, 3]);
    expect(c.val).toEqual([2.8, 2.6]);
    expect(c.evalTokens).toEqual([22, 30]);
  });

  it('overlays runs on one x axis with nulls where a run has no point; a continued run starts at its parent checkpoint', () => {
    const parent = runCurves([step(1, 3, 10), step(2, 2, 10), evalAt(2, 2.5)]);
    const child = runCurves([step(1, 1.5, 5), evalAt(1, 1.8)]);
    const childRun = run('c', { job: job({}, { name: 'd' }, { runId: 'p', step: 2 }) });
    const byRun = new Map([['p', parent]]);
    expect(curveOffset(childRun, byRun)).toEqual({ step: 2, tokens: 20 });
    expect(curveOffset(childRun, new Map())).toEqual({ step: 0, tokens: 0 });
    const runs = [
      { runId: 'p', label: '#1', curves: parent, offset: { step: 0, tokens: 0 } },
      { runId: 'c', label: '#2', curves: child, offset: curveOffset(childRun, byRun) },
    ];
    const bySteps = overlayColumns(runs, 'step');
    expect(bySteps.x).toEqual([1, 2, 3]);
    expect(bySteps.series.map((s) => [s.label, s.values])).toEqual([
      ['#1 · training loss', [3, 2, null]],
      ['#1 · validation loss', [null, 2.5, null]],
      ['#2 · training loss', [null, null, 1.5]],
      ['#2 · validation loss', [null, null, 1.8]],
    ]);
    const byTokens = overlayColumns(runs, 'tokens');
    expect(byTokens.x).toEqual([10, 20, 25]);
    expect(byTokens.series[2]!.values).toEqual([null, null, 1.5]);
  });
});

describe('settings and figures', () => {
  it('lists the settings that differ (method, data version, lineage, rank, lr), and with `all` the shared ones after them', () => {
    const runs = [run('a', { name: 'first' })];
    const a = run('a', { job: job({ lr: 1e-3 }, { name: 'd.jsonl' }) });
    const b = run('b', { job: job({ lr: 5e-4, lora: { ...defaultTrainConfig('llama').lora, r: 16 } }, { name: 'd.v2.jsonl', trainExamples: 35 }, { runId: 'a', step: 10 }) });
    const rows = settingsTable([runSettings(a, runs), runSettings(b, runs)]);
    const names = rows.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['method', 'dataset', 'dataset fingerprint', 'examples (train + validation)', 'started from', 'lr', 'lora.r']));
    expect(names).not.toContain('batchSize');
    expect(rows.every((r) => r.differs)).toBe(true);
    expect(rows.find((r) => r.name === 'method')!.values).toEqual(['SFT · LoRA r8', 'SFT · LoRA r16']);
    expect(rows.find((r) => r.name === 'started from')!.values).toEqual(['the base model', 'continued from first at step 10']);
    expect(rows.find((r) => r.name === 'dataset fingerprint')!.values).toEqual(['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
    const all = settingsTable([runSettings(a, runs), runSettings(b, runs)], true);
    expect(all.length).toBeGreaterThan(rows.length);
    expect(all.slice(0, rows.length).every((r) => r.differs)).toBe(true);
    expect(all.find((r) => r.name === 'batchSize')).toMatchObject({ differs: false });
  });

  it('reads final and best figures from the points and the held-out comparison; bestOf marks one winner, none on ties', () => {
    const f = runFigures([step(1, 3, 10), evalAt(1, 2.9, { exact_match: 0 }), step(2, 2, 10), evalAt(2, 2.1, { exact_match: 0.5 }), step(3, 1.5, 10), evalAt(3, 2.4, { exact_match: 0.25 })], result(3, [row('p', 'a', 'a'), row('q', 'b', 'c')]));
    expect(f).toEqual({
      finalStep: 3,
      finalTrainLoss: 1.55,
      finalValLoss: 2.4,
      bestValLoss: 2.1,
      bestValStep: 2,
      bestExact: 0.5,
      tokensSeen: 30,
      heldout: { step: 3, exact: 0.5, overlap: 0.5, loss: 1 },
    });
    expect(runFigures([], null)).toMatchObject({ finalStep: null, finalValLoss: null, bestValLoss: null, bestExact: null, tokensSeen: 0, heldout: null });
    expect(bestOf([2, 1, null], true)).toBe(1);
    expect(bestOf([2, 1, null], false)).toBe(0);
    expect(bestOf([1, 1], true)).toBeNull();
    expect(bestOf([null, null], true)).toBeNull();
  });
});

describe('held-out examples side by side', () => {
  it('matches examples by prompt across runs, marks differing outputs and an expected output fixed between runs', () => {
    const first = result(10, [row('one', '1', '1', 3), row('two', '9', '2', 5), row('three', '3', '4', 7)]);
    const second = result(20, [row('one', '1', '1', 3), row('two', '2', '2', 5), row('four', '4', '4', 9)]);
    const rows = exampleRows([first, second]);
    expect(rows.map((r) => r.prompt)).toEqual(['one', 'two', 'three', 'four']);
    expect(rows[0]).toMatchObject({ differ: false, expectedDiffers: false });
    expect(rows[1]).toMatchObject({ differ: false, expectedDiffers: true, expected: '9' });
    expect(rows[1]!.cells.map((c) => c && [c.output, c.exact, c.expected])).toEqual([
      ['2', false, '9'],
      ['2', true, '2'],
    ]);
    expect(rows[2]).toMatchObject({ differ: true });
    expect(rows[2]!.cells[1]).toBeNull();
    expect(rows[3]!.cells[0]).toBeNull();
    // A run whose outputs are not made yet: its cells are empty and nothing is marked as differing from it.
    expect(exampleRows([first, null]).every((r) => r.cells[1] === null)).toBe(true);
  });
});
