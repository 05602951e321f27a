// The run report through the UI, with the bundled tiny model: before a run the Report panel cannot open;
// after a short training it opens from the keyboard and shows the card's sections (data with the doctor's
// problem count, training figures equal to the run's stored metrics, the loss curve as an image the
// browser decodes), downloads the card alone (README.md whose YAML front matter parses) and the curve
// (PNG), and the PEFT zip carries the same card. A screenshot of the view goes to e2e-artifacts.
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { parse as parseYaml } from 'yaml';
import { num } from '../src/report/card';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import { ReportPanel } from './pages/ReportPanel';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

test('the run report: shown from the keyboard, figures from the run, card and curve downloaded', async ({ tabtune, page, backend }, testInfo) => {
  test.skip(backend !== 'wasm', 'the report reads stored records: one backend is enough');
  test.setTimeout(600_000);
  await page.setViewportSize({ width: 1280, height: 900 });
  const report = new ReportPanel(page);
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const exporter = new ExportPanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  await expect(report.show).toBeDisabled();

  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  const steps = 12;
  await train.preset('Quick');
  await train.advanced({ Steps: steps, 'Batch size': 4, 'Validate every': 4, 'Checkpoint every': 4, 'Warmup steps': 2 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 400_000 });
  await expect(train.outcome).toContainText(`Finished at step ${steps} of ${steps}`);

  // Open it from the keyboard.
  await report.show.focus();
  await page.keyboard.press('Enter');
  await expect(report.body).toBeVisible({ timeout: 120_000 });

  // The figures are the run's stored ones (read here through the page's own worker).
  const run = await page.evaluate(async () => {
    const s = window.__tabtune!.state();
    return { runId: s.selection.runId, outcome: s.train.outcome };
  });
  expect(run.outcome).not.toBeNull();
  await expect(report.fact('training', 'Steps')).toHaveText(`${steps} (the run's last step: ${steps})`);
  await expect(report.fact('training', 'Final validation loss')).toHaveText(`${num(run.outcome!.finalValLoss)} at step ${steps}`);
  await expect(report.fact('training', 'Final training loss')).toContainText(`${num(run.outcome!.finalTrainLoss)} (smoothed`);
  await expect(report.fact('data', 'Records')).toHaveText('41 read, 40 used, 1 skipped');
  await expect(report.fact('checkpoint', 'Step')).toHaveText(String(steps));
  await expect(report.section('evaluation').getByRole('table')).toContainText('Validation loss');
  await expect(report.section('method')).toContainText('Method: LoRA, SFT');
  // The loss curve: the same PNG the exports carry, decoded by the browser.
  await expect(report.curve).toBeVisible();
  expect(await report.curve.evaluate((img: HTMLImageElement) => img.decode().then(() => [img.naturalWidth, img.naturalHeight]))).toEqual([640, 320]);

  // For the README: the view from its top to the end of "This checkpoint" (the curve, training, evaluation).
  await report.region.scrollIntoViewIfNeeded();
  const top = (await report.region.boundingBox())!;
  const end = (await report.section('checkpoint').boundingBox())!;
  await page.screenshot({ path: join(REPO_ROOT, 'e2e-artifacts', testInfo.project.name, 'run-report.png'), fullPage: true, clip: { x: top.x, y: top.y + (await page.evaluate(() => window.scrollY)), width: top.width, height: Math.min(1800, end.y + end.height - top.y + 12) } });
  await tabtune.shot('report');

  // The card alone, from the keyboard: its YAML front matter parses.
  const card = await report.download('card');
  expect(card.filename).toMatch(/-step12-README\.md$/);
  const md = new TextDecoder().decode(card.bytes);
  const m = /^---\n([\s\S]*?)\n---\n/.exec(md);
  expect(m).not.toBeNull();
  const front = parseYaml(m![1]!) as Record<string, unknown>;
  expect(front).toMatchObject({ library_name: 'peft', pipeline_tag: 'text-generation', tags: ['tabtune', 'lora', 'sft'] });
  expect(md).toContain('![Training loss over 12 steps');
  const curve = await report.download('curve');
  expect([...curve.bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);

  // The PEFT zip carries the same card and curve.
  await exporter.region.scrollIntoViewIfNeeded();
  const peft = await exporter.download('adapter');
  const files = unzipSync(peft.bytes);
  expect(new TextDecoder().decode(files['README.md'])).toBe(md);
  expect(files['loss_curve.png']).toEqual(curve.bytes);

  // Hide it again (keyboard).
  await report.hide.focus();
  await page.keyboard.press('Enter');
  await expect(report.body).toBeHidden();
});
