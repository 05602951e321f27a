// The studio journey through the UI only, as a first-time visitor does it, with the bundled tiny model:
// drop a dataset -> the doctor's report (counts, the planted bad line 17) -> train with small settings
// while the page stays responsive (no long task over 50 ms) -> the chart has points and a validation
// loss -> checkpoints appear -> reload: the runs and checkpoints are still there, and a run the reload
// interrupted resumes from the banner -> compare base and tuned (a prompt side by side, the held-out
// totals) -> export the PEFT adapter and parse it. Also: a malformed file, an image and an empty file each get a
// clear message. WebGPU runs on SwiftShader here (~100x slower than WASM), so its runs are a few steps.
import { cpus, loadavg } from 'node:os';
import { unzipSync } from 'fflate';
import { SafetensorsFile } from '../src/io/safetensors';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import { CheckpointsPanel } from './pages/CheckpointsPanel';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import { RunsPanel } from './pages/RunsPanel';
import { TrainPanel } from './pages/TrainPanel';
import type { TabtunePage } from './pages/TabtunePage';

const PLANTED = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');

function panels(page: Page) {
  return {
    data: new DataPanel(page),
    train: new TrainPanel(page),
    checkpoints: new CheckpointsPanel(page),
    runs: new RunsPanel(page),
    compare: new ComparePanel(page),
    exporter: new ExportPanel(page),
  };
}

/** Records every long task (> 50 ms) of the page's main thread from the first script on. */
async function watchLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const w = window as unknown as { __longTasks: { start: number; duration: number }[] };
    w.__longTasks = [];
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    } catch {
      // No longtask support: the list stays empty and the test says so.
    }
  });
}

function longTasksBetween(page: Page, from: number, to: number): Promise<{ start: number; duration: number }[]> {
  return page.evaluate(
    ([a, b]) => (window as unknown as { __longTasks: { start: number; duration: number }[] }).__longTasks.filter((t) => t.start >= a && t.start <= b),
    [from, to] as const,
  );
}

const now = (page: Page) => page.evaluate(() => performance.now());

async function openStudio(tabtune: TabtunePage, backend: string): Promise<void> {
  await tabtune.open({ model: 'tabtune-tiny' });
  const model = await tabtune.whenModelReady();
  expect(model.name).toBe('tabtune-tiny');
  // The backend TF.js really runs on in the worker.
  expect((await tabtune.getBackend()).backend).toBe(backend);
}

