// A small typed client for the worker: one promise per request, event callbacks per request.
import {
  isWorkerMessage,
  type ErrorCode,
  type ErrorDetails,
  type Events,
  type MessageEndpoint,
  type PayloadOf,
  type ProtocolError,
  type RequestKind,
  type RequestMessage,
  type ResultOf,
} from './messages';

export class RequestError extends Error implements ProtocolError {
  override name = 'RequestError';
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: ErrorDetails;
  constructor(error: ProtocolError) {
    super(error.message);
    this.code = error.code;
    this.hint = error.hint;
    this.details = error.details;
  }
}

export type EventHandlers = { [E in keyof Events]?: (payload: Events[E]) => void };

export interface RequestHandle<K extends RequestKind> {
  readonly id: number;
  readonly result: Promise<ResultOf<K>>;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  on: EventHandlers;
}

export class WorkerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listener = (event: { data: unknown }) => this.receive(event.data);

  constructor(private readonly endpoint: MessageEndpoint) {
    endpoint.addEventListener('message', this.listener);
  }

  /** Sends a request; the handle's id is what `cancel` takes. */
  send<K extends RequestKind>(kind: K, payload: PayloadOf<K>, on: EventHandlers = {}): RequestHandle<K> {
    const id = this.nextId++;
    const result = new Promise<ResultOf<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, on });
    });
    this.endpoint.postMessage({ kind, id, payload } as RequestMessage);
    return { id, result };
  }

  request<K extends RequestKind>(kind: K, payload: PayloadOf<K>, on?: EventHandlers): Promise<ResultOf<K>> {
    return this.send(kind, payload, on).result;
  }

  /** Asks the worker to stop request `target` (a generation or a training); its own promise then settles as the worker decides. */
  async cancel(target: number): Promise<boolean> {
    return (await this.request('cancel', { target })).cancelled;
  }

  /** Rejects everything in flight, e.g. when the worker itself crashed. */
  failAll(error: ProtocolError): void {
    for (const p of this.pending.values()) p.reject(new RequestError(error));
    this.pending.clear();
  }

  dispose(): void {
    this.endpoint.removeEventListener?.('message', this.listener);
    this.failAll({ code: 'INTERNAL', message: 'The worker client was closed.' });
  }

  private receive(data: unknown): void {
    if (!isWorkerMessage(data)) return;
    const p = this.pending.get(data.id);
    if (!p) return;
    switch (data.kind) {
      case 'result':
        this.pending.delete(data.id);
        p.resolve(data.payload);
        break;
      case 'error':
        this.pending.delete(data.id);
        p.reject(new RequestError(data.error));
        break;
      default: {
        // An event: the request's handler for that kind, if it has one.
        const on = p.on[data.kind] as ((payload: unknown) => void) | undefined;
        on?.(data.payload);
        break;
      }
    }
  }
}
