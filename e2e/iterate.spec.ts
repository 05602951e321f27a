// The iterate loop through the UI on the bundled tiny model: train on a file with a mislabeled held-out
// record (line 29: "eight hundred seventeen" -> "871") and a broken line (17); spot the bad record in the
// held-out table and fix it there, remove the broken line from the doctor's problem list, download the
// fixed JSONL, save it as a new version, continue from the first run's checkpoint on it, and compare the
// two runs side by side: the losses overlaid (by step, then by tokens seen), the settings that differ
// (the dataset version, where the run started), and each run's held-out outputs with the fixed answer
// marked. The runs list shows the second run's parent and sorts by best validation loss. A screenshot of
// the comparison goes to e2e-artifacts/run-comparison.png (WASM project; the README's docs/run-comparison.png is copied from it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { DataFixPanel, RunsCompare } from './pages/IteratePanels';
import { RunsPanel } from './pages/RunsPanel';
import { TrainPanel } from './pages/TrainPanel';

const DATASET = join(REPO_ROOT, 'e2e/fixtures/iterate-mislabeled.jsonl');
const BAD_PROMPT = 'Write as digits: eight hundred seventeen';

test('fix a held-out record, continue from the checkpoint on the new version, compare the runs', async ({ tabtune, page, backend }, testInfo) => {
  test.setTimeout(600_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 900 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const compare = new ComparePanel(page);
  const runs = new RunsPanel(page);
  const fix = new DataFixPanel(page);
  const side = new RunsCompare(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');

  // Run 1.
  await train.preset('Quick');
  await train.advanced({ Steps: 10, 'Batch size': 4, 'Validate every': 5, 'Checkpoint every': 5, 'Warmup steps': 2 });
  await train.whenToStop({ 'Held-out answers generated': 4, 'Forgetting probe size': 0, 'Early-stopping patience': 0 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 300_000 });
  const first = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  const firstName = 'iterate-mislabeled.jsonl';

  // The held-out table: line 29 expects "871" for "eight hundred seventeen". Fixed from its row.
  await compare.runHeldout();
  const badRow = compare.rows.filter({ hasText: BAD_PROMPT });
  await expect(badRow).toHaveCount(1);
  await expect(badRow).toContainText('871');
  await badRow.getByRole('button', { name: 'Fix the record on line 29' }).click();
  await expect(fix.record).toBeFocused();
  await expect(fix.record).toHaveValue(/"completion": "871"/);
  // Not JSON: refused with why.
  await fix.record.fill('{"prompt": "x",}');
  await fix.keep.click();
  await expect(fix.problem).toContainText('Not valid JSON');
  await fix.record.fill(JSON.stringify({ prompt: BAD_PROMPT, completion: '817' }, null, 2));
  await fix.keep.click();
  await expect(fix.pending).toContainText('line 29 edited');

  // The doctor's problem (line 17, invalid JSON): removed from the problem list.
  await data.issues.filter({ hasText: 'Line 17' }).getByRole('button', { name: 'Fix line 17' }).click();
  await expect(fix.record).toHaveValue(/"completion": "101",}/);
  await fix.remove.click();
  await expect(fix.pending).toContainText('line 17 removed, line 29 edited');
  await expect(fix.pending).toContainText('iterate-mislabeled.v2.jsonl');
  await fix.region.screenshot({ path: testInfo.outputPath('fix-the-data.png') });

  // Downloaded as JSONL: 40 records, the fix in, the broken line out.
  const [download] = await Promise.all([page.waitForEvent('download'), fix.download.click()]);
  expect(download.suggestedFilename()).toBe('iterate-mislabeled.v2.jsonl');
  const jsonl = readFileSync((await download.path())!, 'utf8');
  const lines = jsonl.trim().split('\n');
  expect(lines).toHaveLength(40);
  for (const l of lines) JSON.parse(l);
  expect(lines).toContain(JSON.stringify({ prompt: BAD_PROMPT, completion: '817' }));

  // Saved as a new version: the Data panel reads it (no problems left); the original is kept.
  await fix.save.click();
  await expect(fix.saved).toContainText('Saved iterate-mislabeled.v2.jsonl (36 training, 4 validation examples)');
  await expect(data.region).toContainText('iterate-mislabeled.v2.jsonl');
  await expect(data.issues).toHaveCount(0);

  // Continue from run 1's checkpoint (the one the held-out table showed, step 10) on v2.
  await expect(fix.continueButton).toHaveText(`Continue from ${firstName} at step 10 with iterate-mislabeled.v2.jsonl`);
  await fix.continueButton.click();
  await expect(train.outcome).toBeVisible({ timeout: 300_000 });
  await expect.poll(() => page.evaluate(() => window.__tabtune!.state().selection.runId)).not.toBe(first);
  const second = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  const job = await page.evaluate((id) => window.__tabtune!.state().runs.list.find((r) => r.id === id)?.job ?? null, second);
  expect(job?.startFrom).toEqual({ runId: first, step: 10 });
  expect(job?.data.name).toBe('iterate-mislabeled.v2.jsonl');
  const row2 = runs.region.locator(`[data-testid="run"][data-run-id="${second}"]`);
  await expect(row2.getByTestId('run-lineage')).toHaveText(` · started from ${firstName} at step 10`);

  // Sorted by best validation loss: the lower one first.
  await runs.region.getByLabel('Order by').selectOption('val-loss');
  const losses = await page.evaluate(() => Object.fromEntries(window.__tabtune!.state().runs.list.map((r) => [r.id, r.bestValLoss ?? Infinity])));
  const order = await runs.items.evaluateAll((els) => els.map((e) => e.getAttribute('data-run-id')!));
  expect(order.map((id) => losses[id]!)).toEqual([...order.map((id) => losses[id]!)].sort((a, b) => a - b));
  console.log(`${tag} best validation loss: run 1 ${losses[first]!.toFixed(4)}, run 2 ${losses[second]!.toFixed(4)}`);

  // Both ticked from the keyboard, then compared.
  const tick1 = runs.region.locator(`[data-testid="run"][data-run-id="${first}"]`).getByRole('checkbox', { name: `Compare ${firstName}` });
  await tick1.focus();
  await page.keyboard.press('Space');
  await row2.getByTestId('run-pick').check();
  await runs.region.screenshot({ path: testInfo.outputPath('runs-list.png') });
  await runs.region.getByRole('button', { name: 'Compare 2 runs' }).click();
  await expect(side.region).toBeVisible();
  await expect(side.busy).toHaveCount(0, { timeout: 300_000 });

  // Curves: 2 runs x (training, validation) over steps; the continued run starts at step 10.
  await expect(side.overlay).toHaveAttribute('data-series', '4');
  await expect(side.overlay.locator('canvas')).toBeVisible();
  const view = await page.evaluate(() => window.__tabtune!.state().runsCompare.view!.runs.map((r) => ({ id: r.runId, steps: r.metrics.points.filter((p) => p.type === 'step').length, step: r.step })));
  expect(view.map((v) => v.id)).toEqual([first, second]);
  expect(view.every((v) => v.steps === 10)).toBe(true);
  await expect(side.overlay.locator('.u-legend')).toContainText(`#2 ${firstName} → iterate-mislabeled.v2.jsonl · validation loss`);

  // Settings that differ: the dataset version (its fingerprint and counts) and where the run started; figures below.
  await expect(side.setting('dataset')).toContainText('iterate-mislabeled.jsonl');
  await expect(side.setting('dataset')).toContainText('iterate-mislabeled.v2.jsonl');
  await expect(side.setting('started from')).toContainText(`continued from ${firstName} at step 10`);
  await expect(side.setting('dataset fingerprint')).toBeVisible();
  await expect(side.setting('lr')).toHaveCount(0);
  await expect(side.settings).toContainText('best validation loss');
  await expect(side.settings).toContainText('held-out exact match');

  // Held-out examples: the 4 prompts, one output column per run, the fixed answer marked.
  await expect(side.exampleRows).toHaveCount(4);
  await expect(side.exampleRows.first().getByTestId('example-output')).toHaveCount(2);
  const fixedRow = side.exampleRows.filter({ hasText: BAD_PROMPT });
  await expect(fixedRow.getByTestId('expected-fixed')).toContainText('“871” → “817”');
  const outputs = await side.exampleRows.evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('[data-testid="example-output"]')].map((c) => c.textContent)));
  console.log(`${tag} held-out outputs per run: ${JSON.stringify(outputs)}`);

  await side.region.scrollIntoViewIfNeeded();
  await tabtune.shot('runs-compared');
  // The README's screenshot (docs/run-comparison.png) is copied from here by hand: tests never write tracked files.
  if (backend === 'wasm') await side.region.screenshot({ path: join(REPO_ROOT, 'e2e-artifacts', 'run-comparison.png') });
  await side.region.screenshot({ path: testInfo.outputPath('run-comparison.png') });

  // By tokens seen: the same 4 curves on another axis.
  await side.byTokens.check();
  await expect(side.overlay).toHaveAttribute('data-series', '4');
  await expect(side.overlay.getByRole('img')).toHaveAttribute('aria-label', /by training tokens seen: 4 curves/);
});