test('the journey: drop a dataset, read the doctor, train, pick a checkpoint, reload, resume, compare, export', async ({ tabtune, page, backend }, testInfo) => {
  test.setTimeout(backend === 'webgpu' ? 1_200_000 : 600_000);
  const tag = `[${testInfo.project.name}]`;
  const gpu = backend === 'webgpu';
  await watchLongTasks(page);
  await page.setViewportSize({ width: 1280, height: 720 });
  const { data, train, checkpoints, runs, compare, exporter } = panels(page);
  await openStudio(tabtune, backend);
  await expect(tabtune.model.region.getByTestId('memory-estimate')).toContainText('needs about');
  await expect(tabtune.model.region.getByTestId('model-backend')).toContainText(gpu ? 'WebGPU' : 'WASM');
  await expect(runs.region).toContainText('No runs yet');
  await tabtune.shot('empty-studio');

  // 1. Drop the file with the planted bad line on the drop zone (a DataTransfer, as a real drop).
  await data.dropPath(PLANTED);
  // On SwiftShader the doctor's end-of-text probe (a few forward passes) alone takes a while.
  const slow = { timeout: gpu ? 600_000 : 60_000 };
  await expect(data.counts).toHaveText('41 read, 40 valid, 1 error, 0 warnings', slow);
  await expect(data.format).toHaveText('JSON Lines, prompt/completion pairs'); // plain words; the id is on demand (issue 18 #8)
  await expect(data.formatId).toHaveText('prompt-completion-jsonl');
  await expect(data.split).toContainText('36 training, 4 validation');
  const bad = data.issueAtLine(17);
  await expect(bad).toBeVisible();
  await expect(bad).toContainText('Line 17');
  await expect(bad).toContainText('trailing-comma');
  await expect(bad).toContainText('{"prompt": "Write as digits: one hundred one", "completion": "101",}');
  await expect(data.issues).toHaveCount(1);
  await expect(data.problem).toContainText('1 line will be skipped');
  // One example token by token: trained and masked tokens.
  await expect(data.tokenExample.locator('.tok.trained').first()).toBeVisible();
  await expect(data.tokenExample.locator('.tok.masked').first()).toBeVisible();
  await tabtune.shot('doctor-planted-bad-line');

  // 2. Train with small settings (Quick, then fewer steps under Advanced).
  const steps = gpu ? 4 : 24;
  const every = gpu ? 2 : 6;
  await train.preset('Quick');
  await train.advanced({ Steps: steps, 'Batch size': 4, 'Validate every': every, 'Checkpoint every': every, 'Warmup steps': 2 });
  await expect(train.plan).toContainText(`${steps} steps on 36 examples`);
  // The panel offers only what the worker trains here (LoRA, OFT and prompt tuning; full fine-tuning needs the CLI) and says why.
  await expect(train.region.getByLabel('What to train').locator('option')).toHaveText(['LoRA adapter', 'OFT adapter (orthogonal)', 'Prompt tuning (learned virtual tokens)']);
  await expect(train.region.getByText(/Full-parameter training is not available in the browser/)).toBeVisible();
  await tabtune.shot('advanced-settings');
  await train.start.click();
  const t0 = await now(page);
  await expect(train.stats).toContainText('Step', { timeout: 300_000 });
  await expect(train.stats).toContainText('tokens/s');
  const shotAt = await now(page);
  await tabtune.shot('training');
  const shotDone = await now(page);
  await expect(train.outcome).toBeVisible({ timeout: gpu ? 900_000 : 300_000 });
  const t1 = await now(page);
  await expect(train.outcome).toContainText(`Finished at step ${steps} of ${steps}`);
  // From the first frame after Start to the end, except while Playwright takes a full-page screenshot.
  const long = (await longTasksBetween(page, t0, t1)).filter((t) => t.start + t.duration < shotAt || t.start > shotDone);
  const all = await longTasksBetween(page, 0, t1);
  console.log(`${tag} t0 ${t0.toFixed(0)}, screenshot ${shotAt.toFixed(0)}-${shotDone.toFixed(0)}, t1 ${t1.toFixed(0)}; every long task so far: ${all.map((t) => `${t.start.toFixed(0)}+${t.duration.toFixed(0)}`).join(' ')}`);
  const supported = await page.evaluate(() => PerformanceObserver.supportedEntryTypes.includes('longtask'));
  const series = await train.series();
  const stats = (await train.stats.textContent()) ?? '';
  const tps = (await train.outcome.textContent())?.match(/([\d,]+) tokens\/s/)?.[1];
  console.log(
    `${tag} trained ${steps} steps in ${((t1 - t0) / 1000).toFixed(1)} s; outcome ${tps} tokens/s; last stats "${stats}"; ` +
      `long tasks while training (longtask observer ${supported ? 'on' : 'unsupported'}): ${long.length ? long.map((t) => `${t.duration.toFixed(0)} ms`).join(', ') : 'none'}`,
  );
  console.log(`${tag} losses ${series.loss.map((v) => v?.toFixed(3)).join(' ')}; val ${series.val.filter((v) => v !== null).map((v) => v!.toFixed(3)).join(' ')}`);
  expect(supported).toBe(true);
  // No task over 50 ms, unless the machine is overloaded (then the OS, not the page, stretches tasks), and
  // never anything gross (TF.js on the main thread would take seconds). Not on WebGPU here: SwiftShader
  // emulates the GPU on the same few CPU cores, in the GPU process the page's canvases also go through.
  const load = loadavg()[0]!;
  if (!gpu) expect(long.filter((t) => t.duration > 250)).toEqual([]);
  if (load <= cpus().length && !gpu) expect(long).toEqual([]);
  else {
    const note = `${gpu ? 'WebGPU on SwiftShader' : `load average ${load.toFixed(1)} on ${cpus().length} cores`}: the 50 ms check is not applied (seen: ${long.map((t) => `${t.duration.toFixed(0)} ms`).join(', ') || 'none'})`;
    console.log(`${tag} ${note}`);
    testInfo.annotations.push({ type: 'long-tasks', description: note });
  }

  // The chart: a point per step, validation losses, learning rate and gradient norms; the loss fell.
  expect(series.steps).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  expect(series.loss.every((v) => v !== null && Number.isFinite(v))).toBe(true);
  expect(series.val.filter((v) => v !== null).length).toBe(steps / every);
  expect(series.grad.every((v) => v !== null && v > 0)).toBe(true);
  if (!gpu) expect(series.smooth.at(-1)!).toBeLessThan(series.loss[0]!);
  await expect(train.lossChart.locator('canvas')).toBeVisible();
  await expect(train.lrChart.locator('canvas')).toBeVisible();
  // Hover values: the legend shows the step under the cursor.
  const over = train.lossChart.locator('.u-over');
  await over.scrollIntoViewIfNeeded();
  const box = (await over.boundingBox())!;
  await over.hover({ position: { x: box.width * 0.6, y: box.height / 2 } });
  await page.mouse.move(box.x + box.width * 0.6 + 3, box.y + box.height / 2);
  await expect(train.lossChart.locator('.u-legend')).toContainText(/train loss\s*\d/);
  await tabtune.shot('trained-chart-hover');
  await train.logScale.check();
  await expect(train.lossChart.locator('canvas')).toBeVisible();
  await tabtune.shot('trained-log-scale');

  // 3. Checkpoints: the timeline has them, the best is marked; select one and pin it.
  await expect(checkpoints.items.first()).toBeVisible();
  const ckSteps = await checkpoints.steps();
  console.log(`${tag} checkpoints kept: ${ckSteps.join(', ')}`);
  expect(ckSteps).toContain(steps);
  await expect(checkpoints.best()).toHaveCount(1);
  const first = ckSteps[0]!;
  await checkpoints.select(first);
  expect(await page.evaluate(() => window.__tabtune!.state().selection)).toMatchObject({ step: first });
  await checkpoints.pin(first);
  await expect(checkpoints.item(first)).toContainText('pinned');
  await tabtune.shot('checkpoint-selected-pinned');
  await expect(runs.items).toHaveCount(1);
  await expect(runs.run('planted-bad-line.jsonl')).toContainText('finished');
  await expect(runs.storage).toContainText('Storage');

  // 4. A longer run, interrupted by a reload once its first checkpoint is stored.
  await runs.rename('planted-bad-line.jsonl', 'first run');
  await expect(runs.run('first run')).toBeVisible();
  const longSteps = gpu ? 8 : 60;
  await train.advanced({ Steps: longSteps, 'Checkpoint every': gpu ? 2 : 6 });
  const firstRunId = await page.evaluate(() => window.__tabtune!.state().selection.runId);
  await train.start.click();
  // The new run's first checkpoint (before it starts, the timeline still shows the first run's; the run
  // itself starts once its forgetting probe is sampled from the base model).
  await expect
    .poll(async () => page.evaluate((first) => { const c = window.__tabtune!.state().checkpoints; return c.runId !== first && c.list.length > 0; }, firstRunId), { timeout: 600_000 })
    .toBe(true);
  const beforeReload = await train.series();
  expect(beforeReload.runId).not.toBeNull();
  await tabtune.shot('second-run-before-reload');
  await page.reload();
  await expect(page.getByRole('heading', { name: 'tabtune', level: 1 })).toBeVisible();
  await tabtune.whenModelReady();

  // After the reload: both runs and their checkpoints are listed; the banner offers the interrupted one.
  await expect(runs.items).toHaveCount(2);
  await expect(runs.run('first run')).toContainText('finished');
  await expect(runs.banner).toBeVisible({ timeout: 60_000 });
  // What the user made is back: the dataset (kept in IndexedDB) and the training settings.
  await expect(data.counts).toHaveText('41 read, 40 valid, 1 error, 0 warnings', slow);
  await expect(train.plan).toContainText(`${longSteps} steps on 36 examples`);
  const interrupted = await page.evaluate(() => window.__tabtune!.state().runs.list.find((r) => r.status === 'interrupted')!);
  expect(interrupted.id).toBe(beforeReload.runId);
  const resumeFrom = interrupted.latestCheckpoint!.step;
  await expect(checkpoints.items.first()).toBeVisible();
  await tabtune.shot('after-reload-banner');
  await runs.open('first run');
  await expect(checkpoints.item(first)).toContainText('pinned');
  await expect.poll(async () => (await train.series()).steps.length).toBe(steps);

  // Resume from the banner: it continues from the stored checkpoint to the end.
  await runs.banner.getByRole('button', { name: /^Resume / }).click();
  await expect(train.outcome).toBeVisible({ timeout: gpu ? 900_000 : 300_000 });
  await expect(train.outcome).toContainText(`Finished at step ${longSteps} of ${longSteps}`);
  const resumed = await train.series();
  expect(resumed.runId).toBe(interrupted.id);
  // The chart holds the stored steps before the reload and the resumed ones after.
  expect(resumed.steps).toEqual(Array.from({ length: longSteps }, (_, i) => i + 1));
  console.log(`${tag} resumed the interrupted run from step ${resumeFrom} to ${longSteps}`);
  await expect(runs.banner).toBeHidden();
  await tabtune.shot('resumed-finished');

  // 5. Compare the resumed run's newest checkpoint with the base model: a prompt side by side, then
  // every held-out example with the totals (exact match, token overlap, mean loss) at the top.
  await expect(compare.target).toContainText(`step ${longSteps} (newest)`);
  await compare.fill({ prompt: 'Write as digits: six hundred ninety seven', maxNewTokens: gpu ? 6 : 12, temperature: 0, seed: 5 });
  const out = await compare.compare(gpu ? 600_000 : 240_000);
  console.log(`${tag} compare prompt: base ${JSON.stringify(out.base)} | tuned ${JSON.stringify(out.tuned)}`);
  await expect(compare.baseStats).toContainText('tokens/s');
  await expect(compare.tunedStats).toContainText('tokens/s');
  console.log(`${tag} compare stats: base "${await compare.baseStats.textContent()}" | tuned "${await compare.tunedStats.textContent()}"`);
  expect(out.tuned).not.toBe(out.base);
  await compare.region.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-prompt');
  await compare.runHeldoutButton.click();
  await expect(compare.totals).toContainText('exact match: base', { timeout: gpu ? 900_000 : 300_000 });
  const totals = (await compare.totals.textContent()) ?? '';
  console.log(`${tag} held-out totals: ${totals}`);
  expect(totals).toMatch(/exact match: base \d+% → tuned \d+%/);
  expect(totals).toMatch(/mean loss: base \d+\.\d{3} → tuned \d+\.\d{3}/);
  expect(totals).toContain('4 examples');
  await expect(compare.rows).toHaveCount(4);
  await expect(compare.table.getByRole('columnheader', { name: 'Loss (base → tuned)' })).toBeVisible();
  await compare.totals.scrollIntoViewIfNeeded();
  await tabtune.shot('compare-heldout');

  // 6. Export the PEFT adapter: a zip whose files parse with the project's safetensors reader.
  await exporter.region.scrollIntoViewIfNeeded();
  await expect(exporter.target).toContainText(`step ${longSteps} (newest)`);
  const peft = await exporter.download('adapter');
  const files = unzipSync(peft.bytes);
  expect(Object.keys(files)).toEqual(expect.arrayContaining(['adapter_config.json', 'adapter_model.safetensors']));
  expect(JSON.parse(new TextDecoder().decode(files['adapter_config.json'])).peft_type).toBe('LORA');
  const st = new SafetensorsFile(files['adapter_model.safetensors']!);
  const loraNames = st.names().filter((n) => n.includes('lora_A') || n.includes('lora_B'));
  expect(loraNames.length).toBeGreaterThan(0);
  console.log(`${tag} exported ${peft.filename}: ${peft.bytes.byteLength} bytes, ${st.names().length} tensors`);
  await expect(exporter.region.getByTestId('export-peft-done')).toContainText(peft.filename);
  await tabtune.shot('export-peft');

  // 7. Rewind: continue the first run from its pinned checkpoint as a new branch (the old run stays).
  if (!gpu) {
    await runs.open('first run');
    await checkpoints.rewind(first, 'first run, lower lr');
    await expect(train.outcome).toBeVisible({ timeout: 300_000 });
    await expect(runs.items).toHaveCount(3);
    await expect(runs.run('first run, lower lr')).toContainText(`branch from step ${first}`);
    await tabtune.shot('rewound-branch');
  }

  // Dark mode and a large window still lay out.
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await tabtune.shot('dark-1920');
});

