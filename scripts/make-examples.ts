// Generates the example datasets in public/examples/ and the e2e fixture with a planted bad line.
// Deterministic (fixed seed): running it again gives byte-identical files.
//
//   npx tsx scripts/make-examples.ts
//
// Both tasks are things the base stories260K model cannot do (it continues the prompt as a story) but
// a small LoRA can learn: short prompts (a few dozen tokens on its 512-token vocabulary) and completions
// of a few tokens. Files are {prompt, completion} JSONL, encoded by tabtune's plain format
// ("{prompt}\nAnswer: {completion}" + the stop token). Validation prompts never occur in training.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom, shuffle } from '../src/util/random';
import { shipsLog } from '../src/testing/ships-log';
import { distinctWords, pseudoWords } from './lib/pseudo-words';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SEED = 20251123;

interface Pair {
  prompt: string;
  completion: string;
}

export const jsonl = (rows: Pair[]) => rows.map((r) => JSON.stringify({ prompt: r.prompt, completion: r.completion })).join('\n') + '\n';

// --- number words -> digits ---------------------------------------------------------------------
const ONES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];

/** 0..999 in words, e.g. 312 -> "three hundred twelve", 45 -> "forty five" (no hyphens, no "and"). */
export function numberWords(n: number): string {
  if (n < 20) return ONES[n]!;
  if (n < 100) return TENS[Math.floor(n / 10)]! + (n % 10 ? ' ' + ONES[n % 10]! : '');
  return ONES[Math.floor(n / 100)]! + ' hundred' + (n % 100 ? ' ' + numberWords(n % 100) : '');
}

export function numberTask(): { train: Pair[]; val: Pair[] } {
  const all = shuffle(
    Array.from({ length: 1000 }, (_, n) => n),
    SEED,
  ).map((n) => ({ prompt: `Write as digits: ${numberWords(n)}`, completion: String(n) }));
  return { val: all.slice(0, 100), train: all.slice(100) };
}

// --- story sentiment -----------------------------------------------------------------------------
const NAMES: [string, 'he' | 'she'][] = [
  ['Tom', 'he'], ['Lily', 'she'], ['Ben', 'he'], ['Mia', 'she'], ['Sam', 'he'], ['Anna', 'she'], ['Max', 'he'], ['Sue', 'she'],
  ['Tim', 'he'], ['Lucy', 'she'], ['Jack', 'he'], ['Amy', 'she'], ['Joe', 'he'], ['Zoe', 'she'], ['Leo', 'he'], ['Kim', 'she'],
];
const HAPPY_EVENTS = ['found a shiny coin', 'got a new puppy', 'won the race', 'made a new friend', 'ate a big cake', 'played in the warm sun', 'got a red balloon', 'saw a pretty rainbow', 'built a tall tower', 'went to the zoo'];
const HAPPY_ENDS = ['{P} smiled.', '{P} laughed and laughed.', '{P} was very happy.', 'It was the best day.', '{P} danced with joy.'];
const SAD_EVENTS = ['lost {his} ball', 'broke {his} favorite toy', 'fell and hurt {his} knee', 'missed the bus', 'dropped {his} ice cream', 'could not find {his} cat', 'saw the rain ruin the picnic', 'had no one to play with', 'lost {his} new kite', 'got sick on {his} birthday'];
const SAD_ENDS = ['{P} cried.', '{P} felt very sad.', '{P} was alone and sad.', 'It was a bad day.', 'Tears ran down {his} face.'];

function story(name: string, pron: 'he' | 'she', event: string, end: string | null): string {
  const fill = (s: string) => s.replace(/\{his\}/g, pron === 'he' ? 'his' : 'her').replace(/\{P\}/g, pron === 'he' ? 'He' : 'She');
  return `${name} ${fill(event)}.` + (end ? ' ' + fill(end) : '');
}

