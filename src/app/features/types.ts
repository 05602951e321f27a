// What the studio's feature modules (compare, export) take from the app and share: a tiny readable
// value (so a feature does not depend on the app store's shape), the checkpoint selection, and
// helpers that turn protocol failures into errors the UI can show.
import { RequestError, type WorkerClient } from '../../protocol/client';
import type { ModelSummary, ProtocolError } from '../../protocol/messages';

/** A value that can be read now and watched. */
export interface Readable<T> {
  get(): T;
  subscribe(cb: (v: T) => void): () => void;
}

/** The checkpoint the studio compares and exports; step null = the run's newest checkpoint. */
export interface Selection {
  runId: string;
  step: number | null;
}

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

/** What a feature (compare, export) is built from. */
export interface FeatureDeps {
  client: WorkerClient;
  selection: Readable<Selection | null>;
  model: Readable<ModelSummary | null>;
  /**
   * Optional: anything that changes when the selected run's checkpoints do (e.g. the app's checkpoint
   * list); the feature then reads the run again, so "newest" stays the newest.
   */
  changes?: Readable<unknown>;
  /** Clock for elapsed times and ETAs (default Date.now). */
  now?: () => number;
}

/** A settable Readable (tests, and values the app keeps outside a store). */
export interface Writable<T> extends Readable<T> {
  set(v: T): void;
}

export function writable<T>(initial: T, equal: (a: T, b: T) => boolean = Object.is): Writable<T> {
  let value = initial;
  const subs = new Set<(v: T) => void>();
  return {
    get: () => value,
    set(v) {
      if (equal(value, v)) return;
      value = v;
      for (const cb of [...subs]) cb(v);
    },
    subscribe(cb) {
      subs.add(cb);
      return () => void subs.delete(cb);
    },
  };
}

/** The part of a zustand store (vanilla or not) `fromStore` needs. */
export interface SubscribableStore<S> {
  getState(): S;
  subscribe(listener: (state: S, prev: S) => void): () => void;
}

/** A Readable view of part of a store: `cb` runs only when the selected value changes (by `equal`). */
export function fromStore<S, T>(store: SubscribableStore<S>, select: (s: S) => T, equal: (a: T, b: T) => boolean = Object.is): Readable<T> {
  return {
    get: () => select(store.getState()),
    subscribe(cb) {
      let last = select(store.getState());
      return store.subscribe((s) => {
        const next = select(s);
        if (equal(last, next)) return;
        last = next;
        cb(next);
      });
    },
  };
}

export function sameSelection(a: Selection | null, b: Selection | null): boolean {
  return a === b || (!!a && !!b && a.runId === b.runId && a.step === b.step);
}

/** The app store's selection slice ({ runId: string | null; step }) as a Selection (null: nothing picked). */
export function toSelection(s: { runId: string | null; step: number | null } | null | undefined): Selection | null {
  return s?.runId ? { runId: s.runId, step: s.step ?? null } : null;
}

/** Any failure as a ProtocolError (what the UI's error notices show). */
export function protocolError(e: unknown): ProtocolError {
  if (e instanceof RequestError) return { code: e.code, message: e.message, hint: e.hint, details: e.details };
  const p = e as Partial<ProtocolError> | null;
  if (p && typeof p === 'object' && typeof p.code === 'string' && typeof p.message === 'string') return { code: p.code, message: p.message, hint: p.hint, details: p.details };
  return { code: 'INTERNAL', message: (e as Error)?.message ?? String(e), hint: 'Reload the page and try again. If it happens again, try another backend.' };
}

/** An error made on the page (not by the worker). */
export function pageError(code: ProtocolError['code'], message: string, hint?: string): ProtocolError {
  return hint ? { code, message, hint } : { code, message };
}
