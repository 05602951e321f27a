// The page <-> worker protocol end to end in Node: the real client and the real worker handler,
// talking over a MessageChannel (structured clone, as between a page and a Web Worker), running
// the real engine on the stories260K reference model served over HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, type WorkerClient } from '../protocol/client';
import { ensureReferenceHF, loadGolden, referenceAvailable, type Golden } from '../testing/reference';
import { connectInProcess, serveFolder, type InProcessWorker } from './testing';

describe.skipIf(!referenceAvailable())('worker protocol (client + handler over a MessageChannel)', () => {
  let golden: Golden;
  let http: { base: string; close(): void };
  let worker: InProcessWorker;
  let client: WorkerClient;

  beforeAll(async () => {
    golden = await loadGolden();
    http = await serveFolder(await ensureReferenceHF());
    worker = connectInProcess();
    client = worker.client;
  });

  afterAll(() => {
    worker?.close();
    http?.close();
  });

  it('starts the backend asked for and reports what TF.js really runs', async () => {
    const status = await client.request('init-backend', { preference: 'wasm' });
    expect(status.name).toBe('wasm');
    expect(status.tfBackend).toBe('wasm');
    expect(await client.request('get-backend', {})).toEqual({ backend: 'wasm', threads: status.threads });
  });

  it('answers a generate before any model with NO_MODEL and a hint', async () => {
    const err = await client.request('generate', { prompt: 'x', maxNewTokens: 1, temperature: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err.code).toBe('NO_MODEL');
    expect(err.hint).toMatch(/load a model/i);
  });

  it('reports a folder that 404s as MISSING_FILE', async () => {
    const err = await client.request('load-model', { location: { kind: 'url', url: `${http.base}/nothing/` } }).catch((e) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err.code).toBe('MISSING_FILE');
    expect(err.message).toContain('config.json not found');
  });

  it('loads a model from a URL with progress events', async () => {
    const progress: number[] = [];
    const summary = await client.request(
      'load-model',
      { location: { kind: 'url', url: `${http.base}/model/` } },
      { progress: (p) => progress.push(p.fraction) },
    );
    expect(summary).toMatchObject({ name: 'model', arch: 'llama', numParams: 260032, vocabSize: 512, contextLength: 512, layers: 5, hiddenSize: 64 });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(1);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress); // never goes backwards
  });

  it('streams a greedy generation whose tokens add up to the golden continuation', async () => {
    const p = golden.prompt_greedy;
    const want = { tokens: p.tokens.slice(p.prompt_tokens.length), text: p.text.slice(p.prompt.length) };
    let streamed = '';
    const tokenIds: number[] = [];
    const out = await client.request(
      'generate',
      { prompt: p.prompt, maxNewTokens: want.tokens.length, temperature: 0 },
      { token: (t) => ((streamed += t.text), t.token >= 0 && tokenIds.push(t.token)) },
    );
    expect(out.text).toBe(want.text);
    expect(out.tokens).toEqual(want.tokens);
    expect(out.promptTokens).toEqual(p.prompt_tokens);
    expect(out.finishReason).toBe('length');
    expect(streamed).toBe(want.text);
    expect(tokenIds).toEqual(want.tokens);
    expect(out.tokensPerSecond).toBeGreaterThan(0);
  });

  it('cancels a running generation', async () => {
    let cancelSent: Promise<boolean> | null = null;
    const handle = client.send(
      'generate',
      { prompt: 'Once upon a time', maxNewTokens: 400, temperature: 0.8, seed: 1 },
      { token: () => void (cancelSent ??= client.cancel(handle.id)) },
    );
    const out = await handle.result;
    expect(await cancelSent).toBe(true);
    expect(out.finishReason).toBe('cancelled');
    expect(out.tokens.length).toBeGreaterThan(0);
    expect(out.tokens.length).toBeLessThan(400);
    // Nothing left to cancel once it has finished.
    expect(await client.cancel(handle.id)).toBe(false);
  });

  it('returns logits after BOS that match the numpy reference within 1e-4', async () => {
    const { logits, vocabSize } = await client.request('forward', { ids: [1] });
    expect(vocabSize).toBe(512);
    const ref = golden.logits_pos0_after_bos.all;
    const maxDiff = Math.max(...logits.map((v, i) => Math.abs(v - ref[i]!)));
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
  });

  it('drops the model when the backend changes (weights live on the old backend)', async () => {
    const status = await client.request('init-backend', { preference: 'cpu' });
    expect(status.name).toBe('cpu');
    const err = await client.request('forward', { ids: [1] }).catch((e) => e);
    expect(err.code).toBe('NO_MODEL');
  });

  it('answers a malformed message with BAD_REQUEST', async () => {
    const reply = new Promise<unknown>((resolve) => worker.port.once('message', resolve));
    worker.port.postMessage({ kind: 'train-everything', id: 999, payload: {} });
    expect(await reply).toMatchObject({ kind: 'error', id: 999, error: { code: 'BAD_REQUEST' } });
  });
});
