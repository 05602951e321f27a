// Orthogonal fine-tuning (OFT, Qiu et al. 2023) the way Hugging Face PEFT does it since its rework
// (PEFT >= 0.14). Followed: PEFT v0.20.0, the newest release (src/peft/tuners/oft/config.py, layer.py,
// model.py and src/peft/utils/save_and_load.py), read, not run: there is no Python PEFT here, so every
// format fact below comes from reading that source, and tabtune's code is its own.
//
// What PEFT does, and tabtune with it:
// - Each targeted nn.Linear gets one parameter, oft_R.weight [r, b(b-1)/2]: r blocks of size b
//   (b = oft_block_size, r = in_features / b), each row the strict upper triangle of a b x b matrix U in
//   torch.triu_indices(b, b, 1) order (row-major). Q = U - U^T is skew-symmetric.
// - R = (I - Q)(I + Q)^-1, the Cayley transform (torch.linalg.solve(I + Q, I - Q, left=False)), is
//   orthogonal. PEFT's default use_cayley_neumann=True replaces it by the truncated series
//   I + 2Q + 2Q^2 + ... + 2Q^(t-2) + Q^(t-1) (t = num_cayley_neumann_terms, the PEFT >= 0.18 form; t = 3
//   gives the t = 4 series), which approximates (I + Q)(I - Q)^-1, the transpose, and is only nearly
//   orthogonal. tabtune trains with the exact transform (and exports use_cayley_neumann false); adapters
//   imported with the series keep it, so they compute what PEFT computes.
// - The input is rotated before the frozen layer: x_rot[..., p, :] = x[..., p, :] @ R_p for every block p
//   (einsum "...rk,rkc->...rc"), then y = base(x_rot). In tabtune's math layout (W [in, out]) that is
//   y = x R W + b with R = blockdiag(R_1 .. R_r), and merging writes W <- R W (PEFT: W_torch <- (R W_torch^T)^T).
// - init_weights=True: zeros, so R = I and the adapted model starts as the base model exactly.
// - When b does not divide in_features PEFT picks the nearest divisor for that layer (adjust_oft_parameters;
//   ties go to the smaller) and so does tabtune (adapter.adjusted lists them). Giving r instead
//   (oft_block_size 0) is the same with the block count.
// - coft: before each use, each block's Q is projected onto the Frobenius ball of radius eps / sqrt(r) and
//   the parameter overwritten with it (the gradient then acts on the projected value).
// - module_dropout: PEFT's MultiplicativeDropoutLayer sets int(p * r) random blocks to the identity while
//   training (none when r = 1). PEFT 0.20 builds that layer but its Linear.forward never calls it, so a PEFT
//   run with module_dropout > 0 trains as with 0; tabtune applies it as PEFT documents it.
// - Only nn.Linear (and Conv2d, Embedding) are wrapped: GPT-2's Conv1D is not, so PEFT cannot load an OFT
//   adapter on GPT-2's c_attn/c_proj/c_fc (tabtune trains and merges one; its PEFT export refuses).
//
// The Linear hook adds to the layer's output, so the adapter returns (x R - x) W: y = x W + (x R - x) W.
// With R = I exactly (zero weights) that delta is exactly 0.
//
// Strength alpha (0 = base, 1 = tuned) scales Q before the transform: R(alpha) = cayley(alpha Q), a rotation
// for every alpha (not a blend of outputs), the identity at 0 and the trained rotation at 1.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';
import { frozenMatMul, mm, swapLast, type Linear, type LinearAdapter } from '../model/ops';
import { matchesTarget } from '../lora/adapter';
import { nearestDivisor, oftShapeProblems, type OftConfig } from '../train/config';
import type { TrainableAdapter } from '../train/loop';
import { SeedStream, shuffle } from '../util/random';

export class OftError extends Error {
  override name = 'OftError';
}

/** OftConfig plus what only an imported PEFT adapter sets. */
export interface OftAdapterConfig extends OftConfig {
  /** PEFT's r: blocks per layer instead of a block size (then oft_block_size is 0). */
  r?: number;
  /** PEFT's truncated Cayley-Neumann series instead of the exact transform (default false). */
  use_cayley_neumann?: boolean;
  /** Terms of that series (PEFT's default 5). */
  num_cayley_neumann_terms?: number;
}

export { nearestDivisor };

