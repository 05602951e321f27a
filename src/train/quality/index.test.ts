// The assembly of knowing-when-to-stop: the run's probe (with the user's general text, refused when it
// cannot be used), the cost metric, which checkpoints retention keeps, and the run's decision.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../io/load-model';
import { setupBackend } from '../../model/backend';
import { directorySource } from '../../node/fs-source';
import { TINY_DIR } from '../../testing/models';
import { defaultTrainConfig } from '../config';
import type { EvalMetrics } from '../loop';
import { inspectDataset, textSource } from '../../data/index';
import { decideRun, keepSteps, qualityPlugins, runProbe } from './index';

const TEXT = 'The old lighthouse keeper climbed the stairs every evening to light the lamp. Ships passed in the night and the sea was calm. '.repeat(12);

const ev = (step: number, valLoss: number, forget: number, exact?: number): EvalMetrics => ({ step, valLoss, valPpl: Math.exp(valLoss), tokens: 10, extra: { probe_nll_delta_pct: forget, ...(exact !== undefined ? { exact_match: exact } : {}) } });

describe('knowing when to stop, assembled', () => {
  it('runProbe: off, stored, sampled with the user text, and refusing text it cannot use', { timeout: 120_000 }, async () => {
    await setupBackend('wasm');
    const model = await loadModel(directorySource(TINY_DIR));
    const c = defaultTrainConfig('llama', { probeSamples: 4, probeTokens: 12 });
    expect(await runProbe(model, null, { ...c, probeSamples: 0 })).toBeNull();
    const probe = (await runProbe(model, null, c, { text: TEXT }))!;
    expect(probe.samples.filter((s) => s.source === 'base')).toHaveLength(4);
    expect(probe.samples.filter((s) => s.source === 'text')).toHaveLength(4);
    expect(probe.baseNll).toBeGreaterThan(0);
    // A stored probe is used as it is (a resumed run measures the same texts).
    expect(await runProbe(model, null, c, { stored: probe })).toBe(probe);
    await expect(runProbe(model, null, c, { text: 'Too short.' })).rejects.toThrow(/shorter than one probe text \(12 tokens\)/);
    await expect(runProbe(model, null, { ...c, probeSamples: 0 }, { text: TEXT })).rejects.toThrow(/the probe is off/);

    // What the settings ask for but the data cannot give is said, not ignored.
    const ins = await inspectDataset(textSource('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": "d"}\n'), { model, valFraction: 0 });
    const base = { model, adapter: null, encoder: ins.encoder!, trainRecords: ins.train, valRecords: [], probe: null };
    const q = await qualityPlugins({ ...base, config: { ...c, earlyStopPatience: 3 } });
    expect(q.warnings).toEqual([expect.stringMatching(/no held-out examples, so it is never evaluated: it cannot stop early/)]);
    await expect(qualityPlugins({ ...base, config: { ...c, bestMetric: 'exact_match' } })).rejects.toThrow(/judged by exact match, but the held-out split has no example/);
    expect((await qualityPlugins({ ...base, valRecords: ins.train, config: c })).warnings).toEqual([]);
    model.dispose();
  });

  it('keepSteps keeps the best, the recommended and the Pareto front; decideRun says why the run stopped', () => {
    const c = { bestMetric: 'val_loss' as const, forgetBudgetPct: 5 };
    const evals = [ev(10, 2.0, 1), ev(20, 1.5, 4), ev(30, 1.2, 9), ev(40, 1.3, 12), ev(50, 1.4, 15)];
    // 20: best within the 5% budget; 30: best overall; 10: least forgetting (front); 40, 50: dominated by 30.
    // A front of every checkpoint (loss falling while forgetting rises) keeps only its two ends and the recommended one.
    const rising = Array.from({ length: 10 }, (_, i) => ev(10 * (i + 1), 3 - 0.2 * i, 0.5 + i));
    expect(keepSteps(rising, c, rising.map((e) => e.step), 100)).toEqual([10, 50, 100]);
    expect(keepSteps(evals, c, [10, 20, 30, 40, 50], 50)).toEqual([10, 20, 30]);
    // Only checkpointed steps count.
    expect(keepSteps(evals, c, [10, 40, 50], 50)).toEqual([10, 40]);
    const d = decideRun(evals, c, [10, 20, 30, 40, 50], 50, 'early stopping: validation loss did not improve by more than 0 for 2 evaluations (best 1.20 at step 30)');
    expect(d).toMatchObject({ criterion: 'val_loss', bestStep: 30, recommendedStep: 20, finalStep: 50, stoppedEarly: true, budgetPct: 5 });
    expect(d.stopReason).toMatch(/^early stopping/);
    expect(d.sentence).toMatch(/^step 20: validation loss 1\.50, general skill −4(\.0)?%; the final step 50 is 1\.40 but −15%\.$/);
    const byExact = decideRun(evals.map((e, i) => ({ ...e, extra: { ...e.extra, exact_match: [0.2, 0.5, 0.9, 0.95, 0.96][i]! } })), { bestMetric: 'exact_match', forgetBudgetPct: 10 }, [10, 20, 30, 40, 50], 50, null);
    expect(byExact).toMatchObject({ bestStep: 50, recommendedStep: 30, stoppedEarly: false, stopReason: null });
    expect(decideRun([], c, [], 3, null)).toMatchObject({ bestStep: null, recommendedStep: null, sentence: null });
  });
});
