// Methods through the UI on the bundled tiny model: an SFT run (prompt tuning when the worker trains it,
// else LoRA) named by its method in the runs list; a preference file written by the test, which the Train
// panel offers to train with DPO; a DPO run from the base model whose step and held-out statistics (TRL's
// names) reach the DPO charts, its runs-list label 'DPO · …'; then a DPO run that starts from the SFT run's
// checkpoint (Start from, picked from the keyboard) and names it in the runs list (lineage).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { DataPanel } from './pages/DataPanel';
import { RunsPanel } from './pages/RunsPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid prompt/completion records (36 training, 4 validation) and one bad line. */
const SFT_DATA = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

/** 30 preference pairs: the chosen reply is the number in digits, the rejected one a word. */
function preferenceJsonl(): string {
  const words = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
  const lines: string[] = [];
  for (let i = 0; i < 30; i++) {
    const n = i % 10;
    lines.push(JSON.stringify({ prompt: `Write ${words[n]} as a number (${i}):`, chosen: ` ${n}`, rejected: ` ${words[(n + 3) % 10]}` }));
  }
  return lines.join('\n') + '\n';
}

test('prompt tuning and DPO: the method and objective pickers, the DPO charts, method labels and lineage', async ({ tabtune, page, backend }, testInfo) => {
  test.skip(backend === 'webgpu', 'three runs take too long on SwiftShader');
  test.setTimeout(600_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 900 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const runs = new RunsPanel(page);
  const fast = { 'Held-out answers generated': 0, 'Forgetting probe size': 0 };

  await tabtune.open({ model: 'tabtune-tiny' });
  const model = await tabtune.whenModelReady();
  const promptTuning = model.training?.modes.includes('prompt') ?? false;
  console.log(`${tag} the worker trains: ${model.training?.modes.join(', ')}`);

  // 1. SFT: prompt tuning (16 → 4 virtual tokens) when the worker trains it, else LoRA.
  await data.pick(SFT_DATA);
  await expect(data.split).toContainText('36 training, 4 validation');
  await train.preset('Quick');
  if (promptTuning) {
    await train.method.selectOption('prompt');
    await expect(train.methodTradeoff).toContainText('Only a few learned input vectors');
    await train.region.getByLabel('Virtual tokens', { exact: true }).fill('4');
    await expect(train.plan).toContainText(`${4 * model.hiddenSize} trainable parameters (Prompt 4 tokens)`);
  } else {
    await expect(train.method.locator('option[value="prompt"]')).toBeDisabled();
  }
  await train.advanced({ Steps: 4, 'Batch size': 4, 'Validate every': 2, 'Checkpoint every': 2, 'Warmup steps': 1 });
  await train.whenToStop(fast, 'Validation loss (lower)');
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });
  const sftId = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  const sftLabel = promptTuning ? 'SFT · Prompt 4 tokens, lr' : 'SFT · LoRA r4, lr';
  await expect(runs.region.locator(`[data-testid="run"][data-run-id="${sftId}"]`)).toContainText(sftLabel);
  await expect(train.dpoRewardsChart).toHaveCount(0);

  // 2. A preference file: the panel offers DPO; the method goes back to LoRA for it.
  const prefs = testInfo.outputPath('prefs.jsonl');
  writeFileSync(prefs, preferenceJsonl());
  await data.pick(prefs);
  await expect(train.dpoOffer).toContainText('This dataset holds');
  await expect(train.objectiveProblem).toContainText('SFT needs prompt/completion or chat examples');
  await expect(train.start).toBeDisabled();
  await train.dpoOffer.getByRole('button', { name: 'Train with DPO' }).click();
  await expect(train.region.getByRole('radio', { name: 'Preference tuning (DPO)' })).toBeChecked();
  await expect(train.objectiveProblem).toHaveCount(0);
  if (promptTuning) await train.method.selectOption('lora');
  await expect(train.region.getByLabel('DPO beta', { exact: true })).toHaveValue('0.1');
  await expect(train.startFrom).toHaveValue('');
  await train.advanced({ Steps: 6, 'Batch size': 4, 'Validate every': 3, 'Checkpoint every': 3, 'Warmup steps': 1 });
  await expect(train.plan).toContainText('trainable parameters (LoRA r4, DPO)');
  await expect(train.start).toBeEnabled();
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });
  const dpoId = await page.evaluate(() => window.__tabtune!.state().selection.runId!);

  // Its statistics, named as TRL names them, in the charts' data and on the page.
  const x = await train.extras();
  console.log(`${tag} DPO steps ${x.steps.join(',')}; rewards/margins ${x.step['rewards/margins']?.join(',')}; eval_rewards/accuracies ${x.eval['eval_rewards/accuracies']?.join(',')}`);
  for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) {
    const values = (x.step[name] ?? []).filter((v): v is number => v !== null);
    expect(values.length, name).toBe(6);
    expect(values.every(Number.isFinite), name).toBe(true);
  }
  expect(x.step['logps/chosen']!.every((v) => v === null || v < 0)).toBe(true);
  expect(x.step['rewards/accuracies']!.every((v) => v === null || (v >= 0 && v <= 1))).toBe(true);
  const heldOut = (x.eval['eval_rewards/accuracies'] ?? []).filter((v): v is number => v !== null);
  expect(heldOut.length).toBeGreaterThanOrEqual(2);
  await expect(train.region.getByRole('heading', { name: 'Loss (DPO)' })).toBeVisible();
  await expect(train.dpoRewardsChart).toBeVisible();
  await expect(train.dpoAccuracyChart).toBeVisible();
  await expect(train.dpoLogpsChart).toBeVisible();
  await expect(train.dpoRewardsChart).toContainText('eval_rewards/margins');
  await expect(train.dpoLogpsChart).toContainText('logps/chosen');
  const row = runs.region.locator(`[data-testid="run"][data-run-id="${dpoId}"]`);
  await expect(row).toContainText('DPO · LoRA r4, lr');
  await train.region.screenshot({ path: testInfo.outputPath('train-dpo.png') });

  // 3. DPO from the SFT run's checkpoint, picked from the keyboard: its adapter continues; the runs list says so.
  await train.startFrom.focus();
  await train.startFrom.selectOption(sftId);
  await expect(train.startStep).toBeEnabled();
  const step = await train.startStep.inputValue();
  expect(Number(step)).toBeGreaterThan(0);
  await expect(train.region.getByTestId('start-from')).toContainText(`adapter from step ${step}`);
  await expect(train.methodTradeoff).toContainText('Continues the adapter of');
  await expect(train.plan).toContainText(promptTuning ? '(Prompt 4 tokens, DPO)' : '(LoRA r4, DPO)');
  await train.region.getByRole('group', { name: 'DPO' }).screenshot({ path: testInfo.outputPath('start-from.png') });
  await train.advanced({ Steps: 3, 'Validate every': 3, 'Checkpoint every': 3 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 240_000 });
  const childId = await page.evaluate(() => window.__tabtune!.state().selection.runId!);
  expect(childId).not.toBe(dpoId);
  const child = runs.region.locator(`[data-testid="run"][data-run-id="${childId}"]`);
  await expect(child).toContainText(promptTuning ? 'DPO · Prompt 4 tokens, lr' : 'DPO · LoRA r4, lr');
  await expect(child.getByTestId('run-lineage')).toContainText(`started from`);
  await expect(child.getByTestId('run-lineage')).toContainText(`at step ${step}`);
  console.log(`${tag} ${await child.getByTestId('run-lineage').textContent()}`);
  await runs.region.screenshot({ path: testInfo.outputPath('runs-methods.png') });
});
