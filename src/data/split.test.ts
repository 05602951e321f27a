// Seeded train/validation split: deterministic, sized as documented, prompts never on both sides.
import { describe, expect, it } from 'vitest';
import { splitRecords } from './split';
import type { DataRecord } from './types';

const pairs = (n: number, prompt = (i: number) => `p${i}`): DataRecord[] => Array.from({ length: n }, (_, i) => ({ kind: 'pair', prompt: prompt(i), completion: `c${i}`, line: i + 1 }));
const lines = (rs: DataRecord[]) => rs.map((r) => r.line);

describe('splitRecords', () => {
  it('is deterministic for a seed and differs across seeds', () => {
    const rs = pairs(100);
    const a = splitRecords(rs, { seed: 1 });
    const b = splitRecords(rs, { seed: 1 });
    const c = splitRecords(rs, { seed: 2 });
    expect(lines(a.val)).toEqual(lines(b.val));
    expect(lines(a.train)).toEqual(lines(b.train));
    expect(lines(a.val)).not.toEqual(lines(c.val));
    expect(a.source).toBe('split');
  });

  it('holds out 10% by default, at least one record from 2 on, never everything', () => {
    expect(splitRecords(pairs(100)).val).toHaveLength(10);
    expect(splitRecords(pairs(100), { valFraction: 0.25 }).val).toHaveLength(25);
    expect(splitRecords(pairs(2)).val).toHaveLength(1);
    expect(splitRecords(pairs(2)).train).toHaveLength(1);
    expect(splitRecords(pairs(5)).val).toHaveLength(1);
    expect(splitRecords(pairs(1))).toMatchObject({ val: [], source: 'none' });
    expect(splitRecords(pairs(0))).toMatchObject({ train: [], val: [] });
    expect(splitRecords(pairs(10), { valFraction: 0 }).val).toHaveLength(0);
    expect(() => splitRecords(pairs(10), { valFraction: 1 })).toThrow();
  });

  it('every record lands on exactly one side', () => {
    const s = splitRecords(pairs(57), { seed: 9 });
    expect([...lines(s.train), ...lines(s.val)].sort((x, y) => x - y)).toEqual(Array.from({ length: 57 }, (_, i) => i + 1));
  });

  it('records that share a prompt stay together', () => {
    // 30 prompts, 3 answers each.
    const rs = pairs(90, (i) => `p${Math.floor(i / 3)}`);
    for (const seed of [0, 1, 2, 3]) {
      const s = splitRecords(rs, { seed });
      const valPrompts = new Set(s.val.map((r) => (r.kind === 'pair' ? r.prompt : '')));
      expect(s.train.some((r) => r.kind === 'pair' && valPrompts.has(r.prompt))).toBe(false);
      expect(s.val).toHaveLength(9);
    }
    // One prompt for everything but one record: the odd one out is held out.
    const lopsided = pairs(5, (i) => (i < 4 ? 'same' : 'other'));
    expect(lines(splitRecords(lopsided).val)).toEqual([5]);
  });
});
