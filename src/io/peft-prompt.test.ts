// Prompt-tuning adapters in PEFT's format (PromptTuningConfig's fields and the prompt_embeddings key, read from
// PEFT's source): what the export writes, that importing it gives identical logits (also from a zip and a
// folder), PEFT's variants on import (adapter names, the old RANDOM_DISCRETE), and what is refused.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import type { CausalLM } from '../model/causal-lm';
import { tinyModel, type TinySpec } from '../testing/tiny-model';
import { PromptTuningAdapter } from '../prompt/adapter';
import type { PromptTuningConfig } from '../train/config';
import { ExportError, exportMergedModel } from './export';
import { exportPeftAdapter, importAnyPeftAdapter, importPeftAdapter, importPromptAdapter, loadPeftAdapter, parsePromptConfig, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, PeftError, type PeftFiles } from './peft';
import { SafetensorsFile, writeSafetensors } from './safetensors';
import { zipFiles, zipSource } from './zip';

const IDS = [
  [1, 5, 9, 3, 7, 2, 11, 4],
  [1, 8, 6, 6, 12, 30, 2, 9],
];
const LLAMA: TinySpec = { arch: 'llama', hidden: 16, layers: 2, heads: 4, tied: true, seed: 3 };
const GPT2: TinySpec = { arch: 'gpt2', hidden: 16, layers: 3, heads: 2, seed: 5 };
const CFG: PromptTuningConfig = { num_virtual_tokens: 5, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: 'Answer:' };

/** PEFT's PromptTuningConfig fields (PeftConfig's and PromptLearningConfig's included, peft_version left out as for LoRA). */
const FIELDS =
  'auto_mapping base_model_name_or_path inference_mode modules_to_save num_attention_heads num_layers num_transformer_submodules num_virtual_tokens peft_type prompt_tuning_init prompt_tuning_init_text revision task_type token_dim tokenizer_kwargs tokenizer_name_or_path';

const logits = (lm: CausalLM): Float32Array => {
  const t = lm.forward(IDS);
  const d = t.dataSync() as Float32Array;
  t.dispose();
  return d;
};

function asFiles(files: Map<string, Uint8Array>): PeftFiles {
  return { config: JSON.parse(new TextDecoder().decode(files.get(PEFT_CONFIG_FILE))) as Record<string, unknown>, safetensors: files.get(PEFT_WEIGHTS_FILE)! };
}

function trained(lm: CausalLM, config: PromptTuningConfig = CFG): PromptTuningAdapter {
  const ad = new PromptTuningAdapter(lm, config, { initIds: [1, 20, 21] });
  ad.setWeights(Float32Array.from(ad.getWeights(), (v, i) => v + Math.sin(i) * 0.3)); // trained: not the init any more
  return ad;
}

