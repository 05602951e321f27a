// Preferences from the compare view, with the bundled tiny model: after a short SFT run (Data + Train
// panels) the user marks the better reply of a held-out row (base vs tuned), edits the prompt box's tuned
// reply into a better one (from the keyboard), picks one of two tuned samples at two seeds, edits a pair in
// the Preferences list; the pairs survive a reload, export as JSONL that the dataset doctor's parser reads as
// preference-jsonl, and "Train with DPO" starts a run from the SFT checkpoint that records DPO's statistics.
import { join } from 'node:path';
import { parseDataset } from '../src/data/parse';
import { textSource } from '../src/data/source';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { PreferencesPanel } from './pages/PreferencesPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');
const PROMPT = 'Write as digits: six hundred ninety seven';

test('mark preferences in the compare view, export them and train on them with DPO', async ({ tabtune, page, backend }, testInfo) => {
  const gpu = backend === 'webgpu';
  test.setTimeout(gpu ? 1_800_000 : 900_000);
  const tag = `[${testInfo.project.name}]`;
  const long = gpu ? 1_200_000 : 400_000;
  const compare = new ComparePanel(page);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const prefs = new PreferencesPanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();

  // 1. A short SFT run through the studio (it selects the run it trains).
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const steps = gpu ? 4 : 20;
  await train.preset('Quick');
  await train.advanced({ Steps: steps, 'Batch size': 4, 'Validate every': steps, 'Checkpoint every': steps, 'Warmup steps': 2 });
  await train.start.click();
  await expect(train.outcome).toContainText(`Finished at step ${steps} of ${steps}`, { timeout: long });
  const sft = (await tabtune.training.listRuns()).find((r) => r.job?.train.objective !== 'dpo')!;
  expect(sft.latestCheckpoint?.step).toBe(steps);
  await expect(prefs.count).toContainText(`0 preference pairs stored with run "${sft.name}"`);
  await expect(prefs.exportButton).toBeDisabled();

  // 2. Base vs tuned on a held-out row whose two replies differ.
  await compare.runHeldout(gpu ? 900_000 : 300_000);
  const rows = await compare.rows.count();
  let marked: number | null = null;
  for (let i = 0; i < rows && marked === null; i++) {
    const line = Number(await compare.rows.nth(i).locator('td').first().textContent());
    const mark = prefs.rowMark(line);
    if (await mark.getByRole('button', { name: 'Tuned is better' }).isEnabled()) {
      await mark.getByRole('button', { name: 'Base is better' }).click();
      await expect(mark.getByTestId('pref-status')).toHaveText('Saved: base reply preferred.');
      await expect(mark.getByRole('button', { name: 'Base is better' })).toHaveAttribute('aria-pressed', 'true');
      marked = line;
    }
  }
  expect(marked, 'a held-out row where base and tuned differ').not.toBeNull();
  await expect(prefs.count).toContainText('1 preference pair stored');
  await expect(prefs.items.first()).toHaveAttribute('data-source', 'base-vs-tuned');

  // 3. The prompt box, from the keyboard; the tuned reply edited into a better one (Ctrl+Enter saves).
  await compare.fill({ prompt: PROMPT, maxNewTokens: gpu ? 4 : 8, temperature: 0, seed: 5 });
  await compare.prompt.focus();
  const first = await compare.compare(long, () => page.keyboard.press('Control+Enter'));
  console.log(`${tag} prompt: base ${JSON.stringify(first.base)} | tuned ${JSON.stringify(first.tuned)}`);
  await prefs.editTuned(prefs.promptMark, '697');
  await expect(prefs.promptMark.getByTestId('pref-status')).toHaveText('Saved: edited reply preferred over the tuned one.');
  await expect(prefs.count).toContainText('2 preference pairs stored');
  const edited = prefs.items.nth(1);
  await expect(edited).toHaveAttribute('data-source', 'edited');
  await expect(edited.getByTestId('pref-chosen')).toHaveText('697');
  await expect(edited.getByTestId('pref-rejected')).toHaveText(first.tuned || '(empty)');
  await expect(edited).toContainText(`step ${steps}`);

  // 4. Two samples of the tuned model at seeds 5 and 6 (temperature 0.8: the box is greedy); the first is marked.
  await prefs.samples.getByRole('button', { name: 'Sample two tuned replies' }).click();
  await expect(prefs.samples.getByTestId('sample-2')).toBeVisible({ timeout: long });
  await expect(prefs.samples).toContainText('Sample 1 (seed 5)');
  await expect(prefs.samples).toContainText('Sample 2 (seed 6)');
  const s1 = (await prefs.samples.getByTestId('sample-1').textContent()) ?? '';
  const s2 = (await prefs.samples.getByTestId('sample-2').textContent()) ?? '';
  console.log(`${tag} samples: ${JSON.stringify(s1)} | ${JSON.stringify(s2)}`);
  const expected = 2;
  if (s1 !== s2) {
    // It replaces the prompt's edited pair: one pair per shown prompt.
    await prefs.samples.getByRole('button', { name: 'Sample 1 is better' }).click();
    await expect(prefs.promptMark.getByTestId('pref-status')).toHaveText('Saved: sample 1 preferred.');
    await expect(prefs.items.nth(1)).toHaveAttribute('data-source', 'two-samples');
    await expect(prefs.items.nth(1).getByTestId('pref-chosen')).toHaveText(s1 || '(empty)');
    // And the edit again, so the set keeps one of each kind.
    await prefs.editTuned(prefs.promptMark, '697');
    await expect(prefs.promptMark.getByTestId('pref-status')).toHaveText('Saved: edited reply preferred over the tuned one.');
  }
  await expect(prefs.count).toContainText(`${expected} preference pairs stored`);

  // 5. A pair edited in the list (keyboard: Ctrl+Enter saves).
  await prefs.items.first().getByRole('button', { name: 'Edit pair 1' }).click();
  const chosenBox = prefs.items.first().getByLabel('Chosen');
  const oldChosen = await chosenBox.inputValue();
  await chosenBox.fill(`${oldChosen} (better)`);
  await chosenBox.press('Control+Enter');
  await expect(prefs.items.first().getByTestId('pref-chosen')).toHaveText(`${oldChosen} (better)`);
  await prefs.list.scrollIntoViewIfNeeded();
  await tabtune.shot('preferences-list');

  // 6. The pairs are stored with the run: a reload lists them again.
  await page.reload();
  await tabtune.whenModelReady();
  await expect(prefs.count).toContainText(`${expected} preference pairs stored with run "${sft.name}"`, { timeout: 60_000 });
  await expect(prefs.items.first().getByTestId('pref-chosen')).toHaveText(`${oldChosen} (better)`);

  // 7. Export JSONL: exactly what the dataset doctor reads as preference-jsonl.
  const file = await prefs.exportJsonl();
  expect(file.filename).toMatch(/-preferences\.jsonl$/);
  await expect(prefs.exported).toContainText(`Exported ${expected} pairs`);
  const lines = file.text.trimEnd().split('\n');
  expect(lines).toHaveLength(expected);
  for (const l of lines) expect(Object.keys(JSON.parse(l))).toEqual(['prompt', 'chosen', 'rejected']);
  expect(JSON.parse(lines[1]!)).toEqual({ prompt: PROMPT, chosen: '697', rejected: first.tuned });
  const parsed = await parseDataset(textSource(file.text, file.filename));
  expect(parsed.format).toBe('preference-jsonl');
  expect(parsed.records).toHaveLength(expected);
  expect(parsed.issues.errors).toEqual([]);

  await prefs.compare.screenshot({ path: testInfo.outputPath('compare-preferences.png') });
  // 8. DPO on them, from the SFT run's checkpoint, with the Train panel's settings (a few steps).
  const dpoSteps = gpu ? 2 : 4;
  await train.advanced({ Steps: dpoSteps, 'Validate every': dpoSteps, 'Checkpoint every': dpoSteps, 'Warmup steps': 0 });
  await expect(prefs.trainDpo).toHaveText(`Train with DPO on these ${expected} preferences`);
  await prefs.trainDpo.click();
  await expect(train.outcome).toContainText(`Finished at step ${dpoSteps} of ${dpoSteps}`, { timeout: long });
  await expect(prefs.errors).toHaveCount(0);
  const dpo = (await tabtune.training.listRuns()).find((r) => r.name === `${sft.name} + DPO`);
  expect(dpo, 'the DPO run').toBeTruthy();
  expect(dpo!.job?.train.objective).toBe('dpo');
  expect(dpo!.job?.startFrom).toEqual({ runId: sft.id, step: steps });
  expect(dpo!.job?.data.name).toMatch(/-preferences\.jsonl$/);
  expect(dpo!.job?.data.trainExamples).toBeGreaterThan(0);
  // DPO's statistics, named as TRL names them, for every step of the run.
  const stats = await page.evaluate(() => {
    const s = window.__tabtune!.state().live.series;
    return { steps: [...s.step], extra: Object.fromEntries(Object.entries(s.stepExtra).map(([k, v]) => [k, [...v]])) };
  });
  console.log(`${tag} DPO stats: ${JSON.stringify(stats)}`);
  expect(stats.steps).toEqual(Array.from({ length: dpoSteps }, (_, i) => i + 1));
  for (const name of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) {
    expect(stats.extra[name], name).toHaveLength(dpoSteps);
    expect(stats.extra[name]!.every((v) => typeof v === 'number' && Number.isFinite(v)), name).toBe(true);
  }
  await tabtune.shot('preferences-dpo');
});
