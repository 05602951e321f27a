// `npm run model:smol-shaped -- [--out DIR] [--seed N]`: writes a random-weight Hugging Face folder with
// SmolLM2-135M's exact config (30 layers, hidden 576, 9 heads / 3 KV heads, vocabulary 49,152) and a generated
// byte-level tokenizer, for measuring memory and speed on a real model's shapes. Nothing is downloaded;
// the same seed writes the same bytes. Default folder: .cache/models/smol-shaped (git-ignored).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { smolShapedFiles, SMOL_135M_CONFIG } from '../src/io/smol-shaped';
import { writeFolder } from '../src/node/hf-write';

const USAGE = 'usage: npm run model:smol-shaped -- [--out .cache/models/smol-shaped] [--seed 135]';

function options(): { out: string; seed: number } {
  let v: { out?: string; seed?: string };
  try {
    v = parseArgs({ options: { out: { type: 'string', default: '.cache/models/smol-shaped' }, seed: { type: 'string', default: '135' } }, strict: true }).values;
  } catch (e) {
    process.stderr.write(`model:smol-shaped: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  const seed = Number(v.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    process.stderr.write(`model:smol-shaped: --seed must be a whole number of 0 or more, got "${v.seed}"\n${USAGE}\n`);
    process.exit(2);
  }
  return { out: resolve(v.out!), seed };
}

const { out, seed } = options();
const t0 = performance.now();
const files = smolShapedFiles({ seed });
await writeFolder(out, files);
const bytes = [...files.values()].reduce((a, b) => a + b.byteLength, 0);
const c = SMOL_135M_CONFIG;
process.stdout.write(
  `wrote ${out}: SmolLM2-135M-shaped (${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads}/${c.num_key_value_heads} heads, vocabulary ${c.vocab_size}), random weights (seed ${seed}), ${(bytes / 1e6).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
);
