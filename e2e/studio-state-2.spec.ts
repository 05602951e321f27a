// Issue 18 (#3 #5 #6), through the UI on the bundled tiny model: Compare never shows outputs of another run
// or step than it says (results of another run or checkpoint are cleared, a result of the training run's
// newest says the step it was made at, Ctrl+Enter while the run is read is queued, the held-out count is
// the rows shown); a cancelled run is listed as cancelled without Resume, and the Train panel's lines name
// the run each describes; checkpoint cards name the step their validation loss was measured at, and the
// retention rule and what it removed are shown.
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { TINY } from './engine';
import { REPO_ROOT } from './golden';
import { CheckpointsPanel } from './pages/CheckpointsPanel';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { RunsPanel } from './pages/RunsPanel';
import type { TabtunePage } from './pages/TabtunePage';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');
const PROMPT = 'Write as digits: four hundred';

async function openWithData(tabtune: TabtunePage, page: Page) {
  await page.setViewportSize({ width: 1280, height: 800 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const shotOf = (name: string, region: Locator) => region.screenshot({ path: join(tabtune.options.artifactsDir, `${name}.png`) });
  return { train, checkpoints: new CheckpointsPanel(page), compare: new ComparePanel(page), runs: new RunsPanel(page), shotOf };
}

/** The id and name of the run the page trains or trained last. */
const lastRun = (page: Page) => page.evaluate(() => ({ id: window.__tabtune!.state().train.run!.runId, name: window.__tabtune!.state().train.run!.name }));
const rowOf = (runs: RunsPanel, id: string) => runs.region.locator(`[data-testid="run"][data-run-id="${id}"]`);

/** A 12-step run to its end (checkpoints at 6 and 12, evaluations there too). */
async function trainShort(train: TrainPanel): Promise<void> {
  await train.preset('Quick');
  await train.advanced({ Steps: 12, 'Batch size': 4, 'Validate every': 6, 'Checkpoint every': 6, 'Warmup steps': 2 });
  await train.whenToStop({ 'Held-out answers generated': 0, 'Forgetting probe size': 0 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 400_000 });
}

/** Starts a long run and waits until it has stepped. */
async function startLong(train: TrainPanel, page: Page): Promise<void> {
  await train.advanced({ Steps: 400, 'Validate every': 200, 'Checkpoint every': 5 });
  await train.start.click();
  await expect(train.pause).toBeEnabled({ timeout: 120_000 });
  await expect.poll(() => page.evaluate(() => window.__tabtune!.state().live.last?.step ?? 0), { timeout: 120_000 }).toBeGreaterThan(5);
}

test('Compare never mixes runs: results follow the run and step they were made with', async ({ tabtune, page }) => {
  const { train, checkpoints, compare, runs, shotOf } = await openWithData(tabtune, page);
  await trainShort(train);
  const a = await lastRun(page);
  const source = compare.region.getByTestId('compare-source');
  const tunedTitle = compare.region.getByRole('heading', { name: /^Tuned/ });

  await compare.fill({ prompt: PROMPT, maxNewTokens: 4 });
  await compare.compareButton.click();
  await expect(tunedTitle).toHaveText(`Tuned: ${a.name}, step 12`);
  await compare.startHeldout();
  await expect(compare.totals).toContainText(`${a.name}, step 12`, { timeout: 120_000 });
  await expect(compare.region.getByText(/every validation example of the run \(4\)/)).toBeVisible();
  await expect(compare.rows).toHaveCount(4);

  // Another checkpoint: the outputs made with step 12 go (they do not sit under a "step 6" header).
  await checkpoints.select(6);
  await expect(compare.target).toContainText('step 6');
  await expect(tunedTitle).toHaveText('Tuned');
  await expect(compare.tunedContinuation).toHaveText('');
  await expect(compare.totals).toHaveCount(0);
  // What the tuned side uses, in Generate's words.
  await expect(source).toHaveText(`The tuned side uses ${TINY} + ${a.name}, step 6, adapter on.`);

  // A run being trained (selected, its newest): the result says the step it was made at once the run moves on.
  await startLong(train, page);
  const b = await lastRun(page);
  await expect(source).toContainText(`${TINY} + ${b.name}, step`);
  await expect(compare.target).toContainText(`Base model vs ${b.name}: the adapter being trained`);
  await compare.compareButton.click();
  await expect(tunedTitle).toHaveText(new RegExp(`^Tuned: ${b.name}, step \\d+$`), { timeout: 120_000 });
  const madeAt = Number(/step (\d+)$/.exec((await tunedTitle.textContent()) ?? '')![1]);
  await expect(compare.region.getByTestId('prompt-stale')).toContainText(`The prompt outputs below were made with ${TINY} + ${b.name}, step ${madeAt}`, { timeout: 120_000 });
  await shotOf('compare-stale-while-training', compare.region);
  await train.cancel.click();
  await expect(train.start).toBeEnabled({ timeout: 120_000 });

  // Opening the other run clears B's outputs; Ctrl+Enter pressed at once (while the run is read) is not lost.
  const before = await compare.runs();
  await rowOf(runs, a.id).getByRole('button', { name: `Open ${a.name}` }).click();
  await compare.prompt.focus();
  await page.keyboard.press('Control+Enter');
  await expect.poll(() => compare.runs(), { timeout: 60_000 }).toBe(before + 1);
  await expect(tunedTitle).toHaveText(`Tuned: ${a.name}, step 12`, { timeout: 120_000 });
  await expect(compare.target).toContainText(`Base model vs ${a.name}: step 12`);
  await shotOf('compare-after-switch', compare.region);
});

test('status lines agree: a cancelled run is not "paused", and each line names its run', async ({ tabtune, page }) => {
  const { train, runs, shotOf } = await openWithData(tabtune, page);
  await trainShort(train);
  const a = await lastRun(page);
  await startLong(train, page);
  const b = await lastRun(page);
  await train.cancel.click();
  await expect(train.outcome).toContainText(/Cancelled at step \d+ of 400/, { timeout: 120_000 });

  const rowB = rowOf(runs, b.id);
  await expect(rowB.locator('.badge.status-cancelled')).toHaveText('cancelled');
  await expect(rowB.getByRole('button', { name: `Resume ${b.name}` })).toHaveCount(0);
  await expect(rowB.getByTestId('run-cancelled')).toContainText(/^Cancelled at step \d+\. Its checkpoints are kept/);
  await expect(rowOf(runs, a.id).locator('.badge')).toHaveText('finished');

  // The charts show A, the end-of-run notice is B's: each says which run it describes.
  await rowOf(runs, a.id).getByRole('button', { name: `Open ${a.name}` }).click();
  await expect(train.stats).toContainText(`Stored run “${a.name}”: 12 steps`);
  await expect(train.outcome).toContainText(
    a.name === b.name ? `of the run trained here, “${b.name}” (the charts show another run of the same name, opened under Runs)` : `of “${b.name}”, the run trained here (the charts show “${a.name}”)`,
  );
  await shotOf('train-status-lines', train.region);
  await shotOf('runs-cancelled', runs.region);

  // After a reload the stored status is still cancelled.
  await page.reload();
  await tabtune.whenModelReady();
  await expect(rowOf(runs, b.id).locator('.badge.status-cancelled')).toHaveText('cancelled');
  await expect(page.getByTestId('resume-banner')).toHaveCount(0);
});

test('checkpoint cards name the step their validation loss was measured at; retention says what it keeps and removed', async ({ tabtune, page }) => {
  const { train, checkpoints, shotOf } = await openWithData(tabtune, page);
  await train.preset('Quick');
  await train.advanced({ Steps: 10, 'Batch size': 4, 'Validate every': 4, 'Checkpoint every': 2, 'Warmup steps': 2 });
  await train.whenToStop({ 'Held-out answers generated': 0, 'Forgetting probe size': 0 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 400_000 });
  // Evaluations at 4, 8 and 10 (the last step); checkpoints every 2 steps, the newest 3 kept plus the best and the recommended.
  // Step 6 was saved between two evaluations: its validation loss is step 4's, and says so.
  await expect(checkpoints.item(6).locator('.ckpt-loss')).toHaveText(/^train \d+\.\d{4} · val \d+\.\d{4} \(step 4\)$/);
  await expect(checkpoints.item(8).locator('.ckpt-loss')).toHaveText(/^train \d+\.\d{4} · val \d+\.\d{4}$/);
  await expect(checkpoints.item(10).locator('.ckpt-loss')).toHaveText(/^train \d+\.\d{4} · val \d+\.\d{4}$/);
  const best = checkpoints.best();
  await expect(best).toHaveCount(1);
  expect([4, 8, 10]).toContain(Number(await best.getAttribute('data-step'))); // never 6: its own weights were not measured
  await expect(best.getByTestId('best-badge')).toHaveText(/^best: val \d+\.\d{4}$/);
  await expect(checkpoints.region.getByTestId('checkpoints-retention')).toContainText('Kept: the best by validation loss, the recommended one');
  await expect(checkpoints.region.getByTestId('checkpoints-retention')).toContainText('the newest 3');
  await expect(checkpoints.region.getByTestId('checkpoints-removed')).toContainText(/^Removed the checkpoints? at steps? 2\b/);
  await expect(checkpoints.item(2)).toHaveCount(0);
  await shotOf('checkpoints-figures-retention', checkpoints.region);
});
