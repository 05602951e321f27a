import { describe, expect, it } from 'vitest';
import { LoraAdapter } from '../../lora/adapter';
import { setupBackend } from '../../model/backend';
import { tinyModel } from '../../testing/tiny-model';
import { seededRandom } from '../../util/random';
import { DEFAULT_TRAIN, type BestMetric } from '../config';
import { Trainer, type EvalMetrics, type Example } from '../loop';
import { runTraining } from '../run-loop';
import { bestEval, criterionValue, earlyStopping, formatSkillChange, higherIsBetter, paretoFront, recommend, summariseRun, type TradeoffPoint } from './decisions';

function ev(step: number, valLoss: number, extra?: Record<string, number>): EvalMetrics {
  return { step, valLoss, valPpl: Math.exp(valLoss), tokens: 100, ...(extra ? { extra } : {}) };
}

const losses = (xs: number[]) => xs.map((v, i) => ev(10 * (i + 1), v));
const exact = (xs: (number | null)[]) => xs.map((v, i) => ev(10 * (i + 1), 1, v === null ? {} : { exact_match: v }));

/** The rule's answer after each evaluation, as the loop consults it (prefixes of the history). */
function answers(rule: ReturnType<typeof earlyStopping>, evals: EvalMetrics[]): (string | null)[] {
  return evals.map((_, i) => rule(evals.slice(0, i + 1), null as never));
}

describe('criterion', () => {
  it('reads validation loss or exact match, null when absent or not finite', () => {
    expect(criterionValue(ev(5, 1.5), 'val_loss')).toBe(1.5);
    expect(criterionValue(ev(5, NaN), 'val_loss')).toBeNull();
    expect(criterionValue(ev(5, 1.5), 'exact_match')).toBeNull();
    expect(criterionValue(ev(5, 1.5, { exact_match: 0.25 }), 'exact_match')).toBe(0.25);
    expect(higherIsBetter('val_loss')).toBe(false);
    expect(higherIsBetter('exact_match')).toBe(true);
    expect(formatSkillChange(1.8)).toBe('\u22121.8%');
    expect(formatSkillChange(11.2)).toBe('\u221211%');
    expect(formatSkillChange(-0.4)).toBe('+0.4%');
    expect(formatSkillChange(0.01)).toBe('0%');
  });
});

