// import-adapter in the worker (real handler in-process, fake IndexedDB, the bundled tabtune-tiny over HTTP):
// a trained run's PEFT zip comes back as a run of its own that generates exactly as the original adapter,
// a new run continues it with startFrom {runId, step: 0}, and an adapter for another model shape is refused.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors';
import { unzipFiles, zipFiles } from '../io/zip';
import type { RunJob } from '../protocol/messages';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 120).join('\n') + '\n';
const GREEDY = { prompt: 'Write the number 47 in words.', maxNewTokens: 10, temperature: 0 } as const;
const TRAIN = { batchSize: 8, saveEvery: 3, evalEvery: 3, seed: 3, warmupSteps: 1, lr: 2e-2 };

describe('import-adapter (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let datasetId: string;
  let original: { runId: string; job: RunJob };
  let zip: Uint8Array;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    ({ datasetId } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } }));
    const out = await w.client.request('train', { datasetId, name: 'numbers', config: { ...TRAIN, steps: 6 } });
    const { runs } = await w.client.request('list-runs', {});
    original = { runId: out.runId, job: runs.find((r) => r.id === out.runId)!.job! };
    zip = (await w.client.request('export', { kind: 'peft', runId: out.runId })).bytes;
  }, 240_000);

  afterAll(() => {
    w?.close();
    http?.close();
  });

  let importedId: string;

  it('stores the zip as a finished run with one checkpoint at step 0, generating exactly as the original adapter', async () => {
    await w.client.request('load-adapter', { runId: original.runId });
    const before = await w.client.request('generate', { ...GREEDY, useAdapter: true });
    const base = await w.client.request('generate', { ...GREEDY, useAdapter: false });
    // The trained adapter changes the greedy reply (else equality below would prove nothing).
    expect(before.tokens).not.toEqual(base.tokens);

    const r = await w.client.request('import-adapter', { zip, name: 'numbers-peft.zip' });
    importedId = r.run.id;
    expect(r.run.name).toBe(`imported: numbers-peft (LoRA r${original.job.train.lora.r})`);
    expect(r.run.status).toBe('finished');
    expect(r.run.parentRunId ?? null).toBeNull();
    const job = r.run.job!;
    expect(job.train.mode).toBe('lora');
    expect(job.train.lora).toEqual(original.job.train.lora);
    expect(job.data).toMatchObject({ name: 'imported adapter', datasetId: '', trainExamples: 0, valExamples: 0 });
    // tabtune.json in the zip: the original run's stop token travels with the adapter.
    expect(job.data.options.stop).toEqual(original.job.data.options.stop);
    expect(r.run.checkpointCount).toBe(1);
    expect(r.run.latestCheckpoint?.step).toBe(0);
    expect(r.adapter).toMatchObject({ runId: importedId, step: 0, training: false });

    const after = await w.client.request('generate', { ...GREEDY, useAdapter: true });
    expect(after.adapter).toMatchObject({ runId: importedId, step: 0 });
    expect(after.tokens).toEqual(before.tokens);
    expect(after.text).toBe(before.text);

    // It is listed, and load-adapter attaches it again after another adapter.
    await w.client.request('load-adapter', { runId: original.runId });
    expect((await w.client.request('load-adapter', { runId: importedId, step: 0 })).adapter).toMatchObject({ runId: importedId, step: 0 });
    expect((await w.client.request('generate', { ...GREEDY, useAdapter: true })).tokens).toEqual(before.tokens);
    const { runs } = await w.client.request('list-runs', {});
    expect(runs.map((x) => x.id)).toContain(importedId);

    // Exported again, its weights are the original export's, value for value.
    const again = unzipFiles((await w.client.request('export', { kind: 'peft', runId: importedId, step: 0 })).bytes);
    const first = unzipFiles(zip);
    const weights = (files: Map<string, Uint8Array>) => new SafetensorsFile(files.get([...files.keys()].find((k) => k.endsWith('adapter_model.safetensors'))!)!);
    const [a, b] = [weights(first), weights(again)];
    expect(b.names().sort()).toEqual(a.names().sort());
    for (const n of a.names()) expect(b.getFloat32(n)).toEqual(a.getFloat32(n));
  }, 120_000);

  it('a new run continues the imported adapter with startFrom (SFT), starting where the adapter is', async () => {
    const firstLoss = async (extra: Record<string, unknown>) => {
      const losses: number[] = [];
      const h = w.client.send('train', { datasetId, config: { ...TRAIN, steps: 3 }, ...extra }, { metrics: (m) => losses.push(m.loss) });
      const out = await h.result;
      return { out, first: losses[0]! };
    };
    const cont = await firstLoss({ name: 'continued', startFrom: { runId: importedId, step: 0 } });
    const fresh = await firstLoss({ name: 'fresh' });
    expect(cont.out.reason).toBe('done');
    expect(cont.out.step).toBe(3);
    // The same first batch: the imported (trained) adapter starts with a lower loss than a fresh LoRA (the base model).
    expect(cont.first).toBeLessThan(fresh.first);
    const { runs } = await w.client.request('list-runs', {});
    const run = runs.find((x) => x.id === cont.out.runId)!;
    expect(run.job!.startFrom).toEqual({ runId: importedId, step: 0 });
    expect(run.job!.train.lora).toEqual(original.job.train.lora);
    expect(run.job!.data.options.stop).toEqual(original.job.data.options.stop);
  }, 180_000);

  it('refuses an adapter made for another model shape, saying what is wrong and what to do', async () => {
    const files = unzipFiles(zip);
    const name = [...files.keys()].find((k) => k.endsWith('adapter_model.safetensors'))!;
    const st = new SafetensorsFile(files.get(name)!);
    // Half the hidden size: lora_A [r, in/2], lora_B [out/2, r].
    const tensors = st.names().map((n) => {
      const [a, b] = st.entry(n).shape as [number, number];
      const shape: [number, number] = n.includes('lora_A') ? [a, b / 2] : [a / 2, b];
      return { name: n, dtype: 'F32' as const, shape, data: new Float32Array(shape[0] * shape[1]) };
    });
    const bad = new Map(files);
    bad.set(name, writeSafetensors(tensors, { format: 'pt' }));
    const before = (await w.client.request('list-runs', {})).runs.length;
    const err = await w.client.request('import-adapter', { zip: zipFiles(bad), name: 'other-model.zip' }).then(
      () => null,
      (e: { code: string; message: string; hint?: string }) => e,
    );
    expect(err).toMatchObject({ code: 'BAD_REQUEST' });
    expect(err!.message).toMatch(/does not fit the loaded model/);
    expect(err!.message).toMatch(/shape|\[/);
    expect(err!.hint).toMatch(/base model the adapter was trained on/);
    expect((await w.client.request('list-runs', {})).runs.length).toBe(before);
    // Not an adapter at all.
    await expect(w.client.request('import-adapter', { zip: new Uint8Array([1, 2, 3]), name: 'x.zip' })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/zip/) });
    // The model still answers, with the base model (the failed import left nothing attached).
    expect((await w.client.request('generate', { ...GREEDY, maxNewTokens: 2, useAdapter: false })).tokens.length).toBe(2);
  }, 60_000);
});
