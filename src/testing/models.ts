// Test helper (Node only): the models tabtune bundles in models/ (made by the project itself, so the
// tests that train, resume, compare or export need nothing outside the repository).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is src/testing/models.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** tabtune-tiny: 0.45M parameters, the fast one for engine, worker and resume tests. */
export const TINY_DIR = join(REPO_ROOT, 'models', 'tabtune-tiny');
/** tabtune-base: 3.1M parameters, the app's default model (where a test needs its quality). */
export const BASE_DIR = join(REPO_ROOT, 'models', 'tabtune-base');

/** The bundled models' special tokens (config.json): replies end with EOS, not with BOS. */
export const BUNDLED_BOS = 1;
export const BUNDLED_EOS = 2;
