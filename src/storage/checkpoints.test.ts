import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../io/safetensors';
import { MemoryBackend } from './backend';
import { crc32 } from './checksum';
import { CheckpointCorruptError, StorageError } from './errors';
import type { CheckpointManifest } from './checkpoints';
import { storageKeys as keys } from './keys';
import { TabtuneStore } from './store';
import { fakeClock, freshIdb, KillSwitchBackend, makePayload, sameBits, SlowBackend } from '../testing/storage';

async function setup(opts: ConstructorParameters<typeof TabtuneStore>[1] = {}) {
  const backend = freshIdb();
  const clock = fakeClock();
  const store = new TabtuneStore(backend, { now: clock.now, ...opts });
  const run = await store.runs.create({ name: 'tiny', config: { lr: 3e-4, rank: 8 } });
  return { backend, clock, store, run };
}

describe('crc32', () => {
  it('matches the standard check value and continues incrementally', () => {
    const bytes = new TextEncoder().encode('123456789');
    expect(crc32(bytes)).toBe(0xcbf43926);
    expect(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4)))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe('checkpoint round trip', () => {
  it('stores and loads tensors bit-exactly, with state and metrics', async () => {
    const { store, run } = await setup();
    const payload = makePayload(100, { valLoss: 1.5, size: 256 });
    const { info } = await store.checkpoints.save(run.id, payload);
    expect(info).toMatchObject({ runId: run.id, step: 100, trainLoss: payload.metrics.trainLoss, valLoss: 1.5, pinned: false, isBest: true, isLatest: true });
    expect(info.chunkCount).toBe(1);

    const loaded = await store.checkpoints.load(run.id, 100);
    expect(loaded.step).toBe(100);
    expect(loaded.state).toEqual(payload.state);
    expect(loaded.metrics).toEqual(payload.metrics);
    expect(Object.keys(loaded.tensors)).toEqual(Object.keys(payload.tensors));
    for (const [name, t] of Object.entries(payload.tensors)) {
      expect(loaded.tensors[name]!.shape).toEqual(t.shape);
      expect(sameBits(loaded.tensors[name]!.data, t.data), name).toBe(true);
    }
    // NaN payloads and -0 really are in there.
    const u = new Uint32Array(payload.tensors['lora.layers.0.q.A']!.data.buffer);
    expect([...u]).toContain(0x7fc00123);
    expect([...u]).toContain(0x80000000);
  });

  it('accepts tensors that are views into a larger buffer', async () => {
    const { store, run } = await setup();
    const big = Float32Array.from({ length: 100 }, (_, i) => i / 3);
    const view = big.subarray(10, 22);
    await store.checkpoints.save(run.id, { step: 1, tensors: { w: { shape: [3, 4], data: view } }, state: null, metrics: {} });
    const loaded = await store.checkpoints.load(run.id, 1);
    expect(sameBits(loaded.tensors.w!.data, view)).toBe(true);
    expect(loaded.state).toBeNull();
    expect(loaded.metrics).toEqual({});
  });

  it('writes a standard safetensors file across the chunks', async () => {
    const { store, run, backend } = await setup({ maxChunkBytes: 100 });
    const payload = makePayload(7, { size: 64 });
    await store.checkpoints.save(run.id, payload);
    const m = (await backend.get(keys.manifest(run.id, 7))) as unknown as CheckpointManifest;
    const parts = (await backend.getMany(m.chunks.map((_, i) => keys.chunk(run.id, 7, m.writeId, i)))) as Uint8Array[];
    const all = new Uint8Array(m.totalBytes);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.byteLength;
    }
    const file = new SafetensorsFile(all);
    expect(file.metadata.format).toBe('tabtune-checkpoint');
    expect(JSON.parse(file.metadata.state!)).toEqual(payload.state);
    expect(file.entry('lora.layers.0.q.A')).toMatchObject({ dtype: 'F32', shape: [8, 8] });
    expect(sameBits(file.getFloat32('lora.layers.0.q.B'), payload.tensors['lora.layers.0.q.B']!.data)).toBe(true);
  });

  it('rejects bad input before writing anything', async () => {
    const { store, run, backend } = await setup();
    const before = await backend.keys('');
    await expect(store.checkpoints.save(run.id, { step: 1, tensors: { w: { shape: [2, 3], data: new Float32Array(5) } }, state: {}, metrics: {} })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
    });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(store.checkpoints.save(run.id, { step: 1, tensors: {}, state: cyclic, metrics: {} })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.checkpoints.save(run.id, { step: -1, tensors: {}, state: {}, metrics: {} })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.checkpoints.save('nope', makePayload(1))).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await backend.keys('')).toEqual(before);
  });
});

