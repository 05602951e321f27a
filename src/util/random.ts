// The project's one seeded random generator (TF-free): sampling, LoRA initialisation, data splits and
// example order, the pretraining batches and the tests all draw from it, so a seed means the same thing
// everywhere. Never write a second generator: extend this file.

/** mulberry32: a small, fast, seedable PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy (Fisher-Yates with seededRandom(seed)); the input is left as it is. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const a = items.slice();
  const rand = seededRandom(seed);
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/**
 * Seeds drawn one after another from a base (dropout: each training micro-batch sets a base, each dropout
 * call draws the next seed). `position` is public so that a block whose activations are recomputed in the
 * backward (src/model/checkpoint.ts) can rewind to where its forward started and draw the same seeds again.
 */
export class SeedStream {
  private base = 0;
  /** Seeds drawn since the last reset. */
  position = 0;

  reset(base: number): void {
    this.base = base;
    this.position = 0;
  }

  next(): number {
    return (this.base * 1000003 + this.position++) % 2147483647;
  }
}
