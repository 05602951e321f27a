import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordEncoder } from '../../data/encode';
import { inspectDataset, textSource } from '../../data/index';
import type { DataRecord, PairRecord } from '../../data/types';
import { loadModel } from '../../io/load-model';
import { setupBackend } from '../../model/backend';
import type { LanguageModel } from '../../model/load';
import { directorySource } from '../../node/fs-source';
import { REPO_ROOT, TINY_DIR } from '../../testing/models';
import { defaultTrainConfig, type TrainConfig } from '../config';
import { createTrainer, disposeTrainer, toExamples, type HeldOutRow } from '../job';
import type { Trainer } from '../loop';
import { runTraining } from '../run-loop';
import { confusionTable, generationMetric, generationScores, labelAccuracy, labelLike, memorisation, memorisationSentence, scoreAnswers, type ConfusionTable, type GenerationDetails } from './generation';

const repeat = (s: string, k: number) => new Array<string>(k).fill(s);

describe('label-like answers', () => {
  it('are few distinct answers, each repeated: at most max(2, min(20, n / 3)) of n', () => {
    expect(labelLike([...repeat('happy', 10), ...repeat('sad', 7)])).toEqual(['happy', 'sad']);
    // Case, surrounding spaces and punctuation do not make another label; the first spelling names it.
    expect(labelLike(['Happy.', 'happy', ' HAPPY', 'sad', 'Sad!', 'sad'])).toEqual(['Happy.', 'sad']);
    expect(labelLike(['yes', 'no', 'yes'])).toEqual(['no', 'yes']); // n = 3: up to 2 labels
    expect(labelLike(['yes', 'no'])).toBeNull(); // nothing repeats
    expect(labelLike(['a', 'b', 'c', 'a', 'b', 'c'])).toBeNull(); // 3 labels need n >= 9
    expect(labelLike(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    const labels20 = Array.from({ length: 20 }, (_, i) => `L${String(i).padStart(2, '0')}`);
    expect(labelLike(labels20.flatMap((l) => repeat(l, 3)))).toEqual(labels20);
    const labels21 = Array.from({ length: 21 }, (_, i) => `L${i}`);
    expect(labelLike(labels21.flatMap((l) => repeat(l, 10)))).toBeNull(); // more than 20
    expect(labelLike(Array.from({ length: 100 }, (_, i) => String(i)))).toBeNull(); // free-form answers
    expect(labelLike([])).toBeNull();
  });
});

describe('confusion table', () => {
  it('counts expected (rows) against predicted (columns), answers that are no label in the last column', () => {
    const t = confusionTable(['happy', 'happy', 'sad', 'sad', 'sad', 'happy'], ['happy', 'Sad.', 'sad', 'happy', 'I think sad', 'happy'], ['happy', 'sad']);
    expect(t).toEqual<ConfusionTable>({
      labels: ['happy', 'sad'],
      counts: [
        [2, 1, 0],
        [1, 1, 1],
      ],
    });
    expect(labelAccuracy(t)).toBeCloseTo(3 / 6, 12);
    // Without labels: the expected ones; an expected answer outside the given labels gets a row and a column.
    expect(confusionTable(['b', 'a'], ['a', 'a']).labels).toEqual(['a', 'b']);
    const extra = confusionTable(['a', 'c'], ['c', 'c'], ['a', 'b']);
    expect(extra.labels).toEqual(['a', 'b', 'c']);
    expect(extra.counts).toEqual([
      [0, 0, 1, 0],
      [0, 0, 0, 0],
      [0, 0, 1, 0],
    ]);
    expect(() => confusionTable(['a'], [])).toThrow();
  });
});

describe('memorisation', () => {
  it('counts answers that are a training answer but not the expected one', () => {
    const train = ['195', '163', '878'];
    const m = memorisation([' 878', '163', '326', '878', ''], ['326', '163', '326', '999', '195'], train);
    expect(m).toEqual({ count: 2, of: 5, share: 0.4, indices: [0, 3] });
    expect(memorisation([], [], train).share).toBeNaN();
  });

  it('speaks from 25% and 2 answers', () => {
    expect(memorisationSentence({ count: 31, of: 40 })).toBe('31 of 40 held-out answers are training answers: the model memorised answers instead of learning the task.');
    expect(memorisationSentence({ count: 3, of: 12 })).toMatch(/^3 of 12 held-out/);
    expect(memorisationSentence({ count: 2, of: 9 })).toBeNull(); // 22%
    expect(memorisationSentence({ count: 1, of: 2 })).toBeNull(); // one answer may be chance
    expect(memorisationSentence({ count: 0, of: 0 })).toBeNull();
  });
});

describe('scores of answered rows', () => {
  const row = (expected: string, output: string, overlap: number): HeldOutRow => ({ line: 1, prompt: `q ${expected}`, expected, output, exact: output.trim() === expected.trim(), overlap, finishReason: 'eos', loss: null });

  it('exact match and token F1 are means over the rows; labels bring accuracy and a table, free answers memorisation', () => {
    const rows = [row('the cat sat', 'the cat sat', 1), row('the cat', 'the dog', 0.5), row('one two three four', 'one', 0.4)];
    const free = scoreAnswers(rows, null, ['the dog', 'x']);
    expect(free.values).toEqual({ gen_examples: 3, exact_match: 1 / 3, token_f1: (1 + 0.5 + 0.4) / 3, memorised_share: 1 / 3, memorised_count: 1 });
    expect(free.details.memorised).toEqual({ count: 1, of: 3, sentence: null, examples: [{ prompt: 'q the cat', expected: 'the cat', output: 'the dog' }] });
    expect(free.details.samples.length).toBe(3);
    expect(free.details.confusion).toBeUndefined();
    const labelled = scoreAnswers([row('happy', 'Happy', 1), row('sad', 'happy', 0), row('sad', 'sad', 1)], ['happy', 'sad'], ['happy', 'sad']);
    expect(labelled.values).toEqual({ gen_examples: 3, exact_match: 1 / 3, token_f1: 2 / 3, label_accuracy: 2 / 3 });
    expect(labelled.details.confusion?.counts).toEqual([
      [1, 0, 0],
      [1, 1, 0],
    ]);
    expect(scoreAnswers([], null, []).values).toEqual({ gen_examples: 0, exact_match: NaN, token_f1: NaN });
  });
});

describe('generationMetric on tabtune-tiny', () => {
  let model: LanguageModel;
  let encoder: RecordEncoder;
  let train: DataRecord[];
  let heldOut: DataRecord[];
  let trainer: Trainer | undefined;
  /** The memorising trainer (made in beforeAll). */
  const tr = () => trainer!;
  const lines = (f: string, from: number, to: number) => readFileSync(join(REPO_ROOT, 'public/examples', f), 'utf8').split('\n').slice(from, to).join('\n') + '\n';
  const config = (over: Partial<TrainConfig> = {}) => defaultTrainConfig('llama', { lr: 2e-2, batchSize: 8, warmupSteps: 0, seed: 1, ...over, lora: { ...defaultTrainConfig('llama').lora, lora_dropout: 0 } });

  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(TINY_DIR));
    // 8 training records learned by heart (80 steps at a high learning rate): on new prompts the model
    // answers with the training answers.
    const ins = await inspectDataset(textSource(lines('number-words.train.jsonl', 0, 8)), { model, validation: textSource(lines('number-words.val.jsonl', 0, 8)) });
    encoder = ins.encoder!;
    train = ins.train;
    heldOut = ins.val;
    const t = createTrainer(model, toExamples(encoder, train), toExamples(encoder, heldOut), config({ steps: 80 }));
    for (let i = 0; i < 80; i++) t.trainStep();
    trainer = t;
  }, 300_000);
  afterAll(() => {
    if (trainer) disposeTrainer(trainer);
    model?.dispose();
  });

  const measure = async (val: DataRecord[], maxExamples = 100) => {
    const r = await generationMetric({ model, encoder, val, train, maxExamples }).measure(tr());
    return { values: r.values, details: r.details as unknown as GenerationDetails };
  };

  it('answers the training prompts with their answers, and held-out prompts with training answers (memorised)', async () => {
    const own = await measure(train);
    expect(own.values).toEqual({ gen_examples: 8, exact_match: 1, token_f1: 1, memorised_share: 0, memorised_count: 0 });
    // The same prompts, other expected answers: every answer is a training answer, none the expected one.
    const shifted = train.map((r) => ({ ...(r as PairRecord), completion: String((Number((r as PairRecord).completion) + 1) % 1000) }));
    const moved = await measure(shifted);
    expect(moved.values).toEqual({ gen_examples: 8, exact_match: 0, token_f1: 0, memorised_share: 1, memorised_count: 8 });
    expect(memorisationSentence(moved.details.memorised!)).toBe('8 of 8 held-out answers are training answers: the model memorised answers instead of learning the task.');
    expect(moved.details.memorised!.examples.length).toBe(5);
    // Really held-out prompts: the memorising model recalls training answers there too.
    const real = await measure(heldOut);
    const trainAnswers = new Set(train.map((r) => (r as PairRecord).completion));
    console.log(`[generation] held-out: ${real.details.samples.map((s) => `${s.expected} -> ${s.output}`).join(', ')}; memorised ${real.values.memorised_count}/8`);
    expect(real.values.gen_examples).toBe(8);
    expect(real.values.memorised_count).toBeGreaterThanOrEqual(4);
    for (const m of real.details.memorised!.examples) {
      expect(trainAnswers.has(m.output)).toBe(true);
      expect(m.output).not.toBe(m.expected);
    }
    expect(real.values.token_f1).toBeGreaterThanOrEqual(real.values.exact_match!);
    expect(memorisationSentence(real.details.memorised!)).toMatch(/held-out answers are training answers/);
  });

  it('answers a fixed subset of maxExamples records, the same at every evaluation, and leaks no tensors', async () => {
    const metric = generationMetric({ model, encoder, val: heldOut, train, maxExamples: 3 });
    const a = await metric.measure(tr());
    const n0 = tf.memory().numTensors;
    const b = await metric.measure(tr());
    await metric.measure(tr());
    expect(tf.memory().numTensors).toBe(n0);
    expect(a.values.gen_examples).toBe(3);
    expect(b).toEqual(a);
    const prompts = (a.details as unknown as GenerationDetails).samples.map((s) => s.prompt);
    const order = heldOut.map((r) => (r as PairRecord).prompt);
    expect(prompts.map((p) => order.indexOf(p))).toEqual([...prompts.map((p) => order.indexOf(p))].sort((x, y) => x - y));
    expect(prompts.every((p) => order.includes(p))).toBe(true);
    // Out of the box: generationScores measures the model as it is, the same numbers.
    expect(await generationScores({ model, encoder, val: heldOut, train, maxExamples: 3 })).toEqual(a.values);
    // No record to answer: only the count.
    expect((await generationMetric({ model, encoder, val: heldOut, train, maxExamples: 0 }).measure(tr())).values).toEqual({ gen_examples: 0 });
  });

  it('generates with dropout off and leaves the adapter as it was', async () => {
    const ad = tr().adapter!;
    const seen: boolean[] = [];
    const lm = tr().lm;
    const forward = lm.forward;
    lm.forward = (...args) => {
      seen.push(ad.training);
      return forward.apply(lm, args);
    };
    try {
      ad.training = true;
      ad.strength = 0.5;
      await generationMetric({ model, encoder, val: heldOut, train, maxExamples: 2 }).measure(tr());
    } finally {
      lm.forward = forward;
    }
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((t) => !t)).toBe(true);
    expect([ad.training, ad.strength, ad.enabled]).toEqual([true, 0.5, true]);
    ad.training = false;
    ad.strength = 1;
  });

  it('label-like answers get label accuracy and a confusion table instead of memorisation', async () => {
    const ins = await inspectDataset(textSource(lines('story-sentiment.train.jsonl', 0, 12)), { model, validation: textSource(lines('story-sentiment.val.jsonl', 0, 6)) });
    const r = await generationMetric({ model, encoder: ins.encoder!, val: ins.val, train: ins.train, maxExamples: 6 }).measure(tr());
    const d = r.details as unknown as GenerationDetails;
    expect(Object.keys(r.values).sort()).toEqual(['exact_match', 'gen_examples', 'label_accuracy', 'token_f1']);
    expect(d.confusion!.labels).toEqual(['happy', 'sad']);
    expect(d.confusion!.counts.flat().reduce((a, b) => a + b, 0)).toBe(6);
    expect(d.memorised).toBeUndefined();
    expect(r.values.label_accuracy).toBe(labelAccuracy(d.confusion!));
  });

  it('does not change training: the same losses and weights with the metric plugged in as without', async () => {
    const ins = await inspectDataset(textSource(lines('number-words.train.jsonl', 20, 36)), { model, validation: textSource(lines('number-words.val.jsonl', 20, 24)) });
    const enc = ins.encoder!;
    const run = async (withMetric: boolean) => {
      const c = { ...config({ steps: 6, evalEvery: 2, saveEvery: 0, batchSize: 4 }), lora: { ...defaultTrainConfig('llama').lora, lora_dropout: 0.1 } };
      const t = createTrainer(model, toExamples(enc, ins.train), toExamples(enc, ins.val), c);
      try {
        const losses: number[] = [];
        const extras: Record<string, number>[] = [];
        const metrics = withMetric ? [generationMetric({ model, encoder: enc, val: ins.val, train: ins.train, maxExamples: 4 })] : [];
        await runTraining(t, { metrics }, (e) => {
          if (e.type === 'step') losses.push(e.metrics.loss);
          if (e.type === 'eval') extras.push(e.metrics.extra ?? {});
        });
        return { losses, extras, weights: t.checkpoint().tensors };
      } finally {
        disposeTrainer(t);
      }
    };
    // The memorising trainer's adapter sits on the shared model: this last test takes it off.
    disposeTrainer(tr());
    trainer = undefined;
    const plain = await run(false);
    const measured = await run(true);
    expect(measured.losses).toEqual(plain.losses);
    expect(measured.weights).toEqual(plain.weights);
    expect(measured.extras.length).toBe(3);
    expect(measured.extras.every((x) => x.gen_examples === 4)).toBe(true);
  });
});
