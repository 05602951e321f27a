// Validation: every problem is reported with the line where its record starts and a clear message,
// and never stops the rest of the file from loading.
import { describe, expect, it } from 'vitest';
import { inspectDataset } from './doctor';
import { IssueLog } from './issues';
import { describeJsonError, parseDataset } from './parse';
import { bytesSource, textSource } from './source';
import { charTokenizer } from '../testing/tokenizers';
import { checkOverlap } from './validate';

const parse = (text: string, name = 'd.jsonl') => parseDataset(textSource(text, name));
const issues = (r: { issues: IssueLog }) => [...r.issues.summary().errors, ...r.issues.summary().warnings].map((i) => [i.line, i.severity, i.code, i.message]);
const pc = (p: string, c: string) => JSON.stringify({ prompt: p, completion: c });
const chat = (...m: [string, unknown][]) => JSON.stringify({ messages: m.map(([role, content]) => ({ role, content })) });

describe('record problems, with their lines', () => {
  it('invalid JSON lines, trailing commas, wrong types, missing and empty fields', async () => {
    const text = [
      pc('ok', 'fine'), // 1
      '{"prompt": "a", "completion": "b",}', // 2 trailing comma
      '{"prompt": "a" "completion": "b"}', // 3 missing comma
      '{"prompt": "a", "completion": 3}', // 4 wrong type
      '{"prompt": "a"}', // 5 missing completion
      pc('a', '   '), // 6 empty completion
      '["prompt", "completion"]', // 7 not an object
      '{"prompt": "unterminated', // 8
      pc('', 'no prompt'), // 9 empty prompt: allowed, warned
      pc('ok2', 'fine2'), // 10
    ].join('\n') + '\n';
    const r = await parse(text);
    expect(r.total).toBe(10);
    expect(r.records.map((x) => x.line)).toEqual([1, 9, 10]);
    expect(issues(r)).toEqual([
      [2, 'error', 'trailing-comma', 'invalid JSON: trailing comma before "}" (column 34)'],
      [3, 'error', 'invalid-json', expect.stringMatching(/^invalid JSON: .* \(column 16\)$/)],
      [4, 'error', 'wrong-type', '"completion" must be a string, got a number'],
      [5, 'error', 'missing-field', 'missing field "completion"'],
      [6, 'error', 'empty-field', '"completion" is empty'],
      [7, 'error', 'not-object', 'expected a JSON object, got an array'],
      [8, 'error', 'invalid-json', expect.stringMatching(/^invalid JSON: the record ends early/)],
      [9, 'warning', 'empty-field', '"prompt" is empty: the model learns the completion with no context'],
    ]);
    expect(r.issues.errors[0]!.snippet).toBe('{"prompt": "a", "completion": "b",}');
  });

  it('explains JSON errors with line and column inside multi-line records', () => {
    const text = '{\n  "a": 1,\n}';
    expect(describeJsonError(text, (() => { try { JSON.parse(text); } catch (e) { return e; } })(), 40)).toEqual({ code: 'trailing-comma', message: 'invalid JSON: trailing comma before "}" (line 41, column 9)' });
  });

  it('a trailing comma at the end of a JSON array is reported at its line; the records still load', async () => {
    const text = '[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c", "completion": "d"},\n]\n';
    const r = await parse(text, 'd.json');
    expect(r.records.map((x) => x.line)).toEqual([2, 3]);
    expect(issues(r)).toEqual([[3, 'error', 'trailing-comma', expect.stringContaining('trailing comma after the last record')]]);
  });

  it('a broken record inside a JSON array is one error; its neighbours load', async () => {
    const text = '[\n {"prompt": "a", "completion": "b"},\n {"prompt": "x",\n  "completion": "y",},\n {"prompt": "c", "completion": "d"}\n]';
    const r = await parse(text, 'd.json');
    expect(r.total).toBe(3);
    expect(r.records.map((x) => x.line)).toEqual([2, 5]);
    expect(issues(r)).toEqual([[3, 'error', 'trailing-comma', 'invalid JSON: trailing comma before "}" (line 4, column 20)']]);
  });

  it('chat problems: unknown roles, wrong types, no user, no assistant, ending on a user turn', async () => {
    const text = [
      chat(['user', 'hi'], ['assistant', 'hello']), // 1 ok
      chat(['user', 'hi'], ['robot', 'beep']), // 2 unknown role
      chat(['system', 's'], ['assistant', 'a']), // 3 no user
      chat(['user', 'only']), // 4 no assistant
      chat(['user', 'q'], ['assistant', 'a'], ['user', 'dangling']), // 5 ends on user: trimmed, kept
      chat(['user', 'q'], ['assistant', 42]), // 6 wrong type
      chat(['user', ''], ['assistant', 'a']), // 7 empty user
      chat(['system', ''], ['user', 'q2'], ['assistant', 'a']), // 8 empty system: dropped
      JSON.stringify({ messages: 'nope' }), // 9
      JSON.stringify({ messages: [{ content: 'no role' }] }), // 10
    ].join('\n') + '\n';
    const r = await parse(text);
    expect(r.format).toBe('openai-chat-jsonl');
    expect(r.records.map((x) => x.line)).toEqual([1, 5, 8]);
    expect(issues(r)).toEqual([
      [2, 'error', 'unknown-role', 'message 2 has unknown role "robot" (known: system, user, assistant, tool; ShareGPT human, gpt, function_call, observation)'],
      [3, 'error', 'no-user', 'no user message (only system and assistant)'],
      [4, 'error', 'no-assistant', 'no assistant message: nothing to learn'],
      [6, 'error', 'wrong-type', 'message 2 (assistant): "content" must be a string, got a number'],
      [7, 'error', 'empty-field', 'message 1 (user) is empty'],
      [9, 'error', 'wrong-type', '"messages" must be a list of messages, got a string'],
      [10, 'error', 'missing-field', 'message 1 has no "role" (or "from")'],
      [5, 'warning', 'ends-on-user', 'the conversation ends on a user turn: nothing to learn after it (1 trailing turn dropped)'],
      [8, 'warning', 'empty-field', 'message 1 (system) is empty: dropped'],
    ].sort((a, b) => (a[1] === b[1] ? (a[0] as number) - (b[0] as number) : a[1] === 'error' ? -1 : 1)));
    const trimmed = r.records.find((x) => x.line === 5)!;
    expect(trimmed.kind === 'chat' && trimmed.messages.map((m) => m.content)).toEqual(['q', 'a']);
  });

  it('invalid UTF-8 (Latin-1 bytes) is reported on its line; the other lines load', async () => {
    const good = new TextEncoder().encode(pc('caf\u00e9', 'ok') + '\n');
    const latin1 = Uint8Array.from([...new TextEncoder().encode('{"prompt": "caf'), 0xe9, ...new TextEncoder().encode('", "completion": "x"}\n')]);
    const good2 = new TextEncoder().encode(pc('tea', 'ok') + '\n');
    const bytes = Uint8Array.from([...good, ...latin1, ...good2]);
    const r = await parseDataset(bytesSource(bytes, 'd.jsonl'));
    expect(r.records.map((x) => x.line)).toEqual([1, 3]);
    expect(issues(r)).toEqual([[2, 'error', 'invalid-utf8', 'invalid UTF-8 (byte 0xE9 at byte 16 of the record; is the file Latin-1/Windows-1252? save it as UTF-8)']]);
    expect(r.issues.errors[0]!.snippet).toBe('{"prompt": "caf\ufffd", "completion": "x"}');
  });

  it('duplicates point at the first occurrence; the same prompt with another answer is flagged too', async () => {
    const text = [pc('a', '1'), pc('b', '2'), pc('a', '1'), pc('a', '3'), pc('a', '1')].join('\n') + '\n';
    const r = await parse(text);
    expect(r.records).toHaveLength(5);
    expect(r.issues.warnings.map((w) => [w.line, w.code, w.firstLine, w.message])).toEqual([
      [3, 'duplicate', 1, 'duplicate of the record on line 1'],
      [4, 'duplicate-prompt', 1, 'same prompt as line 1, with a different answer'],
      [5, 'duplicate', 1, 'duplicate of the record on line 1'],
    ]);
  });

  it('CSV rows: wrong field counts and unterminated quotes, at the physical line of the row', async () => {
    const text = 'prompt,completion\na,"b\nc"\nshort\nd,e,f\n"open,x\n';
    const r = await parse(text, 'd.csv');
    expect(r.records).toEqual([{ kind: 'pair', prompt: 'a', completion: 'b\nc', line: 2 }]);
    expect(issues(r)).toEqual([
      [4, 'error', 'csv-field-count', 'row has 1 field, the header has 2'],
      [5, 'error', 'csv-field-count', 'row has 3 fields, the header has 2'],
      [6, 'error', 'csv-quotes', expect.stringContaining('unterminated quoted field')],
    ]);
  });

  it('lists the first 1000 problems and counts the rest', async () => {
    const text = Array.from({ length: 1500 }, (_, i) => (i % 2 ? pc('p' + i, 'c') : '{bad')).join('\n');
    const r = await parse(text);
    const s = r.issues.summary();
    expect(s.errorCount).toBe(750);
    expect(s.errors).toHaveLength(750);
    const many = await parse(Array.from({ length: 1200 }, () => '{bad').join('\n'));
    const m = many.issues.summary();
    expect([m.errorCount, m.errors.length, m.errorsOmitted]).toEqual([1200, 1000, 200]);
    expect(m.errors[999]!.line).toBe(1000);
  });
});

