import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../util/random';
import { TINY_DIR } from '../testing/models';
import { describeReference, ensureReferenceHF, loadGolden, REFERENCE_DIR, type Golden } from '../testing/reference';
import { TextTokenizer, TokenizerLoadError } from './tokenizer';

let tj: Record<string, unknown>;
let tc: Record<string, unknown>;
let tok: TextTokenizer;
let golden: Golden;

async function readTokenizer(dir: string): Promise<void> {
  tj = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  tc = JSON.parse(await readFile(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  tok = TextTokenizer.fromHF(tj, tc);
}

const rng = seededRandom;

const HANDWRITTEN = [
  'Once upon a time',
  'Once upon a time, there was a little girl named Lily.',
  'Hello world',
  'hello',
  'a',
  ' ',
  '  ',
  '   leading spaces',
  'trailing spaces   ',
  'multiple   spaces   inside',
  ' she said',
  'The end.\n',
  'Line one\nLine two\n\nLine four',
  '\n',
  '\n\n\t tab and newline',
  '"Lily," said Mom, "let\'s go to the park!"',
  'Timmy and his friend were very happy.',
  'They played with the big red ball all day.',
  'café naïve résumé',
  'jalapeño',
  'Ünïcödé ÀÉÎÕÜ',
  'emoji 😀 and 🎉🎉',
  '👍',
  '中文字符',
  'Привет, мир',
  'مرحبا',
  '“Curly quotes” and ‘single’ — em dash – en dash …',
  'non\u00a0breaking\u00a0space',
  'price: 5€ or $3 or ¥7',
  '1234567890',
  '3.14159 + 2 = 5.14',
  'x<y>z [a] (b) {c} ~|\\',
  'ALL CAPS SHOUTING!!!',
  'mIxEd CaSe',
  'She wanted to play with it, but it was too high.',
  'there the then they them',
  'her here hers verver outout kedked ended',
  '?!.,;:-',
  'zero\u200bwidth',
  'tab\tseparated\tvalues',
  'ends with emoji 🐶',
  'a b c d e f g',
];

function generatedStrings(): string[] {
  const r = rng(42);
  const alphabet = Array.from(' .,!?"\'abcdefghijklmnopqrstuvwxyzTHLOS\n\théñ€“”’😀中\u00a0<>01');
  const words = 'Once upon a time there was little girl named Lily She loved to play outside in the park One day she saw big red ball'.split(' ');
  const out: string[] = [];
  for (let i = 0; i < 60; i++) {
    let s = '';
    const n = 1 + Math.floor(r() * 25);
    for (let j = 0; j < n; j++) {
      if (i % 3 === 0) s += alphabet[Math.floor(r() * alphabet.length)];
      else if (i % 3 === 1) s += ' therveonkdaustil'[Math.floor(r() * 17)];
      else s += (r() < 0.8 ? ' ' : r() < 0.5 ? '  ' : '') + words[Math.floor(r() * words.length)];
    }
    out.push(s);
  }
  return out;
}

/** reference_forward.py's encode on a batch of strings (strings passed as JSON on stdin). */
function pythonEncode(strings: string[], bos: boolean): number[][] {
  const script = [
    'import json, sys',
    `sys.path.insert(0, ${JSON.stringify(REFERENCE_DIR)})`,
    'from reference_forward import load_tokenizer, encode',
    `vocab, scores = load_tokenizer(${JSON.stringify(join(REFERENCE_DIR, 'tok512.bin'))}, 512)`,
    'strs = json.loads(sys.stdin.buffer.read().decode("utf-8"))',
    `print(json.dumps([encode(s, vocab, scores, bos=${bos ? 'True' : 'False'}) for s in strs]))`,
  ].join('\n');
  const out = execFileSync('python3', ['-c', script], { input: JSON.stringify(strings), maxBuffer: 1 << 26 });
  return JSON.parse(out.toString('utf8')) as number[][];
}

describe('TextTokenizer on the bundled tabtune-tiny tokenizer (byte-fallback BPE, 4096 tokens)', () => {
  beforeAll(() => readTokenizer(TINY_DIR));

  it('exposes the special tokens and sizes', () => {
    expect(tok.vocabSize).toBe(4096);
    expect([tok.unkId, tok.bosId, tok.eosId, tok.padId]).toEqual([0, 1, 2, 3]);
    expect([tok.bosToken, tok.eosToken]).toEqual(['<s>', '</s>']);
    expect(tok.addBosDefault).toBe(true);
    expect(tok.tokenToId('no such piece')).toBeNull();
    expect(tok.idToToken(100000)).toBeNull();
  });

  it('adds one BOS, and decoding round-trips strings (byte fallback included)', () => {
    const ids = tok.encode('Hello');
    expect(ids.filter((i) => i === 1)).toEqual([1]);
    expect(ids[0]).toBe(1);
    expect(tok.encode('Hello', { addBos: false })).toEqual(ids.slice(1));
    expect(tok.encode('')).toEqual([1]);
    for (const s of [...HANDWRITTEN, ...generatedStrings()]) {
      expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
      expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s);
    }
  });

  it('stream decoder output equals decode() on random id sequences, byte tokens included', () => {
    const r = rng(7);
    const text = [...HANDWRITTEN, ...generatedStrings()].join(' ');
    for (let trial = 0; trial < 200; trial++) {
      const ids: number[] = [];
      const n = Math.floor(r() * 60);
      while (ids.length < n) {
        const k = r();
        if (k < 0.5) ids.push(Math.floor(r() * 4096));
        else if (k < 0.6) ids.push(Math.floor(r() * 4));
        else ids.push(...tok.encode(text.slice(Math.floor(r() * 200), Math.floor(r() * 200) + 1 + Math.floor(r() * 40)), { addBos: r() < 0.5 }));
      }
      for (const skipSpecial of [true, false]) {
        const sd = tok.createStreamDecoder(skipSpecial);
        let out = '';
        for (const id of ids) out += sd.push(id);
        out += sd.flush();
        expect(out).toBe(tok.decode(ids, { skipSpecial }));
      }
    }
  });

  it('stream decoder never emits half a character', () => {
    const s = 'Hi 😀 there! “Quote” 中文 café — ok 🎉🎉\nnext line';
    const ids = tok.encode(s);
    expect(ids.some((i) => (tok.idToToken(i) ?? '').startsWith('<0x'))).toBe(true); // byte fallback is exercised
    const sd = tok.createStreamDecoder();
    const parts = ids.map((id) => sd.push(id));
    parts.push(sd.flush());
    expect(parts.join('')).toBe(s);
    for (const p of parts) expect(p).not.toContain('\uFFFD');
  });
});

describe('TextTokenizer load errors', () => {
  it('throws a clear error on a tokenizer.json it cannot load', () => {
    expect(() => TextTokenizer.fromHF({}, null)).toThrow(TokenizerLoadError);
    expect(() => TextTokenizer.fromHF({}, null)).toThrow(/no "model" section/);
    expect(() => TextTokenizer.fromHF({ model: { type: 'BPE' } }, null)).toThrow(/no vocab/);
    expect(() => TextTokenizer.fromHF({ model: { type: 'Mystery', vocab: { a: 0 } } }, null)).toThrow(/unsupported tokenizer.json model type "Mystery"/);
    expect(() => TextTokenizer.fromHF({ model: { type: 'BPE', vocab: { a: 0 } } }, null)).toThrow(/cannot load tokenizer.json \(model type BPE\)/);
  });
});

describeReference('TextTokenizer on the converted stories260K tokenizer (against reference_forward.py and golden.json)', () => {
  beforeAll(async () => {
    await readTokenizer(await ensureReferenceHF());
    golden = loadGolden();
  });

  it('exposes the special tokens and sizes', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.bosToken).toBe('<s>');
    expect(tok.eosToken).toBe('</s>');
    expect(tok.padId).toBeNull();
    expect(tok.unkId).toBe(0);
    expect(tok.addBosDefault).toBe(true);
    expect(tok.idToToken(403)).toBe('▁Once');
    expect(tok.tokenToId('▁Once')).toBe(403);
    expect(tok.idToToken(13)).toBe('<0x0A>');
    expect(tok.idToToken(1)).toBe('<s>');
    expect(tok.tokenToId('no such piece')).toBeNull();
    expect(tok.idToToken(100000)).toBeNull();
  });

  it('encodes the golden prompts', () => {
    expect(tok.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encode(golden.prompt_greedy.prompt)).toEqual(golden.prompt_greedy.prompt_tokens);
    expect(tok.encode('Once upon a time', { addBos: false })).toEqual([403, 407, 261, 378]);
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addBos: false })).toEqual([]);
  });

  it('never lets the post_processor add a second BOS', () => {
    const ids = tok.encode('Hello');
    expect(ids.filter((i) => i === 1)).toHaveLength(1);
    expect(ids[0]).toBe(1);
    expect(ids).not.toContain(2);
  });

  it('matches reference_forward.py encode on many strings', () => {
    const strings = [...HANDWRITTEN, ...generatedStrings()];
    expect(strings.length).toBeGreaterThanOrEqual(100);
    const withBos = pythonEncode(strings, true);
    const noBos = pythonEncode(strings, false);
    const mismatches: string[] = [];
    strings.forEach((s, i) => {
      const a = tok.encode(s);
      const b = tok.encode(s, { addBos: false });
      if (JSON.stringify(a) !== JSON.stringify(withBos[i]) || JSON.stringify(b) !== JSON.stringify(noBos[i])) {
        mismatches.push(`${JSON.stringify(s)}: ours ${JSON.stringify(a)} reference ${JSON.stringify(withBos[i])}`);
      }
    });
    expect(mismatches).toEqual([]);
  });

  it('decodes the golden greedy text and round-trips strings', () => {
    expect(tok.decode(golden.bos_greedy.tokens, { skipSpecial: true })).toBe(golden.bos_greedy.text);
    expect(tok.decode(golden.prompt_greedy.tokens, { skipSpecial: true })).toBe(golden.prompt_greedy.text);
    expect(tok.decode([1, 403, 407], { skipSpecial: false })).toBe('<s> Once upon');
    expect(tok.decode([1, 403, 407, 2], { skipSpecial: true })).toBe('Once upon');
    expect(tok.decode([])).toBe('');
    for (const s of [...HANDWRITTEN, ...generatedStrings()]) {
      expect(tok.decode(tok.encode(s), { skipSpecial: true })).toBe(s);
      expect(tok.decode(tok.encode(s, { addBos: false }))).toBe(s);
    }
  });

  it('stream decoder output equals decode() on random id sequences, byte tokens included', () => {
    const r = rng(7);
    const euro = [0xe2, 0x82, 0xac].map((b) => b + 3);
    const smile = [0xf0, 0x9f, 0x98, 0x80].map((b) => b + 3);
    for (let trial = 0; trial < 400; trial++) {
      const ids: number[] = [];
      const n = Math.floor(r() * 60);
      while (ids.length < n) {
        const k = r();
        if (k < 0.35) ids.push(259 + Math.floor(r() * 253));
        else if (k < 0.55) ids.push(3 + Math.floor(r() * 256));
        else if (k < 0.65) ids.push(...(r() < 0.5 ? euro : smile));
        else if (k < 0.72) ids.push(Math.floor(r() * 3));
        else if (k < 0.8) ids.push(410); // "▁"
        else ids.push(...tok.encode(golden.bos_greedy.text.slice(0, 1 + Math.floor(r() * 40)), { addBos: r() < 0.5 }));
      }
      for (const skipSpecial of [true, false]) {
        const sd = tok.createStreamDecoder(skipSpecial);
        let text = '';
        for (const id of ids) text += sd.push(id);
        text += sd.flush();
        expect(text).toBe(tok.decode(ids, { skipSpecial }));
      }
    }
  });

  it('stream decoder never emits half a character and strips only the first leading space', () => {
    const s = 'Hi 😀 there! “Quote” 中文 café — ok 🎉🎉\nnext line';
    const ids = tok.encode(s);
    expect(ids.some((i) => i >= 3 && i <= 258)).toBe(true); // byte fallback is exercised
    const sd = tok.createStreamDecoder();
    const parts = ids.map((id) => sd.push(id));
    parts.push(sd.flush());
    expect(parts.join('')).toBe(s);
    for (const p of parts) expect(p).not.toContain('\uFFFD');
    // " Once" right after BOS loses its space; later pieces keep theirs.
    const sd2 = tok.createStreamDecoder();
    expect([1, 403, 407].map((id) => sd2.push(id)).join('')).toBe('Once upon');
    // flush resets: a new stream strips again
    sd2.flush();
    expect(sd2.push(403)).toBe('Once');
    // Pushing a long text one token at a time gives the same text.
    const sd3 = tok.createStreamDecoder();
    const long = golden.bos_greedy.tokens.map((id) => sd3.push(id)).join('') + sd3.flush();
    expect(long).toBe(golden.bos_greedy.text);
  });

  it('a continuation decoder (given the prompt ids) keeps the first token\'s leading space', () => {
    const prompt = tok.encode('Once upon a time');
    const cont = tok.encode('Once upon a time there was a dog', { addBos: false }).slice(prompt.length - 1);
    const whole = tok.decode([...prompt, ...cont], { skipSpecial: true });
    const before = tok.decode(prompt, { skipSpecial: true });
    expect(whole.startsWith(before)).toBe(true);
    const want = whole.slice(before.length);
    expect(want.startsWith(' ')).toBe(true); // " there was a dog"
    const sd = tok.createStreamDecoder(true, prompt);
    const got = cont.map((id) => sd.push(id)).join('') + sd.flush();
    expect(got).toBe(want);
    // After flush the same context applies again.
    expect(cont.map((id) => sd.push(id)).join('') + sd.flush()).toBe(want);
    // Without context the first space is stripped, as decode() of the ids alone does.
    const plain = tok.createStreamDecoder();
    expect(cont.map((id) => plain.push(id)).join('') + plain.flush()).toBe(want.slice(1));
  });

  it('stream decoder also matches decode() when clean_up_tokenization_spaces is on', () => {
    const t2 = TextTokenizer.fromHF(tj, { ...tc, clean_up_tokenization_spaces: true });
    const r = rng(99);
    const pool = ["'", 's', 'm', 't', 'n', 've', 're', '.', ',', '?', '!', 'a', '▁'].map((p) => t2.tokenToId(p)!);
    expect(pool.every((id) => id !== null)).toBe(true);
    for (let trial = 0; trial < 300; trial++) {
      const ids = Array.from({ length: Math.floor(r() * 40) }, () => pool[Math.floor(r() * pool.length)]!);
      const sd = t2.createStreamDecoder();
      const text = ids.map((id) => sd.push(id)).join('') + sd.flush();
      expect(text).toBe(t2.decode(ids, { skipSpecial: true }));
    }
    expect(t2.decode(t2.encode("it 's fine , we 're ok .", { addBos: false }))).toBe("it's fine, we're ok.");
  });

  it('renders the chat template', () => {
    expect(tok.hasChatTemplate).toBe(true);
    const msgs = [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Tell me a story.' },
      { role: 'assistant', content: 'Once upon a time.' },
      { role: 'user', content: 'Another!' },
    ];
    expect(tok.applyChatTemplate(msgs)).toBe(
      '<s>Be kind.\n\nUser: Tell me a story.\nAssistant: Once upon a time.</s>User: Another!\n',
    );
    expect(tok.applyChatTemplate(msgs.slice(1, 2), { addGenerationPrompt: true })).toBe(
      '<s>User: Tell me a story.\nAssistant:',
    );
    expect(() => tok.applyChatTemplate([{ role: 'tool', content: 'x' }])).toThrow(/Unsupported chat role: tool/);
    // The template writes BOS itself: encodeChat does not add a second one, special tokens become ids.
    const ids = tok.encodeChat(msgs.slice(1, 3));
    expect(ids[0]).toBe(1);
    expect(ids[1]).not.toBe(1);
    expect(ids[ids.length - 1]).toBe(2);
    expect(tok.decode(ids, { skipSpecial: true })).toBe('User: Tell me a story.\nAssistant: Once upon a time.');
  });

  it('follows add_bos_token and guesses defaults without a tokenizer_config', () => {
    const noBos = TextTokenizer.fromHF(tj, { ...tc, add_bos_token: false });
    expect(noBos.encode('Once upon a time')).toEqual([403, 407, 261, 378]);
    expect(noBos.encode('Once upon a time', { addBos: true })).toEqual([1, 403, 407, 261, 378]);
    const bare = TextTokenizer.fromHF(tj, null);
    expect(bare.bosId).toBe(1);
    expect(bare.eosId).toBe(2);
    expect(bare.addBosDefault).toBe(true); // the post_processor template starts with <s>
    expect(bare.hasChatTemplate).toBe(false);
    expect(() => bare.applyChatTemplate([{ role: 'user', content: 'x' }])).toThrow(/no chat_template/);
    const withPad = TextTokenizer.fromHF(tj, { ...tc, pad_token: { content: '<unk>' } });
    expect(withPad.padId).toBe(0);
  });
});
