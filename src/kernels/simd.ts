// tabtune's own WebAssembly SIMD kernels (src/kernels/simd.wat) in a memory of their own: float32
// arrays are allocated once (a bump allocator, 16-byte aligned), then read and written through views.
// Used for batch-1 decoding and for the fused CPU ops' temporaries, where TF.js's per-op overhead, not
// arithmetic, sets the pace.
import { WASM_BYTES } from './simd-wasm';

interface VecmatExports {
  memory: WebAssembly.Memory;
  vecmat(x: number, w: number, y: number, n: number, m: number, ldw: number): void;
  lse_row(x: number, n: number, out: number): void;
  exp_scale(x: number, y: number, n: number, shift: number, c: number): void;
  scale(x: number, n: number, c: number): void;
  attn_fwd(q: number, kt: number, v: number, o: number, mask: number, lim: number, s: number, stat: number, T: number, S: number, hd: number, ldo: number, scale: number): void;
  swiglu_fwd(g: number, u: number, y: number, n: number): void;
  swiglu_bwd(g: number, u: number, dy: number, dg: number, du: number, n: number): void;
  rmsnorm_fwd(x: number, g: number, y: number, r: number, rows: number, d: number, eps: number): void;
  rmsnorm_bwd(x: number, g: number, dy: number, r: number, dx: number, dg: number, rows: number, d: number): void;
  rope(x: number, cos: number, sin: number, y: number, rows: number, t: number, hd: number, back: number): void;
  dropout(x: number, y: number, n: number, seed: number, thr: number, c: number): void;
  attn_bwd(
    q: number, kt: number, k: number, vt: number, dout: number, o: number, mask: number, lim: number, stat: number,
    p: number, dp: number, dq: number, dk: number, dv: number, T: number, S: number, hd: number, ldo: number, scale: number,
  ): void;
}

let compiled: WebAssembly.Module | null = null;

/** Whether this JavaScript engine runs WebAssembly with SIMD (fixed-width, 128-bit). */
export function simdAvailable(): boolean {
  try {
    compiled ??= new WebAssembly.Module(WASM_BYTES);
    return true;
  } catch {
    return false;
  }
}

/** Largest memory one arena may ask for: wasm32 addresses 4 GiB; stay well below it. */
export const MAX_ARENA_BYTES = 2 ** 31;

/** Whether an op needing `floats` floats of scratch can have them (scratch() sizes an arena 25% above the ask). */
export function arenaFits(floats: number): boolean {
  return (floats * 1.25 + 1024) * 4 + 64 <= MAX_ARENA_BYTES;
}

export class SimdArena {
  private readonly ex: VecmatExports;
  /** The whole memory as floats (an arena's memory is sized once, in the constructor: views stay valid). */
  f32: Float32Array;
  private top = 0; // floats in use

  constructor(floats: number) {
    if (!simdAvailable()) throw new Error('this JavaScript engine has no WebAssembly SIMD');
    const bytes = floats * 4 + 64;
    if (bytes > MAX_ARENA_BYTES) throw new Error(`a SIMD kernel arena of ${(bytes / 2 ** 20).toFixed(0)} MB was asked for, more than one WebAssembly memory holds here (${MAX_ARENA_BYTES / 2 ** 20} MB)`);
    this.ex = new WebAssembly.Instance(compiled!).exports as unknown as VecmatExports;
    const have = this.ex.memory.buffer.byteLength;
    if (bytes > have) this.ex.memory.grow(Math.ceil((bytes - have) / 65536));
    this.f32 = new Float32Array(this.ex.memory.buffer);
  }

  /** Frees everything allocated after the first `keep` floats (the memory is kept for the next allocations; not zeroed). */
  reset(keep = 0): void {
    if (keep > this.f32.length || keep % 4 !== 0) throw new Error(`SIMD kernel arena: cannot keep ${keep} of ${this.f32.length} floats`);
    this.top = keep;
  }

  /** Floats allocated so far (a multiple of 4). */
  get used(): number {
    return this.top;
  }

  /** Floats the memory holds. */
  get capacity(): number {
    return this.f32.length;
  }

  /** n floats, 16-byte aligned (zero in a new arena, left as they are after reset()): their offset in floats. */
  alloc(n: number): number {
    const at = this.top;
    this.top += Math.ceil(n / 4) * 4;
    if (this.top > this.f32.length) throw new Error('SIMD kernel arena overflow (an allocation was not counted when sizing it)');
    return at;
  }

  view(at: number, n: number): Float32Array {
    return this.f32.subarray(at, at + n);
  }

  /** y[j] = sum_k x[k] * w[k * ldw + j], j < m, k < n (offsets in floats). */
  vecmat(x: number, w: number, y: number, n: number, m: number, ldw = m): void {
    this.ex.vecmat(x * 4, w * 4, y * 4, n, m, ldw);
  }

  /** Row max m and sum of exp(x - m) of x[0..n) (SIMD exp, float32 accuracy), written to out and out + 1; x[0..n) is left holding exp(x - m). */
  lseRow(x: number, n: number, out: number): void {
    this.ex.lse_row(x * 4, n, out * 4);
  }

  /** y[j] = c * exp(x[j] - shift), j < n (y may be x). */
  expScale(x: number, y: number, n: number, shift: number, c: number): void {
    this.ex.exp_scale(x * 4, y * 4, n, shift, c);
  }

  /** x[j] *= c, j < n. */
  scale(x: number, n: number, c: number): void {
    this.ex.scale(x * 4, n, c);
  }