describe('chunking', () => {
  it('splits into many tiny chunks, none above the limit, and reassembles exactly', async () => {
    const { store, run, backend } = await setup({ maxChunkBytes: 37 });
    const payload = makePayload(5, { size: 512 });
    const { info } = await store.checkpoints.save(run.id, payload);
    expect(info.chunkCount).toBeGreaterThan(100);
    const m = (await backend.get(keys.manifest(run.id, 5))) as unknown as CheckpointManifest;
    const chunkKeys = await backend.keys(keys.chunkRunPrefix(run.id));
    expect(chunkKeys).toHaveLength(info.chunkCount);
    const chunks = (await backend.getMany(chunkKeys)) as Uint8Array[];
    expect(chunks.every((c) => c.byteLength <= 37)).toBe(true);
    expect(chunks.slice(0, -1).every((c) => c.byteLength === 37)).toBe(true);
    expect(chunks.reduce((a, c) => a + c.byteLength, 0)).toBe(m.totalBytes);
    expect(m.chunks.map((c) => c.crc32)).toEqual(chunks.map((c) => crc32(c)));
    const loaded = await store.checkpoints.load(run.id, 5);
    for (const [name, t] of Object.entries(payload.tensors)) expect(sameBits(loaded.tensors[name]!.data, t.data)).toBe(true);
  });

  it('stores each chunk as its own buffer (no hidden copy of the whole blob)', async () => {
    const mem = new MemoryBackend();
    const store = new TabtuneStore(mem, { maxChunkBytes: 64 });
    const run = await store.runs.create({ name: 'r' });
    await store.checkpoints.save(run.id, makePayload(1, { size: 256 }));
    for (const k of await mem.keys('chunk/')) expect((mem.map.get(k) as Uint8Array).buffer.byteLength).toBeLessThanOrEqual(64);
  });
});

