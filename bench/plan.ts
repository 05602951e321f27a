// What the benchmark measures on a model (pure): the shapes of issue 14, capped by the model's context,
// and how many steps and repetitions. Node, the page and the PyTorch peer all run this plan.
import { matmulShapes, type ModelShape } from './flops';
import type { TrainOptions } from './measure';

export const QV_TARGETS = ['q_proj', 'v_proj'];
export const ALL_LINEAR_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
/** Training shapes: batch x sequence. */
export const TRAIN_SHAPES: ReadonlyArray<[batch: number, seq: number]> = [
  [8, 128],
  [1, 256],
];
export const LORA_R = 8;
export const LORA_ALPHA = 16;
export const WARMUP_STEPS = 2;
/** Prompt length of the generation measurement (new tokens fill the rest, up to 256). */
export const GEN_PROMPT = 8;

export interface BenchPlan {
  shape: ModelShape;
  train: TrainOptions[];
  /** The numTensors check: many steps of the cheapest shape, every linear adapted. */
  leak: TrainOptions;
  prefill: { seq: number; reps: number };
  generate: { prompt_tokens: number; new_tokens: number; reps: number };
  matmulRows: number[];
  matmulShapes: [number, number, number][];
  matmulBudgetMs: number;
  matmulMinReps: number;
}

/** `recompute`: each training shape also with activation recomputation (TrainConfig.recompute), Node only. */
export function benchPlan(shape: ModelShape, o: { steps: number; leakSteps: number; quick: boolean; recompute?: boolean }): BenchPlan {
  const ctx = shape.context;
  const train: TrainOptions[] = [];
  // --quick (a smoke run, or a model like SmolLM2-135M where an 8 x 128 step takes a minute): q,v only, 1 warm-up step.
  for (const [batch, seq] of TRAIN_SHAPES) {
    for (const targets of o.quick ? [QV_TARGETS] : [QV_TARGETS, ALL_LINEAR_TARGETS]) {
      const t: TrainOptions = { batch, seq: Math.min(seq, ctx), targets, r: LORA_R, alpha: LORA_ALPHA, warmup: o.quick ? 1 : WARMUP_STEPS, steps: o.steps };
      train.push(t);
      if (o.recompute) train.push({ ...t, recompute: true });
    }
  }
  const rows = [...new Set(train.map((t) => t.batch * t.seq))];
  const prompt = Math.min(GEN_PROMPT, ctx - 1);
  return {
    shape,
    train,
    leak: { batch: 1, seq: Math.min(32, ctx), targets: ALL_LINEAR_TARGETS, r: LORA_R, alpha: LORA_ALPHA, warmup: WARMUP_STEPS, steps: o.leakSteps },
    prefill: { seq: Math.min(256, ctx), reps: o.quick ? 2 : 5 },
    generate: { prompt_tokens: prompt, new_tokens: Math.min(256, ctx - prompt), reps: o.quick ? 1 : 2 },
    matmulRows: rows,
    matmulShapes: [...new Map(rows.flatMap((r) => matmulShapes(shape, r)).map((s) => [s.join('x'), s])).values()],
    matmulBudgetMs: o.quick ? 150 : 400,
    matmulMinReps: o.quick ? 2 : 3,
  };
}
