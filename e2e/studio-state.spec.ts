// Issue 18 (#1 #2 #4 #7 #10), through the UI on the bundled tiny model: a failed model load keeps the
// working model and names what was tried; Generate says which adapter it applies, can switch it off, and
// each output carries the run and step it was made with; presets grow Quick < Balanced < Thorough on a
// small dataset, which is warned about; a run ends with a verdict from its held-out evaluations; a time
// estimate from a measured speed stands next to Start; disabled controls (Rewind while paused) say why.
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { engineGreedy, TINY } from './engine';
import { REPO_ROOT } from './golden';
import { CheckpointsPanel } from './pages/CheckpointsPanel';
import { DataPanel } from './pages/DataPanel';
import type { TabtunePage } from './pages/TabtunePage';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');
const PROMPT = 'Write as digits: four hundred';

test('a failed model load keeps the working model, and the error names what was tried', async ({ tabtune, page, fixtureOrigin }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  await expect(tabtune.model.summary).toContainText(`Loaded ${TINY}`);

  await tabtune.model.loadFromUrl('asdf qwer !!');
  await expect(tabtune.model.error).toContainText(`The model asdf qwer !! could not be loaded — ${TINY} is still loaded and in use`);
  await expect(tabtune.model.error).toContainText('is neither an http(s) URL nor a Hugging Face model id');
  await expect(tabtune.model.summary).toContainText(`Loaded ${TINY}`);
  await expect(tabtune.generate.maxNewTokens).toHaveAttribute('max', '256'); // the tiny model's context, not the 4096 fallback
  await tabtune.model.region.screenshot({ path: join(tabtune.options.artifactsDir, 'model-panel-bad-input.png') });

  // A URL the worker tries and fails on: the worker keeps the model too (it swaps only after a load succeeds).
  await tabtune.model.loadFromUrl(`${fixtureOrigin}/no-such-model/`);
  await expect(tabtune.model.error).toContainText(`The model ${fixtureOrigin}/no-such-model could not be loaded — ${TINY} is still loaded`);
  await expect(tabtune.model.summary).toContainText(`Loaded ${TINY}`);
  const expected = await engineGreedy(TINY, PROMPT, 6);
  await tabtune.generate.fill({ prompt: PROMPT, maxNewTokens: 6, temperature: 0 });
  await tabtune.generate.run();
  expect(await tabtune.lastTokens()).toEqual(expected.tokens);
  await expect(tabtune.generate.region.getByTestId('generation-made-with')).toHaveText(`Made with ${TINY} (no adapter: the base model alone).`);

  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  await expect(train.start).toBeEnabled();
  await expect(train.phase).not.toContainText('Load a model first');
  await tabtune.shot('failed-load-keeps-model');
});

