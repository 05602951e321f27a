// Proof that tabtune knows when to stop: a run forced to overshoot (a high learning rate and many epochs on
// a small dataset whose labels carry no signal) on the bundled tiny model. The format of the answers is
// learnable, the labels are not: validation loss falls while the format is learned, then rises while the
// labels are memorised. The checks: validation loss rises after a minimum, early stopping fires with its
// patience, the best checkpoint beats the final one, the forgetting probe's NLL rises over training, the
// recommended checkpoint forgets less than the final one, retention kept it, and rewinding to it restores
// its exact logits.
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { inspectDataset, textSource } from '../../data/index';
import { loadModel } from '../../io/load-model';
import { LoraAdapter } from '../../lora/adapter';
import { setupBackend } from '../../model/backend';
import { directorySource } from '../../node/fs-source';
import { MemoryBackend } from '../../storage/backend';
import { TabtuneStore } from '../../storage/index';
import { TINY_DIR } from '../../testing/models';
import { seededRandom } from '../../util/random';
import { adapterWeights } from '../../worker/adapters';
import { resolveTrainConfig, CLI_TRAINING } from '../config';
import { createTrainer, disposeTrainer, toExamples } from '../job';
import type { EvalMetrics } from '../loop';
import { runTraining } from '../run-loop';
import { decideRun, keepSteps, qualityPlugins, runProbe } from './index';

const WORDS = ['apple', 'river', 'stone', 'cloud', 'tiger', 'lemon', 'piano', 'candle', 'forest', 'rocket', 'garden', 'window', 'bottle', 'mirror', 'castle', 'pencil', 'island', 'ladder', 'button', 'jacket', 'kettle', 'meadow', 'planet', 'saddle', 'violin', 'wallet', 'anchor', 'basket', 'copper', 'dragon', 'engine', 'falcon'];

/** Word -> a label drawn at random: nothing in the prompt predicts it. */
function records(words: string[], seed: number): string {
  const rand = seededRandom(seed);
  return words.map((w) => JSON.stringify({ prompt: `Word: ${w}. Label?`, completion: rand() < 0.5 ? 'yes' : 'no' })).join('\n');
}