describe('checks across files and with a tokenizer', () => {
  it('train/validation overlap is reported on the validation lines', async () => {
    const train = await parse([pc('a', '1'), pc('b', '2'), pc('c', '3')].join('\n'));
    const val = await parse([pc('x', '9'), pc('b', '2'), pc('c', 'other')].join('\n'));
    const log = new IssueLog();
    expect(checkOverlap(train.records, val.records, log)).toBe(2);
    expect(log.warnings.map((w) => [w.line, w.code, w.firstLine])).toEqual([
      [2, 'overlap', 2],
      [3, 'overlap', 3],
    ]);
    const res = await inspectDataset(textSource([pc('a', '1'), pc('b', '2')].join('\n')), { validation: textSource(pc('a', '1') + '\n', 'val.jsonl') });
    expect(res.report.validation?.overlap).toBe(1);
    expect(res.report.split).toMatchObject({ train: 2, val: 1, source: 'file' });
  });

  it('examples longer than the max sequence length: truncated prompt (warning) or dropped (error), with token counts', async () => {
    const tk = charTokenizer();
    // Plain format: [BOS] prompt "\nAnswer:" " " completion [END]; char tokenizer = 1 token per character.
    const text = [pc('short', 'ok'), pc('x'.repeat(40), 'ok'), pc('p', 'y'.repeat(40))].join('\n') + '\n';
    const res = await inspectDataset(textSource(text), { tokenizer: tk, maxSeqLen: 30 });
    // line 2: 1 + 40 + 8 + 1 + 2 + 1 = 53 tokens; 31 fit (30 inputs + 1 target): 22 cut from the prompt.
    expect(res.report.warnings.map((w) => [w.line, w.code, w.message])).toEqual([[2, 'truncated', 'the example is 53 tokens, more than the max sequence length 30 (+1): 22 tokens cut from the left of the prompt']]);
    // line 3: the completion alone (space + 40 + end) does not fit.
    expect(res.report.errors.map((e) => [e.line, e.code, e.message])).toEqual([[3, 'too-long', 'the example is 52 tokens and its last reply alone is 42 (with the end token): more than the max sequence length 30 allows, even with the whole prompt cut']]);
    expect(res.report.records).toBe(2);
    expect(res.records.map((r) => r.line)).toEqual([1, 2]);
    expect(res.report.tokens).toMatchObject({ truncated: 1, tokensCut: 22, examples: 2 });
  });
});
