// Does prompt tuning learn the example tasks, and with which learning rate? Held-out exact match of the
// base model, of prompt tuning at each given learning rate and of LoRA with the defaults, on the bundled
// tabtune-base (the app's default model), greedy, every held-out example of the task.
//
//   npx tsx scripts/prompt-tuning-learning.ts [--task story-sentiment|number-words] [--lr 0.03,0.1,0.3]
//       [--tokens 16] [--init SAMPLE_VOCAB|TEXT|RANDOM] [--text "..."] [--epochs 3] [--no-lora] [--backend wasm|cpu]
//
// Measured 2026-12-03 (wasm, 2 shared cores), story-sentiment, 100 held-out examples (50 happy, 50 sad),
// base model 0% exact match (it continues the story):
//   LoRA defaults (lr 5e-3, 3 epochs = 150 steps)                       100%
//   prompt 16 tokens SAMPLE_VOCAB, 3 epochs: lr 0.01 0%, 0.03 12%, 0.1 46%, 0.3 0%, 1.0 50%
//   prompt 16 tokens TEXT "Is this story happy or sad? Answer happy or sad.", 3 epochs, lr 0.03: 39%
//   prompt 16 tokens TEXT (same text), 10 epochs = 500 steps: lr 0.01 53%, lr 0.03 62% (43/50 happy, 19/50
//   sad), lr 0.1 50% (87 of 100 answers "happy")
//   prompt 32 tokens TEXT (same text), 10 epochs, lr 0.03: 83% (47/50 happy, 36/50 sad; 6144 parameters)
// A learned prompt picks up the answer format quickly (happy/sad and the stop token) but on this 3M-parameter
// model tells the labels apart only with more virtual tokens and steps: exact match near 50% can be one label answered throughout, which
// the printed answer counts show.
//
// Prints one line per run and a JSON summary at the end. Everything else is the engine's defaults
// (defaultTrainConfig: batch 8, cosine schedule, 10 warmup steps, 3 epochs, seed 42).
import { join } from 'node:path';
import { inspectDataset } from '../src/data/index';
import { fileSource } from '../src/node/data-file';
import { directorySource } from '../src/node/fs-source';
import { setupBackend, type BackendName } from '../src/model/backend';
import { loadModel } from '../src/io/load-model';
import { BASE_DIR, REPO_ROOT } from '../src/testing/models';
import { runTraining } from '../src/train/run-loop';
import { compareBaseTuned, createTrainer, disposeTrainer, toExamples } from '../src/train/job';
import { defaultTrainConfig, type PromptTuningInit, type TrainConfig } from '../src/train/config';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const task = arg('task') ?? 'story-sentiment';
const lrs = (arg('lr') ?? '0.03,0.1,0.3').split(',').map(Number);
const tokens = Number(arg('tokens') ?? 16);
const init = (arg('init') ?? 'SAMPLE_VOCAB') as PromptTuningInit;
const text = arg('text') ?? '';
const epochs = Number(arg('epochs') ?? 3);
const backend = (arg('backend') ?? 'wasm') as BackendName;
const EXAMPLES = join(REPO_ROOT, 'public', 'examples');

async function main(): Promise<void> {
  await setupBackend(backend);
  const model = await loadModel(directorySource(BASE_DIR));
  const ins = await inspectDataset(await fileSource(join(EXAMPLES, `${task}.train.jsonl`)), { model, validation: await fileSource(join(EXAMPLES, `${task}.val.jsonl`)) });
  const enc = ins.encoder!;
  const train = toExamples(enc, ins.train);
  const val = toExamples(enc, ins.val);
  const results: Record<string, unknown>[] = [];
  let baseExact: number | null = null;

  const run = async (label: string, config: TrainConfig) => {
    const trainer = createTrainer(model, train, val, config);
    const t0 = performance.now();
    const evals: number[] = [];
    const out = await runTraining(trainer, {}, (e) => {
      if (e.type === 'eval') evals.push(e.metrics.valLoss);
    });
    const secs = (performance.now() - t0) / 1000;
    const { base, tuned } = await compareBaseTuned(model, trainer.adapter!, enc, ins.val);
    baseExact = base.exact;
    // What it answers (a constant answer scores the majority label's share on a label task)
    const counts = new Map<string, number>();
    for (const row of tuned.rows) counts.set(row.output.trim(), (counts.get(row.output.trim()) ?? 0) + 1);
    const outputs = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 4);
    const correctByLabel = new Map<string, number>();
    for (const row of tuned.rows) if (row.exact) correctByLabel.set(row.expected, (correctByLabel.get(row.expected) ?? 0) + 1);
    const r = { outputs, correctByLabel: Object.fromEntries(correctByLabel), label, lr: config.lr, steps: trainer.totalSteps, reason: out.reason, secs: Math.round(secs), valLoss: [evals[0], evals[evals.length - 1]], baseExact: base.exact, tunedExact: tuned.exact, tunedOverlap: tuned.overlap, n: tuned.rows.length, params: trainer.adapter!.numParams() };
    console.log(`[${task}] ${label} lr ${config.lr}: ${trainer.totalSteps} steps in ${secs.toFixed(0)} s; val loss ${evals[0]?.toFixed(3)} -> ${evals[evals.length - 1]?.toFixed(3)}; exact match base ${(base.exact * 100).toFixed(0)}% -> tuned ${(tuned.exact * 100).toFixed(0)}% (overlap ${(tuned.overlap * 100).toFixed(0)}%, n=${tuned.rows.length}, ${trainer.adapter!.numParams()} trained parameters); top answers ${JSON.stringify(outputs)}; correct by label ${JSON.stringify(Object.fromEntries(correctByLabel))}`);
    results.push(r);
    disposeTrainer(trainer);
  };

  for (const lr of lrs) {
    await run(`prompt ${tokens} tokens (${init})`, defaultTrainConfig('llama', { mode: 'prompt', lr, epochs, genEvalExamples: 0, probeSamples: 0, prompt: { num_virtual_tokens: tokens, prompt_tuning_init: init, prompt_tuning_init_text: text } }));
  }
  if (!process.argv.includes('--no-lora')) await run('LoRA defaults', defaultTrainConfig('llama', { epochs, genEvalExamples: 0, probeSamples: 0 }));
  console.log(JSON.stringify({ task, model: 'tabtune-base', backend, baseExact, results }));
  model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
