import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { fingerprintBytes } from './datasets';
import { storageKeys as keys } from './keys';
import { TabtuneStore } from './store';
import { fakeClock, freshIdb, KillSwitchBackend } from '../testing/storage';

describe('datasets', () => {
  it('stores text and gives it back as text, with a sha256 fingerprint', async () => {
    const store = new TabtuneStore(freshIdb());
    const text = 'instruction\tresponse\nBonjour ✓ 日本語 🚀\n'.repeat(100);
    const rec = await store.datasets.save({ name: 'chat.tsv', content: text, mimeType: 'text/tab-separated-values' });
    expect(rec).toMatchObject({ name: 'chat.tsv', kind: 'text', mimeType: 'text/tab-separated-values', byteLength: new TextEncoder().encode(text).byteLength });
    expect(rec.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(rec.fingerprint).toBe(await fingerprintBytes(new TextEncoder().encode(text)));
    const loaded = await store.datasets.load(rec.id);
    expect(loaded.text).toBe(text);
    expect(loaded.info).toEqual(rec);
  });

  it('stores bytes in many chunks and reassembles them exactly', async () => {
    const store = new TabtuneStore(freshIdb(), { maxChunkBytes: 1000 });
    const bytes = new Uint8Array(123_457);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
    const rec = await store.datasets.save({ name: 'data.parquet', content: bytes, fingerprint: 'caller-fp-1' });
    expect(rec.fingerprint).toBe('caller-fp-1');
    expect(rec.chunks).toHaveLength(124);
    const loaded = await store.datasets.load(rec.id);
    expect(loaded.text).toBeNull();
    expect(loaded.bytes).toEqual(bytes);
    expect(await store.datasets.findByFingerprint('caller-fp-1')).toEqual(rec);
    expect(await store.datasets.findByFingerprint('other')).toBeNull();
  });

  it('an empty dataset round-trips', async () => {
    const store = new TabtuneStore(freshIdb());
    const rec = await store.datasets.save({ name: 'empty.txt', content: '' });
    expect((await store.datasets.load(rec.id)).text).toBe('');
  });

  it('the same content is stored once; list and delete', async () => {
    const backend = freshIdb();
    const clock = fakeClock();
    const store = new TabtuneStore(backend, { now: clock.now });
    const a = await store.datasets.save({ name: 'a.txt', content: 'hello' });
    clock.advance(1);
    const again = await store.datasets.save({ name: 'a copy.txt', content: 'hello' });
    expect(again.id).toBe(a.id);
    const b = await store.datasets.save({ name: 'b.txt', content: 'world' });
    expect((await store.datasets.list()).map((d) => d.id)).toEqual([b.id, a.id]);
    expect(await store.datasets.delete(a.id)).toBe(true);
    expect(await store.datasets.delete(a.id)).toBe(false);
    expect(await store.datasets.get(a.id)).toBeNull();
    expect(await backend.keys(keys.datasetChunkPrefix(a.id))).toEqual([]);
    await expect(store.datasets.load(a.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('detects damaged datasets', async () => {
    const backend = freshIdb();
    const store = new TabtuneStore(backend, { maxChunkBytes: 8 });
    const rec = await store.datasets.save({ name: 'd.txt', content: 'some training text here' });
    const k = keys.datasetChunk(rec.id, 1);
    const c = (await backend.get(k)) as Uint8Array;
    c[0] ^= 4;
    await backend.set(k, c);
    await expect(store.datasets.load(rec.id)).rejects.toMatchObject({ code: 'DATASET_CORRUPT', message: expect.stringContaining('chunk 2 of 3 fails its CRC-32 check') });
    await backend.del(k);
    await expect(store.datasets.load(rec.id)).rejects.toThrow('chunk 2 of 3 is missing');
  });

  it('a dataset write cut short leaves no record; its chunks are collected', async () => {
    const base = freshIdb();
    const clock = fakeClock();
    const kill = new KillSwitchBackend(base);
    const s1 = new TabtuneStore(kill, { now: clock.now, maxChunkBytes: 4 });
    kill.setsLeft = 3;
    await expect(s1.datasets.save({ name: 'x', content: 'abcdefghijklmnop', fingerprint: 'f' })).rejects.toThrow('tab closed');
    expect(await base.keys('dchunk/')).toHaveLength(3);
    const s2 = new TabtuneStore(base, { now: clock.now });
    expect(await s2.datasets.list()).toEqual([]);
    expect((await s2.collectGarbage()).removedKeys).toBe(0); // too young: maybe another tab's write
    clock.advance(3 * 60_000);
    expect((await s2.collectGarbage()).removedKeys).toBe(3);
    expect(await base.keys('dchunk/')).toEqual([]);
  });

  it('a run can point at its stored dataset; storageReport lists what takes space', async () => {
    const store = new TabtuneStore(freshIdb());
    const ds = await store.datasets.save({ name: 'corpus.txt', content: 'x'.repeat(3000) });
    const run = await store.runs.create({ name: 'r', dataset: { fingerprint: ds.fingerprint, name: ds.name, datasetId: ds.id } });
    expect(run.dataset).toEqual({ fingerprint: ds.fingerprint, name: 'corpus.txt', datasetId: ds.id });
    const report = await store.storageReport();
    expect(report.datasets).toEqual([{ datasetId: ds.id, name: 'corpus.txt', bytes: 3000 }]);
    expect(report.runs).toEqual([{ runId: run.id, name: 'r', checkpointCount: 0, checkpointBytes: 0, metricsPoints: 0 }]);
    expect(report.totalBytes).toBe(3000);
  });
});
