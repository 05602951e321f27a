// Made-up words ("Tolvaneth", "brisomel"): pronounceable, never in any corpus, so a model that reproduces
// one has copied it from its context rather than remembered it. The extraction example (its entities) and
// the copy-rich pretraining documents (scripts/corpus/copy.ts) both draw from here, with different seeds;
// the pretraining side leaves out every entity of the example, checked by name.
import { seededRandom } from '../../src/util/random';

const ONSETS = ['b', 'd', 'f', 'g', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'z', 'br', 'dr', 'gr', 'kl', 'pr', 'tr', 'st', 'sh', 'th', 'h', 'j', 'w'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'a', 'e', 'o', 'ai', 'ou', 'ei', 'y'];
const CODAS = ['', '', '', 'n', 'r', 'l', 's', 'th', 'm', 'nd', 'rk', 'st'];

export type WordMaker = (syllables: number, capital?: boolean) => string;

/** A seeded maker of made-up words of a given number of syllables. */
export function pseudoWords(seed: number): WordMaker {
  const rnd = seededRandom(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  return (syllables, capital = false) => {
    let w = '';
    for (let i = 0; i < syllables; i++) w += pick(ONSETS) + pick(VOWELS) + (i === syllables - 1 || rnd() < 0.3 ? pick(CODAS) : '');
    return capital ? w[0]!.toUpperCase() + w.slice(1) : w;
  };
}

/** `n` distinct made-up words from `make`, none of them in `exclude`. */
export function distinctWords(make: () => string, n: number, exclude: ReadonlySet<string> = new Set()): string[] {
  const out = new Set<string>();
  for (let tries = 0; out.size < n; tries++) {
    if (tries > n * 100) throw new Error(`could not make ${n} distinct words`);
    const w = make();
    if (!exclude.has(w.toLowerCase())) out.add(w);
  }
  return [...out];
}
