// FLOP counts of the benchmark's measurements (pure: no tensors, no clock). The same formulas are used
// for tabtune and for the PyTorch peer, so MFU figures of both sides are comparable.
//
// Training step of LoRA over a frozen base, per token (T = the sequence length of the step):
//   forward                 2 * N            N = parameters of every frozen matmul, the vocabulary
//                                              projection included (a tied head counts: it is a matmul)
//   backward, data gradient 2 * N            (no weight gradients for the frozen weights)
//   LoRA, per adapted linear 6 * r * (in + out)   (x A, (xA) B forward; their data and weight gradients)
//   attention, per layer    3 * 2 * 2 * T * H * hd   (Q K^T and P V over the full T x T square, as the
//                                              engine computes it; x3 for forward + backward)
// step FLOPs = B * T * (4 N + sum LoRA + L * 12 * T * H * hd).
// MFU = step FLOPs / step time / the measured matmul peak of the same backend (bench/measure.ts).
// The conventional "6N" figure (6 * all parameters * tokens, as if every weight were trained) is
// reported beside it as flops6n but is NOT what MFU uses.
import { matchesTarget } from '../src/lora/adapter';

export interface LinearShape {
  /** Hugging Face module name, e.g. model.layers.0.self_attn.q_proj */
  name: string;
  in: number;
  out: number;
}

/** What the FLOP counts need of a model. */
export interface ModelShape {
  layers: number;
  /** Query heads and their size. */
  heads: number;
  headDim: number;
  hidden: number;
  vocab: number;
  context: number;
  /** Every Linear of the blocks (not the vocabulary projection). */
  linears: LinearShape[];
  /** All distinct parameters (embeddings and norms included, a tied head once). */
  numParams: number;
}

export interface LoraShape {
  r: number;
  targets: string[];
}

/** Parameters of every matmul of a forward: the blocks' linears plus the vocabulary projection [D, V]. */
export function matmulParams(m: ModelShape): number {
  return m.linears.reduce((a, l) => a + l.in * l.out, 0) + m.hidden * m.vocab;
}

/** 6 r (in + out) summed over the adapted linears: LoRA's FLOPs per token of a training step. */
export function loraFlopsPerToken(m: ModelShape, lora: LoraShape): number {
  return m.linears.filter((l) => matchesTarget(l.name, lora.targets)).reduce((a, l) => a + 6 * lora.r * (l.in + l.out), 0);
}

/** FLOPs of one LoRA training step at batch B x sequence T (formula at the top of this file). */
export function trainStepFlops(m: ModelShape, lora: LoraShape, B: number, T: number): number {
  const N = matmulParams(m);
  const attention = m.layers * 3 * 2 * 2 * T * m.heads * m.headDim;
  return B * T * (4 * N + loraFlopsPerToken(m, lora) + attention);
}

/** The conventional 6 N D figure (all parameters, as if all were trained), for reference only. */
export function trainStepFlops6N(m: ModelShape, B: number, T: number): number {
  return 6 * m.numParams * B * T;
}

/**
 * FLOPs of a prefill: a forward over T prompt tokens into an empty KV cache, logits of the last position
 * only (as generation asks): 2 * (N - D V) per token, one vocabulary projection, attention over T x T.
 */
export function prefillFlops(m: ModelShape, T: number): number {
  const body = matmulParams(m) - m.hidden * m.vocab;
  return 2 * body * T + 2 * m.hidden * m.vocab + m.layers * 2 * 2 * T * T * m.heads * m.headDim;
}

/**
 * FLOPs of greedy decoding of `n` tokens after a prompt of `p` tokens, batch 1, with a KV cache: each
 * step feeds one token (2 N, the vocabulary projection included) and attends over the cached positions
 * plus itself. The prompt's own forward (the first step) is counted as a prefill of p tokens.
 */
export function decodeFlops(m: ModelShape, p: number, n: number): number {
  if (n <= 0) return 0;
  let total = prefillFlops(m, p);
  const N = matmulParams(m);
  for (let i = 1; i < n; i++) total += 2 * N + m.layers * 2 * 2 * (p + i) * m.heads * m.headDim;
  return total;
}

/** The distinct [rows, in] x [in, out] matmuls of a training step at `rows` = B * T tokens (vocabulary projection last). */
export function matmulShapes(m: ModelShape, rows: number): [number, number, number][] {
  const seen = new Set<string>();
  const out: [number, number, number][] = [];
  for (const [i, o] of [...m.linears.map((l) => [l.in, l.out] as const), [m.hidden, m.vocab] as const]) {
    const key = `${i}x${o}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push([rows, i, o]);
  }
  return out;
}
