// tabtune's own bundled model (models/tabtune-tiny, made by `npm run corpus` + `npm run pretrain`) and
// the pieces of the pretraining pipeline.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../../node/fs-source';
import { setupBackend } from '../../model/backend';
import { generate, meanNLL } from '../../model/generate';
import { seededRandom } from '../../util/random';
import { loadModel } from '../../io/load-model';
import { buildCausalLM, type LanguageModel } from '../../model/load';
import { hfConfig, initWeights, loadPretrainConfig, ngramBaselines, trainConfig, windowExamples, type PretrainConfig } from './pretrain';

const root = resolve(__dirname, '..', '..', '..');
const tinyDir = join(root, 'models', 'tabtune-tiny');
const corpusTok = join(root, '.cache', 'corpus', 'tokenizer-4096');
const corpusText = join(root, '.cache', 'corpus', 'text', 'heldout.jsonl');

/** Random strings over many scripts (ASCII, Latin, Greek, Cyrillic, CJK, emoji, combining marks, controls). */
function randomUnicode(rand: () => number, n: number): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xa0, 0x24f],
    [0x300, 0x36f],
    [0x391, 0x3c9],
    [0x400, 0x4ff],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x10000, 0x10ffff],
  ];
  let s = '';
  for (let i = 0; i < n; i++) {
    const [a, b] = ranges[Math.floor(rand() * ranges.length)]!;
    let cp = a + Math.floor(rand() * (b - a + 1));
    if (cp === 0x2581 || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0x41;
    s += String.fromCodePoint(cp);
  }
  return s;
}

// Sentences written for this test (not corpus text): a held-out sample that may be committed.
const OWN_TEXT = [
  'The children walked down to the river in the morning and sat under an old tree. Their mother had told them to be home before dark, and they promised that they would.',
  'A small boat carried the men across the water to the island. The weather was cold, but the sea was calm, and they reached the shore before night.',
  'The government must protect the rights of every citizen and work for peace among the nations of the world.',
];

describe('models/tabtune-tiny', () => {
  let model: LanguageModel;
  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(tinyDir));
  });

  it('is a small Llama with the expected tokenizer', () => {
    expect(model.info.arch).toBe('llama');
    expect(model.info.numParams).toBeGreaterThan(200_000);
    expect(model.info.numParams).toBeLessThan(1_000_000);
    expect(model.info.vocabSize).toBe(4096);
    expect(model.info.contextLength).toBe(256);
    const tk = model.tokenizer;
    expect([tk.idToToken(0), tk.idToToken(1), tk.idToToken(2), tk.idToToken(3)]).toEqual(['<unk>', '<s>', '</s>', '<pad>']);
    expect([tk.bosId, tk.eosId, tk.padId, tk.unkId]).toEqual([1, 2, 3, 0]);
    expect(tk.addBosDefault).toBe(true);
    expect(model.eosIds).toEqual([2]);
    expect(tk.applyChatTemplate([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }])).toBe('<s>User: Hi\nAssistant: Hello.</s>');
  });

  it('round-trips any UTF-8 text through encode/decode (byte fallback, never <unk>)', () => {
    const tk = model.tokenizer;
    const rand = seededRandom(7);
    const texts = [
      '',
      ' ',
      '  two leading spaces',
      'trailing space ',
      'Tabs\tand\nnew lines\r\n and  double  spaces',
      'Ünïcödé — “quotes” ‘single’ … 😀👍🏽 日本語 한국어 العربية עברית',
      '1234567890 3.14159 $1,000,000',
      ...Array.from({ length: 300 }, () => randomUnicode(rand, 1 + Math.floor(rand() * 40))),
    ];
    if (existsSync(corpusText)) {
      const docs = readFileSync(corpusText, 'utf8').split('\n').filter(Boolean).slice(0, 200);
      texts.push(...docs.map((l) => (JSON.parse(l) as { text: string }).text.slice(0, 2000)));
    }
    for (const x of texts) {
      const ids = tk.encode(x, { addBos: false });
      expect(ids).not.toContain(0);
      expect(tk.decode(ids)).toBe(x);
      expect(tk.decode(tk.encode(x), { skipSpecial: true })).toBe(x);
    }
  });

  // Needs `npm run corpus` (the spm.model the bundled tokenizer.json was converted from) and Debian's sentencepiece.
  it.skipIf(!spmAvailable())('encodes exactly as spm_encode does (when the corpus and sentencepiece are installed)', () => {
    const lines = readFileSync(corpusText, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => (JSON.parse(l) as { text: string }).text.split('\n'))
      .filter((_, i) => i % 7 === 0)
      .slice(0, 400)
      .map((l) => l.slice(0, 1000));
    lines.push('Ünïcödé — 😀 日本語', '  spaces  and\ttabs ', '1999 years');
    const out = execFileSync('spm_encode', [`--model=${join(corpusTok, 'spm.model')}`, '--output_format=id'], { input: lines.join('\n') + '\n', encoding: 'utf8' }).split('\n');
    lines.forEach((l, i) => expect(model.tokenizer.encode(l, { addBos: false }).join(' ')).toBe(out[i]));
  });

  it('generates greedily', async () => {
    const [r] = await generate(model, ['The ship sailed'], { maxNewTokens: 12, temperature: 0 });
    expect(r!.tokens.length).toBeGreaterThan(0);
    expect(r!.text.trim().length).toBeGreaterThan(0);
  });

  it('predicts English it has never seen far better than chance', () => {
    const nll = OWN_TEXT.map((t) => meanNLL(model.lm, model.tokenizer.encode(t)));
    const mean = nll.reduce((a, b) => a + b, 0) / nll.length;
    // Uniform over the vocabulary would be ln(4096) = 8.32 nats; measured 4.56 for the bundled weights (+0.34 margin).
    expect(mean).toBeLessThan(NLL_BOUND);
  });
});

