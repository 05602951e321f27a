// The memory plan in the page (issue 14): the Train panel says how much memory a run needs of what the
// backend can use; a batch that will not fit trains in micro-batches with the same effective batch (said
// before the run, and in the run's warnings); a run that cannot fit at all keeps Start off with the numbers;
// Recompute activations (gradient checkpointing per layer) lowers the estimate, and is offered when only it fits.
// The second test loads the SmolLM2-135M-shaped folder (`npm run model:smol-shaped`; skipped without it).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { shipsLog } from '../src/testing/ships-log';
import { DataPanel } from './pages/DataPanel';
import { TrainPanel } from './pages/TrainPanel';

test('a batch that will not fit trains in micro-batches with the same effective batch, and the page says so', async ({ tabtune, page, backend }) => {
  test.skip(backend !== 'wasm', "the plan's numbers here are WASM's (its 4 GB heap)");
  test.setTimeout(600_000);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await data.drop({ name: 'ships-log.txt', bytes: shipsLog({ voyages: 10, entries: 4 }), type: 'text/plain' });
  await expect(data.text).toContainText('training windows of 256 tokens');
  await expect(train.plan).toContainText(/Memory: ~[\d,]+ MB of 3,072 MB available \(weights \d+ MB, activations [\d,]+ MB, adapter\+optimizer \d+ MB\)/);
  await expect(train.memoryPlan).toHaveCount(0);

  // 128 windows of 256 tokens: the logits alone would be 128 x 256 x 4096 floats (537 MB), the step ~13 GB.
  await train.whenToStop({ 'Held-out answers generated': 0, 'Forgetting probe size': 0 });
  await train.advanced({ Steps: 1, 'Batch size': 128, 'Validate every': 1, 'Checkpoint every': 1, 'Warmup steps': 0 });
  await expect(train.memoryPlan).toContainText('Batch 128 of 256-token sequences will not fit');
  await expect(train.memoryPlan).toContainText('the same effective batch of 128');
  const [, micro, accum] = /Training with micro-batches of (\d+) x (\d+) accumulation steps/.exec((await train.memoryPlan.textContent()) ?? '') ?? [];
  expect(Number(micro) * Number(accum)).toBe(128);
  expect(Number(micro)).toBeLessThan(128);
  const split = `micro-batches of ${micro} x ${accum}`;
  await expect(train.plan).toContainText(split);
  await tabtune.shot('micro-batches');
  await expect(train.start).toBeEnabled();
  await train.start.click();
  // The worker applies the same plan before the first step, and the run's warnings say so.
  await expect(train.runWarnings.filter({ hasText: split })).toBeVisible({ timeout: 240_000 });
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });
});

test('Recompute activations: the memory line follows the switch; a batch that needed micro-batches fits whole with it, and trains', async ({ tabtune, page, backend }) => {
  test.skip(backend !== 'wasm', "the plan's numbers here are WASM's (its 4 GB heap)");
  test.setTimeout(600_000);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await data.drop({ name: 'ships-log.txt', bytes: shipsLog({ voyages: 10, entries: 4 }), type: 'text/plain' });
  await expect(data.text).toContainText('training windows of 256 tokens');
  await train.whenToStop({ 'Held-out answers generated': 0, 'Forgetting probe size': 0 });
  await train.advanced({ Steps: 1, 'Batch size': 64, 'Validate every': 1, 'Checkpoint every': 1, 'Warmup steps': 0 });
  await expect(train.recompute).not.toBeChecked();
  // 64 windows of 256 tokens keep every layer's activations: more than WASM can use, so micro-batches.
  await expect(train.memoryPlan).toContainText('Batch 64 of 256-token sequences will not fit');
  const plain = await train.activationsMB(); // per micro-batch
  const [, micro] = /micro-batches of (\d+) x/.exec((await train.memoryPlan.textContent()) ?? '') ?? [];
  expect(Number(micro)).toBeLessThan(64);

  await train.recompute.check();
  // One layer's activations and every layer's input: the whole batch fits, no micro-batches.
  await expect(train.plan).toContainText(/activations [\d,]+ MB recomputed per layer/);
  await expect(train.memoryPlan).toHaveCount(0);
  await expect(train.plan).not.toContainText('micro-batches');
  // The whole batch of 64 recomputed holds less than it would keeping every layer's activations.
  expect(await train.activationsMB()).toBeLessThan((plain * 64) / Number(micro));
  expect(await page.evaluate(() => window.__tabtune!.state().train.config.recompute)).toBe(true);

  // Off again: the plan is back where it was.
  await train.recompute.uncheck();
  await expect(train.memoryPlan).toContainText('Batch 64 of 256-token sequences will not fit');
  expect(await train.activationsMB()).toBe(plain);

  await train.recompute.check();
  await tabtune.shot('recompute-on');
  await expect(train.start).toBeEnabled();
  await train.start.click();
  // The worker trains the batch whole, recomputing: no micro-batch warning, and the run ends.
  await expect(train.outcome).toBeVisible({ timeout: 300_000 });
  await expect(train.runWarnings.filter({ hasText: 'micro-batches' })).toHaveCount(0);
});

