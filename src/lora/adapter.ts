// LoRA (Hu et al. 2021) the way PEFT does it: for each targeted Linear, y = x W + b + s * dropout(x) A B
// with A [in, r] Kaiming-uniform (PEFT's kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in))),
// B [r, out] zero, s = lora_alpha / r. Base weights stay frozen; only A and B are variables.
// A strength multiplier (0 = base, 1 = tuned) and an on/off switch act at inference without reloading.
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';
import { seededRandom, SeedStream } from '../util/random';
import { dropout, mm, type Linear, type LinearAdapter, type LowRankDelta } from '../model/ops';
import { loraShapeProblems, type LoraConfig } from '../train/config';
import type { TrainableAdapter } from '../train/loop';


/** PEFT's rule: a module is targeted when its name equals a target or ends with "." + target. */
export function matchesTarget(module: string, targets: string[]): boolean {
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

export class LoraError extends Error {
  override name = 'LoraError';
}

export class LoraModule implements LinearAdapter {
  /** [in, r] (PEFT stores lora_A.weight as [r, in]) */
  readonly A: tf.Variable;
  /** [r, out] (PEFT stores lora_B.weight as [out, r]) */
  readonly B: tf.Variable;

  constructor(
    readonly linear: Linear,
    private readonly owner: LoraAdapter,
    init: { A: Float32Array; B?: Float32Array },
  ) {
    const [inDim, outDim] = linear.w.shape;
    const r = owner.config.r;
    // tidy frees the initial values; the variables keep their own reference to the data.
    this.A = tf.tidy(() => tf.variable(tf.tensor2d(init.A, [inDim, r]), true));
    this.B = tf.tidy(() => tf.variable(init.B ? tf.tensor2d(init.B, [r, outDim]) : tf.zeros([r, outDim]), true));
  }

  get inDim(): number {
    return this.linear.w.shape[0];
  }

  get outDim(): number {
    return this.linear.w.shape[1];
  }

  /** The dropout seeds, shared by the adapter's modules (a recomputed block rewinds them). */
  get seeds(): SeedStream {
    return this.owner.seeds;
  }

  /** A and B: what apply() trains. */
  trainables(): tf.Tensor[] {
    return [this.A, this.B];
  }

  /** x: [N, in] -> s * dropout(x) A B: [N, out] */
  apply(x: tf.Tensor2D): tf.Tensor2D | null {
    const d = this.lowRank(x);
    return d ? (tf.mul(mm(mm(d.xin, d.A), d.B), d.s) as tf.Tensor2D) : null;
  }

  /** The update's parts (ops.ts fuses them with the frozen matMul): xin = dropout(x) while training. */
  lowRank(x: tf.Tensor2D): LowRankDelta | null {
    const o = this.owner;
    const s = o.scale * o.strength;
    if (!o.enabled || s === 0) return null;
    const p = o.config.lora_dropout;
    const xin = o.training && p > 0 ? dropout(x, p, o.nextDropoutSeed()) : x;
    return { xin: xin as tf.Tensor2D, A: this.A as unknown as tf.Tensor2D, B: this.B as unknown as tf.Tensor2D, s };
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }
}

export class LoraAdapter implements TrainableAdapter {
  readonly modules = new Map<string, LoraModule>();
  readonly scale: number;
  /** 0 = base model, 1 = tuned; values between interpolate the update. */
  strength = 1;
  enabled = true;
  /** Dropout is active only while training. */
  training = false;
  /** Where dropout's seeds come from: setDropoutSeed sets its base, each dropout call draws the next. */
  readonly seeds = new SeedStream();

  constructor(
    readonly lm: CausalLM,
    readonly config: LoraConfig,
    opts: { seed?: number; weights?: Map<string, { A: Float32Array; B: Float32Array }> } = {},
  ) {
    const bad = loraShapeProblems(config);
    if (bad.length) throw new LoraError(bad.join(' '));
    this.scale = config.lora_alpha / config.r;
    const targets = [...lm.linears.values()].filter((l) => matchesTarget(l.name, config.target_modules));
    if (!targets.length) {
      const names = [...new Set([...lm.linears.keys()].map((n) => n.split('.').pop()))].join(', ');
      throw new LoraError(`no layer matches target_modules [${config.target_modules.join(', ')}]; this model's layers are: ${names}`);
    }
    const rand = seededRandom(opts.seed ?? 0);
    for (const l of targets) {
      if (l.adapter) throw new LoraError(`${l.name} already has an adapter attached: dispose it first`);
      const [inDim] = l.w.shape;
      const given = opts.weights?.get(l.name);
      let A: Float32Array;
      if (given) A = given.A;
      else {
        const bound = 1 / Math.sqrt(inDim);
        A = new Float32Array(inDim * config.r);
        // Draw in PEFT's [r, in] order, store transposed as [in, r], so a seed means the same init there.
        for (let j = 0; j < config.r; j++) for (let i = 0; i < inDim; i++) A[i * config.r + j] = (2 * rand() - 1) * bound;
      }
      this.modules.set(l.name, new LoraModule(l, this, { A, B: given?.B }));
    }
    for (const m of this.modules.values()) m.linear.adapter = m;
  }

  /** Seeds dropout (ops.ts) reproducibly: each training step sets a base, each call draws the next seed. */
  setDropoutSeed(base: number): void {
    this.seeds.reset(base);
  }

  nextDropoutSeed(): number {
    return this.seeds.next();
  }

  variables(): tf.Variable[] {
    return [...this.modules.values()].flatMap((m) => [m.A, m.B]);
  }

  /** Checkpoint names of variables(), in order: `<module>.lora_A` [in, r], `<module>.lora_B` [r, out]. */
  get paramNames(): string[] {
    return [...this.modules.keys()].flatMap((n) => [`${n}.lora_A`, `${n}.lora_B`]);
  }

  numParams(): number {
    return this.variables().reduce((a, v) => a + v.size, 0);
  }

  /** A and B in math layout ([in, r], [r, out]) by module name. */
  getWeights(): Map<string, { A: Float32Array; B: Float32Array }> {
    const out = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const [name, m] of this.modules) out.set(name, { A: m.A.dataSync() as Float32Array, B: m.B.dataSync() as Float32Array });
    return out;
  }

  setWeights(w: Map<string, { A: Float32Array; B: Float32Array }>): void {
    for (const name of this.modules.keys()) if (!w.get(name)) throw new LoraError(`no weights for ${name}`);
    // tidy frees the new values' tensors; the variables keep their own reference to the data.
    tf.tidy(() => {
      for (const [name, m] of this.modules) {
        const v = w.get(name)!;
        m.A.assign(tf.tensor2d(v.A, m.A.shape as [number, number]));
        m.B.assign(tf.tensor2d(v.B, m.B.shape as [number, number]));
      }
    });
  }

  /** The trained tensors by checkpoint name (paramNames), as a checkpoint holds them. */
  getTensors(): Record<string, { shape: number[]; data: Float32Array }> {
    const out: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const [name, m] of this.modules) {
      out[`${name}.lora_A`] = { shape: [...m.A.shape], data: m.A.dataSync() as Float32Array };
      out[`${name}.lora_B`] = { shape: [...m.B.shape], data: m.B.dataSync() as Float32Array };
    }
    return out;
  }

  /** Sets the trained tensors from tensors by checkpoint name (a checkpoint's `tensors` will do). */
  setTensors(t: Readonly<Record<string, { data: Float32Array }>>): void {
    const w = new Map<string, { A: Float32Array; B: Float32Array }>();
    for (const name of this.modules.keys()) {
      const A = t[`${name}.lora_A`];
      const B = t[`${name}.lora_B`];
      if (!A || !B) throw new LoraError(`no tensor ${name}.lora_${A ? 'B' : 'A'}`);
      w.set(name, { A: A.data, B: B.data });
    }
    this.setWeights(w);
  }

  /** The update s * strength * A B for one module, in math layout [in, out]. */
  delta(name: string): Float32Array {
    const t = this.deltaTensor(name);
    const d = t.dataSync() as Float32Array;
    t.dispose();
    return d;
  }

  /** delta() as a backend tensor [in, out], not read back. */
  deltaTensor(name: string): tf.Tensor2D {
    const m = this.modules.get(name);
    if (!m) throw new LoraError(`no LoRA module ${name}`);
    return tf.tidy(() => tf.mul(tf.matMul(m.A, m.B), this.scale * this.strength));
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
