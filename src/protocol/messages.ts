// The one message module the page and the TF.js worker share (like web-llm's). Every request has a
// kind and an id; the worker answers that id with exactly one `result` or `error`, and may send
// `progress`/`token` events for it before that. Both sides import these types, so renaming a field
// fails to compile on both.
import type { BackendPreference, BackendReport } from '../model/backend';

export type { BackendName, BackendPreference, BackendReport } from '../model/backend';

/** Where a model's files come from. Files are structured-cloned into the worker. */
export type ModelLocation =
  /** cache: keep a Cache API copy (for remote URLs; off for the page's own /models/). */
  | { kind: 'url'; url: string; cache?: boolean }
  | { kind: 'hub'; id: string }
  | { kind: 'files'; files: File[] };

export interface BackendStatus extends BackendReport {
  /** What tf.getBackend() says in the worker: the backend really in use. */
  tfBackend: string;
  crossOriginIsolated: boolean;
}

export interface ModelSummary {
  name: string;
  /** Where it was loaded from, for the user ("http://…/models/stories260K/"). */
  label: string;
  arch: string;
  numParams: number;
  vocabSize: number;
  contextLength: number;
  hiddenSize: number;
  layers: number;
  /** dtype the weights were stored in (computed in float32). */
  storedDtype: string;
  loadMs: number;
}

export interface GenerateParams {
  prompt: string;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopStrings?: string[];
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateOutcome {
  promptTokens: number[];
  tokens: number[];
  /** The continuation only (the prompt is not repeated). */
  text: string;
  finishReason: FinishReason;
  /** Wall time of the whole request (prefill + decode), milliseconds. */
  ms: number;
  /** New tokens per second of wall time. */
  tokensPerSecond: number;
}

/** Every request: its payload and what its result carries. */
export interface Requests {
  'init-backend': { payload: { preference: BackendPreference; wasmThreads?: number }; result: BackendStatus };
  'load-model': { payload: { location: ModelLocation }; result: ModelSummary };
  generate: { payload: GenerateParams; result: GenerateOutcome };
  /** Cancels the request with id `target` (a generation). Answers whether something was running. */
  cancel: { payload: { target: number }; result: { cancelled: boolean } };
  /** ids (one row, no padding) -> logits, row-major [ids.length][vocabSize]. */
  forward: { payload: { ids: number[] }; result: { logits: number[]; vocabSize: number } };
  /** Asks TF.js itself which backend it is running on. */
  'get-backend': { payload: Record<string, never>; result: { backend: string; threads: number | null } };
}

export interface Events {
  progress: { file: string; loaded: number; total: number | null; fraction: number };
  /** One generated token; `text` is the text this token added to the continuation. */
  token: { token: number; text: string };
}

export type RequestKind = keyof Requests;
export type EventKind = keyof Events;
export type PayloadOf<K extends RequestKind> = Requests[K]['payload'];
export type ResultOf<K extends RequestKind> = Requests[K]['result'];

export type RequestMessage = { [K in RequestKind]: { kind: K; id: number; payload: PayloadOf<K> } }[RequestKind];
export type EventMessage = { [E in EventKind]: { kind: E; id: number; payload: Events[E] } }[EventKind];

/** Codes the UI can act on; model-loading codes come from src/model/types.ts. */
export type ErrorCode =
  | 'UNSUPPORTED_MODEL'
  | 'MISSING_FILE'
  | 'BAD_TENSOR'
  | 'TOO_LARGE'
  | 'BAD_CONFIG'
  | 'NETWORK'
  | 'NO_MODEL'
  | 'BACKEND_UNAVAILABLE'
  | 'BAD_REQUEST'
  | 'INTERNAL';

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** What the user can do about it. */
  hint?: string;
}

export interface ResultMessage<K extends RequestKind = RequestKind> {
  kind: 'result';
  id: number;
  payload: ResultOf<K>;
}

export interface ErrorMessage {
  kind: 'error';
  id: number;
  error: ProtocolError;
}

export type WorkerMessage = EventMessage | ResultMessage | ErrorMessage;

/** The part of Worker / DedicatedWorkerGlobalScope / MessagePort both ends need. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener?(type: 'message', listener: (event: { data: unknown }) => void): void;
}

const requestKinds: ReadonlySet<string> = new Set<RequestKind>(['init-backend', 'load-model', 'generate', 'cancel', 'forward', 'get-backend']);

export function isRequestMessage(m: unknown): m is RequestMessage {
  const r = m as Partial<RequestMessage> | null;
  return !!r && typeof r === 'object' && typeof r.id === 'number' && typeof r.kind === 'string' && requestKinds.has(r.kind) && 'payload' in r;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  const r = m as Partial<WorkerMessage> | null;
  return (
    !!r &&
    typeof r === 'object' &&
    typeof r.id === 'number' &&
    (r.kind === 'result' || r.kind === 'error' || r.kind === 'progress' || r.kind === 'token')
  );
}
