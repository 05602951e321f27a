// A checkpoint's validation loss names the step it was measured at (issue 18 #6): a checkpoint saved
// between two evaluations carries the earlier evaluation's loss with that step, also after a resume.
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import { setupBackend } from '../model/backend';
import { tinyModel } from '../testing/tiny-model';
import { DEFAULT_TRAIN, type TrainConfig } from './config';
import { Trainer, type Example } from './loop';

const LORA = { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'v_proj'] };
const cfg: TrainConfig = { ...DEFAULT_TRAIN, lora: LORA, warmupSteps: 1, batchSize: 2, steps: 10, evalEvery: 5, saveEvery: 5 };
const examples = (n: number, off: number): Example[] =>
  Array.from({ length: n }, (_, k) => ({ input: [1, 4 + ((k + off) % 30), 3], target: [4 + ((k + off) % 30), 3, 2], weight: [0, 1, 1] }));

function trainer(): Trainer {
  const lm = tinyModel({ arch: 'llama', seed: 3 });
  return new Trainer(lm, examples(8, 0), examples(4, 50), cfg, new LoraAdapter(lm, LORA, { seed: 1 }));
}
function dispose(t: Trainer): void {
  t.dispose();
  t.adapter?.dispose();
  t.lm.dispose();
}

describe('checkpoint metrics: valStep', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('is the evaluation step, not the checkpoint step, and survives a resume', () => {
    const t = trainer();
    expect(t.checkpoint().metrics.valStep).toBeUndefined(); // nothing measured yet
    for (let i = 0; i < 5; i++) t.trainStep();
    const ev = t.evaluate();
    expect(t.checkpoint().metrics).toMatchObject({ valLoss: ev.valLoss, valStep: 5 });
    t.trainStep();
    t.trainStep();
    const ck = t.checkpoint();
    expect(ck.step).toBe(7);
    expect(ck.metrics).toMatchObject({ valLoss: ev.valLoss, valStep: 5 });
    dispose(t);

    const u = trainer();
    u.restore(ck);
    u.trainStep();
    expect(u.checkpoint().metrics).toMatchObject({ valLoss: ev.valLoss, valStep: 5 });
    dispose(u);
  });
});
