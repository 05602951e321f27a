// Methods on the page, rendered to HTML in Node (react-dom/server, no DOM) over the real actions and a
// scripted worker: the method picker (LoRA / OFT / prompt tuning with the picked one's trade-off, the ones
// the worker cannot train with their reason, prompt tuning's settings only for it), the objective picker
// (DPO's settings and "Start from" only for DPO, the offer for preference data, the problem for DPO without
// pairs), what Start sends, DPO's charts and the falling-logps warning, and the runs list's method and lineage.
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { DataReport, RunJob, RunSummary, TrainConfig } from '../protocol/messages';
import { addEval, addStep } from '../store/series';
import { createAppStore, patch } from '../store/store';
import { presetConfig } from '../store/training';
import { tick } from '../testing/fake-worker';
import { testPage, type TestPage } from '../testing/page';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { BROWSER_TRAINING, MODE_OPTION } from '../train/config';
import { ComparePanel } from './compare/ComparePanel';
import { UiContext } from './context';
import { RunsPanel } from './RunsPanel';
import { TrainPanel } from './TrainPanel';

const PROMPT_MODEL = { ...MODEL, training: { modes: ['lora', 'oft', 'prompt'] as const } };
const base = presetConfig('balanced', 'llama');

function report(kinds: DataReport['kinds']): DataReport {
  const n = kinds.pair + kinds.chat + kinds.preference;
  return {
    name: 'prefs.jsonl', format: 'preference-jsonl', container: 'jsonl', schema: null, detected: { container: 'jsonl', schema: null }, total: n, records: n, kinds, bytes: 100,
    errors: [], warnings: [], errorCount: 0, warningCount: 0, errorsOmitted: 0, warningsOmitted: 0, byCode: {}, tokens: null, stop: null,
    split: { train: n - 1, val: 1, source: 'split', valFraction: 0.1, seed: 0 }, validation: null,
  } as DataReport;
}

function html(p: TestPage, panel: FunctionComponent = TrainPanel): string {
  return renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(panel)));
}

async function page(opts: { config?: TrainConfig; model?: typeof MODEL; kinds?: DataReport['kinds']; runs?: RunSummary[]; checkpoints?: Record<string, ReturnType<typeof checkpoint>[]> } = {}) {
  const w = workerWithRuns(opts.runs ?? [], opts.checkpoints ?? {});
  w.on('storage-report', () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: null }));
  const p = testPage(w.client, { model: opts.model ?? PROMPT_MODEL });
  patch(p.store, 'train', { config: opts.config ?? base, preset: 'custom' });
  if (opts.kinds) patch(p.store, 'data', { phase: 'ready', result: { datasetId: 'ds1', report: report(opts.kinds), stored: true, storageError: null, ms: 1 } });
  if (opts.runs) await p.actions.refreshRuns();
  await tick(2);
  return { p, w };
}

