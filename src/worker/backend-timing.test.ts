// time-backends in Node, through the worker protocol: WebGPU is not available here (its row says so), WASM and
// CPU (added for the test) are timed with a real LoRA step of tabtune-tiny; the result is stored per model and
// device and read back instead of measuring; with 'auto' the model moves to the backend the figures pick
// (given fake figures, so the test knows which), and keeps generating the same tokens; numTensors stays flat.
// No wall-clock assertions.
import 'fake-indexeddb/auto';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendTiming, Events } from '../protocol/messages';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const fast = (backend: 'wasm' | 'cpu', tokensPerS: number): BackendTiming => ({
  backend,
  status: 'measured',
  tokensPerS,
  slowerThan: null,
  note: `${tokensPerS} tokens/s (1 step of 16 tokens)`,
  steps: 1,
  tokens: 16,
  ms: 16_000 / tokensPerS,
  loadMs: 1,
  warmupMs: 1,
});

describe('time-backends (tabtune-tiny, wasm and cpu in Node)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let store: TabtuneStore;
  const ask = { prompt: 'The President said that', maxNewTokens: 6, temperature: 0 };

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    store = new TabtuneStore(freshIdb());
    w = connectInProcess({ store, timeBackendsAlso: ['cpu'] });
    await w.client.request('init-backend', { preference: 'auto' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
  });
  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('measures WASM and CPU, says why WebGPU is not timed, stores the result and reads it back', async () => {
    const client = w.client;
    const before = await client.request('generate', ask);
    const tensors = tf.memory().numTensors;
    const events: Events['backend-timing'][] = [];
    const r = await client.request('time-backends', { batch: { windows: 1, seq: 16 }, budgetMs: 300 }, { 'backend-timing': (e) => void events.push(e) });
    expect(r.fromCache).toBe(false);
    expect(r.model).toBe('model'); // the folder's name: serveFolder serves it at /model/
    expect(r.batch).toEqual({ windows: 1, seq: 16 });
    expect(r.rows.map((x) => [x.backend, x.status])).toEqual([
      ['webgpu', 'skipped'],
      ['wasm', 'measured'],
      ['cpu', 'measured'],
    ]);
    expect(r.rows[0]!.note).toBe('skipped: not available (not available in Node)');
    for (const row of r.rows.slice(1)) {
      expect(row.tokensPerS).toBeGreaterThan(0);
      expect(row.tokens).toBe(16 * row.steps);
    }
    const best = r.rows[1]!.tokensPerS! >= r.rows[2]!.tokensPerS! ? 'wasm' : 'cpu';
    expect(r.picked).toBe(best);
    expect(r.key).toMatch(/^model\|llama\|\d+p\|4x64\|v4096\|\|no-adapter\|wasm-threads=default\|/);
    expect(events.map((e) => e.measuring)).toEqual([null, 'wasm', 'cpu', null]);
    expect(events.at(-1)!.rows).toHaveLength(3);
    // With 'auto' the model is where the figures say, and still the same model.
    expect((await client.request('get-backend', {})).backend).toBe(best);
    expect(r.switchedTo?.name ?? 'wasm').toBe(best);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(r.tensors).toEqual({ before: tensors, after: tensors });
    expect((await client.request('generate', ask)).tokens).toEqual(before.tokens);
    expect(await store.backendTimings.get(r.key)).toMatchObject({ rows: r.rows, measuredAt: r.measuredAt, picked: best });

    // Another page load reads it back instead of measuring.
    const again = await client.request('time-backends', {});
    expect(again).toMatchObject({ fromCache: true, measuredAt: r.measuredAt, rows: r.rows, picked: best, switchedTo: null });
  });

  it('follows the stored figures: the faster backend gets the model, which generates as before', async () => {
    const client = w.client;
    const first = await client.request('time-backends', {});
    const now = (await client.request('get-backend', {})).backend as 'wasm' | 'cpu';
    const other = now === 'wasm' ? 'cpu' : 'wasm';
    const before = await client.request('generate', ask);
    const tensors = tf.memory().numTensors;
    // Fake figures in which the other backend is 10x faster.
    await store.backendTimings.put({ ...first, rows: [first.rows[0]!, fast(other, 1000), fast(now, 100)], picked: other });
    const r = await client.request('time-backends', {});
    expect(r.fromCache).toBe(true);
    expect(r.switchedTo?.name).toBe(other);
    expect(r.switchedTo!.reasons.some((x) => x.startsWith(`${now === 'wasm' ? 'WASM' : 'CPU'}: measured 100 tokens/s training this model`))).toBe(true);
    expect((await client.request('get-backend', {})).backend).toBe(other);
    expect(tf.memory().numTensors).toBe(tensors);
    expect((await client.request('generate', ask)).tokens).toEqual(before.tokens);
    // Measuring again replaces the stored figures with real ones.
    const fresh = await client.request('time-backends', { force: true, batch: { windows: 1, seq: 16 }, budgetMs: 200 });
    expect(fresh.fromCache).toBe(false);
    expect(fresh.measuredAt).toBeGreaterThanOrEqual(first.measuredAt);
    expect(fresh.rows.filter((x) => x.status === 'measured').map((x) => x.backend).sort()).toEqual(['cpu', 'wasm']);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('an explicit backend is kept, with the reason; bad settings are refused', async () => {
    const client = w.client;
    await client.request('init-backend', { preference: 'wasm' });
    await client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const stored = await client.request('time-backends', {});
    await store.backendTimings.put({ ...stored, rows: [stored.rows[0]!, fast('wasm', 100), fast('cpu', 1000)], picked: 'cpu' });
    const r = await client.request('time-backends', {});
    expect(r).toMatchObject({ fromCache: true, picked: 'cpu', switchedTo: null, kept: 'WASM was picked explicitly (Auto would use CPU)' });
    expect((await client.request('get-backend', {})).backend).toBe('wasm');
    await expect(client.request('time-backends', { batch: { windows: 0, seq: 16 } })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.request('time-backends', { budgetMs: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});