export function sentimentTask(): { train: Pair[]; val: Pair[] } {
  const make = (label: 'happy' | 'sad', events: string[], ends: string[]): Pair[] => {
    const out: Pair[] = [];
    for (const [name, pron] of NAMES) for (const ev of events) for (const end of [null, ...ends]) out.push({ prompt: `Is this story happy or sad? ${story(name, pron, ev, end)}`, completion: label });
    return out;
  };
  const happy = shuffle(make('happy', HAPPY_EVENTS, HAPPY_ENDS), SEED);
  const sad = shuffle(make('sad', SAD_EVENTS, SAD_ENDS), SEED + 1);
  // 50 + 50 held out, 200 + 200 for training; interleaved by a seeded shuffle.
  return { val: shuffle([...happy.slice(0, 50), ...sad.slice(0, 50)], SEED + 2), train: shuffle([...happy.slice(50, 250), ...sad.slice(50, 250)], SEED + 3) };
}

// --- extraction: copy a span of the prompt into the answer ------------------------------------------
// A sentence names two things (a person, a city, a product); the question asks for one of them; the answer
// is that name, copied. Names are made-up words (scripts/lib/pseudo-words.ts), and the held-out rows use
// only names that no training row contains, so the model cannot answer from memory: it has to copy.
const EXTRACT_SENTENCES: { text: string; fields: ('person' | 'city' | 'product')[] }[] = [
  { text: '{person} moved to {city} last {season}.', fields: ['person', 'city'] },
  { text: 'The parcel for {person} was sent from {city}.', fields: ['person', 'city'] },
  { text: '{person} ordered a box of {product}.', fields: ['person', 'product'] },
  { text: 'A shop in {city} sells {product}.', fields: ['city', 'product'] },
];
const EXTRACT_QUESTIONS = {
  person: ['Who is named?', 'Name the person.'],
  city: ['Which city is named?', 'Name the city.'],
  product: ['What is the product?', 'Name the product.'],
} as const;
const SEASONS = ['spring', 'summer', 'autumn', 'winter'];

/** Every made-up name the extraction example uses (train and held-out), lower-cased. */
export function extractionEntities(): { train: Set<string>; val: Set<string> } {
  const { pools } = extractionPools();
  const low = (names: string[]) => names.map((n) => n.toLowerCase());
  return {
    train: new Set(Object.values(pools).flatMap((p) => low(p.train))),
    val: new Set(Object.values(pools).flatMap((p) => low(p.val))),
  };
}

function extractionPools() {
  const make = pseudoWords(SEED + 10);
  const taken = new Set<string>();
  const pool = (n: number, f: () => string) => {
    const names = distinctWords(f, n, taken);
    for (const w of names) taken.add(w.toLowerCase());
    return { train: names.slice(0, Math.round(n * 0.75)), val: names.slice(Math.round(n * 0.75)) };
  };
  const pools = {
    person: pool(160, () => make(2, true)),
    city: pool(160, () => make(3, true)),
    product: pool(160, () => make(2)),
  };
  return { pools };
}

export function extractionTask(): { train: Pair[]; val: Pair[] } {
  const { pools } = extractionPools();
  const rows = (n: number, split: 'train' | 'val', seed: number): Pair[] => {
    const rnd = seededRandom(seed);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const out: Pair[] = [];
    const seen = new Set<string>();
    while (out.length < n) {
      const s = EXTRACT_SENTENCES[out.length % EXTRACT_SENTENCES.length]!;
      const ask = pick(s.fields);
      const fill = { person: pick(pools.person[split]), city: pick(pools.city[split]), product: pick(pools.product[split]), season: pick(SEASONS) };
      const prompt = `${pick(EXTRACT_QUESTIONS[ask])} ${s.text.replace(/\{(\w+)\}/g, (_, k: keyof typeof fill) => fill[k])}`;
      if (seen.has(prompt)) continue;
      seen.add(prompt);
      out.push({ prompt, completion: fill[ask] });
    }
    return shuffle(out, seed);
  };
  return { train: rows(400, 'train', SEED + 11), val: rows(100, 'val', SEED + 12) };
}

