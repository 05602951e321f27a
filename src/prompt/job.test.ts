// Prompt tuning as a job builds it (createTrainer on the bundled tabtune-tiny): TEXT init from the model's
// own tokenizer (as PEFT tokenizes prompt_tuning_init_text), and sequences that would not fit the context
// once the virtual tokens are put before them refused with the fix.
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import { directorySource } from '../node/fs-source';
import type { LanguageModel } from '../model/load';
import { TINY_DIR } from '../testing/models';
import { createTrainer, disposeTrainer } from '../train/job';
import { DEFAULT_TRAIN, type TrainConfig } from '../train/config';
import { TrainingError, type Example } from '../train/loop';
import { fitInitIds, PromptTuningAdapter } from './adapter';

const example = (n: number): Example => ({ input: Array.from({ length: n }, (_, i) => 5 + (i % 50)), target: Array.from({ length: n }, (_, i) => 6 + (i % 50)), weight: Array.from({ length: n }, () => 1) });

describe('prompt tuning jobs', () => {
  let model: LanguageModel;
  beforeAll(async () => {
    await setupBackend('cpu');
    model = await loadModel(directorySource(TINY_DIR));
  });

  const config = (over: Partial<TrainConfig['prompt']> = {}): TrainConfig => ({
    ...DEFAULT_TRAIN,
    mode: 'prompt',
    prompt: { num_virtual_tokens: 8, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: 'Write the number in digits', ...over },
  });

  it('TEXT starts from the embeddings of the tokenizer ids of the text, cut or repeated', () => {
    const t = createTrainer(model, [example(10)], [], config());
    const ad = t.adapter as PromptTuningAdapter;
    expect(ad).toBeInstanceOf(PromptTuningAdapter);
    const ids = fitInitIds(model.tokenizer.encode('Write the number in digits'), 8);
    const want = model.lm.embedTokens(ids);
    expect(ad.getWeights()).toEqual(want.dataSync());
    want.dispose();
    expect(model.lm.prefix).toBe(ad);
    disposeTrainer(t);
    expect(model.lm.prefix).toBeNull();
  });

  it('refuses sequences that leave no room for the virtual tokens, naming the fix', () => {
    const ctx = model.info.contextLength;
    expect(() => createTrainer(model, [example(ctx - 7)], [], config())).toThrow(TrainingError);
    expect(() => createTrainer(model, [example(10)], [example(ctx - 7)], config())).toThrow(expect.objectContaining({ message: expect.stringContaining(`${ctx + 1} is more than the model's context (${ctx})`), hint: `Set the max sequence length to ${ctx - 8} or less, or use fewer virtual tokens.` }));
    expect(model.lm.prefix).toBeNull(); // the refused run's adapter is gone
    const t = createTrainer(model, [example(ctx - 8)], [], config());
    disposeTrainer(t);
  });
});
