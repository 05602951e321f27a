// What a bundled model can learn: LoRA with the app's default settings on each shipped example task,
// held-out exact match with the adapter off and on (src/node/learn-example.ts, the learning tests'
// measurement). Writes the figures to models/<name>/learning.json, which the model card
// (scripts/pretrain/card.ts) prints.
//
//   npx tsx scripts/learning-probe.ts --model models/tabtune-base [--tasks number-words,story-sentiment,extract-names] [--out FILE]
import { writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setupBackend } from '../src/model/backend';
import { loadModel } from '../src/io/load-model';
import { directorySource } from '../src/node/fs-source';
import { learnExample, learnLine, type LearnResult } from '../src/node/learn-example';
import { defaultTrainConfig } from '../src/train/config';

const ROOT = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { model: { type: 'string' }, tasks: { type: 'string' }, out: { type: 'string' } }, strict: true });
if (!values.model) {
  process.stderr.write('usage: npx tsx scripts/learning-probe.ts --model DIR [--tasks a,b] [--out FILE]\n');
  process.exit(2);
}
const dir = resolve(values.model);
const tasks = (values.tasks ?? 'number-words,story-sentiment,extract-names').split(',');
const out = values.out ?? join(dir, 'learning.json');

const backend = await setupBackend('wasm');
const model = await loadModel(directorySource(dir), { name: basename(dir) });
const config = defaultTrainConfig(model.info.arch);
const results: LearnResult[] = [];
for (const task of tasks) {
  const r = await learnExample(model, join(ROOT, 'public', 'examples'), task, config);
  console.log(learnLine(r));
  if (r.reason !== 'done') {
    process.stderr.write(`${task}: the run ended with "${r.reason}", not done: nothing written\n`);
    process.exit(1);
  }
  results.push(r);
}
model.dispose();
const settings = `the app's default LoRA: r ${config.lora.r}, lora_alpha ${config.lora.lora_alpha}, dropout ${config.lora.lora_dropout}, ${config.lora.target_modules.join(', ')}; lr ${config.lr} (${config.schedule}), batch ${config.batchSize}, ${config.epochs} epochs, seed ${config.seed}`;
writeFileSync(out, JSON.stringify({ measured: new Date().toISOString().slice(0, 10), backend: `TF.js ${backend.name} in Node, ${backend.threads ?? 1} thread${(backend.threads ?? 1) === 1 ? '' : 's'}`, settings, results }, null, 2) + '\n');
console.log(`wrote ${out}`);
