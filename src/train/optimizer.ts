// AdamW (Loshchilov & Hutter) as torch.optim.AdamW does it: decoupled weight decay
// p <- p * (1 - lr * wd), then p <- p - lr * m_hat / (sqrt(v_hat) + eps), with bias correction.
// On the CPU backends (wasm, cpu) the update runs in plain JavaScript over each parameter's values, the
// moments kept in typed arrays: one read and one write per parameter instead of a dozen TF.js ops, whose
// per-op cost dominates for the many small tensors of LoRA. Elsewhere (WebGPU) it stays on the device.
import * as tf from '@tensorflow/tfjs-core';
import { floats } from '../kernels/tensor-io';
import { cpuBackend } from '../model/ops';

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
  /** Moments on the device (WebGPU), or null when they live in typed arrays (CPU backends). */
  private readonly m: tf.Variable[] | null = null;
  private readonly v: tf.Variable[] | null = null;
  private readonly mHost: Float32Array[] | null = null;
  private readonly vHost: Float32Array[] | null = null;

  constructor(
    readonly params: tf.Variable[],
    readonly config: AdamWConfig = DEFAULT_ADAMW,
    /** 'auto': in typed arrays on the CPU backends, else on the device; the others force one (tests). */
    where: 'auto' | 'host' | 'device' = 'auto',
  ) {
    if (where === 'host' || (where === 'auto' && cpuBackend())) {
      this.mHost = params.map((p) => new Float32Array(p.size));
      this.vHost = params.map((p) => new Float32Array(p.size));
    } else {
      this.m = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** The first and second moment variables on the device (to download them before a checkpoint); none on CPU backends. */
  moments(): tf.Variable[] {
    return [...(this.m ?? []), ...(this.v ?? [])];
  }

  /** grads[i] belongs to params[i]; each is multiplied by `scale` first (gradient clipping). */
  apply(grads: tf.Tensor[], lr: number, scale = 1): void {
    const { beta1: b1, beta2: b2, eps, weightDecay: wd } = this.config;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    if (this.mHost && this.vHost) {
      this.params.forEach((p, i) => {
        const g = floats(grads[i]!);
        const w = Float32Array.from(floats(p));
        const m = this.mHost![i]!;
        const v = this.vHost![i]!;
        const decay = wd ? 1 - lr * wd : 1;
        for (let j = 0; j < w.length; j++) {
          const gj = g[j]! * scale;
          const mj = (m[j] = b1 * m[j]! + (1 - b1) * gj);
          const vj = (v[j] = b2 * v[j]! + (1 - b2) * gj * gj);
          w[j] = w[j]! * decay - lr * (mj / bc1 / (Math.sqrt(vj / bc2) + eps));
        }
        const next = tf.tensor(w, p.shape);
        p.assign(next);
        next.dispose();
      });
      return;
    }
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = scale === 1 ? grads[i]! : tf.mul(grads[i]!, scale);
        const m = tf.add(tf.mul(this.m![i]!, b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v![i]!, b2), tf.mul(tf.square(g), 1 - b2));
        this.m![i]!.assign(m);
        this.v![i]!.assign(v);
        const decayed = wd ? tf.mul(p, 1 - lr * wd) : p;
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      });
    });
  }

  getState(): AdamWState {
    if (this.mHost && this.vHost) return { t: this.t, m: this.mHost.map((x) => x.slice()), v: this.vHost.map((x) => x.slice()) };
    return { t: this.t, m: this.m!.map((x) => x.dataSync() as Float32Array), v: this.v!.map((x) => x.dataSync() as Float32Array) };
  }

  setState(s: AdamWState): void {
    const n = this.params.length;
    if (s.m.length !== n || s.v.length !== n) throw new Error(`optimizer state has ${s.m.length} moments but the run has ${n} parameters`);
    s.m.forEach((x, i) => {
      if (x.length !== this.params[i]!.size || s.v[i]!.length !== this.params[i]!.size) throw new Error(`optimizer state for parameter ${i} has ${x.length} values but the parameter has ${this.params[i]!.size}`);
    });
    this.t = s.t;
    if (this.mHost && this.vHost) {
      s.m.forEach((x, i) => this.mHost![i]!.set(x));
      s.v.forEach((x, i) => this.vHost![i]!.set(x));
      return;
    }
    this.m!.forEach((x, i) => x.assign(tf.tensor(s.m[i]!, x.shape)));
    this.v!.forEach((x, i) => x.assign(tf.tensor(s.v[i]!, x.shape)));
  }

  dispose(): void {
    tf.dispose([...(this.m ?? []), ...(this.v ?? [])]);
  }
}

/** Scales grads so their global L2 norm is at most maxNorm; returns the norm before clipping. */
export function clipByGlobalNorm(grads: tf.Tensor[], maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const sq = squaredNorm(grads);
  const norm = Math.sqrt(sq.dataSync()[0]!);
  sq.dispose();
  return clipToNorm(grads, norm, maxNorm);
}

/** Sum of squares of every gradient entry (a scalar tensor; on the CPU backends summed in JavaScript). */
export function squaredNorm(grads: tf.Tensor[]): tf.Tensor {
  if (cpuBackend()) {
    let s = 0;
    for (const g of grads) {
      const d = floats(g);
      for (let i = 0; i < d.length; i++) s += d[i]! * d[i]!;
    }
    return tf.scalar(s);
  }
  return tf.tidy(() => addNChunked(grads.map((g) => tf.sum(tf.square(g)))));
}

/** The factor clipping multiplies the gradients by: maxNorm / norm when their global norm exceeds maxNorm, else 1. */
export function clipScale(norm: number, maxNorm: number): number {
  if (!(maxNorm > 0) || !Number.isFinite(norm) || norm <= maxNorm) return 1;
  return maxNorm / (norm + 1e-6);
}

/** Scales the gradients down to maxNorm when their global norm (already read) exceeds it; frees the originals then. */
export function clipToNorm(grads: tf.Tensor[], norm: number, maxNorm: number): { grads: tf.Tensor[]; norm: number } {
  const s = clipScale(norm, maxNorm);
  if (s === 1) return { grads, norm };
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
