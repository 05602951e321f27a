// A checkpoint saved between two evaluations names the step its validation loss was measured at (issue 18 #6):
// stored with the manifest, given back on load, and such a checkpoint is never the "best" one (its own
// weights were not measured); the run's best validation step is the measured one.
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { TabtuneStore } from './store';
import { fakeClock, freshIdb, makePayload } from '../testing/storage';

async function setup() {
  const store = new TabtuneStore(freshIdb(), { now: fakeClock().now, keepLast: 10 });
  const run = await store.runs.create({ name: 'tiny', config: {} });
  return { store, run };
}

const at = (step: number, valLoss: number, valStep: number) => {
  const p = makePayload(step, { valLoss });
  return { ...p, metrics: { ...p.metrics, valStep } };
};

describe('checkpoint valStep', () => {
  it('keeps the step the validation loss was measured at, and gives it back on load', async () => {
    const { store, run } = await setup();
    const { info } = await store.checkpoints.save(run.id, at(55, 1.0374, 50));
    expect(info).toMatchObject({ step: 55, valLoss: 1.0374, valStep: 50 });
    expect((await store.checkpoints.load(run.id, 55)).metrics).toMatchObject({ valLoss: 1.0374, valStep: 50 });
    expect((await store.runs.get(run.id))?.bestValStep).toBe(50);
  });

  it('never badges as best a checkpoint whose figure was measured at another step', async () => {
    const { store, run } = await setup();
    await store.checkpoints.save(run.id, at(100, 0.9, 100));
    await store.checkpoints.save(run.id, at(150, 0.8, 150));
    await store.checkpoints.save(run.id, at(172, 0.8, 150));
    await store.checkpoints.delete(run.id, 150);
    const list = await store.checkpoints.list(run.id);
    expect(list.map((c) => [c.step, c.valStep, c.isBest])).toEqual([
      [100, 100, true],
      [172, 150, false],
    ]);
  });

  it('reads checkpoints saved before valStep existed as unknown', async () => {
    const { store, run } = await setup();
    const { info } = await store.checkpoints.save(run.id, makePayload(10, { valLoss: 2 }));
    expect(info.valStep).toBeNull();
    expect(info.isBest).toBe(true);
  });
});
