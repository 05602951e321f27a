// A prompt-tuning run through the worker protocol (Node, fake IndexedDB, tabtune-tiny over HTTP): it
// trains, checkpoints `prompt_embeddings`, compares base and tuned, generates (strength 0 = base), exports
// PEFT's PROMPT_TUNING folder, and after a reload the stored checkpoint becomes the same adapter again. The
// merged model, the LoRA recipes and the explore path say why they do not apply to a learned prompt.
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
const CONFIG = {
  mode: 'prompt' as const,
  prompt: { num_virtual_tokens: 6, prompt_tuning_init: 'TEXT' as const, prompt_tuning_init_text: 'Write the number in digits' },
  steps: 4,
  batchSize: 4,
  saveEvery: 2,
  evalEvery: 2,
  seed: 3,
  warmupSteps: 1,
  lr: 0.1,
  genEvalExamples: 0,
  probeSamples: 0,
};

describe('a prompt-tuning run through the worker', () => {
  const workers = modelWorkers(TINY_DIR);
  const boot = workers.boot;
  beforeAll(workers.start);
  afterAll(workers.close);

  it('trains, compares, generates, exports PEFT prompt tuning, refuses what does not apply, and reloads from storage', { timeout: 300_000 }, async () => {
    const backend = freshIdb();
    const client = await boot(backend);
    const { datasetId } = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    const losses: number[] = [];
    const out = await client.request('train', { datasetId, name: 'prompt', config: CONFIG }, { metrics: (m) => void losses.push(m.loss) });
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
    expect(peftZip.filename).toMatch(/-step4-prompt\.zip$/);
    const peft = unzipFiles(peftZip.bytes);
    expect(JSON.parse(new TextDecoder().decode(peft.get('adapter_config.json')!))).toMatchObject({
      peft_type: 'PROMPT_TUNING',
      task_type: 'CAUSAL_LM',
      num_virtual_tokens: 6,
      num_transformer_submodules: 1,
      prompt_tuning_init: 'TEXT',
      prompt_tuning_init_text: 'Write the number in digits',
    });
    const st = new SafetensorsFile(peft.get('adapter_model.safetensors')!);
    const hidden = (JSON.parse(readFileSync(join(TINY_DIR, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    expect(st.entry('prompt_embeddings').shape).toEqual([6, hidden]);
    const trained = Array.from(st.getFloat32('prompt_embeddings'));

    await expect(client.request('export', { kind: 'merged' })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/no weights to merge: export the PEFT adapter/) });
    await expect(client.request('export', { kind: 'recipe', runId: out.runId })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/prompt-tuning adapter.*LoRA/) });
    await expect(client.request('explore-path', { runId: out.runId })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/prompt-tuning adapter/) });

    // A reload: the stored step-4 checkpoint becomes the same adapter again.
    const again = await boot(backend);
    const loaded = await again.request('load-adapter', { runId: out.runId });
    expect(loaded.adapter).toMatchObject({ runId: out.runId, step: 4, params: 6 * hidden });
    const st2 = new SafetensorsFile(unzipFiles((await again.request('export', { kind: 'peft' })).bytes).get('adapter_model.safetensors')!);
    expect(Array.from(st2.getFloat32('prompt_embeddings'))).toEqual(trained);
    const tuned2 = await again.request('generate', { prompt, maxNewTokens: 6, temperature: 0 });
    const tuned1 = await client.request('generate', { prompt, maxNewTokens: 6, temperature: 0 });
    expect(tuned2.tokens).toEqual(tuned1.tokens);
  });
});