describe('manifest-last visibility and crash recovery', () => {
  it('a tab closed mid-write leaves the previous checkpoint as latest; orphans are collected', async () => {
    const base = freshIdb();
    const clock = fakeClock();
    const kill = new KillSwitchBackend(base);
    const tab1 = new TabtuneStore(kill, { now: clock.now, maxChunkBytes: 50 });
    const run = await tab1.runs.create({ name: 'r' });
    const first = makePayload(10, { size: 128 });
    await tab1.checkpoints.save(run.id, first);
    const chunksOfFirst = (await base.keys('chunk/')).length;

    // The next save dies after writing 5 chunks: no manifest, and no cleanup (the tab is gone).
    kill.setsLeft = 5;
    await expect(tab1.checkpoints.save(run.id, makePayload(20, { size: 128 }))).rejects.toThrow('tab closed');
    expect((await base.keys('chunk/')).length).toBe(chunksOfFirst + 5);
    expect(await base.get(keys.manifest(run.id, 20))).toBeUndefined();

    // Reload: a new store over the same database.
    clock.advance(10 * 60_000);
    const tab2 = new TabtuneStore(base, { now: clock.now, maxChunkBytes: 50 });
    const latest = await tab2.checkpoints.latest(run.id);
    expect(latest?.step).toBe(10);
    expect((await base.keys('chunk/')).length).toBe(chunksOfFirst); // listing collected the orphans
    const loaded = await tab2.checkpoints.loadLatest(run.id);
    expect(loaded?.checkpoint.step).toBe(10);
    expect(loaded?.skipped).toEqual([]);
    expect(sameBits(loaded!.checkpoint.tensors['lora.layers.0.q.A']!.data, first.tensors['lora.layers.0.q.A']!.data)).toBe(true);
  });

  it('a crash before any checkpoint leaves a run with none', async () => {
    const base = freshIdb();
    const kill = new KillSwitchBackend(base);
    const tab1 = new TabtuneStore(kill, { maxChunkBytes: 50, orphanGraceMs: 0 });
    const run = await tab1.runs.create({ name: 'r' });
    kill.setsLeft = 3;
    await expect(tab1.checkpoints.save(run.id, makePayload(1, { size: 128 }))).rejects.toThrow('tab closed');
    const tab2 = new TabtuneStore(base, { orphanGraceMs: 0 });
    expect(await tab2.checkpoints.latest(run.id)).toBeNull();
    expect(await tab2.checkpoints.loadLatest(run.id)).toBeNull();
    expect(await base.keys('chunk/')).toEqual([]);
  });

  it('recover() collects orphans of every run and reports the count', async () => {
    const base = freshIdb();
    const clock = fakeClock();
    const kill = new KillSwitchBackend(base);
    const tab1 = new TabtuneStore(kill, { now: clock.now, maxChunkBytes: 50 });
    const a = await tab1.runs.create({ name: 'a' });
    const b = await tab1.runs.create({ name: 'b' });
    await tab1.checkpoints.save(a.id, makePayload(1));
    kill.setsLeft = 2;
    await expect(tab1.checkpoints.save(b.id, makePayload(1))).rejects.toThrow('tab closed');
    clock.advance(5 * 60_000);
    const tab2 = new TabtuneStore(base, { now: clock.now });
    const { garbage } = await tab2.recover();
    expect(garbage.removedKeys).toBe(2);
    expect((await base.keys(keys.chunkRunPrefix(b.id))).length).toBe(0);
    expect((await tab2.checkpoints.load(a.id, 1)).step).toBe(1);
  });

  it('leaves young orphans alone (another tab may be writing them) until the grace period passes', async () => {
    const base = freshIdb();
    const clock = fakeClock();
    const kill = new KillSwitchBackend(base);
    const tab1 = new TabtuneStore(kill, { now: clock.now, maxChunkBytes: 50 });
    const run = await tab1.runs.create({ name: 'r' });
    kill.setsLeft = 3;
    await expect(tab1.checkpoints.save(run.id, makePayload(1))).rejects.toThrow('tab closed');
    const tab2 = new TabtuneStore(base, { now: clock.now, orphanGraceMs: 60_000 });
    await tab2.checkpoints.list(run.id);
    expect((await base.keys('chunk/')).length).toBe(3);
    clock.advance(61_000);
    await tab2.checkpoints.list(run.id);
    expect((await base.keys('chunk/')).length).toBe(0);
  });

  it('garbage collection during a save never removes the chunks being written', async () => {
    const slow = new SlowBackend(freshIdb());
    const store = new TabtuneStore(slow, { maxChunkBytes: 64, orphanGraceMs: 0 });
    const run = await store.runs.create({ name: 'r' });
    slow.delayMs = 2;
    const saving = store.checkpoints.save(run.id, makePayload(3, { size: 256 }));
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await store.collectGarbage({ graceMs: 0 });
      await store.checkpoints.list(run.id);
    }
    await saving;
    slow.delayMs = 0;
    expect((await store.checkpoints.load(run.id, 3)).step).toBe(3);
  });

  it('refuses to commit when another tab collected its chunks mid-write', async () => {
    const slow = new SlowBackend(freshIdb());
    const writer = new TabtuneStore(slow, { maxChunkBytes: 64 });
    const other = new TabtuneStore(slow.inner, { orphanGraceMs: 0 });
    const run = await writer.runs.create({ name: 'r' });
    slow.delayMs = 3;
    const saving = writer.checkpoints.save(run.id, makePayload(3, { size: 256 }));
    await new Promise((r) => setTimeout(r, 20));
    await other.collectGarbage({ graceMs: 0 });
    await expect(saving).rejects.toMatchObject({ code: 'WRITE_CONFLICT' });
    slow.delayMs = 0;
    expect(await writer.checkpoints.latest(run.id)).toBeNull();
  });

  it('re-saving a step replaces it atomically and drops the old chunks', async () => {
    const { store, run, backend } = await setup({ maxChunkBytes: 100 });
    await store.checkpoints.save(run.id, makePayload(5, { seed: 1 }), { pinned: true });
    const before = await backend.keys('chunk/');
    const again = makePayload(5, { seed: 2 });
    const { info } = await store.checkpoints.save(run.id, again);
    expect(info.pinned).toBe(true); // the pin survives a re-save
    const after = await backend.keys('chunk/');
    expect(after.some((k) => before.includes(k))).toBe(false);
    const loaded = await store.checkpoints.load(run.id, 5);
    expect(sameBits(loaded.tensors['lora.layers.0.q.A']!.data, again.tensors['lora.layers.0.q.A']!.data)).toBe(true);
  });
});

