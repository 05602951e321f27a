// Test helper (Node only): the stories260K reference model that lives OUTSIDE the repository, in
// ../shared/reference-models/stories260K (llama2.c checkpoint, tokenizer, golden outputs). Never copy
// those files, or anything converted from them, into the repository: conversions go to the git-ignored
// .cache/ folder.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'vitest';
import { convertLlama2c, LLAMA2C_CONVERTER_VERSION } from '../io/llama2c';
import { writeFolder } from '../node/hf-write';
import { REPO_ROOT } from './models';

export { REPO_ROOT };
export const REFERENCE_DIR = resolve(REPO_ROOT, '..', 'shared', 'reference-models', 'stories260K');
export const REFERENCE_CHECKPOINT = join(REFERENCE_DIR, 'stories260K.bin');
export const REFERENCE_TOKENIZER = join(REFERENCE_DIR, 'tok512.bin');
/** Where ensureReferenceHF() puts the converted Hugging Face folder. */
export const REFERENCE_HF_DIR = join(REPO_ROOT, '.cache', 'reference', 'stories260K-hf');

export interface Golden {
  note: string;
  bos_greedy: { prompt: string; steps: number; tokens: number[]; text: string };
  prompt_greedy: { prompt: string; prompt_tokens: number[]; steps: number; tokens: number[]; text: string };
  logits_pos0_after_bos: { argmax: number; first8: number[]; max: number; all: number[] };
  teacher_forced_first64_of_bos_greedy: { mean_nll_nats: number; nll_first8: number[] };
}

export function referenceAvailable(): boolean {
  return existsSync(REFERENCE_CHECKPOINT) && existsSync(REFERENCE_TOKENIZER);
}

/** Why the checks against the reference skip: null when the model is there. */
export const REFERENCE_ABSENT: string | null = referenceAvailable()
  ? null
  : `skipped: reference model absent at ${REFERENCE_DIR} (stories260K.bin, tok512.bin, golden.json)`;

let noted = false;

/**
 * The title of a test that needs the reference model: it says why it skips when the model is absent
 * (and, once per test file, so does a line on stderr, which the default reporter shows).
 */
export function referenceTitle(title: string): string {
  if (!REFERENCE_ABSENT) return title;
  if (!noted) console.warn(`[reference] checks against the reference model ${REFERENCE_ABSENT}`);
  noted = true;
  return `${title} [${REFERENCE_ABSENT}]`;
}

/**
 * A suite of checks against the reference model (its golden outputs, its llama2.c conversion): it runs
 * when ../shared/reference-models/stories260K is there and otherwise skips, saying so in its title.
 */
export function describeReference(title: string, fn: () => void): void {
  describe.skipIf(REFERENCE_ABSENT !== null)(referenceTitle(title), fn);
}

/** One test against the reference model, skipped (saying why) when the model is absent. */
export function itReference(title: string, fn: () => Promise<void> | void, timeout?: number): void {
  it.skipIf(REFERENCE_ABSENT !== null)(referenceTitle(title), fn, timeout);
}

function assertReference(): void {
  if (!referenceAvailable()) {
    throw new Error(
      `reference model not found: expected stories260K.bin and tok512.bin in ${REFERENCE_DIR} ` +
        `(the shared folder next to the repository, ../shared/reference-models/stories260K)`,
    );
  }
}

/** golden.json of the reference model (synchronous, so tests can load it at module level). */
export function loadGolden(): Golden {
  assertReference();
  return JSON.parse(readFileSync(join(REFERENCE_DIR, 'golden.json'), 'utf8')) as Golden;
}

const STAMP = '.tabtune-stamp.json';

async function inputStamp(): Promise<string> {
  const [a, b] = await Promise.all([stat(REFERENCE_CHECKPOINT), stat(REFERENCE_TOKENIZER)]);
  return JSON.stringify({
    converter: LLAMA2C_CONVERTER_VERSION,
    checkpoint: { size: a.size, mtimeMs: a.mtimeMs },
    tokenizer: { size: b.size, mtimeMs: b.mtimeMs },
  });
}

async function currentStamp(dir: string): Promise<string | null> {
  try {
    return await readFile(join(dir, STAMP), 'utf8');
  } catch {
    return null;
  }
}

/**
 * Converts the reference llama2.c model into a Hugging Face folder under .cache/reference/stories260K-hf
 * (once; again when the inputs' size/mtime or the converter version change) and returns its absolute
 * path. Safe when several test workers call it at the same time: each converts into its own temporary
 * folder and renames it into place.
 */
export async function ensureReferenceHF(): Promise<string> {
  assertReference();
  const want = await inputStamp();
  if ((await currentStamp(REFERENCE_HF_DIR)) === want) return REFERENCE_HF_DIR;

  const parent = dirname(REFERENCE_HF_DIR);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const tmp = `${REFERENCE_HF_DIR}.tmp-${tag}`;
  const [ck, tok] = await Promise.all([readFile(REFERENCE_CHECKPOINT), readFile(REFERENCE_TOKENIZER)]);
  const files = convertLlama2c(new Uint8Array(ck), new Uint8Array(tok), { name: 'stories260K' });
  files.set(STAMP, new TextEncoder().encode(want));
  await writeFolder(tmp, files);

  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await rename(tmp, REFERENCE_HF_DIR); // atomic when the target does not exist
      return REFERENCE_HF_DIR;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM' && code !== 'EACCES') throw e;
    }
    // The target exists: another worker may have just finished.
    if ((await currentStamp(REFERENCE_HF_DIR)) === want) {
      await rm(tmp, { recursive: true, force: true });
      return REFERENCE_HF_DIR;
    }
    // Stale folder from older inputs: move it away, then retry the rename.
    const old = `${REFERENCE_HF_DIR}.old-${tag}-${attempt}`;
    try {
      await rename(REFERENCE_HF_DIR, old);
      await rm(old, { recursive: true, force: true });
    } catch {
      // someone else moved it first
    }
  }
  await rm(tmp, { recursive: true, force: true });
  if ((await currentStamp(REFERENCE_HF_DIR)) === want) return REFERENCE_HF_DIR;
  throw new Error(`could not place the converted reference model at ${REFERENCE_HF_DIR}`);
}
