// The page's side of time-backends (controller -> store), with the real worker handler in-process and
// tabtune-tiny: with 'auto' the timing runs by itself after the model loads (progress in the store), the backend
// in use follows the pick, a reload reads the stored figures instead of measuring, an explicit backend is not
// timed until asked. No wall-clock assertions.
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppStore, initialState, type AppState, type AppStore } from '../store/store';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';
import { createController, type Controller } from './controller';

function until(store: AppStore, ok: (s: AppState) => boolean): Promise<AppState> {
  return new Promise((resolve) => {
    if (ok(store.getState())) return resolve(store.getState());
    const off = store.subscribe((s) => {
      if (ok(s)) {
        off();
        resolve(s);
      }
    });
  });
}

describe('measuring the backends from the page', () => {
  let http: { base: string; close(): void };
  let worker: InProcessWorker;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    worker = connectInProcess({ store: new TabtuneStore(freshIdb()), timeBackendsAlso: ['cpu'] });
  });
  afterAll(() => {
    worker?.close();
    http?.close();
  });

  function page(preference: 'auto' | 'wasm'): { store: AppStore; controller: Controller } {
    const store = createAppStore(initialState({ backend: { preference } }));
    const controller = createController({
      client: worker.client,
      store,
      fetchCatalog: async () => ({ models: [{ name: 'tabtune-tiny', url: '/model/', origin: 'bundled' }] }),
      absoluteUrl: (path) => new URL(path, http.base).href,
    });
    return { store, controller };
  }

  it("auto: times once after the load, shows progress, uses the faster backend; a reload reads the stored figures", async () => {
    const { store, controller } = page('auto');
    const measuring: Array<string | null> = [];
    store.subscribe((s) => {
      const m = s.backend.timing.progress?.measuring;
      if (m !== undefined && measuring.at(-1) !== m) measuring.push(m);
    });
    await controller.start();
    const s = await until(store, (x) => x.backend.timing.phase === 'ready' || x.backend.timing.phase === 'error');
    expect(s.backend.timing.error).toBeNull();
    const report = s.backend.timing.report!;
    expect(report.fromCache).toBe(false);
    expect(report.rows.map((r) => [r.backend, r.status])).toEqual([
      ['webgpu', 'skipped'],
      ['wasm', 'measured'],
      ['cpu', 'measured'],
    ]);
    expect(measuring).toEqual(expect.arrayContaining(['wasm', 'cpu']));
    expect(s.backend.timing.progress).toBeNull();
    // The backend in use is the one the figures picked.
    expect(s.backend.status?.name).toBe(report.picked);
    expect(s.backend.status?.tfBackend).toBe(report.picked);

    const reload = page('auto');
    await reload.controller.start();
    const again = await until(reload.store, (x) => x.backend.timing.phase === 'ready');
    expect(again.backend.timing.report).toMatchObject({ fromCache: true, measuredAt: report.measuredAt, picked: report.picked });
    expect(again.backend.status?.name).toBe(report.picked);
  });

  it('an explicit backend is not timed by itself; "measure again" times it and keeps the explicit choice', async () => {
    const { store, controller } = page('wasm');
    await controller.start();
    await controller.whenModelReady();
    expect(store.getState().backend.timing.phase).toBe('idle');
    controller.setTimeSoftwareGpu(true);
    expect(store.getState().backend.timing.allowSoftware).toBe(true);
    await controller.measureBackends({ force: true });
    const t = store.getState().backend.timing;
    expect(t.phase).toBe('ready');
    expect(t.report!.fromCache).toBe(false);
    expect(t.report!.switchedTo).toBeNull();
    if (t.report!.picked !== 'wasm') expect(t.report!.kept).toMatch(/^WASM was picked explicitly/);
    expect(store.getState().backend.status?.name).toBe('wasm');
  });
});