describe('early stopping', () => {
  it('fires exactly after `patience` evaluations without improvement', () => {
    const rule = earlyStopping({ patience: 3, minDelta: 0, criterion: 'val_loss' });
    const a = answers(rule, losses([2.0, 1.5, 1.6, 1.55, 1.7]));
    expect(a.slice(0, 4)).toEqual([null, null, null, null]);
    expect(a[4]).toBe('early stopping: validation loss did not improve by more than 0 for 3 evaluations (best 1.50 at step 20)');
    // An improvement resets the count.
    expect(answers(rule, losses([2.0, 2.1, 2.2, 1.9, 2.0, 2.1])).every((x) => x === null)).toBe(true);
    expect(answers(earlyStopping({ patience: 1, minDelta: 0, criterion: 'val_loss' }), losses([1, 1]))[1]).toMatch(/for 1 evaluation \(best 1.00 at step 10\)$/);
  });

  it('patience 0 never stops', () => {
    const rule = earlyStopping({ patience: 0, minDelta: 0, criterion: 'val_loss' });
    expect(answers(rule, losses([1, 2, 3, 4, 5, 6])).every((x) => x === null)).toBe(true);
  });

  it('an improvement must beat the best of the earlier evaluations by more than minDelta (HF semantics)', () => {
    const small = losses([1.0, 0.995, 0.99, 0.985]);
    expect(answers(earlyStopping({ patience: 3, minDelta: 0, criterion: 'val_loss' }), small).every((x) => x === null)).toBe(true);
    const a = answers(earlyStopping({ patience: 3, minDelta: 0.01, criterion: 'val_loss' }), small);
    expect(a.slice(0, 3)).toEqual([null, null, null]);
    expect(a[3]).toBe('early stopping: validation loss did not improve by more than 0.01 for 3 evaluations (best 0.985 at step 40)');
    // The best moves on any improvement: 0.989 is 0.011 below the first value but only 0.006 below the best (0.995).
    const b = answers(earlyStopping({ patience: 2, minDelta: 0.01, criterion: 'val_loss' }), losses([1.0, 0.995, 0.989]));
    expect(b[2]).toMatch(/for 2 evaluations \(best 0.989 at step 30\)/);
    // Exactly minDelta is not more than minDelta.
    expect(answers(earlyStopping({ patience: 1, minDelta: 0.5, criterion: 'val_loss' }), losses([2, 1.5]))[1]).not.toBeNull();
    expect(answers(earlyStopping({ patience: 1, minDelta: 0.5, criterion: 'val_loss' }), losses([2, 1.49]))[1]).toBeNull();
  });

  it('exact match: higher is better', () => {
    const rule = earlyStopping({ patience: 2, minDelta: 0, criterion: 'exact_match' });
    // A rising exact match never stops, whatever the loss does.
    expect(answers(rule, exact([0.1, 0.2, 0.3, 0.4])).every((x) => x === null)).toBe(true);
    const a = answers(rule, exact([0.5, 0.6, 0.6, 0.55]));
    expect(a.slice(0, 3)).toEqual([null, null, null]);
    expect(a[3]).toBe('early stopping: exact match did not improve by more than 0 percentage points for 2 evaluations (best 60% at step 20)');
    expect(answers(earlyStopping({ patience: 2, minDelta: 0.05, criterion: 'exact_match' }), exact([0.5, 0.54, 0.58]))[2]).toMatch(/by more than 5 percentage points for 2 evaluations \(best 58% at step 30\)/);
  });

  it('evaluations without the value count neither way', () => {
    const rule = earlyStopping({ patience: 2, minDelta: 0, criterion: 'exact_match' });
    const a = answers(rule, exact([0.5, null, null, 0.4, null, 0.3]));
    expect(a).toEqual([null, null, null, null, null, expect.stringMatching(/for 2 evaluations \(best 50% at step 10\)/)]);
    expect(answers(rule, exact([null, null, null]))).toEqual([null, null, null]);
    const l = answers(earlyStopping({ patience: 1, minDelta: 0, criterion: 'val_loss' }), losses([1, NaN, NaN]));
    expect(l).toEqual([null, null, null]);
  });

  it('ends the one training loop at the evaluation it names', async () => {
    await setupBackend('cpu');
    const rand = seededRandom(3);
    const data: Example[] = Array.from({ length: 8 }, () => {
      const xs = Array.from({ length: 5 }, () => 4 + Math.floor(rand() * 30));
      return { input: xs.slice(0, -1), target: xs.slice(1), weight: xs.slice(1).map(() => 1) };
    });
    const config = { ...DEFAULT_TRAIN, steps: 40, batchSize: 4, warmupSteps: 0, evalEvery: 2, saveEvery: 100, lora: { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['q_proj'] } };
    const lm = tinyModel({ arch: 'llama' });
    const ad = new LoraAdapter(lm, config.lora, { seed: 1 });
    const t = new Trainer(lm, data, data.slice(0, 2), config, ad);
    // Exact match by step: best at step 4, then 3 evaluations without improvement -> stop at step 10.
    const em: Record<number, number> = { 2: 0.25, 4: 0.5, 6: 0.5, 8: 0.25, 10: 0.5, 12: 0.75 };
    const checkpoints: number[] = [];
    const out = await runTraining(
      t,
      { metrics: [{ name: 'gen', measure: async (tr) => ({ values: { exact_match: em[tr.step]! } }) }], stopRules: [earlyStopping({ patience: 3, minDelta: 0, criterion: 'exact_match' })] },
      (e) => void (e.type === 'checkpoint' && checkpoints.push(e.checkpoint.step)),
    );
    expect(out).toEqual({ reason: 'done', step: 10, stoppedBy: 'early stopping: exact match did not improve by more than 0 percentage points for 3 evaluations (best 50% at step 4)' });
    expect(checkpoints).toEqual([10]);
    t.dispose();
    ad.dispose();
    lm.dispose();
  });
});

describe('best evaluation', () => {
  it('the best by the criterion; ties go to the earlier step', () => {
    const evals = [ev(30, 1.2, { exact_match: 0.7 }), ev(10, 1.5, { exact_match: 0.7 }), ev(20, 1.2, { exact_match: 0.6 }), ev(40, 1.3)];
    expect(bestEval(evals, 'val_loss')?.step).toBe(20);
    expect(bestEval(evals, 'exact_match')?.step).toBe(10);
    expect(bestEval([ev(10, 1.2), ev(20, 1.2)], 'val_loss')?.step).toBe(10);
    expect(bestEval([ev(10, 1)], 'exact_match')).toBeNull();
    expect(bestEval([], 'val_loss')).toBeNull();
  });
});

const pt = (step: number, task: number, forgetPct: number | null, id = `s${step}`): TradeoffPoint => ({ id, step, label: `step ${step}`, task, forgetPct });

describe('Pareto front', () => {
  it('keeps the points nothing dominates, by step', () => {
    const points = [
      pt(400, 0.9, 12),
      pt(100, 0.4, 1),
      pt(200, 0.7, 3),
      pt(300, 0.65, 4), // B (200) is better and forgets less
      pt(500, 0.9, 15), // same task as 400, forgets more
      pt(50, 0.4, 1, 'twin'), // equal to 100: neither dominates
      pt(600, 0.95, null), // no forgetting measured: incomparable with the others
      pt(700, 0.3, 0.5),
    ];
    expect(paretoFront(points, 'exact_match').map((p) => p.id)).toEqual(['twin', 's100', 's200', 's400', 's600', 's700']);
    // Lower is better for validation loss: the same values read as losses flip the task side.
    expect(paretoFront([pt(1, 2.0, 1), pt(2, 1.5, 2), pt(3, 1.6, 3), pt(4, 2.1, 0.5)], 'val_loss').map((p) => p.step)).toEqual([1, 2, 4]);
    // Without forgetting on any side only the task compares.
    expect(paretoFront([pt(1, 2.0, null), pt(2, 1.5, null), pt(3, 1.5, null)], 'val_loss').map((p) => p.step)).toEqual([2, 3]);
  });
});

