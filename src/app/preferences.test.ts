// The preference actions of the compare view against a scripted worker (the real WorkerClient) whose
// preference requests are the worker's own service over a real store: what each mark stores, one pair per
// shown prompt, two tuned samples at two seeds, edits and deletes, the JSONL the doctor reads back, and the
// DPO run they start (dataset through inspect-data, objective 'dpo', startFrom the selected checkpoint).
import { describe, expect, it } from 'vitest';
import { parseDataset } from '../data/parse';
import { textSource } from '../data/source';
import type { GenerateOutcome, GenerateParams, InspectDataPayload, TrainPayload } from '../protocol/messages';
import { MemoryBackend, TabtuneStore } from '../storage/index';
import { heldoutKey, type PreferenceItem } from '../store/compare';
import { patch } from '../store/store';
import { tick, WorkerFailure } from '../testing/fake-worker';
import { toProtocolError } from '../worker/errors';
import { testPage } from '../testing/page';
import { checkpoint, MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { Preferences } from '../worker/preferences';
import { preferencesFileName } from './preferences';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true })], r2: [checkpoint('r2', 2, { isLatest: true })] };

async function setup() {
  const store = new TabtuneStore(new MemoryBackend());
  await store.runs.create({ id: 'r1', name: 'numbers', status: 'finished' });
  await store.runs.create({ id: 'r2', name: 'other', status: 'finished' });
  const sft = run('r1', { name: 'numbers', checkpoints: CKS.r1 });
  (sft.job!.train as unknown) = { mode: 'lora', lora: { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj'] } };
  const worker = workerWithRuns([sft, run('r2', { checkpoints: CKS.r2 })], CKS);
  const service = new Preferences({ store: async () => store });
  // As the handler answers: storage's refusals become protocol errors.
  const asWorker = <T>(fn: () => Promise<T>) => fn().catch((e) => Promise.reject(new WorkerFailure(toProtocolError(e))));
  worker.on('list-preferences', (p) => asWorker(() => service.list(p.runId)));
  worker.on('save-preference', (p) => asWorker(() => service.save(p)));
  worker.on('update-preference', (p) => asWorker(() => service.update(p.runId, p.id, p.patch)));
  worker.on('delete-preference', (p) => asWorker(() => service.delete(p.runId, p.id)));
  const generated: GenerateParams[] = [];
  worker.on('generate', (p): GenerateOutcome => {
    generated.push(p);
    const text = p.useAdapter ? (p.temperature > 0 ? `sample seed ${p.seed}` : '697') : 'six nine seven';
    return { promptTokens: [1], tokens: [5], text, finishReason: 'eos', ms: 1, tokensPerSecond: 1, adapter: p.useAdapter ? { runId: 'r1', step: 6, strength: 1 } : null };
  });
  const page = testPage(worker.client, { selection: { runId: 'r1', step: null }, model: MODEL });
  patch(page.store, 'model', { phase: 'ready' });
  await tick(5);
  return { db: store, worker, generated, sft, ...page };
}

const rowItem = (line: number, base: string, tuned: string): PreferenceItem => ({ key: heldoutKey('r1', 6, line), runId: 'r1', step: 6, prompt: `prompt ${line}`, base, tuned });

describe('preferences from the compare view', () => {
  it('marks the prompt box\u2019s replies: base or tuned, a new choice replaces the pair, an edit is chosen over the tuned reply, unmark deletes', async () => {
    const { actions, store: app, worker } = await setup();
    const page = app;
    actions.setCompareSettings({ prompt: 'Write as digits: six hundred ninety seven', seed: 5 });
    await actions.comparePrompt();
    const p = page.getState().compare.prompt;
    expect(p.phase).toBe('ready');
    const item: PreferenceItem = { key: `prompt:${p.runs}`, runId: 'r1', step: 6, prompt: 'Write as digits: six hundred ninety seven', base: p.base.outcome!.text, tuned: p.tuned.outcome!.text };

    await actions.markPreference(item, 'tuned');
    const saved = worker.callsOf('save-preference');
    expect(saved.map((c) => c.payload)).toEqual([{ runId: 'r1', step: 6, prompt: 'Write as digits: six hundred ninety seven', chosen: '697', rejected: 'six nine seven', source: 'base-vs-tuned' }]);
    let prefs = app.getState().compare.preferences;
    expect(prefs.list).toHaveLength(1);
    expect(prefs.marks[item.key]).toEqual({ pairId: prefs.list[0]!.id, choice: 'tuned' });

    // The same choice again stores nothing; another choice replaces the pair.
    await actions.markPreference(item, 'tuned');
    expect(worker.callsOf('save-preference')).toHaveLength(1);
    await actions.markPreference(item, 'base');
    prefs = app.getState().compare.preferences;
    expect(prefs.list.map((x) => [x.chosen, x.rejected])).toEqual([['six nine seven', '697']]);
    expect(worker.callsOf('delete-preference')).toHaveLength(1);

    // An edit identical to the tuned reply teaches nothing: refused on the page, nothing stored.
    await actions.markPreference(item, 'edited', '697');
    expect(app.getState().compare.preferences.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('same as the tuned one') });
    expect(worker.callsOf('save-preference')).toHaveLength(2);
    await actions.markPreference(item, 'edited', 'six hundred ninety-seven is 697');
    prefs = app.getState().compare.preferences;
    expect(prefs.error).toBeNull();
    expect(prefs.list).toEqual([expect.objectContaining({ chosen: 'six hundred ninety-seven is 697', rejected: '697', source: 'edited', step: 6 })]);
    expect(prefs.marks[item.key]).toMatchObject({ choice: 'edited', edited: 'six hundred ninety-seven is 697' });

    await actions.unmarkPreference(item.key);
    prefs = app.getState().compare.preferences;
    expect(prefs.list).toEqual([]);
    expect(prefs.marks).toEqual({});
  });

  it('two tuned samples: the comparison\u2019s prompt at its seed and the next, temperature 0.8 when the box is greedy; one is marked', async () => {
    const { actions, store: app, generated, worker } = await setup();
    actions.setCompareSettings({ prompt: 'twelve', seed: 5, temperature: 0, maxNewTokens: 7 });
    await actions.sampleTwo();
    expect(app.getState().compare.preferences.samples).toMatchObject({ phase: 'error', error: { message: 'Compare the outputs on a prompt first.' } });
    await actions.comparePrompt();
    generated.length = 0;
    await actions.sampleTwo();
    expect(generated.map((g) => [g.seed, g.temperature, g.useAdapter, g.maxNewTokens, g.prompt])).toEqual([
      [5, 0.8, true, 7, 'twelve\nAnswer:'],
      [6, 0.8, true, 7, 'twelve\nAnswer:'],
    ]);
    expect(worker.callsOf('load-adapter').at(-1)!.payload).toEqual({ runId: 'r1', step: 6 });
    const samples = app.getState().compare.preferences.samples;
    expect(samples).toMatchObject({ phase: 'ready', seeds: [5, 6], temperature: 0.8, texts: ['sample seed 5', 'sample seed 6'] });
    const runs = app.getState().compare.prompt.runs;
    await actions.markPreference({ key: `prompt:${runs}`, runId: 'r1', step: 6, prompt: 'twelve', base: 'x', tuned: 'y' }, 'sample-2');
    expect(app.getState().compare.preferences.list).toEqual([expect.objectContaining({ prompt: 'twelve', chosen: 'sample seed 6', rejected: 'sample seed 5', source: 'two-samples' })]);
    // A new comparison drops the samples of the old one.
    await actions.comparePrompt();
    expect(app.getState().compare.preferences.samples).toMatchObject({ phase: 'idle', texts: null });
  });

  it('the list follows the selected run and survives a new page; edit and delete; the JSONL reads back as the same pairs', async () => {
    const { actions, store: app, worker, db } = await setup();
    await actions.markPreference(rowItem(3, 'Once upon a time', '42'), 'tuned');
    await actions.markPreference(rowItem(9, '7', '7 7'), 'base');
    expect(app.getState().compare.preferences.list).toHaveLength(2);

    patch(app, 'selection', { runId: 'r2', step: null });
    await tick(5);
    expect(app.getState().compare.preferences).toMatchObject({ runId: 'r2', phase: 'ready', list: [] });
    patch(app, 'selection', { runId: 'r1', step: null });
    await tick(5);
    const list = app.getState().compare.preferences.list;
    expect(list.map((x) => x.chosen)).toEqual(['42', '7']);
    expect(await db.preferences.list('r1')).toEqual(list);

    expect(await actions.updatePreference(list[1]!.id, { rejected: '7 7' })).toBe(true);
    expect(await actions.updatePreference(list[1]!.id, { chosen: '7 7' })).toBe(false);
    expect(app.getState().compare.preferences.error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('identical') });
    await actions.deletePreference(list[0]!.id);
    expect(app.getState().compare.preferences.list.map((x) => x.chosen)).toEqual(['7']);
    expect(app.getState().compare.preferences.marks[heldoutKey('r1', 6, 3)]).toBeUndefined();
    expect(worker.callsOf('update-preference')).toHaveLength(2);

    // Another page on the same storage (a reload) lists the same pairs.
    const again = testPage(worker.client, { selection: { runId: 'r1', step: null }, model: MODEL });
    await tick(5);
    expect(again.store.getState().compare.preferences.list).toEqual(app.getState().compare.preferences.list);
    again.actions.dispose();

    await actions.markPreference(rowItem(4, 'base text', 'tuned "quoted"\nline'), 'tuned');
    patch(app, 'runs', { list: [run('r1', { name: 'numbers / v2' })] });
    const out = actions.preferencesJsonl()!;
    expect(out.filename).toBe('numbers-v2-preferences.jsonl');
    expect(out.count).toBe(2);
    const parsed = await parseDataset(textSource(out.text, out.filename));
    expect(parsed.format).toBe('preference-jsonl');
    expect(parsed.records.map((r) => (r.kind === 'preference' ? [r.prompt, r.chosen, r.rejected] : null))).toEqual([
      [[{ role: 'user', content: 'prompt 9' }], '7', '7 7'],
      [[{ role: 'user', content: 'prompt 4' }], 'tuned "quoted"\nline', 'base text'],
    ]);
    expect(preferencesFileName('  ')).toBe('run-preferences.jsonl');
  });

  it('Train with DPO: refused without pairs; then the JSONL goes through inspect-data and a DPO run starts from the selected checkpoint', async () => {
    const { actions, store: app, worker, sft } = await setup();
    patch(app, 'runs', { list: [sft] });
    await actions.trainDpoOnPreferences();
    expect(app.getState().compare.preferences.dpo).toMatchObject({ phase: 'error', error: { code: 'BAD_DATASET' } });
    expect(worker.callsOf('inspect-data')).toHaveLength(0);

    await actions.markPreference(rowItem(3, 'Once upon a time', '42'), 'tuned');
    await actions.markPreference(rowItem(9, '7 7', '7'), 'tuned');
    let inspected: InspectDataPayload | null = null;
    worker.on('inspect-data', (p) => {
      inspected = p;
      return { datasetId: 'ds-prefs', report: { name: 'prefs', split: { train: 2, val: 0 } } as never, stored: true, storageError: null, ms: 1 };
    });
    let started: TrainPayload | null = null;
    worker.on('train', (p, ctx) => {
      started = p;
      ctx.emit('run', { runId: 'r3', name: p.name!, startStep: 0, totalSteps: 2, trainableParams: 10, trainExamples: 2, valExamples: 0, backend: 'cpu', config: {} as never, resumedFrom: null });
      return { runId: 'r3', name: p.name!, reason: 'done', step: 2, totalSteps: 2, finalTrainLoss: 0.6, finalValLoss: null, checkpoint: null, resumedFrom: null, stoppedBy: null, quality: null, ms: 5, tokensPerSecond: 1 };
    });
    patch(app, 'selection', { runId: 'r1', step: 3 });
    await tick(5);
    await actions.trainDpoOnPreferences();
    expect(app.getState().compare.preferences.dpo.error).toBeNull();
    expect(inspected).toMatchObject({ source: { kind: 'text', name: 'numbers-preferences.jsonl' }, options: { format: 'preference-jsonl', lossOn: 'completion' } });
    const text = (inspected!.source as { text: string }).text;
    expect(text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { prompt: 'prompt 3', chosen: '42', rejected: 'Once upon a time' },
      { prompt: 'prompt 9', chosen: '7', rejected: '7 7' },
    ]);
    expect(started).toMatchObject({ datasetId: 'ds-prefs', name: 'numbers + DPO', startFrom: { runId: 'r1', step: 3 }, config: { objective: 'dpo', mode: 'lora', lora: { r: 4, target_modules: ['q_proj'] } } });
    // The DPO run is the page's training: it is selected, and the panel says the run is done.
    expect(app.getState().train).toMatchObject({ phase: 'done', run: { runId: 'r3', name: 'numbers + DPO' } });
    expect(app.getState().selection.runId).toBe('r3');
    expect(app.getState().compare.preferences.dpo).toEqual({ phase: 'ready', step: null, error: null });
  });
});
