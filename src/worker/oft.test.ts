// An OFT run through the worker protocol (Node, fake IndexedDB, tabtune-tiny over HTTP): it trains,
// checkpoints `<module>.oft_R`, compares base and tuned, generates at a strength, exports PEFT's OFT
// adapter folder and the merged model (W <- R W, which gives the tuned logits), and after a reload the
// stored checkpoint becomes the same OFT adapter again. What works on LoRA runs only says so.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../io/safetensors';
import { unzipFiles } from '../io/zip';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { modelWorkers } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';
const CONFIG = { mode: 'oft' as const, oft: { oft_block_size: 16 }, steps: 4, batchSize: 4, saveEvery: 2, evalEvery: 2, seed: 3, warmupSteps: 1, lr: 1e-2, genEvalExamples: 0, probeSamples: 0 };

describe('an OFT run through the worker', () => {
  const workers = modelWorkers(TINY_DIR);
  const boot = workers.boot;
  beforeAll(workers.start);
  afterAll(workers.close);

  it('trains, compares, generates, exports PEFT OFT and the merged model, and reloads the adapter from storage', { timeout: 300_000 }, async () => {
    const backend = freshIdb();
    const client = await boot(backend);
    const { datasetId } = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    const losses: number[] = [];
    const out = await client.request('train', { datasetId, name: 'oft', config: CONFIG }, { metrics: (m) => void losses.push(m.loss) });
    expect(out).toMatchObject({ reason: 'done', step: 4 });
    expect(losses).toHaveLength(4);
    expect(losses[3]!).toBeLessThan(losses[0]!);

    const cmp = await client.request('compare-heldout', { maxNewTokens: 4 });
    expect(cmp.rows).toHaveLength(4);
    const prompt = 'Write as digits: forty two\nAnswer:';
    const base = await client.request('generate', { prompt, maxNewTokens: 6, temperature: 0, useAdapter: false });
    const zero = await client.request('generate', { prompt, maxNewTokens: 6, temperature: 0, adapterStrength: 0 });
    expect(base.tokens.slice(0, zero.tokens.length)).toEqual(zero.tokens); // strength 0 is the base model

    const peftZip = await client.request('export', { kind: 'peft', runId: out.runId });
    expect(peftZip.filename).toMatch(/-step4-oft\.zip$/);
    const peft = unzipFiles(peftZip.bytes);
    expect(JSON.parse(new TextDecoder().decode(peft.get('adapter_config.json')!))).toMatchObject({ peft_type: 'OFT', r: 0, oft_block_size: 16, use_cayley_neumann: false });
    const st = new SafetensorsFile(peft.get('adapter_model.safetensors')!);
    expect(st.entry('base_model.model.model.layers.0.self_attn.q_proj.oft_R.weight').shape).toEqual([4, 120]);
    const trained = new Map(st.names().map((n) => [n, Array.from(st.getFloat32(n))]));
    expect([...trained.values()].some((v) => v.some((x) => x !== 0))).toBe(true);

    const merged = unzipFiles((await client.request('export', { kind: 'merged' })).bytes);
    expect([...merged.keys()]).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));

    await expect(client.request('export', { kind: 'recipe', runId: out.runId })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/OFT adapter.*LoRA/) });

    // A reload: the stored step-4 checkpoint becomes the same OFT adapter again.
    const again = await boot(backend);
    const loaded = await again.request('load-adapter', { runId: out.runId });
    expect(loaded.adapter).toMatchObject({ runId: out.runId, step: 4 });
    const st2 = new SafetensorsFile(unzipFiles((await again.request('export', { kind: 'peft' })).bytes).get('adapter_model.safetensors')!);
    expect(new Map(st2.names().map((n) => [n, Array.from(st2.getFloat32(n))]))).toEqual(trained);
    const tuned2 = await again.request('generate', { prompt, maxNewTokens: 6, temperature: 0 });
    const tuned1 = await client.request('generate', { prompt, maxNewTokens: 6, temperature: 0 });
    expect(tuned2.tokens).toEqual(tuned1.tokens);
  });
});