describe('prompt tuning in PEFT format', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  for (const spec of [LLAMA, GPT2]) {
    it(`${spec.arch}: exports PEFT's PROMPT_TUNING folder and imports it to identical logits`, () => {
      const lm = tinyModel(spec);
      const ad = trained(lm);
      ad.strength = 0; // the export is the trained adapter whatever its inference state
      const files = exportPeftAdapter(ad, { baseModel: 'org/tiny' });
      ad.strength = 1;
      const want = logits(lm);
      const cfgJson = asFiles(files).config;
      expect(Object.keys(cfgJson).join(' ')).toBe(FIELDS);
      expect(cfgJson).toMatchObject({
        peft_type: 'PROMPT_TUNING',
        task_type: 'CAUSAL_LM',
        num_virtual_tokens: 5,
        token_dim: 16,
        num_transformer_submodules: 1,
        num_attention_heads: spec.arch === 'gpt2' ? 2 : 4,
        num_layers: spec.arch === 'gpt2' ? 3 : 2,
        prompt_tuning_init: 'TEXT',
        prompt_tuning_init_text: 'Answer:',
        tokenizer_name_or_path: 'org/tiny',
        base_model_name_or_path: 'org/tiny',
        inference_mode: true,
      });
      const st = new SafetensorsFile(files.get(PEFT_WEIGHTS_FILE)!, PEFT_WEIGHTS_FILE);
      expect(st.names()).toEqual(['prompt_embeddings']);
      expect(st.entry('prompt_embeddings').shape).toEqual([5, 16]);
      expect(st.getFloat32('prompt_embeddings')).toEqual(ad.getWeights());
      ad.dispose();

      const lm2 = tinyModel(spec);
      const back = importAnyPeftAdapter(lm2, asFiles(files));
      expect(back).toBeInstanceOf(PromptTuningAdapter);
      expect((back as PromptTuningAdapter).config).toEqual(CFG);
      expect(logits(lm2)).toEqual(want);
      back.dispose();
      lm.dispose();
      lm2.dispose();
    });
  }

  it('other inits: no text, no tokenizer; F16 export', () => {
    const lm = tinyModel(LLAMA);
    const ad = trained(lm, { num_virtual_tokens: 3, prompt_tuning_init: 'SAMPLE_VOCAB', prompt_tuning_init_text: 'ignored' });
    const files = exportPeftAdapter(ad, { baseModel: 'org/tiny', dtype: 'F16' });
    expect(asFiles(files).config).toMatchObject({ prompt_tuning_init: 'SAMPLE_VOCAB', prompt_tuning_init_text: null, tokenizer_name_or_path: null });
    expect(new SafetensorsFile(files.get(PEFT_WEIGHTS_FILE)!, PEFT_WEIGHTS_FILE).entry('prompt_embeddings').dtype).toBe('F16');
    ad.dispose();
    lm.dispose();
  });

  it('reads zips and folders through loadPeftAdapter; the merged-model export refuses', async () => {
    const lm = tinyModel(LLAMA);
    const ad = trained(lm);
    const want = logits(lm);
    const files = exportPeftAdapter(ad, { baseModel: 'org/tiny' });
    expect(() => exportMergedModel({ lm, baseFiles: new Map() }, ad)).toThrow(ExportError);
    expect(() => exportMergedModel({ lm, baseFiles: new Map() }, ad)).toThrow(/no weights to merge: export the PEFT adapter/);
    ad.dispose();
    const back = await loadPeftAdapter(lm, zipSource(zipFiles(files)));
    expect(logits(lm)).toEqual(want);
    back.dispose();
    lm.dispose();
  });

  it("accepts PEFT's variants: an adapter name or prefix on the key, RANDOM_DISCRETE, no token_dim", () => {
    const lm = tinyModel(LLAMA);
    const data = Float32Array.from({ length: 2 * 16 }, (_, i) => Math.cos(i));
    const safetensors = writeSafetensors([{ name: 'base_model.model.prompt_embeddings.default', dtype: 'F32', shape: [2, 16], data }], { format: 'pt' });
    const ad = importPromptAdapter(lm, { config: { peft_type: 'PROMPT_TUNING', num_virtual_tokens: 2, prompt_tuning_init: 'RANDOM_DISCRETE' }, safetensors });
    expect(ad.config.prompt_tuning_init).toBe('SAMPLE_VOCAB');
    expect(ad.getWeights()).toEqual(data);
    ad.dispose();
    lm.dispose();
  });

  it('refuses what does not fit, by name', () => {
    const lm = tinyModel(LLAMA);
    const st = (name: string, shape: number[]) => writeSafetensors([{ name, dtype: 'F32', shape, data: new Float32Array(shape[0]! * shape[1]!) }], { format: 'pt' });
    const cfg = { peft_type: 'PROMPT_TUNING', task_type: 'CAUSAL_LM', num_virtual_tokens: 2, token_dim: 16 };
    expect(() => importPromptAdapter(lm, { config: cfg, safetensors: st('prompt_embeddings', [3, 16]) })).toThrow(/shape \[3, 16\].*need \[2, 16\]/);
    expect(() => importPromptAdapter(lm, { config: { ...cfg, token_dim: 32 }, safetensors: st('prompt_embeddings', [2, 32]) })).toThrow(/token_dim is 32 but this model's hidden size is 16/);
    expect(() => importPromptAdapter(lm, { config: { ...cfg, num_transformer_submodules: 2 }, safetensors: st('prompt_embeddings', [4, 16]) })).toThrow(/encoder-decoder/);
    expect(() => importPromptAdapter(lm, { config: cfg, safetensors: st('model.embed_tokens.weight', [2, 16]) })).toThrow(PeftError);
    expect(() => importPeftAdapter(lm, { config: cfg, safetensors: st('prompt_embeddings', [2, 16]) })).toThrow(/PROMPT_TUNING.*importPromptAdapter/);
    expect(() => parsePromptConfig({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 0 })).toThrow(/num_virtual_tokens/);
    expect(parsePromptConfig({ ...cfg, task_type: 'SEQ_2_SEQ_LM' }).warnings.join(' ')).toMatch(/SEQ_2_SEQ_LM/);
    // a model that already has virtual tokens
    const first = importPromptAdapter(lm, { config: cfg, safetensors: st('prompt_embeddings', [2, 16]) });
    const tensors = tf.memory().numTensors;
    expect(() => importPromptAdapter(lm, { config: cfg, safetensors: st('prompt_embeddings', [2, 16]) })).toThrow(PeftError);
    expect(tf.memory().numTensors).toBe(tensors); // nothing left behind by the refusal
    first.dispose();
    lm.dispose();
  });
});
