// The card's "how to reproduce" recipes: the TRL script and the Axolotl config of the same job
// (src/io/recipes.ts), for the jobs those recipes describe (LoRA, supervised); other runs say why not.
import type { DataRecord } from '../data/types';
import { recipeFiles } from '../io/recipes';
import type { TrainConfig } from '../train/config';
import { recipeJob } from '../train/job';
import type { CardInput } from './card';

export function cardRecipe(config: TrainConfig, o: Parameters<typeof recipeJob>[1], records: readonly DataRecord[]): CardInput['recipe'] {
  if (config.mode !== 'lora') return { unavailable: `the TRL and Axolotl recipes describe LoRA jobs, and this run trained ${config.mode === 'oft' ? 'an OFT adapter' : config.mode === 'prompt' ? 'a prompt-tuning adapter' : 'every weight'}` };
  if ((config.objective ?? 'sft') !== 'sft') return { unavailable: `the TRL and Axolotl recipes describe supervised (SFT) jobs, and this run's objective was ${config.objective}` };
  const usable = records.filter((r) => r.kind !== 'preference');
  if (!usable.length) return { unavailable: 'the dataset has no prompt/completion or chat records for the recipes' };
  const files = recipeFiles(recipeJob(config, o), usable);
  const dec = new TextDecoder();
  const out: Record<string, string> = {};
  for (const [name, bytes] of files) if (name !== (o.datasetFile ?? 'data.jsonl')) out[name] = dec.decode(bytes);
  return { files: out };
}
