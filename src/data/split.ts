// Seeded train/validation split. Records that share a prompt stay on the same side, so the validation
// loss never scores a prompt the model trained on (e.g. one prompt with three answers).
import { shuffle } from '../util/random';
import { promptKey } from './formats';
import type { DataRecord } from './types';
import { hash53 } from './validate';

export interface SplitOptions {
  /** Share of records for validation (default 0.1). */
  valFraction?: number;
  seed?: number;
}

export interface Split<T = DataRecord> {
  train: T[];
  val: T[];
  /** 'split' = held out from the training file; 'file' = a separate validation file. */
  source: 'split' | 'file' | 'none';
}

export const DEFAULT_VAL_FRACTION = 0.1;

/**
 * Splits records into train and validation: round(n * valFraction) validation records, at least 1 when
 * there are 2 or more, never all of them. Deterministic for a given seed and input order. Both sides
 * come out shuffled (same seed, same order).
 */
export function splitRecords<T extends DataRecord>(records: T[], opts: SplitOptions = {}): Split<T> {
  const frac = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(frac >= 0 && frac < 1)) throw new Error(`valFraction must be in [0, 1), got ${frac}`);
  const n = records.length;
  let want = Math.round(n * frac);
  if (n >= 2 && frac > 0) want = Math.max(1, want);
  want = Math.min(want, n - 1);
  if (want <= 0) return { train: shuffle(records, opts.seed ?? 0), val: [], source: 'none' };
  // Group by prompt; shuffle the groups; fill validation with whole groups up to the target.
  const groups = new Map<number, T[]>();
  for (const r of records) {
    const k = hash53(r.kind + promptKey(r));
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
  }
  const order = shuffle([...groups.values()], opts.seed ?? 0);
  const inVal = new Set<T[]>();
  let size = 0;
  for (const g of order) {
    if (size + g.length <= want) {
      inVal.add(g);
      size += g.length;
    }
  }
  if (size === 0) {
    // Every group is larger than the target: hold out the smallest one that leaves something to train on.
    const smallest = order.filter((g) => g.length < n).sort((a, b) => a.length - b.length)[0];
    if (smallest) inVal.add(smallest);
  }
  const train = order.filter((g) => !inVal.has(g)).flat();
  const val = order.filter((g) => inVal.has(g)).flat();
  return { train, val, source: val.length ? 'split' : 'none' };
}
