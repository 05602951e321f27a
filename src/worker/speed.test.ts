// measure-step: one timed training step of a configuration on the loaded model before any run (the time
// estimate next to Start): nothing stored, no tensor left behind, the model still generates as before,
// refused while a run trains and for DPO.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl'), 'utf8');

describe('measure-step (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
  });
  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('times one step of the configuration, stores nothing and leaves no tensor behind', async () => {
    const client = w.client;
    const { datasetId } = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'planted.jsonl' } });
    const ask = { prompt: 'Write as digits: four hundred', maxNewTokens: 5, temperature: 0 };
    const before = await client.request('generate', ask);
    await client.request('measure-step', { datasetId, config: { batchSize: 2, steps: 5 } }); // the first builds the encodings
    const tensors = tf.memory().numTensors;
    const r = await client.request('measure-step', { datasetId, config: { batchSize: 4, gradAccum: 2, steps: 50 } });
    expect(r.examples).toBe(8);
    expect(r.ms).toBeGreaterThan(0);
    expect(r.tokens).toBeGreaterThan(8 * 5); // 8 examples of more than 5 tokens each
    expect(r.tokensPerSec).toBeCloseTo(r.tokens / (r.ms / 1000), 6);
    expect(tf.memory().numTensors).toBe(tensors);
    expect((await client.request('list-runs', {})).runs).toEqual([]);
    expect((await client.request('generate', ask)).tokens).toEqual(before.tokens);
    // A larger step feeds more tokens.
    const small = await client.request('measure-step', { datasetId, config: { batchSize: 1, steps: 50 } });
    expect(small.examples).toBe(1);
    expect(small.tokens).toBeLessThan(r.tokens);
  });

  it('refuses DPO (no preference pairs to time here) and bad settings', async () => {
    const client = w.client;
    const { datasetId } = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'planted.jsonl' } });
    await expect(client.request('measure-step', { datasetId, config: { objective: 'dpo' } })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.request('measure-step', { datasetId, config: { batchSize: 0 } })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.request('measure-step', { datasetId: 'gone' })).rejects.toMatchObject({ code: 'BAD_DATASET' });
  });
});
