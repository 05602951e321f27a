// DPO's statistics as the page, the CLI and the objective name them (TRL's names), and the one rule read
// from them: a falling chosen log-probability. Plain data and arithmetic (no TF.js): the page imports it.
//
// DPO only asks that the chosen reply's reward exceed the rejected one's. The loss can fall while the model
// makes both replies less likely (rejected faster than chosen): the margin grows, yet the chosen replies,
// the ones it should produce, lose probability. TRL's users watch logps/chosen for that; so does this rule.

/** The statistics a DPO step reports (StepMetrics.extra), named as TRL logs them; evaluations prefix them with `eval_`. */
export const DPO_STAT_NAMES = ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected'] as const;
export type DpoStatName = (typeof DPO_STAT_NAMES)[number];

/** An evaluation's name for a step statistic (TRL's `eval_` prefix). */
export function evalStatName(name: DpoStatName): `eval_${DpoStatName}` {
  return `eval_${name}`;
}

/** How far logps/chosen must fall to be called falling: this many nats, and this share of its starting magnitude. */
export const LOGPS_FALL_NATS = 1;
export const LOGPS_FALL_SHARE = 0.05;

export interface LogpsTrend {
  /** held-out: the evaluations' eval_logps/chosen (the same pairs each time); training: the steps' logps/chosen. */
  source: 'held-out' | 'training';
  /** Mean of the first and of the last window of values (summed log-probabilities of the chosen replies, nats). */
  first: number;
  last: number;
  /** Values the windows were taken from. */
  points: number;
  /** first − last: positive when the chosen replies became less likely. */
  drop: number;
  falling: boolean;
}

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * The trend of logps/chosen over a run. Held-out evaluations measure the same pairs every time, so they are
 * used when there are at least 2 (windows of a third of them, at least 1); otherwise the training steps, each
 * on other pairs, when there are at least 6 (windows of a quarter, at least 2). Falling: the last window's
 * mean is below the first's by more than LOGPS_FALL_NATS and LOGPS_FALL_SHARE of the first's magnitude.
 * Null when there are too few values to tell.
 */
export function chosenLogpsTrend(steps: readonly (number | null | undefined)[], evals: readonly (number | null | undefined)[]): LogpsTrend | null {
  const held = evals.filter(finite);
  const train = steps.filter(finite);
  let source: LogpsTrend['source'];
  let xs: number[];
  let k: number;
  if (held.length >= 2) {
    source = 'held-out';
    xs = held;
    k = Math.max(1, Math.floor(held.length / 3));
  } else if (train.length >= 6) {
    source = 'training';
    xs = train;
    k = Math.max(2, Math.floor(train.length / 4));
  } else return null;
  const first = mean(xs.slice(0, k));
  const last = mean(xs.slice(-k));
  const drop = first - last;
  return { source, first, last, points: xs.length, drop, falling: drop > Math.max(LOGPS_FALL_NATS, LOGPS_FALL_SHARE * Math.abs(first)) };
}

/** The warning for a falling trend (null when it is not falling). */
export function logpsWarning(t: LogpsTrend | null): string | null {
  if (!t?.falling) return null;
  const where = t.source === 'held-out' ? 'on the held-out pairs' : 'on the training pairs';
  return (
    `logps/chosen fell from ${t.first.toFixed(2)} to ${t.last.toFixed(2)} ${where}: the model is pushing both chosen and rejected down, ` +
    'so the margin grows while the chosen replies become less likely. A lower learning rate, a higher beta or an SFT weight on chosen (RPO) keeps them up.'
  );
}