const SMOL = join(import.meta.dirname, '..', '.cache', 'models', 'smol-shaped');

test('the SmolLM2-135M-shaped model loads; a run that cannot fit keeps Start off and says why', async ({ tabtune, page, backend, fixtureOrigin }) => {
  test.skip(backend !== 'wasm', "the plan's numbers here are WASM's (its 4 GB heap)");
  test.skip(!existsSync(join(SMOL, 'model.safetensors')), 'no .cache/models/smol-shaped: run `npm run model:smol-shaped` first');
  test.setTimeout(600_000);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await tabtune.model.loadFromUrl(`${fixtureOrigin}/models/smol-shaped/`);
  await expect(tabtune.model.summary).toContainText('smol-shaped', { timeout: 300_000 });
  const summary = await page.evaluate(() => window.__tabtune!.state().model.summary);
  expect(summary).toMatchObject({ layers: 30, hiddenSize: 576, vocabSize: 49_152, heads: 9, kvHeads: 3 });

  // Short pairs: the default batch of 8 needs micro-batches.
  await data.useExample('Number words to digits');
  await expect(train.memoryPlan).toContainText('will not fit');
  await expect(train.memoryPlan).toContainText(/Training with micro-batches of \d x \d+ accumulation steps .* the same effective batch of 8/);
  await tabtune.shot('smol-micro-batches');

  // Plain text in windows of up to the model's whole context (8,192 tokens): not even one fits.
  await data.drop({ name: 'ships-log.txt', bytes: shipsLog({ voyages: 10, entries: 4 }), type: 'text/plain' });
  await expect(data.format).toHaveText('Plain text', { timeout: 300_000 });
  await expect(train.phase).toContainText(/This run will not fit in memory: even one [\d,]+-token sequence per micro-batch needs about [\d,]+ MB of the 3,072 MB WASM can use/);
  await expect(train.phase).toContainText('a shorter max sequence length');
  await expect(train.start).toBeDisabled();
  await tabtune.shot('smol-will-not-fit');

  // Windows of 256 tokens: one still does not fit with every layer's activations kept, but does with
  // recomputation; the message offers it, and turning it on lets the run start.
  await data.maxLength.selectOption({ label: '256 tokens' });
  await expect(train.phase).toContainText('even one 256-token sequence per micro-batch needs about', { timeout: 300_000 });
  await expect(train.phase).toContainText(/Turn on Recompute activations \(each layer's activations recomputed in the backward pass, about a quarter more time per step\): then .* fit \(about [\d,]+ MB\)/);
  await expect(train.recomputeHelp).toContainText('This run fits in memory only with it.');
  await expect(train.start).toBeDisabled();
  await train.recompute.check();
  await expect(train.plan).toContainText(/activations [\d,]+ MB recomputed per layer/);
  await expect(train.phase).not.toContainText('will not fit in memory');
  await expect(train.start).toBeEnabled();
  await tabtune.shot('smol-fits-with-recompute');
});
