// Compare and Export with the real worker handler in-process (MessageChannel, fake IndexedDB) and the
// bundled tabtune-tiny model: a few training steps, then what the panels do with the checkpoint.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../io/safetensors';
import { unzipFiles } from '../io/zip';
import type { ModelSummary } from '../protocol/messages';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';
import { testPage } from '../testing/page';

/** 40 records of the example dataset (36 train, 4 validation). */
const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';

describe('compare and export with the real worker (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let model: ModelSummary;
  let runId: string;

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    await w.client.request('init-backend', { preference: 'wasm' });
    model = await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { datasetId } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    const out = await w.client.request('train', { datasetId, name: 'numbers', config: { steps: 4, batchSize: 4, saveEvery: 2, evalEvery: 2, seed: 3, warmupSteps: 1, lr: 1e-2 } });
    runId = out.runId;
  });

  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('prompt: base and tuned of the selected checkpoint, same seed; strength 0 equals the base model', async () => {
    const { store, actions } = testPage(w.client, { selection: { runId, step: 2 }, model });
    actions.setCompareSettings({ prompt: 'Write as digits: forty two', maxNewTokens: 12, temperature: 0.8, topK: 40, seed: 11 });
    await actions.comparePrompt();
    let s = store.getState().compare;
    expect(s.prompt.error).toBeNull();
    expect(s.prompt.adapter).toMatchObject({ runId, step: 2 });
    expect(s.prompt.base.outcome?.adapter).toBeNull();
    expect(s.prompt.tuned.outcome?.adapter).toMatchObject({ runId, step: 2, strength: 1 });
    expect(s.stream.base).toBe(s.prompt.base.outcome!.text);
    expect(s.stream.tuned).toBe(s.prompt.tuned.outcome!.text);

    // Strength 0: the tuned side is the base model, token for token (same seed, same settings).
    actions.setCompareSettings({ strength: 0 });
    await actions.comparePrompt();
    s = store.getState().compare;
    expect(s.prompt.tuned.outcome?.adapter?.strength).toBe(0);
    expect(s.prompt.tuned.outcome!.tokens.slice(0, 3)).toEqual(s.prompt.base.outcome!.tokens.slice(0, 3));
    actions.dispose();
  });

  it('held-out: progress events, then every validation example with totals', async () => {
    const { store, actions } = testPage(w.client, { selection: { runId, step: null }, model });
    const fractions: number[] = [];
    const unsub = store.subscribe((st, prev) => {
      const p = st.compare.heldout.progress;
      if (p && p !== prev.compare.heldout.progress && p.stage !== 'preparing') fractions.push(p.fraction);
    });
    await actions.compareHeldout();
    unsub();
    const h = store.getState().compare.heldout;
    expect(h.error).toBeNull();
    expect(h.result?.step).toBe(4);
    expect(h.result?.rows).toHaveLength(4);
    expect(h.result?.totals.n).toBe(4);
    expect(fractions.at(-1)).toBe(1);
    for (const r of h.result!.rows) expect(typeof r.tuned).toBe('string');
    actions.dispose();
  });

  it('export: the PEFT zip of the selected step parses; metrics CSV and recipe of the run', async () => {
    const { store, actions } = testPage(w.client, { selection: { runId, step: 2 }, model });
    const peft = await actions.exportFile('peft');
    expect(peft?.step).toBe(2);
    const files = unzipFiles(peft!.bytes);
    expect(JSON.parse(new TextDecoder().decode(files.get('adapter_config.json')!))).toMatchObject({ peft_type: 'LORA' });
    expect(new SafetensorsFile(files.get('adapter_model.safetensors')!).names().length).toBeGreaterThan(0);
    const csv = await actions.exportFile('metrics-csv');
    expect(new TextDecoder().decode(csv!.bytes).split('\n')[0]).toMatch(/step/);
    const recipe = await actions.exportFile('recipe');
    expect(recipe?.files.length).toBeGreaterThan(0);
    expect(store.getState().export.recipe.phase).toBe('ready');
    actions.dispose();
  });
});
