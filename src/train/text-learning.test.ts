// Proof that plain-text domain adaptation works: LoRA on the ship's log tabtune writes itself
// (src/testing/ships-log.ts, public/examples/ships-log.txt: a style the bundled models never saw), with
// tabtune-base. The held-out perplexity (whole held-out voyages, packed into windows) must fall far below
// the base model's, and greedy continuations of held-out openings must be written in the log's style.
import { describe, expect, it } from 'vitest';
import { inspectDataset, textSource } from '../data/index';
import { directorySource } from '../node/fs-source';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import { BASE_DIR } from '../testing/models';
import { shipsLog } from '../testing/ships-log';
import { runTraining } from './run-loop';
import { compareBaseTuned, createTrainer, disposeTrainer, toExamples } from './job';
import { defaultTrainConfig } from './config';
import { qualityPlugins } from './quality/index';
import { perplexityBaseTuned } from './text';

/** A log entry as the ship's log goes on after its opening words: "... force N. Course NNN. The watch <did> the <thing> and ..." */
const LOG_STYLE = /force \d\.\s*Course \d{3}\. The watch [a-z]+ the [a-z]+ and /;

describe('plain-text domain adaptation on tabtune-base', () => {
  it('held-out perplexity falls far below the base model, and greedy continuations follow the log', { timeout: 600_000 }, async () => {
    await setupBackend('wasm');
    const model = await loadModel(directorySource(BASE_DIR));
    const ins = await inspectDataset(textSource(shipsLog(), 'ships-log.txt'), { model, maxSeqLen: 128, valFraction: 0.1, seed: 0 });
    expect(ins.report.format).toBe('text');
    expect(ins.report.text!.split.by).toBe('document');
    const enc = ins.encoder!;
    const train = toExamples(enc, ins.train);
    const val = toExamples(enc, ins.val);
    const config = { ...defaultTrainConfig('llama'), steps: 40, batchSize: 4, evalEvery: 10, saveEvery: 0, probeSamples: 0, genEvalExamples: 0, earlyStopPatience: 0 };
    const trainer = createTrainer(model, train, val, config);
    try {
      const quality = await qualityPlugins({ model, adapter: trainer.adapter, config, encoder: enc, trainRecords: ins.train, valRecords: ins.val, probe: null });
      const t0 = performance.now();
      const evals: { step: number; ppl: number; base: number }[] = [];
      const out = await runTraining(trainer, { metrics: quality.metrics }, (e) => {
        if (e.type === 'eval') evals.push({ step: e.metrics.step, ppl: e.metrics.valPpl, base: e.metrics.extra!.ppl_base! });
      });
      expect(out.reason).toBe('done');
      const ppl = await perplexityBaseTuned(model.lm, trainer.adapter, val, config.batchSize);
      // The evaluation's val loss is the held-out perplexity; the base one was measured once, before step 1.
      expect(evals.at(-1)!.ppl).toBeCloseTo(ppl.tuned, 3);
      expect(evals.every((e) => Math.abs(e.base - ppl.base) < 1e-3 * ppl.base)).toBe(true);

      const days = ins.val.filter((r) => r.kind === 'text' && r.text.startsWith('Day '));
      const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, enc, days, { scoreLoss: false });
      const styled = (rows: typeof base.rows) => rows.filter((r) => LOG_STYLE.test(r.prompt + r.output)).length / rows.length;
      console.log(
        `[text] tabtune-base on the ship's log (${ins.report.text!.tokens} tokens, ${train.length} train / ${val.length} held-out windows of 128, ${ins.report.text!.split.val.documents} voyage held out): ` +
          `${config.steps} steps in ${((performance.now() - t0) / 1000).toFixed(1)} s; held-out perplexity base ${ppl.base.toFixed(2)} -> tuned ${ppl.tuned.toFixed(2)} ` +
          `(evals ${evals.map((e) => `${e.step}: ${e.ppl.toFixed(2)}`).join(', ')}); continuations in the log's style: base ${(styled(base.rows) * 100).toFixed(0)}%, tuned ${(styled(tuned.rows) * 100).toFixed(0)}% of ${days.length}`,
      );
      console.log(`[text] opening "${tuned.rows[0]!.prompt}" -> base: "${base.rows[0]!.output.slice(0, 120)}" | tuned: "${tuned.rows[0]!.output.slice(0, 120)}"`);
      expect(ppl.base).toBeGreaterThan(30);
      expect(ppl.tuned).toBeLessThan(ppl.base / 10);
      expect(styled(tuned.rows)).toBeGreaterThanOrEqual(0.75);
      expect(styled(base.rows)).toBe(0);
    } finally {
      disposeTrainer(trainer);
      model.dispose();
    }
  });
});
