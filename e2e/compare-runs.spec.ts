// LoRA against OFT on one trade-off chart, through the UI on the bundled tiny model: a short LoRA run and a
// short OFT run (picked under Advanced: OFT's block size and targets replace LoRA's rank and targets) on the
// same data with the forgetting probe; the OFT run's chart offers the LoRA run as a checkbox; ticking it
// from the keyboard places its checkpoints as a series of their own, the front over both runs and the
// sentence about it; a LoRA point's card opens that run.
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { DataPanel } from './pages/DataPanel';
import { RunsPanel } from './pages/RunsPanel';
import { TradeoffPanel } from './pages/TradeoffPanel';
import { TrainPanel } from './pages/TrainPanel';

const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

test('LoRA and OFT runs on the same trade-off chart', async ({ tabtune, page, backend }, testInfo) => {
  test.skip(backend === 'webgpu', 'two runs with the probe take too long on SwiftShader');
  test.setTimeout(600_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 900 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const tradeoff = new TradeoffPanel(page);
  const runs = new RunsPanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const settings = { Steps: 10, 'Batch size': 4, 'Validate every': 5, 'Checkpoint every': 5, 'Warmup steps': 2 };
  const stop = { 'Held-out answers generated': 0, 'Forgetting probe size': 8, 'Probe text length': 16 };

  // Run 1: LoRA (Quick: rank 4).
  await train.preset('Quick');
  await train.advanced(settings);
  await train.whenToStop(stop, 'Validation loss (lower)');
  await expect(train.plan).toContainText('trainable parameters (LoRA r4)');
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 300_000 });
  await expect(tradeoff.compareEmpty).toContainText('No other run was trained on');
  const lora = await page.evaluate(() => window.__tabtune!.state().selection.runId!);

  // Run 2: OFT, the same data and settings.
  await train.advanced({});
  await train.region.getByLabel('What to train').selectOption('oft');
  await expect(train.region.getByLabel('OFT block size', { exact: true })).toHaveValue('32');
  await expect(train.region.getByLabel('LoRA rank', { exact: true })).toHaveCount(0);
  await expect(train.region.getByRole('group', { name: 'OFT targets' }).getByRole('checkbox', { name: 'down_proj' })).toBeChecked();
  await train.advanced(settings);
  await train.whenToStop(stop);
  await expect(train.plan).toContainText('trainable parameters (OFT b32)');
  await train.region.locator('details.advanced').screenshot({ path: testInfo.outputPath('advanced-oft.png') });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 300_000 });
  const oft = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  expect(oft).not.toBe(lora);
  await expect(runs.region.locator(`[data-testid="run"][data-run-id="${oft}"]`)).toContainText('OFT b32, lr');
  await expect(runs.region.locator(`[data-testid="run"][data-run-id="${lora}"]`)).toContainText('LoRA r4, lr');

  // The OFT run's chart offers the LoRA run; ticked from the keyboard, its checkpoints join the chart.
  await expect(tradeoff.chart).toBeVisible();
  // Both runs are named after the dataset: told apart by their order.
  await expect(tradeoff.compare).toContainText('#2 · OFT b32 (the run shown)');
  await expect(tradeoff.compare).toContainText('#1 · LoRA r4');
  const box = tradeoff.compare.getByRole('checkbox', { name: /LoRA r4/ });
  await box.focus();
  await page.keyboard.press('Space');
  await expect(box).toBeChecked();
  await expect(tradeoff.otherPoints.first()).toBeVisible();
  const placed = await tradeoff.otherPoints.count();
  expect(placed).toBeGreaterThanOrEqual(1);
  await expect(tradeoff.otherPoints.first()).toHaveAttribute('aria-label', /LoRA r4, step \d+: val loss \d/);
  await expect(tradeoff.compareSummary).toContainText(/^Pareto front of the 2 runs: .*OFT b32.*LoRA r4|^Pareto front of the 2 runs: .*LoRA r4.*OFT b32/);
  console.log(`${tag} ${placed} LoRA points; ${await tradeoff.compareSummary.textContent()}`);
  await tradeoff.region.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-runs');
  await tradeoff.region.screenshot({ path: testInfo.outputPath('tradeoff-compare.png') });

  // A LoRA point from the keyboard: its card opens that run, whose chart then offers the OFT run.
  await tradeoff.otherPoints.first().focus();
  await page.keyboard.press('Enter');
  await expect(tradeoff.card).toContainText('LoRA r4, step');
  await tradeoff.card.getByRole('button', { name: /^Open run / }).click();
  await expect.poll(() => page.evaluate(() => window.__tabtune!.state().selection.runId)).toBe(lora);
  await expect(tradeoff.compare.getByRole('checkbox', { name: /OFT b32/ })).toBeVisible();
});
