// Proof that it learns: LoRA with the default settings on each shipped example dataset, with the
// app's default model (tabtune-base, bundled in models/) and with the converted reference checkpoint
// (stories260K, from ../shared; skipped, saying so, where it is absent). Held-out exact match must go
// from <= 10% (base) to >= 90% (tuned).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectDataset } from '../data/index';
import { fileSource } from '../node/data-file';
import { directorySource } from '../node/fs-source';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import { BASE_DIR, REPO_ROOT } from '../testing/models';
import { ensureReferenceHF, REFERENCE_ABSENT, referenceTitle } from '../testing/reference';
import { runTraining } from './run-loop';
import { compareBaseTuned, createTrainer, disposeTrainer, toExamples } from './job';
import { defaultTrainConfig } from './config';

const MODELS: { name: string; skip: string | null; dir: () => Promise<string> }[] = [
  { name: 'tabtune-base', skip: null, dir: async () => BASE_DIR },
  { name: 'stories260K', skip: REFERENCE_ABSENT, dir: ensureReferenceHF },
];
const EXAMPLES = join(REPO_ROOT, 'public', 'examples');

describe.each(MODELS)('LoRA learns the example tasks with default settings on $name', ({ name, skip, dir }) => {
  for (const task of ['number-words', 'story-sentiment']) {
    it.skipIf(skip !== null)(skip ? referenceTitle(task) : task, { timeout: 1_500_000 }, async () => {
      await setupBackend('wasm');
      const model = await loadModel(directorySource(await dir()));
      const ins = await inspectDataset(await fileSource(join(EXAMPLES, `${task}.train.jsonl`)), { model, validation: await fileSource(join(EXAMPLES, `${task}.val.jsonl`)) });
      expect(ins.report.errors).toEqual([]);
      const enc = ins.encoder!;
      const trainer = createTrainer(model, toExamples(enc, ins.train), toExamples(enc, ins.val), defaultTrainConfig('llama'));
      const t0 = performance.now();
      let tokens = 0;
      const evals: number[] = [];
      const out = await runTraining(trainer, {}, (e) => {
        if (e.type === 'step') tokens += e.metrics.tokens;
        if (e.type === 'eval') evals.push(e.metrics.valLoss);
      });
      const secs = (performance.now() - t0) / 1000;
      expect(out.reason).toBe('done');
      const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, enc, ins.val);
      console.log(
        `[learn] ${name} ${task}: ${trainer.totalSteps} steps in ${secs.toFixed(1)} s (${(tokens / secs).toFixed(0)} tokens/s, wasm 1 thread); ` +
          `val loss ${evals[0]!.toFixed(3)} -> ${evals[evals.length - 1]!.toFixed(3)}; held-out exact match base ${(base.exact * 100).toFixed(0)}% -> tuned ${(tuned.exact * 100).toFixed(0)}% ` +
          `(token overlap ${(base.overlap * 100).toFixed(0)}% -> ${(tuned.overlap * 100).toFixed(0)}%, n=${tuned.rows.length})`,
      );
      expect(tuned.rows.length).toBe(ins.val.length);
      expect(base.exact).toBeLessThanOrEqual(0.1);
      expect(tuned.exact).toBeGreaterThanOrEqual(0.9);
      // Tuned answers end on the chosen stop token instead of running on.
      expect(tuned.rows.filter((r) => r.finishReason === 'eos').length / tuned.rows.length).toBeGreaterThanOrEqual(0.9);
      disposeTrainer(trainer);
      model.dispose();
    });
  }
});