const labels = (h: string) => [...h.matchAll(/<label for="[^"]+">([^<]+)<\/label>/g)].map((m) => m[1]!);
const startDisabled = (h: string) => /<button type="button" disabled=""[^>]*>(Start training|Train again)<\/button>/.test(h);

describe('the method picker', () => {
  it("offers LoRA, OFT and prompt tuning with the picked one's trade-off; prompt tuning's settings only for it", async () => {
    const lora = html((await page()).p);
    expect(lora).toMatch(/<option value="lora" selected="">LoRA adapter<\/option><option value="oft">OFT adapter \(orthogonal\)<\/option><option value="prompt">Prompt tuning \(learned virtual tokens\)<\/option>/);
    expect(lora).toContain(`data-testid="method-tradeoff">${MODE_OPTION.tradeoffs.lora}</small>`);
    expect(labels(lora)).not.toContain('Virtual tokens');

    const prompt = html((await page({ config: { ...base, mode: 'prompt', prompt: { ...base.prompt, num_virtual_tokens: 12 } } })).p);
    expect(prompt).toContain(`data-testid="method-tradeoff">${MODE_OPTION.tradeoffs.prompt.replace(/'/g, '&#x27;')}</small>`);
    expect(labels(prompt)).toEqual(expect.arrayContaining(['Virtual tokens', 'Virtual tokens start from']));
    expect(labels(prompt)).not.toContain('Text to start from');
    // Neither LoRA's numbers nor any adapter's targets: prompt tuning has none.
    expect(labels(prompt)).not.toContain('LoRA rank');
    expect(prompt).not.toContain('class="field targets"');
    expect(prompt).toContain('trainable parameters (Prompt 12 tokens).');
    expect(prompt).toContain(`${12 * MODEL.hiddenSize} trainable parameters`);

    // From a text: its field, and the problem while it is empty (Start disabled).
    const text = html((await page({ config: { ...base, mode: 'prompt', prompt: { ...base.prompt, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: '' } }, kinds: { pair: 9, chat: 0, preference: 0 } })).p);
    expect(labels(text)).toContain('Text to start from');
    expect(text).toContain('Virtual tokens start from: a text is needed');
    expect(startDisabled(text)).toBe(true);
  });

  it('shows what the worker cannot train as unavailable, with the reason', async () => {
    const h = html((await page({ model: { ...MODEL, training: { modes: ['lora', 'oft'] } } })).p);
    expect(h).toContain('<option value="prompt" disabled="">Prompt tuning (learned virtual tokens) (not available here)</option>');
    expect(h).toMatch(/data-testid="method-unavailable">Prompt tuning \(learned virtual tokens\) is not available here\. /);
    const browser = html((await page({ model: { ...MODEL, training: BROWSER_TRAINING } })).p);
    for (const m of ['lora', 'oft', 'prompt'] as const) expect(browser).toMatch(new RegExp(`<option value="${m}"${BROWSER_TRAINING.modes.includes(m) ? '( selected="")?' : ' disabled=""'}>`));
    expect(browser).not.toContain('<option value="full"');
    // Full fine-tuning is not offered, but why is said (the CLI trains it).
    expect(browser).toMatch(/data-testid="method-unavailable">Full-parameter training is not available in the browser/);
    const gpt2 = html((await page({ model: { ...MODEL, arch: 'gpt2', training: { modes: ['lora'], unavailable: { oft: 'No OFT on GPT-2.' } } } })).p);
    expect(gpt2).toContain('<option value="oft" disabled="">OFT adapter (orthogonal) (not available here)</option>');
    expect(gpt2).toMatch(/data-testid="method-unavailable">No OFT on GPT-2\. /);
  });
});

describe('the objective picker', () => {
  it("shows DPO's settings only for DPO, not under Advanced", async () => {
    const sft = html((await page({ kinds: { pair: 9, chat: 0, preference: 0 } })).p);
    expect(sft).toMatch(/<input type="radio" [^>]*checked="" value="sft"\/>Supervised fine-tuning \(SFT\)/);
    expect(labels(sft)).not.toContain('DPO beta');
    expect(labels(sft)).not.toContain('Start from');
    const dpo = html((await page({ config: { ...base, objective: 'dpo' }, kinds: { pair: 0, chat: 0, preference: 9 } })).p);
    expect(dpo).toMatch(/<input type="radio" [^>]*checked="" value="dpo"\/>Preference tuning \(DPO\)/);
    const dpoLabels = labels(dpo);
    expect(dpoLabels.filter((l) => l === 'DPO beta')).toHaveLength(1);
    expect(dpoLabels.filter((l) => l === 'SFT weight on chosen')).toHaveLength(1);
    expect(dpoLabels).toContain('Start from');
    expect(dpo).toContain('<option value="" selected="">Base model</option>');
    expect(dpo).toContain('trainable parameters (LoRA r8, DPO).');
    expect(startDisabled(dpo)).toBe(false);
  });

  it('offers DPO for preference-only data, and names the fix when DPO has no pairs; Start is refused either way', async () => {
    const offer = await page({ kinds: { pair: 0, chat: 0, preference: 12 } });
    const h = html(offer.p);
    expect(h).toContain('data-testid="dpo-offer">This dataset holds 12 preference pairs');
    expect(h).toContain('>Train with DPO</button>');
    expect(h).toContain('data-testid="objective-problem">SFT needs prompt/completion or chat examples');
    expect(startDisabled(h)).toBe(true);
    await offer.p.actions.startTraining();
    expect(offer.p.store.getState().train.error?.message).toMatch(/^SFT needs/);
    expect(offer.w.callsOf('train')).toHaveLength(0);

    const missing = await page({ config: { ...base, objective: 'dpo' }, kinds: { pair: 20, chat: 0, preference: 0 } });
    const m = html(missing.p);
    expect(m).toContain('data-testid="objective-problem">DPO needs preference pairs, and this dataset has none: add a JSONL file');
    expect(m).not.toContain('dpo-offer');
    expect(startDisabled(m)).toBe(true);
  });

  it('starts from a stored run: its checkpoints, its recommended step first, its adapter; Start sends startFrom for DPO only', async () => {
    const job = (r: RunSummary, train: TrainConfig) => ({ ...r, job: { ...r.job!, train } as RunJob });
    const sftRun = { ...job(run('sft', { name: 'sft numbers', checkpoints: [checkpoint('sft', 10), checkpoint('sft', 20), checkpoint('sft', 30)] }), { ...base, lora: { ...base.lora, r: 4 } }), quality: { criterion: 'val_loss', bestStep: 20, recommendedStep: 20, finalStep: 30, stoppedEarly: false, stopReason: null, sentence: null } } as RunSummary;
    const other = job(run('far', { checkpoints: [checkpoint('far', 5)], model: { numParams: 1 } }), base);
    const { p, w } = await page({
      config: { ...base, objective: 'dpo' },
      kinds: { pair: 0, chat: 0, preference: 9 },
      runs: [sftRun, other],
      checkpoints: { sft: [checkpoint('sft', 10), checkpoint('sft', 20), checkpoint('sft', 30)] },
    });
    const before = html(p);
    expect(before).toContain('<option value="sft">sft numbers (SFT · LoRA r4)</option>');
    expect(before).not.toContain('value="far"');

    await p.actions.setStartFrom('sft');
    expect(p.store.getState().train.startFrom).toEqual({ runId: 'sft', step: 20 });
    expect(p.store.getState().train.config.lora.r).toBe(4);
    const picked = html(p);
    expect(labels(picked)).toContain('Checkpoint to start from');
    expect(picked).toContain('<option value="20" selected="">step 20</option>');
    expect(picked).toContain("DPO continues sft numbers&#x27;s adapter from step 20.");
    expect(picked).toContain('Continues the adapter of sft numbers (LoRA r4).');
    // The method picker is locked to that run's adapter.
    expect(picked).toMatch(/<select id="[^"]+" disabled="" aria-describedby="[^"]+-tradeoff/);
    await p.actions.setStartFrom('sft', 30);
    expect(p.store.getState().train.startFrom).toEqual({ runId: 'sft', step: 30 });
    // A preset keeps the started-from run's adapter shape (rank 4), not the preset's.
    p.actions.choosePreset('thorough');
    expect(p.store.getState().train.config.lora.r).toBe(4);

    w.on('train', () => new Promise(() => {}));
    void p.actions.startTraining();
    await tick(2);
    expect(w.callsOf('train').at(-1)!.payload.startFrom).toEqual({ runId: 'sft', step: 30 });
    expect(w.callsOf('train').at(-1)!.payload.config).toMatchObject({ objective: 'dpo', mode: 'lora', lora: { r: 4 } });

    // SFT never starts from another run (the pick is kept for DPO).
    const sft = await page({ kinds: { pair: 9, chat: 0, preference: 0 } });
    patch(sft.p.store, 'train', { startFrom: { runId: 'sft', step: 30 } });
    sft.w.on('train', () => new Promise(() => {}));
    void sft.p.actions.startTraining();
    await tick(2);
    expect(sft.w.callsOf('train').at(-1)!.payload.startFrom).toBeUndefined();
    await p.actions.setStartFrom(null);
    expect(p.store.getState().train).toMatchObject({ startFrom: null, startCheckpoints: null });
  });
});

describe("DPO's charts", () => {
  it('appear with DPO statistics in the series, with the warning when logps/chosen falls', async () => {
    const { p } = await page();
    expect(html(p)).not.toContain('dpo-rewards-chart');
    const s = p.store.getState().live.series;
    for (let i = 1; i <= 4; i++) {
      addStep(s, { step: i, loss: 0.69 - i * 0.01, smoothLoss: 0.69, lr: 1e-3, gradNorm: 1, extra: { 'rewards/chosen': -0.01 * i, 'rewards/rejected': -0.03 * i, 'rewards/margins': 0.02 * i, 'rewards/accuracies': 0.5, 'logps/chosen': -20, 'logps/rejected': -22 } });
      addEval(s, i, 0.68, { 'eval_rewards/margins': 0.02 * i, 'eval_rewards/accuracies': 0.5, 'eval_logps/chosen': -20 - 3 * i });
    }
    patch(p.store, 'live', { version: 1 });
    const h = html(p);
    for (const id of ['dpo-rewards-chart', 'dpo-accuracy-chart', 'dpo-logps-chart']) expect(h).toContain(`data-testid="${id}"`);
    expect(h).toContain('<h3>Loss (DPO)</h3>');
    expect(h).toContain('aria-label="DPO loss on training and held-out pairs over steps"');
    expect(h).toContain('data-testid="logps-warning">logps/chosen fell from -23.00 to -32.00 on the held-out pairs: the model is pushing both chosen and rejected down');

    // Held-out log-probabilities that hold: no warning.
    for (let i = 1; i <= 4; i++) s.evalExtra['eval_logps/chosen']![i - 1] = -20;
    patch(p.store, 'live', { version: 2 });
    expect(html(p)).not.toContain('logps-warning');
  });
});

describe('the runs list', () => {
  it('names each run\'s method and objective, and the run a run started from', async () => {
    const train = (over: Partial<TrainConfig>) => ({ ...base, steps: 30, ...over });
    const sft = { ...run('a', { name: 'sft numbers' }), job: { ...run('a').job!, train: train({}) } as RunJob };
    const dpo = { ...run('b', { name: 'dpo prefs' }), job: { ...run('b').job!, train: train({ objective: 'dpo' }), startFrom: { runId: 'a', step: 20 } } as RunJob };
    const prompt = { ...run('c'), job: { ...run('c').job!, train: train({ mode: 'prompt', prompt: { ...base.prompt, num_virtual_tokens: 16 } }) } as RunJob };
    const { p } = await page({ runs: [sft, dpo, prompt] });
    const h = html(p, RunsPanel);
    expect(h).toContain('SFT · LoRA r8, lr 0.005, 30 steps, batch 8');
    expect(h).toContain('DPO · LoRA r8, lr 0.005, 30 steps, batch 8');
    expect(h).toContain('SFT · Prompt 16 tokens, lr 0.005');
    expect(h).toContain('<span data-testid="run-lineage"> · started from sft numbers at step 20</span>');
    expect(h.match(/run-lineage/g)).toHaveLength(1);
  });
});

describe('the compare view', () => {
  it("names the compared run's objective and method", async () => {
    const dpo = { ...run('b', { name: 'dpo prefs', checkpoints: [checkpoint('b', 6)] }), job: { ...run('b').job!, train: { ...base, objective: 'dpo' as const, mode: 'prompt' as const } } as RunJob };
    const { p } = await page({ runs: [dpo] });
    p.select({ runId: 'b', step: 6 });
    patch(p.store, 'selectedRun', {
      phase: 'ready',
      error: null,
      run: { runId: 'b', runName: 'dpo prefs', training: false, checkpoints: [checkpoint('b', 6)], checkpoint: checkpoint('b', 6), stopStrings: [], stopTokenId: null, template: 'auto', model: null, valExamples: 4 },
    });
    expect(html(p, ComparePanel)).toMatch(/data-testid="compare-target">Base model vs dpo prefs: step 6[^<]*\. Trained with DPO · Prompt 16 tokens\.</);
  });
});
