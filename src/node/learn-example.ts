// "Does this model learn this task?": LoRA with the app's default settings on one of the shipped example
// datasets (public/examples/<task>.{train,val}.jsonl), then held-out exact match with the adapter off
// (base) and on (tuned). One measurement, two users: the learning tests (src/train/learning.test.ts)
// hold it to a bar; scripts/learning-probe.ts writes it into a bundled model's card.
import { join } from 'node:path';
import { inspectDataset } from '../data/index';
import type { LanguageModel } from '../model/load';
import { defaultTrainConfig, type TrainConfig } from '../train/config';
import { compareBaseTuned, createTrainer, disposeTrainer, toExamples } from '../train/job';
import { runTraining } from '../train/run-loop';
import { fileSource } from './data-file';

/** Held-out exact match the bundled default model must reach after default LoRA, per example task (src/train/learning.test.ts). */
export const LEARN_BARS: Record<string, number> = { 'number-words': 0.9, 'story-sentiment': 0.9, 'extract-names': 0.8 };

export interface LearnResult {
  task: string;
  model: string;
  steps: number;
  seconds: number;
  tokensPerSecond: number;
  /** Validation loss at the first and at the last evaluation. */
  valLoss: { first: number; last: number };
  /** Held-out exact match / token overlap (0..1), adapter off and on. */
  base: { exact: number; overlap: number };
  tuned: { exact: number; overlap: number };
  /** Share of tuned held-out answers that ended on the stop token. */
  stopShare: number;
  /** Held-out answers scored, and held-out records in the file (every one is scored). */
  heldOut: number;
  heldOutRecords: number;
  reason: string;
}

export async function learnExample(model: LanguageModel, examplesDir: string, task: string, config: TrainConfig = defaultTrainConfig(model.info.arch)): Promise<LearnResult> {
  const ins = await inspectDataset(await fileSource(join(examplesDir, `${task}.train.jsonl`)), { model, validation: await fileSource(join(examplesDir, `${task}.val.jsonl`)) });
  if (ins.report.errors.length) throw new Error(`${task}: ${ins.report.errors.map((e) => e.message).join('; ')}`);
  const enc = ins.encoder!;
  const trainer = createTrainer(model, toExamples(enc, ins.train), toExamples(enc, ins.val), config);
  try {
    const t0 = performance.now();
    let tokens = 0;
    const evals: number[] = [];
    const out = await runTraining(trainer, {}, (e) => {
      if (e.type === 'step') tokens += e.metrics.tokens;
      if (e.type === 'eval') evals.push(e.metrics.valLoss);
    });
    const seconds = (performance.now() - t0) / 1000;
    const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, enc, ins.val);
    return {
      task,
      model: model.name,
      steps: trainer.totalSteps,
      seconds,
      tokensPerSecond: tokens / seconds,
      valLoss: { first: evals[0] ?? NaN, last: evals[evals.length - 1] ?? NaN },
      base: { exact: base.exact, overlap: base.overlap },
      tuned: { exact: tuned.exact, overlap: tuned.overlap },
      stopShare: tuned.rows.filter((r) => r.finishReason === 'eos').length / Math.max(1, tuned.rows.length),
      heldOut: tuned.rows.length,
      heldOutRecords: ins.val.length,
      reason: out.reason,
    };
  } finally {
    disposeTrainer(trainer);
  }
}

/** One line for logs: "tabtune-base extract-names: 150 steps in 300 s (…); held-out exact match base 0% -> tuned 85% …". */
export function learnLine(r: LearnResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  return (
    `${r.model} ${r.task}: ${r.steps} steps in ${r.seconds.toFixed(1)} s (${r.tokensPerSecond.toFixed(0)} tokens/s); val loss ${r.valLoss.first.toFixed(3)} -> ${r.valLoss.last.toFixed(3)}; ` +
    `held-out exact match base ${pct(r.base.exact)} -> tuned ${pct(r.tuned.exact)} (token overlap ${pct(r.base.overlap)} -> ${pct(r.tuned.overlap)}, n=${r.heldOut})`
  );
}
