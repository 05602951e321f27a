// Plain-text domain adaptation through the UI on the bundled tiny model: two text files picked at once make one
// dataset of two documents; then drop a .txt file (the ship's log
// tabtune writes itself), read the doctor's text report (documents, paragraphs, tokens, windows, what is held
// out), train a few steps, see the held-out perplexity of the base model and the tuned one in the Train panel,
// then in Compare: held-out perplexity base vs tuned, and held-out openings continued by both side by side.
import { expect, test } from './fixtures';
import { shipsLog } from '../src/testing/ships-log';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { TrainPanel } from './pages/TrainPanel';

const numbers = (s: string | null) => [...(s ?? '').matchAll(/\d+(?:\.\d+)?/g)].map((m) => Number(m[0]));

test('a dropped text file trains and Compare shows held-out perplexity base vs tuned', async ({ tabtune, page, backend }, testInfo) => {
  test.setTimeout(backend === 'webgpu' ? 900_000 : 300_000);
  const tag = `[${testInfo.project.name}]`;
  await page.setViewportSize({ width: 1280, height: 900 });
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const compare = new ComparePanel(page);

  await tabtune.open({ model: 'tabtune-tiny' });
  await tabtune.whenModelReady();
  // Several text files picked at once: one dataset, a document each.
  await data.fileInput.setInputFiles([
    { name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from('# Notes\n\nFirst paragraph.\n\nSecond paragraph.\n') },
    { name: 'more.txt', mimeType: 'text/plain', buffer: Buffer.from('Another document.\n') },
  ]);
  await expect(data.text).toContainText('2 documents, 4 paragraphs');

  await data.drop({ name: 'ships-log.txt', bytes: shipsLog({ voyages: 10, entries: 4 }), type: 'text/plain' });
  await expect(data.format).toHaveText('Plain text'); // plain words; the id 'text' is on demand (issue 18 #8)
  await expect(data.formatId).toHaveText('text');
  // 10 voyages of 6 paragraphs; 10% held out = one whole voyage.
  await expect(data.text).toContainText('10 documents, 60 paragraphs');
  await expect(data.text).toContainText('held out: 1 whole document (6 paragraphs)');
  await expect(data.text).toContainText('training windows of 256 tokens');
  await expect(data.split).toContainText('54 training, 6 validation');
  await expect(data.status).toContainText('plain text in');
  console.log(`${tag} doctor: ${await data.text.textContent()}`);

  await train.preset('Quick');
  await train.advanced({ Steps: 8, 'Batch size': 4, 'Validate every': 4, 'Checkpoint every': 8, 'Warmup steps': 1 });
  await train.whenToStop({ 'Held-out answers generated': 0, 'Forgetting probe size': 0 }, 'Validation loss (lower)');
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: backend === 'webgpu' ? 800_000 : 250_000 });
  await expect(train.perplexityChart).toBeVisible();
  await expect(train.perplexitySummary).toContainText('Base model');
  const [basePpl, , stepPpl] = numbers(await train.perplexitySummary.textContent());
  console.log(`${tag} train panel: ${await train.perplexitySummary.textContent()}`);
  expect(stepPpl!).toBeLessThan(basePpl!);

  await compare.runHeldoutButton.click();
  await expect(compare.perplexity).toBeVisible({ timeout: 200_000 });
  const [base, tuned] = numbers(await compare.perplexity.textContent());
  console.log(`${tag} compare: ${await compare.perplexity.textContent()}`);
  expect(tuned!).toBeLessThan(base!);
  // The Compare figure is the Train panel's: the same held-out windows, the base model measured the same way.
  expect(Math.abs(base! - basePpl!)).toBeLessThan(0.02 * basePpl!);
  // Each held-out paragraph's opening, continued by the base model and by the tuned one, side by side.
  await expect(compare.rows).toHaveCount(6);
  await expect(compare.rows.first()).toContainText('Log of the schooner');
  await compare.region.screenshot({ path: testInfo.outputPath('plain-text-compare.png') });
});