/** The panels of a page opened on the tiny model with the 36-example dataset read. */
async function openWithData(tabtune: TabtunePage, page: Page) {
  await page.setViewportSize({ width: 1280, height: 800 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const shotOf = (name: string, region: Locator = train.region) => region.screenshot({ path: join(tabtune.options.artifactsDir, `${name}.png`) });
  return { data, train, checkpoints: new CheckpointsPanel(page), shotOf };
}

/** A 12-step run (evaluations with 4 generated held-out answers at steps 6 and 12, checkpoints there too), to its end. */
async function trainShort(train: TrainPanel): Promise<void> {
  await train.preset('Quick');
  await train.advanced({ Steps: 12, 'Batch size': 4, 'Validate every': 6, 'Checkpoint every': 6, 'Warmup steps': 2 });
  await train.whenToStop({ 'Held-out answers generated': 4, 'Forgetting probe size': 0 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 400_000 });
}

test('presets grow Quick < Balanced < Thorough on a small dataset, which is warned about', async ({ tabtune, page }, testInfo) => {
  const { train, shotOf } = await openWithData(tabtune, page);
  // On 36 examples (before: Quick 60, Balanced 27, Thorough 54).
  const stepsOf = async (preset: 'Quick' | 'Balanced' | 'Thorough') => {
    await train.preset(preset);
    const m = /([\d,]+) steps on 36 examples/.exec((await train.plan.textContent()) ?? '');
    expect(m, `${preset}: ${await train.plan.textContent()}`).not.toBeNull();
    return Number(m![1]!.replace(/,/g, ''));
  };
  const quick = await stepsOf('Quick');
  const balanced = await stepsOf('Balanced');
  const thorough = await stepsOf('Thorough');
  console.log(`[${testInfo.project.name}] presets on 36 examples: quick ${quick}, balanced ${balanced}, thorough ${thorough}`);
  expect(quick).toBeLessThan(balanced);
  expect(balanced).toBeLessThan(thorough);
  await expect(train.region.getByTestId('data-size-warning')).toContainText('Only 36 training examples');
  await train.advanced({ Steps: 12 });
  await expect(train.region.getByTestId('data-size-warning')).toContainText('Only 12 steps: likely too few to learn anything');
  await shotOf('train-panel-before-start');
});

test('a finished run says whether it learned, from its held-out evaluations', async ({ tabtune, page }, testInfo) => {
  const { train, shotOf } = await openWithData(tabtune, page);
  await trainShort(train);
  const verdict = train.region.getByTestId('train-verdict');
  // The base model's held-out answers, measured before the first step, to the last evaluation's.
  await expect(verdict).toContainText(/^Held-out exact match \d+(\.\d)?% \(base model\) → \d+(\.\d)?% \(step 12\): (the model|it is learning|no better)/);
  console.log(`[${testInfo.project.name}] verdict: ${await verdict.textContent()}`);
  await shotOf('train-panel-verdict');
});

test('a time estimate stands next to Start, from a step of the chosen settings timed on the loaded model', async ({ tabtune, page }, testInfo) => {
  const { train } = await openWithData(tabtune, page);
  const estimate = train.region.getByTestId('time-estimate');
  const timed = (steps: number) => new RegExp(`^Takes about \\d+ (s|min) for ${steps} steps \\(a step of these settings timed on ${TINY}: [\\d,]+ tokens/s\\)`);
  // Before any run: one step of the settings is timed in the worker (nothing stored).
  await train.preset('Quick');
  await expect(estimate).toContainText(timed(60), { timeout: 60_000 });
  await expect(train.start).toHaveAccessibleDescription(/Takes about/);
  expect(await page.evaluate(() => window.__tabtune!.state().runs.list.length)).toBe(0);
  // Another batch size costs another step: it is timed again.
  const seconds = () => page.evaluate(() => window.__tabtune!.state().train.stepTiming);
  const first = await seconds();
  await train.advanced({ 'Batch size': 2 });
  await expect.poll(async () => (await seconds())?.key !== first?.key && (await seconds())?.phase === 'ready', { timeout: 60_000 }).toBe(true);
  await expect(estimate).toContainText(timed(60));
  await train.advanced({ 'Batch size': 4, Steps: 12, 'Validate every': 6, 'Checkpoint every': 6, 'Warmup steps': 2 });
  await expect(estimate).toContainText(timed(12), { timeout: 60_000 });
  const said = (await estimate.textContent()) ?? '';
  await trainShort(train);
  const ms = await page.evaluate(() => window.__tabtune!.state().train.outcome?.ms ?? null);
  console.log(`[${testInfo.project.name}] estimate: ${said} | the run took ${ms !== null ? (ms / 1000).toFixed(1) : '?'} s with its evaluations`);
});

test('Generate says which adapter it applies, can switch it off, and each output carries its run and step', async ({ tabtune, page }) => {
  const gen = tabtune.generate;
  const source = gen.region.getByTestId('generate-source');
  const madeWith = gen.region.getByTestId('generation-made-with');
  const { train, checkpoints, shotOf } = await openWithData(tabtune, page);
  await expect(source).toHaveText(`Uses ${TINY} (no adapter: the base model alone) — train a run or select one (Runs, Checkpoints) to apply its adapter.`);
  await trainShort(train);

  await expect(source).toHaveText(new RegExp(`^Uses ${TINY} \\+ .+, step 12, adapter on$`));
  await gen.fill({ prompt: PROMPT, maxNewTokens: 6, temperature: 0 });
  await gen.run();
  await expect(madeWith).toHaveText(new RegExp(`^Made with ${TINY} \\+ .+, step 12, adapter on\\.$`));
  expect(await page.evaluate(() => window.__tabtune!.state().generation.outcome?.adapter?.step)).toBe(12);
  // An earlier checkpoint: the label follows the selection, and so does the worker.
  await checkpoints.select(6);
  await expect(source).toHaveText(new RegExp(`^Uses ${TINY} \\+ .+, step 6, adapter on$`));
  await expect(madeWith).toContainText('step 12'); // the output made before still says what it was made with
  await gen.run();
  await expect(madeWith).toHaveText(new RegExp(`^Made with ${TINY} \\+ .+, step 6, adapter on\\.$`));
  expect(await page.evaluate(() => window.__tabtune!.state().generation.outcome?.adapter?.step)).toBe(6);
  await shotOf('generate-adapter-on', gen.region);
  // Switched off: the base model alone, token for token.
  await gen.region.getByLabel('Apply the adapter').uncheck();
  await expect(source).toHaveText(`Uses ${TINY} (adapter off: the base model alone)`);
  await gen.run();
  await expect(madeWith).toHaveText(`Made with ${TINY} (adapter off: the base model alone).`);
  expect(await page.evaluate(() => window.__tabtune!.state().generation.outcome?.adapter ?? null)).toBeNull();
  expect(await tabtune.lastTokens()).toEqual((await engineGreedy(TINY, PROMPT, 6)).tokens);
  await shotOf('generate-adapter-off', gen.region);
  await gen.region.getByLabel('Apply the adapter').check();
  await expect(source).toContainText('adapter on');
});

test('disabled training controls say why: Rewind while paused, Pause, Resume', async ({ tabtune, page }) => {
  const { train, checkpoints, shotOf } = await openWithData(tabtune, page);
  await expect(train.pause).toBeDisabled();
  await expect(train.pause).toHaveAccessibleDescription('Pause: nothing is training.');
  await train.preset('Quick');
  await train.advanced({ Steps: 400, 'Batch size': 4, 'Validate every': 200, 'Checkpoint every': 200, 'Warmup steps': 2 });
  await train.start.click();
  await expect(train.pause).toBeEnabled({ timeout: 120_000 });
  await expect(train.resume).toBeDisabled();
  await expect(train.resume).toHaveAccessibleDescription('Resume: the run is not paused.');
  await expect.poll(() => page.evaluate(() => window.__tabtune!.state().live.last?.step ?? 0), { timeout: 120_000 }).toBeGreaterThan(0);
  await train.pause.click();
  await expect(train.phase).toContainText('Paused', { timeout: 120_000 });
  await expect(train.pause).toHaveAccessibleDescription('Pause: the run is already paused (Resume continues it).');
  const rewind = checkpoints.region.getByRole('button', { name: /^Continue training from step \d+ as a new branch$/ }).first();
  await expect(rewind).toBeVisible({ timeout: 60_000 });
  await expect(rewind).toBeDisabled();
  await expect(rewind).toHaveAccessibleDescription(/^Rewind is off while “.+” is paused: .*Resume it and let it finish, or Cancel it/);
  await expect(checkpoints.region.getByTestId('checkpoints-off')).toBeVisible();
  await shotOf('checkpoints-paused', checkpoints.region);
  await tabtune.shot('paused');
  await train.cancel.click();
  await expect(train.start).toBeEnabled({ timeout: 120_000 });
  await expect(rewind).toBeEnabled();
  await expect(checkpoints.region.getByTestId('checkpoints-off')).toHaveCount(0);
});
