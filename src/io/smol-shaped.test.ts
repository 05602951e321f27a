import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../model/backend';
import { directorySource } from '../node/fs-source';
import { writeFolder } from '../node/hf-write';
import { loadModel } from './load-model';
import { byteLevelTokenizer, smolShapedConfig, smolShapedFiles, SMOL_135M_CONFIG, SMOL_135M_SHAPE, type SmolShape } from './smol-shaped';
import { TextTokenizer } from '../tokenizer/tokenizer';

// The full-size folder is 540 MB: the test writes SmolLM2-135M's config scaled down through the same code.
const SMALL: SmolShape = { layers: 2, hidden: 48, intermediate: 96, heads: 3, kvHeads: 1, vocab: 600 };

describe('SmolLM2-135M-shaped folder', () => {
  let dir = '';
  beforeAll(async () => {
    await setupBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'smol-shaped-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("has SmolLM2-135M's exact config at full size", () => {
    const c = smolShapedConfig();
    expect(c).toMatchObject({ architectures: ['LlamaForCausalLM'], num_hidden_layers: 30, hidden_size: 576, intermediate_size: 1536, num_attention_heads: 9, num_key_value_heads: 3, head_dim: 64, vocab_size: 49_152, max_position_embeddings: 8192, rope_theta: 100_000, rms_norm_eps: 1e-5, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2 });
    expect(c).toEqual({ ...SMOL_135M_CONFIG, architectures: ['LlamaForCausalLM'] });
  });

  it('generates a byte-level tokenizer of exactly the vocabulary size that round-trips ASCII text', () => {
    const json = byteLevelTokenizer(SMOL_135M_SHAPE.vocab);
    const tk = TextTokenizer.fromHF(json, { bos_token: '<|im_start|>', eos_token: '<|im_end|>', add_bos_token: false });
    expect(tk.vocabSize).toBe(49_152);
    const text = 'Hello, world! The answer is 42.\nA second line: {"x": [1, 2]} ~ `code` <tag> 100%';
    const ids = tk.encode(text);
    expect(ids.length).toBeLessThan(text.length); // merges apply
    expect(Math.max(...ids)).toBeLessThan(49_152);
    expect(tk.decode(ids)).toBe(text);
    expect(tk.eosId).toBe(2);
    expect(tk.bosId).toBe(1);
  });

  it('is deterministic: the same seed gives the same bytes, another seed other weights', () => {
    const a = smolShapedFiles({ shape: SMALL, seed: 3 });
    const b = smolShapedFiles({ shape: SMALL, seed: 3 });
    const c = smolShapedFiles({ shape: SMALL, seed: 4 });
    expect(Buffer.compare(a.get('model.safetensors')!, b.get('model.safetensors')!)).toBe(0);
    expect(Buffer.compare(a.get('model.safetensors')!, c.get('model.safetensors')!)).not.toBe(0);
  });

  it('writes a folder the loader reads (scaled down), with generation and a round-tripping tokenizer', async () => {
    await writeFolder(dir, smolShapedFiles({ shape: SMALL, seed: 1 }));
    const before = tf.memory().numTensors;
    const m = await loadModel(directorySource(dir));
    try {
      expect(m.info).toMatchObject({ arch: 'llama', layers: 2, hiddenSize: 48, vocabSize: 600, contextLength: 8192 });
      // Embedding + per layer (q, k, v, o, gate, up, down, two norms) + final norm; the head is tied.
      const hd = 48 / 3;
      expect(m.info.numParams).toBe(600 * 48 + 2 * (48 * 48 * 2 + 2 * 48 * hd + 3 * 48 * 96 + 2 * 48) + 48);
      const ids = m.tokenizer.encode('The cat sat.');
      expect(m.tokenizer.decode(ids)).toBe('The cat sat.');
      expect(m.eosIds).toContain(2);
      const logits = m.lm.forward([ids]);
      expect(logits.shape).toEqual([1, ids.length, 600]);
      const v = await logits.data();
      logits.dispose();
      expect(v.every(Number.isFinite)).toBe(true);
    } finally {
      m.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
