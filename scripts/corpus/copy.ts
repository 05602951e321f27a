// `npm run corpus:copy`: copy-rich documents for pretraining, beside the text corpus of `npm run corpus`.
//
// Why: a model pretrained on prose alone has never needed to reproduce a word it has not seen before
// from its context, so fine-tuning cannot teach it extraction (copy the city a sentence names into the
// answer): it answers with names it memorised. Small transformers learn to copy from context (induction)
// when their pretraining text rewards it. These documents do, in several forms:
//   - lists and their repetition (made-up words mixed with corpus words), and strings of arbitrary
//     vocabulary pieces repeated (nothing but the context predicts them),
//   - records followed by lookups ("... The city of Bralden Mourth is Kestavel."),
//   - quotations of corpus sentences and questions about their words,
//   - short stories with made-up names and questions whose answer is one of those names.
// Made-up words come from scripts/lib/pseudo-words.ts with their own seed; every name the extraction
// example uses (public/examples/extract-names.*, its held-out names included) is left out, checked by
// name, and so are its question forms: the example measures what fine-tuning adds, not what was rehearsed.
//
// Reads .cache/corpus/text/{train,heldout}.jsonl (sentences and words of the corpus' own splits: held-out
// documents only feed the held-out copy stream) and the corpus tokenizer; writes
// .cache/corpus/tokens-<V>/copy-{train,heldout}.bin (uint16 LE, every document as <s> text </s>) and
// copy-index.json (counts per kind). Deterministic.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TextTokenizer } from '../../src/tokenizer/tokenizer';
import { seededRandom } from '../../src/util/random';
import { extractionEntities } from '../make-examples';
import { pseudoWords } from '../lib/pseudo-words';

const root = resolve(import.meta.dirname, '..', '..');
const cache = join(root, '.cache', 'corpus');

// Unknown options are refused (parseArgs strict), not ignored.
function options() {
  try {
    return parseArgs({ options: { vocab: { type: 'string', default: '4096' }, tokens: { type: 'string', default: '4000000' }, 'heldout-tokens': { type: 'string', default: '60000' } }, strict: true }).values;
  } catch (e) {
    process.stderr.write(`corpus:copy: ${(e as Error).message}\nusage: npm run corpus:copy -- [--vocab 4096] [--tokens 4000000] [--heldout-tokens 60000]\n`);
    process.exit(2);
  }
}
const opts = options();
const VOCAB = Number(opts.vocab);
const TRAIN_TOKENS = Number(opts.tokens);
const HELD_TOKENS = Number(opts['heldout-tokens']);
const SEED = 7150;

type Rand = () => number;

/** What the generators draw from: made-up words (probe names excluded), corpus words and sentences. */
interface Pool {
  rnd: Rand;
  /** Vocabulary pieces (merged tokens, '▁' as a space), for piecesDoc. */
  pieces: string[];
  made: (syllables: number, capital?: boolean) => string;
  words: string[];
  sentences: string[];
}

