// Looking inside a training loss in tests: the logits its forward returned, and how far two sets of
// gradients of the same variables are apart.
import type * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';

/** Runs `fn` with `lm.forward` recording the shape of every logits tensor it returns. */
export function withForwardShapes<T>(lm: CausalLM, fn: () => T): { result: T; shapes: number[][] } {
  const shapes: number[][] = [];
  const forward = lm.forward.bind(lm);
  lm.forward = (ids, o) => {
    const l = forward(ids, o);
    shapes.push(l.shape);
    return l;
  };
  try {
    return { result: fn(), shapes };
  } finally {
    lm.forward = forward;
  }
}

/** The largest |a - b| and the largest |a| over the gradients of the same variables. */
export function gradDiff(a: tf.NamedTensorMap, b: tf.NamedTensorMap): { worst: number; largest: number } {
  let worst = 0;
  let largest = 0;
  for (const [name, t] of Object.entries(a)) {
    const g = t.dataSync();
    const h = b[name]!.dataSync();
    for (let i = 0; i < g.length; i++) {
      worst = Math.max(worst, Math.abs(g[i]! - h[i]!));
      largest = Math.max(largest, Math.abs(g[i]!));
    }
  }
  return { worst, largest };
}