test('a malformed file, an image and an empty file each get a clear message', async ({ tabtune, page, backend }) => {
  test.skip(backend !== 'wasm', 'the dataset doctor does not depend on the backend: one project is enough');
  const { data, train } = panels(page);
  await page.setViewportSize({ width: 1280, height: 720 });
  await openStudio(tabtune, backend);

  // Malformed: no line is a valid record. A line holding HTML is shown as text, never rendered.
  await data.drop({ name: 'broken.jsonl', bytes: '{"prompt": "a"\nnot json at all\n<img src=x onerror="window.__pwned=1">\n' });
  await expect(data.problem).toContainText('No valid examples');
  await expect(data.problem).toContainText('line 1');
  await expect(data.issueAtLine(3)).toContainText('<img src=x onerror="window.__pwned=1">');
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  await expect(data.region.locator('img')).toHaveCount(0);
  await expect(train.start).toBeDisabled();
  await expect(train.phase).toContainText('no valid examples');
  await tabtune.shot('malformed');

  // An image, dropped anywhere on the page (the heading), not on the drop zone.
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4a80000000049454e44ae426082', 'hex');
  await data.drop({ name: 'photo.png', bytes: png, type: 'image/png' }, page.getByRole('heading', { name: 'tabtune', level: 1 }));
  await expect(data.problem).toContainText('This is not a dataset');
  await expect(data.problem).toContainText('photo.png');
  await tabtune.shot('image');

  // An empty file through the file button.
  await data.fileInput.setInputFiles({ name: 'empty.jsonl', mimeType: 'application/jsonl', buffer: Buffer.alloc(0) });
  await expect(data.problem).toContainText('This file is empty');
  await tabtune.shot('empty');

  // The examples are one click away and fix it.
  await data.useExample('Number words to digits');
  await expect(data.counts).toHaveText('900 read, 900 valid, 0 errors, 0 warnings');
  // With its own validation file (the held-out examples the learning test measures on).
  await expect(data.split).toHaveText('900 training, 100 validation (validation file)');
  await expect(data.validation).toContainText('number-words.val.jsonl: 100 read, 100 valid, 0 errors; none of them in the training file');
  await expect(data.problem).toBeHidden();
  await expect(train.start).toBeEnabled();
  // The file button is reachable from the keyboard.
  await data.chooseFile.focus();
  await expect(data.chooseFile).toBeFocused();
  await tabtune.shot('example');

  // A long example fits the model's context; with a max length of 32 tokens the doctor warns that it is cut.
  const long = JSON.stringify({ prompt: 'the story of the sea and the ship '.repeat(8), completion: ' done' });
  await data.drop({ name: 'long.jsonl', bytes: `${long}\n{"prompt": "a", "completion": " b"}\n{"prompt": "c", "completion": " d"}\n` });
  await expect(data.counts).toContainText('3 read, 3 valid, 0 errors');
  await expect(data.region).not.toContainText('more than the max sequence length');
  await data.maxLength.selectOption({ label: '32 tokens' });
  await expect(data.region).toContainText('more than the max sequence length 32');
  await expect(data.maxLength).toHaveValue('32');

  // A validation file of one's own, picked with the keyboard-reachable button; then back to a split share.
  await data.region.getByRole('button', { name: 'Use a validation file…' }).focus();
  await data.validationInput.setInputFiles({ name: 'held.jsonl', mimeType: 'application/jsonl', buffer: Buffer.from('{"prompt": "a", "completion": " b"}\n{"prompt": "e", "completion": " f"}\n') });
  await expect(data.validation).toContainText('held.jsonl: 2 read, 2 valid, 0 errors; 1 also in the training file');
  await expect(data.split).toHaveText('3 training, 2 validation (validation file)');
  await tabtune.shot('validation-file');
  await data.region.getByRole('button', { name: 'Split off a share instead' }).click();
  await expect(data.validation).toBeHidden();
  await expect(data.split).toContainText('held out');

  // A CSV whose header names say nothing: no records until the columns are chosen, then they are.
  await data.drop({ name: 'de.csv', bytes: 'frage,antwort\nzwei plus zwei,vier\ndrei plus drei,sechs\neins plus eins,zwei\n' });
  await expect(data.problem).toContainText('Choose the columns');
  await expect(data.problem).toContainText('"frage", "antwort"');
  const columns = data.region.getByTestId('columns-form');
  await expect(columns).toContainText('nothing is trained until you confirm');
  const use = columns.getByRole('button', { name: 'Use these columns' });
  await expect(use).toBeDisabled();
  await columns.getByRole('checkbox', { name: 'frage' }).check();
  await columns.getByLabel('Completion').selectOption('antwort');
  await use.click();
  await expect(data.counts).toContainText('3 read, 3 valid, 0 errors');
  await expect(data.problem).toBeHidden();
  await expect(columns).toContainText('As you chose.');
  await tabtune.shot('csv-columns');
});