const NLL_BOUND = 4.9;

function spmAvailable(): boolean {
  if (!existsSync(join(corpusTok, 'spm.model')) || !existsSync(corpusText)) return false;
  // The bundled tokenizer.json must be the one converted from this spm.model.
  if (readFileSync(join(tinyDir, 'tokenizer.json'), 'utf8') !== readFileSync(join(corpusTok, 'tokenizer.json'), 'utf8')) return false;
  try {
    execFileSync('spm_encode', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('pretraining pieces', () => {
  const cfg: PretrainConfig = {
    name: 't',
    vocab: 32,
    model: { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 16, rope_theta: 10000, rms_norm_eps: 1e-5, tie_word_embeddings: true, init_std: 0.02 },
    train: { lr: 1e-3, schedule: 'cosine', warmupSteps: 1, minLrRatio: 0.1, weightDecay: 0, maxGradNorm: 1, batchSize: 2, gradAccum: 1, steps: 1, seed: 1 },
    evalEvery: 1,
    evalWindows: 1,
    saveEveryMinutes: 1,
    out: 'x',
    work: 'y',
    dtype: 'F32',
    prompts: [],
  };

  it('runs with the one run configuration, checked: the bundled recipe passes, a bad one is refused', () => {
    const tiny = loadPretrainConfig(resolve(__dirname, '../../../models/tabtune-tiny/train.json'));
    expect(trainConfig(tiny, tiny.train.steps)).toMatchObject({ mode: 'full', steps: tiny.train.steps, epochs: 0, saveEvery: 0, maxBadSteps: 5 });
    expect(() => trainConfig({ ...cfg, train: { ...cfg.train, batchSize: 0 } }, 10)).toThrow(/invalid training settings in train\.json: Batch size: must be between 1 and 128/);
  });

  it('initialises a model that loads, with the configured parameter count and near-uniform predictions', async () => {
    await setupBackend('cpu');
    const lm = buildCausalLM({ config: hfConfig(cfg, { bos: 1, eos: 2, pad: 3 }), weights: initWeights(cfg, 1) }, { trainable: true });
    try {
      const D = 16;
      const kv = 8;
      expect(lm.numParams).toBe(32 * D + 2 * (2 * D + 2 * D * D + 2 * D * kv + 3 * D * 24) + D);
      expect(meanNLL(lm, [1, 5, 6, 7, 8])).toBeCloseTo(Math.log(32), 1);
    } finally {
      lm.dispose();
    }
  });

  it('cuts the token stream into shifted windows lazily', () => {
    const s = Uint16Array.from({ length: 23 }, (_, i) => i);
    const ex = windowExamples(s, 5);
    expect(ex.length).toBe(4);
    expect(ex[1]).toEqual({ input: [5, 6, 7, 8, 9], target: [6, 7, 8, 9, 10], weight: [1, 1, 1, 1, 1] });
    expect(ex[4]).toBeUndefined();
    expect(ex.slice(3).map((e) => e.input[0])).toEqual([15]);
  });

  it('scores unigram and bigram baselines on the held-out targets', () => {
    // A strictly alternating stream: the bigram model is nearly certain, the unigram one is not.
    const train = Uint16Array.from({ length: 1000 }, (_, i) => (i % 2 ? 5 : 6));
    const held = Uint16Array.from({ length: 41 }, (_, i) => (i % 2 ? 5 : 6));
    const b = ngramBaselines(train, held, 8, 10);
    expect(b.tokens).toBe(40);
    expect(b.unigram).toBeGreaterThan(0.6);
    expect(b.bigram).toBeLessThan(0.1);
  });
});