// --- e2e fixture: good records + one invalid JSON line at a known line ------------------------------
export const PLANTED_BAD_LINE = 17;

export function plantedBadLine(train: Pair[]): string {
  const good = train.slice(0, 40).map((r) => JSON.stringify(r));
  // A trailing comma: invalid JSON that a careless hand edit produces.
  const bad = '{"prompt": "Write as digits: one hundred one", "completion": "101",}';
  return [...good.slice(0, PLANTED_BAD_LINE - 1), bad, ...good.slice(PLANTED_BAD_LINE - 1)].join('\n') + '\n';
}

/** Every generated file: path relative to the repository root -> contents. */
export function exampleFiles(): Record<string, string> {
  const numbers = numberTask();
  const sentiment = sentimentTask();
  const log = shipsLog();
  const extraction = extractionTask();
  const index = [
    {
      id: 'number-words',
      title: 'Number words to digits',
      description: 'Write a number given in words (0 to 999) as digits: "Write as digits: three hundred twelve" -> "312".',
      format: 'prompt-completion-jsonl',
      train: 'number-words.train.jsonl',
      val: 'number-words.val.jsonl',
      trainRecords: numbers.train.length,
      valRecords: numbers.val.length,
    },
    {
      id: 'story-sentiment',
      title: 'Is this story happy or sad?',
      description: 'Label a two-sentence story: "Is this story happy or sad? Tom lost his ball. He cried." -> "sad".',
      format: 'prompt-completion-jsonl',
      train: 'story-sentiment.train.jsonl',
      val: 'story-sentiment.val.jsonl',
      trainRecords: sentiment.train.length,
      valRecords: sentiment.val.length,
    },
    {
      id: 'extract-names',
      title: 'Copy a name from the sentence',
      description: 'Extraction: answer with the person, city or product a sentence names, copied from it: "Name the city. Sesam moved to Rondjebraind last autumn." -> "Rondjebraind". Held-out names never occur in training.',
      format: 'prompt-completion-jsonl',
      train: 'extract-names.train.jsonl',
      val: 'extract-names.val.jsonl',
      trainRecords: extraction.train.length,
      valRecords: extraction.val.length,
    },
    {
      id: 'ships-log',
      title: "A ship's log (plain text)",
      description: 'Domain adaptation on plain text: the made-up log of the schooner Marrow Lark (12 voyages, one entry a day). The held-out perplexity falls far below the base model\'s.',
      format: 'text',
      train: 'ships-log.txt',
      // Paragraphs (log entries); a held-out share of whole voyages is taken by the doctor.
      trainRecords: log.split(/\n\s*\n/).filter((p) => p.trim() && p.trim() !== '<|endoftext|>').length,
    },
  ];
  return {
    'public/examples/number-words.train.jsonl': jsonl(numbers.train),
    'public/examples/number-words.val.jsonl': jsonl(numbers.val),
    'public/examples/story-sentiment.train.jsonl': jsonl(sentiment.train),
    'public/examples/story-sentiment.val.jsonl': jsonl(sentiment.val),
    'public/examples/extract-names.train.jsonl': jsonl(extraction.train),
    'public/examples/extract-names.val.jsonl': jsonl(extraction.val),
    'public/examples/ships-log.txt': log,
    'public/examples/index.json': JSON.stringify(index, null, 2) + '\n',
    'e2e/fixtures/planted-bad-line.jsonl': plantedBadLine(numbers.train),
  };
}

function main(): void {
  const files = exampleFiles();
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(ROOT, rel)), { recursive: true });
    writeFileSync(join(ROOT, rel), text);
  }
  console.log(`wrote ${Object.keys(files).join(', ')}`);
}

// Run when executed (tsx scripts/make-examples.ts), not when imported by the tests.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
