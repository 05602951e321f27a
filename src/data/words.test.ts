// The doctor counts records, not reasons (src/data/issues.ts addRecord), and says what it found in plain
// words first (src/data/words.ts, formatWords in ./formats); the ids and figures stay in the report.
import { describe, expect, it } from 'vitest';
import { inspectDataset } from './doctor';
import { formatWords } from './formats';
import { IssueLog, joinReasons } from './issues';
import { parseDataset } from './parse';
import { textSource } from './source';
import { charTokenizer } from '../testing/tokenizers';
import { promptFormatNote, recordNoun, skippedRecords, stopDetails, stopWords } from './words';
import type { StopTokenChoice } from './stop-token';

const pc = (p: string, c: string) => JSON.stringify({ prompt: p, completion: c });

/** 6 records: line 2 lacks both fields (misspelled keys), line 4 lacks its completion. */
const TWO_BROKEN = [pc('one', '1'), '{"promt": "two", "complettion": "2"}', pc('three', '3'), '{"prompt": "four"}', pc('five', '5'), pc('six', '6')].join('\n') + '\n';

describe('counting records, not reasons', () => {
  it('a line missing two fields is one error with both reasons; 2 broken lines are 2 errors', async () => {
    const r = await parseDataset(textSource(TWO_BROKEN, 'two.jsonl'));
    const s = r.issues.summary();
    expect(r.total).toBe(6);
    expect(r.records.map((x) => x.line)).toEqual([1, 3, 5, 6]);
    // Before: 3 errors (line 2 counted once per missing field).
    expect(s.errorCount).toBe(2);
    expect(s.errors.map((e) => [e.line, e.code, e.message])).toEqual([
      [2, 'missing-field', 'missing fields "prompt" and "completion"'],
      [4, 'missing-field', 'missing field "completion"'],
    ]);
    expect(s.errors[0]!.reasons).toEqual([
      { code: 'missing-field', message: 'missing field "prompt"' },
      { code: 'missing-field', message: 'missing field "completion"' },
    ]);
    expect(s.errors[1]!.reasons).toBeUndefined();
    expect(s.errors[0]!.snippet).toBe('{"promt": "two", "complettion": "2"}');
    // byCode counts records with the code.
    expect(s.byCode['missing-field']).toBe(2);
  });

  it('reasons of different kinds on one record stay on one line, each code counted once', async () => {
    // A chat whose second message has no role and whose third has unknown role: one record, one error.
    const bad = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { content: 'x' }, { role: 'robot', content: 'y' }] });
    const ok = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
    const r = await parseDataset(textSource([ok, bad, ok].join('\n') + '\n', 'chat.jsonl'));
    const s = r.issues.summary();
    expect(s.errorCount).toBe(1);
    expect(s.errors[0]!.line).toBe(2);
    expect(s.errors[0]!.message).toBe('message 2 has no "role" (or "from"); message 3 has unknown role "robot" (known: system, user, assistant, tool; ShareGPT human, gpt, function_call, observation)');
    expect(s.errors[0]!.reasons!.map((x) => x.code)).toEqual(['missing-field', 'unknown-role']);
    expect(s.byCode).toMatchObject({ 'missing-field': 1, 'unknown-role': 1 });
  });

  it('errors and warnings of one record are one issue each; the list cap counts issues', () => {
    const log = new IssueLog(1);
    log.addRecord(3, [
      { severity: 'error', code: 'wrong-type', message: '"prompt" must be a string, got a number' },
      { severity: 'warning', code: 'empty-field', message: 'the chosen reply is empty' },
      { severity: 'error', code: 'missing-field', message: 'missing field "completion"' },
      { severity: 'warning', code: 'empty-field', message: 'the rejected reply is empty' },
    ]);
    log.addRecord(7, [{ severity: 'error', code: 'empty-field', message: '"completion" is empty' }]);
    log.addRecord(8, []);
    const s = log.summary();
    expect([s.errorCount, s.warningCount, s.errorsOmitted]).toEqual([2, 1, 1]);
    expect(s.errors[0]!.message).toBe('"prompt" must be a string, got a number; missing field "completion"');
    expect(s.warnings[0]!.message).toBe('the chosen reply is empty; the rejected reply is empty');
    expect(s.byCode).toEqual({ 'wrong-type': 1, 'missing-field': 1, 'empty-field': 2 });
  });

  it('joinReasons names several missing fields once', () => {
    const m = (k: string) => ({ code: 'missing-field' as const, message: `missing field "${k}"` });
    expect(joinReasons([m('a'), m('b'), m('c')])).toBe('missing fields "a", "b" and "c"');
    expect(joinReasons([m('a'), { code: 'wrong-type', message: '"b" must be a string, got null' }])).toBe('missing field "a"; "b" must be a string, got null');
  });

  it('the doctor report counts skipped lines once each', async () => {
    const { report } = await inspectDataset(textSource(TWO_BROKEN, 'two.jsonl'), { tokenizer: charTokenizer(), maxSeqLen: 64, valFraction: 0.2 });
    expect([report.total, report.records, report.errorCount, skippedRecords(report)]).toEqual([6, 4, 2, 2]);
    expect(recordNoun('json', 1)).toBe('1 record');
    expect(recordNoun('csv', 3)).toBe('3 lines');
  });
});

