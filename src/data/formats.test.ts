// Format detection and parsing on small inline files: every schema, in JSONL, JSON arrays and CSV/TSV,
// with BOMs, CRLF, blank lines, quoted CSV newlines, overrides, and the same results whatever the chunking.
import { describe, expect, it } from 'vitest';
import { classify, parseFormatOverride, parseTranscript } from './formats';
import { parseDataset, sniffContainer, type ParseOptions } from './parse';
import { bytesSource, textSource } from './source';
import type { DataRecord } from './types';

const enc = (s: string) => new TextEncoder().encode(s);
const parse = (text: string, name: string, opts: ParseOptions = {}) => parseDataset(textSource(text, name), opts);
const lines = (...objs: unknown[]) => objs.map((o) => JSON.stringify(o)).join('\n') + '\n';
/** Same file, delivered one byte per chunk: splitting must not depend on chunk boundaries. */
function oneByteChunks(bytes: Uint8Array, name: string) {
  return {
    name,
    size: bytes.byteLength,
    stream: () => {
      let i = 0;
      return new ReadableStream<Uint8Array>({
        pull(c) {
          if (i >= bytes.byteLength) c.close();
          else c.enqueue(bytes.slice(i, ++i));
        },
      });
    },
  };
}
const strip = (rs: DataRecord[]) => rs.map((r) => JSON.parse(JSON.stringify(r)) as DataRecord);

describe('schema detection, one record of each', () => {
  const cases: [string, unknown, string, Partial<DataRecord>][] = [
    ['prompt/completion', { prompt: 'p', completion: 'c' }, 'prompt-completion-jsonl', { kind: 'pair', prompt: 'p', completion: 'c' }],
    ['input/output', { input: 'i', output: 'o' }, 'input-output-jsonl', { kind: 'pair', prompt: 'i', completion: 'o' }],
    ['alpaca', { instruction: 'Add', input: '2 2', output: '4' }, 'alpaca-jsonl', { kind: 'pair', prompt: 'Add\n2 2', completion: '4' }],
    ['alpaca, empty input', { instruction: 'Hi', input: '', output: 'Hello' }, 'alpaca-jsonl', { kind: 'pair', prompt: 'Hi', completion: 'Hello' }],
    [
      'openai chat, multi-turn',
      { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'u2' }, { role: 'assistant', content: 'a2' }] },
      'openai-chat-jsonl',
      { kind: 'chat', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'u1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'u2' }, { role: 'assistant', content: 'a2' }] },
    ],
    [
      'sharegpt human/gpt/system',
      { conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] },
      'sharegpt-jsonl',
      { kind: 'chat', messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] },
    ],
    ['sharegpt user/assistant', { conversations: [{ from: 'user', value: 'q' }, { from: 'assistant', value: 'a' }] }, 'sharegpt-jsonl', { kind: 'chat', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }],
    ['dpo strings', { prompt: 'p', chosen: 'good', rejected: 'bad' }, 'preference-jsonl', { kind: 'preference', prompt: [{ role: 'user', content: 'p' }], chosen: 'good', rejected: 'bad' }],
    [
      'dpo message lists',
      { chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'good' }], rejected: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'bad' }] },
      'preference-jsonl',
      { kind: 'preference', prompt: [{ role: 'user', content: 'q' }], chosen: 'good', rejected: 'bad' },
    ],
    [
      'hh-rlhf transcripts',
      { chosen: '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: see you', rejected: '\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: go away' },
      'preference-jsonl',
      { kind: 'preference', prompt: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'bye' }], chosen: 'see you', rejected: 'go away' },
    ],
    [
      'sharegpt preference',
      { conversations: [{ from: 'human', value: 'q' }], chosen: { from: 'gpt', value: 'good' }, rejected: { from: 'gpt', value: 'bad' } },
      'preference-jsonl',
      { kind: 'preference', prompt: [{ role: 'user', content: 'q' }], chosen: 'good', rejected: 'bad' },
    ],
  ];
  for (const [name, obj, format, record] of cases) {
    it(`${name} -> ${format}`, async () => {
      const r = await parse(lines(obj), 'd.jsonl');
      expect(r.format).toBe(format);
      expect(r.total).toBe(1);
      expect(r.issues.errorCount).toBe(0);
      expect(r.records).toEqual([{ ...record, line: 1 }]);
    });
  }

  it('the same records as a JSON array, pretty-printed: lines are where each record starts', async () => {
    const text = JSON.stringify([{ instruction: 'a', input: '', output: 'b' }, { instruction: 'c', input: 'd', output: 'e' }], null, 2);
    const r = await parse(text, 'd.json');
    expect(r.format).toBe('alpaca-json');
    expect(r.records.map((x) => x.line)).toEqual([2, 7]);
    expect(r.issues.errorCount).toBe(0);
  });

  it('a single pretty-printed object and objects back to back are records too', async () => {
    const one = await parse(JSON.stringify({ prompt: 'p', completion: 'c' }, null, 2), 'one.json');
    expect(one.format).toBe('prompt-completion-json');
    expect(one.records).toEqual([{ kind: 'pair', prompt: 'p', completion: 'c', line: 1 }]);
    const seq = await parse(JSON.stringify({ prompt: 'p', completion: 'c' }, null, 2) + '\n' + JSON.stringify({ prompt: 'q', completion: 'd' }, null, 2), 'seq.json');
    expect(seq.records.map((x) => [x.line, x.kind === 'pair' && x.prompt])).toEqual([
      [1, 'p'],
      [5, 'q'],
    ]);
  });

  it('a top-level object wrapping the records ({"data": [...]}) is unwrapped, with real line numbers', async () => {
    const text = JSON.stringify({ version: 1, data: [{ prompt: 'p', completion: 'c' }, { prompt: 'q', completion: 'd' }] }, null, 2);
    const r = await parse(text, 'wrapped.json');
    expect(r.total).toBe(2);
    expect(r.records.map((x) => x.line)).toEqual([4, 8]);
    expect(r.issues.warnings.map((w) => w.message)).toContain('the file is one JSON object: records read from its "data" array');
  });

  it('classify and transcripts', () => {
    expect(classify({ foo: 1 })).toBeNull();
    expect(classify({ instruction: 'x', output: 'y' })).toBe('alpaca');
    expect(parseTranscript('plain text')).toBeNull();
    expect(parseTranscript('\n\nHuman: a\n\nAssistant: b')).toEqual([
      { role: 'user', content: 'a' },
      { role: 'assistant', content: 'b' },
    ]);
  });
});

