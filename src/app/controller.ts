// Wiring: user intents -> protocol requests -> store updates. The page's actions, one module per
// feature: backend, model and generation here; data, training, checkpoints and runs in ./studio;
// Compare and Export in ./compare and ./export, on the selected run read by ./run-context; the
// trade-off chart (task vs forgetting, the path from base, what to keep) in ./tradeoff. Components
// call these actions and read the one store (src/store).
import { resolveModelLocation } from '../io/sources';
import { RequestError, type WorkerClient } from '../protocol/client';
import type { BackendPreference, ModelLocation, ProtocolError } from '../protocol/messages';
import { asProtocolError } from '../store/errors';
import { generationSource } from '../store/generation';
import { canGenerate, initialBackendTiming, isTraining, patch, patchPart, type AppStore, type CatalogEntry, type ExampleEntry } from '../store/store';
import type { AllActions } from '../ui/context';
import type { PresetName } from '../store/training';
import { createCompare } from './compare';
import { createExport } from './export';
import { createReport } from './report';
import { createPreferences } from './preferences';
import { createSelectedRun } from './run-context';
import { createStudio } from './studio';
import { createTradeoff } from './tradeoff';
import { createDataFix } from './data-fix';
import { createRunsCompare } from './runs-compare';

export interface ControllerDeps {
  client: WorkerClient;
  store: AppStore;
  /** Reads /models/index.json (injected so the controller runs without a server in tests). */
  fetchCatalog(): Promise<{ models: CatalogEntry[]; hint?: string }>;
  /** Turns a same-origin path such as "/models/x/" into an absolute URL the worker can fetch. */
  absoluteUrl(path: string): string;
  /** Called after the backend preference changed (e.g. to keep ?backend= in the address bar). */
  onPreferenceChange?(pref: BackendPreference): void;
  /** Reads /examples/index.json (default: no examples). */
  fetchExamples?(): Promise<ExampleEntry[]>;
  /** Clock for elapsed times and ETAs (default Date.now). */
  now?(): number;
}

export interface StartOptions {
  /** Catalog name to load instead of the first one. */
  model?: string | null;
}

export interface Controller extends AllActions {
  start(opts?: StartOptions): Promise<void>;
  /** Resolves once a model is loaded (or rejects with the load error). */
  whenModelReady(): Promise<void>;
  /** Stops Compare and Export following the store and drops their late answers (the page itself lives as long as its tab). */
  dispose(): void;
}

