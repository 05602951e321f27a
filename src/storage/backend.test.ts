// The KeyValueBackend contract, run against every backend.
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBackend, type KeyValueBackend } from './backend';
import { FsBackend } from '../node/fs-backend';
import { freshIdb } from '../testing/storage';

const tmp = mkdtempSync(join(tmpdir(), 'tabtune-kv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

const backends: [string, () => KeyValueBackend][] = [
  ['IdbBackend (fake-indexeddb)', () => freshIdb()],
  ['MemoryBackend', () => new MemoryBackend()],
  ['FsBackend', () => new FsBackend(join(tmp, `b${++n}`), { fsync: false })],
];

describe.each(backends)('%s', (_name, make) => {
  it('stores JSON and bytes exactly; missing keys read as undefined', async () => {
    const kv = make();
    expect(await kv.get('nope')).toBeUndefined();
    const json = { a: 1, b: [true, null, 'ü'], c: { d: -0.5 } };
    await kv.set('run/x', json);
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    await kv.set('chunk/x/1', bytes);
    expect(await kv.get('run/x')).toEqual(json);
    const back = await kv.get('chunk/x/1');
    expect(back).toBeInstanceOf(Uint8Array);
    expect(back).toEqual(bytes);
    expect(await kv.getMany(['run/x', 'nope', 'chunk/x/1'])).toEqual([json, undefined, bytes]);
    // Overwrite, also switching between JSON and bytes.
    await kv.set('run/x', Uint8Array.of(1, 2));
    expect(await kv.get('run/x')).toEqual(Uint8Array.of(1, 2));
    await kv.set('run/x', 'text');
    expect(await kv.get('run/x')).toBe('text');
    expect(await kv.keys('run/')).toEqual(['run/x']);
  });

  it('lists keys by plain string prefix, sorted', async () => {
    const kv = make();
    await kv.setMany([
      ['ckpt/r1/000000000010', 1],
      ['ckpt/r1/000000000002', 2],
      ['ckpt/r10/000000000001', 3],
      ['ckpt/r2/000000000001', 4],
      ['chunk/r1/000000000002/w/000000', Uint8Array.of(1)],
      ['run/r1', 5],
    ]);
    expect(await kv.keys('ckpt/r1/')).toEqual(['ckpt/r1/000000000002', 'ckpt/r1/000000000010']);
    expect(await kv.keys('ckpt/r1')).toEqual(['ckpt/r1/000000000002', 'ckpt/r1/000000000010', 'ckpt/r10/000000000001']);
    expect(await kv.keys('ckpt/')).toHaveLength(4);
    expect(await kv.keys('c')).toHaveLength(5);
    expect(await kv.keys('zzz/')).toEqual([]);
    expect(await kv.keys()).toHaveLength(6);
    await kv.delMany(['ckpt/r1/000000000002', 'missing/key']);
    await kv.del('run/r1');
    await kv.del('run/r1');
    expect(await kv.keys('ckpt/r1/')).toEqual(['ckpt/r1/000000000010']);
    expect(await kv.get('run/r1')).toBeUndefined();
  });

  it('handles awkward key segments (case, dots, unicode, spaces)', async () => {
    const kv = make();
    const ks = ['run/Run.1', 'run/run.1', 'run/..', 'run/a b', 'run/日本', 'run/x%2Fy'];
    for (const [i, k] of ks.entries()) await kv.set(k, i);
    for (const [i, k] of ks.entries()) expect(await kv.get(k)).toBe(i);
    expect((await kv.keys('run/')).sort()).toEqual([...ks].sort());
  });
});