describe('containers and text encoding details', () => {
  it('sniffs containers from the first bytes and the name', () => {
    const c = (s: string, name = 'x') => sniffContainer(enc(s), name);
    expect(c('[{"a":1}]')).toEqual({ container: 'json' });
    expect(c('{"a":1}\n{"a":2}')).toEqual({ container: 'jsonl' });
    expect(c('{\n  "a": 1\n}')).toEqual({ container: 'json' });
    expect(c('\ufeff{"a":1}')).toEqual({ container: 'jsonl' });
    expect(c('a,b\n1,2')).toEqual({ container: 'csv' });
    expect(c('a\tb\n1\t2')).toEqual({ container: 'tsv' });
    expect(c('a;b\n1;2', 'x.csv')).toEqual({ container: 'csv' });
    expect(c('   ')).toEqual({ error: 'the file is empty' });
    expect(sniffContainer(Uint8Array.from([0x1f, 0x8b, 8, 0]), 'x.gz')).toHaveProperty('error');
  });

  it('BOM + CRLF + blank lines + trailing whitespace: every record, warnings for the oddities', async () => {
    const text = '\ufeff{"prompt": "a", "completion": "b"}  \r\n\r\n{"prompt": "c", "completion": "d"}\t\r\n   \r\n{"prompt": "e", "completion": "f"}\r\n';
    const r = await parse(text, 'd.jsonl');
    expect(r.records.map((x) => x.line)).toEqual([1, 3, 5]);
    expect(r.total).toBe(3);
    expect(r.issues.errorCount).toBe(0);
    const w = r.issues.warnings.map((x) => [x.line, x.code]);
    expect(w).toEqual(
      expect.arrayContaining([
        [1, 'bom'],
        [1, 'crlf'],
        [2, 'blank-line'],
        [4, 'blank-line'],
      ]),
    );
    expect(r.records[0]).toEqual({ kind: 'pair', prompt: 'a', completion: 'b', line: 1 });
  });

  it('a missing final newline is read and mentioned', async () => {
    const r = await parse('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}', 'd.jsonl');
    expect(r.records).toHaveLength(2);
    expect(r.issues.warnings.map((x) => [x.line, x.code])).toEqual([[2, 'no-final-newline']]);
  });

  it('CSV: quoted commas, doubled quotes and newlines inside quotes; line = where the row starts', async () => {
    const text = 'prompt,completion\n"Hello, world","He said ""hi"""\n"multi\nline\nprompt",done\nplain,"two\r\nlines"\n';
    const r = await parse(text, 'd.csv');
    expect(r.format).toBe('csv');
    expect(r.table?.mappingSource).toBe('auto');
    expect(r.records).toEqual([
      { kind: 'pair', prompt: 'Hello, world', completion: 'He said "hi"', line: 2 },
      { kind: 'pair', prompt: 'multi\nline\nprompt', completion: 'done', line: 3 },
      { kind: 'pair', prompt: 'plain', completion: 'two\r\nlines', line: 6 },
    ]);
  });

  it('CSV with BOM and CRLF; TSV; header names are trimmed and matched without case', async () => {
    const csv = await parse('\ufeffQuestion , Answer\r\nq1,a1\r\n"q,2","a\r\n2"\r\n', 'd.csv');
    expect(csv.table?.columns).toEqual(['Question', 'Answer']);
    expect(csv.records.map((x) => [x.line, x.kind === 'pair' && x.prompt, x.kind === 'pair' && x.completion])).toEqual([
      [2, 'q1', 'a1'],
      [3, 'q,2', 'a\r\n2'],
    ]);
    expect(csv.issues.warnings.map((w) => w.code).sort()).toEqual(['bom', 'crlf']);
    const tsv = await parse('input\toutput\nx, y\t"z\tw"\n', 'd.tsv');
    expect(tsv.format).toBe('tsv');
    expect(tsv.records).toEqual([{ kind: 'pair', prompt: 'x, y', completion: 'z\tw', line: 2 }]);
  });

  it('CSV columns that are not obvious: candidates and a suggestion, no records until a mapping is given', async () => {
    const text = 'Category,Question,Best Answer,Source\nfood,Why?,Because.,x\nfood,How?,Like so.,y\n';
    const r = await parse(text, 'q.csv');
    expect(r.total).toBe(2);
    expect(r.records).toHaveLength(0);
    expect(r.table?.suggested).toEqual({ prompt: ['Question'], completion: 'Best Answer' });
    expect(r.table?.candidates.prompt[0]).toBe('Question');
    expect(r.issues.errors[0]).toMatchObject({ line: 0, code: 'csv-mapping' });
    const m = await parse(text, 'q.csv', { columns: { prompt: ['Category', 'Question'], completion: 'Best Answer' } });
    expect(m.records).toEqual([
      { kind: 'pair', prompt: 'food\nWhy?', completion: 'Because.', line: 2 },
      { kind: 'pair', prompt: 'food\nHow?', completion: 'Like so.', line: 3 },
    ]);
    const bad = await parse(text, 'q.csv', { columns: { prompt: ['Nope'], completion: 'Best Answer' } });
    expect(bad.issues.errors[0]!.message).toContain('no column named "Nope"');
  });

  it('the user overrides the detected format', async () => {
    const text = lines({ prompt: 'p', completion: 'c', input: 'i', output: 'o' });
    expect((await parse(text, 'd.jsonl')).format).toBe('prompt-completion-jsonl');
    const forced = await parse(text, 'd.jsonl', { format: 'input-output' });
    expect(forced.format).toBe('input-output-jsonl');
    expect(forced.detected.container).toBe('jsonl');
    expect(forced.records[0]).toEqual({ kind: 'pair', prompt: 'i', completion: 'o', line: 1 });
    // Forcing a schema the records do not have: every record reports what it lacks.
    const wrong = await parse(lines({ prompt: 'p', completion: 'c' }), 'd.jsonl', { format: 'openai-chat' });
    expect(wrong.records).toHaveLength(0);
    expect(wrong.issues.errors[0]!.message).toBe('missing field "messages"');
    expect(parseFormatOverride('alpaca-json')).toEqual({ schema: 'alpaca', container: 'json' });
    expect(parseFormatOverride('dpo')).toEqual({ schema: 'preference' });
    expect(() => parseFormatOverride('parquet')).toThrow(/unknown format/);
  });

  it('mixed shapes in one file are read, with one warning', async () => {
    const text = lines({ prompt: 'a', completion: 'b' }, { prompt: 'c', completion: 'd' }, { instruction: 'e', output: 'f' });
    const r = await parse(text, 'd.jsonl');
    expect(r.records).toHaveLength(3);
    expect(r.issues.warnings.map((w) => [w.line, w.code])).toEqual([[3, 'mixed-shape']]);
  });

  it('gives the same records and issues whatever the chunk boundaries (1-byte chunks)', async () => {
    const files: [string, string][] = [
      ['a.jsonl', '\ufeff' + lines({ prompt: 'é😀', completion: 'x' }, { prompt: 'b', completion: 'y' }).replace(/\n/g, '\r\n') + '{"prompt": 1,}\n'],
      ['a.json', '\ufeff[\n ' + JSON.stringify({ prompt: 'a]}"\\', completion: 'b' }) + ',\n' + JSON.stringify({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] }) + ',\n]'],
      ['a.csv', '\ufeffprompt,completion\r\n"a\r\nb","c,""d"""\r\ne,f\r\n'],
    ];
    for (const [name, text] of files) {
      const bytes = enc(text);
      const whole = await parseDataset(bytesSource(bytes, name));
      const tiny = await parseDataset(oneByteChunks(bytes, name));
      expect(strip(tiny.records)).toEqual(strip(whole.records));
      expect(tiny.issues.summary()).toEqual(whole.issues.summary());
      expect(whole.records.length).toBeGreaterThan(1);
    }
  });
});