/** Blocks and block size of a layer with `inFeatures` inputs, as PEFT's update_layer picks them. */
export function oftBlocks(inFeatures: number, c: Pick<OftAdapterConfig, 'r' | 'oft_block_size'>): { blocks: number; blockSize: number; adjustedFrom: number | null } {
  const byR = !!c.r && !c.oft_block_size;
  const want = byR ? c.r! : c.oft_block_size;
  const fits = inFeatures % want === 0 && want <= inFeatures;
  const got = fits ? want : nearestDivisor(inFeatures, want);
  const blocks = byR ? got : inFeatures / got;
  return { blocks, blockSize: inFeatures / blocks, adjustedFrom: fits ? null : want };
}

/** Number of parameters of one b x b block: its strict upper triangle. */
export const skewSize = (b: number): number => (b * (b - 1)) / 2;

const skewIndexCache = new Map<number, { src: Int32Array; upper: Int32Array; lower: Int32Array }>();

/**
 * For a b x b skew matrix read from [0, u_0..u_{n-1}, -u_0..-u_{n-1}]: src[i*b+j] is the entry's position;
 * upper[k] / lower[k] are the flat positions (i*b+j, j*b+i) of triangle entry k (row-major, i < j).
 */
function skewIndex(b: number) {
  let c = skewIndexCache.get(b);
  if (!c) {
    const n = skewSize(b);
    const src = new Int32Array(b * b);
    const upper = new Int32Array(n);
    const lower = new Int32Array(n);
    let k = 0;
    for (let i = 0; i < b; i++) {
      for (let j = i + 1; j < b; j++) {
        upper[k] = i * b + j;
        lower[k] = j * b + i;
        src[i * b + j] = 1 + k;
        src[j * b + i] = 1 + n + k;
        k++;
      }
    }
    c = { src, upper, lower };
    skewIndexCache.set(b, c);
  }
  return c;
}

/**
 * [r, b(b-1)/2] packed upper triangles -> [r, b, b] skew-symmetric Q = U - U^T. The gradient is written out
 * (dL/du_k = G[i, j] - G[j, i]) because gather's own needs UnsortedSegmentSum, which tfjs-wasm lacks.
 */
