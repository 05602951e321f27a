// TabtuneStore over the filesystem backend (the CLI's storage): same guarantees as IndexedDB.
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageFullError } from '../storage/errors';
import { storageKeys as keys } from '../storage/keys';
import { TabtuneStore } from '../storage/store';
import { fakeClock, KillSwitchBackend, makePayload, QuotaBackend, sameBits } from '../testing/storage';
import { decodeSegment, encodeSegment, FsBackend } from './fs-backend';

const tmp = mkdtempSync(join(tmpdir(), 'tabtune-fs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(tmp, `s${++n}`);

describe('FsBackend', () => {
  it('escapes segments reversibly and safely for case-insensitive filesystems', () => {
    for (const s of ['abc', 'ABC', 'a.b', '..', '', '日本', 'a/b', '%', 'x-y_z']) {
      const e = encodeSegment(s);
      expect(e).not.toMatch(/[./\\]/);
      // Only lowercase letters, digits, "_" and "-" outside %XX escapes: no case-only differences.
      expect(e === '%' || /^([a-z0-9_-]|%[0-9A-F]{2})+$/.test(e)).toBe(true);
      expect(decodeSegment(e)).toBe(s);
    }
    expect(encodeSegment('Run.1')).toBe('%52un%2E1');
    expect(encodeSegment('ABC').toLowerCase()).not.toBe(encodeSegment('abc'));
  });

  it('lays keys out as files: JSON as .json, bytes as .bin, no scratch files left', async () => {
    const dir = freshDir();
    const kv = new FsBackend(dir);
    await kv.set('ckpt/r1/000000000005', { step: 5 });
    await kv.set('chunk/r1/000000000005/w1/000000', Uint8Array.of(1, 2, 3));
    expect(existsSync(join(dir, 'ckpt', 'r1', '000000000005.json'))).toBe(true);
    expect(existsSync(join(dir, 'chunk', 'r1', '000000000005', 'w1', '000000.bin'))).toBe(true);
    expect(readdirSync(join(dir, 'ckpt', 'r1'))).toEqual(['000000000005.json']);
    await kv.del('chunk/r1/000000000005/w1/000000');
    expect(existsSync(join(dir, 'chunk'))).toBe(false); // empty folders are pruned
  });

  it('sweeps scratch files left by a crashed write and ignores them when listing', async () => {
    const dir = freshDir();
    const kv = new FsBackend(dir);
    await kv.set('run/a', 1);
    const scratch = join(dir, 'run', '.tmp-deadbeef');
    writeFileSync(scratch, 'partial');
    expect(await kv.keys('')).toEqual(['run/a']);
    expect(await kv.sweepTempFiles(60_000)).toBe(0);
    utimesSync(scratch, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    expect(await kv.sweepTempFiles(60_000)).toBe(1);
    expect(existsSync(scratch)).toBe(false);
  });
});

describe('TabtuneStore on the filesystem', () => {
  it('round-trips checkpoints across store instances (a CLI restart), with tiny chunks', async () => {
    const dir = freshDir();
    const s1 = new TabtuneStore(new FsBackend(dir), { maxChunkBytes: 100 });
    const run = await s1.runs.create({ name: 'cli run', config: { lr: 1e-3 } });
    const payload = makePayload(42, { size: 256, valLoss: 0.9 });
    const { info } = await s1.checkpoints.save(run.id, payload);
    expect(info.chunkCount).toBeGreaterThan(20);
    await s1.runs.appendMetrics(run.id, Array.from({ length: 1234 }, (_, i) => ({ step: i, loss: 1 / (i + 1) })));

    const s2 = new TabtuneStore(new FsBackend(dir));
    expect((await s2.runs.get(run.id))?.name).toBe('cli run');
    expect(await s2.runs.readMetrics(run.id, { from: 1230 })).toEqual([1230, 1231, 1232, 1233].map((i) => ({ step: i, loss: 1 / (i + 1) })));
    const loaded = await s2.checkpoints.load(run.id, 42);
    expect(loaded.state).toEqual(payload.state);
    for (const [name, t] of Object.entries(payload.tensors)) expect(sameBits(loaded.tensors[name]!.data, t.data)).toBe(true);
  });

  it('a process killed mid-write keeps the previous checkpoint; orphans are collected', async () => {
    const dir = freshDir();
    const clock = fakeClock();
    const kill = new KillSwitchBackend(new FsBackend(dir, { fsync: false }));
    const s1 = new TabtuneStore(kill, { now: clock.now, maxChunkBytes: 64 });
    const run = await s1.runs.create({ name: 'r' });
    await s1.checkpoints.save(run.id, makePayload(1, { size: 128 }));
    kill.setsLeft = 4;
    await expect(s1.checkpoints.save(run.id, makePayload(2, { size: 128 }))).rejects.toThrow('tab closed');
    clock.advance(10 * 60_000);
    const fsb = new FsBackend(dir);
    const s2 = new TabtuneStore(fsb, { now: clock.now });
    const chunksBefore = (await fsb.keys('chunk/')).length;
    expect((await s2.checkpoints.latest(run.id))?.step).toBe(1);
    expect((await fsb.keys('chunk/')).length).toBe(chunksBefore - 4);
    expect((await s2.checkpoints.load(run.id, 1)).step).toBe(1);
    expect(existsSync(join(dir, 'chunk', run.id, '000000000002'))).toBe(false);
  });

  it('ENOSPC becomes StorageFullError and the partial write is removed', async () => {
    const dir = freshDir();
    const fsb = new FsBackend(dir, { fsync: false });
    const q = new QuotaBackend(fsb, () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    const store = new TabtuneStore(q, { maxChunkBytes: 64 });
    const run = await store.runs.create({ name: 'r' });
    await store.checkpoints.save(run.id, makePayload(1, { size: 128 }));
    const before = await fsb.keys('');
    q.budget = 300;
    const err = await store.checkpoints.save(run.id, makePayload(2, { size: 128 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageFullError);
    expect((err as StorageFullError).hint).toContain('checkpoint step 1 of run "r"');
    expect(await fsb.keys('')).toEqual(before);
    expect(await fsb.get(keys.manifest(run.id, 2))).toBeUndefined();
    expect((await store.checkpoints.loadLatest(run.id))?.checkpoint.step).toBe(1);
  });
});
