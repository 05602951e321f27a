// Plain text: detection, paragraphs and documents, the held-out share by whole units, packing into windows
// (every token a target exactly once, EOS between documents), and the doctor's text report and problems.
import { describe, expect, it } from 'vitest';
import { inspectDataset } from './doctor';
import { parseDataset, sniffContainer } from './parse';
import { bytesSource, textSource } from './source';
import { documentsOf, joinTextFiles, packText, packWindows, splitText, textOpening, textRecords } from './text';
import { CHAR, charTokenizer } from '../testing/tokenizers';
import { shipsLog } from '../testing/ships-log';
import type { TextRecord } from './types';

const enc = (s: string) => new TextEncoder().encode(s);

describe('plain text detection', () => {
  it('reads .txt/.md as text, and prose that is not JSON or a table', () => {
    expect(sniffContainer(enc('a,b\n1,2'), 'notes.txt')).toEqual({ container: 'text' });
    expect(sniffContainer(enc('# Title\n\nSome words.'), 'README.md')).toEqual({ container: 'text' });
    expect(sniffContainer(enc('It was late, and the wind rose.\nNobody slept that night.\n'), 'notes')).toEqual({ container: 'text' });
    expect(sniffContainer(enc('a,b\n1,2\n3,4\n'), 'x')).toEqual({ container: 'csv' });
    expect(sniffContainer(enc('{"prompt":"a","completion":"b"}\n'), 'x')).toEqual({ container: 'jsonl' });
  });

  it('--format text forces it on a .jsonl name', async () => {
    const p = await parseDataset(textSource('{"a": 1}\n\nsecond paragraph\n', 'x.jsonl'), { format: 'text' });
    expect(p.format).toBe('text');
    expect(p.records.map((r) => (r as TextRecord).text)).toEqual(['{"a": 1}', 'second paragraph']);
  });
});

describe('paragraphs, documents, split, packing', () => {
  it('paragraphs carry their first line and document; <|endoftext|> lines start a new document', () => {
    const { records, documents } = textRecords(['One', 'two', '', '', 'Three', '<|endoftext|>', 'Four  ', '', '\f', 'Five']);
    expect(documents).toBe(3);
    expect(records).toEqual([
      { kind: 'text', text: 'One\ntwo', line: 1, doc: 0 },
      { kind: 'text', text: 'Three', line: 5, doc: 0 },
      { kind: 'text', text: 'Four', line: 7, doc: 1 },
      { kind: 'text', text: 'Five', line: 10, doc: 2 },
    ]);
    expect(documentsOf(records)).toEqual(['One\ntwo\n\nThree', 'Four', 'Five']);
  });

  it('holds out whole documents when one fits in the share, else whole paragraphs; seeded; order kept', () => {
    const docs = textRecords(shipsLog({ voyages: 10, entries: 3 }).split('\n')).records;
    const s = splitText(docs, { valFraction: 0.1, seed: 1 });
    expect(s.by).toBe('document');
    expect(new Set(s.val.map((r) => r.doc)).size).toBe(1);
    const heldDoc = s.val[0]!.doc;
    expect(s.train.some((r) => r.doc === heldDoc)).toBe(false);
    expect(s.val.length).toBe(docs.filter((r) => r.doc === heldDoc).length);
    expect(splitText(docs, { valFraction: 0.1, seed: 1 })).toEqual(s);
    expect(s.train.map((r) => r.line)).toEqual([...s.train.map((r) => r.line)].sort((a, b) => a - b));

    const one = textRecords(['a', '', 'b', '', 'c', '', 'd', '', 'e']).records;
    const p = splitText(one, { valFraction: 0.2, seed: 3 });
    expect(p.by).toBe('paragraph');
    expect(p.val.length).toBe(1);
    expect(p.train.length + p.val.length).toBe(5);
    expect(splitText(one, { valFraction: 0, seed: 3 }).val).toEqual([]);
  });

  it('windows of seqLen inputs: targets are the stream shifted by one, every token after the first trained once', () => {
    const stream = Array.from({ length: 23 }, (_, i) => 100 + i);
    const w = packWindows(stream, 8);
    expect(w.map((x) => x.input.length)).toEqual([8, 8, 6]);
    expect(w.flatMap((x) => x.target)).toEqual(stream.slice(1));
    expect(w.flatMap((x) => x.input)).toEqual(stream.slice(0, -1));
    expect(w.every((x) => x.weight.every((v) => v === 1) && x.weight.length === x.input.length)).toBe(true);
    expect(w[1]!.input[0]).toBe(w[0]!.target[7]);
  });

  it('documents are tokenized with BOS and end with EOS', () => {
    const tk = charTokenizer();
    const recs: TextRecord[] = [
      { kind: 'text', text: 'ab', line: 1, doc: 0 },
      { kind: 'text', text: 'c', line: 3, doc: 0 },
      { kind: 'text', text: 'xy', line: 5, doc: 1 },
    ];
    const w = packText(tk, recs, 100);
    expect(w).toHaveLength(1);
    const full = [...w[0]!.input, w[0]!.target.at(-1)!];
    expect(full).toEqual([CHAR.bos, ...tk.encode('ab\n\nc', { addBos: false }), CHAR.eos, CHAR.bos, ...tk.encode('xy', { addBos: false }), CHAR.eos]);
  });

  it('the opening Compare continues: the first words, at most half', () => {
    expect(textOpening({ kind: 'text', text: 'Day 3. Wind from the east, force 2. Course 120.', line: 1, doc: 0 }, 4)).toEqual({ opening: 'Day 3. Wind from', rest: ' the east, force 2. Course 120.' });
    expect(textOpening({ kind: 'text', text: 'two words', line: 1, doc: 0 }).opening).toBe('two');
  });
});