describe('recommendation', () => {
  const run = [pt(100, 0.4, 1), pt(300, 0.92, 1.8), pt(500, 0.9, 1.0), pt(800, 0.93, 11)];
  const o = (budgetPct: number, criterion: BestMetric = 'exact_match') => ({ criterion, budgetPct, finalStep: 800 });

  it('the best task metric within the forgetting budget, compared with the final step', () => {
    const r = recommend(run, o(5))!;
    expect(r.point.step).toBe(300);
    expect(r.final?.step).toBe(800);
    expect(r.sentence).toBe('step 300: exact match 92%, general skill \u22121.8%; the final step 800 is 93% but \u221211%.');
  });

  it('ties: less forgetting, then the earlier step', () => {
    expect(recommend([pt(300, 0.92, 1.8), pt(400, 0.92, 1.2), pt(800, 0.5, 0)], o(5))!.point.step).toBe(400);
    expect(recommend([pt(400, 0.92, 1.2), pt(300, 0.92, 1.2), pt(800, 0.5, 0)], o(5))!.point.step).toBe(300);
    // A point without a probe value does not count as within budget when others have one.
    expect(recommend([pt(200, 0.99, null), pt(300, 0.8, 1)], o(5))!.point.step).toBe(300);
  });

  it('says when the final step is the one to keep', () => {
    const r = recommend(run, o(20))!;
    expect(r.point.step).toBe(800);
    expect(r.sentence).toBe('step 800 (the final step): exact match 93%, general skill \u221211%.');
  });

  it('no point within the budget: the one forgetting least, and says the budget cannot be met', () => {
    const r = recommend(run, o(0.5))!;
    expect(r.point.step).toBe(500); // forgets 1.0% like step 100, with a better exact match
    expect(r.sentence).toBe('no checkpoint stays within the 0.5% forgetting budget; step 500 forgets least: exact match 90%, general skill \u22121%; the final step 800 is 93% but \u221211%.');
  });

  it('probe off: the best by the criterion, saying forgetting was not weighed', () => {
    const r = recommend([pt(100, 1.9, null), pt(300, 1.2345, null), pt(800, 1.31, null)], o(5, 'val_loss'))!;
    expect(r.point.step).toBe(300);
    expect(r.sentence).toBe('step 300: validation loss 1.23, the best validation loss (no forgetting probe, so general skill was not weighed); the final step 800 is 1.31.');
    expect(recommend([], o(5))).toBeNull();
  });

  it('the final is a plain point (an explored one at the final step is not it)', () => {
    const scaled: TradeoffPoint = { ...pt(800, 0.95, 0.5, 'half'), label: 'step 800 × 0.5', recipe: { fromStep: 800, alpha: 0.5 } };
    const r = recommend([...run, scaled], o(5))!;
    expect(r.point.id).toBe('half');
    expect(r.final?.id).toBe('s800');
    expect(r.sentence).toBe('step 800 × 0.5: exact match 95%, general skill \u22120.5%; the final step 800 is 93%, \u221211%.');
  });
});

describe('run summary', () => {
  it('restricted to checkpointed steps, with the probe read from the evaluations', () => {
    const forget = (step: number, valLoss: number, em: number, f: number) => ev(step, valLoss, { exact_match: em, probe_nll_delta_pct: f });
    const evals = [forget(100, 2, 0.4, 1), forget(200, 1.5, 0.95, 0.5), forget(300, 1.4, 0.92, 1.8), forget(800, 1.3, 0.93, 11)];
    const s = summariseRun(evals, { criterion: 'exact_match', budgetPct: 5, finalStep: 800, checkpointSteps: [100, 300, 800] });
    expect(s).toEqual({ bestStep: 800, recommendedStep: 300, finalStep: 800, sentence: 'step 300: exact match 92%, general skill \u22121.8%; the final step 800 is 93% but \u221211%.' });
    // With step 200 saved it wins on both counts.
    expect(summariseRun(evals, { criterion: 'exact_match', budgetPct: 5, finalStep: 800, checkpointSteps: [100, 200, 300, 800] })).toMatchObject({ bestStep: 200, recommendedStep: 200 });
    // A step evaluated again (a resumed run) counts with its last evaluation.
    expect(summariseRun([...evals, forget(300, 1.4, 0.99, 1)], { criterion: 'exact_match', budgetPct: 5, finalStep: 800, checkpointSteps: [300, 800] }).bestStep).toBe(300);
    const none = summariseRun(evals, { criterion: 'val_loss', budgetPct: 5, finalStep: 800, checkpointSteps: [] });
    expect(none).toEqual({ bestStep: null, recommendedStep: null, finalStep: 800, sentence: 'no checkpointed evaluation measured validation loss, so there is no checkpoint to recommend.' });
  });
});
