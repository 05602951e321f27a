// The Train panel's guidance from measurements: the presets' lengths, the small-data warning, the time
// estimate from a measured speed, and the end-of-run verdict from held-out evaluations.
import { describe, expect, it } from 'vitest';
import { totalSteps } from '../train/config';
import { baseRow, dataSizeWarning, estimateTime, evalRows, formatDuration, medianTokensPerSec, runVerdict, stepTimingKey, type MeasuredSpeed } from './guide';
import { addEval, addStep, emptySeries } from './series';
import { presetConfig, PRESET_MIN_STEPS } from './training';

describe('presets', () => {
  it('grow Quick < Balanced < Thorough for every dataset size', () => {
    for (const arch of ['llama', 'gpt2']) {
      for (const n of [1, 2, 5, 12, 28, 50, 100, 180, 250, 600, 1000, 5000, 100_000]) {
        const [q, b, t] = (['quick', 'balanced', 'thorough'] as const).map((p) => totalSteps(presetConfig(p, arch, n), n));
        expect(q, `${n} examples`).toBeLessThan(b!);
        expect(b, `${n} examples`).toBeLessThan(t!);
      }
    }
  });

  it('keep their epochs where those run enough steps, and the floors on small data (28 lines: not 60 / 12 / 24)', () => {
    const n = 25; // 28 valid lines, 10% held out
    expect(totalSteps(presetConfig('quick', 'llama', n), n)).toBe(60);
    expect(totalSteps(presetConfig('balanced', 'llama', n), n)).toBe(PRESET_MIN_STEPS.balanced);
    expect(totalSteps(presetConfig('thorough', 'llama', n), n)).toBe(PRESET_MIN_STEPS.thorough);
    const big = presetConfig('balanced', 'llama', 10_000);
    expect(big.steps).toBe(0);
    expect(big.epochs).toBe(3);
    expect(presetConfig('balanced', 'llama')).toEqual(presetConfig('balanced', 'llama', null));
  });
});

describe('dataSizeWarning', () => {
  const c = { steps: 0, epochs: 3, batchSize: 4, gradAccum: 1 };
  it('warns about few examples, many passes and few steps', () => {
    const w = dataSizeWarning({ ...c, steps: 150 }, 25)!;
    expect(w).toContain('Only 25 training examples');
    expect(w).toContain('150 steps go over each example about 24 times');
    expect(dataSizeWarning({ ...c, steps: 12 }, 1000)).toBe('Only 12 steps: likely too few to learn anything; pick Thorough or raise Steps.');
  });
  it('says nothing when the data fits the steps', () => {
    expect(dataSizeWarning(c, 1000)).toBeNull();
    expect(dataSizeWarning(c, 0)).toBeNull();
  });
});

describe('time estimate', () => {
  const speed: MeasuredSpeed = { runId: 'r', runName: 'capitals', model: { name: 'tabtune-base', numParams: 10, arch: 'llama' }, tokensPerSec: 500, steps: 40 };
  const c = { steps: 100, epochs: 0, batchSize: 4, gradAccum: 2, evalEvery: 25 };
  it('is steps x examples per step x tokens per example / measured tokens per second', () => {
    const e = estimateTime(c, { trainExamples: 80, tokensPerExample: 20 }, speed, { numParams: 10, arch: 'llama' })!;
    expect(e.seconds).toBeCloseTo((100 * 8 * 20) / 500);
    expect(e.evaluations).toBe(4);
    expect(formatDuration(e.seconds)).toBe('about 32 s');
  });
  it('needs a speed measured on the loaded model', () => {
    expect(estimateTime(c, { trainExamples: 80, tokensPerExample: 20 }, speed, { numParams: 11, arch: 'llama' })).toBeNull();
    expect(estimateTime(c, { trainExamples: 80, tokensPerExample: 20 }, null, { numParams: 10, arch: 'llama' })).toBeNull();
  });
  it('times a step again when what a step costs changes, not when the run gets longer', () => {
    const m = { name: 'tabtune-tiny', numParams: 10 };
    const c = presetConfig('quick', 'llama', 36);
    const k = stepTimingKey(m, 'd1', null, c);
    expect(stepTimingKey(m, 'd1', null, { ...c, steps: 500, lr: 1e-2 } as typeof c)).toBe(k);
    for (const other of [{ ...c, batchSize: c.batchSize * 2 }, { ...c, gradAccum: c.gradAccum + 1 }, { ...c, lora: { ...c.lora, r: 16 } }, { ...c, mode: 'oft' as const }]) expect(stepTimingKey(m, 'd1', null, other)).not.toBe(k);
    expect(stepTimingKey(m, 'd2', null, c)).not.toBe(k);
    expect(stepTimingKey(m, 'd1', 64, c)).not.toBe(k);
    expect(stepTimingKey(null, 'd1', null, c)).toBeNull();
    expect(stepTimingKey(m, null, null, c)).toBeNull();
  });

  it('takes the median of the steps measured', () => {
    expect(medianTokensPerSec([{ type: 'step', tokensPerSec: 100 }, { type: 'eval' }, { type: 'step', tokensPerSec: 900 }, { type: 'step', tokensPerSec: 300 }])).toEqual({ tokensPerSec: 300, steps: 3 });
    expect(medianTokensPerSec([{ type: 'eval' }])).toBeNull();
    expect(formatDuration(7 * 60 + 10)).toBe('about 7 min');
    expect(formatDuration(2 * 3600 + 5 * 60)).toBe('about 2 h 5 min');
  });
});

