// Test helper (Node): a scripted worker behind the real WorkerClient, so the page's requests (Compare,
// Export) go through the same protocol code as on the page. Each request kind has a handler that may
// emit events before it answers; requests and cancels are recorded.
import { WorkerClient } from '../protocol/client';
import type { EventKind, Events, MessageEndpoint, ProtocolError, RequestKind, RequestMessage, ResultOf, PayloadOf } from '../protocol/messages';

export interface FakeCall<K extends RequestKind = RequestKind> {
  kind: K;
  id: number;
  payload: PayloadOf<K>;
}

export interface FakeContext {
  id: number;
  emit<E extends EventKind>(kind: E, payload: Events[E]): void;
  /** True once the page sent `cancel` for this request. */
  cancelled(): boolean;
}

type Handler<K extends RequestKind> = (payload: PayloadOf<K>, ctx: FakeContext) => Promise<ResultOf<K>> | ResultOf<K>;

export class WorkerFailure extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}

export class FakeWorker {
  readonly calls: FakeCall[] = [];
  readonly client: WorkerClient;
  private readonly handlers = new Map<RequestKind, Handler<RequestKind>>();
  private readonly cancelledIds = new Set<number>();
  private listener: ((e: { data: unknown }) => void) | null = null;
  /** Whether `cancel` answers cancelled: true for a request (default: for generations only). */
  cancellable: (kind: RequestKind) => boolean = (kind) => kind === 'generate';

  constructor() {
    const endpoint: MessageEndpoint = {
      postMessage: (m) => void queueMicrotask(() => this.receive(m as RequestMessage)),
      addEventListener: (_type, l) => void (this.listener = l),
      removeEventListener: () => void (this.listener = null),
    };
    this.client = new WorkerClient(endpoint);
  }

  on<K extends RequestKind>(kind: K, handler: Handler<K>): this {
    this.handlers.set(kind, handler as unknown as Handler<RequestKind>);
    return this;
  }

  callsOf<K extends RequestKind>(kind: K): FakeCall<K>[] {
    return this.calls.filter((c) => c.kind === kind) as FakeCall<K>[];
  }

  private post(data: unknown): void {
    // Structured clone, as across a real worker boundary.
    const copy = structuredClone(data);
    queueMicrotask(() => this.listener?.({ data: copy }));
  }

  private async receive(m: RequestMessage): Promise<void> {
    this.calls.push({ kind: m.kind, id: m.id, payload: m.payload } as FakeCall);
    if (m.kind === 'cancel') {
      const target = m.payload.target;
      const call = this.calls.find((c) => c.id === target);
      const ok = !!call && this.cancellable(call.kind);
      if (ok) this.cancelledIds.add(target);
      this.post({ kind: 'result', id: m.id, payload: { cancelled: ok } });
      return;
    }
    const handler = this.handlers.get(m.kind);
    const ctx: FakeContext = {
      id: m.id,
      emit: (kind, payload) => this.post({ kind, id: m.id, payload }),
      cancelled: () => this.cancelledIds.has(m.id),
    };
    try {
      if (!handler) throw new WorkerFailure({ code: 'INTERNAL', message: `fake worker: no handler for ${m.kind}` });
      const payload = await handler(m.payload, ctx);
      this.post({ kind: 'result', id: m.id, payload });
    } catch (e) {
      const error = e instanceof WorkerFailure ? e.error : { code: 'INTERNAL', message: String(e) };
      this.post({ kind: 'error', id: m.id, error });
    }
  }
}

/** Lets queued microtasks and timers run. */
export function tick(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
