// The journey's steps derived from the page state (issue 18 #9): which step is done, which is the current
// one (the first not done, or Train while a run trains), and the words the step nav shows; the nav itself
// rendered to HTML (links to each section, aria-current on the current step).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { DataReport, ModelSummary } from '../protocol/messages';
import { createAppStore, initialState, type AppState } from '../store/store';
import { UiContext, type AllActions } from './context';
import { journeySteps, nextStep } from './journey';
import { FirstVisitHint, StepNav } from './StepNav';
import { trainSource } from './train-source';

const MODEL = { name: 'tabtune-tiny', arch: 'llama', numParams: 1000, vocabSize: 100, contextLength: 256, layers: 2, hiddenSize: 16, loadMs: 1 } as unknown as ModelSummary;

function report(over: Partial<DataReport> = {}): DataReport {
  return {
    name: 'caps.jsonl', format: 'jsonl', container: 'jsonl', schema: null, detected: { container: 'jsonl', schema: null }, total: 40, records: 40,
    kinds: { pair: 40, chat: 0, preference: 0 }, bytes: 100, errors: [], warnings: [], errorCount: 0, warningCount: 0, errorsOmitted: 0, warningsOmitted: 0,
    byCode: {}, tokens: null, stop: null, split: { train: 36, val: 4, source: 'split', valFraction: 0.1, seed: 0 }, validation: null, ...over,
  } as DataReport;
}

type Patch = { [K in keyof AppState]?: Partial<AppState[K]> };
function state(p: Patch = {}): AppState {
  const s = initialState();
  for (const [k, v] of Object.entries(p)) Object.assign(s, { [k]: { ...s[k as keyof AppState], ...v } });
  return s;
}

const withModel: Patch = { model: { ...initialState().model, phase: 'ready', summary: MODEL } };
const withData = (r = report()): Patch => ({ ...withModel, data: { ...initialState().data, phase: 'ready', label: 'caps.jsonl', result: { datasetId: 'd', report: r, stored: true, storageError: null, ms: 1 } } });
const states = (s: AppState) => journeySteps(s).map((x) => `${x.id}:${x.state}`);

describe('journeySteps', () => {
  it('starts on the model, then the data, each done step saying what it holds', () => {
    expect(states(state())).toEqual(['model:current', 'data:todo', 'train:todo', 'compare:todo', 'export:todo']);
    expect(journeySteps(state({ model: { phase: 'busy' } }))[0]!.detail).toBe('loading…');
    const loaded = state(withModel);
    expect(states(loaded)).toEqual(['model:done', 'data:current', 'train:todo', 'compare:todo', 'export:todo']);
    expect(journeySteps(loaded)[0]!.detail).toBe('tabtune-tiny');
    expect(journeySteps(loaded)[1]!.detail).toBe('pick a file');
    expect(nextStep(loaded)).toBe('data');
    const data = state(withData());
    expect(states(data)).toEqual(['model:done', 'data:done', 'train:current', 'compare:todo', 'export:todo']);
    expect(journeySteps(data)[1]!.detail).toBe('caps.jsonl');
    // The current step says what to do in it; later ones what they wait for.
    expect(journeySteps(data).map((x) => x.detail).slice(2)).toEqual(['pick a preset, Start', 'after a run', 'after a run']);
  });

  it('a dataset whose problem blocks training is not done: it needs a fix', () => {
    const s = state(withData(report({ records: 0, total: 3, errorCount: 3, split: { train: 0, val: 0, source: 'split', valFraction: 0.1, seed: 0 } })));
    expect(states(s).slice(0, 3)).toEqual(['model:done', 'data:current', 'train:todo']);
    expect(journeySteps(s)[1]!.detail).toBe('needs a fix');
  });

  it('Train is current while a run trains (even paused), done once it ended or a stored run is selected', () => {
    const running = state({ ...withData(), train: { phase: 'paused' } });
    expect(nextStep(running)).toBe('train');
    expect(journeySteps(running)[2]!.detail).toBe('training…');
    const done = state({ ...withData(), train: { phase: 'done' }, selection: { runId: 'r1', step: null } });
    expect(states(done)).toEqual(['model:done', 'data:done', 'train:done', 'compare:current', 'export:todo']);
    expect(journeySteps(done)[2]!.detail).toBe('a run');
    // The selected run's name and checkpoint, once the worker described it.
    const described = state({ ...withData(), train: { phase: 'done' }, selection: { runId: 'r1', step: null }, selectedRun: { phase: 'ready', run: { runId: 'r1', runName: 'caps', checkpoint: { step: 12 } } as never, error: null } });
    expect(journeySteps(described)[2]!.detail).toBe('caps, step 12');
    // A stored run opened after a reload counts: Compare and Export have something to work on.
    expect(nextStep(state({ ...withData(), selection: { runId: 'r1', step: 3 } }))).toBe('compare');
  });

  it('Compare is done by a held-out table or a prompt compared; Export by a file made; all done: no current step', () => {
    const base = state({ ...withData(), train: { phase: 'done' }, selection: { runId: 'r1', step: null } });
    const compared = { ...base, compare: { ...base.compare, prompt: { ...base.compare.prompt, tuned: { phase: 'ready', outcome: { text: 'x' }, error: null } } } } as unknown as AppState;
    expect(nextStep(compared)).toBe('export');
    const exported = { ...compared, export: { ...compared.export, peft: { ...compared.export.peft, phase: 'ready', last: { filename: 'a.zip', size: 1, files: [], runId: 'r1', step: 3, ms: 1 } } } } as AppState;
    expect(states(exported)).toEqual(['model:done', 'data:done', 'train:done', 'compare:done', 'export:done']);
    expect(nextStep(exported)).toBeNull();
    // A file made from another run does not count for the run in view.
    const otherRun = { ...exported, selection: { runId: 'r2', step: null } } as AppState;
    expect(states(otherRun)[4]).toBe('export:current');
  });
});

