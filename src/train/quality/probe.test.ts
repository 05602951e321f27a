import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../io/load-model';
import { LoraAdapter } from '../../lora/adapter';
import { setupBackend } from '../../model/backend';
import { meanNLL } from '../../model/generate';
import type { LanguageModel } from '../../model/load';
import { directorySource } from '../../node/fs-source';
import { BUNDLED_BOS, TINY_DIR } from '../../testing/models';
import { seededRandom } from '../../util/random';
import { defaultTrainConfig } from '../config';
import { createTrainer, disposeTrainer } from '../job';
import type { Example, Trainer } from '../loop';
import { forgettingMetric, PROBE_OPENINGS, probeNll, replayCount, replayExamples, sampleProbeSet, type ProbeSet } from './probe';

const LORA = defaultTrainConfig('llama').lora;

/** A LoRA adapter whose B is not zero (so it changes the model). */
function nonZeroAdapter(model: LanguageModel, seed: number): LoraAdapter {
  const a = new LoraAdapter(model.lm, { ...LORA, lora_dropout: 0 }, { seed });
  const rand = seededRandom(seed + 1);
  const w = a.getWeights();
  for (const v of w.values()) for (let i = 0; i < v.B.length; i++) v.B[i] = (rand() - 0.5) * 0.4;
  a.setWeights(w);
  return a;
}

/** Unrelated data: after BOS, one token over and over. */
function oneTokenExamples(n: number, token: number, len = 24): Example[] {
  return Array.from({ length: n }, () => {
    const ids = [BUNDLED_BOS, ...new Array<number>(len).fill(token)];
    return { input: ids.slice(0, -1), target: ids.slice(1), weight: ids.slice(1).map(() => 1) };
  });
}

