// Proof that DPO learns a preference the base model lacks, on the app's default model (tabtune-base,
// bundled): story prompts whose chosen reply is the right sentiment label and rejected the other one.
// Held-out preference accuracy (rewards/accuracies on held-out pairs) must rise from about chance to
// >= 90%, and greedy generation must then answer with the chosen label (the property shows in outputs):
// pure DPO ranks whole replies but need not make the chosen one the greedy output (measured: 66% of greedy
// answers begin with the chosen label, from 0%), so it must move them clearly; with the RPO term (SFT on the
// chosen replies) the greedy answer must be exactly the chosen reply in >= 90%.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectDataset } from '../data/index';
import { textSource } from '../data/source';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import { directorySource } from '../node/fs-source';
import { BASE_DIR, REPO_ROOT } from '../testing/models';
import { defaultTrainConfig } from './config';
import { referenceLogps } from './dpo';
import { compareBaseTuned, createTrainer, disposeTrainer, objectiveFor, toPreferenceExamples } from './job';
import type { Trainer } from './loop';
import { runTraining } from './run-loop';

function prefs(file: string): string {
  return readFileSync(join(REPO_ROOT, 'public/examples', file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { prompt, completion } = JSON.parse(l) as { prompt: string; completion: string };
      return JSON.stringify({ prompt, chosen: completion, rejected: completion === 'happy' ? 'sad' : 'happy' });
    })
    .join('\n');
}

describe.each([
  { rpoAlpha: 0, what: 'DPO' },
  { rpoAlpha: 1, what: 'DPO + RPO (SFT on the chosen replies, weight 1)' },
])('$what learns a preference on tabtune-base', ({ rpoAlpha, what }) => {
  it('held-out preference accuracy from about chance to >= 90%, and generation answers with the chosen reply', { timeout: 1_200_000 }, async () => {
    await setupBackend('wasm');
    const model = await loadModel(directorySource(BASE_DIR));
    const ins = await inspectDataset(textSource(prefs('story-sentiment.train.jsonl'), 'prefs.jsonl'), { model, validation: textSource(prefs('story-sentiment.val.jsonl'), 'prefs.val.jsonl') });
    expect(ins.report.errors).toEqual([]);
    const enc = ins.encoder!;
    const config = defaultTrainConfig('llama', { objective: 'dpo', rpoAlpha, epochs: 1, evalEvery: 10, saveEvery: 0, genEvalExamples: 0, probeSamples: 0 });
    const train = toPreferenceExamples(enc, ins.train);
    const val = toPreferenceExamples(enc, ins.val);
    const trainer = createTrainer(model, train, val, config, { objective: objectiveFor(config) });
    trainer.adapter!.enabled = false;
    await referenceLogps(model.lm, [...train, ...val], config.batchSize);
    trainer.adapter!.enabled = true;
    const before = trainer.evaluate().extra!['eval_rewards/accuracies']!;
    // Against itself the rewards are 0: the base model's own preference is the share of pairs where it already ranks chosen higher.
    const basePref = val.filter((p) => p.ref!.chosen > p.ref!.rejected).length / val.length;
    const acc: number[] = [];
    const t0 = performance.now();
    const out = await runTraining(trainer as unknown as Trainer, {}, (e) => {
      if (e.type === 'eval') acc.push(e.metrics.extra!['eval_rewards/accuracies']!);
    });
    expect(out.reason).toBe('done');
    const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, enc, ins.val);
    const firstWord = (r: { output: string; expected: string }) => r.output.trim().split(/\W+/)[0] === r.expected;
    const begins = (rows: typeof base.rows) => rows.filter(firstWord).length / rows.length;
    console.log(
      `[dpo learn] ${what}, tabtune-base story-sentiment preferences: ${trainer.totalSteps} steps in ${((performance.now() - t0) / 1000).toFixed(0)} s; ` +
        `base model ranks chosen first in ${(basePref * 100).toFixed(0)}% of held-out pairs; held-out rewards/accuracies ${acc.map((a) => (a * 100).toFixed(0) + '%').join(' -> ')}; ` +
        `greedy answer begins with the chosen label: base ${(begins(base.rows) * 100).toFixed(0)}% -> tuned ${(begins(tuned.rows) * 100).toFixed(0)}%, is exactly it: ${(base.exact * 100).toFixed(0)}% -> ${(tuned.exact * 100).toFixed(0)}% (n=${tuned.rows.length})`,
    );
    expect(before).toBe(0);
    expect(basePref).toBeGreaterThan(0.3);
    expect(basePref).toBeLessThan(0.7);
    expect(acc[acc.length - 1]!).toBeGreaterThanOrEqual(0.9);
    expect(begins(base.rows)).toBeLessThanOrEqual(0.1);
    if (rpoAlpha > 0) expect(tuned.exact).toBeGreaterThanOrEqual(0.9);
    else expect(begins(tuned.rows)).toBeGreaterThanOrEqual(begins(base.rows) + 0.4);
    disposeTrainer(trainer as unknown as Trainer);
    model.dispose();
  });
});
