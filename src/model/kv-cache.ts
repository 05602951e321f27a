// Key/value cache for incremental decoding. Keys are kept transposed ([B, KV, hd, S]) so the
// attention score matMul needs no transpose flag; both grow along S by concatenation.
import * as tf from '@tensorflow/tfjs-core';

export interface LayerKV {
  /** [B, KV, hd, S] */
  kT: tf.Tensor;
  /** [B, KV, S, hd] */
  v: tf.Tensor;
}

export class KVCache {
  layers: (LayerKV | null)[];
  /** Per row, 1 for a real token and 0 for padding, over all cached positions. */
  keyMask: number[][];
  /** Per row, the position id the next real token gets. */
  nextPos: number[];

  constructor(
    readonly batch: number,
    nLayers: number,
  ) {
    this.layers = new Array<LayerKV | null>(nLayers).fill(null);
    this.keyMask = Array.from({ length: batch }, () => []);
    this.nextPos = new Array<number>(batch).fill(0);
  }

  /** Number of cached positions (S before the next call). */
  get length(): number {
    return this.keyMask[0]?.length ?? 0;
  }

  /** Replaces layer l's tensors, disposing the old ones (the new ones must be kept out of tidy). */
  set(l: number, kv: LayerKV): void {
    const old = this.layers[l];
    if (old) {
      old.kT.dispose();
      old.v.dispose();
    }
    this.layers[l] = kv;
  }

  /** Keeps only the given rows (e.g. drop finished sequences). */
  select(rows: number[]): KVCache {
    const out = new KVCache(rows.length, this.layers.length);
    const idx = tf.tensor1d(rows, 'int32');
    this.layers.forEach((kv, l) => {
      if (kv) out.layers[l] = { kT: tf.gather(kv.kT, idx), v: tf.gather(kv.v, idx) };
    });
    idx.dispose();
    out.keyMask = rows.map((r) => this.keyMask[r]!.slice());
    out.nextPos = rows.map((r) => this.nextPos[r]!);
    return out;
  }

  dispose(): void {
    for (const kv of this.layers) {
      kv?.kT.dispose();
      kv?.v.dispose();
    }
    this.layers.fill(null);
  }
}

/** What one forward call needs to know about masks, positions and the cache. */
export interface StepPlan {
  B: number;
  /** positions fed in this call: the virtual tokens, then the ids */
  T: number;
  /** virtual tokens (prompt tuning) fed before the ids, the first `virtual` of the T positions */
  virtual: number;
  /** cached positions before this call */
  past: number;
  /** [B][T] mask of the new positions (ones for the virtual tokens) */
  mask: number[][];
  /** [B][past + T] mask over all keys */
  keyMask: number[][];
  /** [B][T] position ids of the new tokens */
  pos: number[][];
}

/**
 * Checks the ids and plans one forward call. `virtual` virtual tokens (prompt tuning) go before the ids:
 * mask ones, positions 0..virtual-1 (so the real tokens start at position `virtual`, as in HF with PEFT),
 * counted against the context.
 */
export function planStep(ids: number[][], opts: { cache?: KVCache; mask?: number[][] }, vocab: number, context: number, virtual = 0): StepPlan {
  const B = ids.length;
  const n = ids[0]?.length ?? 0;
  if (!B || !n) throw new Error('forward needs at least one token');
  for (const row of ids) {
    if (row.length !== n) throw new Error('all rows of a batch must have the same length (pad them and pass a mask)');
    for (const id of row) if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`token id ${id} is outside the vocabulary (0..${vocab - 1})`);
  }
  const ones = new Array<number>(virtual).fill(1);
  const mask = (opts.mask ?? ids.map((row) => row.map(() => 1))).map((row) => (virtual ? [...ones, ...row] : row));
  const T = virtual + n;
  const cache = opts.cache;
  if (cache && cache.batch !== B) throw new Error(`cache holds ${cache.batch} rows but ${B} were given`);
  const past = cache?.length ?? 0;
  if (past + T > context) {
    const v = virtual ? ` (${virtual} of them virtual tokens of prompt tuning)` : '';
    throw new Error(`sequence of ${past + T} tokens${v} is longer than the model's context (${context})`);
  }
  const keyMask = cache ? cache.keyMask.map((r, b) => [...r, ...mask[b]!]) : mask;
  // Each row continues from its own next position; pad tokens (mask 0) do not advance it.
  const pos = mask.map((row, b) => {
    let p = cache?.nextPos[b] ?? 0;
    return row.map((m) => (m ? p++ : Math.max(p - 1, 0)));
  });
  return { B, T, virtual, past, mask, keyMask, pos };
}

/** Stores the layers' new keys/values ([kT0, v0, kT1, v1, …]) and advances masks and positions. */
export function commitStep(cache: KVCache, plan: StepPlan, kept: tf.Tensor[]): void {
  for (let l = 0; l < kept.length / 2; l++) cache.set(l, { kT: kept[2 * l]!, v: kept[2 * l + 1]! });
  cache.keyMask = plan.keyMask;
  cache.nextPos = plan.pos.map((row, b) => (plan.mask[b]!.some((m) => m) ? row[row.length - 1]! + 1 : cache.nextPos[b]!));
}
