import { describe, expect, it } from 'vitest';
import { seededRandom, shuffle } from './random';

describe('seededRandom', () => {
  it('is reproducible for a seed and differs between seeds', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const draws = Array.from({ length: 5 }, a);
    expect(draws).toEqual(Array.from({ length: 5 }, b));
    expect(Array.from({ length: 5 }, seededRandom(43))).not.toEqual(draws);
  });

  it('draws floats in [0, 1) spread over the interval', () => {
    const rand = seededRandom(7);
    const bins = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) {
      const x = rand();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      bins[Math.floor(x * 10)]!++;
    }
    for (const n of bins) expect(Math.abs(n - 1000)).toBeLessThan(150);
  });

  it('keeps mulberry32\'s sequence (a seed names the same data split and LoRA init as before)', () => {
    const rand = seededRandom(1);
    expect(rand()).toBeCloseTo(0.6270739405881613, 15);
  });
});

describe('shuffle', () => {
  it('permutes a copy, leaves the input alone, and is reproducible for a seed', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const s = shuffle(items, 3);
    expect(items).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect([...s].sort((x, y) => x - y)).toEqual(items);
    expect(s).not.toEqual(items);
    expect(shuffle(items, 3)).toEqual(s);
    expect(shuffle(items, 4)).not.toEqual(s);
  });
});