export function skewSymmetric(u: tf.Tensor2D, b: number): tf.Tensor3D {
  const r = u.shape[0];
  if (u.shape[1] !== skewSize(b)) throw new OftError(`skewSymmetric: [${u.shape.join(', ')}] is not [r, ${skewSize(b)}] for blocks of ${b}`);
  const { src, upper, lower } = skewIndex(b);
  const f = tf.customGrad(((x: tf.Tensor) => ({
    value: tf.reshape(tf.gather(tf.concat([tf.zeros([r, 1]), x, tf.neg(x)], 1), tf.tensor1d(src, 'int32'), 1), [r, b, b]),
    gradFunc: (dy: tf.Tensor) => {
      const g = tf.reshape(dy, [r, b * b]);
      return tf.sub(tf.gather(g, tf.tensor1d(upper, 'int32'), 1), tf.gather(g, tf.tensor1d(lower, 'int32'), 1));
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(u) as tf.Tensor3D;
}

/** Gauss-Jordan inverses of K n x n matrices (row-major), in float64, without pivoting. */
function invertJs(a: ArrayLike<number>, K: number, n: number): Float32Array {
  const out = new Float32Array(K * n * n);
  const m = new Float64Array(n * n);
  const inv = new Float64Array(n * n);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < n * n; i++) m[i] = a[k * n * n + i]!;
    inv.fill(0);
    for (let i = 0; i < n; i++) inv[i * n + i] = 1;
    for (let p = 0; p < n; p++) {
      const piv = m[p * n + p]!;
      for (let j = 0; j < n; j++) {
        m[p * n + j]! /= piv;
        inv[p * n + j]! /= piv;
      }
      for (let i = 0; i < n; i++) {
        const f = i === p ? 0 : m[i * n + p]!;
        if (f === 0) continue;
        for (let j = 0; j < n; j++) {
          m[i * n + j]! -= f * m[p * n + j]!;
          inv[i * n + j]! -= f * inv[p * n + j]!;
        }
      }
    }
    out.set(inv, k * n * n);
  }
  return out;
}

/** The same Gauss-Jordan with backend ops (GPU backends: no read-back): n steps over [K, n, 2n]. */
function invertOps(a: tf.Tensor3D): tf.Tensor3D {
  const [K, n] = a.shape;
  return tf.tidy(() => {
    let aug: tf.Tensor = tf.concat([a, tf.broadcastTo(tf.eye(n), [K, n, n])], 2); // [K, n, 2n]
    for (let p = 0; p < n; p++) {
      const row = tf.slice(aug, [0, p, 0], [K, 1, 2 * n]);
      const pivotRow = tf.div(row, tf.slice(row, [0, 0, p], [K, 1, 1])); // row p / a_pp
      const unit = new Float32Array(n);
      unit[p] = 1;
      // Row i loses a_ip times the pivot row; row p becomes the pivot row (a_pp - 1 times it, taken away).
      const factor = tf.sub(tf.slice(aug, [0, 0, p], [K, n, 1]), tf.tensor3d(unit, [1, n, 1]));
      aug = tf.sub(aug, tf.mul(factor, pivotRow));
    }
    return tf.slice(aug, [0, 0, n], [K, n, n]) as tf.Tensor3D;
  });
}

/**
 * A^-1 for a batch [K, n, n] whose symmetric parts are positive definite (here I + skew, symmetric part I):
 * Gaussian elimination needs no pivoting for those and is stable. On the CPU backends (cpu, wasm) it runs
 * in JavaScript (the matrices are small), elsewhere with backend ops; `how` forces one (tests).
 * Gradient: d(A^-1) = -A^-1 dA A^-1, so dL/dA = -M^T G M^T.
 */
export function invertNoPivot(a: tf.Tensor3D, how: 'auto' | 'js' | 'ops' = 'auto'): tf.Tensor3D {
  const [K, n, n2] = a.shape;
  if (n !== n2) throw new OftError(`invertNoPivot: [${a.shape.join(', ')}] is not a batch of square matrices`);
  const js = how === 'js' || (how === 'auto' && ['cpu', 'wasm'].includes(tf.getBackend()));
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    const m = js ? tf.tensor3d(invertJs(x.dataSync(), K, n), [K, n, n]) : invertOps(x as tf.Tensor3D);
    save([m]);
    return {
      value: m,
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => {
        const mt = swapLast(saved!);
        return tf.neg(tf.matMul(tf.matMul(mt as tf.Tensor3D, dy as tf.Tensor3D), mt as tf.Tensor3D));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(a) as tf.Tensor3D;
}

/** The Cayley transform of skew-symmetric Q [K, b, b]: (I - Q)(I + Q)^-1 = 2 (I + Q)^-1 - I, orthogonal. */
export function cayley(q: tf.Tensor3D): tf.Tensor3D {
  const eye = tf.eye(q.shape[1]);
  return tf.sub(tf.mul(invertNoPivot(tf.add(q, eye) as tf.Tensor3D), 2), eye) as tf.Tensor3D;
}

/** PEFT's Cayley-Neumann series with `terms` terms (see the top of this file), built as PEFT builds it. */
export function cayleyNeumann(q: tf.Tensor3D, terms: number): tf.Tensor3D {
  let r: tf.Tensor = tf.broadcastTo(tf.eye(q.shape[1]), q.shape);
  if (terms > 1) {
    r = tf.add(r, tf.mul(q, 2));
    if (terms > 2) {
      let power = mm(q, q);
      r = tf.add(r, tf.mul(power, 2));
      for (let i = 3; i < terms - 1; i++) {
        power = mm(power, q);
        r = tf.add(r, tf.mul(power, 2));
      }
      r = tf.add(r, mm(power, q));
    }
  }
  return r as tf.Tensor3D;
}

export class OftModule implements LinearAdapter {
  /** PEFT's oft_R.weight: [blocks, b(b-1)/2], the packed upper triangles. */
  readonly weight: tf.Variable;

  constructor(
    readonly linear: Linear,
    private readonly owner: OftAdapter,
    readonly blocks: number,
    readonly blockSize: number,
    init?: Float32Array,
  ) {
    const shape: [number, number] = [blocks, skewSize(blockSize)];
    this.weight = tf.tidy(() => tf.variable(init ? tf.tensor2d(init, shape) : tf.zeros(shape), true));
  }

  get inDim(): number {
    return this.linear.w.shape[0];
  }

  get outDim(): number {
    return this.linear.w.shape[1];
  }

  /** The module-dropout seeds, shared by the adapter's modules (a recomputed block rewinds them). */
  get seeds(): SeedStream {
    return this.owner.seeds;
  }

  /** oft_R: what apply() trains. */
  trainables(): tf.Tensor[] {
    return [this.weight];
  }

  /** coft: projects each block onto the Frobenius ball of radius eps / sqrt(blocks) and stores it (as PEFT). */
  private project(): void {
    if (!this.owner.config.coft) return;
    const radius = this.owner.config.eps / Math.sqrt(this.blocks);
    const w = this.weight;
    const p = tf.tidy(() => {
      const norm = tf.sqrt(tf.mul(tf.sum(tf.square(w), 1, true), 2)); // ||U - U^T||_F = sqrt(2) ||u||
      return tf.mul(w, tf.minimum(tf.div(radius, norm), 1)); // norm 0: radius / 0 = Inf, min 1
    });
    w.assign(p);
    p.dispose();
  }

  /**
   * The blocks R_p [blocks, b, b] at `strength` (Q scaled before the transform); `drop` lists blocks set
   * to the identity (module dropout).
   */
  rotation(strength: number, drop: readonly number[] = []): tf.Tensor3D {
    this.project();
    const o = this.owner;
    const b = this.blockSize;
    return tf.tidy(() => {
      const q = tf.mul(skewSymmetric(this.weight as unknown as tf.Tensor2D, b), strength) as tf.Tensor3D;
      let r = o.neumannTerms !== null ? cayleyNeumann(q, o.neumannTerms) : cayley(q);
      if (drop.length) {
        const mask = new Float32Array(this.blocks);
        for (const p of drop) mask[p] = 1;
        r = tf.add(r, tf.mul(tf.tensor3d(mask, [this.blocks, 1, 1]), tf.sub(tf.eye(b), r))) as tf.Tensor3D;
      }
      return r;
    });
  }

  /** x: [N, in] -> x R - x (each block of b inputs times its R_p): [N, in] */
  private rotateMinusX(x: tf.Tensor2D, r: tf.Tensor3D): tf.Tensor2D {
    const N = x.shape[0];
    const xb = tf.transpose(tf.reshape(x, [N, this.blocks, this.blockSize]), [1, 0, 2]); // [blocks, N, b]
    const xr = tf.reshape(tf.transpose(mm(xb, r), [1, 0, 2]), [N, this.inDim]); // [N, in]
    return tf.sub(xr, x) as tf.Tensor2D;
  }

  /** x: [N, in] -> (x R - x) W: [N, out], so that the layer gives x R W + b. */
  apply(x: tf.Tensor2D): tf.Tensor2D | null {
    const o = this.owner;
    if (!o.enabled || o.strength === 0) return null;
    const r = this.rotation(o.strength, o.training ? this.dropBlocks() : []);
    const d = this.rotateMinusX(x, r);
    return (this.linear.trainable ? mm(d, this.linear.w) : frozenMatMul(d, this.linear.w)) as tf.Tensor2D;
  }

  /** Blocks to drop in a training forward: int(p * blocks) of them, none for a single block (as PEFT). */
  dropBlocks(): number[] {
    const p = this.owner.config.module_dropout;
    const k = Math.floor(p * this.blocks);
    if (p <= 0 || this.blocks === 1 || k === 0) return [];
    return shuffle(Array.from({ length: this.blocks }, (_, i) => i), this.owner.nextDropoutSeed()).slice(0, k);
  }

  /** (R - I) W at `strength`: what merging adds to the weight ([in, out]), W <- R W. */
  deltaTensor(strength: number): tf.Tensor2D {
    return tf.tidy(() => {
      const r = this.rotation(strength);
      const w = this.linear.w;
      const w3 = tf.reshape(w, [this.blocks, this.blockSize, this.outDim]); // row blocks of W
      return tf.sub(tf.reshape(tf.matMul(r, w3), [this.inDim, this.outDim]), w) as tf.Tensor2D;
    });
  }

  dispose(): void {
    this.weight.dispose();
  }
}

export class OftAdapter implements TrainableAdapter {
  readonly kind = 'oft' as const;
  readonly modules = new Map<string, OftModule>();
  /** 0 = base model, 1 = tuned: scales Q before the Cayley transform (a rotation at every strength). */
  strength = 1;
  enabled = true;
  /** Module dropout is active only while training. */
  training = false;
  /** Layers whose in_features the configured size does not divide, with the size used there (as PEFT). */
  readonly adjusted: { module: string; from: number; to: number }[] = [];
  /** Terms of the Cayley-Neumann series, or null for the exact transform. */
  readonly neumannTerms: number | null;
  /** Where module dropout's seeds come from: setDropoutSeed sets its base, each draw takes the next. */
  readonly seeds = new SeedStream();

  constructor(
    readonly lm: CausalLM,
    readonly config: OftAdapterConfig,
    opts: { weights?: ReadonlyMap<string, Float32Array> } = {},
  ) {
    const byR = !!config.r && !config.oft_block_size;
    const bad = oftShapeProblems({ ...config, oft_block_size: byR ? 2 : config.oft_block_size });
    if (byR && !(Number.isInteger(config.r) && config.r! >= 1)) bad.push(`OFT r must be a positive whole number, got ${config.r}.`);
    if (bad.length) throw new OftError(bad.join(' '));
    const terms = config.num_cayley_neumann_terms ?? 5;
    if (config.use_cayley_neumann && !(Number.isInteger(terms) && terms >= 1)) throw new OftError(`num_cayley_neumann_terms must be a positive whole number, got ${terms}.`);
    this.neumannTerms = config.use_cayley_neumann ? terms : null;
    const targets = [...lm.linears.values()].filter((l) => matchesTarget(l.name, config.target_modules));
    if (!targets.length) {
      const names = [...new Set([...lm.linears.keys()].map((n) => n.split('.').pop()))].join(', ');
      throw new OftError(`no layer matches target_modules [${config.target_modules.join(', ')}]; this model's layers are: ${names}`);
    }
    try {
      for (const l of targets) {
        if (l.adapter) throw new OftError(`${l.name} already has an adapter attached: dispose it first`);
        const inDim = l.w.shape[0];
        const { blocks, blockSize, adjustedFrom } = oftBlocks(inDim, config);
        if (blockSize < 2) throw new OftError(`${l.name}: ${inDim} inputs in ${blocks} blocks leaves blocks of ${blockSize}, nothing to rotate`);
        if (adjustedFrom !== null) this.adjusted.push({ module: l.name, from: adjustedFrom, to: byR ? blocks : blockSize });
        const init = opts.weights?.get(l.name);
        if (init && init.length !== blocks * skewSize(blockSize)) {
          throw new OftError(`${l.name}: ${init.length} weights given, ${blocks} blocks of ${blockSize} need ${blocks * skewSize(blockSize)}`);
        }
        this.modules.set(l.name, new OftModule(l, this, blocks, blockSize, init));
      }
    } catch (e) {
      for (const m of this.modules.values()) m.dispose();
      this.modules.clear();
      throw e;
    }
    for (const m of this.modules.values()) m.linear.adapter = m;
  }

  /** Seeds module dropout reproducibly: each training step sets a base, each call draws the next seed. */
  setDropoutSeed(base: number): void {
    this.seeds.reset(base);
  }

  nextDropoutSeed(): number {
    return this.seeds.next();
  }

  /** Checkpoint names of variables(), in order: `<module>.oft_R`. */
  get paramNames(): string[] {
    return [...this.modules.keys()].map((n) => `${n}.oft_R`);
  }

  variables(): tf.Variable[] {
    return [...this.modules.values()].map((m) => m.weight);
  }

  numParams(): number {
    return this.variables().reduce((a, v) => a + v.size, 0);
  }

  /** oft_R.weight by module name ([blocks, b(b-1)/2], PEFT's layout). */
  getWeights(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, m] of this.modules) out.set(name, m.weight.dataSync() as Float32Array);
    return out;
  }

  setWeights(w: ReadonlyMap<string, Float32Array>): void {
    for (const [name, m] of this.modules) {
      const v = w.get(name);
      if (!v) throw new OftError(`no weights for ${name}`);
      if (v.length !== m.weight.size) throw new OftError(`${name}: ${v.length} weights given, ${m.weight.size} needed`);
    }
    for (const [name, m] of this.modules) {
      const t = tf.tensor2d(w.get(name)!, m.weight.shape as [number, number]);
      m.weight.assign(t);
      t.dispose();
    }
  }

  /** The trained tensors by checkpoint name (paramNames), as a checkpoint holds them. */
  getTensors(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, m] of this.modules) out[`${name}.oft_R`] = { shape: [...m.weight.shape], data: m.weight.dataSync() as Float32Array };
    return out;
  }

  /** Sets the trained tensors from tensors by checkpoint name (a checkpoint's `tensors` will do). */
  setTensors(t: Readonly<Record<string, { data: Float32Array }>>): void {
    const w = new Map<string, Float32Array>();
    for (const name of this.modules.keys()) {
      const v = t[`${name}.oft_R`];
      if (!v) throw new OftError(`no tensor ${name}.oft_R`);
      w.set(name, v.data);
    }
    this.setWeights(w);
  }

  /** What merging adds to a module's weight at the current strength: (R - I) W, [in, out] (W <- R W). */
  delta(name: string): Float32Array {
    const t = this.deltaTensor(name);
    const d = t.dataSync() as Float32Array;
    t.dispose();
    return d;
  }

  /** delta() as a backend tensor [in, out], not read back. */
  deltaTensor(name: string): tf.Tensor2D {
    const m = this.modules.get(name);
    if (!m) throw new OftError(`no OFT module ${name}`);
    return m.deltaTensor(this.strength);
  }

  /** Detaches from the model and frees the variables. */
  dispose(): void {
    for (const m of this.modules.values()) {
      if (m.linear.adapter === m) m.linear.adapter = null;
      m.dispose();
    }
    this.modules.clear();
  }
}