describe('knowing when to stop (tiny model, forced overshoot)', () => {
  it('finds the minimum, stops early, keeps the best and recommended checkpoints and rewinds to exact logits', { timeout: 600_000 }, async () => {
    await setupBackend('wasm');
    const model = await loadModel(directorySource(TINY_DIR));
    const ins = await inspectDataset(textSource(records(WORDS.slice(0, 16), 1), 'train.jsonl'), { model, validation: textSource(records(WORDS.slice(16), 2), 'val.jsonl') });
    expect(ins.report.errors).toEqual([]);
    const enc = ins.encoder!;
    const r = resolveTrainConfig(
      'llama',
      {
        lr: 1e-2,
        epochs: 40,
        batchSize: 4,
        warmupSteps: 0,
        schedule: 'constant',
        evalEvery: 2,
        saveEvery: 2,
        earlyStopPatience: 3,
        genEvalExamples: 8,
        probeSamples: 16,
        probeTokens: 24,
        forgetBudgetPct: 5,
        lora: { lora_dropout: 0 },
      },
      CLI_TRAINING,
    );
    if (!r.ok) throw new Error(r.problems.join(' '));
    const config = r.config;
    const trainer = createTrainer(model, toExamples(enc, ins.train), toExamples(enc, ins.val), config);
    const store = new TabtuneStore(new MemoryBackend(), { keepLast: 1 });
    const run = await store.runs.create({ name: 'overshoot', config });
    const probe = await runProbe(model, trainer.adapter, config);
    expect(probe!.samples.length).toBe(16);
    const quality = await qualityPlugins({ model, adapter: trainer.adapter, config, encoder: enc, trainRecords: ins.train, valRecords: ins.val, probe });

    // The logits of a fixed input at every checkpoint, to check rewinding against.
    const probeIds = enc.promptIds({ prompt: 'Word: apple. Label?' });
    const logitsAt = new Map<number, Float32Array>();
    const evals: EvalMetrics[] = [];
    const tokensTo = new Map<number, number>();
    const savedSteps = async () => (await store.checkpoints.list(run.id, { gc: false })).map((c) => c.step);
    const outcome = await runTraining(trainer, { metrics: quality.metrics, stopRules: quality.stopRules }, async (e) => {
      if (e.type === 'step') tokensTo.set(e.metrics.step, (tokensTo.get(e.metrics.step - 1) ?? 0) + e.metrics.tokens);
      if (e.type === 'eval') evals.push(e.metrics);
      if (e.type === 'checkpoint') {
        const l = model.lm.forward([probeIds]);
        logitsAt.set(e.checkpoint.step, (await l.data()) as Float32Array);
        l.dispose();
        await store.checkpoints.save(run.id, e.checkpoint, { keep: keepSteps(evals, config, [...(await savedSteps()), e.checkpoint.step], trainer.totalSteps) });
      }
    });
    const val = evals.map((e) => e.valLoss);
    const minAt = val.indexOf(Math.min(...val));
    console.log(`[overshoot] ${evals.length} evaluations, val loss ${val.map((v) => v.toFixed(3)).join(' ')}; probe Δ% ${evals.map((e) => e.extra!.probe_nll_delta_pct!.toFixed(1)).join(' ')}; stopped: ${outcome.reason === 'done' ? outcome.stoppedBy : outcome.reason}`);

    // Validation loss falls to a minimum, then rises.
    expect(minAt).toBeGreaterThan(0);
    expect(minAt).toBeLessThan(val.length - 1);
    expect(val[val.length - 1]!).toBeGreaterThan(val[minAt]!);
    // Early stopping fired after `patience` evaluations without improvement, well before the planned end.
    expect(outcome.reason).toBe('done');
    const stoppedBy = outcome.reason === 'done' ? (outcome.stoppedBy ?? null) : null;
    expect(stoppedBy).toMatch(/early stopping/);
    expect(evals.length - 1 - minAt).toBe(3);
    expect(trainer.step).toBeLessThan(trainer.totalSteps);
    // The forgetting probe's NLL rose over training.
    expect(evals[evals.length - 1]!.extra!.probe_nll!).toBeGreaterThan(evals[0]!.extra!.probe_nll!);
    expect(evals[evals.length - 1]!.extra!.probe_nll_delta!).toBeGreaterThan(0);
    // Every evaluation also measured generated answers and the cost so far.
    for (const e of evals) {
      expect(e.extra!.exact_match).toBeGreaterThanOrEqual(0);
      expect(e.extra!.train_tokens).toBe(tokensTo.get(e.step));
      expect(e.extra!.elapsed_s).toBeGreaterThan(0);
    }

    const steps = await savedSteps();
    const d = decideRun(evals, config, steps, trainer.step, stoppedBy);
    console.log(`[overshoot] best ${d.bestStep}, recommended ${d.recommendedStep}, final ${d.finalStep}, kept checkpoints ${steps.join(', ')}: ${d.sentence}`);
    expect(d.stoppedEarly).toBe(true);
    const at = (s: number) => evals.find((e) => e.step === s)!;
    // The best checkpoint's validation loss is lower than the final one's; retention kept both.
    expect(d.bestStep).toBe(evals[minAt]!.step);
    expect(at(d.bestStep!).valLoss).toBeLessThan(at(d.finalStep).valLoss);
    // The recommended checkpoint forgets less than the final one, and retention kept it.
    expect(d.recommendedStep).not.toBeNull();
    expect(d.recommendedStep).not.toBe(d.finalStep);
    expect(at(d.recommendedStep!).extra!.probe_nll_delta_pct!).toBeLessThan(at(d.finalStep).extra!.probe_nll_delta_pct!);
    expect(steps).toEqual(expect.arrayContaining([d.bestStep!, d.recommendedStep!, d.finalStep]));

    // Rewinding: the recommended checkpoint's weights, loaded into a fresh adapter, give its exact logits.
    disposeTrainer(trainer);
    const ck = await store.checkpoints.load(run.id, d.recommendedStep!);
    const before = tf.memory().numTensors;
    const rewound = new LoraAdapter(model.lm, config.lora, { weights: adapterWeights(ck.tensors) });
    const l = model.lm.forward([probeIds]);
    const got = (await l.data()) as Float32Array;
    l.dispose();
    expect(Buffer.from(got.buffer).equals(Buffer.from(logitsAt.get(d.recommendedStep!)!.buffer))).toBe(true);
    // ...and they differ from the final step's (the rewind changed something).
    expect(Buffer.from(got.buffer).equals(Buffer.from(logitsAt.get(d.finalStep)!.buffer))).toBe(false);
    rewound.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
