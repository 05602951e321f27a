// The worker's side of the protocol: the only browser place that owns TF.js state (the backend and
// the loaded model). It is written against a MessageEndpoint, so the same code runs in a Web Worker
// and, in unit tests, in Node over a MessageChannel.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, currentBackend, setupBackend, type BackendReport } from '../model/backend';
import { loadModel, type LanguageModel } from '../model/load';
import { generate } from '../model/generate';
import { filesSource, hubSource, urlSource } from '../io/sources';
import type { ModelSource } from '../io/source';
import { SourceError } from '../io/source';
import { ModelLoadError } from '../model/types';
import {
  isRequestMessage,
  type BackendStatus,
  type ErrorMessage,
  type EventMessage,
  type MessageEndpoint,
  type ModelLocation,
  type PayloadOf,
  type ProtocolError,
  type RequestKind,
  type RequestMessage,
  type ResultMessage,
  type ResultOf,
} from '../protocol/messages';

export interface HandlerOptions {
  /** Where tfjs-backend-wasm's .wasm files are served (the worker entry passes Vite asset URLs). */
  wasmPaths?: string | Record<string, string>;
}

class RequestFailure extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
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

/** Turns whatever was thrown into an error the UI can show, with a hint for the user. */
export function toProtocolError(e: unknown): ProtocolError {
  if (e instanceof RequestFailure) return e.error;
  if (e instanceof ModelLoadError) return { code: e.code, message: e.message, hint: e.hint ?? hintFor(e.code) };
  if (e instanceof SourceError) {
    return { code: 'NETWORK', message: e.message, hint: 'Check the address and that the server allows this page to read it (CORS, and Cross-Origin-Resource-Policy for cross-origin files).' };
  }
  if (e instanceof BackendError) {
    return { code: 'BACKEND_UNAVAILABLE', message: e.message, hint: 'Pick another backend ("auto" picks the fastest one that works).' };
  }
  const err = e as Error;
  return { code: 'INTERNAL', message: err?.message ?? String(e) };
}

function hintFor(code: ProtocolError['code']): string | undefined {
  switch (code) {
    case 'MISSING_FILE':
      return 'Point at a Hugging Face model folder: it needs config.json, tokenizer.json and model.safetensors.';
    case 'UNSUPPORTED_MODEL':
      return 'tabtune loads Llama-family and GPT-2 models in Hugging Face format.';
    case 'NETWORK':
      return 'Check the address and your connection.';
    default:
      return undefined;
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

export function createWorkerHandler(endpoint: MessageEndpoint, options: HandlerOptions = {}): { dispose(): void } {
  let backend: BackendReport | null = null;
  let model: LanguageModel | null = null;
  /** Generations in flight, by request id. */
  const running = new Map<number, AbortController>();
  /** Requests that touch the backend or the model run one at a time, in order. */
  let queue: Promise<unknown> = Promise.resolve();

  const post = (m: ResultMessage | ErrorMessage | EventMessage) => endpoint.postMessage(m);

  function serial<T>(task: () => Promise<T>): Promise<T> {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  }

  function stopGenerations(): void {
    for (const c of running.values()) c.abort();
  }

  async function ensureBackend(): Promise<BackendReport> {
    backend ??= await setupBackend('auto', { wasmPaths: options.wasmPaths });
    return backend;
  }

  function requireModel(): LanguageModel {
    if (!model) {
      throw new RequestFailure({ code: 'NO_MODEL', message: 'No model is loaded.', hint: 'Load a model first.' });
    }
    return model;
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
    return { ...report, reasons, tfBackend: currentBackend(), crossOriginIsolated: isolated };
  }

  const handlers: { [K in RequestKind]: (payload: PayloadOf<K>, id: number) => Promise<ResultOf<K>> } = {
    'init-backend': (p) => {
      stopGenerations();
      return serial(async () => {
        // Weights live on the backend that created them: a switch means loading the model again.
        model?.dispose();
        model = null;
        backend = null;
        if (p.wasmThreads) allowWasmThreads(p.wasmThreads);
        backend = await setupBackend(p.preference, { wasmPaths: options.wasmPaths, wasmThreads: p.wasmThreads });
        return status(backend);
      });
    },

    'load-model': (p, id) => {
      stopGenerations();
      return serial(async () => {
        await ensureBackend();
        model?.dispose();
        model = null;
        const source = sourceFor(p.location);
        const t0 = performance.now();
        const loaded = await loadModel(source, {
          onProgress: (pr) => post({ kind: 'progress', id, payload: pr }),
        });
        model = loaded;
        return { name: loaded.name, label: source.label, ...loaded.info, loadMs: performance.now() - t0 };
      });
    },

    generate: (p, id) => {
      const controller = new AbortController();
      running.set(id, controller);
      return serial(async () => {
        try {
          const m = requireModel();
          const t0 = performance.now();
          const [out] = await generate(m, [p.prompt], {
            maxNewTokens: p.maxNewTokens,
            temperature: p.temperature,
            topK: p.topK,
            topP: p.topP,
            seed: p.seed,
            stopStrings: p.stopStrings,
            signal: controller.signal,
            onToken: (e) => post({ kind: 'token', id, payload: { token: e.token, text: e.text } }),
          });
          const ms = performance.now() - t0;
          return { ...out, ms, tokensPerSecond: out.tokens.length / (ms / 1000) };
        } finally {
          running.delete(id);
        }
      });
    },

    cancel: async (p) => {
      const c = running.get(p.target);
      c?.abort();
      return { cancelled: Boolean(c) };
    },

    forward: (p) =>
      serial(async () => {
        const m = requireModel();
        if (!p.ids.length) throw new RequestFailure({ code: 'BAD_REQUEST', message: 'forward needs at least one token id.' });
        const logits = m.lm.forward([p.ids]);
        try {
          const data = await logits.data();
          return { logits: Array.from(data), vocabSize: logits.shape[2] };
        } finally {
          logits.dispose();
        }
      }),

    'get-backend': async () => ({ backend: tf.getBackend(), threads: backend?.threads ?? null }),
  };

  async function handle(m: RequestMessage): Promise<void> {
    try {
      const handler = handlers[m.kind] as (payload: unknown, id: number) => Promise<unknown>;
      const payload = await handler(m.payload, m.id);
      post({ kind: 'result', id: m.id, payload } as ResultMessage);
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
      model?.dispose();
      model = null;
    },
  };
}
