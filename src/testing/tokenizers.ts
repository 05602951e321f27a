// Test helpers (Node only; the data tests use them): a character-level tokenizer whose every character is
// one token, so masks and truncation can be checked token by token, and a model folder's tokenizer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TextTokenizer } from '../tokenizer/tokenizer';

/** Special ids of charTokenizer(). */
export const CHAR = { unk: 0, bos: 1, eos: 2, pad: 3 } as const;

/**
 * A character-level BPE tokenizer (no merges): <unk>=0, <s>=1, </s>=2, <pad>=3, then one token per
 * printable ASCII character and "\n". Encoding "ab" gives [id(a), id(b)]; BOS is added by default.
 * With `chatTemplate`, tokenizer_config carries a tiny template: "<s>" then "U:{user}\n", "S:{system}\n",
 * "A:{assistant}</s>", generation prompt "A:".
 */
export function charTokenizer(opts: { chatTemplate?: boolean; addBos?: boolean } = {}): TextTokenizer {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2, '<pad>': 3 };
  const chars = ['\n', ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i))];
  chars.forEach((c, i) => (vocab[c] = 4 + i));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>'), special(3, '<pad>')],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  const template =
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ 'U:' + m['content'] + '\\n' }}{% elif m['role'] == 'system' %}{{ 'S:' + m['content'] + '\\n' }}{% elif m['role'] == 'assistant' %}{{ 'A:' + m['content'] + eos_token }}{% else %}{{ raise_exception('bad role ' + m['role']) }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'A:' }}{% endif %}";
  const config = {
    bos_token: '<s>',
    eos_token: '</s>',
    pad_token: '<pad>',
    unk_token: '<unk>',
    add_bos_token: opts.addBos ?? true,
    ...(opts.chatTemplate ? { chat_template: template } : {}),
  };
  return TextTokenizer.fromHF(tokenizerJson, config);
}

/** The tokenizer of a Hugging Face model folder (a bundled model's, or the converted reference's). */
export function folderTokenizer(dir: string): TextTokenizer {
  return TextTokenizer.fromHF(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
}