describe('forgetting probe on tabtune-tiny', () => {
  let model: LanguageModel;
  let probe: ProbeSet;

  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(TINY_DIR));
    probe = await sampleProbeSet(model, null, { n: 12, tokens: 16, seed: 3 });
  });
  afterAll(() => model?.dispose());

  it('samples n continuations of `tokens` tokens after the neutral openings, deterministically from the seed', async () => {
    expect(probe.samples.length).toBe(12);
    expect(probe.tokens).toBe(16);
    for (const s of probe.samples) {
      expect(s.source).toBe('base');
      expect(s.ids[0]).toBe(BUNDLED_BOS); // the tokenizer adds BOS
      expect(s.ids.length).toBe(s.promptLen + 16);
    }
    expect(model.tokenizer.decode(probe.samples[1]!.ids.slice(0, probe.samples[1]!.promptLen), { skipSpecial: true })).toBe('Once upon a time');
    const again = await sampleProbeSet(model, null, { n: 12, tokens: 16, seed: 3 });
    expect(again).toEqual(probe);
    const other = await sampleProbeSet(model, null, { n: 12, tokens: 16, seed: 4 });
    expect(other.samples.map((s) => s.ids)).not.toEqual(probe.samples.map((s) => s.ids));
    // Stored with the run: JSON keeps it as it is.
    expect(JSON.parse(JSON.stringify(probe))).toEqual(probe);
    expect(probe.baseNll).toBeGreaterThan(0);
  });

  it('samples and scores the base model with an adapter attached, and restores the adapter', async () => {
    const a = nonZeroAdapter(model, 9);
    try {
      a.strength = 0.7;
      a.training = true;
      const withAdapter = await sampleProbeSet(model, a, { n: 12, tokens: 16, seed: 3 });
      expect(withAdapter).toEqual(probe);
      expect([a.enabled, a.strength, a.training]).toEqual([true, 0.7, true]);
      // ... while the adapter, on, does change the model.
      a.training = false;
      expect(Math.abs((await probeNll(model.lm, probe)) - probe.baseNll)).toBeGreaterThan(1e-3);
    } finally {
      a.dispose();
    }
  });

  it('adds chunks of a general text, each scored after one token of context', async () => {
    const text = 'The little dog ran to the park. He saw a big tree and a red ball. '.repeat(20);
    const p = await sampleProbeSet(model, null, { n: 4, tokens: 16, seed: 3, text });
    const texts = p.samples.filter((s) => s.source === 'text');
    expect(p.samples.length).toBe(8);
    expect(texts.length).toBe(4);
    for (const s of texts) {
      expect(s.promptLen).toBe(1);
      expect(s.ids.length).toBe(17);
      expect(s.ids[0]).toBe(BUNDLED_BOS);
    }
    const ids = model.tokenizer.encode(text, { addBos: false });
    expect(texts[0]!.ids.slice(1)).toEqual(ids.slice(0, 16));
    // Only the texts that fit: a short text gives fewer chunks.
    const short = await sampleProbeSet(model, null, { n: 4, tokens: 16, seed: 3, text: 'The little dog ran to the park.' });
    expect(short.samples.filter((s) => s.source === 'text').length).toBe(0);
  });

  it('probeNll is the token-weighted mean NLL of the continuations (as per-sequence meanNLL computes it)', async () => {
    const p: ProbeSet = { ...probe, samples: [...probe.samples.slice(0, 9), { ids: probe.samples[9]!.ids.slice(0, 7), promptLen: probe.samples[9]!.promptLen, source: 'base' }] };
    let sum = 0;
    let count = 0;
    for (const s of p.samples) {
      const all = meanNLL(model.lm, s.ids) * (s.ids.length - 1);
      const prompt = s.promptLen > 1 ? meanNLL(model.lm, s.ids.slice(0, s.promptLen)) * (s.promptLen - 1) : 0;
      sum += all - prompt;
      count += s.ids.length - s.promptLen;
    }
    expect(await probeNll(model.lm, p)).toBeCloseTo(sum / count, 4);
    expect(probe.baseNll).toBeCloseTo(await probeNll(model.lm, probe), 6);
  });

  it('forgetting is 0 with a fresh adapter (B = 0) and grows after high-lr training on unrelated data; no tensors leak', async () => {
    const config = defaultTrainConfig('llama', { lr: 3e-2, warmupSteps: 0, steps: 8, batchSize: 4, schedule: 'constant' });
    const trainer: Trainer = createTrainer(model, oneTokenExamples(8, 1200), [], config);
    try {
      const metric = forgettingMetric(trainer.lm, probe);
      expect(metric.name).toBe('forgetting');
      const before = await metric.measure(trainer);
      expect(before.values.probe_nll).toBe(probe.baseNll);
      expect(before.values.probe_nll_delta).toBe(0);
      expect(before.values.probe_nll_delta_pct).toBe(0);
      for (let i = 0; i < 8; i++) trainer.trainStep();
      const n0 = tf.memory().numTensors;
      const after = await metric.measure(trainer);
      await metric.measure(trainer);
      expect(tf.memory().numTensors).toBe(n0);
      expect(after.values.probe_nll_delta).toBeGreaterThan(0.05);
      expect(after.values.probe_nll_delta).toBeCloseTo(after.values.probe_nll! - probe.baseNll, 10);
      expect(after.values.probe_nll_delta_pct).toBeCloseTo((100 * after.values.probe_nll_delta!) / probe.baseNll, 8);
      console.log(`[probe] probe NLL ${probe.baseNll.toFixed(3)} -> ${after.values.probe_nll!.toFixed(3)} (+${after.values.probe_nll_delta_pct!.toFixed(1)}%) after 8 steps at lr 3e-2`);
    } finally {
      disposeTrainer(trainer);
    }
  });

  it('replay text is base-model text with weight 1 on the continuation, never a probe sequence', async () => {
    const a = nonZeroAdapter(model, 4);
    let replay: Example[];
    try {
      replay = await replayExamples(model, a, { n: 10, tokens: 16, seed: 3, exclude: probe });
      expect(a.enabled).toBe(true);
    } finally {
      a.dispose();
    }
    expect(replay.length).toBe(10);
    const probeSeqs = new Set(probe.samples.map((s) => s.ids.join(',')));
    for (const [i, e] of replay.entries()) {
      const ids = [...e.input, e.target[e.target.length - 1]!];
      expect(probeSeqs.has(ids.join(','))).toBe(false);
      const prompt = model.tokenizer.encode(PROBE_OPENINGS[i % PROBE_OPENINGS.length]!);
      const promptLen = prompt.length;
      expect(ids.slice(0, promptLen)).toEqual(prompt);
      expect(ids.length).toBe(promptLen + 16);
      expect(e.weight).toEqual(e.target.map((_, t) => (t >= promptLen - 1 ? 1 : 0)));
    }
    // The same seed gives the same replay text, the base model's (sampled with the adapter off, the same as with none).
    expect(await replayExamples(model, null, { n: 10, tokens: 16, seed: 3, exclude: probe })).toEqual(replay);
  });

  it('with one-token texts (where repeats are certain) replay still never repeats a probe sequence', async () => {
    const tiny = await sampleProbeSet(model, null, { n: 24, tokens: 1, seed: 3 });
    const seqs = new Set(tiny.samples.map((s) => s.ids.join(',')));
    const free = await replayExamples(model, null, { n: 24, tokens: 1, seed: 3 });
    const repeats = free.filter((e) => seqs.has([...e.input, e.target[e.target.length - 1]!].join(','))).length;
    expect(repeats).toBeGreaterThan(0); // without `exclude` the two streams do meet here
    const kept = await replayExamples(model, null, { n: 24, tokens: 1, seed: 3, exclude: tiny });
    expect(kept.length).toBeGreaterThan(0);
    for (const e of kept) expect(seqs.has([...e.input, e.target[e.target.length - 1]!].join(','))).toBe(false);
  });

  it('replayCount makes replay the given share of the mix', () => {
    expect(replayCount(100, 0)).toBe(0);
    expect(replayCount(90, 0.1)).toBe(10);
    expect(replayCount(100, 0.5)).toBe(100);
    expect(replayCount(7, 0.05)).toBe(0);
    expect(replayCount(30, 0.05)).toBe(2);
    expect(() => replayCount(10, 1)).toThrow();
    expect(() => replayCount(10, -0.1)).toThrow();
  });
});
