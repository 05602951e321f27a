// Starts the page: the TF.js worker, the protocol client, the store, the controller, and a small
// test API on window (used by Playwright page objects instead of CSS selectors).
import { WorkerClient } from '../protocol/client';
import type { BackendPreference, MessageEndpoint, ModelSummary } from '../protocol/messages';
import { createAppStore, initialState, parseSavedSettings, patch, savedSettings, type AppState, type AppStore, type CatalogEntry, type ExampleEntry } from '../store/store';
import { createController, type Controller } from './controller';
import { createTrainingTestApi, type TrainingTestApi } from './test-api';

const preferences: readonly BackendPreference[] = ['auto', 'webgpu', 'wasm', 'cpu'];

export interface PageParams {
  backend: BackendPreference;
  wasmThreads: number | null;
  model: string | null;
}

/** ?backend=wasm|webgpu|cpu|auto, ?threads=N (WASM threads), ?model=<name from /models/index.json>. */
export function readParams(search: string): PageParams {
  const q = new URLSearchParams(search);
  const backend = q.get('backend') as BackendPreference | null;
  const threads = Number(q.get('threads'));
  return {
    backend: backend && preferences.includes(backend) ? backend : 'auto',
    wasmThreads: Number.isInteger(threads) && threads > 0 ? Math.min(threads, 16) : null,
    model: q.get('model'),
  };
}

export interface TabtuneTestApi extends TrainingTestApi {
  /** What TF.js in the worker says it runs on, and the WASM thread count. */
  getBackend(): Promise<{ backend: string; threads: number | null }>;
  /** Logits for one row of token ids, row-major [ids.length][vocabSize]. */
  forward(ids: number[]): Promise<{ logits: number[]; vocabSize: number }>;
  whenModelReady(): Promise<ModelSummary>;
  state(): AppState;
}

declare global {
  interface Window {
    __tabtune?: TabtuneTestApi;
  }
}

async function fetchCatalog(): Promise<{ models: CatalogEntry[]; hint?: string }> {
  const res = await fetch('/models/index.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body = (await res.json()) as { models?: CatalogEntry[]; hint?: string };
  return { models: Array.isArray(body.models) ? body.models : [], hint: body.hint };
}

const SETTINGS_KEY = 'tabtune.settings';

function readSetting(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function writeSetting(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Storage blocked or full: the settings just do not survive a reload.
  }
}

async function fetchExamples(): Promise<ExampleEntry[]> {
  const res = await fetch('/examples/index.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const body = (await res.json()) as unknown;
  return Array.isArray(body) ? (body as ExampleEntry[]) : [];
}

export function bootstrap(): { store: AppStore; controller: Controller } {
  const params = readParams(window.location.search);
  const saved = parseSavedSettings(readSetting(SETTINGS_KEY));
  const store = createAppStore(initialState({ backend: { preference: params.backend, wasmThreads: params.wasmThreads }, saved }));
  // Training settings and data options survive a reload (runs, checkpoints and datasets are in IndexedDB).
  store.subscribe((s, prev) => {
    if (s.train.config !== prev.train.config || s.train.preset !== prev.train.preset || s.data.options !== prev.data.options) {
      writeSetting(SETTINGS_KEY, JSON.stringify(savedSettings(s)));
    }
  });
  const worker = new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'tabtune-engine' });
  const client = new WorkerClient(worker as unknown as MessageEndpoint);

  worker.addEventListener('error', (e) => {
    const error = {
      code: 'INTERNAL' as const,
      message: `The model worker stopped: ${e.message || 'unknown error'}`,
      hint: 'Reload the page. If it happens again, try another backend.',
    };
    client.failAll(error);
    patch(store, 'backend', { phase: 'error', error });
  });

  const controller = createController({
    client,
    store,
    fetchCatalog,
    fetchExamples,
    absoluteUrl: (path) => new URL(path, window.location.href).href,
    onPreferenceChange: (pref) => {
      const url = new URL(window.location.href);
      url.searchParams.set('backend', pref);
      window.history.replaceState(null, '', url);
    },
  });

  window.__tabtune = {
    ...createTrainingTestApi(client, (path) => new URL(path, window.location.href).href),
    getBackend: () => client.request('get-backend', {}),
    forward: (ids) => client.request('forward', { ids }),
    whenModelReady: async () => {
      await controller.whenModelReady();
      return store.getState().model.summary!;
    },
    state: () => store.getState(),
  };

  void controller.start({ model: params.model });
  return { store, controller };
}
