// The controller (user intents -> protocol -> store) with the real worker handler in-process and
// the bundled tabtune-tiny model served over HTTP: what the page does, minus React and the DOM.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { generate } from '../model/generate';
import { loadModel } from '../io/load-model';
import { canGenerate, createAppStore, initialState, noModelAvailable, type AppStore, type CatalogEntry } from '../store/store';
import { TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';
import { createController, type Controller } from './controller';

describe('controller', () => {
  let http: { base: string; close(): void };
  let worker: InProcessWorker;
  let store: AppStore;
  let controller: Controller;
  let catalog: CatalogEntry[];

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    worker = connectInProcess();
  });
  afterAll(() => {
    worker?.close();
    http?.close();
  });

  beforeEach(() => {
    catalog = [{ name: 'tabtune-tiny', url: '/model/', origin: 'bundled' }];
    store = createAppStore(initialState({ backend: { preference: 'wasm' } }));
    controller = createController({
      client: worker.client,
      store,
      fetchCatalog: async () => ({ models: catalog }),
      absoluteUrl: (path) => new URL(path, http.base).href,
    });
  });

  it('starts: backend, catalog, then the first model', async () => {
    await controller.start();
    await controller.whenModelReady();
    const s = store.getState();
    expect(s.backend.status?.name).toBe('wasm');
    expect(s.model.catalog.entries.map((e) => e.name)).toEqual(['tabtune-tiny']);
    expect(s.model.summary?.numParams).toBe(447_040);
    expect(s.model.locationLabel).toBe('tabtune-tiny');
    expect(canGenerate(s)).toBe(true);
  });

  it('generates greedily into the store, matching the engine\'s own greedy continuation', async () => {
    await controller.start();
    await controller.whenModelReady();
    // The same model run directly in this process (same TF.js backend as the in-process worker).
    const prompt = 'Once upon a time';
    const newTokens = 40;
    const m = await loadModel(directorySource(TINY_DIR));
    const [want] = await generate(m, [prompt], { maxNewTokens: newTokens, temperature: 0 });
    m.dispose();
    expect(want!.tokens).toHaveLength(newTokens); // greedy tabtune-tiny runs on past 40 tokens here (no EOS)
    const seen: string[] = [];
    const unsubscribe = store.subscribe((s) => seen.push(s.generation.text));
    controller.setSettings({ prompt, maxNewTokens: newTokens, temperature: 0 });
    await controller.generate();
    unsubscribe();
    const g = store.getState().generation;
    expect(g.phase).toBe('ready');
    expect(g.text).toBe(want!.text);
    expect(g.tokenCount).toBe(newTokens);
    expect(g.outcome?.finishReason).toBe('length');
    // The text grew token by token in the store before the result arrived.
    expect(new Set(seen).size).toBeGreaterThan(newTokens / 2);
  });

  it('stops a running generation', async () => {
    await controller.start();
    await controller.whenModelReady();
    controller.setSettings({ prompt: 'Once upon a time', maxNewTokens: 400, temperature: 0.8 });
    const unsubscribe = store.subscribe((s) => {
      if (s.generation.tokenCount === 3) void controller.stop();
    });
    await controller.generate();
    unsubscribe();
    const g = store.getState().generation;
    expect(g.outcome?.finishReason).toBe('cancelled');
    expect(g.tokenCount).toBeLessThan(400);
    expect(g.requestId).toBeNull();
  });

  it('reloads the model when the backend changes', async () => {
    await controller.start();
    await controller.whenModelReady();
    await controller.selectBackend('cpu');
    const s = store.getState();
    expect(s.backend.status?.name).toBe('cpu');
    expect(s.model.phase).toBe('ready');
    expect(s.model.summary?.name).toBe('model');
  });

  it('shows load errors with their code and what was tried, and keeps the working model loaded', async () => {
    await controller.start();
    await controller.whenModelReady();
    const summary = store.getState().model.summary;
    await controller.loadFromInput(`${http.base}/nothing/`);
    expect(store.getState().model).toMatchObject({ phase: 'ready', summary, locationLabel: 'tabtune-tiny', error: { code: 'MISSING_FILE' }, errorLabel: `${http.base}/nothing` });
    expect(canGenerate(store.getState())).toBe(true);
    await controller.generate();
    expect(store.getState().generation.outcome?.tokens.length).toBeGreaterThan(0);

    await controller.loadFromInput('asdf qwer !!');
    expect(store.getState().model).toMatchObject({ phase: 'ready', summary, error: { code: 'BAD_REQUEST' }, errorLabel: 'asdf qwer !!' });
    expect(store.getState().model.error?.message).toContain('neither an http(s) URL nor a Hugging Face model id');
    // The backend switch reloads the working model, not the failed one.
    await controller.selectBackend('cpu');
    expect(store.getState().model).toMatchObject({ phase: 'ready', locationLabel: 'tabtune-tiny', error: null });
  });

  it('says what was tried when no model could be loaded at all', async () => {
    catalog = [];
    await controller.start();
    await controller.loadFromInput('not a model');
    expect(store.getState().model).toMatchObject({ phase: 'error', summary: null, errorLabel: 'not a model', error: { code: 'BAD_REQUEST' } });
    expect(canGenerate(store.getState())).toBe(false);
  });

  it('says when no model is available', async () => {
    catalog = [];
    await controller.start();
    const s = store.getState();
    expect(noModelAvailable(s)).toBe(true);
    expect(s.model.phase).toBe('idle');
    expect(canGenerate(s)).toBe(false);
  });
});
