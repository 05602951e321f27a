// The page <-> worker protocol end to end in Node: the real client and the real worker handler,
// talking over a MessageChannel (structured clone, as between a page and a Web Worker), running
// the real engine on the bundled tabtune-tiny model served over HTTP; its answers must equal the engine
// run directly in this process. Where ../shared has the stories260K reference model, the worker's
// generation and logits are also checked against its golden outputs (an independent numpy forward pass).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { generate } from '../model/generate';
import { loadModel } from '../io/load-model';
import { RequestError, type WorkerClient } from '../protocol/client';
import { TINY_DIR } from '../testing/models';
import { describeReference, ensureReferenceHF, loadGolden, type Golden } from '../testing/reference';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

describe('worker protocol (client + handler over a MessageChannel)', () => {
  let http: { base: string; close(): void };
  let worker: InProcessWorker;
  let client: WorkerClient;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
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
    expect(summary).toMatchObject({ name: 'model', arch: 'llama', numParams: 447_040, vocabSize: 4096, contextLength: 256, layers: 4, hiddenSize: 64 });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(1);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress); // never goes backwards
  });

  it('keeps the loaded model when a later load fails (the working model goes only once the new one is ready)', async () => {
    const ask = { prompt: 'Once upon a time', maxNewTokens: 6, temperature: 0 };
    const before = await client.request('generate', ask);
    const err = await client.request('load-model', { location: { kind: 'url', url: `${http.base}/nothing/` } }).catch((e) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err.code).toBe('MISSING_FILE');
    const after = await client.request('generate', ask);
    expect(after.tokens).toEqual(before.tokens);
  });

  it('streams a greedy generation whose tokens add up to the engine\'s own greedy continuation', async () => {
    // The same model run directly in this process (same TF.js backend as the in-process worker).
    const prompt = 'Once upon a time';
    const m = await loadModel(directorySource(TINY_DIR));
    const [want] = await generate(m, [prompt], { maxNewTokens: 40, temperature: 0 });
    m.dispose();
    expect(want!.tokens).toHaveLength(40); // greedy tabtune-tiny runs on past 40 tokens here (no EOS)
    let streamed = '';
    const tokenIds: number[] = [];
    const out = await client.request(
      'generate',
      { prompt, maxNewTokens: 40, temperature: 0 },
      { token: (t) => ((streamed += t.text), t.token >= 0 && tokenIds.push(t.token)) },
    );
    expect(out.text).toBe(want!.text);
    expect(out.tokens).toEqual(want!.tokens);
    expect(out.promptTokens).toEqual(want!.promptTokens);
    expect(out.finishReason).toBe('length');
    expect(streamed).toBe(want!.text);
    expect(tokenIds).toEqual(want!.tokens);
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

  it('returns the logits after BOS that the engine computes directly', async () => {
    const { logits, vocabSize } = await client.request('forward', { ids: [1] });
    expect(vocabSize).toBe(4096);
    const m = await loadModel(directorySource(TINY_DIR));
    const t = m.lm.forward([[1]]);
    const want = t.dataSync();
    t.dispose();
    m.dispose();
    expect(logits).toHaveLength(want.length);
    expect(Math.max(...logits.map((v, i) => Math.abs(v - want[i]!)))).toBeLessThanOrEqual(1e-6);
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

describeReference('the worker reproduces the reference model\'s golden outputs (stories260K)', () => {
  let golden: Golden;
  let http: { base: string; close(): void };
  let worker: InProcessWorker;

  beforeAll(async () => {
    golden = loadGolden();
    http = await serveFolder(await ensureReferenceHF());
    worker = connectInProcess();
    await worker.client.request('init-backend', { preference: 'wasm' });
    const summary = await worker.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    expect(summary).toMatchObject({ arch: 'llama', numParams: 260032, vocabSize: 512, contextLength: 512, layers: 5, hiddenSize: 64 });
  });
  afterAll(() => {
    worker?.close();
    http?.close();
  });

  it('streams a greedy generation whose tokens add up to the golden continuation', async () => {
    const p = golden.prompt_greedy;
    const want = { tokens: p.tokens.slice(p.prompt_tokens.length), text: p.text.slice(p.prompt.length) };
    let streamed = '';
    const tokenIds: number[] = [];
    const out = await worker.client.request(
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
  });

  it('returns logits after BOS that match the numpy reference within 1e-4', async () => {
    const { logits, vocabSize } = await worker.client.request('forward', { ids: [1] });
    expect(vocabSize).toBe(512);
    const ref = golden.logits_pos0_after_bos.all;
    const maxDiff = Math.max(...logits.map((v, i) => Math.abs(v - ref[i]!)));
    expect(maxDiff).toBeLessThanOrEqual(1e-4);
  });
});
