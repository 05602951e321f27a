// Helpers shared by the storage tests (fake backends that fail the way browsers and disks do).

import { createStore } from 'idb-keyval';
import { IdbBackend, type KeyValueBackend, type StoredValue } from '../storage/backend';
import type { CheckpointPayload } from '../storage/codec';
import { seededRandom } from '../util/random';

let dbCounter = 0;

/** A fresh IndexedDB database (fake-indexeddb must be loaded: `import 'fake-indexeddb/auto'`). */
export function freshIdb(): IdbBackend {
  return new IdbBackend(createStore(`tabtune-test-${++dbCounter}-${Math.random().toString(36).slice(2)}`, 'kv'));
}

/** Settable clock. */
export function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
}

export function sizeOf(v: StoredValue): number {
  return v instanceof Uint8Array ? v.byteLength : JSON.stringify(v).length;
}

/** Passes everything through, recording writes; subclasses override `beforeWrite` to fail. */
export class WrappedBackend implements KeyValueBackend {
  readonly writes: { key: string; bytes: number }[] = [];
  constructor(readonly inner: KeyValueBackend) {}
  protected beforeWrite(_key: string, _value: StoredValue): void {}
  protected beforeAny(): void {}
  async get<T = StoredValue>(key: string) {
    this.beforeAny();
    return this.inner.get<T>(key);
  }
  async getMany<T = StoredValue>(keys: string[]) {
    this.beforeAny();
    return this.inner.getMany<T>(keys);
  }
  async set(key: string, value: StoredValue) {
    this.beforeAny();
    this.beforeWrite(key, value);
    this.writes.push({ key, bytes: sizeOf(value) });
    return this.inner.set(key, value);
  }
  async setMany(entries: [string, StoredValue][]) {
    this.beforeAny();
    for (const [k, v] of entries) this.beforeWrite(k, v);
    for (const [k, v] of entries) this.writes.push({ key: k, bytes: sizeOf(v) });
    return this.inner.setMany(entries);
  }
  async del(key: string) {
    this.beforeAny();
    return this.inner.del(key);
  }
  async delMany(keys: string[]) {
    this.beforeAny();
    return this.inner.delMany(keys);
  }
  async keys(prefix?: string) {
    this.beforeAny();
    return this.inner.keys(prefix);
  }
}

/**
 * Behaves like a browser running out of quota: once `budget` more bytes have been written, writes throw
 * DOMException('…', 'QuotaExceededError') (or whatever `makeError` builds). Deletes and reads keep working.
 */
export class QuotaBackend extends WrappedBackend {
  budget = Infinity;
  constructor(
    inner: KeyValueBackend,
    private readonly makeError: () => unknown = () => new DOMException('The quota has been exceeded.', 'QuotaExceededError'),
  ) {
    super(inner);
  }
  protected override beforeWrite(_key: string, value: StoredValue): void {
    const n = sizeOf(value);
    if (n > this.budget) throw this.makeError();
    this.budget -= n;
  }
}

/** Simulates a tab closed mid-write: after `setsLeft` more writes, every call (reads, deletes too) fails. */
export class KillSwitchBackend extends WrappedBackend {
  setsLeft = Infinity;
  dead = false;
  protected override beforeAny(): void {
    if (this.dead) throw new Error('tab closed');
  }
  protected override beforeWrite(): void {
    if (this.setsLeft <= 0) {
      this.dead = true;
      throw new Error('tab closed');
    }
    this.setsLeft--;
  }
}

/** Delays every write so a test can act while a save is in progress. */
export class SlowBackend extends WrappedBackend {
  delayMs = 0;
  override async set(key: string, value: StoredValue) {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    return super.set(key, value);
  }
}

/** Deterministic pseudo-random floats, with awkward values mixed in (-0, NaN with a payload, ±Infinity, subnormals). */
export function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const rand = seededRandom(seed);
  for (let i = 0; i < n; i++) out[i] = (rand() - 0.5) * 10 ** (Math.floor(rand() * 7) - 3);
  const u = new Uint32Array(out.buffer);
  const specials = [0x80000000, 0x7fc00123, 0xffc00001, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff];
  for (let i = 0; i < specials.length && i < n; i++) u[(i * 7919 + seed) % n] = specials[i]!;
  return out;
}

export function makePayload(step: number, opts: { valLoss?: number; trainLoss?: number; size?: number; seed?: number } = {}): CheckpointPayload {
  const size = opts.size ?? 64;
  const seed = opts.seed ?? step + 1;
  return {
    step,
    tensors: {
      'lora.layers.0.q.A': { shape: [size / 8, 8], data: floats(size, seed) },
      'lora.layers.0.q.B': { shape: [8, size / 8], data: floats(size, seed + 100) },
      'adam.m.lora.layers.0.q.A': { shape: [size], data: floats(size, seed + 200) },
      scalar: { shape: [], data: Float32Array.of(step) },
      empty: { shape: [0, 4], data: new Float32Array(0) },
    },
    state: { step, rng: [seed, 12345, 67890], cursor: { epoch: 1, index: step * 4 }, schedule: { lr: 3e-4, warmup: 100 }, note: 'ünïcødé ✓' },
    metrics: { trainLoss: opts.trainLoss ?? 2 - step / 1000, ...(opts.valLoss !== undefined ? { valLoss: opts.valLoss } : {}) },
  };
}

/** Bit-exact comparison of two float arrays (NaN payloads and -0 included). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
