// Knowing when to stop, rendered to HTML in Node (react-dom/server, no DOM): the Trade-off panel's empty
// states, chart points (focusable, labelled) and recommendation; the latest evaluation's confusion table,
// memorisation warning and CKA strip; the Train panel's "When to stop" settings and the end of a run; the
// runs list's best and recommended steps with their figures.
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { CheckpointInfo, EvalMetrics, RunQuality, RunSummary, TrainOutcome } from '../protocol/messages';
import { createAppStore, patch } from '../store/store';
import { tick } from '../testing/fake-worker';
import { testPage, type TestPage } from '../testing/page';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { UiContext } from './context';
import { EvalDetails } from './EvalDetails';
import { RunsPanel } from './RunsPanel';
import { TradeoffPanel } from './TradeoffPanel';
import { TrainPanel } from './TrainPanel';

const ck = (step: number, valLoss: number, probe: number, over: Partial<CheckpointInfo> = {}) => checkpoint('r1', step, { valLoss, extra: { probe_nll_delta_pct: probe }, ...over });
const CKS = [ck(10, 1.2, 0.5), ck(20, 0.9, 2), ck(30, 0.8, 7, { isBest: true }), ck(40, 0.85, 9, { isLatest: true })];
const QUALITY: RunQuality = { criterion: 'val_loss', bestStep: 30, recommendedStep: 20, finalStep: 40, stoppedEarly: true, stopReason: 'early stopping: …', sentence: 'step 20: validation loss 0.900, general skill −2%.', budgetPct: 5 };

async function page(runs: RunSummary[], cks: Record<string, CheckpointInfo[]>, open: string | null = 'r1'): Promise<TestPage> {
  const w = workerWithRuns(runs, cks);
  w.on('storage-report', () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: null }));
  w.on('run-metrics', () => ({ points: [] }));
  const p = testPage(w.client, { selection: null, model: MODEL });
  await p.actions.refreshRuns();
  if (open) await p.actions.openRun(open);
  await tick(5);
  return p;
}

const html = (panel: FunctionComponent, p: TestPage) => renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(panel)));

describe('Trade-off panel', () => {
  it('empty states: nothing selected, no checkpoint, no measured checkpoint, no probe', async () => {
    expect(html(TradeoffPanel, await page([], {}, null))).toContain('Train a run or open one under Runs');
    expect(html(TradeoffPanel, await page([run('r1')], { r1: [] }))).toContain('has no checkpoint yet');
    const unmeasured = [checkpoint('r1', 5, { valLoss: null })];
    expect(html(TradeoffPanel, await page([run('r1', { checkpoints: unmeasured })], { r1: unmeasured }))).toContain('None of the 1 checkpoints of <strong>r1</strong> has measurements yet.');
    const noProbe = [checkpoint('r1', 5), checkpoint('r1', 10)];
    const out = html(TradeoffPanel, await page([run('r1', { checkpoints: noProbe })], { r1: noProbe }));
    expect(out).toContain('was trained without the forgetting probe');
    expect(out).not.toContain('data-testid="tradeoff-chart"');
    expect(out).toContain('data-testid="tradeoff-table"');
  });

  it('the chart: every point a labelled, focusable button; front, best, final and recommended marked; the sentence and the actions', async () => {
    const p = await page([{ ...run('r1', { name: 'numbers', checkpoints: CKS }), quality: QUALITY }], { r1: CKS });
    const out = html(TradeoffPanel, p);
    expect(out).toMatch(/<h2 id="[^"]+">Trade-off<\/h2>/);
    expect(out.match(/data-testid="tradeoff-point"/g)).toHaveLength(4);
    expect(out.match(/role="button" tabindex="0"/g)).toHaveLength(4);
    expect(out).toContain('aria-label="step 20: val loss 0.900, general skill −2% (recommended, on the Pareto front)"');
    expect(out).toContain('aria-label="step 30: val loss 0.800, general skill −7% (best, on the Pareto front)"');
    // The newest checkpoint is what Compare and Export use until another is picked.
    expect(out).toContain('aria-label="step 40: val loss 0.850, general skill −9% (final, selected for Compare and Export)"');
    expect(out).toContain('Recommended</strong> (the run’s decision when it ended): step 20: validation loss 0.900, general skill −2%.');
    expect(out).toMatch(/<polyline class="front-line" points="[^"]+"/);
    expect(out).toContain('probe loss change, % (right: more forgetting)');
    expect(out).toContain('Validation loss (lower is better)');
    expect(out).toMatch(/<button type="button" aria-describedby="[^"]+">Rewind to recommended<\/button>/);
    expect(out).toMatch(/<button type="button" class="secondary" aria-describedby="[^"]+">Explore path<\/button>/);
    // After rewinding, the recommended point is the selected one.
    await p.actions.rewindToRecommended();
    await tick(5);
    const after = html(TradeoffPanel, p);
    expect(after).toContain('(recommended, on the Pareto front, selected for Compare and Export)');
    expect(after).toContain('(final)"');
  });
});

