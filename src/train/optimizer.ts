// AdamW (Loshchilov & Hutter) as torch.optim.AdamW does it: decoupled weight decay
// p <- p * (1 - lr * wd), then p <- p - lr * m_hat / (sqrt(v_hat) + eps), with bias correction.
import * as tf from '@tensorflow/tfjs-core';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

export interface AdamWState {
  t: number;
  m: Float32Array[];
  v: Float32Array[];
}

export class AdamW {
  /** Number of updates applied so far. */
  t = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(
    readonly params: tf.Variable[],
    readonly config: AdamWConfig = DEFAULT_ADAMW,
  ) {
    this.m = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    this.v = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
  }

  /** The first and second moment variables (to download them before a checkpoint). */
  moments(): tf.Variable[] {
    return [...this.m, ...this.v];
  }

  /** grads[i] belongs to params[i]. */
  apply(grads: tf.Tensor[], lr: number): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.config;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[i]!;
        const m = tf.add(tf.mul(this.m[i]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i]!, b2), tf.mul(tf.square(g), 1 - b2));
        this.m[i]!.assign(m);
        this.v[i]!.assign(v);
        const decayed = wd ? tf.mul(p, 1 - lr * wd) : p;
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
  }

  getState(): AdamWState {
    return { t: this.t, m: this.m.map((x) => x.dataSync() as Float32Array), v: this.v.map((x) => x.dataSync() as Float32Array) };
  }

  setState(s: AdamWState): void {
    if (s.m.length !== this.m.length) throw new Error(`optimizer state has ${s.m.length} moments but the run has ${this.m.length} parameters`);
    this.t = s.t;
    this.m.forEach((x, i) => x.assign(tf.tensor(s.m[i]!, x.shape)));
    this.v.forEach((x, i) => x.assign(tf.tensor(s.v[i]!, x.shape)));
  }

  dispose(): void {
    tf.dispose([...this.m, ...this.v]);
  }
}

/** Scales grads so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const sq = squaredNorm(grads);
  const norm = Math.sqrt(sq.dataSync()[0]!);
  sq.dispose();
  return clipToNorm(grads, norm, maxNorm);
}

/** Sum of squares of every gradient entry (a scalar tensor, not read back). */
export function squaredNorm(grads: tf.Tensor[]): tf.Tensor {
  return tf.tidy(() => addNChunked(grads.map((g) => tf.sum(tf.square(g)))));
}

/** Scales the gradients down to maxNorm when their global norm (already read) exceeds it; frees the originals then. */
export function clipToNorm(grads: tf.Tensor[], norm: number, maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return { grads, norm };
  const s = maxNorm / (norm + 1e-6);
  const clipped = grads.map((g) => tf.mul(g, s));
  tf.dispose(grads);
  return { grads: clipped, norm };
}

/**
 * Inputs one kernel may take on this backend. tfjs-backend-webgpu's AddN binds every input as a storage
 * buffer and does not split: past maxStorageBuffersPerShaderStage - 1 its pipeline is invalid, the whole
 * command buffer is dropped and the sum reads back as garbage (clipping would then never clip).
 */
function maxKernelInputs(): number {
  if (tf.getBackend() !== 'webgpu') return Infinity;
  const limits = (tf.backend() as unknown as { device?: { limits?: { maxStorageBuffersPerShaderStage?: number } } }).device?.limits;
  return Math.max(2, (limits?.maxStorageBuffersPerShaderStage ?? 8) - 1);
}

/** tf.addN, in groups small enough for the backend (one kernel where it allows it). */
export function addNChunked(xs: tf.Tensor[], maxInputs = maxKernelInputs()): tf.Tensor {
  if (xs.length <= maxInputs) return tf.addN(xs);
  return tf.tidy(() => {
    let level = xs;
    while (level.length > maxInputs) {
      const next: tf.Tensor[] = [];
      for (let i = 0; i < level.length; i += maxInputs) {
        const group = level.slice(i, i + maxInputs);
        next.push(group.length === 1 ? group[0]! : tf.addN(group));
      }
      level = next;
    }
    return tf.addN(level);
  });
}
