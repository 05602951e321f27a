// Other runs on the trade-off chart (LoRA against OFT, with and without replay, on the same data), through
// the controller's actions on the fake worker and rendered to HTML in Node: which runs are comparable and
// how a legend names them, their checkpoints read when ticked (and again when their listing changes), each
// run a series of its own colour and marker, the Pareto front over every run's points and the sentence
// that says whose points make it, the empty state and a failed read.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { CheckpointInfo, RunQuality, RunSummary, TrainConfig } from '../protocol/messages';
import { createAppStore } from '../store/store';
import { comparableRuns, comparisonView, overlayStyle, runSeriesLabel, tradeoffView } from '../store/tradeoff';
import { tick, WorkerFailure } from '../testing/fake-worker';
import { testPage, type TestPage } from '../testing/page';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { defaultTrainConfig } from '../train/config';
import { UiContext } from './context';
import { TradeoffPanel } from './TradeoffPanel';

const DATA = { fingerprint: 'sha256:numbers', name: 'numbers.jsonl', datasetId: 'd1' };
const ck = (runId: string, step: number, valLoss: number, probe: number | null) => checkpoint(runId, step, { valLoss, extra: probe === null ? null : { probe_nll_delta_pct: probe } });

let created = 0;
function trained(id: string, train: Partial<TrainConfig>, cks: CheckpointInfo[], over: Partial<RunSummary> = {}): RunSummary {
  const r = run(id, { checkpoints: cks });
  return { ...r, createdAt: ++created, dataset: DATA, job: { ...r.job!, train: { ...defaultTrainConfig('llama'), ...train } }, ...over };
}

// r1 (LoRA, shown): its own front is steps 10, 20, 30. r2 (OFT) beats each of them on both axes.
// r3 (LoRA with replay) forgets least at step 10 and has the lowest loss at step 20; step 30 has no probe.
const CK: Record<string, CheckpointInfo[]> = {
  r1: [ck('r1', 10, 1.2, 0.5), ck('r1', 20, 0.9, 2), ck('r1', 30, 0.8, 7), ck('r1', 40, 0.85, 9)],
  r2: [ck('r2', 10, 1.0, 0.4), ck('r2', 20, 0.75, 1.5), ck('r2', 30, 0.7, 3)],
  r3: [ck('r3', 10, 1.1, 0.1), ck('r3', 20, 0.6, 8), ck('r3', 30, 0.65, null)],
  other: [ck('other', 10, 0.1, 0)],
  em: [ck('em', 10, 0.1, 0)],
};
const QUALITY: RunQuality = { criterion: 'val_loss', bestStep: 30, recommendedStep: 20, finalStep: 40, stoppedEarly: false, stopReason: null, sentence: 'step 20: validation loss 0.900, general skill −2%.', budgetPct: 5 };

function runs(): RunSummary[] {
  return [
    trained('r1', { mode: 'lora' }, CK.r1!, { name: 'run A', quality: QUALITY }),
    trained('r2', { mode: 'oft' }, CK.r2!, { name: 'run B' }),
    trained('r3', { mode: 'lora', replayFraction: 0.1 }, CK.r3!, { name: 'run C' }),
    // Another dataset, another criterion, a branch holding a path point of r1: not comparable.
    trained('other', { mode: 'oft' }, CK.other!, { dataset: { ...DATA, fingerprint: 'sha256:words' } }),
    trained('em', { mode: 'oft', bestMetric: 'exact_match', genEvalExamples: 4 }, CK.em!),
    trained('branch', { mode: 'lora' }, [ck('branch', 40, 0.5, 0)], { parentRunId: 'r1', parentCheckpointStep: 40, recipe: { fromStep: 40, alpha: 0.5 } }),
  ];
}

async function page(list: RunSummary[], cks: Record<string, CheckpointInfo[]> = CK) {
  const w = workerWithRuns(list, cks);
  w.on('storage-report', () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: null }));
  w.on('run-metrics', () => ({ points: [] }));
  const p = testPage(w.client, { selection: null, model: MODEL });
  await p.actions.refreshRuns();
  await p.actions.openRun('r1');
  await tick(5);
  return { w, p };
}

const html = (p: TestPage) => renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(TradeoffPanel)));
const overlayPoints = (out: string) => [...out.matchAll(/data-testid="tradeoff-overlay-point" data-run-id="([^"]+)" data-point-id="([^"]+)"/g)].map((m) => `${m[1]}:${m[2]}`);

