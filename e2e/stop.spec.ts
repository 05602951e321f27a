// Knowing when to stop, through the UI, on the bundled tiny model: a short run with the forgetting probe
// and generated held-out answers on (When to stop) shows the General skill and Task charts under the loss
// and the latest evaluation's detail while it trains; at its end the notice says how it ended and what it
// recommends; the Trade-off chart places its checkpoints by task and forgetting; "Rewind to recommended"
// selects that checkpoint, and Compare and Export name it. On WASM the path is then explored (progress,
// path points on the chart) and a path point is applied: Compare names the branch run that holds it.
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { CheckpointsPanel } from './pages/CheckpointsPanel';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import { RunsPanel } from './pages/RunsPanel';
import { TradeoffPanel } from './pages/TradeoffPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

/** "step 20 · …" but not "step 200" nor "step 20 (newest)": the checkpoint named explicitly. */
const named = (step: number) => new RegExp(`: step ${step}(?!\\d)(?! \\(newest\\))`);

test('know when to stop: live measurements, the trade-off chart, rewind to the recommended checkpoint', async ({ tabtune, page, backend }, testInfo) => {
  const gpu = backend === 'webgpu';
  test.setTimeout(gpu ? 1_800_000 : 900_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 900 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const tradeoff = new TradeoffPanel(page);
  const checkpoints = new CheckpointsPanel(page);
  const compare = new ComparePanel(page);
  const exporter = new ExportPanel(page);
  const runs = new RunsPanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await expect(tradeoff.empty).toContainText('Train a run or open one under Runs');

  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const steps = gpu ? 6 : 30;
  const every = gpu ? 2 : 10;
  await train.preset('Quick');
  await train.advanced({ Steps: steps, 'Batch size': 4, 'Validate every': every, 'Checkpoint every': every, 'Warmup steps': 2 });
  // Small measurements so the tiny model's evaluations stay quick; early stopping stays on (Quick: 2).
  await train.whenToStop({ 'Held-out answers generated': 4, 'Forgetting probe size': 8, 'Probe text length': 16, 'Forgetting budget (%)': 5 }, 'Validation loss (lower)');
  await expect(train.region.getByLabel('Early-stopping patience', { exact: true })).toHaveValue('2');
  await train.start.click();

  // Live, at the first evaluation: general skill and the generated answers, on the loss chart's step axis.
  await expect(train.skillChart).toBeVisible({ timeout: gpu ? 1_200_000 : 300_000 });
  await expect(train.taskChart).toBeVisible();
  await expect(train.evalDetails).toContainText(/Latest evaluation \(step \d+\)/);
  await expect(train.evalDetails).toContainText('general skill');
  await expect(train.outcome).toBeVisible({ timeout: gpu ? 1_200_000 : 400_000 });
  const outcome = (await train.outcome.textContent()) ?? '';
  console.log(`${tag} outcome: ${outcome}`);
  expect(outcome).toMatch(new RegExp(`Finished at step ${steps} of ${steps}|Stopped early: .*Ended at step \\d+ of ${steps}`));
  await expect(train.recommendation).toContainText(/^Recommended: step \d+( \(the final step\))?: validation loss \d/);

  const live = await page.evaluate(() => {
    const s = window.__tabtune!.state().live.series;
    return { steps: [...s.step], probe: [...s.probe], exact: [...s.exact], f1: [...s.f1] };
  });
  const evals = live.steps.filter((_, i) => live.probe[i] !== null);
  console.log(`${tag} probe rise % at steps ${evals.join(', ')}: ${live.probe.filter((v) => v !== null).map((v) => v!.toFixed(3)).join(', ')}`);
  expect(evals.length).toBeGreaterThanOrEqual(1);
  expect(evals.every((s) => s % every === 0)).toBe(true);
  expect(live.exact.filter((v) => v !== null).every((v) => v! >= 0 && v! <= 1)).toBe(true);
  expect(live.f1.some((v) => v !== null)).toBe(true);
  await train.skillChart.scrollIntoViewIfNeeded();
  await tabtune.shot('stop-live-charts');
  await train.region.screenshot({ path: testInfo.outputPath('train.png') });

  // The trade-off chart: every checkpoint saved at an evaluation, placed by val loss and forgetting.
  const run = await page.evaluate(() => {
    const s = window.__tabtune!.state();
    const r = s.runs.list.find((x) => x.id === s.selection.runId)!;
    return { id: r.id, name: r.name, quality: r.quality ?? null };
  });
  console.log(`${tag} decision: ${JSON.stringify(run.quality)}`);
  expect(run.quality).toMatchObject({ criterion: 'val_loss', budgetPct: 5 });
  const rec = run.quality!.recommendedStep!;
  expect(rec % every).toBe(0);
  await expect(tradeoff.chart).toBeVisible();
  await expect.poll(() => tradeoff.pointsOf('checkpoint').count()).toBeGreaterThanOrEqual(Math.min(2, run.quality!.finalStep / every));
  await expect(tradeoff.point(`step-${rec}`)).toHaveAttribute('aria-label', /recommended/);
  await expect(tradeoff.recommendation).toContainText(new RegExp(`: step ${rec}[ :]`));
  await expect(runs.region.getByTestId('run-decision').first()).toContainText(`step ${rec} (val loss`);

  // Rewind to recommended: that checkpoint, selected for Compare and Export.
  await tradeoff.rewind.click();
  await expect(compare.target).toContainText(named(rec));
  await expect(compare.target).toContainText(run.name);
  await expect(exporter.target).toContainText(named(rec));
  await expect(checkpoints.item(rec).getByRole('button', { name: new RegExp(`^Checkpoint at step ${rec}\\b.*selected`) })).toHaveAttribute('aria-pressed', 'true');
  await expect(tradeoff.point(`step-${rec}`)).toHaveAttribute('aria-label', /selected for Compare and Export/);
  await tradeoff.region.scrollIntoViewIfNeeded();
  await tabtune.shot('stop-tradeoff');
  await tradeoff.region.screenshot({ path: testInfo.outputPath('tradeoff.png') });

  if (gpu) return;
  // Explore the path from the base model (WASM only: on SwiftShader each point takes minutes).
  // Every text the progress line shows is recorded as the page renders it: on a fast machine the whole path is
  // measured in a second or two, quicker than a test polls.
  await page.evaluate(() => {
    const w = window as unknown as { __exploreTexts: string[] };
    w.__exploreTexts = [];
    new MutationObserver(() => {
      const t = document.querySelector('[data-testid="explore-progress"]')?.textContent;
      if (t && w.__exploreTexts.at(-1) !== t) w.__exploreTexts.push(t);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await tradeoff.explore.click();
  await expect(tradeoff.recommendation).toContainText('over the checkpoints and the explored path', { timeout: 400_000 });
  await expect(tradeoff.progress).toBeHidden();
  const shown = await page.evaluate(() => (window as unknown as { __exploreTexts: string[] }).__exploreTexts);
  console.log(`${tag} explore progress: ${shown.length} texts, last ${JSON.stringify(shown.at(-1))}`);
  expect(shown.some((t) => /^Preparing /.test(t))).toBe(true);
  expect(shown.some((t) => /Measured .* of \d+ points · \d+% · /.test(t))).toBe(true);
  await expect(tradeoff.errors).toHaveCount(0);
  const pathPoints = await tradeoff.pointsOf('path').count();
  console.log(`${tag} path points: ${pathPoints}; ${await tradeoff.recommendation.textContent()}`);
  expect(pathPoints).toBeGreaterThan(0);
  await expect(tradeoff.recommendation).toContainText('over the checkpoints and the explored path');
  await tabtune.shot('stop-explored');

  // A path point from the keyboard: focus it, Enter shows its card, Apply stores it as a branch and selects it.
  // Half of the update (not the base model itself).
  const first = tradeoff.point(`step-${run.quality!.finalStep}-x0.5`);
  await first.focus();
  await page.keyboard.press('Enter');
  await expect(tradeoff.card).toContainText('path point, not stored yet');
  await tradeoff.card.getByRole('button', { name: 'Apply' }).click();
  await expect(tradeoff.applied).toBeVisible({ timeout: 120_000 });
  const branch = await page.evaluate(() => {
    const s = window.__tabtune!.state();
    const r = s.runs.list.find((x) => x.id === s.selection.runId)!;
    return { name: r.name, parent: r.parentRunId, step: s.selection.step };
  });
  expect(branch.parent).toBe(run.id);
  await expect(compare.target).toContainText(`Base model vs ${branch.name}: step ${branch.step}`);
  await expect(exporter.target).toContainText(branch.name);
  await expect(tradeoff.card).toContainText(`stored as run “${branch.name}”`);
  await expect(runs.region.locator(`[data-testid="run"]`, { hasText: branch.name }).getByTestId('run-decision')).toContainText(/trade-off point at step \d+: val loss \d/);
  // The chart stays the parent's, the applied point now the selected one.
  await expect(tradeoff.region.locator('[data-testid="tradeoff-point"].selected')).toHaveCount(1);
  await expect(tradeoff.region.locator('[data-testid="tradeoff-point"].selected')).toHaveClass(/path/);
  await tradeoff.region.scrollIntoViewIfNeeded();
  await tabtune.shot('stop-applied');
  await tradeoff.region.screenshot({ path: testInfo.outputPath('tradeoff-applied.png') });
  await runs.region.screenshot({ path: testInfo.outputPath('runs.png') });
});
