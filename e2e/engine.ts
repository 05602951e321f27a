// What tabtune's own engine computes, in this Node process, for a model the page also serves: the
// expected output of the browser tests that need no outside reference (the bundled models are in the
// repository). The engine runs on TF.js's plain-JavaScript CPU backend, so the page's WASM and WebGPU
// kernels are checked against an implementation they do not share.
import { join } from 'node:path';
import { loadModel } from '../src/io/load-model';
import { setupBackend } from '../src/model/backend';
import { generate } from '../src/model/generate';
import { directorySource } from '../src/node/fs-source';
import { REPO_ROOT } from './golden';

/** The bundled model the first-page and URL tests use (fast, and in every checkout). */
export const TINY = 'tabtune-tiny';
/** A prompt whose greedy continuation by tabtune-tiny does not fall into a short loop at once. */
export const TINY_PROMPT = 'The President said that';

export interface EngineGreedy {
  numParams: number;
  tokens: number[];
  text: string;
  finishReason: string;
}

const cache = new Map<string, Promise<EngineGreedy>>();

/** Greedy continuation of `prompt` by the bundled model models/<name>/ (the prompt is not part of it). */
export function engineGreedy(name: string, prompt: string, maxNewTokens: number): Promise<EngineGreedy> {
  const key = JSON.stringify([name, prompt, maxNewTokens]);
  let result = cache.get(key);
  if (!result) {
    result = (async () => {
      await setupBackend('cpu');
      const model = await loadModel(directorySource(join(REPO_ROOT, 'models', name)));
      try {
        const [r] = await generate(model, [prompt], { maxNewTokens, temperature: 0 });
        return { numParams: model.info.numParams, tokens: r!.tokens, text: r!.text, finishReason: r!.finishReason };
      } finally {
        model.dispose();
      }
    })();
    cache.set(key, result);
  }
  return result;
}
