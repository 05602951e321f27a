// Benchmark: LoRA training steps and generation on the reference model (stories260K, converted from
// ../shared) with the current backend in Node. Prints ratios against a reference run in the same
// process: TF.js autograd's own matMul gradients (transpose flags) vs tabtune's explicit transposes,
// and (full-parameter pretraining of the bundled tabtune-tiny, context 256) attention as batched matMuls
// vs one (sequence, key/value head) at a time with plain 2-D matMuls.
import * as tf from '@tensorflow/tfjs-core';
import { directorySource } from '../src/node/fs-source';
import { LoraAdapter } from '../src/lora/adapter';
import { setupBackend, type BackendName } from '../src/model/backend';
import { generate } from '../src/model/generate';
import { loadModel } from '../src/io/load-model';
import { setFastGradients, setPerEntryAttention } from '../src/model/ops';
import { ensureReferenceHF } from '../src/testing/reference';
import { Trainer, type Example } from '../src/train/loop';
import { DEFAULT_TRAIN } from '../src/train/config';

const backend = (process.argv[2] ?? 'wasm') as BackendName;
const B = 8;
const T = 64;
const STEPS = 6;

function batchData(vocab: number): Example[] {
  const out: Example[] = [];
  for (let b = 0; b < B * 2; b++) {
    const ids = Array.from({ length: T + 1 }, (_, t) => 3 + ((b * 31 + t * 7) % (vocab - 3)));
    out.push({ input: ids.slice(0, T), target: ids.slice(1), weight: ids.slice(1).map(() => 1) });
  }
  return out;
}

async function timeSteps(fast: boolean, targets: string[]): Promise<{ ms: number; tokPerSec: number }> {
  setFastGradients(fast);
  const m = await loadModel(directorySource(await ensureReferenceHF()));
  const cfg = { ...DEFAULT_TRAIN, lora: { r: 8, lora_alpha: 16, lora_dropout: 0, target_modules: targets }, batchSize: B, steps: STEPS + 1 };
  const ad = new LoraAdapter(m.lm, cfg.lora, { seed: 1 });
  const tr = new Trainer(m.lm, batchData(m.info.vocabSize), [], cfg, ad);
  tr.trainStep(); // warm-up (kernel compilation, allocations)
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) tr.trainStep();
  const ms = (performance.now() - t0) / STEPS;
  tr.dispose();
  ad.dispose();
  m.dispose();
  setFastGradients(true);
  return { ms, tokPerSec: (B * T) / (ms / 1000) };
}

/** Full-parameter steps on the bundled tabtune-tiny, 4 windows of 256 tokens (its pretraining batch). */
async function timeFullSteps(loop: boolean): Promise<{ ms: number; tokPerSec: number }> {
  setPerEntryAttention(loop);
  const m = await loadModel(directorySource('models/tabtune-tiny'), { trainable: true });
  const W = 256;
  const data: Example[] = [];
  for (let b = 0; b < 8; b++) {
    const ids = Array.from({ length: W + 1 }, (_, t) => 4 + ((b * 131 + t * 17) % (m.info.vocabSize - 4)));
    data.push({ input: ids.slice(0, W), target: ids.slice(1), weight: ids.slice(1).map(() => 1) });
  }
  const tr = new Trainer(m.lm, data, [], { ...DEFAULT_TRAIN, mode: 'full', batchSize: 4, steps: 5 }, null);
  tr.trainStep();
  const n = 3;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) tr.trainStep();
  const ms = (performance.now() - t0) / n;
  tr.dispose();
  m.dispose();
  setPerEntryAttention(true);
  return { ms, tokPerSec: (4 * W) / (ms / 1000) };
}

async function main(): Promise<void> {
  const rep = await setupBackend(backend);
  console.log(`backend ${rep.name}${rep.threads ? ` (${rep.threads} thread${rep.threads > 1 ? 's' : ''})` : ''}; batch ${B} x ${T} tokens; stories260K`);
  for (const targets of [['q_proj', 'v_proj'], ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']]) {
    const ref = await timeSteps(false, targets);
    const fast = await timeSteps(true, targets);
    console.log(`LoRA on ${targets.join(',')}: autograd ${ref.ms.toFixed(1)} ms/step (${ref.tokPerSec.toFixed(0)} tok/s) | tabtune ${fast.ms.toFixed(1)} ms/step (${fast.tokPerSec.toFixed(0)} tok/s) | speed-up x${(ref.ms / fast.ms).toFixed(2)}`);
  }
  const kernel = await timeFullSteps(false);
  const loop = await timeFullSteps(true);
  console.log(`full-parameter tabtune-tiny, 4 x 256 tokens: batched attention ${kernel.ms.toFixed(0)} ms/step (${kernel.tokPerSec.toFixed(0)} tok/s) | per-entry attention ${loop.ms.toFixed(0)} ms/step (${loop.tokPerSec.toFixed(0)} tok/s) | speed-up x${(kernel.ms / loop.ms).toFixed(2)}`);
  const m = await loadModel(directorySource(await ensureReferenceHF()));
  const t0 = performance.now();
  const [one] = await generate(m, ['Once upon a time'], { maxNewTokens: 128, temperature: 0 });
  const single = one!.tokens.length / ((performance.now() - t0) / 1000);
  const t1 = performance.now();
  const four = await generate(m, ['Once upon a time', 'Tom', 'The sun', 'Lily had'], { maxNewTokens: 128, temperature: 0 });
  const batched = four.reduce((a, r) => a + r.tokens.length, 0) / ((performance.now() - t1) / 1000);
  console.log(`generation (KV cache): 1 prompt ${single.toFixed(0)} tok/s | batch of 4 ${batched.toFixed(0)} tok/s | batching x${(batched / single).toFixed(2)}`);
  m.dispose();
  console.log(`tensors alive after disposing everything: ${tf.memory().numTensors}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
