// The reference model's golden outputs, read from the shared folder beside the repository
// (../shared/reference-models/stories260K/golden.json). They were produced by an independent numpy
// forward pass, so the browser is checked against something outside this code base.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const GOLDEN_PATH = resolve(REPO_ROOT, '..', 'shared', 'reference-models', 'stories260K', 'golden.json');

export interface Golden {
  prompt_greedy: { prompt: string; prompt_tokens: number[]; steps: number; tokens: number[]; text: string };
  logits_pos0_after_bos: { argmax: number; max: number; all: number[] };
}

export function goldenAvailable(): boolean {
  return existsSync(GOLDEN_PATH);
}

export function loadGolden(): Golden {
  return JSON.parse(readFileSync(GOLDEN_PATH, 'utf8')) as Golden;
}

/**
 * The greedy continuation of golden.prompt_greedy as tabtune reports it. golden.json follows
 * llama2.c: `tokens` is the whole sequence (BOS, prompt, continuation), `steps` counts positions
 * (64 -> 60 new tokens after the 5 prompt tokens), and `text` starts with the prompt. tabtune's
 * generate() returns the continuation only.
 */
export function greedyContinuation(g: Golden): { maxNewTokens: number; tokens: number[]; text: string } {
  const p = g.prompt_greedy;
  if (!p.text.startsWith(p.prompt)) throw new Error('golden prompt_greedy.text does not start with its prompt');
  const tokens = p.tokens.slice(p.prompt_tokens.length);
  return { maxNewTokens: tokens.length, tokens, text: p.text.slice(p.prompt.length) };
}
