import { describe, expect, it } from 'vitest';
import { exactMatch, overlapF1, promptAndAnswer } from './job';

describe('held-out scores', () => {
  it('exact match ignores surrounding whitespace only', () => {
    expect(exactMatch(' 312\n', '312')).toBe(true);
    expect(exactMatch('312.', '312')).toBe(false);
  });
  it('token overlap is word-level F1', () => {
    expect(overlapF1('the cat sat', 'the cat sat')).toBe(1);
    expect(overlapF1('the dog', 'the cat')).toBeCloseTo(0.5);
    expect(overlapF1('', 'x')).toBe(0);
    expect(overlapF1('A, b!', 'a b')).toBe(1);
  });
  it('evaluates the last assistant turn of a chat against the turns before it', () => {
    const pa = promptAndAnswer({ kind: 'chat', line: 3, messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'bye' }, { role: 'assistant', content: 'ciao' }] });
    expect(pa?.expected).toBe('ciao');
    expect(pa?.shown).toBe('bye');
    expect('messages' in pa!.prompt && pa!.prompt.messages.length).toBe(3);
  });
});
