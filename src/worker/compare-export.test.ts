// The worker's side of Compare and Export (real handler in-process, fake IndexedDB, the bundled tabtune-tiny):
// per-example losses in compare-heldout, cancelling it, stopTokenIds on generate, merged-export progress and stop.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../io/safetensors';
import { unzipFiles } from '../io/zip';
import type { Events } from '../protocol/messages';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

/** 200 records of the example dataset: 180 train, 20 held out (three batches of held-out generation per side). */
const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 200).join('\n') + '\n';

describe('compare-heldout, generate and export in the worker (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let runId: string;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { datasetId, report } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    expect(report.split.val).toBe(20);
    const out = await w.client.request('train', { datasetId, name: 'numbers', config: { steps: 6, batchSize: 8, saveEvery: 3, evalEvery: 3, seed: 3, warmupSteps: 1, lr: 2e-2 } });
    runId = out.runId;
  }, 240_000);

  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('held-out rows carry each side’s per-example loss, and the totals their mean', async () => {
    const r = await w.client.request('compare-heldout', { runId, maxExamples: 6, maxNewTokens: 4 });
    expect(r.rows).toHaveLength(6);
    for (const row of r.rows) {
      expect(row.baseLoss).toBeGreaterThan(0);
      expect(row.tunedLoss).toBeGreaterThan(0);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(r.totals.base.loss).toBeCloseTo(mean(r.rows.map((x) => x.baseLoss!)), 6);
    expect(r.totals.tuned.loss).toBeCloseTo(mean(r.rows.map((x) => x.tunedLoss!)), 6);
    // Six steps at a high learning rate on this data lower the loss of the held-out answers.
    expect(r.totals.tuned.loss!).toBeLessThan(r.totals.base.loss!);
  }, 120_000);

  it('cancel stops compare-heldout (CANCELLED), and the worker takes the next request', async () => {
    const progress: Events['progress'][] = [];
    let cancelled: Promise<boolean> | null = null;
    const handle = w.client.send(
      'compare-heldout',
      { runId, maxNewTokens: 24 },
      {
        progress: (p) => {
          progress.push(p);
          cancelled ??= w.client.cancel(handle.id);
        },
      },
    );
    await expect(handle.result).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await cancelled).toBe(true);
    // 20 examples in batches of 8: 3 progress events per side when it runs to the end, 6 in all.
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.length).toBeLessThan(6);
    expect(progress.at(-1)!.fraction).toBeLessThan(1);
    // Nothing is left running: the model answers at once.
    const gen = await w.client.request('generate', { prompt: 'One', maxNewTokens: 2, temperature: 0, useAdapter: false });
    expect(gen.tokens.length).toBeGreaterThan(0);
    // Cancelling what already ended says so.
    expect(await w.client.cancel(handle.id)).toBe(false);
  }, 120_000);

  it('generate stops at stopTokenIds (the base side of a comparison ends at the run’s stop token)', async () => {
    const params = { prompt: 'Once upon a time', maxNewTokens: 12, temperature: 0, useAdapter: false } as const;
    const free = await w.client.request('generate', params);
    expect(free.tokens.length).toBe(12);
    const stopAt = free.tokens[3]!;
    const first = free.tokens.indexOf(stopAt);
    const stopped = await w.client.request('generate', { ...params, stopTokenIds: [stopAt] });
    expect(stopped.finishReason).not.toBe('length');
    expect(stopped.tokens.length).toBeLessThanOrEqual(first + 1);
    expect(stopped.tokens.slice(0, first)).toEqual(free.tokens.slice(0, first));
    await expect(w.client.request('generate', { ...params, stopTokenIds: [-1] })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  }, 60_000);

  it('the merged export reports progress tensor by tensor, ending at 1, and its weights parse', async () => {
    const events: Events['progress'][] = [];
    const out = await w.client.request('export', { kind: 'merged', runId }, { progress: (p) => events.push(p) });
    expect(events.length).toBeGreaterThan(3);
    expect(events.map((e) => e.file)).toContain('merged: read');
    expect(events.map((e) => e.file)).toContain('merged: merge');
    expect(events.at(-1)).toMatchObject({ file: 'merged: write', fraction: 1 });
    for (let i = 1; i < events.length; i++) expect(events[i]!.fraction).toBeGreaterThanOrEqual(events[i - 1]!.fraction);
    const total = events[0]!.total!;
    for (const e of events) expect(e.total).toBe(total);
    const files = unzipFiles(out.bytes);
    const st = new SafetensorsFile(files.get('model.safetensors')!);
    // read once + write once per weight, plus one unit per adapted weight.
    expect(total).toBeGreaterThan(2 * st.names().length);
    // The run's stop travels with the merged model: among generation_config.json's EOS ids (here the
    // model's own EOS, which tabtune-tiny learned, so the file keeps a plain number) and in tabtune.json.
    const { runs } = await w.client.request('list-runs', {});
    const stop = runs.find((r) => r.id === runId)!.job!.data.options.stop;
    const json = (name: string) => JSON.parse(new TextDecoder().decode(files.get(name)!)) as Record<string, unknown>;
    expect(json('generation_config.json').eos_token_id).toBe(stop.stopTokenId);
    expect(json('tabtune.json')).toMatchObject({ stop_token_id: stop.stopTokenId, stop_strings: stop.stopStrings, run: 'numbers', step: 6 });
  }, 120_000);
});
