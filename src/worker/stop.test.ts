// Knowing when to stop through the worker (real handler in-process, fake IndexedDB, the bundled tabtune-tiny):
// early stopping ends a run with its reason and decision (also stored with the run), evaluations carry the
// task and forgetting measurements, retention keeps the best and recommended checkpoints, explore-path
// measures points along the path from base to tuned, and apply-recipe stores one as a checkpoint of a
// branch whose weights are that point's.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Events, EvalMetrics, TrainOutcome } from '../protocol/messages';
import { TabtuneStore } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 60).join('\n') + '\n';

describe('knowing when to stop in the worker (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let out: TrainOutcome;
  const evals: EvalMetrics[] = [];

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    w = connectInProcess({ store: () => new TabtuneStore(freshIdb(), { keepLast: 1 }) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { datasetId } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' }, options: { valFraction: 0.2 } });
    // A learning rate far too high, many steps: the run overshoots and early stopping ends it.
    out = await w.client.send(
      'train',
      { datasetId, name: 'overshoot', config: { steps: 120, batchSize: 8, evalEvery: 3, saveEvery: 3, seed: 5, warmupSteps: 0, schedule: 'constant', lr: 8e-2, earlyStopPatience: 2, probeSamples: 8, probeTokens: 16, genEvalExamples: 4 } },
      { eval: (e) => void evals.push(e) },
    ).result;
  }, 300_000);

  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('stops early with the reason, measures each evaluation, stores the decision and keeps its checkpoints', async () => {
    expect(out.reason).toBe('done');
    expect(out.step).toBeLessThan(120);
    expect(out.stoppedBy).toMatch(/^early stopping: validation loss did not improve/);
    for (const e of evals) {
      expect(e.extra).toMatchObject({ probe_nll_delta_pct: expect.any(Number), exact_match: expect.any(Number), cka_mean: expect.any(Number), elapsed_s: expect.any(Number) });
      expect((e.details as { cka?: { layers: number[] } }).cka?.layers).toHaveLength(4);
    }
    const q = out.quality!;
    expect(q).toMatchObject({ criterion: 'val_loss', finalStep: out.step, stoppedEarly: true, stopReason: out.stoppedBy, budgetPct: 5 });
    const best = evals.reduce((a, b) => (b.valLoss < a.valLoss ? b : a));
    expect(q.bestStep).toBe(best.step);
    expect(typeof q.sentence).toBe('string');
    const { runs } = await w.client.request('list-runs', {});
    const run = runs.find((r) => r.id === out.runId)!;
    expect(run.quality).toEqual(q);
    expect(run.probe).toBeNull(); // kept in storage, not listed
    const { checkpoints } = await w.client.request('list-checkpoints', { runId: out.runId });
    const steps = checkpoints.map((c) => c.step);
    expect(steps).toEqual(expect.arrayContaining([q.bestStep!, q.recommendedStep!, q.finalStep]));
    expect(checkpoints.find((c) => c.step === q.bestStep)!.extra).toMatchObject({ probe_nll_delta_pct: expect.any(Number) });
  });

  it('explore-path measures the path from base to the final and best checkpoints; apply-recipe stores a point', async () => {
    const progress: Events['progress'][] = [];
    const r = await w.client.send('explore-path', { runId: out.runId }, { progress: (p) => void progress.push(p) }).result;
    const ids = r.points.map((p) => p.id);
    expect(ids).toContain('base');
    expect(ids).toContain(`step-${out.step}-x0.5`);
    expect(ids).toContain(`step-${out.step}-last-half-base`);
    expect(progress.length).toBeGreaterThan(5);
    expect(progress[progress.length - 1]!.fraction).toBe(1);
    // The base model forgets nothing: its probe loss is the probe's base loss.
    expect(Math.abs(r.points.find((p) => p.id === 'base')!.forgetPct!)).toBeLessThan(1e-3);
    // alpha = 1 on the final checkpoint is the final checkpoint: it measures what training measured.
    const final = r.points.find((p) => p.id === `step-${out.step}-x1`)!;
    expect(final.task).toBeCloseTo(evals[evals.length - 1]!.valLoss, 4);
    expect(r.recommendation).not.toBeNull();
    // Each checkpoint appears once: measured here, or as stored while it trained.
    const plain = r.points.filter((p) => !p.recipe || (p.recipe.alpha === 1 && !p.recipe.layers));
    expect(new Set(plain.map((p) => p.step)).size).toBe(plain.length);

    const half = r.points.find((p) => p.id === `step-${out.step}-x0.5`)!;
    const applied = await w.client.request('apply-recipe', { runId: out.runId, recipe: half.recipe! });
    expect(applied.run.parentRunId).toBe(out.runId);
    expect(applied.run.recipe).toEqual(half.recipe);
    expect(applied.run.bestValLoss).toBe(half.task);
    expect(applied.checkpoint).toMatchObject({ step: out.step, pinned: true, valLoss: half.task });
    // The branch's checkpoint is usable like any other: Compare runs on it.
    const cmp = await w.client.request('compare-heldout', { runId: applied.run.id, step: out.step, maxExamples: 4, maxNewTokens: 2 });
    expect(cmp).toMatchObject({ runId: applied.run.id, step: out.step });
    expect(Number.isFinite(cmp.totals.tuned.loss!)).toBe(true);
    // Its weights are the point's: half the update moves the held-out loss between base and the full update.
    const full = await w.client.request('compare-heldout', { runId: out.runId, step: out.step, maxExamples: 4, maxNewTokens: 2 });
    expect(cmp.totals.base.loss).toBeCloseTo(full.totals.base.loss!, 6);
    expect(cmp.totals.tuned.loss).not.toBeCloseTo(full.totals.tuned.loss!, 4);
    // A recipe that is not one is refused with a clear message.
    await expect(w.client.request('apply-recipe', { runId: out.runId, recipe: { fromStep: out.step, alpha: 2 } })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  }, 300_000);
});
