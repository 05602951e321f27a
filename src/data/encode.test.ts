// Encoding records into {input, target, weight}: checked token by token on a character-level tokenizer
// (one token per character), then on a real one: the bundled tabtune-tiny's (byte-fallback BPE, 4096 tokens).
import { describe, expect, it } from 'vitest';
import { PLAIN_FORMAT, PLAIN_SEPARATOR, RecordEncoder, type StopSpec, type TrainingExample } from './encode';
import { renderExample } from './stats';
import { CHAR, charTokenizer, folderTokenizer } from '../testing/tokenizers';
import type { DataRecord, Message } from './types';
import { TINY_DIR } from '../testing/models';

/** id of one character in charTokenizer(). */
const c = (ch: string) => (ch === '\n' ? 4 : ch.charCodeAt(0) - 27);
const ids = (s: string) => [...s].map(c);
const BOS_STOP: StopSpec = { stopTokenId: CHAR.bos, stopStrings: [] };
const EOS_STOP: StopSpec = { stopTokenId: CHAR.eos, stopStrings: [] };
const pair = (prompt: string, completion: string, line = 1): DataRecord => ({ kind: 'pair', prompt, completion, line });
const chat = (...m: [Message['role'], string][]): DataRecord => ({ kind: 'chat', messages: m.map(([role, content]) => ({ role, content })), line: 7 });

function ok(e: ReturnType<RecordEncoder['encode']>): TrainingExample {
  if (!e.ok) throw new Error(`encode failed: ${e.message}`);
  return e.example;
}
/** The full sequence and, per token, whether it is trained (the first token never is). */
function unshift(ex: TrainingExample): { seq: number[]; trained: boolean[] } {
  expect(ex.target.length).toBe(ex.input.length);
  expect(ex.weight.length).toBe(ex.input.length);
  // target is input shifted by one.
  expect(ex.target.slice(0, -1)).toEqual(ex.input.slice(1));
  return { seq: [...ex.input, ex.target[ex.target.length - 1]!], trained: [false, ...ex.weight.map((w) => w === 1)] };
}

describe('plain format, character tokenizer', () => {
  const tk = charTokenizer();

  it('documents the format', () => {
    expect(PLAIN_SEPARATOR).toBe('\nAnswer:');
    expect(PLAIN_FORMAT).toBe('{prompt}\nAnswer: {completion}');
  });

  it('pair: BOS + prompt + separator untrained; " completion" + stop token trained', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 64, stop: BOS_STOP });
    const ex = ok(enc.encode(pair('hi', 'yo', 3)));
    const { seq, trained } = unshift(ex);
    expect(seq).toEqual([CHAR.bos, ...ids('hi\nAnswer: yo'), CHAR.bos]);
    expect(trained).toEqual([...Array(11).fill(false), true, true, true, true]); // ' ', 'y', 'o', END
    expect(ex.weight).toEqual([...Array(10).fill(0), 1, 1, 1, 1]);
    expect(ex).toMatchObject({ line: 3, truncated: 0, fullLength: 15, completionTokens: 4, promptTokens: 11, format: 'plain' });
    // The inference prompt is exactly the untrained prefix.
    expect(enc.promptIds({ prompt: 'hi' })).toEqual(seq.slice(0, 11));
    expect(enc.promptText({ prompt: 'hi' })).toBe('hi\nAnswer:');
  });

  it('a completion that starts with whitespace gets no extra space; loss on all tokens when asked', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 64, stop: BOS_STOP, lossOn: 'all' });
    const ex = ok(enc.encode(pair('q', ' no')));
    const { seq, trained } = unshift(ex);
    expect(seq).toEqual([CHAR.bos, ...ids('q\nAnswer: no'), CHAR.bos]);
    expect(trained).toEqual([false, ...Array(seq.length - 1).fill(true)]);
  });

  it('no stop token: the newline stop string is appended as text and trained', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 64, stop: { stopTokenId: null, stopStrings: ['\n'] } });
    const { seq, trained } = unshift(ok(enc.encode(pair('q', 'a'))));
    expect(seq).toEqual([CHAR.bos, ...ids('q\nAnswer: a\n')]);
    expect(trained.slice(-3)).toEqual([true, true, true]);
    expect(trained.filter(Boolean)).toHaveLength(3);
  });

  it('plain chat: role prefixes, every assistant reply + stop token trained, the rest not', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 128, stop: BOS_STOP, template: 'plain' });
    const ex = ok(enc.encode(chat(['system', 'S'], ['user', 'q'], ['assistant', 'a'], ['user', 'r'], ['assistant', 'b'])));
    const { seq, trained } = unshift(ex);
    const parts: [number[], boolean][] = [
      [[CHAR.bos], false],
      [ids('S\n\nUser: q\nAssistant:'), false],
      [[...ids(' a'), CHAR.bos], true],
      [ids('User: r\nAssistant:'), false],
      [[...ids(' b'), CHAR.bos], true],
    ];
    expect(seq).toEqual(parts.flatMap(([p]) => p));
    expect(trained).toEqual(parts.flatMap(([p, t]) => p.map(() => t)));
    expect(ex.line).toBe(7);
    // The generation prompt for the history is the same prefix.
    expect(enc.promptIds({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }, { role: 'user', content: 'r' }] })).toEqual(seq.slice(0, seq.length - 3));
  });

  it('an assistant turn with train: false (OpenAI weight 0) is not trained', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 128, stop: BOS_STOP, template: 'plain' });
    const r: DataRecord = { kind: 'chat', line: 1, messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', train: false }, { role: 'user', content: 'r' }, { role: 'assistant', content: 'b' }] };
    const { seq, trained } = unshift(ok(enc.encode(r)));
    expect(seq.filter((_, i) => trained[i])).toEqual([...ids(' b'), CHAR.bos]);
  });
});

