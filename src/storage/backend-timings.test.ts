// Backend timings are stored per model and device key: read back as written, another key reads nothing
// (also when its hash collides), and garbage collection leaves them alone.
import { describe, expect, it } from 'vitest';
import { MemoryBackend } from './backend';
import { timingId, type BackendTimingRecord } from './backend-timings';
import { TabtuneStore } from './store';

const record = (key: string): BackendTimingRecord => ({
  key,
  measuredAt: 1_700_000_000_000,
  model: 'tabtune-tiny',
  batch: { windows: 1, seq: 64 },
  budgetMs: 1500,
  picked: 'wasm',
  rows: [
    { backend: 'webgpu', status: 'skipped', tokensPerS: null, slowerThan: null, note: 'skipped: software adapter (SwiftShader)', steps: 0, tokens: 0, ms: 0, loadMs: null, warmupMs: null },
    { backend: 'wasm', status: 'measured', tokensPerS: 812.5, slowerThan: null, note: '812 tokens/s (3 steps of 64 tokens)', steps: 3, tokens: 192, ms: 236.3, loadMs: 0.1, warmupMs: 120 },
  ],
});

describe('backend timings in storage', () => {
  it('round-trips a record by its key and keeps it through garbage collection', async () => {
    const backend = new MemoryBackend();
    const store = new TabtuneStore(backend);
    const key = 'tabtune-tiny|llama|450000p|4x64|v4096||no-adapter|wasm-threads=2|Chrome';
    expect(await store.backendTimings.get(key)).toBeNull();
    await store.backendTimings.put(record(key));
    expect(await store.backendTimings.get(key)).toEqual(record(key));
    expect([...backend.map.keys()]).toEqual([`btiming/${timingId(key)}`]);
    await store.recover();
    expect(await store.backendTimings.get(key)).toEqual(record(key));
    expect(await store.backendTimings.get(`${key}x`)).toBeNull();
    await store.backendTimings.delete(key);
    expect(await store.backendTimings.get(key)).toBeNull();
  });

  it('a record stored under the same id for another key reads as not measured', async () => {
    const backend = new MemoryBackend();
    const store = new TabtuneStore(backend);
    await backend.set(`btiming/${timingId('a')}`, record('b') as never);
    expect(await store.backendTimings.get('a')).toBeNull();
    expect(timingId('a')).toMatch(/^[0-9a-f]{8}-[0-9a-f]+$/);
  });
});
