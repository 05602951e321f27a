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