describe('plain words', () => {
  it('formats', () => {
    expect(formatWords('jsonl', 'prompt-completion')).toBe('JSON Lines, prompt/completion pairs');
    expect(formatWords('json', 'alpaca')).toBe('JSON array, Alpaca instructions (instruction, input, output)');
    expect(formatWords('csv', 'table')).toBe('CSV table (comma-separated columns)');
    expect(formatWords('text', null)).toBe('Plain text');
    expect(formatWords('jsonl', null)).toBe('JSON Lines');
    expect(formatWords(null, null)).toBe('not recognized');
  });

  const base: StopTokenChoice = {
    stopTokenId: 2,
    stopStrings: [],
    kind: 'eos',
    reason: 'the model predicts its EOS token "</s>" (id 2) at the end of text (mean p = 0.0130): replies end with EOS',
    probabilities: { eos: 0.013, separator: 9e-6, newline: 0.1 },
    candidates: { eos: 2, separator: 1, newline: 14 },
    probes: 14,
  };

  it('the end of text: the good case says so first, the ids and probabilities are details', () => {
    const words = stopWords(base);
    expect(words).toBe("Replies will end with the model's end-of-text token, which it already uses to end text.");
    expect(words).not.toMatch(/id|p =|EOS|<\/s>/);
    expect(stopDetails(base)).toEqual([
      'Stop token: id 2.',
      'Mean probability the base model gives each right after 14 finished texts: end-of-text token (id 2) 0.0130, document separator (id 1) 9.0e-6, line break (id 14) 0.1000.',
      `Why: ${base.reason}.`,
    ]);
    expect(stopWords({ ...base, kind: 'separator', stopTokenId: 1 })).toMatch(/^Replies will end with the token this model puts between documents/);
    expect(stopWords({ ...base, kind: 'newline', stopTokenId: null, stopStrings: ['\n'] })).toMatch(/^Replies will end at the first line break: .*one line/);
    expect(stopWords({ ...base, kind: 'override', stopTokenId: null, stopStrings: ['###'] })).toBe('Replies will end with the text you chose.');
    expect(stopWords({ ...base, kind: 'default', probabilities: { eos: null, separator: null, newline: null } })).toMatch(/not yet checked against the model/);
    expect(stopWords({ ...base, kind: 'eos', probabilities: { eos: null, separator: null, newline: null } }, { plainText: true })).toMatch(/^Each document ends with the model's end-of-text token/);
    const noFigures = stopDetails({ ...base, kind: 'default', probabilities: { eos: null, separator: null, newline: null } });
    expect(noFigures).toHaveLength(2);
    expect(stopDetails({ ...base, kind: 'newline', stopTokenId: null, stopStrings: ['\n'] })[0]).toBe('Stop text: "\\n".');
  });

  it('the "Answer:" separator and the plain chat roles are explained where they appear', async () => {
    const { report } = await inspectDataset(textSource(pc('two plus two', '4') + '\n', 'a.jsonl'), { tokenizer: charTokenizer(), maxSeqLen: 64 });
    const note = promptFormatNote(report.tokens!.example);
    expect(note).toMatch(/^"Answer:" is not in your file: tabtune's plain prompt format \(\{prompt\}⏎Answer: \{completion\}\)/);
    const chat = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
    const { report: c } = await inspectDataset(textSource(chat + '\n', 'c.jsonl'), { tokenizer: charTokenizer(), maxSeqLen: 64 });
    expect(promptFormatNote(c.tokens!.example)).toMatch(/^"User:" and "Assistant:" are not in your file/);
    // A model with a chat template renders conversations with it: no plain-format words to explain.
    const { report: t } = await inspectDataset(textSource(chat + '\n', 'c.jsonl'), { tokenizer: charTokenizer({ chatTemplate: true }), maxSeqLen: 64 });
    expect(t.tokens!.format['chat-template']).toBe(1);
    expect(promptFormatNote(t.tokens!.example)).toBeNull();
    expect(promptFormatNote(null)).toBeNull();
  });
});
