// The iterate panels rendered to HTML in Node (react-dom/server) on a scripted worker: two runs picked and
// compared (settings that differ highlighted, figures with the best marked, held-out outputs per run with
// markup escaped, a run whose outputs failed says why), the Runs panel's ticks, order and parent, and the
// record editor (the record, a refused draft's reason, pending edits, the saved version and Continue).
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { CompareResult, RunMetricPoint } from '../../protocol/messages';
import { createAppStore, patch } from '../../store/store';
import { tick, WorkerFailure } from '../../testing/fake-worker';
import { testPage, type TestPage } from '../../testing/page';
import { checkpoint, COMPARE_RESULT, MODEL, run, workerWithRuns } from '../../testing/studio-fixtures';
import { UiContext } from '../context';
import { RunsPanel } from '../RunsPanel';
import { DataFixPanel } from './DataFixPanel';
import { RunsComparePanel } from './RunsCompareView';

const html = (panel: FunctionComponent, p: TestPage) =>
  renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(panel)));

const points = (valLoss: number): RunMetricPoint[] => [
  { type: 'step', step: 1, epoch: 0, loss: 3, smoothLoss: 3, lr: 1e-3, gradNorm: 1, tokens: 40, tokensPerSec: 1 },
  { type: 'step', step: 2, epoch: 0, loss: 2.5, smoothLoss: 2.8, lr: 1e-3, gradNorm: 1, tokens: 40, tokensPerSec: 1 },
  { type: 'eval', step: 2, valLoss, valPpl: Math.exp(valLoss), tokens: 9 },
];

async function comparedPage(failSecond = false): Promise<TestPage> {
  const CKS = { r1: [checkpoint('r1', 2, { isLatest: true })], r2: [checkpoint('r2', 2, { isLatest: true })] };
  const r1 = run('r1', { name: 'numbers', checkpoints: CKS.r1 });
  const r2 = run('r2', { name: 'numbers fixed', checkpoints: CKS.r2 });
  r2.job = { ...r2.job!, data: { ...r2.job!.data, name: 'numbers.v2.jsonl', datasetId: 'd2' }, startFrom: { runId: 'r1', step: 2 } };
  r2.job.train = { ...r2.job.train, lr: 5e-4 };
  r1.bestValLoss = 2.5;
  r2.bestValLoss = 1.5;
  r2.updatedAt = 1;
  const worker = workerWithRuns([r1, r2], CKS);
  worker.on('run-metrics', (p) => ({ points: points(p.runId === 'r1' ? 2.5 : 1.5) }));
  worker.on('compare-heldout', (p): CompareResult => {
    if (p.runId === 'r2' && failSecond) throw new WorkerFailure({ code: 'NO_MODEL', message: 'No model is loaded.' });
    if (p.runId === 'r1') return { ...COMPARE_RESULT, runId: 'r1', step: 2 };
    return { ...COMPARE_RESULT, runId: 'r2', step: 2, rows: COMPARE_RESULT.rows.map((r) => (r.line === 9 ? { ...r, expected: '8', tuned: '<i>8</i>' } : r)) };
  });
  const p = testPage(worker.client, { model: MODEL });
  await p.actions.refreshRuns();
  await tick(5);
  p.actions.pickRun('r1', true);
  p.actions.pickRun('r2', true);
  await p.actions.compareRuns();
  return p;
}