const pick = <T>(rnd: Rand, a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
const int = (rnd: Rand, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

function makePool(docs: { text: string }[], seed: number, exclude: ReadonlySet<string>, pieces: string[]): Pool {
  const rnd = seededRandom(seed);
  const maker = pseudoWords(seed + 1);
  const made = (syllables: number, capital = false) => {
    for (;;) {
      const w = maker(syllables, capital);
      if (!exclude.has(w.toLowerCase())) return w;
    }
  };
  const sentences: string[] = [];
  const wordSet = new Set<string>();
  for (const d of docs) {
    for (const s of d.text.split(/(?<=[.!?])\s+/)) {
      const n = s.split(' ').length;
      if (n >= 5 && n <= 30 && !s.includes('\n')) sentences.push(s);
      for (const w of s.split(/\s+/)) if (/^[A-Za-z]{3,12}$/.test(w) && !exclude.has(w.toLowerCase())) wordSet.add(w);
    }
  }
  return { rnd, made, words: [...wordSet], sentences, pieces };
}

/** A name-like item: a made-up word (most often) or a corpus word. */
function item(p: Pool, capital: boolean): string {
  if (p.rnd() < 0.7) return p.made(int(p.rnd, 1, 3), capital);
  const w = pick(p.rnd, p.words);
  return capital ? w[0]!.toUpperCase() + w.slice(1) : w.toLowerCase();
}

function listDoc(p: Pool): string {
  const { rnd } = p;
  const cap = rnd() < 0.5;
  const items = Array.from({ length: int(rnd, 4, 40) }, () => item(p, cap));
  const sep = pick(rnd, [', ', ' ', '; ', '\n']);
  const list = items.join(sep);
  const forms = [
    () => `${list}\n${list}`,
    () => `List: ${list}.\nThe same list again: ${list}.`,
    () => `${list}. Once more: ${list}.`,
    () => `Words to remember: ${list}.\nNow write them down: ${list}.`,
    () => `${list}\n${list}\n${items.slice(0, int(rnd, 1, items.length)).join(sep)}`,
    () => `${list}\n${list}\n${list}`,
  ];
  return pick(rnd, forms)();
}

/** Strings of arbitrary vocabulary pieces, repeated: copying that nothing but the context can predict. */
function piecesDoc(p: Pool): string {
  const { rnd } = p;
  const run = Array.from({ length: int(rnd, 8, 40) }, () => pick(rnd, p.pieces)).join('');
  const n = int(rnd, 2, 4);
  return Array.from({ length: n }, () => run).join(pick(rnd, ['\n', ' | ', '\n\n']));
}

const FIELDS = ['city', 'colour', 'tool', 'horse', 'ship', 'river', 'friend', 'house', 'song', 'dog'];

function recordsDoc(p: Pool): string {
  const { rnd } = p;
  const fields = [pick(rnd, FIELDS), pick(rnd, FIELDS)].filter((f, i, a) => a.indexOf(f) === i);
  const people = Array.from({ length: int(rnd, 3, 8) }, () => ({ name: `${p.made(int(rnd, 1, 2), true)} ${p.made(int(rnd, 1, 3), true)}`, vals: fields.map(() => item(p, rnd() < 0.5)), num: int(rnd, 1, 999) }));
  const lines = people.map((x) =>
    pick(rnd, [
      () => `${x.name}: ${fields.map((f, i) => `${f} ${x.vals[i]}`).join(', ')}, number ${x.num}.`,
      () => `Name: ${x.name}. ${fields.map((f, i) => `${f[0]!.toUpperCase()}${f.slice(1)}: ${x.vals[i]}.`).join(' ')} Number: ${x.num}.`,
      () => `The ${fields[0]} of ${x.name} is ${x.vals[0]}${fields[1] ? `, and the ${fields[1]} is ${x.vals[1]}` : ''}; the number is ${x.num}.`,
    ])(),
  );
  const qs: string[] = [];
  for (let k = int(rnd, 2, 6); k > 0; k--) {
    const x = pick(rnd, people);
    const fi = int(rnd, 0, fields.length - 1);
    const f = fields[fi]!;
    qs.push(
      pick(rnd, [
        () => `Q: What is the ${f} of ${x.name}? A: ${x.vals[fi]}.`,
        () => `The ${f} of ${x.name} is ${x.vals[fi]}.`,
        () => `Whose ${f} is ${x.vals[fi]}? ${x.name}.`,
        () => `What number does ${x.name} have? ${x.num}.`,
        () => `User: Tell me the ${f} of ${x.name}.\nAssistant: ${x.vals[fi]}`,
      ])(),
    );
  }
  return `${lines.join('\n')}\n${qs.join('\n')}`;
}

function quoteDoc(p: Pool): string {
  const { rnd } = p;
  const s = pick(rnd, p.sentences);
  const w = s.replace(/[^A-Za-z0-9' -]/g, '').split(/\s+/).filter(Boolean);
  const i = int(rnd, 0, Math.max(0, w.length - 2));
  const forms = [
    () => `${s}\nRepeat: ${s}`,
    () => `He read the line aloud: "${s}" Then he read it again: "${s}"`,
    () => `In the sentence "${s}", the word after "${w[i]}" is "${w[i + 1] ?? w[i]}".`,
    () => `"${s}" The first word of that sentence is "${w[0]}", and the last is "${w[w.length - 1]}".`,
    () => `User: Copy this sentence: ${s}\nAssistant: ${s}`,
    () => `Sentence: ${s}\nThe words "${w.slice(i, i + 3).join(' ')}" appear in it.`,
  ];
  return pick(rnd, forms)();
}

function storyDoc(p: Pool): string {
  const { rnd } = p;
  const a = p.made(int(rnd, 2, 3), true);
  const b = p.made(int(rnd, 2, 3), true);
  const place = p.made(int(rnd, 2, 4), true);
  const thing = p.made(int(rnd, 1, 3));
  const story = pick(rnd, [
    `${a} met ${b} at the market of ${place}. They bought some ${thing} and went home.`,
    `Long ago, ${a} sailed from ${place} with a cargo of ${thing}. On the way ${a} found ${b}, a lost child.`,
    `The letter from ${b} reached ${a} in ${place}. It asked for ${thing}.`,
    `In ${place} lived ${a}, who made ${thing}. ${b} came every day to buy it.`,
  ]);
  const qa = [
    () => `Who came with ${thing} or met ${a}? ${b}.`,
    () => `Where did it happen? In ${place}.`,
    () => `What was it about? ${thing}.`,
    () => `Which names are in the story? ${a}, ${b} and ${place}.`,
    () => `User: Where was ${a}?\nAssistant: ${place}`,
    () => `User: What did they want?\nAssistant: ${thing}`,
  ];
  const n = int(rnd, 1, 3);
  return `${story}\n${Array.from({ length: n }, () => pick(rnd, qa)()).join('\n')}`;
}

const KINDS = { list: listDoc, pieces: piecesDoc, records: recordsDoc, quote: quoteDoc, story: storyDoc } as const;
/** How often each kind is drawn: repetition first (the simplest copying to learn), lookups next. */
const KIND_WEIGHTS: Record<keyof typeof KINDS, number> = { list: 0.35, pieces: 0.3, records: 0.2, quote: 0.05, story: 0.1 };

function stream(p: Pool, tok: TextTokenizer, ids: { bos: number; eos: number }, target: number): { bin: Uint16Array; counts: Record<string, { docs: number; tokens: number }> } {
  const parts: number[] = [];
  const counts: Record<string, { docs: number; tokens: number }> = {};
  const names = Object.keys(KINDS) as (keyof typeof KINDS)[];
  while (parts.length < target) {
    let u = p.rnd();
    const kind = names.find((k) => (u -= KIND_WEIGHTS[k]) < 0) ?? names[0]!;
    const text = KINDS[kind](p);
    const enc = tok.encode(text, { addBos: false });
    parts.push(ids.bos, ...enc, ids.eos);
    const c = (counts[kind] ??= { docs: 0, tokens: 0 });
    c.docs++;
    c.tokens += enc.length + 2;
  }
  return { bin: Uint16Array.from(parts), counts };
}

function main(): void {
  const tokDir = join(cache, `tokenizer-${VOCAB}`);
  const outDir = join(cache, `tokens-${VOCAB}`);
  if (!existsSync(join(outDir, 'index.json'))) throw new Error(`no corpus in ${cache}: run \`npm run corpus -- --vocab ${VOCAB}\` first`);
  const tok = TextTokenizer.fromHF(JSON.parse(readFileSync(join(tokDir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(tokDir, 'tokenizer_config.json'), 'utf8')));
  const index = JSON.parse(readFileSync(join(outDir, 'index.json'), 'utf8')) as { bos: number; eos: number };
  const probe = extractionEntities();
  const exclude = new Set([...probe.train, ...probe.val]);
  // Merged pieces of the vocabulary (not the byte pieces or specials), as text.
  const vocab = (JSON.parse(readFileSync(join(tokDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab;
  const pieces = Object.entries(vocab)
    .filter(([piece, id]) => id >= 260 && !/[^A-Za-z\u2581]/.test(piece))
    .map(([piece]) => piece.replace(/\u2581/g, ' '));
  const read = (split: string) =>
    readFileSync(join(cache, 'text', `${split}.jsonl`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { text: string });
  const out: Record<string, unknown> = { vocab: VOCAB, seed: SEED, excluded_names: exclude.size, format: 'uint16le; each document is <s> tokens </s>', splits: {} };
  for (const [split, docs, seed, target] of [['train', read('train'), SEED, TRAIN_TOKENS], ['heldout', read('heldout'), SEED + 100, HELD_TOKENS]] as const) {
    const t0 = Date.now();
    const { bin, counts } = stream(makePool(docs, seed, exclude, pieces), tok, index, target);
    writeFileSync(join(outDir, `copy-${split}.bin`), Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength));
    (out.splits as Record<string, unknown>)[split] = { tokens: bin.length, kinds: counts };
    process.stderr.write(`copy-${split}: ${bin.length} tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s ${JSON.stringify(counts)}\n`);
  }
  writeFileSync(join(outDir, 'copy-index.json'), JSON.stringify(out, null, 2) + '\n');
}

main();
