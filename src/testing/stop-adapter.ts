// Test helper: a LoRA adapter trained for a few steps on a bundled model so that its greedy replies end
// on BOS, a stop token that is not the model's own EOS (as the reference model's runs end on BOS). The
// merged-export tests check that the merged folder stops where base + this adapter stops.
import { RecordEncoder } from '../data/encode';
import type { PairRecord } from '../data/types';
import { LoraAdapter } from '../lora/adapter';
import type { LanguageModel } from '../model/load';
import { createTrainer, disposeTrainer, toExamples } from '../train/job';
import { defaultTrainConfig } from '../train/config';
import { runTraining } from '../train/run-loop';

/** The first records of public/examples/number-words.train.jsonl. */
const RECORDS: PairRecord[] = [
  ['Write as digits: four hundred ninety two', '492'],
  ['Write as digits: eight hundred seventy eight', '878'],
  ['Write as digits: six hundred ninety seven', '697'],
  ['Write as digits: three hundred sixty nine', '369'],
].map(([prompt, completion], i) => ({ kind: 'pair', line: i + 1, prompt: prompt!, completion: completion! }));

export interface StopAdapter {
  adapter: LoraAdapter;
  encoder: RecordEncoder;
  records: PairRecord[];
  /** The run's stop token: the tokenizer's BOS. */
  stopTokenId: number;
  /** Frees the adapter and the trainer's optimizer state (not the model). */
  dispose(): void;
}

/** LoRA on every linear layer, `steps` steps at lr 2e-2 (8 are enough on tabtune-tiny for the four prompts to end on BOS). */
export async function trainStopAdapter(model: LanguageModel, steps = 8): Promise<StopAdapter> {
  const stopTokenId = model.tokenizer.bosId;
  if (stopTokenId === null || model.eosIds.includes(stopTokenId)) throw new Error('the model needs a BOS token that is not one of its EOS ids');
  const encoder = new RecordEncoder(model.tokenizer, { maxSeqLen: 64, stop: { stopTokenId, stopStrings: [] } });
  const config = defaultTrainConfig(model.lm.config.arch, { steps, lr: 2e-2, warmupSteps: 0, batchSize: RECORDS.length });
  const trainer = createTrainer(model, toExamples(encoder, RECORDS), [], { ...config, lora: { ...config.lora, lora_dropout: 0 } });
  try {
    const out = await runTraining(trainer, {}, () => undefined);
    if (out.reason !== 'done') throw new Error(`training the stop adapter ended: ${out.reason}`);
  } catch (e) {
    disposeTrainer(trainer);
    throw e;
  }
  const adapter = trainer.adapter;
  if (!(adapter instanceof LoraAdapter)) throw new Error('the stop adapter is a LoRA adapter');
  return { adapter, encoder, records: RECORDS, stopTokenId, dispose: () => disposeTrainer(trainer) };
}
