// The card's "how to reproduce" recipes: the TRL script and the Axolotl config of the same job
// (src/io/recipes.ts), for the jobs those recipes describe (LoRA, supervised); other runs say why not.
import type { DataRecord } from '../data/types';
import { recipeFiles, recipeUnavailable } from '../io/recipes';
import type { TrainConfig } from '../train/config';
import { recipeJob } from '../train/job';
import type { CardInput } from './card';

export function cardRecipe(config: TrainConfig, o: Parameters<typeof recipeJob>[1], records: readonly DataRecord[]): CardInput['recipe'] {
  const why = recipeUnavailable(config, records);
  if (why) return { unavailable: why };
  const files = recipeFiles(recipeJob(config, o), records);
  const dec = new TextDecoder();
  const out: Record<string, string> = {};
  for (const [name, bytes] of files) if (name !== (o.datasetFile ?? 'data.jsonl')) out[name] = dec.decode(bytes);
  return { files: out };
}
