// The worker's side of the protocol: the only browser place that owns TF.js state (the backend, the
// loaded model, the training run and its adapter). It is written against a MessageEndpoint, so the same
// code runs in a Web Worker and, in unit tests, in Node over a MessageChannel.
//
// Requests that touch the backend or the model run one at a time on a queue. A training run puts one
// step at a time on it, so the worker keeps answering while it trains: requests that do not need the
// model (get-backend, list-runs, pause, cancel…) at once, those that do (generate…) between two steps.
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend, currentBackend, reportFor, switchBackend, type BackendName, type BackendPreference, type BackendReport } from '../model/backend';
import { rebuildLanguageModel } from '../model/load';
import type { WeightMap } from '../model/types';
import { loadModel } from '../io/load-model';
import { generate } from '../model/generate';
import { dropKeptDecoderWeights } from '../model/fast-decode';
import { filesSource, hubSource, urlSource } from '../io/sources';
import type { ModelSource } from '../io/source';
import { TabtuneStore } from '../storage/index';
import {
  isRequestMessage,
  type BackendStatus,
  type ErrorMessage,
  type EventMessage,
  type MessageEndpoint,
  type ModelLocation,
  type PayloadOf,
  type RequestKind,
  type RequestMessage,
  type ResultMessage,
  type ResultOf,
} from '../protocol/messages';
import { Adapters } from './adapters';
import { compareHeldOut } from './compare';
import { applyRecipeRequest, explorePathRequest } from './path';
import { requireModel, type ModelContext, type WorkerContext } from './context';
import { DatasetRegistry } from './datasets';
import { fail, toProtocolError } from './errors';
import { deviceMemoryLimits } from '../model/memory-limits';
import { exportRun } from './export';
import { importAdapter } from './import-adapter';
import { runReportRequest } from './report';
import { Preferences } from './preferences';
import { Runs } from './runs';
import { measureStep } from './speed';
import { timeBackendsRequest } from './backend-timing';
import { Training } from './training';
import { browserTraining } from '../train/config';
import { watchWebGpuDevice } from './webgpu-diagnostics';

export { toProtocolError } from './errors';

export interface HandlerOptions {
  /** Where tfjs-backend-wasm's .wasm files are served (the worker entry passes Vite asset URLs). */
  wasmPaths?: string | Record<string, string>;
  /** Where runs, checkpoints and datasets live (default: IndexedDB, database "tabtune"). Created on first use. */
  store?: TabtuneStore | (() => TabtuneStore);
  /**
   * Where Web Locks are missing (Node), a 'running' run whose heartbeat is older than this is reported as
   * interrupted (default: the store's staleAfterMs, 60 s). In a browser the run's lock decides.
   */
  staleAfterMs?: number;
  /** Heartbeat interval of a training run (default 5 s). */
  heartbeatMs?: number;
  /** Backends `time-backends` times besides WebGPU and WASM (Node tests add 'cpu'); default none. */
  timeBackendsAlso?: BackendName[];
}

function sourceFor(location: ModelLocation): ModelSource {
  switch (location.kind) {
    case 'url':
      return urlSource(location.url, { cacheName: location.cache === false ? false : undefined });
    case 'hub':
      return hubSource(location.id);
    case 'files':
      return filesSource(location.files);
  }
}

/**
 * tfjs-backend-wasm caps its thread pool at navigator.hardwareConcurrency / 2 (it assumes two
 * hyper-threads per core), whatever setThreadsCount asks for. When the user asks for more threads
 * than that cap allows, raise the count this worker reports so the request is honoured. It must
 * happen before the WASM module starts, i.e. before the first `init-backend` that picks WASM.
 */
function allowWasmThreads(threads: number): void {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (!nav || (nav.hardwareConcurrency ?? 0) >= threads * 2) return;
  Object.defineProperty(nav, 'hardwareConcurrency', { value: threads * 2, configurable: true });
}

