import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { storageKeys as keys } from './keys';
import { TabtuneStore } from './store';
import { fakeClock, freshIdb, makePayload, WrappedBackend } from '../testing/storage';

function setup(opts: ConstructorParameters<typeof TabtuneStore>[1] = {}) {
  const backend = new WrappedBackend(freshIdb());
  const clock = fakeClock();
  const store = new TabtuneStore(backend, { now: clock.now, ...opts });
  return { backend, clock, store };
}

describe('runs', () => {
  it('create, get, list, rename, update, status, delete', async () => {
    const { store, clock } = setup();
    const a = await store.runs.create({
      name: '  qwen lora  ',
      config: { model: 'Qwen2-0.5B', lora: { rank: 8, alpha: 16, targets: ['q', 'v'] }, lr: 3e-4, nested: [1, null, 'x'] },
      dataset: { fingerprint: 'sha256:abc', name: 'alpaca.jsonl' },
    });
    expect(a).toMatchObject({
      name: 'qwen lora',
      status: 'running',
      createdAt: clock.now(),
      updatedAt: clock.now(),
      heartbeatAt: clock.now(),
      dataset: { fingerprint: 'sha256:abc', name: 'alpaca.jsonl', datasetId: null },
      bestValLoss: null,
      metricsCount: 0,
      parentRunId: null,
      parentCheckpointStep: null,
      error: null,
    });
    expect(a.id).toMatch(/^[0-9a-z]+-[0-9a-z]+$/);
    expect(await store.runs.get(a.id)).toEqual(a);

    clock.advance(1000);
    const b = await store.runs.create({ name: 'second', id: 'my-run_2', status: 'paused' });
    expect(b.id).toBe('my-run_2');
    expect(b.heartbeatAt).toBeNull();
    await expect(store.runs.create({ name: 'dup', id: 'my-run_2' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.runs.create({ name: 'bad', id: 'a/b' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.runs.create({ name: '   ' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    await expect(store.runs.create({ name: 'x', status: 'weird' as never })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect((await store.runs.list()).map((r) => r.id)).toEqual([b.id, a.id]);

    clock.advance(1000);
    const renamed = await store.runs.rename(a.id, 'qwen lora r=8');
    expect(renamed).toMatchObject({ name: 'qwen lora r=8', updatedAt: clock.now(), createdAt: a.createdAt });
    expect((await store.runs.list()).map((r) => r.id)).toEqual([a.id, b.id]); // most recently updated first

    const failed = await store.runs.setStatus(a.id, 'failed', 'NaN loss at step 1200');
    expect(failed).toMatchObject({ status: 'failed', error: 'NaN loss at step 1200' });
    const finished = await store.runs.setStatus(a.id, 'finished');
    expect(finished).toMatchObject({ status: 'finished', error: null });
    const updated = await store.runs.update(a.id, { config: { lr: 1e-4 }, dataset: null });
    expect(updated).toMatchObject({ config: { lr: 1e-4 }, dataset: null, name: 'qwen lora r=8' });
    await expect(store.runs.rename('missing', 'x')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    await store.deleteRun(a.id);
    expect(await store.runs.get(a.id)).toBeNull();
    expect((await store.runs.list()).map((r) => r.id)).toEqual([b.id]);
  });

  it('stores config as JSON whatever the backend (non-JSON input fails early)', async () => {
    const { store } = setup();
    const r = await store.runs.create({ name: 'x', config: { d: new Date(0), u: undefined, f: 1.5 } });
    expect(r.config).toEqual({ d: '1970-01-01T00:00:00.000Z', f: 1.5 });
    await expect(store.runs.create({ name: 'y', config: { big: 1n } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('deleteRun removes metrics, checkpoints and chunks', async () => {
    const { store, backend } = setup({ maxChunkBytes: 64 });
    const r = await store.runs.create({ name: 'x' });
    const keep = await store.runs.create({ name: 'keep' });
    await store.runs.appendMetrics(r.id, Array.from({ length: 1200 }, (_, i) => ({ step: i })));
    await store.checkpoints.save(r.id, makePayload(1));
    await store.checkpoints.save(keep.id, makePayload(1));
    await store.deleteRun(r.id);
    const left = await backend.inner.keys('');
    expect(left.filter((k) => k.includes(r.id))).toEqual([]);
    expect(left.filter((k) => k.includes(keep.id)).length).toBeGreaterThan(2);
  });
});

describe('metrics', () => {
  it('appends 10k points in pages without rewriting history, and reads them back (all and ranges)', async () => {
    const { store, backend } = setup({ metricsPageSize: 256 });
    const run = await store.runs.create({ name: 'm' });
    const point = (i: number) => ({ step: i, loss: 3 - i / 5000, lr: 1e-4, ...(i % 500 === 499 ? { valLoss: 2.5 - (i % 3000) / 3000 } : {}) });
    let n = 0;
    // Half one at a time (as a training loop would), half in batches of various sizes.
    for (; n < 5000; n++) await store.runs.appendMetric(run.id, point(n));
    const sizes = [1, 7, 255, 256, 257, 1000, 3224];
    for (const s of sizes) {
      await store.runs.appendMetrics(run.id, Array.from({ length: s }, (_, j) => point(n + j)));
      n += s;
    }
    expect(n).toBe(10_000);

    // Every write touched at most the tail pages plus the run record: the largest page ever written is one page.
    const pageWrites = backend.writes.filter((w) => w.key.startsWith(keys.metricsPrefix(run.id)));
    const onePage = JSON.stringify(Array.from({ length: 256 }, (_, i) => point(9000 + i))).length;
    expect(Math.max(...pageWrites.map((w) => w.bytes))).toBeLessThanOrEqual(onePage * 1.1);
    const runWrites = backend.writes.filter((w) => w.key === keys.run(run.id));
    expect(Math.max(...runWrites.map((w) => w.bytes))).toBeLessThan(1000);
    expect((await backend.inner.keys(keys.metricsPrefix(run.id))).length).toBe(Math.ceil(10_000 / 256));

    const rec = await store.runs.get(run.id);
    expect(rec?.metricsCount).toBe(10_000);
    const all = await store.runs.readMetrics(run.id);
    expect(all).toHaveLength(10_000);
    expect(all).toEqual(Array.from({ length: 10_000 }, (_, i) => point(i)));
    expect(await store.runs.readMetrics(run.id, { from: 250, to: 520 })).toEqual(Array.from({ length: 270 }, (_, i) => point(250 + i)));
    expect(await store.runs.readMetrics(run.id, { from: 9990 })).toEqual(Array.from({ length: 10 }, (_, i) => point(9990 + i)));
    expect(await store.runs.readMetrics(run.id, { from: 20_000 })).toEqual([]);
    // Best validation loss follows the points carrying valLoss.
    const vals = all.filter((p) => (p as { valLoss?: number }).valLoss !== undefined) as { step: number; valLoss: number }[];
    const best = vals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    expect(rec).toMatchObject({ bestValLoss: best.valLoss, bestValStep: best.step });
  });

  it('a second store instance (another tab, a reload) continues the same history', async () => {
    const backend = freshIdb();
    const s1 = new TabtuneStore(backend, { metricsPageSize: 10 });
    const run = await s1.runs.create({ name: 'm' });
    await s1.runs.appendMetrics(run.id, Array.from({ length: 15 }, (_, i) => i));
    const s2 = new TabtuneStore(backend, { metricsPageSize: 99 }); // page size is fixed per run at creation
    await s2.runs.appendMetrics(run.id, [15, 16]);
    await s1.runs.appendMetrics(run.id, [17]); // s1's cached tail is stale: it must notice
    expect(await s2.runs.readMetrics(run.id)).toEqual(Array.from({ length: 18 }, (_, i) => i));
  });

  it('a crash between the page write and the run record leaves a consistent history', async () => {
    const base = freshIdb();
    const s1 = new TabtuneStore(base, { metricsPageSize: 4 });
    const run = await s1.runs.create({ name: 'm' });
    await s1.runs.appendMetrics(run.id, [0, 1, 2, 3, 4, 5]);
    // Simulate a non-atomic backend dying after the pages but before the run record.
    await base.set(keys.metricsPage(run.id, 1), [4, 5, 'ghost-6', 'ghost-7']);
    await base.set(keys.metricsPage(run.id, 2), ['ghost-8']);
    const s2 = new TabtuneStore(base);
    expect(await s2.runs.readMetrics(run.id)).toEqual([0, 1, 2, 3, 4, 5]);
    await s2.runs.appendMetrics(run.id, [6, 7, 8]);
    expect(await s2.runs.readMetrics(run.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('concurrent appends are serialised', async () => {
    const { store } = setup({ metricsPageSize: 3 });
    const run = await store.runs.create({ name: 'm' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.runs.appendMetric(run.id, i)));
    expect(await store.runs.readMetrics(run.id)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('checkpoint val losses also update bestValLoss', async () => {
    const { store } = setup();
    const run = await store.runs.create({ name: 'm' });
    await store.runs.appendMetric(run.id, { step: 10, valLoss: 2 });
    await store.checkpoints.save(run.id, makePayload(20, { valLoss: 1.5 }));
    expect(await store.runs.get(run.id)).toMatchObject({ bestValLoss: 1.5, bestValStep: 20 });
    await store.checkpoints.save(run.id, makePayload(30, { valLoss: 1.7 }));
    expect(await store.runs.get(run.id)).toMatchObject({ bestValLoss: 1.5, bestValStep: 20 });
  });
});

describe('interrupted runs', () => {
  it('marks running runs without a recent heartbeat as interrupted', async () => {
    const { store, clock } = setup({ staleAfterMs: 30_000 });
    const alive = await store.runs.create({ name: 'alive' });
    const dead = await store.runs.create({ name: 'dead' });
    const paused = await store.runs.create({ name: 'paused', status: 'paused' });
    const done = await store.runs.create({ name: 'done' });
    await store.runs.setStatus(done.id, 'finished');

    clock.advance(20_000);
    await store.runs.heartbeat(alive.id);
    expect(await store.runs.findInterrupted()).toEqual([]);

    clock.advance(20_000); // dead: 40 s without heartbeat; alive: 20 s
    expect((await store.runs.findInterrupted({ markInterrupted: false })).map((r) => r.id)).toEqual([dead.id]);
    expect((await store.runs.get(dead.id))?.status).toBe('running');
    const found = await store.runs.findInterrupted();
    expect(found.map((r) => [r.id, r.status])).toEqual([[dead.id, 'interrupted']]);
    expect((await store.runs.get(dead.id))?.status).toBe('interrupted');
    expect((await store.runs.get(paused.id))?.status).toBe('paused');
    expect(await store.runs.findInterrupted()).toEqual([]); // already marked

    // A tighter threshold catches the other one too; resuming makes it fresh again.
    expect((await store.runs.findInterrupted({ staleAfterMs: 10_000 })).map((r) => r.id)).toEqual([alive.id]);
    await store.runs.setStatus(alive.id, 'running');
    expect(await store.runs.findInterrupted({ staleAfterMs: 10_000 })).toEqual([]);
  });

  it('recover() after a reload reports interrupted runs with their latest checkpoint', async () => {
    const backend = freshIdb();
    const clock = fakeClock();
    const tab1 = new TabtuneStore(backend, { now: clock.now });
    const run = await tab1.runs.create({ name: 'r' });
    await tab1.checkpoints.save(run.id, makePayload(50));
    await tab1.runs.heartbeat(run.id);
    clock.advance(5 * 60_000); // the tab was closed
    const tab2 = new TabtuneStore(backend, { now: clock.now });
    const { interrupted } = await tab2.recover();
    expect(interrupted.map((r) => r.id)).toEqual([run.id]);
    expect((await tab2.checkpoints.latest(run.id))?.step).toBe(50);
  });
});
