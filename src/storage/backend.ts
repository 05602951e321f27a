// The key-value layer under TabtuneStore. In a page or a Web Worker it is IndexedDB through idb-keyval;
// the Node CLI can use the filesystem (src/node/fs-backend.ts) and tests can use fake-indexeddb or memory.
//
// Contract every backend honours:
// - keys are strings made of "/"-separated segments (the store encodes ids so they never contain "/");
// - values are JSON values or Uint8Array (stored and returned byte-exact);
// - a single `set` is atomic: a reader sees the old value or the new one, never a torn one;
// - `setMany` applies its entries in the given order (IndexedDB also makes it atomic; the filesystem does not),
//   so "chunks first, manifest last" holds whichever backend is used;
// - deleting a missing key is not an error.

import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type StoredValue = JsonValue | Uint8Array;

export interface KeyValueBackend {
  get<T = StoredValue>(key: string): Promise<T | undefined>;
  getMany<T = StoredValue>(keys: string[]): Promise<(T | undefined)[]>;
  set(key: string, value: StoredValue): Promise<void>;
  setMany(entries: [string, StoredValue][]): Promise<void>;
  del(key: string): Promise<void>;
  delMany(keys: string[]): Promise<void>;
  /** Every key starting with `prefix` (plain string prefix), in ascending code-unit order. */
  keys(prefix?: string): Promise<string[]>;
}

export const DEFAULT_DB_NAME = 'tabtune';
export const DEFAULT_STORE_NAME = 'kv';

/** IndexedDB through idb-keyval. One object store holds everything (keys are prefixed by kind). */
export class IdbBackend implements KeyValueBackend {
  readonly store: UseStore;

  /**
   * @param store an idb-keyval store; defaults to `createStore('tabtune', 'kv')`. Note idb-keyval opens its
   * database at version 1 with one object store, so give each store its own database name.
   */
  constructor(store?: UseStore) {
    this.store = store ?? createStore(DEFAULT_DB_NAME, DEFAULT_STORE_NAME);
  }

  get<T = StoredValue>(key: string): Promise<T | undefined> {
    return this.store('readonly', (s) => promisifyRequest(s.get(key) as IDBRequest<T | undefined>));
  }

  getMany<T = StoredValue>(keys: string[]): Promise<(T | undefined)[]> {
    if (!keys.length) return Promise.resolve([]);
    return this.store('readonly', (s) => Promise.all(keys.map((k) => promisifyRequest(s.get(k) as IDBRequest<T | undefined>))));
  }

  set(key: string, value: StoredValue): Promise<void> {
    return this.store('readwrite', (s) => {
      s.put(value, key);
      return promisifyRequest(s.transaction);
    });
  }

  setMany(entries: [string, StoredValue][]): Promise<void> {
    if (!entries.length) return Promise.resolve();
    return this.store('readwrite', (s) => {
      for (const [k, v] of entries) s.put(v, k);
      return promisifyRequest(s.transaction);
    });
  }

  del(key: string): Promise<void> {
    return this.store('readwrite', (s) => {
      s.delete(key);
      return promisifyRequest(s.transaction);
    });
  }

  delMany(keys: string[]): Promise<void> {
    if (!keys.length) return Promise.resolve();
    return this.store('readwrite', (s) => {
      for (const k of keys) s.delete(k);
      return promisifyRequest(s.transaction);
    });
  }

  keys(prefix = ''): Promise<string[]> {
    return this.store('readonly', (s) => {
      const req = prefix ? s.getAllKeys(IDBKeyRange.bound(prefix, prefix + '\uffff')) : s.getAllKeys();
      return promisifyRequest(req).then((ks) => ks.filter((k): k is string => typeof k === 'string' && k.startsWith(prefix)));
    });
  }
}

/** In-memory backend (unit tests of other modules, throwaway CLI runs). Values are copied in and out. */
export class MemoryBackend implements KeyValueBackend {
  readonly map = new Map<string, StoredValue>();

  async get<T = StoredValue>(key: string): Promise<T | undefined> {
    const v = this.map.get(key);
    return (v === undefined ? undefined : structuredClone(v)) as T | undefined;
  }
  async getMany<T = StoredValue>(keys: string[]): Promise<(T | undefined)[]> {
    return Promise.all(keys.map((k) => this.get<T>(k)));
  }
  async set(key: string, value: StoredValue): Promise<void> {
    this.map.set(key, structuredClone(value));
  }
  async setMany(entries: [string, StoredValue][]): Promise<void> {
    for (const [k, v] of entries) this.map.set(k, structuredClone(v));
  }
  async del(key: string): Promise<void> {
    this.map.delete(key);
  }
  async delMany(keys: string[]): Promise<void> {
    for (const k of keys) this.map.delete(k);
  }
  async keys(prefix = ''): Promise<string[]> {
    return [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
  }
}

/** Ascending UTF-16 code-unit order, as IndexedDB sorts string keys. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