export function createController({ client, store, fetchCatalog, absoluteUrl, onPreferenceChange, fetchExamples, now }: ControllerDeps): Controller {
  let backendReady: Promise<void> | null = null;
  /** Bumped by every timing request and backend start: only the newest request owns the timing slice. */
  let timingSeq = 0;
  let modelWaiters: Array<{ resolve(): void; reject(e: Error): void }> = [];

  const settleWaiters = (error?: ProtocolError) => {
    for (const w of modelWaiters) {
      if (error) w.reject(new RequestError(error));
      else w.resolve();
    }
    modelWaiters = [];
  };

  async function initBackend(): Promise<void> {
    const { preference, wasmThreads } = store.getState().backend;
    patch(store, 'backend', { phase: 'busy', error: null });
    try {
      const status = await client.request('init-backend', { preference, wasmThreads: wasmThreads ?? undefined });
      patch(store, 'backend', { phase: 'ready', status });
    } catch (e) {
      patch(store, 'backend', { phase: 'error', status: null, error: asProtocolError(e) });
      throw e;
    } finally {
      // Either way the worker dropped the model: it lived on the previous backend.
      patch(store, 'model', { summary: null, phase: 'idle', progress: null });
      timingSeq++;
      patchPart(store, 'backend', 'timing', { ...initialBackendTiming(), allowSoftware: store.getState().backend.timing.allowSoftware });
    }
  }

  async function loadCatalog(): Promise<CatalogEntry[]> {
    patch(store, 'model', { catalog: { phase: 'busy', entries: [], hint: null, error: null } });
    try {
      const index = await fetchCatalog();
      patch(store, 'model', { catalog: { phase: 'ready', entries: index.models, hint: index.hint ?? null, error: null } });
      return index.models;
    } catch (e) {
      const error: ProtocolError = {
        code: 'NETWORK',
        message: `Could not read the list of models (/models/index.json): ${(e as Error).message}`,
        hint: 'Start the page with `npm start` (or `npm run preview` after a build), which serves /models/.',
      };
      patch(store, 'model', { catalog: { phase: 'error', entries: [], hint: null, error } });
      return [];
    }
  }

  /** Bumped by every load: only the newest one owns the model slice. */
  let loadSeq = 0;

  /**
   * Loads a model. The working one stays loaded (the worker swaps only once the new one is ready), so a
   * failed load leaves it in place: the slice keeps its summary and location, and the error names what was tried.
   */
  async function loadModel(location: ModelLocation, label: string): Promise<void> {
    const seq = ++loadSeq;
    const before = store.getState().model;
    const kept = before.summary ? { location: before.location, locationLabel: before.locationLabel } : null;
    patch(store, 'model', { phase: 'busy', location, locationLabel: label, progress: null, error: null, errorLabel: null });
    try {
      await backendReady;
      const backend = store.getState().backend;
      if (backend.phase === 'error') {
        throw new RequestError({
          code: 'BACKEND_UNAVAILABLE',
          message: `No backend is running (${backend.error?.message ?? 'it failed to start'}).`,
          hint: 'Pick another backend above; "auto" picks the fastest one that works.',
        });
      }
      const summary = await client.request(
        'load-model',
        { location },
        { progress: (p) => patch(store, 'model', { progress: p }) },
      );
      // A newer load may have started meanwhile; only the latest one owns the slice.
      if (seq !== loadSeq) return;
      patch(store, 'model', { phase: 'ready', summary, progress: null });
      // Another model: the output made with the previous one goes.
      patch(store, 'generation', { phase: 'idle', requestId: null, text: '', tokenCount: 0, outcome: null, error: null, madeWith: null });
      // Training settings follow the architecture (LoRA targets differ between Llama and GPT-2).
      if (store.getState().train.preset !== 'custom') studio.choosePreset(store.getState().train.preset as PresetName);
      settleWaiters();
      // Auto: which backend trains this model faster, measured once per model and device (stored), in the background.
      patchPart(store, 'backend', 'timing', { ...initialBackendTiming(), allowSoftware: store.getState().backend.timing.allowSoftware });
      if (store.getState().backend.preference === 'auto') void measureBackends({ force: false });
    } catch (e) {
      if (seq !== loadSeq) return;
      const error = asProtocolError(e);
      const summary = store.getState().model.summary;
      if (summary && kept) {
        // The worker still holds the working model: it stays the loaded one.
        patch(store, 'model', { phase: 'ready', ...kept, error, errorLabel: label, progress: null });
        settleWaiters();
      } else {
        patch(store, 'model', { phase: 'error', summary: null, error, errorLabel: label, progress: null });
        settleWaiters(error);
      }
    }
  }

  async function measureBackends({ force = false }: { force?: boolean } = {}): Promise<void> {
    const s = store.getState();
    if (s.model.phase !== 'ready' || s.backend.phase !== 'ready') return;
    if (isTraining(s)) {
      patchPart(store, 'backend', 'timing', { error: { code: 'BUSY', message: 'A run is training: timing the backends now would slow it.', hint: 'Measure again once the run has finished.' } });
      return;
    }
    const seq = ++timingSeq;
    const modelAtStart = s.model.summary;
    patchPart(store, 'backend', 'timing', { phase: 'busy', progress: null, error: null });
    try {
      const report = await client.request(
        'time-backends',
        { force, allowSoftware: store.getState().backend.timing.allowSoftware },
        { 'backend-timing': (p) => seq === timingSeq && patchPart(store, 'backend', 'timing', { progress: p }) },
      );
      if (seq !== timingSeq || store.getState().model.summary !== modelAtStart) return;
      patchPart(store, 'backend', 'timing', { phase: 'ready', report, progress: null });
      // Auto moved the model to the faster backend: say what is in use now.
      if (report.switchedTo) patch(store, 'backend', { status: report.switchedTo });
    } catch (e) {
      if (seq !== timingSeq) return;
      patchPart(store, 'backend', 'timing', { phase: 'error', progress: null, error: asProtocolError(e) });
    }
  }

  function catalogLocation(entry: CatalogEntry): ModelLocation {
    // The page's own server: no Cache API copy (it would go stale when the folder is rebuilt).
    return { kind: 'url', url: absoluteUrl(entry.url), cache: false };
  }

  const studio = createStudio({
    client,
    store,
    fetchExamples: fetchExamples ?? (async () => []),
    absoluteUrl,
    whenModelReady: () => controller.whenModelReady(),
  });

  // Compare and Export work on the selected run, read once for both.
  const selectedRun = createSelectedRun({ client, store });
  const compare = createCompare({ client, store, selectedRun, now });
  const exporter = createExport({ client, store, selectedRun, now });
  const reporter = createReport({ client, store, selectedRun, now });
  const preferences = createPreferences({ client, store, selectedRun, now, train: (payload) => studio.train(payload) });
  // The selected run's trade-off chart; rewinding and applying select through the studio.
  const tradeoff = createTradeoff({ client, store, studio, now });
  const runsCompare = createRunsCompare({ client, store });
  const dataFix = createDataFix({ client, store, inspectFile: (f) => studio.inspectFile(f), train: (payload) => studio.train(payload) });

  const controller: Controller = {
    ...studio,
    ...compare,
    ...exporter,
    ...reporter,
    ...tradeoff,
    ...preferences,
    ...runsCompare,
    ...dataFix,
    dispose() {
      runsCompare.dispose();
      compare.dispose();
      preferences.dispose();
      exporter.dispose();
      reporter.dispose();
      tradeoff.dispose();
      selectedRun.dispose();
    },
    async start(opts = {}) {
      backendReady = initBackend().catch(() => undefined);
      const examples = studio.loadExamples();
      const [entries] = await Promise.all([loadCatalog(), backendReady]);
      if (store.getState().backend.phase === 'error') return;
      const entry = (opts.model && entries.find((e) => e.name === opts.model)) || entries[0];
      if (entry) await loadModel(catalogLocation(entry), entry.name);
      await Promise.all([examples, store.getState().model.summary ? studio.afterModelReady() : studio.refreshRuns()]);
    },

    whenModelReady() {
      const { model } = store.getState();
      if (model.phase === 'ready') return Promise.resolve();
      if (model.phase === 'error' && model.error) return Promise.reject(new RequestError(model.error));
      return new Promise((resolve, reject) => modelWaiters.push({ resolve, reject }));
    },

    measureBackends,

    setTimeSoftwareGpu(allow) {
      patchPart(store, 'backend', 'timing', { allowSoftware: allow });
    },

    async selectBackend(preference) {
      if (store.getState().generation.phase === 'busy') await controller.stop();
      patch(store, 'backend', { preference });
      onPreferenceChange?.(preference);
      const { location, locationLabel } = store.getState().model;
      backendReady = initBackend().catch(() => undefined);
      await backendReady;
      if (store.getState().backend.phase === 'ready' && location) await loadModel(location, locationLabel ?? '');
    },

    async loadCatalogModel(name) {
      const entry = store.getState().model.catalog.entries.find((e) => e.name === name);
      if (entry) await loadModel(catalogLocation(entry), entry.name);
    },

    async loadFromInput(text) {
      const resolved = resolveModelLocation(/^\/|^\.\.?\//.test(text.trim()) ? absoluteUrl(text.trim()) : text);
      if (!resolved.ok) {
        // Nothing was asked of the worker: the working model (if any) stays loaded.
        const m = store.getState().model;
        patch(store, 'model', { phase: m.phase === 'ready' || m.phase === 'busy' ? m.phase : 'error', error: { code: 'BAD_REQUEST', message: resolved.error }, errorLabel: text.trim(), progress: m.progress });
        return;
      }
      const label = resolved.source.label;
      const location: ModelLocation = resolved.kind === 'hub' ? { kind: 'hub', id: label.replace(/^hub:/, '') } : { kind: 'url', url: label };
      await loadModel(location, label);
    },

    async loadFromFiles(files) {
      if (!files.length) return;
      await loadModel({ kind: 'files', files }, `${files.length} file${files.length === 1 ? '' : 's'}`);
    },

    setSettings(update) {
      patch(store, 'settings', update);
    },

    async generate() {
      const state = store.getState();
      if (!canGenerate(state)) return;
      const { prompt, maxNewTokens, temperature } = state.settings;
      // What the panel says it uses is what the worker gets: the selected run's checkpoint attached (or the
      // training run's adapter), or the base model alone.
      const source = generationSource(state)!;
      const adapter = source.adapter;
      patch(store, 'generation', { phase: 'busy', requestId: null, prompt, text: '', tokenCount: 0, outcome: null, error: null, madeWith: source });
      try {
        if (adapter && !adapter.training && adapter.step !== null) await client.request('load-adapter', { runId: adapter.runId, step: adapter.step });
      } catch (e) {
        patch(store, 'generation', { phase: 'error', requestId: null, error: asProtocolError(e) });
        return;
      }
      const handle = client.send(
        'generate',
        { prompt, maxNewTokens, temperature, useAdapter: adapter !== null },
        {
          token: (t) =>
            store.setState((s) => ({
              generation: { ...s.generation, text: s.generation.text + t.text, tokenCount: s.generation.tokenCount + (t.token >= 0 ? 1 : 0) },
            })),
        },
      );
      patch(store, 'generation', { requestId: handle.id });
      try {
        const outcome = await handle.result;
        // The step the worker's adapter really had (a training run's moves on between two steps).
        const madeWith = adapter && outcome.adapter ? { ...source, adapter: { ...adapter, step: outcome.adapter.step } } : source;
        patch(store, 'generation', { phase: 'ready', requestId: null, outcome, text: outcome.text, tokenCount: outcome.tokens.length, madeWith });
      } catch (e) {
        patch(store, 'generation', { phase: 'error', requestId: null, error: asProtocolError(e) });
      }
    },

    async stop() {
      const id = store.getState().generation.requestId;
      if (id !== null) await client.cancel(id);
    },
  };
  return controller;
}
