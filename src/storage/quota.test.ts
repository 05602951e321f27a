import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { isQuotaError, StorageError, StorageFullError, formatBytes } from './errors';
import { requestPersistence, storageEstimate } from './quota';
import { storageKeys as keys } from './keys';
import { TabtuneStore } from './store';
import { freshIdb, makePayload, QuotaBackend, sameBits } from '../testing/storage';

async function fullSetup(makeError?: () => unknown) {
  const inner = freshIdb();
  const backend = new QuotaBackend(inner, makeError);
  const store = new TabtuneStore(backend, { maxChunkBytes: 256, keepLast: 5 });
  const run = await store.runs.create({ name: 'big run' });
  const old = await store.runs.create({ name: 'old experiment' });
  const first = makePayload(100, { size: 512, valLoss: 1.5 });
  await store.checkpoints.save(run.id, first);
  await store.checkpoints.save(old.id, makePayload(10, { size: 1024 }));
  await store.checkpoints.save(old.id, makePayload(20, { size: 256 }), { pinned: true });
  return { inner, backend, store, run, old, first };
}

describe('quota exceeded', () => {
  it('throws StorageFullError naming the size and what to delete; the previous checkpoint stays loadable; no orphan chunks', async () => {
    const { inner, backend, store, run, first } = await fullSetup();
    const chunksBefore = await inner.keys('chunk/');
    backend.budget = 1000; // a few chunks fit, then the disk is "full"

    const err = await store.checkpoints.save(run.id, makePayload(200, { size: 1024 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    const full = err as StorageFullError;
    expect(full.code).toBe('QUOTA_EXCEEDED');
    expect(full.name).toBe('StorageFullError');
    expect(full.bytesRequested).toBeGreaterThan(3 * 1024 * 4);
    expect(full.message).toContain('checkpoint step 200 of run "big run"');
    expect(full.message).toContain(formatBytes(full.bytesRequested));
    expect((full.cause as DOMException).name).toBe('QuotaExceededError');
    // The hint lists the largest unpinned checkpoints and other runs, largest first; pinned ones are not offered.
    expect(full.hint).toMatch(/^Free space by deleting some of: /);
    expect(full.hint).toContain('checkpoint step 10 of run "old experiment"');
    expect(full.hint).toContain('run "old experiment"');
    expect(full.hint).not.toContain('step 20 of');
    expect(full.suggestions[0]!.bytes).toBeGreaterThanOrEqual(full.suggestions[full.suggestions.length - 1]!.bytes);
    expect(full.suggestions.find((s) => s.kind === 'checkpoint' && s.step === 10)).toMatchObject({ runId: expect.any(String) });

    // Nothing of the failed write is left; the earlier checkpoint is the latest and verifies.
    expect(await inner.keys('chunk/')).toEqual(chunksBefore);
    expect(await inner.get(keys.manifest(run.id, 200))).toBeUndefined();
    const latest = await store.checkpoints.loadLatest(run.id);
    expect(latest?.checkpoint.step).toBe(100);
    expect(latest?.skipped).toEqual([]);
    expect(sameBits(latest!.checkpoint.tensors['lora.layers.0.q.B']!.data, first.tensors['lora.layers.0.q.B']!.data)).toBe(true);

    // After freeing space, the same save works.
    backend.budget = Infinity;
    await store.deleteRun(full.suggestions.find((s) => s.kind === 'run')!.runId!);
    expect((await store.checkpoints.save(run.id, makePayload(200, { size: 1024 }))).info.step).toBe(200);
  });

  it('a quota error on the manifest itself also cleans up', async () => {
    const { inner, backend, store, run } = await fullSetup();
    const before = await inner.keys('');
    // Budget for exactly the chunks of the next checkpoint, not its manifest.
    const probe = new TabtuneStore(freshIdb(), { maxChunkBytes: 256 });
    const r = await probe.runs.create({ name: 'p' });
    const size = (await probe.checkpoints.save(r.id, makePayload(200, { size: 512 }))).info.sizeBytes;
    backend.budget = size;
    await expect(store.checkpoints.save(run.id, makePayload(200, { size: 512 }))).rejects.toBeInstanceOf(StorageFullError);
    expect(await inner.keys('')).toEqual(before);
    expect((await store.checkpoints.latest(run.id))?.step).toBe(100);
  });

  it('recognises the ways browsers and disks say "full"', async () => {
    expect(isQuotaError(new DOMException('x', 'QuotaExceededError'))).toBe(true);
    expect(isQuotaError({ name: 'NS_ERROR_DOM_QUOTA_REACHED', message: '' })).toBe(true);
    expect(isQuotaError(new Error('Transaction aborted: quota exceeded for origin'))).toBe(true);
    expect(isQuotaError(Object.assign(new Error('write failed'), { code: 'ENOSPC' }))).toBe(true);
    expect(isQuotaError(new Error('outer', { cause: new DOMException('x', 'QuotaExceededError') }))).toBe(true);
    expect(isQuotaError(new Error('tab closed'))).toBe(false);
    expect(isQuotaError(new DOMException('x', 'DataCloneError'))).toBe(false);
    expect(isQuotaError(null)).toBe(false);
  });

  it('errors that only mention quota in their message are converted too; others pass through', async () => {
    const { backend, store, run } = await fullSetup(() => new Error('UnknownError: Quota exceeded while writing blob'));
    backend.budget = 10;
    await expect(store.checkpoints.save(run.id, makePayload(300))).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
    const other = await fullSetup(() => new Error('disk exploded'));
    other.backend.budget = 10;
    const err = await other.store.checkpoints.save(other.run.id, makePayload(300)).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe('disk exploded');
    expect(await other.inner.get(keys.manifest(other.run.id, 300))).toBeUndefined();
  });

  it('dataset, metrics and run writes report StorageFullError as well', async () => {
    const { inner, backend, store, run } = await fullSetup();
    backend.budget = 100;
    const ds = await store.datasets.save({ name: 'corpus.txt', content: 'x'.repeat(5000) }).catch((e: unknown) => e);
    expect(ds).toBeInstanceOf(StorageFullError);
    expect((ds as Error).message).toContain('dataset "corpus.txt" (5.0 kB)');
    expect(await inner.keys('dchunk/')).toEqual([]);
    expect(await inner.keys('dataset/')).toEqual([]);

    backend.budget = 10;
    await expect(store.runs.appendMetrics(run.id, [{ step: 1, loss: 2 }])).rejects.toBeInstanceOf(StorageFullError);
    expect((await store.runs.get(run.id))?.metricsCount).toBe(0);
    await expect(store.runs.create({ name: 'another' })).rejects.toBeInstanceOf(StorageFullError);
  });

  it('with nothing to delete, the hint says so', async () => {
    const backend = new QuotaBackend(freshIdb());
    const store = new TabtuneStore(backend);
    const run = await store.runs.create({ name: 'r' });
    backend.budget = 0;
    const err = (await store.checkpoints.save(run.id, makePayload(1)).catch((e: unknown) => e)) as StorageFullError;
    expect(err.suggestions).toEqual([]);
    expect(err.hint).toMatch(/nothing large stored/);
  });
});

describe('persistence and estimates', () => {
  it('requestPersistence uses navigator.storage when present', async () => {
    let asked = 0;
    expect(await requestPersistence({ persisted: async () => false, persist: async () => (asked++, true) })).toEqual({ supported: true, persisted: true });
    expect(asked).toBe(1);
    expect(await requestPersistence({ persisted: async () => true, persist: async () => (asked++, true) })).toEqual({ supported: true, persisted: true });
    expect(asked).toBe(1); // already persisted: no prompt
    expect(await requestPersistence({ persisted: async () => false, persist: async () => false })).toEqual({ supported: true, persisted: false });
    expect(await requestPersistence({ persisted: async () => false })).toEqual({ supported: false, persisted: false }); // a worker
    expect(await requestPersistence({ persist: async () => Promise.reject(new Error('nope')) })).toEqual({ supported: true, persisted: false });
    expect(await requestPersistence(undefined)).toEqual({ supported: false, persisted: false });
  });

  it('storageEstimate returns usage and quota, or null', async () => {
    expect(await storageEstimate({ estimate: async () => ({ usage: 10, quota: 100 }) })).toEqual({ usage: 10, quota: 100 });
    expect(await storageEstimate({ estimate: async () => ({}) })).toBeNull();
    expect(await storageEstimate({ estimate: () => Promise.reject(new Error('x')) })).toBeNull();
    expect(await storageEstimate(undefined)).toBeNull();
    // In Node there is no navigator.storage: the defaults must not throw.
    await expect(storageEstimate()).resolves.toBeNull();
    await expect(requestPersistence()).resolves.toEqual({ supported: false, persisted: false });
  });

  it('formats sizes', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(5000)).toBe('5.0 kB');
    expect(formatBytes(64 * 1024 * 1024)).toBe('67.1 MB');
    expect(formatBytes(1.5e9)).toBe('1.5 GB');
  });
});