describe('corruption detection', () => {
  async function saved() {
    const s = await setup({ maxChunkBytes: 64, keepLast: 5 });
    await s.store.checkpoints.save(s.run.id, makePayload(1, { size: 128 }));
    await s.store.checkpoints.save(s.run.id, makePayload(2, { size: 128 }));
    const m = (await s.backend.get(keys.manifest(s.run.id, 2))) as unknown as CheckpointManifest;
    return { ...s, m, chunkKey: (i: number) => keys.chunk(s.run.id, 2, m.writeId, i) };
  }

  it('a flipped bit fails the CRC with a clear message', async () => {
    const { store, run, backend, chunkKey } = await saved();
    const c = (await backend.get(chunkKey(3))) as Uint8Array;
    c[5] ^= 0x10;
    await backend.set(chunkKey(3), c);
    const err = await store.checkpoints.load(run.id, 2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckpointCorruptError);
    expect(err).toMatchObject({ code: 'CHECKPOINT_CORRUPT', runId: run.id, step: 2, chunkIndex: 3 });
    expect((err as Error).message).toMatch(/checkpoint step 2 .* is damaged: chunk 4 of \d+ fails its CRC-32 check/);
    expect((err as StorageError).hint).toMatch(/earlier/);
  });

  it('a missing or truncated chunk is reported', async () => {
    const { store, run, backend, chunkKey, m } = await saved();
    await backend.del(chunkKey(0));
    await expect(store.checkpoints.load(run.id, 2)).rejects.toThrow(`chunk 1 of ${m.chunks.length} is missing`);
    const s2 = await saved();
    const c = (await s2.backend.get(s2.chunkKey(1))) as Uint8Array;
    await s2.backend.set(s2.chunkKey(1), c.slice(0, 10));
    await expect(s2.store.checkpoints.load(s2.run.id, 2)).rejects.toThrow(/chunk 2 of \d+ is 10 bytes, expected 64/);
  });

  it('a checksum-valid but malformed blob is still reported as damaged', async () => {
    const { store, run, backend, chunkKey, m } = await saved();
    const c = (await backend.get(chunkKey(0))) as Uint8Array;
    c[0] = 0xff; // header length now points past the end
    c[1] = 0xff;
    await backend.set(chunkKey(0), c);
    await backend.set(keys.manifest(run.id, 2), { ...m, chunks: m.chunks.map((x, i) => (i === 0 ? { ...x, crc32: crc32(c) } : x)) } as never);
    await expect(store.checkpoints.load(run.id, 2)).rejects.toBeInstanceOf(CheckpointCorruptError);
  });

  it('loadLatestCheckpoint falls back to the newest intact checkpoint', async () => {
    const { store, run, backend, chunkKey } = await saved();
    const c = (await backend.get(chunkKey(2))) as Uint8Array;
    c[0] ^= 1;
    await backend.set(chunkKey(2), c);
    const r = await store.checkpoints.loadLatest(run.id);
    expect(r?.checkpoint.step).toBe(1);
    expect(r?.skipped.map((e) => e.step)).toEqual([2]);
    await expect(store.checkpoints.loadLatest(run.id, { fallback: false })).rejects.toBeInstanceOf(CheckpointCorruptError);
  });

  it('an unknown step is NOT_FOUND', async () => {
    const { store, run } = await saved();
    await expect(store.checkpoints.load(run.id, 99)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('retention', () => {
  it('keeps the last K, the best by val loss and pinned ones', async () => {
    const { store, run, backend } = await setup({ keepLast: 2 });
    const vals: Record<number, number> = { 100: 2.0, 200: 1.2, 300: 1.5, 400: 1.6, 500: 1.7, 600: 1.8 };
    const deleted: number[][] = [];
    for (const step of [100, 200, 300, 400, 500, 600]) {
      if (step === 300) {
        deleted.push((await store.checkpoints.save(run.id, makePayload(step, { valLoss: vals[step] }), { pinned: true })).deletedSteps);
      } else {
        deleted.push((await store.checkpoints.save(run.id, makePayload(step, { valLoss: vals[step] }))).deletedSteps);
      }
    }
    // 100: neither recent, best nor pinned once 300 lands; 400: once 600 lands.
    expect(deleted).toEqual([[], [], [100], [], [], [400]]);
    const list = await store.checkpoints.list(run.id);
    expect(list.map((c) => [c.step, c.isBest, c.pinned, c.isLatest])).toEqual([
      [200, true, false, false],
      [300, false, true, false],
      [500, false, false, false],
      [600, false, false, true],
    ]);
    // Deleted checkpoints leave no chunks behind.
    const chunkSteps = new Set((await backend.keys(keys.chunkRunPrefix(run.id))).map((k) => Number(k.split('/')[2])));
    expect([...chunkSteps].sort()).toEqual([200, 300, 500, 600]);
    // The listing has every field the UI needs.
    expect(list[0]).toEqual({
      runId: run.id,
      step: 200,
      createdAt: expect.any(Number),
      sizeBytes: expect.any(Number),
      chunkCount: 1,
      trainLoss: expect.any(Number),
      valLoss: 1.2,
      valStep: null, // saved without the step it was measured at
      extra: null,
      pinned: false,
      isBest: true,
      isLatest: false,
    });
  });

  it('keeps the steps a save asks it to keep, and stores the evaluation measurements of a checkpoint', async () => {
    const { store, run } = await setup({ keepLast: 1 });
    const payload = (step: number, extra?: Record<string, number>) => ({ ...makePayload(step, { valLoss: 10 - step }), ...(extra ? { metrics: { valLoss: 10 - step, extra } } : {}) });
    await store.checkpoints.save(run.id, payload(1, { exact_match: 0.5, probe_nll_delta_pct: 1.5, bad: NaN }));
    await store.checkpoints.save(run.id, payload(2), { keep: [1] });
    const r = await store.checkpoints.save(run.id, payload(3), { keep: [1] });
    expect(r.deletedSteps).toEqual([2]);
    const list = await store.checkpoints.list(run.id);
    expect(list.map((c) => c.step)).toEqual([1, 3]);
    // Non-finite measurements are not stored; a checkpoint without an evaluation has none.
    expect(list[0]!.extra).toEqual({ exact_match: 0.5, probe_nll_delta_pct: 1.5 });
    expect(list[1]!.extra).toBeNull();
    // Without the keep, the next save's retention deletes it.
    expect((await store.checkpoints.save(run.id, payload(4))).deletedSteps).toEqual([1, 3]);
  });

  it('a new best takes over and the old best becomes deletable; unpinning exposes a checkpoint to retention', async () => {
    const { store, run } = await setup({ keepLast: 1 });
    await store.checkpoints.save(run.id, makePayload(1, { valLoss: 3 }));
    await store.checkpoints.save(run.id, makePayload(2, { valLoss: 4 }), { pinned: true });
    await store.checkpoints.save(run.id, makePayload(3, { valLoss: 5 }));
    expect((await store.checkpoints.list(run.id)).map((c) => c.step)).toEqual([1, 2, 3]);
    const r = await store.checkpoints.save(run.id, makePayload(4, { valLoss: 2 }));
    expect(r.deletedSteps).toEqual([1, 3]);
    expect((await store.checkpoints.list(run.id)).map((c) => c.step)).toEqual([2, 4]);
    const unpinned = await store.checkpoints.unpin(run.id, 2);
    expect(unpinned.pinned).toBe(false);
    expect(await store.checkpoints.applyRetention(run.id)).toEqual([2]);
    expect((await store.checkpoints.list(run.id)).map((c) => c.step)).toEqual([4]);
  });

  it('a checkpoint without val loss is never "best"; keepLast can be overridden per save', async () => {
    const { store, run } = await setup({ keepLast: 3 });
    for (const s of [1, 2, 3, 4]) await store.checkpoints.save(run.id, makePayload(s), { keepLast: 2 });
    const list = await store.checkpoints.list(run.id);
    expect(list.map((c) => c.step)).toEqual([3, 4]);
    expect(list.some((c) => c.isBest)).toBe(false);
  });

  it('pin, unpin and delete', async () => {
    const { store, run } = await setup({ keepLast: 1 });
    await store.checkpoints.save(run.id, makePayload(1));
    expect((await store.checkpoints.pin(run.id, 1)).pinned).toBe(true);
    await store.checkpoints.save(run.id, makePayload(2));
    expect((await store.checkpoints.list(run.id)).map((c) => [c.step, c.pinned])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(await store.checkpoints.delete(run.id, 1)).toBe(true);
    expect(await store.checkpoints.delete(run.id, 1)).toBe(false);
    await expect(store.checkpoints.pin(run.id, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await store.checkpoints.list(run.id)).map((c) => c.step)).toEqual([2]);
  });
});

describe('branches', () => {
  it('rewinds to a checkpoint as a new run, resumes from the parent checkpoint, and protects the branch point', async () => {
    const { store, run } = await setup({ keepLast: 1 });
    await store.checkpoints.save(run.id, makePayload(100));
    const branch = await store.checkpoints.branch(run.id, 100, { name: 'try lower lr', config: { lr: 1e-4, rank: 8 } });
    expect(branch).toMatchObject({ parentRunId: run.id, parentCheckpointStep: 100, status: 'paused', name: 'try lower lr', config: { lr: 1e-4, rank: 8 } });
    expect((await store.checkpoints.resolveResume(branch.id))).toMatchObject({ runId: run.id, step: 100 });
    await store.checkpoints.save(run.id, makePayload(200));
    await store.checkpoints.save(run.id, makePayload(300));
    expect((await store.checkpoints.list(run.id)).map((c) => c.step)).toEqual([100, 300]);
    await store.checkpoints.save(branch.id, makePayload(150));
    expect(await store.checkpoints.resolveResume(branch.id)).toMatchObject({ runId: branch.id, step: 150 });
    await expect(store.checkpoints.branch(run.id, 200)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const defaults = await store.checkpoints.branch(run.id, 300);
    expect(defaults).toMatchObject({ name: 'tiny (from step 300)', config: run.config });
  });
});
