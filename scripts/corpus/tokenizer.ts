// tabtune's tokenizer: SentencePiece BPE (Debian's `spm_train`) with byte fallback, trained on the
// corpus, converted to a Hugging Face tokenizer.json by the project's own converter (buildTokenizerJson
// of src/io/llama2c.ts, which derives the merges from the vocabulary and the scores).
//
// Ids: 0 <unk>, 1 <s>, 2 </s>, 3 <pad>, 4..259 the byte pieces <0x00>..<0xFF>, then merged pieces.
// Normalization is the identity (no NFKC, no whitespace collapsing) so any text round-trips (except the
// character U+2581 "▁" itself, which SentencePiece uses for the space and decodes as one, as Llama's does).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTokenizerJson, LLAMA2C_CHAT_TEMPLATE } from '../../src/io/llama2c';

export const SPECIAL = { unk: '<unk>', bos: '<s>', eos: '</s>', pad: '<pad>' } as const;

export function spmTrainArgs(input: string, prefix: string, vocabSize: number, threads = 1): string[] {
  return [
    `--input=${input}`,
    `--model_prefix=${prefix}`,
    '--model_type=bpe',
    `--vocab_size=${vocabSize}`,
    '--byte_fallback=true',
    '--character_coverage=0.9995',
    '--normalization_rule_name=identity',
    '--remove_extra_whitespaces=false',
    '--add_dummy_prefix=true',
    '--split_digits=true',
    '--max_sentence_length=8192',
    '--unk_id=0',
    '--bos_id=1',
    '--eos_id=2',
    '--pad_id=3',
    `--unk_piece=${SPECIAL.unk}`,
    `--bos_piece=${SPECIAL.bos}`,
    `--eos_piece=${SPECIAL.eos}`,
    `--pad_piece=${SPECIAL.pad}`,
    `--num_threads=${threads}`,
    '--minloglevel=1',
  ];
}

/** Trains dir/spm.model (+ spm.vocab) unless it is there already. */
export function trainSpm(input: string, dir: string, vocabSize: number): { model: string; vocab: string; trained: boolean } {
  mkdirSync(dir, { recursive: true });
  const prefix = join(dir, 'spm');
  const model = `${prefix}.model`;
  const vocab = `${prefix}.vocab`;
  if (existsSync(model) && existsSync(vocab)) return { model, vocab, trained: false };
  execFileSync('spm_train', spmTrainArgs(input, prefix, vocabSize), { stdio: ['ignore', 'ignore', 'inherit'] });
  // spm_train writes the vocab with scores; spm_export_vocab would write the same.
  return { model, vocab, trained: true };
}

/** A simple prompt/response template (User:/Assistant:, each reply ends with EOS), as the project's converter uses. */
export const CHAT_TEMPLATE = LLAMA2C_CHAT_TEMPLATE;

export interface HFTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  ids: { unk: number; bos: number; eos: number; pad: number };
  vocabSize: number;
}

/** spm.vocab ("piece<TAB>score" per line, in id order) -> tokenizer.json + tokenizer_config.json. */
export function convertSpmVocab(vocabText: string, modelMaxLength: number): HFTokenizerFiles {
  const rows = vocabText
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const tab = l.lastIndexOf('\t');
      return { piece: l.slice(0, tab), score: Number(l.slice(tab + 1)) };
    });
  const enc = new TextEncoder();
  // buildTokenizerJson takes llama2.c-style pieces: raw bytes with ' ' for the space mark.
  const pieces = rows.map((r) => enc.encode(r.piece.replaceAll('\u2581', ' ')));
  const scores = Float32Array.from(rows.map((r) => r.score));
  const { tokenizerJson, bosId, eosId, unkId } = buildTokenizerJson({ maxTokenLength: Math.max(...pieces.map((p) => p.length)), pieces, scores });
  const padId = rows.findIndex((r) => r.piece === SPECIAL.pad);
  if (padId < 0) throw new Error('the SentencePiece vocabulary has no <pad>');

  // <pad> is a control token like <s>: an added special token, never produced by merges.
  const model = tokenizerJson.model as { merges: (string | [string, string])[] };
  model.merges = model.merges.filter((m) => (typeof m === 'string' ? m.replace(' ', '') : m.join('')) !== SPECIAL.pad);
  const added = tokenizerJson.added_tokens as Record<string, unknown>[];
  added.push({ id: padId, content: SPECIAL.pad, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  added.sort((a, b) => (a.id as number) - (b.id as number));

  const special = [unkId, bosId, eosId, padId].sort((a, b) => a - b);
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: SPECIAL.bos,
    eos_token: SPECIAL.eos,
    unk_token: SPECIAL.unk,
    pad_token: SPECIAL.pad,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: modelMaxLength,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: Object.fromEntries(
      special.map((id) => [String(id), { content: rows[id]!.piece, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }]),
    ),
    chat_template: CHAT_TEMPLATE,
  };
  return { tokenizerJson, tokenizerConfig, ids: { unk: unkId, bos: bosId, eos: eosId, pad: padId }, vocabSize: rows.length };
}

/** Trains (when needed) and converts; writes tokenizer.json and tokenizer_config.json into dir. */
export function buildTokenizer(input: string, dir: string, vocabSize: number, modelMaxLength = 256): HFTokenizerFiles & { trained: boolean } {
  const { vocab, trained } = trainSpm(input, dir, vocabSize);
  const files = convertSpmVocab(readFileSync(vocab, 'utf8'), modelMaxLength);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizerJson, null, 2) + '\n');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(files.tokenizerConfig, null, 2) + '\n');
  return { ...files, trained };
}
