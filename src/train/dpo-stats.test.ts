// The falling-chosen-log-probability rule: held-out evaluations before training steps, windows at both ends,
// a margin in nats and in share of the start, too few values = no verdict.
import { describe, expect, it } from 'vitest';
import { chosenLogpsTrend, DPO_STAT_NAMES, evalStatName, LOGPS_FALL_NATS, logpsWarning } from './dpo-stats';

describe('chosenLogpsTrend', () => {
  it('reads the held-out evaluations when there are at least 2, with windows of a third', () => {
    // 6 evaluations: windows of 2; first mean -20, last mean -26 (a drop of 6 > max(1, 5% of 20)).
    const t = chosenLogpsTrend([-5, -5, -5, -5, -5, -5, -5, -5], [-19, -21, -22, -24, -25, -27])!;
    expect(t.source).toBe('held-out');
    expect(t.first).toBe(-20);
    expect(t.last).toBe(-26);
    expect(t.drop).toBe(6);
    expect(t.points).toBe(6);
    expect(t.falling).toBe(true);
    expect(logpsWarning(t)).toMatch(/^logps\/chosen fell from -20\.00 to -26\.00 on the held-out pairs: the model is pushing both chosen and rejected down/);
  });

  it('is not falling when it rises, holds, or falls by less than the margin', () => {
    expect(chosenLogpsTrend([], [-30, -25, -20])!.falling).toBe(false);
    expect(chosenLogpsTrend([], [-30, -30.2])!.falling).toBe(false);
    // 5% of 40 = 2 nats: a drop of 1.9 is noise, 2.1 is not.
    expect(chosenLogpsTrend([], [-40, -41.9])!.falling).toBe(false);
    expect(chosenLogpsTrend([], [-40, -42.1])!.falling).toBe(true);
    // Small magnitudes: at least LOGPS_FALL_NATS.
    expect(chosenLogpsTrend([], [-2, -2 - LOGPS_FALL_NATS + 0.01])!.falling).toBe(false);
    expect(chosenLogpsTrend([], [-2, -2 - LOGPS_FALL_NATS - 0.01])!.falling).toBe(true);
    expect(logpsWarning(chosenLogpsTrend([], [-30, -25]))).toBeNull();
  });

  it('falls back to the training steps (at least 6, windows of a quarter, at least 2) and skips gaps', () => {
    // 8 steps: windows of 2: first mean -10, last mean -14.
    const t = chosenLogpsTrend([-9, null, -11, -12, -12, -13, -13, -15, undefined, -13], [-10, null])!;
    expect(t.source).toBe('training');
    expect([t.first, t.last, t.points]).toEqual([-10, -14, 8]);
    expect(t.falling).toBe(true);
    expect(logpsWarning(t)).toContain('on the training pairs');
    // A single noisy last step does not decide it (last alone: a drop of 3): windows average it (a drop of 0.5).
    const noisy = chosenLogpsTrend([-20, -20, -20, -20, -20, -20, -18, -23], [])!;
    expect([noisy.drop, noisy.falling]).toEqual([0.5, false]);
  });

  it('gives no verdict on too few values, and ignores non-finite ones', () => {
    expect(chosenLogpsTrend([-1, -2, -3, -4, -5], [-1])).toBeNull();
    expect(chosenLogpsTrend([NaN, Infinity, -1, -2, -3, -4], [NaN, -3])).toBeNull();
    expect(logpsWarning(null)).toBeNull();
  });

  it('names the statistics as TRL does', () => {
    expect(DPO_STAT_NAMES).toEqual(['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']);
    expect(evalStatName('rewards/accuracies')).toBe('eval_rewards/accuracies');
  });
});