  /** The arena's memory as 32-bit integers; offsets as for f32. */
  get i32(): Int32Array {
    return new Int32Array(this.f32.buffer, this.f32.byteOffset, this.f32.length);
  }

  /**
   * Attention for one (sequence, query head), all T query rows (offsets in floats; simd.wat attn_fwd): q [T, hd];
   * kt [hd, S]; v [S, hd]; o row i at o + i * ldo; mask [T, S] additive; lim [T] int32 keys each row visits;
   * s scratch [S]; stat [T, 2] receives each row's max score and 1 / sum of exp for the backward.
   */
  attnFwd(q: number, kt: number, v: number, o: number, mask: number, lim: number, s: number, stat: number, T: number, S: number, hd: number, ldo: number, scale: number): void {
    this.ex.attn_fwd(q * 4, kt * 4, v * 4, o * 4, mask * 4, lim * 4, s * 4, stat * 4, T, S, hd, ldo, scale);
  }

  /**
   * attnFwd's gradient (simd.wat attn_bwd): also k [S, hd] (keys as rows), vt [hd, S], dout like o, scratch p and
   * dp [S]; writes dq [T, hd] and adds into dk and dv [S, hd].
   */
  attnBwd(
    q: number, kt: number, k: number, vt: number, dout: number, o: number, mask: number, lim: number, stat: number,
    p: number, dp: number, dq: number, dk: number, dv: number, T: number, S: number, hd: number, ldo: number, scale: number,
  ): void {
    this.ex.attn_bwd(q * 4, kt * 4, k * 4, vt * 4, dout * 4, o * 4, mask * 4, lim * 4, stat * 4, p * 4, dp * 4, dq * 4, dk * 4, dv * 4, T, S, hd, ldo, scale);
  }

  /** y = silu(g) u over n floats (simd.wat swiglu_fwd; offsets in floats). */
  swigluFwd(g: number, u: number, y: number, n: number): void {
    this.ex.swiglu_fwd(g * 4, u * 4, y * 4, n);
  }

  /** swigluFwd's gradient: dg and du from g, u and dy (simd.wat swiglu_bwd). */
  swigluBwd(g: number, u: number, dy: number, dg: number, du: number, n: number): void {
    this.ex.swiglu_bwd(g * 4, u * 4, dy * 4, dg * 4, du * 4, n);
  }

  /** RMSNorm of `rows` rows of d floats: y = x rn g, rn = 1 / sqrt(mean(x^2) + eps) written to r[row] (simd.wat). */
  rmsNormFwd(x: number, g: number, y: number, r: number, rows: number, d: number, eps: number): void {
    this.ex.rmsnorm_fwd(x * 4, g * 4, y * 4, r * 4, rows, d, eps);
  }

  /** rmsNormFwd's gradient: writes dx, adds each row's dy x rn into dg (zero it first). */
  rmsNormBwd(x: number, g: number, dy: number, r: number, dx: number, dg: number, rows: number, d: number): void {
    this.ex.rmsnorm_bwd(x * 4, g * 4, dy * 4, r * 4, dx * 4, dg * 4, rows, d);
  }

  /**
   * RoPE (rotate-half) over `rows` rows of hd floats, row n at position n % t, cos and sin [t, hd] (simd.wat rope;
   * offsets in floats); `backward` applies the transposed rotation (the gradient).
   */
  rope(x: number, cos: number, sin: number, y: number, rows: number, t: number, hd: number, backward: boolean): void {
    this.ex.rope(x * 4, cos * 4, sin * 4, y * 4, rows, t, hd, backward ? 1 : 0);
  }

  /**
   * Inverted dropout of n floats (simd.wat dropout; offsets in floats): y = x / (1 - p) where a counter-based hash
   * of (seed, index) keeps the element, else 0. The same seed makes the same mask.
   */
  dropout(x: number, y: number, n: number, p: number, seed: number): void {
    const thr = Math.min(2 ** 32 - 1, Math.round(p * 2 ** 32)) | 0; // keep when hash >= p 2^32 (unsigned)
    this.ex.dropout(x * 4, y * 4, n, seed | 0, thr, 1 / (1 - p));
  }
}

/** One arena kept for reuse between decoding calls, when it is small enough to hold on to. */
let spare: SimdArena | null = null;
const SPARE_MAX_FLOATS = 16 * 2 ** 20; // 64 MB

/** A reset arena of at least `floats` floats: the spare one when it is large enough, else a new one. */
export function acquireArena(floats: number): SimdArena {
  if (spare && spare.capacity >= floats + 64) {
    const a = spare;
    spare = null;
    a.reset();
    return a;
  }
  return new SimdArena(floats);
}

/** Hands an arena back for reuse (a large one is left to the garbage collector). */
export function releaseArena(a: SimdArena): void {
  if (a.capacity <= SPARE_MAX_FLOATS && (!spare || spare.capacity < a.capacity)) spare = a;
}

let scratchArena: SimdArena | null = null;

/**
 * A reset arena of at least `floats` floats for one op's temporaries (shared by the fused ops, reused between
 * calls, grown by replacing it): whatever an op puts there is gone once it returns.
 */
export function scratch(floats: number): SimdArena {
  if (!scratchArena || scratchArena.capacity < floats + 64) scratchArena = new SimdArena(Math.ceil(floats * 1.25) + 1024);
  scratchArena.reset();
  return scratchArena;
}
