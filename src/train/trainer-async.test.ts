// The Trainer's asynchronous reads (the worker uses them on WebGPU) must compute exactly what its
// synchronous ones compute: same losses, gradient norms, evaluations, checkpoints and counters, bit for bit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { inspectDataset, textSource } from '../data/index';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from '../model/load';
import { directorySource } from '../node/fs-source';
import { createTrainer, disposeTrainer, toExamples } from './job';
import { defaultTrainConfig, type TrainConfig } from './config';
import type { Example, Trainer } from './loop';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import * as tf from '@tensorflow/tfjs-core';
import { addNChunked } from './optimizer';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';

describe('Trainer: asynchronous reads (the WebGPU path) = synchronous reads, bit for bit', () => {
  let model: LanguageModel;
  let train: Example[];
  let val: Example[];

  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(TINY_DIR));
    const ins = await inspectDataset(textSource(DATA), { model });
    train = toExamples(ins.encoder!, ins.train);
    val = toExamples(ins.encoder!, ins.val);
  });

  async function run(config: TrainConfig, useAsync: boolean, steps: number) {
    const t: Trainer = createTrainer(model, train, val, config);
    try {
      const metrics = [];
      for (let i = 0; i < steps; i++) metrics.push(useAsync ? await t.trainStepAsync() : t.trainStep());
      const ev = useAsync ? await t.evaluateAsync(t.val, 0) : t.evaluate();
      const ck = useAsync ? await t.checkpointAsync() : t.checkpoint();
      // Timing and the engine's tensor count are not part of the computation.
      return { metrics: metrics.map(({ tokensPerSec: _a, etaSec: _b, memory: _c, ...m }) => m), ev, ck, bad: t.badStepCount };
    } finally {
      disposeTrainer(t);
    }
  }

  for (const [name, over] of [
    ['default LoRA, clipping at 1', {}],
    ['gradient accumulation and tight clipping', { gradAccum: 2, maxGradNorm: 0.05 }],
    ['non-finite steps are skipped and counted', { lr: 1e30, warmupSteps: 0, maxGradNorm: 1e30, maxBadSteps: 100 }],
  ] as const) {
    it(name, async () => {
      const config = defaultTrainConfig('llama', { steps: 6, batchSize: 2, seed: 5, warmupSteps: 2, ...over });
      const sync = await run(config, false, 4);
      const asyn = await run(config, true, 4);
      expect(asyn.metrics).toEqual(sync.metrics);
      expect(asyn.ev).toEqual(sync.ev);
      expect(asyn.bad).toBe(sync.bad);
      expect(asyn.ck.state).toEqual(sync.ck.state);
      expect(asyn.ck.metrics).toEqual(sync.ck.metrics);
      expect(Object.keys(asyn.ck.tensors)).toEqual(Object.keys(sync.ck.tensors));
      for (const [k, v] of Object.entries(sync.ck.tensors)) expect(Buffer.from(asyn.ck.tensors[k]!.data.buffer).equals(Buffer.from(v.data.buffer))).toBe(true);
      if ('lr' in over) expect(sync.metrics.some((m) => m.skipped)).toBe(true);
    });
  }

  it('adds many tensors in groups when a kernel may take only a few inputs', () => {
    const xs = Array.from({ length: 70 }, (_, i) => tf.scalar(i + 1));
    for (const max of [2, 3, 7, 100]) {
      const sum = addNChunked(xs, max);
      expect(sum.dataSync()[0]).toBe((70 * 71) / 2);
      sum.dispose();
    }
    tf.dispose(xs);
  });
});
