import { describe, expect, it } from 'vitest';
import { wordDiff } from './diff';

const join = (segs: { kind: string; text: string }[], kinds: string[]) => segs.filter((s) => kinds.includes(s.kind)).map((s) => s.text).join('');

describe('wordDiff', () => {
  it('marks words only in the output as extra and words only in the expected text as missing', () => {
    expect(wordDiff('the cat sat down', 'the dog sat')).toEqual([
      { kind: 'same', text: 'the' },
      { kind: 'missing', text: ' dog' },
      { kind: 'extra', text: ' cat' },
      { kind: 'same', text: ' sat' },
      { kind: 'extra', text: ' down' },
    ]);
  });

  it('identical and empty texts', () => {
    expect(wordDiff('42', '42')).toEqual([{ kind: 'same', text: '42' }]);
    expect(wordDiff('', '42')).toEqual([{ kind: 'missing', text: '42' }]);
    expect(wordDiff('42', '')).toEqual([{ kind: 'extra', text: '42' }]);
    expect(wordDiff('', '')).toEqual([]);
  });

  it('re-joins into the output, and into the words of the expected text', () => {
    const actual = 'Once upon a  time, there was\na <b>tag</b> 42';
    const expected = 'Once upon a time there was 42';
    const segs = wordDiff(actual, expected);
    expect(join(segs, ['same', 'extra'])).toBe(actual);
    expect(join(segs, ['same', 'missing']).split(/\s+/)).toEqual(expected.split(/\s+/));
    // Markup stays text: it is a word like any other.
    expect(segs.some((s) => s.kind === 'extra' && s.text.includes('<b>tag</b>'))).toBe(true);
  });

  it('handles long outputs', () => {
    const a = Array.from({ length: 600 }, (_, i) => `w${i % 37}`).join(' ');
    const b = Array.from({ length: 500 }, (_, i) => `w${i % 41}`).join(' ');
    const segs = wordDiff(a, b);
    expect(join(segs, ['same', 'extra'])).toBe(a);
    expect(join(segs, ['same', 'missing']).trim().split(/\s+/)).toEqual(b.split(' '));
  });
});