describe('chat template, character tokenizer', () => {
  const tk = charTokenizer({ chatTemplate: true });
  const conv = chat(['system', 'S'], ['user', 'q'], ['assistant', 'a'], ['user', 'r'], ['assistant', 'b']);

  it('renders turn by turn: assistant replies with their end marker trained; EOS replaced by the stop token', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 128, stop: BOS_STOP });
    const ex = ok(enc.encode(conv));
    expect(ex.format).toBe('chat-template');
    const { seq, trained } = unshift(ex);
    // Template: <s> S:S\n U:q\n A: a</s> U:r\n A: b</s>; the model's stop token is BOS, so </s> becomes <s>.
    const parts: [number[], boolean][] = [
      [[CHAR.bos, ...ids('S:S\nU:q\nA:')], false],
      [[...ids('a'), CHAR.bos], true],
      [ids('U:r\nA:'), false],
      [[...ids('b'), CHAR.bos], true],
    ];
    expect(seq).toEqual(parts.flatMap(([p]) => p));
    expect(trained).toEqual(parts.flatMap(([p, t]) => p.map(() => t)));
    expect(enc.promptIds({ messages: conv.kind === 'chat' ? conv.messages.slice(0, 4) : [] })).toEqual(seq.slice(0, seq.length - 2));
  });

  it('keeps the template end marker when it is the stop token; adds the stop when the reply has none', () => {
    const same = unshift(ok(new RecordEncoder(tk, { maxSeqLen: 128, stop: EOS_STOP }).encode(conv)));
    expect(same.seq.filter((_, i) => same.trained[i])).toEqual([c('a'), CHAR.eos, c('b'), CHAR.eos]);
    const nl = unshift(ok(new RecordEncoder(tk, { maxSeqLen: 128, stop: { stopTokenId: null, stopStrings: ['\n'] } }).encode(conv)));
    expect(nl.seq.filter((_, i) => nl.trained[i])).toEqual([c('a'), CHAR.eos, c('\n'), c('b'), CHAR.eos, c('\n')]);
  });

  it('pairs use the plain format even when the model has a chat template (auto)', () => {
    expect(ok(new RecordEncoder(tk, { maxSeqLen: 64, stop: BOS_STOP }).encode(pair('p', 'c'))).format).toBe('plain');
    expect(ok(new RecordEncoder(tk, { maxSeqLen: 64, stop: BOS_STOP, template: 'chat-template' }).encode(pair('p', 'c'))).format).toBe('chat-template');
  });

  it('template errors (a role it rejects) fail the record with the template message', () => {
    const e = new RecordEncoder(tk, { maxSeqLen: 64, stop: BOS_STOP }).encode(chat(['user', 'q'], ['assistant', 'call'], ['tool', 'result'], ['assistant', 'done']));
    expect(e).toMatchObject({ ok: false, code: 'template-error' });
    expect(!e.ok && e.message).toContain('bad role tool');
  });
});

