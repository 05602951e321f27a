// measure-step: times training steps of a configuration on the loaded model before any run, for the time
// estimate next to Start. A throwaway trainer (the configuration's adapter, the dataset's first training
// examples, no validation, no replay; SFT only) runs two steps inside the model queue: the first pays for kernel
// compilation and warm caches and is not counted, the second is timed. Nothing is stored; the trainer and
// its adapter are disposed (the active adapter is detached first: Generate attaches its own again).
import { createTrainer, disposeTrainer } from '../train/job';
import type { MeasureStepPayload, MeasureStepResult } from '../protocol/messages';
import type { Adapters } from './adapters';
import { asyncReads, requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { fail } from './errors';
import { applyMemoryPlan } from './memory';
import { buildTrainConfig } from './training';

export interface SpeedDeps {
  worker: Pick<WorkerContext, 'model' | 'serialModel'>;
  datasets: DatasetRegistry;
  adapters: Adapters;
  /** The run being trained, if any (a step is not timed meanwhile: it would share the device). */
  training(): { runId: string; name: string } | null;
}

export function measureStep(deps: SpeedDeps, p: MeasureStepPayload, requestId: number): Promise<MeasureStepResult> {
  return deps.worker.serialModel(async () => {
    const busy = deps.training();
    if (busy) throw fail('BUSY', `Run "${busy.name}" is training: its own steps give the ETA.`, 'Wait for it to finish or cancel it.');
    const ctx = requireModel(deps.worker);
    const config = buildTrainConfig(ctx.model.lm.config.arch, p.config ?? {});
    const data = await deps.datasets.prepare(p.datasetId, { model: ctx.model, requestId });
    if (config.objective === 'dpo') {
      throw fail('BAD_REQUEST', 'Timing a step before a run is done for SFT; a DPO run measures its speed in its first steps.', 'Start the run: the ETA shows after its first steps.');
    }
    if (!data.train.length) throw fail('BAD_DATASET', `"${data.name}" has no training examples to time a step on.`);
    // One optimizer step's worth of examples (micro-batches x accumulation), repeated when the data has fewer.
    const per = config.batchSize * config.gradAccum;
    const examples = Array.from({ length: per }, (_, i) => data.train[i % data.train.length]!);
    // The micro-batches the run will train with (the memory plan): timing the configured batch whole could
    // run the device out of memory where the run itself would not.
    const planned = applyMemoryPlan(ctx.model.info, config, examples).config;
    deps.adapters.detach();
    const trainer = createTrainer(ctx.model, examples, [], { ...planned, steps: 2, epochs: 0 });
    try {
      const step = () => (asyncReads() ? trainer.trainStepAsync() : Promise.resolve(trainer.trainStep()));
      await step();
      const t0 = performance.now();
      const m = await step();
      const ms = performance.now() - t0;
      return { ms, tokens: m.tokens, tokensPerSec: m.tokens / (ms / 1000), examples: per };
    } finally {
      disposeTrainer(trainer);
    }
  });
}
