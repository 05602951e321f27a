// Pure store helpers of the studio: the chart series, the Data panel's headline problem, training
// presets / bounds / memory estimate, and the settings kept across reloads.
import { describe, expect, it } from 'vitest';
import type { DataReport } from '../protocol/messages';
import { datasetProblem, pageOf } from './data';
import { addEval, addStep, emptySeries, seriesFromPoints, valPoints } from './series';
import { cannotStart, createAppStore, initialState, parseSavedSettings, savedSettings } from './store';
import { BROWSER_TRAINING, defaultTrainConfig, setOption, totalSteps, validateConfig } from '../train/config';
import { estimateMemory, presetConfig, toOverrides } from './training';

const step = (s: number, loss = 1, skipped?: string) => ({ step: s, loss, smoothLoss: loss, lr: 0.1, gradNorm: 2, ...(skipped ? { skipped } : {}) });

describe('series', () => {
  it('appends steps, puts evaluations on their step, and drops later points when a run continues from earlier', () => {
    const s = emptySeries();
    for (let i = 1; i <= 5; i++) addStep(s, step(i, 5 - i));
    addEval(s, 4, 0.5);
    expect(s.step).toEqual([1, 2, 3, 4, 5]);
    expect(s.val).toEqual([null, null, null, 0.5, null]);
    addStep(s, step(3, 9));
    expect(s.step).toEqual([1, 2, 3]);
    expect(s.loss).toEqual([4, 3, 9]);
    expect(s.val).toEqual([null, null, null]);
    addStep(s, step(4, Number.NaN));
    addStep(s, step(5, 1, 'NaN loss'));
    expect(s.loss.slice(3)).toEqual([null, null]);
    expect(s.grad.slice(3)).toEqual([2, null]);
  });

  it('rebuilds from stored points', () => {
    const s = seriesFromPoints([
      { type: 'step', step: 1, epoch: 0, loss: 2, smoothLoss: 2, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
      { type: 'eval', step: 1, valLoss: 1.5, valPpl: 4, tokens: 1 },
      { type: 'step', step: 2, epoch: 0, loss: 1, smoothLoss: 1.5, lr: 1, gradNorm: 1, tokens: 1, tokensPerSec: 1 },
    ]);
    expect(s.step).toEqual([1, 2]);
    expect(s.smooth).toEqual([2, 1.5]);
    expect(valPoints(s)).toBe(1);
  });
});

function report(over: Partial<DataReport>): DataReport {
  return {
    name: 'f.jsonl', format: 'jsonl', container: 'jsonl', schema: null, detected: { container: 'jsonl', schema: null }, total: 0, records: 0,
    kinds: { pair: 0, chat: 0, preference: 0 }, bytes: 0, errors: [], warnings: [], errorCount: 0, warningCount: 0, errorsOmitted: 0, warningsOmitted: 0,
    byCode: {}, tokens: null, stop: null, split: { train: 0, val: 0, source: 'none', valFraction: 0.1, seed: 0 }, validation: null, ...over,
  };
}

describe('datasetProblem', () => {
  it('an empty file, an image and a file with no valid line each get a blocking message with what to do', () => {
    const empty = datasetProblem(report({ byCode: { 'empty-file': 1 }, errors: [{ line: 0, severity: 'error', code: 'empty-file', message: 'the file is empty' }], errorCount: 1 }))!;
    expect(empty).toMatchObject({ blocking: true, title: 'This file is empty' });
    const image = datasetProblem(
      report({ name: 'a.png', byCode: { unreadable: 1 }, errors: [{ line: 0, severity: 'error', code: 'unreadable', message: 'this is a binary file (it contains NUL bytes), not JSONL, JSON or CSV text' }], errorCount: 1 }),
    )!;
    expect(image).toMatchObject({ blocking: true, title: 'This is not a dataset' });
    expect(image.message).toContain('a.png');
    const broken = datasetProblem(report({ total: 3, errorCount: 3, errors: [{ line: 1, severity: 'error', code: 'invalid-json', message: 'invalid JSON' }] }))!;
    expect(broken.title).toBe('No valid examples');
    expect(broken.message).toContain('line 1: invalid JSON');
    for (const p of [empty, image, broken]) expect(p.hint.length).toBeGreaterThan(20);
  });

  it('a table whose header does not say which columns to use asks for them', () => {
    const table = { delimiter: ',', columns: ['frage', 'antwort'], mapping: null, mappingSource: null, suggested: null, candidates: { prompt: [], completion: [] } };
    const p = datasetProblem(report({ name: 'de.csv', total: 3, errorCount: 1, table, errors: [{ line: 0, severity: 'error', code: 'csv-mapping', message: 'choose which columns…' }] }))!;
    expect(p).toMatchObject({ blocking: true, title: 'Choose the columns' });
    expect(p.message).toContain('"frage", "antwort"');
    expect(p.hint).toContain('Use these columns');
  });

  it('skipped lines are a note, a clean file has nothing to say', () => {
    expect(datasetProblem(report({ total: 41, records: 40, errorCount: 1, split: { train: 36, val: 4, source: 'split', valFraction: 0.1, seed: 0 } }))).toMatchObject({ blocking: false, title: '1 line will be skipped' });
    expect(datasetProblem(report({ total: 40, records: 40, split: { train: 36, val: 4, source: 'split', valFraction: 0.1, seed: 0 } }))).toBeNull();
  });

  it('pages long lists', () => {
    const items = Array.from({ length: 60 }, (_, i) => i);
    expect(pageOf(items, 2, 25)).toEqual({ items: items.slice(50), page: 2, pages: 3 });
    expect(pageOf(items, 9, 25).page).toBe(2);
    expect(pageOf([], 0, 25)).toEqual({ items: [], page: 0, pages: 1 });
  });
});

describe('training settings', () => {
  it('presets differ and fit the architecture; the whole config goes to the worker', () => {
    const q = presetConfig('quick', 'llama');
    const b = presetConfig('balanced', 'llama');
    const t = presetConfig('thorough', 'gpt2');
    expect(q.steps).toBe(60);
    expect(q.lora.target_modules).toEqual(['q_proj', 'v_proj']);
    expect(b.lora.target_modules).toHaveLength(7);
    expect(t.lora.target_modules).toEqual(['c_attn', 'c_proj', 'c_fc']);
    expect(t.lora.r).toBe(16);
    for (const c of [q, b, t]) expect(validateConfig(c, BROWSER_TRAINING)).toEqual([]);
    expect(toOverrides(b)).toEqual(b);
  });

  it('bounds every option', () => {
    const c = presetConfig('balanced', 'llama');
    expect(validateConfig(setOption(c, 'lr', 0), BROWSER_TRAINING)).toEqual([expect.stringContaining('Learning rate: must be between')]);
    expect(validateConfig(setOption(c, 'batchSize', 2.5), BROWSER_TRAINING)).toEqual(['Batch size: must be a whole number.']);
    expect(validateConfig(setOption(c, 'lora.r', Number.NaN), BROWSER_TRAINING)).toEqual(['LoRA rank: enter a number.']);
    expect(validateConfig({ ...c, lora: { ...c.lora, target_modules: [] } }, BROWSER_TRAINING)).toEqual(['LoRA targets: pick at least one layer type.']);
  });

  it('plans steps from epochs and estimates memory that grows with batch and rank', () => {
    const c = presetConfig('balanced', 'llama');
    expect(totalSteps(c, 36)).toBe(3 * 5);
    expect(totalSteps({ ...c, steps: 24 }, 36)).toBe(24);
    const model = { numParams: 447_040, hiddenSize: 64, layers: 4, vocabSize: 4096, arch: 'llama' };
    const m = estimateMemory(model, c, 32);
    // A small frozen Llama also keeps its weights transposed for the backward; a large one does not.
    expect(m.weights).toBe(2 * 447_040 * 4);
    expect(estimateMemory({ ...model, numParams: 20_000_000 }, c, 32).weights).toBe(20_000_000 * 4);
    // r=8 on q,k,v,o (64+64) and gate/up/down (64+171): per layer 8*(4*128 + 3*235).
    expect(m.trainableParams).toBe(4 * 8 * (4 * 128 + 3 * (64 + 171)));
    expect(estimateMemory(model, { ...c, batchSize: 16 }, 32).activations).toBeGreaterThan(m.activations);
    expect(estimateMemory(model, { ...c, mode: 'full' }, 32).trainableParams).toBe(447_040);
  });

  it('start is refused with a reason until a model and a trainable dataset are there', () => {
    const s = initialState();
    expect(cannotStart(s)).toBe('Load a model first.');
  });

  it('settings survive a reload through their JSON, and bad JSON is ignored', () => {
    const store = createAppStore(initialState());
    const saved = savedSettings({ ...store.getState(), train: { ...store.getState().train, preset: 'custom', config: { ...store.getState().train.config, steps: 24 } } });
    const back = parseSavedSettings(JSON.stringify(saved))!;
    expect(back.config.steps).toBe(24);
    expect(initialState({ saved: back }).train).toMatchObject({ preset: 'custom', config: { steps: 24 } });
    expect(parseSavedSettings('{oops')).toBeNull();
    expect(parseSavedSettings(JSON.stringify({ version: 2 }))).toBeNull();
    expect(parseSavedSettings(null)).toBeNull();
  });
});

describe('default training settings', () => {
  it('a first visit starts on Balanced: the engine default the learning test checks, with early stopping on', () => {
    const s = initialState();
    expect(s.train.preset).toBe('balanced');
    expect(s.train.config).toEqual({ ...defaultTrainConfig('llama'), earlyStopPatience: 3 });
  });

  it('every preset stops early; Quick after 2 evaluations without improvement, the others after 3', () => {
    expect(defaultTrainConfig('llama').earlyStopPatience).toBe(0);
    expect(presetConfig('quick', 'llama').earlyStopPatience).toBe(2);
    expect(presetConfig('balanced', 'llama').earlyStopPatience).toBe(3);
    expect(presetConfig('thorough', 'gpt2').earlyStopPatience).toBe(3);
  });
});