describe('truncation from the left', () => {
  const tk = charTokenizer();

  it('cuts the prompt right after BOS, counts the cut, never touches the completion', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 19, stop: BOS_STOP });
    const ex = ok(enc.encode(pair('abcdefghij', 'yo')));
    // Full: BOS + 10 + "\nAnswer:" (8) + " yo" (3) + END = 23 tokens; 20 fit (19 inputs + 1 target).
    expect(ex.fullLength).toBe(23);
    expect(ex.truncated).toBe(3);
    const { seq, trained } = unshift(ex);
    expect(seq).toEqual([CHAR.bos, ...ids('defghij\nAnswer: yo'), CHAR.bos]);
    expect(ex.input).toHaveLength(19);
    expect(trained.filter(Boolean)).toHaveLength(4);
  });

  it('an exact fit is not truncated; one token more is', () => {
    const exact = ok(new RecordEncoder(tk, { maxSeqLen: 22, stop: BOS_STOP }).encode(pair('abcdefghij', 'yo')));
    expect([exact.truncated, exact.input.length]).toEqual([0, 22]);
    const one = ok(new RecordEncoder(tk, { maxSeqLen: 21, stop: BOS_STOP }).encode(pair('abcdefghij', 'yo')));
    expect([one.truncated, one.input.length]).toEqual([1, 21]);
  });

  it('in a conversation, earlier turns go first; the last reply is protected', () => {
    const enc = new RecordEncoder(tk, { maxSeqLen: 20, stop: BOS_STOP, template: 'plain' });
    const ex = ok(enc.encode(chat(['user', 'q'], ['assistant', 'long answer'], ['user', 'r'], ['assistant', 'b'])));
    const { seq, trained } = unshift(ex);
    expect(seq[0]).toBe(CHAR.bos);
    expect(seq.slice(-3)).toEqual([...ids(' b'), CHAR.bos]);
    expect(seq.filter((_, i) => trained[i]).slice(-3)).toEqual([...ids(' b'), CHAR.bos]);
    expect(ex.truncated).toBe(ex.fullLength - 21);
  });

  it('fails (too-long) when the last reply alone does not fit', () => {
    const e = new RecordEncoder(tk, { maxSeqLen: 5, stop: BOS_STOP }).encode(pair('p', 'abcdefgh'));
    expect(e).toMatchObject({ ok: false, code: 'too-long', fullLength: 20 });
  });
});

describe('a real tokenizer (tabtune-tiny)', () => {
  it('the training prompt tokens are exactly the inference prompt; decoding gives the formatted text', () => {
    const tk = folderTokenizer(TINY_DIR);
    // tabtune's models end replies with EOS (the reference model, stories260K, with BOS).
    expect(tk.eosId).not.toBe(tk.bosId);
    const enc = new RecordEncoder(tk, { maxSeqLen: 256, stop: { stopTokenId: tk.eosId, stopStrings: [] } });
    for (const [p, cpl] of [
      ['Write as digits: three hundred twelve', '312'],
      ['Is this story happy or sad? Tom lost his ball. He cried.', 'sad'],
    ]) {
      const ex = ok(enc.encode(pair(p!, cpl!)));
      const { seq, trained } = unshift(ex);
      const prompt = enc.promptIds({ prompt: p! });
      expect(seq.slice(0, prompt.length)).toEqual(prompt);
      expect(trained.slice(0, prompt.length).some(Boolean)).toBe(false);
      expect(trained.slice(prompt.length).every(Boolean)).toBe(true);
      expect(seq[0]).toBe(tk.bosId);
      expect(seq[seq.length - 1]).toBe(tk.eosId);
      expect(tk.decode(seq.slice(prompt.length, -1)).trim()).toBe(cpl);
      expect(tk.decode(seq, { skipSpecial: true })).toBe(`${p}\nAnswer: ${cpl}`);
      // The rendering shows every token with its text; concatenated it is the decoded sequence.
      const shown = renderExample(tk, ex);
      expect(shown.map((t) => t.text).join('')).toBe(tk.decode(seq));
      expect(shown.map((t) => t.trained)).toEqual(trained);
    }
  });
});
