// Learning-rate schedules with linear warmup, as in transformers' get_*_schedule_with_warmup.
export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Floor as a fraction of the peak (cosine and linear decay to lr * minRatio). */
  minRatio?: number;
}

/** Learning rate for optimizer step `step` (0-based: the first update uses step 0). */
export function learningRate(c: ScheduleConfig, step: number): number {
  if (c.warmupSteps > 0 && step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  if (c.kind === 'constant') return c.lr;
  const min = c.minRatio ?? 0;
  const span = Math.max(1, c.totalSteps - c.warmupSteps);
  const progress = Math.min(1, Math.max(0, (step - c.warmupSteps) / span));
  const f = c.kind === 'linear' ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
  return c.lr * (min + (1 - min) * f);
}