describe('comparable runs', () => {
  it('the same data and criterion, not the run itself nor a branch holding a path point; oldest first; named by method and replay', () => {
    const list = runs();
    const shown = list[0]!;
    expect(comparableRuns(list, shown).map((r) => r.id)).toEqual(['r2', 'r3']);
    expect(comparableRuns(list, { ...shown, dataset: null })).toEqual([]);
    expect(runSeriesLabel(shown)).toBe('run A · LoRA r8');
    expect(runSeriesLabel(list[1]!, shown)).toBe('run B · OFT b32');
    expect(runSeriesLabel(list[2]!, shown)).toBe('run C · LoRA r8 · replay 10%');
    const elsewhere = { ...list[1]!, job: { ...list[1]!.job!, model: { ...list[1]!.job!.model, name: 'tabtune-base' } } };
    expect(runSeriesLabel(elsewhere, shown)).toBe('run B · OFT b32 · tabtune-base');
    expect(overlayStyle(0)).not.toEqual(overlayStyle(1));
    // Runs of one name (named after their dataset) by their order.
    const twins = [list[1]!, { ...list[2]!, name: 'run B' }, list[0]!];
    expect(runSeriesLabel(twins[1]!, shown, twins)).toBe('run B #2 · LoRA r8 · replay 10%');
    expect(runSeriesLabel(twins[0]!, shown, twins)).toBe('run B #1 · OFT b32');
    expect(runSeriesLabel(shown, null, twins)).toBe('run A · LoRA r8');
  });

  it('the front over every shown run: whose points make it, the best loss and the least forgetting', () => {
    const list = runs();
    const v = tradeoffView(list[0]!, CK.r1!, null);
    expect(v.points.filter((p) => p.onFront).map((p) => p.id)).toEqual(['step-10', 'step-20', 'step-30']);
    const reads = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, { phase: 'ready' as const, list: CK[id]!, error: null, key: '' }]));
    const one = comparisonView(v, list[0]!, list, { runIds: ['r2'], reads: reads(['r2']) });
    expect(one.series.map((s) => [s.label, s.points.map((p) => `${p.id}${p.onFront ? '*' : ''}`)])).toEqual([['run B · OFT b32', ['step-10*', 'step-20*', 'step-30*']]]);
    expect([...one.mainFront]).toEqual([]);
    const both = comparisonView(v, list[0]!, list, { runIds: ['r3', 'r2', 'gone'], reads: reads(['r2', 'r3']) });
    expect(both.series.map((s) => s.runId)).toEqual(['r2', 'r3']);
    const r3 = both.series[1]!;
    expect(r3.points.map((p) => `${p.id}${p.onFront ? '*' : ''}`)).toEqual(['step-10*', 'step-20*']);
    expect([r3.unplaced, r3.checkpointCount, r3.onFront]).toEqual([1, 3, 2]);
    expect(both.sentence).toBe(
      'Pareto front of the 3 runs: run B · OFT b32: 3 points; run C · LoRA r8 · replay 10%: 2 points; run A · LoRA r8: none. ' +
        'Best validation loss: 0.600 (run C · LoRA r8 · replay 10%, step 20); least forgetting: general skill −0.1% (run C · LoRA r8 · replay 10%, step 10).',
    );
    // Nothing ticked: no series and no sentence.
    expect(comparisonView(v, list[0]!, list, { runIds: [], reads: {} })).toMatchObject({ series: [], sentence: null });
  });
});

