// From a model source (bundled folder, dropped files, URL, Hub id) to a runnable language model: read the
// Hugging Face folder here, then hand the files to the model room (src/model/load.ts), which builds the
// architecture and the tokenizer from already-read files.
import { parseConfig } from '../model/config';
import { languageModel, type LanguageModel } from '../model/load';
import { readHFModelFiles, type HFReadProgress } from './hf-folder';
import type { ModelSource } from './source';

export interface LoadModelOptions {
  onProgress?: (p: HFReadProgress) => void;
  /** Shown to the user; default: the last part of the source's label (the folder's name). */
  name?: string;
  trainable?: boolean;
}

/** Reads `source` (config.json first: an unsupported architecture stops before any weight is read) and builds the model. */
export async function loadModel(source: ModelSource, opts: LoadModelOptions = {}): Promise<LanguageModel> {
  const files = await readHFModelFiles(source, { onProgress: opts.onProgress, checkConfig: (c) => void parseConfig(c) });
  const name = opts.name ?? source.label.replace(/\/+$/, '').split('/').pop() ?? source.label;
  return languageModel(files, { name, label: source.label, trainable: opts.trainable });
}
