// The model room builds a language model from already-read files (no source, no I/O): the tokenizer
// checks and the stop ids are decided here; src/io/load-model.test.ts covers reading from a source.
import { beforeAll, describe, expect, it } from 'vitest';
import { tinyConfig, tinyWeights } from '../testing/tiny-model';
import { setupBackend } from './backend';
import { languageModel } from './load';
import { ModelLoadError, type HFModelFiles } from './types';

/** A BPE tokenizer.json with `size` single-character tokens; id 2 is </s>. */
function tokenizerJson(size: number): Record<string, unknown> {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let i = 3; i < size; i++) vocab[String.fromCharCode(94 + i)] = i;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
}

const tokenizerConfig = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' };

function files(over: Partial<HFModelFiles> = {}): HFModelFiles {
  const spec = { arch: 'llama' as const, vocab: 40 };
  return { config: tinyConfig(spec), weights: tinyWeights(spec), tokenizerJson: tokenizerJson(40), tokenizerConfig, generationConfig: null, weightBytes: 0, ...over };
}

describe('languageModel (from already-read files)', () => {
  beforeAll(() => setupBackend('cpu'));

  it('lets go of the checkpoint arrays once built (the page does not hold every weight twice)', () => {
    for (const arch of ['llama', 'gpt2'] as const) {
      const m = languageModel(files({ config: tinyConfig({ arch, vocab: 40 }), weights: tinyWeights({ arch, vocab: 40 }) }), { name: 'tiny' });
      try {
        // The model keeps no reference to them (tfjs-wasm copies them into its heap; the CPU backend's tensors
        // keep the arrays themselves, so they stay alive there through the tensors, not twice).
        const reader = (m.lm as unknown as { reader: { raw(name: string, shape: number[]): unknown } }).reader;
        expect(() => reader.raw('model.norm.weight', [1])).toThrow(/released/);
        const logits = m.lm.forward([[1, 2, 3]]);
        expect(logits.shape).toEqual([1, 3, 40]);
        logits.dispose();
      } finally {
        m.dispose();
      }
    }
  });

  it('builds the architecture and the tokenizer, and names the model', () => {
    const m = languageModel(files(), { name: 'tiny' });
    try {
      expect(m.name).toBe('tiny');
      expect(m.info.arch).toBe('llama');
      expect(m.info.vocabSize).toBe(40);
      expect(m.tokenizer.vocabSize).toBe(40);
    } finally {
      m.dispose();
    }
  });

  it('refuses files without tokenizer.json, naming where they came from', () => {
    const err = (() => {
      try {
        languageModel(files({ tokenizerJson: null }), { name: 'tiny', label: 'models/tiny' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe('MISSING_FILE');
    expect((err as ModelLoadError).message).toBe('models/tiny has no tokenizer.json');
  });

  it('refuses a tokenizer with more tokens than the model has embeddings', () => {
    expect(() => languageModel(files({ tokenizerJson: tokenizerJson(41) }), { name: 'tiny' })).toThrow(/the tokenizer has 41 tokens but the model only 40/);
  });

  it('stops on generation_config eos_token_id, else config.json\'s, else the tokenizer\'s EOS', () => {
    const ids = (over: Partial<HFModelFiles>) => {
      const m = languageModel(files(over), { name: 'tiny' });
      m.dispose();
      return m.eosIds;
    };
    expect(ids({ generationConfig: { eos_token_id: [5, 6] }, config: { ...tinyConfig({ arch: 'llama', vocab: 40 }), eos_token_id: 7 } })).toEqual([5, 6]);
    expect(ids({ config: { ...tinyConfig({ arch: 'llama', vocab: 40 }), eos_token_id: 7 } })).toEqual([7]);
    expect(ids({})).toEqual([2]);
  });
});