describe('runs compared side by side (server-rendered)', () => {
  it('the settings that differ highlighted, the figures with the best marked, each run\u2019s outputs escaped, the fixed answer shown', async () => {
    const p = await comparedPage();
    const out = html(RunsComparePanel, p);
    expect(out).toContain('aria-label="Side-by-side comparison of 2"');
    expect(out).toContain('Runs compared (2)');
    // Differing settings only: the dataset version, where it started, the learning rate.
    expect(out).toMatch(/<tr class="differs" data-testid="setting-row" data-setting="dataset"><th scope="row">dataset<span class="visually-hidden"> \(differs\)<\/span><\/th><td>numbers<\/td><td>numbers.v2.jsonl<\/td><\/tr>/);
    expect(out).toContain('data-setting="started from"');
    expect(out).toContain('<td>continued from numbers at step 2</td>');
    expect(out).toContain('data-setting="lr"');
    expect(out).not.toContain('data-setting="batchSize"');
    // Best validation loss: run 2's 1.5000 marked as the best.
    expect(out).toMatch(/best validation loss<\/th><td class="num"[^>]*>2.5000<small> at step 2<\/small><\/td><td class="num best"[^>]*>1.5000<small> at step 2<\/small><span class="visually-hidden"> \(best\)<\/span>/);
    // Held-out: two columns of outputs, markup as text, the fixed expected answer.
    expect(out).toContain('&lt;i&gt;8&lt;/i&gt;');
    expect(out).not.toContain('<i>8</i>');
    expect(out).toContain('(fixed between runs: “7” → “8”)');
    expect((out.match(/data-testid="example-output"/g) ?? []).length).toBe(4);
    expect(out).toContain('aria-label="Checkpoint of #1 numbers for the held-out outputs"');
    expect(out).toMatch(/data-testid="runs-overlay" data-series="4"/);
  });

  it('a run whose held-out outputs failed says why; the others are shown', async () => {
    const p = await comparedPage(true);
    expect(p.store.getState().runsCompare.view!.runs.map((r) => r.heldout.phase)).toEqual(['ready', 'error']);
    const out = html(RunsComparePanel, p);
    expect(out).toContain('The held-out outputs of #2 numbers fixed could not be made');
    expect(out).toContain('No model is loaded.');
    expect((out.match(/no outputs \(see above\)/g) ?? []).length).toBe(2);
    expect(out).not.toContain('held-out set');
  });

  it('the Runs panel: ticks, the Compare button, the parent, the order by best validation loss', async () => {
    const p = await comparedPage();
    let out = html(RunsPanel, p);
    expect(out).toContain('aria-label="Compare numbers"');
    expect(out).toMatch(/<button type="button" aria-describedby="[^"]+">Compare 2 runs<\/button>/);
    // A continued run names its parent in its lineage; a branch on a line of its own.
    expect(out).toContain('<span data-testid="run-lineage"> · started from numbers at step 2</span>');
    expect(out).not.toContain('run-parent');
    const branch = run('r3', { name: 'numbers from step 2' });
    Object.assign(branch, { parentRunId: 'r1', parentCheckpointStep: 2, updatedAt: 2 });
    patch(p.store, 'runs', { list: [...p.store.getState().runs.list, branch] });
    expect(html(RunsPanel, p)).toContain('<p class="run-parent" data-testid="run-parent">branch of numbers at step 2</p>');
    patch(p.store, 'runs', { list: p.store.getState().runs.list.filter((x) => x.id !== 'r3') });
    // Newest first: r1 (updatedAt 0 in the fixture) after r2.
    p.actions.setRunsSort('val-loss');
    out = html(RunsPanel, p);
    expect(out.indexOf('data-run-id="r2"')).toBeLessThan(out.indexOf('data-run-id="r1"'));
    p.actions.pickRun('r2', false);
    out = html(RunsPanel, p);
    expect(out).toMatch(/<button type="button" disabled="" aria-describedby="[^"]+">Compare runs<\/button>/);
    expect(out).toContain('Tick two or more runs to compare them (1 ticked).');
  });
});

describe('fix the data (server-rendered)', () => {
  it('the record in the editor, a refused draft with why, the pending edits, the saved version and Continue', async () => {
    const CKS = { r1: [checkpoint('r1', 6, { isLatest: true })] };
    const worker = workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
    worker.on('dataset-text', (q) => ({ datasetId: q.datasetId, name: 'numbers.jsonl', fingerprint: 'sha256:1', text: '{"prompt":"a","completion":"1"}\n{"prompt":"b","completion":"9"}\n' }));
    const p = testPage(worker.client, { model: MODEL });
    await p.actions.refreshRuns();
    await p.actions.openRecord(2, 'heldout', { runId: 'r1', step: 6 });
    let out = html(DataFixPanel, p);
    expect(out).toContain('Fix the data: numbers.jsonl');
    expect(out).toContain('Record on line 2 (from the held-out table)');
    expect(out).toContain('&quot;completion&quot;: &quot;9&quot;');
    p.actions.setRecordDraft('{"prompt": "b",');
    p.actions.applyRecord();
    out = html(DataFixPanel, p);
    expect(out).toMatch(/role="alert">Not valid JSON/);
    expect(out).toContain('aria-invalid="true"');
    p.actions.setRecordDraft('{"prompt": "b", "completion": "2"}');
    p.actions.applyRecord();
    out = html(DataFixPanel, p);
    expect(out).toContain('Not saved yet: line 2 edited. Saving makes <strong>numbers.v2.jsonl</strong>');
    // A record of another dataset while edits are pending: refused with why, the edits kept.
    const r2 = run('r2', { name: 'other' });
    r2.job = { ...r2.job!, data: { ...r2.job!.data, datasetId: 'd-other' } };
    patch(p.store, 'runs', { list: [...p.store.getState().runs.list, r2] });
    await p.actions.openRecord(1, 'heldout', { runId: 'r2', step: 1 });
    expect(p.store.getState().dataFix.error?.message).toBe('1 edit of "numbers.jsonl" is not saved yet, and this record is in another dataset.');
    expect(Object.keys(p.store.getState().dataFix.edits)).toEqual(['2']);
    patch(p.store, 'dataFix', { error: null });
    // As saveDataVersion leaves it once the doctor read the new version.
    patch(p.store, 'dataFix', { saved: { datasetId: 'd2', name: 'numbers.v2.jsonl', result: { datasetId: 'd2', report: { split: { train: 1, val: 1 }, errorCount: 0 } as never, stored: true, storageError: null, ms: 1 } }, edits: {} });
    out = html(DataFixPanel, p);
    expect(out).toContain('Saved <strong>numbers.v2.jsonl</strong> (1 training, 1 validation examples)');
    expect(out).toMatch(/data-testid="continue-fixed">Continue from numbers at step 6 with numbers.v2.jsonl<\/button>/);
  });
});