describe('the Trade-off panel with other runs', () => {
  it('lists the comparable runs as checkboxes; ticking one reads its checkpoints and places them; unticking removes them', async () => {
    const { w, p } = await page(runs());
    let out = html(p);
    expect(out).toContain('<legend>Compare with other runs on this data</legend>');
    expect([...out.matchAll(/data-testid="tradeoff-compare-run" data-run-id="([^"]+)"/g)].map((m) => m[1])).toEqual(['r2', 'r3']);
    expect(out).toMatch(/<input type="checkbox" aria-describedby="[^"]+"\/><svg class="swatch"[^>]*style="color:#d55e00"><rect [^>]*class="dot"><\/rect><\/svg> run B · OFT b32<\/label>/);
    expect(out).toContain('run C · LoRA r8 · replay 10%</label>');
    expect(overlayPoints(out)).toEqual([]);
    expect(w.callsOf('list-checkpoints').filter((c) => c.payload.runId !== 'r1')).toEqual([]);
    // The shown run's own front.
    expect(out).toContain('aria-label="step 20: val loss 0.900, general skill −2% (recommended, on the Pareto front)"');

    await p.actions.setOverlayRun('r2', true);
    expect(w.callsOf('list-checkpoints').filter((c) => c.payload.runId === 'r2')).toHaveLength(1);
    out = html(p);
    expect(overlayPoints(out)).toEqual(['r2:step-10', 'r2:step-20', 'r2:step-30']);
    expect(out).toContain('aria-label="run B · OFT b32, step 20: val loss 0.750, general skill −1.5% (on the Pareto front of the runs shown)"');
    expect(out).toMatch(/<g class="series" style="color:#d55e00" data-run-id="r2">/);
    // run A's points are dominated now: not on the front any more, the front line goes through run B's.
    expect(out).toContain('aria-label="step 20: val loss 0.900, general skill −2% (recommended)"');
    expect(out).not.toMatch(/aria-label="step \d+: [^"]*on the Pareto front\)"/);
    expect(out).toMatch(/<input type="checkbox" aria-describedby="[^"]+" checked=""\/><svg class="swatch"[^>]*style="color:#d55e00">/);
    expect(out).toContain('3 of 3 checkpoints placed, 3 on the front');
    expect(out).toContain('Pareto front of the 2 runs: run B · OFT b32: 3 points; run A · LoRA r8: none.');
    // Every other point is a focusable button too.
    expect(out.match(/role="button" tabindex="0"/g)).toHaveLength(4 + 3);

    await p.actions.setOverlayRun('r3', true);
    out = html(p);
    expect(overlayPoints(out)).toEqual(['r2:step-10', 'r2:step-20', 'r2:step-30', 'r3:step-10', 'r3:step-20']);
    expect(out).toContain('2 of 3 checkpoints placed, 1 without the forgetting probe, 2 on the front');
    expect(out).toMatch(/<g class="series" style="color:#009e73" data-run-id="r3"><g class="pt other front" role="button"[^>]*><title>[^<]*<\/title><polygon /);

    await p.actions.setOverlayRun('r2', false);
    out = html(p);
    expect(overlayPoints(out)).toEqual(['r3:step-10', 'r3:step-20']);
    expect(out).toContain('Pareto front of the 2 runs: run A · LoRA r8: 2 points; run C · LoRA r8 · replay 10%: 2 points.');
    // Ticking again uses the read it holds (the run's listing has not changed).
    await p.actions.setOverlayRun('r2', true);
    expect(w.callsOf('list-checkpoints').filter((c) => c.payload.runId === 'r2')).toHaveLength(1);
  });

  it('reads a ticked run again when its listing changes (a new checkpoint)', async () => {
    const list = runs();
    const cks = { ...CK, r2: [...CK.r2!] };
    const { w, p } = await page(list, cks);
    await p.actions.setOverlayRun('r2', true);
    cks.r2.push(ck('r2', 40, 0.65, 2.5));
    const i = list.findIndex((r) => r.id === 'r2');
    list[i] = { ...list[i]!, checkpointCount: 4, latestCheckpoint: cks.r2.at(-1)! };
    await p.actions.refreshRuns();
    await tick(5);
    expect(w.callsOf('list-checkpoints').filter((c) => c.payload.runId === 'r2')).toHaveLength(2);
    expect(overlayPoints(html(p))).toEqual(['r2:step-10', 'r2:step-20', 'r2:step-30', 'r2:step-40']);
  });

  it('says why a run is missing when its checkpoints cannot be listed, and reads again when ticked again', async () => {
    const { w, p } = await page(runs());
    let fail = true;
    w.on('list-checkpoints', (q) => {
      if (q.runId === 'r3' && fail) throw new WorkerFailure({ code: 'NOT_FOUND', message: 'the database is closed' });
      return { checkpoints: CK[q.runId] ?? [] };
    });
    await p.actions.setOverlayRun('r3', true);
    let out = html(p);
    expect(out).toContain('The checkpoints of run C could not be listed');
    expect(out).toContain('the database is closed');
    expect(overlayPoints(out)).toEqual([]);
    fail = false;
    await p.actions.setOverlayRun('r3', false);
    await p.actions.setOverlayRun('r3', true);
    out = html(p);
    expect(out).not.toContain('could not be listed');
    expect(overlayPoints(out)).toEqual(['r3:step-10', 'r3:step-20']);
  });

  it('the empty state: no other run on this data with this criterion', async () => {
    const list = runs().filter((r) => !['r2', 'r3'].includes(r.id));
    const { p } = await page(list);
    const out = html(p);
    expect(out).toContain('data-testid="tradeoff-compare-empty"');
    expect(out).toContain('No other run was trained on <strong>numbers.jsonl</strong> and judged by validation loss.');
    expect(out).not.toContain('tradeoff-compare-run');
    expect(out).not.toContain('tradeoff-compare-summary');
  });
});

describe('Rewind to recommended', () => {
  const rewind = (out: string) => /<button type="button"( class="secondary")?[^>]*>Rewind to recommended<\/button>/.exec(out);

  it('is the loud button while the recommended checkpoint is not the selected one, secondary once it is', async () => {
    const { p } = await page(runs());
    // The newest (step 40) is selected, step 20 recommended: a real suggestion.
    const before = rewind(html(p));
    expect(before).not.toBeNull();
    expect(before![1]).toBeUndefined();
    p.actions.selectCheckpoint('r1', 20);
    await tick(5);
    const after = rewind(html(p));
    expect(after).not.toBeNull();
    expect(after![1]).toBe(' class="secondary"');
  });
});
