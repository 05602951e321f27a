// Compare and Export through the UI, with the bundled tiny model: before anything is trained both panels
// show their empty state; after a short training (Data + Train panels) the prompt box streams base and
// tuned outputs side by side (strength 0 gives the base model's text back), the held-out table has every
// validation example with totals at the top, and every export downloads a file that parses (the merged
// model is refused on WebGPU with a message that suggests WASM).
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { SafetensorsFile } from '../src/io/safetensors';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

test('compare base vs tuned and export the run', async ({ tabtune, page, backend }, testInfo) => {
  const gpu = backend === 'webgpu';
  test.setTimeout(gpu ? 1_500_000 : 600_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 720 });
  const compare = new ComparePanel(page);
  const exporter = new ExportPanel(page);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  expect((await tabtune.getBackend()).backend).toBe(backend);

  // Empty states: nothing trained, nothing selected.
  await expect(compare.empty).toContainText('No run or checkpoint is selected.');
  await expect(compare.compareButton).toBeDisabled();
  await expect(compare.runHeldoutButton).toBeDisabled();
  await expect(exporter.empty).toContainText('No run is selected.');
  await compare.region.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-empty');

  // A short training run through the studio (it selects the run it trains).
  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const steps = gpu ? 4 : 30;
  const every = gpu ? 2 : 10;
  await train.preset('Quick');
  await train.advanced({ Steps: steps, 'Batch size': 4, 'Validate every': every, 'Checkpoint every': every, 'Warmup steps': 2 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: gpu ? 1_200_000 : 400_000 });
  await expect(train.outcome).toContainText(`Finished at step ${steps} of ${steps}`);
  await expect(compare.target).toContainText(`step ${steps} (newest)`);
  await expect(compare.empty).toBeHidden();

  // 1. The prompt box, from the keyboard: Ctrl+Enter compares, both sides stream with the same settings.
  await compare.fill({ prompt: 'Write as digits: six hundred ninety seven', maxNewTokens: gpu ? 6 : 12, temperature: 0, seed: 5 });
  await compare.prompt.focus();
  const first = await compare.compare(300_000, () => page.keyboard.press('Control+Enter'));
  console.log(`${tag} prompt: base ${JSON.stringify(first.base)} | tuned ${JSON.stringify(first.tuned)}`);
  await expect(compare.baseOutput).toContainText('Write as digits: six hundred ninety seven\nAnswer:');
  await expect(compare.region.getByTestId('prompt-settings-used')).toContainText('seed 5');
  if (!gpu) expect(first.tuned).not.toBe(first.base);
  await tabtune.shot('compare-prompt');

  // Strength 0 (Home on the slider) is the base model: the tuned side gives the base text back.
  await compare.strength.focus();
  await page.keyboard.press('Home');
  await expect(compare.strength).toHaveAttribute('aria-valuetext', /^0\.00: base model/);
  const zero = await compare.compare();
  expect(zero.tuned).toBe(zero.base);
  await compare.strength.focus();
  await page.keyboard.press('End');
  await expect(compare.strength).toHaveValue('1');

  // 2. The held-out table: every validation example, totals at the top.
  await compare.runHeldoutButton.click();
  await expect(compare.totals).toContainText('exact match: base', { timeout: gpu ? 900_000 : 300_000 });
  const totals = (await compare.totals.textContent()) ?? '';
  console.log(`${tag} held-out: ${totals}`);
  expect(totals).toMatch(/exact match: base \d+% → tuned \d+%/);
  expect(totals).toMatch(/token overlap: base \d\.\d\d → tuned \d\.\d\d/);
  expect(totals).toMatch(/mean loss: base \d+\.\d{3} → tuned \d+\.\d{3}/);
  expect(totals).toContain('4 examples');
  await expect(compare.rows).toHaveCount(4);
  await expect(compare.rows.first().locator('td').nth(1)).toContainText('Write as digits:');
  await compare.totals.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-heldout');

  // 3. Export: the PEFT adapter parses with the project's safetensors reader.
  await exporter.region.scrollIntoViewIfNeeded();
  await expect(exporter.target).toContainText(`step ${steps} (newest)`);
  const peft = await exporter.download('adapter');
  expect(peft.filename).toMatch(/-lora\.zip$/);
  const files = unzipSync(peft.bytes);
  expect(Object.keys(files)).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
  expect(JSON.parse(new TextDecoder().decode(files['adapter_config.json'])).peft_type).toBe('LORA');
  const st = new SafetensorsFile(files['adapter_model.safetensors']!);
  expect(st.names().some((n) => n.includes('lora_A'))).toBe(true);
  await expect(exporter.region.getByTestId('export-peft-done')).toContainText(peft.filename);

  const csv = await exporter.download('metrics');
  expect(csv.filename).toMatch(/\.csv$/);
  expect(new TextDecoder().decode(csv.bytes).split('\n').length).toBeGreaterThan(steps);
  const recipe = await exporter.download('recipe');
  expect(Object.keys(unzipSync(recipe.bytes)).length).toBeGreaterThan(0);

  const merged = await exporter.download('merged');
  const mf = unzipSync(merged.bytes);
  expect(Object.keys(mf)).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));
  await tabtune.shot('export');

  // Dark mode and a large window.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await compare.region.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-export-dark-1920');
});
