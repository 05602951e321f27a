// Turns checkpoint tensors (HF names and layouts) into TF.js tensors, checking every shape so a
// wrong or truncated checkpoint fails with the tensor's name instead of producing garbage.
import * as tf from '@tensorflow/tfjs-core';
import type { Linear } from './ops';
import { ModelLoadError, type WeightMap, type WeightTensor } from './types';

export class WeightReader {
  private readonly used = new Set<string>();
  readonly created: tf.Tensor[] = [];
  /** Checkpoint tensors by HF name, with whether we hold them transposed ([in, out] for an [out, in] weight). */
  readonly named = new Map<string, { t: tf.Tensor; transposed: boolean }>();
  numParams = 0;

  /** The checkpoint's arrays, until release(): the tensors built from them hold their own copies. */
  private weights: WeightMap | null;

  constructor(
    weights: WeightMap,
    private readonly arch: string,
    /** Full-parameter training: every checkpoint tensor becomes a trainable tf.Variable. */
    readonly trainable = false,
  ) {
    this.weights = weights;
  }

  /**
   * Lets go of the checkpoint's arrays once the architecture has built its tensors from them: otherwise the
   * page would hold every weight twice (the JavaScript arrays and TF.js's copy), half its memory on a large model.
   */
  release(): void {
    this.weights = null;
  }

  private source(): WeightMap {
    if (!this.weights) throw new Error('the checkpoint was released after the model was built: it cannot be read again');
    return this.weights;
  }

  /** t itself, or (trainable) a variable holding a copy of it, t freed. */
  private make<T extends tf.Tensor>(t: T): T {
    if (!this.trainable) return t;
    const v = tf.variable(t, true);
    t.dispose();
    return v as unknown as T;
  }

  /** The trainable variables (full-parameter mode), in checkpoint order. */
  variables(): tf.Variable[] {
    return this.trainable ? [...this.named.values()].map((e) => e.t as tf.Variable) : [];
  }

  has(name: string): boolean {
    return this.source().has(name);
  }

  raw(name: string, shape: number[]): WeightTensor {
    const t = this.source().get(name);
    if (!t) {
      throw new ModelLoadError('BAD_TENSOR', `the checkpoint has no tensor "${name}" (needed by the ${this.arch} architecture)`, 'The weights do not match config.json: check that the folder holds the model the config describes.');
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelLoadError('BAD_TENSOR', `tensor "${name}" has shape [${t.shape.join(', ')}] but config.json implies [${shape.join(', ')}]`, 'The weights do not match config.json.');
    }
    if (!this.used.has(name)) this.numParams += t.data.length;
    this.used.add(name);
    return t;
  }

  tensor(name: string, shape: number[]): tf.Tensor {
    const t = this.make(tf.tensor(this.raw(name, shape).data, shape));
    this.created.push(t);
    this.named.set(name, { t, transposed: false });
    return t;
  }

  vector(name: string, n: number): tf.Tensor1D {
    return this.tensor(name, [n]) as tf.Tensor1D;
  }

  /** An nn.Linear: stored [out, in], kept as [in, out]. */
  linear(module: string, inDim: number, outDim: number, bias: boolean): Linear {
    const raw = this.raw(`${module}.weight`, [outDim, inDim]);
    const w = this.make(tf.tensor2d(transpose2d(raw.data, outDim, inDim), [inDim, outDim]));
    this.created.push(w);
    this.named.set(`${module}.weight`, { t: w, transposed: true });
    return { name: module, w, b: bias ? this.vector(`${module}.bias`, outDim) : null, stored: 'out_in', trainable: this.trainable };
  }

  /** A GPT-2 Conv1D: stored [in, out] already. */
  conv1d(module: string, inDim: number, outDim: number): Linear {
    const w = this.tensor(`${module}.weight`, [inDim, outDim]) as tf.Tensor2D;
    return { name: module, w, b: this.vector(`${module}.bias`, outDim), stored: 'in_out', trainable: this.trainable };
  }

  /** A tensor created from already transformed data (e.g. a tied head, transposed). */
  keep<T extends tf.Tensor>(t: T): T {
    this.created.push(t);
    return t;
  }

  /** The weights in checkpoint names and layouts (read back from the backend). */
  exportWeights(): WeightMap {
    const out: WeightMap = new Map();
    for (const [name, { t, transposed }] of this.named) {
      const data = t.dataSync() as Float32Array;
      const [rows, cols] = t.shape as [number, number];
      out.set(name, transposed ? { shape: [cols, rows], data: transpose2d(data, rows, cols), dtype: 'F32' } : { shape: [...t.shape], data: Float32Array.from(data), dtype: 'F32' });
    }
    return out;
  }

  disposeAll(): void {
    for (const t of this.created) t.dispose();
    this.created.length = 0;
  }
}

/**
 * The output head of a tied model: the embedding [V, D] transposed to [D, V] once at load. In
 * full-parameter training the head must stay the embedding variable itself, so it is null here and
 * headFor() transposes the variable inside the step, letting both uses add to one gradient.
 */
export function tiedHead(r: WeightReader, embed: tf.Tensor2D): Linear | null {
  if (r.trainable) return null;
  return { name: 'lm_head', w: r.keep(tf.transpose(embed)), wT: embed, b: null, stored: 'out_in', trainable: false };
}

export function headFor(head: Linear | null, embed: tf.Tensor2D): Linear {
  return head ?? { name: 'lm_head', w: tf.transpose(embed), b: null, stored: 'out_in', trainable: true };
}

/**
 * [rows, cols] row-major -> [cols, rows] row-major, in 32 x 32 tiles (a plain double loop writes every
 * element a whole row apart, a cache miss each on a large matrix: loading a 135M model spent 1.5 s here).
 */
export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  const TILE = 32;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = a[base + c]!;
      }
    }
  }
  return out;
}
