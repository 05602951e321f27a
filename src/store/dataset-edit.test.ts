import { describe, expect, it } from 'vitest';
import { applyEdits, editableText, editsSummary, lineOf, nextVersionName, notEditable, recordLine, textLines, versionOf } from './dataset-edit';

const TEXT = '{"prompt":"a","completion":"1"}\r\n{"prompt":"b","completion":"2",}\n{"prompt":"c","completion":"9"}\n';

describe('fixing records of a JSONL dataset', () => {
  it('reads lines by number (CRLF or LF; a final newline makes no empty line)', () => {
    expect(textLines(TEXT)).toHaveLength(3);
    expect(lineOf(TEXT, 2)).toBe('{"prompt":"b","completion":"2",}');
    expect(lineOf(TEXT, 0)).toBeNull();
    expect(lineOf(TEXT, 4)).toBeNull();
    expect(textLines('')).toEqual(['']);
  });

  it('shows a valid record pretty-printed and a broken one as it is', () => {
    expect(editableText('{"prompt":"a","completion":"1"}')).toBe('{\n  "prompt": "a",\n  "completion": "1"\n}');
    expect(editableText('{"prompt":"b",}')).toBe('{"prompt":"b",}');
  });

  it('keeps an edited record as one compact line, and refuses what is not one JSON object with why', () => {
    expect(recordLine('{\n  "prompt": "b",\n  "completion": "2"\n}')).toEqual({ ok: true, line: '{"prompt":"b","completion":"2"}' });
    const bad = recordLine('{"prompt": "b",}');
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.problem).toMatch(/^Not valid JSON: /);
    expect(recordLine('[1, 2]')).toEqual({ ok: false, problem: expect.stringMatching(/one JSON object/) });
    expect(recordLine('  ')).toEqual({ ok: false, problem: expect.stringMatching(/empty/) });
  });

  it('applies edits and removals by line: the other lines stay byte for byte, LF endings and a final newline', () => {
    const out = applyEdits(TEXT, { 2: '{"prompt":"b","completion":"2"}', 3: null });
    expect(out).toBe('{"prompt":"a","completion":"1"}\n{"prompt":"b","completion":"2"}\n');
    expect(applyEdits(TEXT, {})).toBe(TEXT.replace('\r\n', '\n'));
    expect(applyEdits('{"a":1}\n', { 1: null })).toBe('');
    expect(editsSummary({ 3: null, 2: 'x' })).toBe('line 2 edited, line 3 removed');
    expect(editsSummary({})).toBeNull();
  });

  it('names versions: name.jsonl -> name.v2.jsonl -> name.v3.jsonl', () => {
    expect(nextVersionName('planted.jsonl')).toBe('planted.v2.jsonl');
    expect(nextVersionName('planted.v2.jsonl')).toBe('planted.v3.jsonl');
    expect(nextVersionName('notes')).toBe('notes.v2');
    expect(nextVersionName('my.data.v9.jsonl')).toBe('my.data.v10.jsonl');
    expect(versionOf('planted.jsonl')).toBe(1);
    expect(versionOf('planted.v3.jsonl')).toBe(3);
  });

  it('edits only JSONL training files, and says why not otherwise', () => {
    expect(notEditable('jsonl', false)).toBeNull();
    expect(notEditable(undefined, false)).toBeNull();
    expect(notEditable('csv', false)).toMatch(/only in JSONL files.*CSV/);
    expect(notEditable('jsonl', true)).toMatch(/separate validation file/);
  });
});
