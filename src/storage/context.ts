// What the repositories (runs, checkpoints, datasets) share: the one KeyValueBackend, the store's options
// and clock, named locks, the writes in flight, chunked writing, and turning a quota failure into a
// StorageFullError that names what could be deleted.

import type { KeyValueBackend } from './backend';
import { crc32 } from './checksum';
import { chunkPlan, type BlobPlan } from './codec';
import { StorageError, StorageFullError, formatBytes, isQuotaError, type FreeableItem } from './errors';

export interface TabtuneStoreOptions {
  /** Largest stored chunk of a checkpoint or dataset. Default 64 MiB. */
  maxChunkBytes?: number;
  /** Retention keeps this many most recent checkpoints per run (plus the best, pinned ones and branch points). Default 3. */
  keepLast?: number;
  /** Metric points per stored page. Default 500. */
  metricsPageSize?: number;
  /**
   * Orphan chunks younger than this are left alone by garbage collection, in case another tab is still
   * writing them (chunks of this store's own in-flight writes are always left alone). Default 2 minutes.
   */
  orphanGraceMs?: number;
  /** Runs whose status is 'running' with no heartbeat for this long are interrupted. Default 60 s. */
  staleAfterMs?: number;
  /** Clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

export const DEFAULT_MAX_CHUNK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_KEEP_LAST = 3;
export const DEFAULT_METRICS_PAGE_SIZE = 500;
export const DEFAULT_ORPHAN_GRACE_MS = 2 * 60_000;
export const DEFAULT_STALE_AFTER_MS = 60_000;

export interface ChunkInfo {
  bytes: number;
  crc32: number;
}

export interface GcResult {
  /** Keys deleted (orphan chunks, records of deleted runs). */
  removedKeys: number;
}

/** Creation time of an id made by newId (its base-36 time prefix); -Infinity (infinitely old) when it has none. */
export function idTime(id: string): number {
  const t = parseInt(id.split('-')[0] ?? '', 36);
  return Number.isFinite(t) ? t : -Infinity;
}

export class StoreContext {
  readonly maxChunkBytes: number;
  readonly keepLast: number;
  readonly metricsPageSize: number;
  readonly orphanGraceMs: number;
  readonly staleAfterMs: number;
  readonly now: () => number;
  /** writeIds / dataset ids this store is writing right now: never garbage. */
  readonly inflight = new Set<string>();
  private readonly locks = new Map<string, Promise<void>>();

  /**
   * @param freeable what the user could delete to make room (largest first), for the hint of a StorageFullError;
   * `currentRunId` is the run being written, not offered as a whole.
   */
  constructor(
    readonly backend: KeyValueBackend,
    options: TabtuneStoreOptions,
    private readonly freeable: (currentRunId: string | null) => Promise<FreeableItem[]>,
  ) {
    this.maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    this.keepLast = options.keepLast ?? DEFAULT_KEEP_LAST;
    this.metricsPageSize = options.metricsPageSize ?? DEFAULT_METRICS_PAGE_SIZE;
    this.orphanGraceMs = options.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.now = options.now ?? (() => Date.now());
    if (!Number.isSafeInteger(this.maxChunkBytes) || this.maxChunkBytes < 1) {
      throw new StorageError('INVALID_INPUT', `maxChunkBytes must be a positive integer, got ${this.maxChunkBytes}`);
    }
    if (!Number.isSafeInteger(this.keepLast) || this.keepLast < 1) throw new StorageError('INVALID_INPUT', `keepLast must be at least 1, got ${this.keepLast}`);
    if (!Number.isSafeInteger(this.metricsPageSize) || this.metricsPageSize < 1) {
      throw new StorageError('INVALID_INPUT', `metricsPageSize must be a positive integer, got ${this.metricsPageSize}`);
    }
  }

  /** Runs `fn` after every earlier holder of lock `name` (e.g. "run:<id>", "ckpt:<id>") has finished. */
  async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(name, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }

  /** Time-prefixed unique id: "<ms base36>-<random>". The prefix lets GC tell a fresh orphan from an old one. */
  newId(): string {
    const rand = crypto.getRandomValues(new Uint32Array(2));
    return `${Math.max(0, Math.floor(this.now())).toString(36).padStart(9, '0')}-${rand[0]!.toString(36).padStart(7, '0')}${rand[1]!.toString(36).padStart(7, '0')}`;
  }

  /** Writes a blob as chunks (sequentially: one chunk of memory at a time); returns their sizes and CRCs. */
  async writeChunks(plan: BlobPlan, keyOf: (index: number) => string): Promise<ChunkInfo[]> {
    const chunks: ChunkInfo[] = [];
    let i = 0;
    for (const chunk of chunkPlan(plan, this.maxChunkBytes)) {
      chunks.push({ bytes: chunk.byteLength, crc32: crc32(chunk) });
      await this.backend.set(keyOf(i++), chunk);
    }
    return chunks;
  }

  /** Runs a write; a quota failure becomes a StorageFullError. */
  async guardWrite<T>(what: string, bytes: number, runId: string | null, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isQuotaError(e)) throw await this.storageFullError(what, bytes, runId, e);
      throw e;
    }
  }

  async storageFullError(what: string, bytes: number, currentRunId: string | null, cause: unknown): Promise<StorageFullError> {
    let suggestions: FreeableItem[] = [];
    try {
      suggestions = await this.freeable(currentRunId);
    } catch {
      // Listing failed too: the message still says what happened.
    }
    const message = `Storage is full: could not write ${what} (${formatBytes(bytes)}). Earlier data is intact.`;
    const hint = suggestions.length
      ? `Free space by deleting some of: ${suggestions.map((s) => `${s.label} (${formatBytes(s.bytes)})`).join(', ')}. ` +
        'Pinned checkpoints are not listed; unpin them first if you do not need them.'
      : 'tabtune has nothing large stored to delete: free space in the browser (site data of other sites) or on the disk, then try again.';
    return new StorageFullError(message, hint, bytes, suggestions, { cause });
  }
}