describe('runVerdict', () => {
  const step = (n: number) => ({ type: 'step' as const, step: n, epoch: 0, loss: 1, smoothLoss: 1, lr: 0, gradNorm: 0, tokens: 1, tokensPerSec: 1 });
  function series(evals: [number, number, number | null][]) {
    const s = emptySeries();
    for (const [n, val, exact] of evals) {
      addStep(s, step(n));
      addEval(s, n, val, exact === null ? undefined : { exact_match: exact });
    }
    return s;
  }
  it('0% → 0%: did not learn', () => {
    const v = runVerdict(evalRows(series([[10, 2.5, 0], [20, 2.43, 0]])));
    expect(v.kind).toBe('no');
    expect(v.text).toBe('Held-out exact match 0% (step 10) → 0% (step 20): the model did not learn this task yet — try Thorough, more data, or a higher learning rate (Advanced).');
  });
  it('from the base model measured before the first step, when the run has it (TrainOutcome.baseline)', () => {
    const rows = evalRows(series([[12, 2.43, 0]]));
    const base = baseRow({ valLoss: 2.6, extra: { exact_match: 0, token_f1: 0.1 } });
    expect(runVerdict(rows, base)).toEqual({
      kind: 'no',
      text: 'Held-out exact match 0% (base model) → 0% (step 12): the model did not learn this task yet — try Thorough, more data, or a higher learning rate (Advanced).',
    });
    expect(runVerdict(evalRows(series([[12, 1, 0.5]])), baseRow({ valLoss: 3, extra: { exact_match: 0.1 } })).text).toContain('10% (base model) → 50% (step 12): it is learning');
    expect(runVerdict(evalRows(series([[12, 1, 0.3]])), baseRow({ valLoss: 3, extra: { exact_match: 0.3 } }))).toMatchObject({ kind: 'no', text: expect.stringContaining('no better than the base model') });
    // Without generated answers: the base model's validation loss.
    expect(runVerdict(evalRows(series([[12, 2.0, null]])), baseRow({ valLoss: 4, extra: {} })).text).toBe(
      'Validation loss 4.000 (base model) → 2.000 (step 12), 50% lower: the model is learning. Whether its answers are right shows in Compare, or set “Held-out answers generated” above 0 (When to stop) to measure exact answers.',
    );
    expect(baseRow(null)).toBeNull();
    expect(baseRow({ valLoss: NaN, extra: { exact_match: NaN } })).toEqual({ valLoss: null, exact: null, label: 'base model' });
    // A run that continued an adapter compares with where it started, and says so.
    expect(runVerdict(evalRows(series([[12, 1, 0.9]])), baseRow({ of: 'sft run, step 40', valLoss: 3, extra: { exact_match: 0.6 } })).text).toContain('60% (start: sft run, step 40) → 90% (step 12)');
  });

  it('a high exact match: learned; rising but low: learning', () => {
    expect(runVerdict(evalRows(series([[10, 2, 0.1], [20, 1, 0.9]]))).kind).toBe('yes');
    const v = runVerdict(evalRows(series([[10, 2, 0], [20, 1, 0.25]])));
    expect(v.kind).toBe('learning');
    expect(v.text).toContain('0% (step 10) → 25% (step 20): it is learning');
  });
  it('without generated answers: the validation loss, first to last', () => {
    expect(runVerdict(evalRows(series([[10, 3, null], [20, 2, null]])))).toMatchObject({ kind: 'learning', text: expect.stringContaining('33% lower') });
    expect(runVerdict(evalRows(series([[10, 2.44, null], [20, 2.43, null]]))).kind).toBe('no');
    expect(runVerdict(evalRows(series([[12, 2.43, null]])))).toMatchObject({ kind: 'unknown', text: expect.stringContaining('the only evaluation') });
    expect(runVerdict([]).kind).toBe('unknown');
  });
});