describe('StepNav', () => {
  it('links each step to its section, numbered in order, with aria-current on the current one and its state in words', () => {
    const store = createAppStore(state(withModel));
    const html = renderToStaticMarkup(createElement(UiContext.Provider, { value: { store, actions: {} as AllActions } }, createElement(StepNav)));
    expect(html).toContain('<nav class="steps" aria-label="Steps">');
    const links = [...html.matchAll(/<a href="#step-(\w+)"( aria-current="step")?>(.*?)<\/a>/g)].map((m) => [m[1], !!m[2], m[3]!.replace(/<span[^>]*aria-hidden="true">[^<]*<\/span>/g, '').replace(/<[^>]+>/g, '')]);
    // Done steps carry a check mark for the eye only (aria-hidden); their state is in words for everyone.
    expect(html).toContain('Model<span class="step-check" aria-hidden="true">✓</span>');
    expect(links).toEqual([
      ['model', false, '1 Model (done) tabtune-tiny'],
      ['data', true, '2 Data (next) pick a file'],
      ['train', false, '3 Train (not yet) after the data'],
      ['compare', false, '4 Compare (not yet) after a run'],
      ['export', false, '5 Export (not yet) after a run'],
    ]);
  });
});

describe('FirstVisitHint', () => {
  const render = (s: AppState) => renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(s), actions: {} as AllActions } }, createElement(FirstVisitHint)));

  it('says where to start on a first visit, and is gone once a dataset is read or runs are stored', () => {
    const first = render(state(withModel));
    expect(first).toContain('<section class="first-visit" aria-label="Getting started">');
    expect(first).toContain('the model <strong>tabtune-tiny</strong> is loaded');
    expect(first).toContain('>Got it</button>');
    // The formats the doctor reads, not only prompt/completion pairs.
    for (const f of ['prompt/completion JSONL or JSON', 'Alpaca', 'OpenAI chat', 'ShareGPT', 'CSV/TSV', 'plain text']) expect(first).toContain(f);
    expect(render(state({ model: { phase: 'busy' } }))).toContain('a model loads by itself');
    expect(render(state({ ...withModel, data: { ...initialState().data, phase: 'busy' } }))).toBe('');
    expect(render(state({ ...withModel, runs: { ...initialState().runs, list: [{ id: 'r1' } as never] } }))).toBe('');
  });
});

describe('trainSource', () => {
  it('says what Train uses in the words Generate uses: the model and data, the run as it trains, the run and step it made', () => {
    expect(trainSource(state())).toBeNull();
    expect(trainSource(state(withModel))).toBeNull();
    expect(trainSource(state(withData()))).toBe('Trains tabtune-tiny on caps.jsonl');
    const run = { runId: 'r1', name: 'caps.jsonl', startStep: 0 } as never;
    const live = state({ ...withData(), train: { phase: 'running', run }, live: { ...initialState().live, runId: 'r1', last: { step: 7 } as never } });
    expect(trainSource(live)).toBe('Training tabtune-tiny + caps.jsonl, step 7, training now, adapter on');
    const outcome = { runId: 'r1', name: 'caps.jsonl', step: 12, checkpoint: { step: 12 } } as never;
    expect(trainSource(state({ ...withData(), train: { phase: 'done', run, outcome } }))).toBe('Trained tabtune-tiny + caps.jsonl, step 12, adapter on');
  });
});