describe('the latest evaluation', () => {
  const evalWith = (details: Record<string, unknown>, extra: Record<string, number> = {}): EvalMetrics => ({ step: 30, valLoss: 0.5, valPpl: 1.6, tokens: 9, extra, details });
  const render = async (e: EvalMetrics) => {
    const p = await page([], {}, null);
    p.store.setState({ live: { ...p.store.getState().live, lastEval: e } });
    return html(EvalDetails, p);
  };

  it('figures, the confusion table, the CKA strip', async () => {
    const out = await render(
      evalWith(
        { generation: { confusion: { labels: ['neg', 'pos'], counts: [[3, 1, 0], [0, 2, 1]] }, samples: [{ prompt: 'great <b>', expected: 'pos', output: 'pos', exact: true }] }, cka: { layers: [0.998, 0.91, 0.62] } },
        { exact_match: 0.625, token_f1: 0.7, label_accuracy: 0.625, probe_nll_delta_pct: 1.84, cka_min: 0.62 },
      ),
    );
    expect(out).toContain('Latest evaluation (step 30)');
    expect(out).toContain('exact match 62.5% · token F1 70.0% · label accuracy 62.5% · general skill −1.8% (probe loss +1.84%) · CKA min 0.620');
    expect(out).toContain('<th scope="row">neg</th><td class="diag">3</td><td class="off">1</td><td class="">0</td>');
    expect(out).toContain('<th scope="col">other</th>');
    expect(out).toMatch(/<li style="background:hsl\(31 65% 45%\)" title="layer 2: CKA 0.6200" aria-label="layer 2: CKA 0.6200">0.62<\/li>/);
    // Dataset text stays text.
    expect(out).toContain('great &lt;b&gt;');
    expect(out).not.toContain('data-testid="memorised"');
  });

  it('the memorisation warning (the engine’s sentence when it sends one); bad details are ignored', async () => {
    const m = { count: 5, of: 16, examples: [{ prompt: 'seven', expected: '7', output: '42' }] };
    const plain = await render(evalWith({ generation: { memorised: m, samples: [] } }));
    expect(plain).toContain('<strong>Memorisation: </strong>5 of 16 generated held-out answers are exactly a training answer that is not theirs');
    expect(plain).toContain('seven</span> → <strong>42</strong> (expected 7)');
    const said = await render(evalWith({ generation: { memorised: { ...m, sentence: 'The model memorised answers.' } } }));
    expect(said).toMatch(/class="notice warn" data-testid="memorised"><strong>Memorisation: <\/strong>The model memorised answers\./);
    expect(await render(evalWith({ generation: { memorised: { ...m, count: 0 } } }))).not.toContain('Memorisation');
    const junk = await render(evalWith({ generation: { confusion: { labels: ['a'], counts: [[1]] } }, cka: { layers: ['x'] } }));
    expect(junk).not.toContain('<table');
    expect(junk).not.toContain('cka-strip');
  });
});

describe('Train panel and runs list', () => {
  it('"When to stop" holds the quality settings (out of Advanced), each labelled with help', async () => {
    const out = html(TrainPanel, await page([], {}, null));
    const stop = out.slice(out.indexOf('When to stop'), out.indexOf('Advanced settings'));
    for (const label of ['Best checkpoint by', 'Early-stopping patience', 'Smallest improvement', 'Held-out answers generated', 'Forgetting probe size', 'Probe text length', 'Forgetting budget (%)', 'Replay share']) {
      const m = new RegExp(`<label for="([^"]+)">${label.replace(/[()]/g, '\\$&')}</label>`).exec(stop);
      expect(m, label).not.toBeNull();
      expect(stop).toMatch(new RegExp(`id="${m![1]}"[^>]*aria-describedby="${m![1]}-help"|aria-describedby="${m![1]}-help"[^>]*id="${m![1]}"`));
    }
    expect(out.slice(out.indexOf('Advanced settings'))).not.toContain('Early-stopping patience');
    // Balanced (preselected) stops early.
    expect(stop).toContain('stops after 3 evaluations without improvement · best by validation loss · forgetting probe of 32 texts, budget 5% · 16 answers generated per evaluation');
    expect(out).toContain('General skill');
    expect(out).toContain('data-testid="skill-empty"');
  });

  it('the end of a run says why it ended and what to keep', async () => {
    const p = await page([], {}, null);
    const outcome: TrainOutcome = {
      runId: 'r1', name: 'r1', reason: 'done', step: 40, totalSteps: 60, finalTrainLoss: 0.5, finalValLoss: 0.85, checkpoint: null, resumedFrom: null,
      stoppedBy: 'early stopping: validation loss did not improve by more than 0 for 2 evaluations (best 0.800 at step 30)', quality: QUALITY, ms: 1000, tokensPerSecond: 100,
    };
    patch(p.store, 'train', { phase: 'done', outcome });
    const out = html(TrainPanel, p);
    expect(out).toContain('<strong>Stopped early: validation loss did not improve by more than 0 for 2 evaluations (best 0.800 at step 30).</strong>');
    expect(out).toContain('Ended at step 40 of 60');
    expect(out).toContain('Recommended: step 20: validation loss 0.900, general skill −2%.');
  });

  it('each decided run shows its best and recommended steps with their figures', async () => {
    const p = await page([{ ...run('r1', { name: 'numbers', checkpoints: CKS }), quality: QUALITY }, run('r2')], { r1: CKS }, null);
    await tick(5);
    const out = html(RunsPanel, p);
    expect(out).toContain('best step 30 (val loss 0.800, general skill −7%) · recommended step 20 (val loss 0.900, general skill −2%) · stopped early');
    expect(out.match(/data-testid="run-decision"/g)).toHaveLength(1);
  });
});
