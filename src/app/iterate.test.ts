// The iterate loop through the page's actions (no React) on the real worker in Node with tabtune-tiny:
// train, open a held-out record, fix it, save it as a new version (the original kept, each run naming the
// version it trained on), continue from the first run's checkpoint on it (lineage stored), and compare the
// two runs side by side (curves, the settings that differ, each run's held-out outputs).
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TabtuneStore } from '../storage/index';
import { exampleRows, overlayColumns, runCurves, runFigures, runSettings, settingsTable } from '../store/runs-compare';
import { testPage } from '../testing/page';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl'), 'utf8');

async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('fix the data and retrain, then compare the runs (tabtune-tiny, real worker)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
  });
  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('fixes a held-out record as v2, continues from the checkpoint on it, and compares both runs', { timeout: 240_000 }, async () => {
    const summary = await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { store, actions } = testPage(w.client, { model: summary });
    const state = () => store.getState();
    const small = { steps: 4, batchSize: 4, saveEvery: 2, evalEvery: 2, warmupSteps: 1, seed: 1, probeSamples: 0, genEvalExamples: 0, earlyStopPatience: 0 };
    actions.setTrainConfig({ ...state().train.config, ...small });

    // Run 1 on the file as given.
    await actions.inspectFile(new File([DATA], 'planted.jsonl'));
    expect(state().data.result!.report).toMatchObject({ name: 'planted.jsonl', errorCount: 1 });
    const originalId = state().data.result!.datasetId;
    await actions.startTraining();
    expect(state().train.phase).toBe('done');
    const first = state().train.outcome!.runId;

    // Its held-out table; a row's record opened from it.
    await actions.compareHeldout();
    const rows = state().compare.heldout.result!.rows;
    expect(rows.length).toBe(4);
    const bad = rows[0]!;
    await actions.openRecord(bad.line, 'heldout', { runId: first, step: 4 });
    const open = state().dataFix.open!;
    expect(open).toMatchObject({ line: bad.line, origin: 'heldout' });
    expect(JSON.parse(open.draft)).toEqual({ prompt: bad.prompt, completion: bad.expected });

    // A draft that is not JSON is refused with why, and nothing is kept.
    actions.setRecordDraft('{"prompt": "x",}');
    actions.applyRecord();
    expect(state().dataFix.open!.problem).toMatch(/^Not valid JSON/);
    expect(state().dataFix.edits).toEqual({});
    actions.setRecordDraft(JSON.stringify({ prompt: bad.prompt, completion: `${bad.expected} (fixed)` }, null, 2));
    actions.applyRecord();
    expect(state().dataFix.edits).toEqual({ [bad.line]: JSON.stringify({ prompt: bad.prompt, completion: `${bad.expected} (fixed)` }) });

    // The doctor's problem (line 17, invalid JSON) removed from the list's entry point.
    await actions.openRecord(17, 'doctor');
    expect(state().dataFix.open!.draft).toContain('"completion": "101",}');
    actions.removeRecord();
    expect(actions.fixedJsonl()!.filename).toBe('planted.v2.jsonl');

    await actions.saveDataVersion();
    const saved = state().dataFix.saved!;
    expect(saved.name).toBe('planted.v2.jsonl');
    expect(saved.result.report).toMatchObject({ name: 'planted.v2.jsonl', total: 40, records: 40, errorCount: 0 });
    expect(saved.datasetId).not.toBe(originalId);
    expect(state().data.result!.datasetId).toBe(saved.datasetId);
    const v2 = await w.client.request('dataset-text', { datasetId: saved.datasetId });
    expect(v2.text.split('\n').filter(Boolean)).toHaveLength(40);
    expect(v2.text).toContain(`${bad.expected} (fixed)`);
    expect(actions.fixedJsonl()).toEqual({ filename: 'planted.v2.jsonl', text: v2.text });
    // The original is kept as it was.
    expect((await w.client.request('dataset-text', { datasetId: originalId })).text).toBe(DATA);

    // Continue from run 1's checkpoint at step 4 on v2: a new run with its lineage and its dataset version.
    await actions.continueWithFixedData();
    expect(state().train.phase).toBe('done');
    const second = state().train.outcome!.runId;
    expect(second).not.toBe(first);
    const runs = (await w.client.request('list-runs', {})).runs;
    const r2 = runs.find((r) => r.id === second)!;
    const r1 = runs.find((r) => r.id === first)!;
    expect(r2.job!.startFrom).toEqual({ runId: first, step: 4 });
    expect(r2.job!.data).toMatchObject({ datasetId: saved.datasetId, name: 'planted.v2.jsonl' });
    expect(r1.job!.data).toMatchObject({ datasetId: originalId, name: 'planted.jsonl' });
    expect(r2.dataset!.fingerprint).not.toBe(r1.dataset!.fingerprint);

    // Both runs compared.
    await until(() => state().runs.list.length === 2);
    actions.pickRun(first, true);
    actions.pickRun(second, true);
    await actions.compareRuns();
    const view = state().runsCompare.view!;
    expect(view.runs.map((r) => [r.runId, r.metrics.phase, r.heldout.phase])).toEqual([
      [first, 'ready', 'ready'],
      [second, 'ready', 'ready'],
    ]);
    expect(view.runs[0]!.steps).toEqual([2, 4]);
    const curves = view.runs.map((r) => runCurves(r.metrics.points));
    expect(curves.map((c) => c.steps)).toEqual([
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ]);
    const overlay = overlayColumns(
      view.runs.map((r, i) => ({ runId: r.runId, label: `#${i + 1}`, curves: curves[i]!, offset: i === 1 ? { step: 4, tokens: curves[0]!.tokens[3]! } : { step: 0, tokens: 0 } })),
      'step',
    );
    expect(overlay.x).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const list = state().runs.list;
    const settings = settingsTable(view.runs.map((r) => runSettings(list.find((x) => x.id === r.runId)!, list)));
    const differs = Object.fromEntries(settings.map((s) => [s.name, s.values]));
    expect(differs['dataset']).toEqual(['planted.jsonl', 'planted.v2.jsonl']);
    expect(differs['started from']).toEqual(['the base model', `continued from ${r1.name} at step 4`]);
    expect(differs['lr']).toBeUndefined();
    const figs = view.runs.map((r) => runFigures(r.metrics.points, r.heldout.result));
    for (const f of figs) expect(f).toMatchObject({ finalStep: 4, bestValLoss: expect.any(Number), heldout: { exact: expect.any(Number) } });
    // The same held-out prompts (the fix changed an answer, not the split); the fixed answer is marked.
    const examples = exampleRows(view.runs.map((r) => r.heldout.result));
    expect(examples).toHaveLength(4);
    const fixed = examples.find((e) => e.prompt === bad.prompt)!;
    expect(fixed.expectedDiffers).toBe(true);
    expect(fixed.cells.map((c) => c!.expected)).toEqual([bad.expected, `${bad.expected} (fixed)`]);
    expect(examples.filter((e) => e.expectedDiffers)).toHaveLength(1);

  });
});