/** GenerateParams.stopTokenIds, checked: token ids are non-negative integers. */
function stopIds(ids: unknown): number[] {
  if (ids === undefined || ids === null) return [];
  if (!Array.isArray(ids) || !ids.every((t) => Number.isInteger(t) && t >= 0)) {
    throw fail('BAD_REQUEST', `stopTokenIds must be a list of token ids (non-negative integers), got ${JSON.stringify(ids)?.slice(0, 100)}.`);
  }
  return ids as number[];
}

export function createWorkerHandler(endpoint: MessageEndpoint, options: HandlerOptions = {}): { dispose(): void } {
  let backend: BackendReport | null = null;
  /** What the backend was started with (time-backends moves the model only under 'auto'). */
  let backendAsked: { preference: BackendPreference; wasmThreads: number | null } = { preference: 'auto', wasmThreads: null };
  let modelCtx: ModelContext | null = null;
  /** Generations and dataset reads in flight, by request id. */
  const running = new Map<number, AbortController>();
  /** Requests that touch the backend or the model run one at a time, in order. */
  let queue: Promise<unknown> = Promise.resolve();

  const post = (m: ResultMessage | ErrorMessage | EventMessage, transfer?: Transferable[]) =>
    transfer?.length ? endpoint.postMessage(m, transfer) : endpoint.postMessage(m);

  function serial<T>(task: () => Promise<T>): Promise<T> {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  }

  let storePromise: Promise<TabtuneStore> | null = null;
  /** The store, created on first use; recover() collects crashed writes and marks stale runs interrupted. */
  function getStore(): Promise<TabtuneStore> {
    storePromise ??= (async () => {
      let store: TabtuneStore;
      try {
        store = typeof options.store === 'function' ? options.store() : (options.store ?? new TabtuneStore());
      } catch (e) {
        storePromise = null;
        throw fail('STORAGE', `Storage is not available: ${(e as Error).message}`, 'tabtune keeps runs in IndexedDB: allow site data for this page (private windows may block it).');
      }
      try {
        await store.recover();
      } catch {
        // Recovery is housekeeping; the store still works.
      }
      return store;
    })();
    return storePromise;
  }

  // The services (each module says what it owns), each given what it needs.
  const worker: WorkerContext = { post, store: getStore, model: () => modelCtx, serialModel: serial };
  const adapters: Adapters = new Adapters(worker, () => training.current);
  const datasets: DatasetRegistry = new DatasetRegistry({ store: getStore, withBase: (fn) => adapters.withBase(fn), post });
  const training: Training = new Training(worker, { datasets, adapters, staleAfterMs: options.staleAfterMs ?? 60_000, heartbeatMs: options.heartbeatMs ?? 5_000 });
  const runs = new Runs(worker, training, adapters);
  const preferences = new Preferences(worker);

  function stopGenerations(): void {
    for (const c of running.values()) c.abort();
  }

  /** Before the model goes away: stop training, drop the adapter, forget encodings made with it. */
  async function releaseModel(): Promise<void> {
    await training.stop();
    adapters.detach();
    datasets.forgetModel();
    modelCtx?.model.dispose();
    dropKeptDecoderWeights(); // the decoder's copy of its weights
    modelCtx = null;
  }

  async function ensureBackend(): Promise<BackendReport> {
    if (!backend) {
      backend = await setupBackend('auto', { wasmPaths: options.wasmPaths });
      watchWebGpuDevice();
    }
    return backend;
  }

  function status(report: BackendReport): BackendStatus {
    const isolated = Boolean((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated);
    const reasons = [...report.reasons];
    const cores = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency;
    if (report.name === 'wasm' && report.threads === 1 && isolated && cores && !reasons.some((r) => r.startsWith('WASM threads'))) {
      reasons.push(
        `WASM threads: tfjs-backend-wasm uses half the logical cores and this device reports ${cores}, so it runs 1 thread (add ?threads=N to the address to ask for more)`,
      );
    }
    return { ...report, reasons, tfBackend: currentBackend(), crossOriginIsolated: isolated, memory: deviceMemoryLimits() };
  }

  const pathDeps = { worker, adapters, datasets, training: () => training.current };

  /**
   * time-backends under 'auto': the loaded model moves to the backend measured faster (built again there from
   * its weights, read back beforehand); the old one's tensors are freed. Runs on the model queue.
   */
  async function moveModelTo(name: BackendName, weights: WeightMap, reasons: string[]): Promise<BackendStatus> {
    const ctx = requireModel(worker);
    const before = backend;
    await switchBackend(name, { wasmPaths: options.wasmPaths, wasmThreads: backendAsked.wasmThreads ?? undefined });
    let moved;
    try {
      moved = rebuildLanguageModel(ctx.model, weights);
    } catch (e) {
      await switchBackend(before?.name ?? 'wasm', { wasmPaths: options.wasmPaths });
      throw e;
    }
    await releaseModel();
    modelCtx = { ...ctx, model: moved };
    // The reasons that still hold (WebGPU's adapter notes), the WASM notes of the new backend, and the measured ones.
    const kept = (before?.reasons ?? []).filter((r) => !r.startsWith('WASM'));
    backend = await reportFor(name, [...kept, ...reasons], before?.adapter ?? null);
    return status(backend);
  }
  const timingDeps = {
    worker,
    adapters,
    training: () => training.current,
    backend: () => (backend ? { report: backend, ...backendAsked } : null),
    backendOptions: () => ({ wasmPaths: options.wasmPaths, wasmThreads: backendAsked.wasmThreads ?? undefined }),
    moveTo: moveModelTo,
    extraCandidates: options.timeBackendsAlso,
  };
  const handlers: { [K in RequestKind]: (payload: PayloadOf<K>, id: number) => Promise<ResultOf<K>> } = {
    'init-backend': (p) => {
      stopGenerations();
      training.dispose();
      return serial(async () => {
        // Weights live on the backend that created them: a switch means loading the model again.
        await releaseModel();
        backend = null;
        if (p.wasmThreads) allowWasmThreads(p.wasmThreads);
        backendAsked = { preference: p.preference, wasmThreads: p.wasmThreads ?? null };
        backend = await setupBackend(p.preference, { wasmPaths: options.wasmPaths, wasmThreads: p.wasmThreads });
        watchWebGpuDevice();
        return status(backend);
      });
    },

    'load-model': (p, id) => {
      stopGenerations();
      training.dispose();
      return serial(async () => {
        await ensureBackend();
        const source = sourceFor(p.location);
        const t0 = performance.now();
        dropKeptDecoderWeights(); // a copy of the working model's weights: not beside the new one while it loads
        // The working model goes only once the new one is loaded: a load that fails leaves it (and its adapter) in place.
        const loaded = await loadModel(source, {
          onProgress: (pr) => post({ kind: 'progress', id, payload: pr }),
        });
        await releaseModel();
        modelCtx = { model: loaded, source, location: p.location };
        return { name: loaded.name, label: source.label, ...loaded.info, loadMs: performance.now() - t0, training: browserTraining(loaded.info.arch) };
      });
    },

    generate: (p, id) => {
      const controller = new AbortController();
      running.set(id, controller);
      return serial(async () => {
        try {
          const m = requireModel(worker).model;
          const adapter = adapters.forGeneration(p);
          try {
            const t0 = performance.now();
            const [out] = await generate(m, [p.prompt], {
              maxNewTokens: p.maxNewTokens,
              temperature: p.temperature,
              topK: p.topK,
              topP: p.topP,
              seed: p.seed,
              stopStrings: adapter.stopStrings,
              stopTokenIds: [...new Set([...adapter.stopTokenIds, ...stopIds(p.stopTokenIds)])],
              signal: controller.signal,
              onToken: (e) => post({ kind: 'token', id, payload: { token: e.token, text: e.text } }),
            });
            const ms = performance.now() - t0;
            return { ...out, ms, tokensPerSecond: out.tokens.length / (ms / 1000), adapter: adapter.use };
          } finally {
            adapter.restore();
          }
        } finally {
          running.delete(id);
        }
      });
    },

    cancel: async (p) => {
      const c = running.get(p.target);
      c?.abort();
      if (c) return { cancelled: true };
      return { cancelled: training.cancel(p.target) };
    },

    forward: (p) =>
      serial(async () => {
        const m = requireModel(worker).model;
        if (!p.ids.length) throw fail('BAD_REQUEST', 'forward needs at least one token id.');
        const logits = m.lm.forward([p.ids]);
        try {
          const data = await logits.data();
          return { logits: Array.from(data), vocabSize: logits.shape[2] };
        } finally {
          logits.dispose();
        }
      }),

    'get-backend': async () => ({ backend: tf.getBackend(), threads: backend?.threads ?? null }),

    'inspect-data': async (p, id) => {
      const controller = new AbortController();
      running.set(id, controller);
      try {
        return await serial(() => datasets.inspect(p, { model: modelCtx?.model ?? null, requestId: id, signal: controller.signal }));
      } finally {
        running.delete(id);
      }
    },

    train: (p, id) => training.train(p, id),
    'resume-run': (p, id) => training.resumeRun(p, id),
    pause: () => training.pause(),
    'resume-train': () => training.resumeTrain(),
    'list-runs': () => runs.list(),
    'list-checkpoints': (p) => runs.listCheckpoints(p.runId),
    'load-adapter': (p) => adapters.load(p),
    'import-adapter': (p) => importAdapter({ worker, adapters, training: () => training.current }, p),
    'time-backends': (p, id) => timeBackendsRequest(timingDeps, p ?? {}, id),
    'measure-step': (p, id) => measureStep({ worker, datasets, adapters, training: () => training.current }, p, id),
    'compare-heldout': async (p, id) => {
      const controller = new AbortController();
      running.set(id, controller);
      try {
        return await compareHeldOut({ worker, adapters, datasets }, p, id, controller.signal);
      } finally {
        running.delete(id);
      }
    },
    export: (p, id) => exportRun({ worker, adapters, datasets }, p, id),
    'delete-run': (p) => runs.delete(p.runId),
    'delete-checkpoint': (p) => runs.deleteCheckpoint(p.runId, p.step),
    'storage-report': () => runs.storageReport(),
    'rename-run': (p) => runs.rename(p.runId, p.name),
    'pin-checkpoint': (p) => runs.pinCheckpoint(p.runId, p.step, p.pinned),
    'run-metrics': (p) => runs.metrics(p.runId),
    'explore-path': async (p, id) => {
      const controller = new AbortController();
      running.set(id, controller);
      try {
        return await explorePathRequest(pathDeps, p, id, controller.signal);
      } finally {
        running.delete(id);
      }
    },
    'apply-recipe': (p) => applyRecipeRequest(pathDeps, p),
    'run-report': (p) => runReportRequest({ worker, datasets }, p),
    'list-preferences': (p) => preferences.list(p.runId),
    'save-preference': (p) => preferences.save(p),
    'update-preference': (p) => preferences.update(p.runId, p.id, p.patch),
    'delete-preference': (p) => preferences.delete(p.runId, p.id),
    'dataset-text': (p) => datasets.text(p?.datasetId),
  };

  async function handle(m: RequestMessage): Promise<void> {
    try {
      const handler = handlers[m.kind] as (payload: unknown, id: number) => Promise<unknown>;
      const payload = await handler(m.payload, m.id);
      // Export bytes move to the page instead of being copied.
      const bytes = m.kind === 'export' ? (payload as ResultOf<'export'>).bytes : null;
      post({ kind: 'result', id: m.id, payload } as ResultMessage, bytes ? [bytes.buffer as ArrayBuffer] : undefined);
    } catch (e) {
      post({ kind: 'error', id: m.id, error: toProtocolError(e) });
    }
  }

  const listener = (event: { data: unknown }) => {
    const m = event.data;
    if (isRequestMessage(m)) {
      void handle(m);
    } else {
      const id = typeof (m as { id?: unknown })?.id === 'number' ? (m as { id: number }).id : -1;
      post({ kind: 'error', id, error: { code: 'BAD_REQUEST', message: `Not a request: ${JSON.stringify(m)?.slice(0, 200)}` } });
    }
  };
  endpoint.addEventListener('message', listener);

  return {
    dispose() {
      endpoint.removeEventListener?.('message', listener);
      stopGenerations();
      training.dispose();
      adapters.detach();
      modelCtx?.model.dispose();
      dropKeptDecoderWeights();
      modelCtx = null;
    },
  };
}
