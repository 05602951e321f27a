#!/usr/bin/env node
// Makes sure the page has a model to load before the dev/preview servers or the browser tests start.
//  - models/<name>/ folders (the project's own bundled models) are served as they are.
//  - The stories260K reference checkpoint lives outside the repository, in ../shared. When it is
//    there, it is converted once into the git-ignored .cache/reference/stories260K-hf/, which the
//    servers expose as /models/stories260K/. It is never copied into public/ or dist/.
// Never fails the command it runs before: it prints what is available and how to get a model.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = resolve(root, '..', 'shared', 'reference-models', 'stories260K');
const converted = join(root, '.cache', 'reference', 'stories260K-hf');
const say = (msg) => console.log(`[prepare-models] ${msg}`);

const bundled = existsSync(join(root, 'models'))
  ? readdirSync(join(root, 'models'), { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, 'models', d.name, 'config.json')))
      .map((d) => d.name)
  : [];
if (bundled.length) say(`bundled models: ${bundled.join(', ')}`);

if (existsSync(join(shared, 'stories260K.bin')) && existsSync(join(shared, 'tok512.bin'))) {
  // ensureReferenceHF() converts only when the inputs or the converter changed (it keeps a stamp).
  const tsx = join(root, 'node_modules', '.bin', 'tsx');
  const code = "import('./src/testing/reference.ts').then((m) => m.ensureReferenceHF()).then((dir) => console.log(dir))";
  const r = spawnSync(tsx, ['--eval', code], { cwd: root, encoding: 'utf8' });
  if (r.status === 0 && existsSync(join(converted, 'config.json'))) {
    say(`reference model stories260K ready in .cache/reference/stories260K-hf (served as /models/stories260K/)`);
  } else {
    say(`could not convert the reference model (${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' / ')}).`);
    say(`convert it by hand: npm run cli -- convert-llama2c --checkpoint ../shared/reference-models/stories260K/stories260K.bin --tokenizer ../shared/reference-models/stories260K/tok512.bin --out .cache/reference/stories260K-hf`);
  }
} else if (existsSync(join(converted, 'config.json'))) {
  say('using the reference model converted earlier in .cache/reference/stories260K-hf');
} else if (!bundled.length) {
  say('NOTE: no model is available, so the page will say "No model available".');
  say(`  The reference model is expected in ${shared} (the shared folder beside the repository).`);
  say('  Either place ../shared beside the repo and run this again, or put a Hugging Face model folder');
  say('  (config.json, tokenizer.json, model.safetensors) under models/<name>/.');
}
