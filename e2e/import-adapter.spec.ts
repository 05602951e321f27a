// Import a PEFT adapter through the page (issue 16, "continue … from an imported PEFT adapter"): a quick LoRA
// run on the bundled tiny model, its adapter downloaded as a zip (Export), imported again from the Runs panel
// (opened from the keyboard), listed as "imported: <name> (LoRA r4)", then picked under Train's Start from
// (step 0; the panel offers it with DPO) for a new run that continues it and names it in its lineage.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import { RunsPanel } from './pages/RunsPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 20 preference pairs: the chosen reply is the number in digits, the rejected one a word. */
function preferenceJsonl(): string {
  const words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
  const lines: string[] = [];
  for (let i = 0; i < 20; i++) lines.push(JSON.stringify({ prompt: `Write ${words[i % 10]} as a number (${i}):`, chosen: ` ${i % 10}`, rejected: ` ${words[(i + 3) % 10]}` }));
  return lines.join('\n') + '\n';
}

/** 41 lines: 40 valid prompt/completion records (36 training, 4 validation) and one bad line. */
const SFT_DATA = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

test('a PEFT adapter zip imported in the Runs panel becomes a run that Train starts from', async ({ tabtune, page, backend }, testInfo) => {
  test.skip(backend === 'webgpu', 'two runs take too long on SwiftShader');
  test.setTimeout(600_000);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const runs = new RunsPanel(page);
  const exporter = new ExportPanel(page);
  const fast = { 'Held-out answers generated': 0, 'Forgetting probe size': 0 };

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await data.pick(SFT_DATA);
  await train.preset('Quick');
  await train.method.selectOption('lora');
  await train.advanced({ Steps: 2, 'Batch size': 4, 'Validate every': 2, 'Checkpoint every': 2, 'Warmup steps': 1 });
  await train.whenToStop(fast, 'Validation loss (lower)');
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });

  const peft = await exporter.download('adapter');
  const zipPath = testInfo.outputPath('my-adapter.zip');
  writeFileSync(zipPath, peft.bytes);

  // The control opens from the keyboard; the zip goes through its file input.
  const box = runs.region.getByTestId('import-adapter');
  await box.locator('summary').focus();
  await page.keyboard.press('Enter');
  await expect(box).toHaveAttribute('open', '');
  await box.getByTestId('import-adapter-zip').setInputFiles(zipPath);
  await expect(box.getByTestId('import-adapter-done')).toContainText('imported: my-adapter (LoRA r4)', { timeout: 60_000 });
  const importedId = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  const row = runs.region.locator(`[data-testid="run"][data-run-id="${importedId}"]`);
  await expect(row).toContainText('imported: my-adapter (LoRA r4)');
  await expect(row).toContainText('imported adapter');
  await runs.region.screenshot({ path: testInfo.outputPath('runs-imported.png') });

  // Start from it (step 0) with DPO on a preference file: the new run continues its adapter and says so.
  const prefs = testInfo.outputPath('prefs.jsonl');
  writeFileSync(prefs, preferenceJsonl());
  await data.pick(prefs);
  await train.dpoOffer.getByRole('button', { name: 'Train with DPO' }).click();
  await train.startFrom.focus();
  await train.startFrom.selectOption(importedId);
  await expect(train.startStep).toHaveValue('0');
  await expect(train.region.getByTestId('start-from')).toContainText('adapter from step 0');
  await train.advanced({ Steps: 2, 'Validate every': 2, 'Checkpoint every': 2 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });
  const childId = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  expect(childId).not.toBe(importedId);
  const child = runs.region.locator(`[data-testid="run"][data-run-id="${childId}"]`);
  await expect(child.getByTestId('run-lineage')).toContainText('started from');
  await expect(child.getByTestId('run-lineage')).toContainText('imported: my-adapter');
});
