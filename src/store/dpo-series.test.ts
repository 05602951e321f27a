// An objective's own statistics in the chart series: DPO's step statistics and their eval_ versions get a
// column each by name, aligned with the steps (null where a point lacks them), cut back with the rest when
// a run continues from an earlier step, and rebuilt the same from stored points.
import { describe, expect, it } from 'vitest';
import type { RunMetricPoint } from '../protocol/messages';
import { addEval, addStep, emptySeries, extraColumn, seriesFromPoints } from './series';

const step = (s: number, extra?: Record<string, number>, skipped?: string) => ({ step: s, loss: 0.7, smoothLoss: 0.7, lr: 0.1, gradNorm: 1, ...(extra ? { extra } : {}), ...(skipped ? { skipped } : {}) });

describe('series of an objective\'s statistics', () => {
  it('puts each step statistic and each evaluation statistic in its own column, aligned with the steps', () => {
    const s = emptySeries();
    addStep(s, step(1));
    addStep(s, step(2, { 'rewards/margins': 0.1, 'logps/chosen': -20 }));
    addEval(s, 2, 0.69, { 'eval_rewards/accuracies': 0.5, exact_match: 0.25 });
    addStep(s, step(3, { 'rewards/margins': 0.3, 'logps/chosen': Number.NaN }));
    addStep(s, step(4, { 'rewards/margins': 9 }, 'NaN loss'));
    addEval(s, 4, 0.6, { 'eval_rewards/accuracies': 0.75 });
    expect(s.step).toEqual([1, 2, 3, 4]);
    expect(s.stepExtra['rewards/margins']).toEqual([null, 0.1, 0.3, null]);
    expect(s.stepExtra['logps/chosen']).toEqual([null, -20, null, null]);
    expect(s.evalExtra['eval_rewards/accuracies']).toEqual([null, 0.5, null, 0.75]);
    expect(s.exact).toEqual([null, 0.25, null, null]);
    expect(extraColumn(s, 'stepExtra', 'rewards/rejected')).toEqual([null, null, null, null]);
    expect(extraColumn(s, 'evalExtra', 'eval_rewards/accuracies')).toBe(s.evalExtra['eval_rewards/accuracies']);
  });

  it('an evaluation before any step gets its own point; a continued run drops the later values of every column', () => {
    const s = emptySeries();
    addEval(s, 0, 0.69, { 'eval_logps/chosen': -30 });
    addStep(s, step(1, { 'rewards/chosen': 0.01 }));
    addStep(s, step(2, { 'rewards/chosen': 0.02 }));
    expect(s.step).toEqual([0, 1, 2]);
    expect(s.evalExtra['eval_logps/chosen']).toEqual([-30, null, null]);
    expect(s.stepExtra['rewards/chosen']).toEqual([null, 0.01, 0.02]);
    addStep(s, step(2, { 'rewards/chosen': 0.5 }));
    expect(s.stepExtra['rewards/chosen']).toEqual([null, 0.01, 0.5]);
    addStep(s, step(1, {}));
    expect(s.step).toEqual([0, 1]);
    expect(s.stepExtra['rewards/chosen']).toEqual([null, null]);
    expect(s.evalExtra['eval_logps/chosen']).toEqual([-30, null]);
  });

  it('rebuilds the same columns from stored points', () => {
    const points: RunMetricPoint[] = [
      { type: 'step', step: 1, epoch: 0, loss: 0.69, smoothLoss: 0.69, lr: 1, gradNorm: 1, tokens: 4, tokensPerSec: 1, extra: { 'rewards/accuracies': 0.5 } },
      { type: 'eval', step: 1, valLoss: 0.68, valPpl: 2, tokens: 4, extra: { 'eval_rewards/accuracies': 0.6 } },
      { type: 'step', step: 2, epoch: 0, loss: 0.6, smoothLoss: 0.65, lr: 1, gradNorm: 1, tokens: 4, tokensPerSec: 1, extra: { 'rewards/accuracies': 1 } },
    ];
    const s = seriesFromPoints(points);
    const live = emptySeries();
    for (const p of points) if (p.type === 'step') addStep(live, p); else addEval(live, p.step, p.valLoss, p.extra);
    expect(s).toEqual(live);
    expect(s.stepExtra['rewards/accuracies']).toEqual([0.5, 1]);
    expect(s.evalExtra['eval_rewards/accuracies']).toEqual([0.6, null]);
  });
});
