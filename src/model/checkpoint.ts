// Activation recomputation ("gradient checkpointing"), one transformer block at a time, for every
// architecture. A training forward normally keeps every intermediate of every block on the gradient tape
// until the backward; with recomputation each block is one node on the tape that keeps only its input
// (B x T x D floats): its forward runs off the tape (ops inside a customGrad's forward are not recorded, and
// its intermediates are freed at once), and its backward runs the block again, on the tape, from the saved
// input and backpropagates through that, one block's activations alive at a time. The price is one more
// forward of the blocks per step (measured 1.18-1.31x the step time, bench/README.md); the memory kept is L
// block inputs instead of L blocks' activations.
//
// For the gradients to be the same as without it:
// - every tensor the block trains (full-parameter weights and norms, LoRA's A and B, OFT's oft_R) is an
//   input of the node, so the loop's tf.variableGrads reaches them through it (blockInputs lists them from
//   the block's tensors and Linears, the adapters saying what they train: LinearAdapter.trainables);
// - random draws are replayed: each adapter's dropout SeedStream is rewound to where the block's forward
//   started, so the recompute draws the same masks (LinearAdapter.seeds);
// - tensors the block reads that live only as long as the forward's tidy (RoPE tables, the attention mask)
//   are saved with the input and handed to the block again.
import * as tf from '@tensorflow/tfjs-core';
import type { SeedStream } from '../util/random';
import type { Linear } from './ops';

/** What a block trains and where its random draws come from (blockInputs). */
export interface BlockInputs {
  /** Trainable tensors read inside the block, each once. */
  params: tf.Tensor[];
  /** Its adapters' dropout seed streams, each once. */
  seeds: SeedStream[];
}

const isTrainable = (t: tf.Tensor | null | undefined): t is tf.Tensor => t instanceof tf.Variable && t.trainable;

/**
 * The trainables and seed streams of a block made of `parts`: its own tensors (norm weights, biases) and its
 * Linears (weight and bias when trained, the adapter's trainables and seeds).
 */
export function blockInputs(parts: readonly (tf.Tensor | Linear)[]): BlockInputs {
  const params = new Map<number, tf.Tensor>();
  const seeds = new Set<SeedStream>();
  for (const p of parts) {
    if (p instanceof tf.Tensor) {
      if (isTrainable(p)) params.set(p.id, p);
      continue;
    }
    for (const t of [p.w, p.b]) if (isTrainable(t)) params.set(t.id, t);
    for (const t of p.adapter?.trainables?.() ?? []) params.set(t.id, t);
    if (p.adapter?.seeds) seeds.add(p.adapter.seeds);
  }
  return { params: [...params.values()], seeds: [...seeds] };
}

/**
 * block(x, ...consts) with its activations recomputed in the backward (see the top of this file).
 * x: the block's input (the residual stream); consts: tensors it reads that do not need a gradient and may
 * be freed before the backward (they are kept with x); inputs: blockInputs of the block. Call it where the
 * block would be called; outside a gradient computation it is just block(x, ...consts).
 */
export function checkpoint(
  block: (x: tf.Tensor, ...consts: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  consts: readonly tf.Tensor[],
  inputs: BlockInputs,
): tf.Tensor {
  const { params, seeds } = inputs;
  const start = seeds.map((s) => s.position);
  const op = tf.customGrad(((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const xi = args[0] as tf.Tensor;
    save([xi, ...consts]); // a no-op off the tape
    return {
      value: block(xi, ...consts),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => recompute(block, saved, params, seeds, start, dy),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
  return op(x, ...params);
}

/**
 * The backward of a checkpointed block: the block run again on the tape from the saved input (the seed
 * streams rewound to the forward's positions), and backpropagated with dy. Returns [dx, ...dparams].
 */
function recompute(
  block: (x: tf.Tensor, ...consts: tf.Tensor[]) => tf.Tensor,
  saved: tf.Tensor[],
  params: readonly tf.Tensor[],
  seeds: readonly SeedStream[],
  start: readonly number[],
  dy: tf.Tensor,
): tf.Tensor[] {
  const [x, ...consts] = saved as [tf.Tensor, ...tf.Tensor[]];
  const engine = tf.engine();
  // A gradient computation started inside the backward of another replaces the engine's tape and clears
  // it when done: the outer one still needs its own afterwards (to free what its nodes saved).
  const outerTape = engine.state.activeTape;
  const resume = seeds.map((s) => s.position);
  seeds.forEach((s, i) => (s.position = start[i]!));
  try {
    // One tidy: the recomputed activations are freed as soon as this block's gradients exist.
    return tf.tidy(() => {
      const { grads } = engine.gradients(() => block(x, ...consts), [x, ...params], dy, true);
      return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? x : params[i - 1]!));
    });
  } finally {
    engine.state.activeTape = outerTape;
    seeds.forEach((s, i) => (s.position = resume[i]!));
  }
}