describe('the doctor on plain text', () => {
  it('reports characters, tokens, windows, documents, paragraphs and the held-out share', async () => {
    const text = shipsLog({ voyages: 10, entries: 4 });
    const ins = await inspectDataset(textSource(text, 'log.txt'), { tokenizer: charTokenizer(), maxSeqLen: 64, valFraction: 0.1, seed: 0 });
    const r = ins.report;
    expect(r.format).toBe('text');
    expect(r.errorCount).toBe(0);
    expect(r.kinds.text).toBe(10 * 6);
    const t = r.text!;
    expect(t.documents).toBe(10);
    expect(t.paragraphs).toBe(60);
    expect(t.split.by).toBe('document');
    expect(t.split.val.documents).toBe(1);
    // Character tokenizer: one token per character, plus BOS and EOS per document.
    const trainChars = documentsOf(ins.train as TextRecord[]).join('').length;
    expect(t.split.train.tokens).toBe(trainChars + 2 * 9);
    expect(t.tokens).toBe(t.characters + 2 * 10);
    expect(t.windows!.train).toBe(Math.ceil((t.split.train.tokens! - 1) / 64));
    expect(t.split.share).toBeCloseTo(t.split.val.tokens! / t.tokens!, 10);
    expect(r.split).toMatchObject({ train: 54, val: 6, source: 'split' });
    expect(r.tokens!.lossOn).toBe('all');
    expect(r.tokens!.trainedTokensPerEpoch).toBe(t.split.train.tokens! - 1);
    expect(ins.encoder!.stop.stopTokenId).toBe(CHAR.eos);
  });

  it('reports an empty file, binary data and invalid UTF-8 with the line', async () => {
    const empty = await inspectDataset(textSource('\n \n\n', 'e.txt'));
    expect(empty.report.errors.map((e) => e.code)).toEqual(['empty-file']);
    const bytes = new Uint8Array([...enc('good line\n\nbad '), 0xe9, ...enc('t\u00e9\n\nok\n'), 0, 1, 2, ...enc('\n\n' + 'more text '.repeat(15) + '\n')]);
    const r = (await inspectDataset(bytesSource(bytes, 'n.txt'))).report;
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([
      [3, 'invalid-utf8'],
      [6, 'unreadable'],
    ]);
    expect(r.errors[0]!.message).toMatch(/byte 0xE9/);
    expect(r.text!.paragraphs).toBe(3);
    // Mostly NUL bytes: not text at all.
    expect((await inspectDataset(bytesSource(new Uint8Array(64), 'z.txt'))).report.errors[0]!.message).toMatch(/binary/);
  });
});

describe('several text files dropped at once', () => {
  it('become one dataset, one document per file', async () => {
    const a = new File(['Alpha one.\n\nAlpha two.\n'], 'a.txt');
    const b = new File(['Beta.'], 'b.md');
    expect(joinTextFiles([a])).toBeNull();
    expect(joinTextFiles([a, new File(['{}'], 'c.jsonl')])).toBeNull();
    const joined = joinTextFiles([a, b])!;
    expect(joined.name).toBe('2 text files (a.txt, b.md).txt');
    const r = (await inspectDataset(bytesSource(new Uint8Array(await joined.arrayBuffer()), joined.name))).report;
    expect(r.format).toBe('text');
    expect([r.text!.documents, r.text!.paragraphs]).toEqual([2, 3]);
  });
});
