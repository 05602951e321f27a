// Issue 18 #9, "a layout that leads", at 1280×800 on the bundled tiny model: a numbered step nav
// (model → data → train → compare → export) that stays on screen and says which step is done and which
// is next, engine details folded away, the loud button being each step's next action (not "Load" for
// the model already loaded), disabled buttons that look disabled, "Choose a file…" within a few key
// presses, and a first-visit hint that goes away for good. axe-core finds no violations on the first
// page nor on the page with data read and a short run finished (light and dark). Screenshots at 1280×800 and 1920×1080
// go to e2e-artifacts/ (the README's docs/layout-*.png are made from the same states by hand).
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { TINY } from './engine';
import { REPO_ROOT } from './golden';
import { ComparePanel } from './pages/ComparePanel';
import { DataPanel } from './pages/DataPanel';
import { ExportPanel } from './pages/ExportPanel';
import type { TabtunePage } from './pages/TabtunePage';
import { TrainPanel } from './pages/TrainPanel';

/** 41 lines: 40 valid records (36 training, 4 validation) and one bad line. */
const DATASET = join(REPO_ROOT, 'e2e/fixtures/planted-bad-line.jsonl');
const STEPS = ['Model', 'Data', 'Train', 'Compare', 'Export'] as const;
/** The layout checks: all reported at once, and quickly (the page is ready when they run). */
const soft = expect.configure({ soft: true, timeout: 5_000 });
/** Actions on the new layout's controls fail fast too (instead of waiting out the test). */
const QUICK = { timeout: 10_000 };

/** axe-core on the whole page; the violations as "rule: targets" lines, so a failure names them. */
async function axeViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).analyze();
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(' | ')}`);
}

/** The step nav and its links, in order. */
function stepNav(page: Page) {
  const nav = page.getByRole('navigation', { name: 'Steps' });
  const link = (name: (typeof STEPS)[number]) => nav.getByRole('link', { name: new RegExp(`^\\d\\s*${name}\\b`) });
  return { nav, link };
}

/** The computed background colour of a control, as "rgb(…)". */
const background = (l: Locator) => l.evaluate((e) => getComputedStyle(e).backgroundColor);
/** The page's accent colour (the loud buttons' background), as "rgb(…)". */
const accent = (page: Page) =>
  page.evaluate(() => {
    const probe = document.createElement('span');
    probe.style.color = 'var(--accent)';
    document.body.append(probe);
    const c = getComputedStyle(probe).color;
    probe.remove();
    return c;
  });

async function viewportShot(tabtune: TabtunePage, name: string): Promise<void> {
  await tabtune.page.mouse.move(0, 0); // no hover highlight in the picture
  await tabtune.page.screenshot({ path: join(tabtune.options.artifactsDir, `${name}.png`) });
}

test('the first page leads: step nav, folded engine, the loud next action, a first-visit hint, no axe violations', async ({ tabtune, page, backend }) => {
  test.skip(backend !== 'wasm', 'layout and accessibility, checked once');
  await page.setViewportSize({ width: 1280, height: 800 });
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  const data = new DataPanel(page);
  const { nav, link } = stepNav(page);

  // The journey's order at a glance, with the model step done and the data step the current one.
  await soft(nav).toBeInViewport();
  for (const name of STEPS) await soft(link(name)).toBeVisible();
  await soft(link('Model')).toContainText('done');
  await soft(link('Data')).toHaveAttribute('aria-current', 'step');
  await soft(link('Train')).toContainText('not yet');

  // Engine details (backend, threads, memory) are folded away but reachable.
  const engine = page.getByRole('group', { name: 'Engine' });
  await soft(engine).toBeVisible();
  await soft(tabtune.backend.select).toBeHidden();

  // The loud button is the next step's, not Load for the model already loaded; disabled buttons look it.
  const color = await accent(page);
  soft(await background(data.chooseFile)).toBe(color);
  const load = tabtune.model.region.getByRole('button', { name: 'Load', exact: true });
  soft(await background(load)).not.toBe(color);
  // Start without data: disabled, and it looks it (no accent colour, a not-allowed cursor).
  const train = new TrainPanel(page);
  await expect(train.start).toBeDisabled();
  soft(await background(train.start)).not.toBe(color);
  soft(await train.start.evaluate((e) => getComputedStyle(e).cursor)).toBe('not-allowed');
  // The other ways to load a model are folded while one is loaded.
  await soft(tabtune.model.urlInput).toBeHidden();

  // The first-visit hint is there.
  const hint = page.getByRole('region', { name: 'Getting started' });
  await soft(hint).toBeVisible();
  await viewportShot(tabtune, 'layout-1280-first-visit');
  await page.screenshot({ path: join(tabtune.options.artifactsDir, 'layout-1280-first-visit-full.png'), fullPage: true });

  const violations = await axeViolations(page);
  soft(violations, violations.join('\n')).toEqual([]);

  // "Choose a file…" within 4 key presses from the top: Tabs, and Enter on a skip link if one comes first.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.mouse.click(2, 2); // focus starts at the top of the document
  let presses = 0;
  let reached = false;
  while (presses < 4 && !reached) {
    await page.keyboard.press('Tab');
    presses++;
    reached = await data.chooseFile.evaluate((e) => e === document.activeElement);
    const skip = await page.evaluate(() => {
      const a = document.activeElement;
      return a instanceof HTMLAnchorElement && /^Skip to/.test(a.textContent ?? '');
    });
    if (!reached && skip && presses < 4) {
      await page.keyboard.press('Enter');
      presses++;
      reached = await data.chooseFile.evaluate((e) => e === document.activeElement);
    }
  }
  soft(reached, `"Choose a file…" focused within 4 key presses (pressed ${presses})`).toBe(true);

  // The nav stays on screen (sticky) and jumps to each section.
  await link('Export').click(QUICK);
  await soft(page.getByRole('region', { name: 'Export', exact: true })).toBeInViewport();
  await soft(nav).toBeInViewport();

  // Dismissed, the hint stays away after a reload.
  await hint.getByRole('button', { name: 'Got it' }).click(QUICK);
  await expect(hint).toBeHidden();
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  await expect(data.chooseFile).toBeVisible();
  await expect(hint).toBeHidden();

  // The engine opens on demand and shows the backend in use.
  await engine.locator(':scope > summary').click(QUICK); // its own summary, not the nested 'Why not a faster backend?'
  await expect(tabtune.backend.select).toBeVisible();
  await expect(tabtune.backend.inUse).toContainText('WASM');
});

test('with data read and a short run done, the next steps lead and axe finds no violations; screenshots at 1280 and 1920', async ({ tabtune, page, backend }) => {
  test.skip(backend !== 'wasm', 'layout and accessibility, checked once');
  await page.setViewportSize({ width: 1280, height: 800 });
  await tabtune.open({ model: TINY });
  await tabtune.whenModelReady();
  const data = new DataPanel(page);
  const train = new TrainPanel(page);
  const { link } = stepNav(page);
  const hint = page.getByRole('region', { name: 'Getting started' });

  await data.pick(DATASET);
  await expect(data.split).toContainText('36 training, 4 validation');
  // The first data load ends the first visit; Start is now the loud button, Choose a file… is not.
  await soft(hint).toBeHidden();
  await soft(link('Data')).toContainText('done');
  await soft(link('Train')).toHaveAttribute('aria-current', 'step');
  const color = await accent(page);
  soft(await background(train.start)).toBe(color);
  soft(await background(data.chooseFile)).not.toBe(color);
  await viewportShot(tabtune, 'layout-1280-data');
  // Under the dataset's line, the way on: one click puts Start on screen.
  await data.region.getByRole('link', { name: 'Next: Train ↓' }).click(QUICK);
  await soft(train.start).toBeInViewport();
  await soft(train.start).toBeEnabled();
  await viewportShot(tabtune, 'layout-1280-next-train');
  const withData = await axeViolations(page);
  soft(withData, withData.join('\n')).toEqual([]);

  await train.preset('Quick');
  await train.advanced({ Steps: 6, 'Batch size': 4, 'Validate every': 6, 'Checkpoint every': 6, 'Warmup steps': 1 });
  await train.whenToStop({ 'Held-out answers generated': 2, 'Forgetting probe size': 0 });
  await train.start.click();
  await expect(train.outcome).toBeVisible({ timeout: 400_000 });
  await soft(link('Train')).toContainText('done');
  await soft(link('Compare')).toHaveAttribute('aria-current', 'step');

  // The page leads on: Train again steps back, "Next: Compare ↓" under the verdict puts Compare's loud button in view.
  await expect(train.start).toHaveText('Train again');
  soft(await background(train.start)).not.toBe(color);
  const compare = new ComparePanel(page);
  await train.outcome.scrollIntoViewIfNeeded();
  await viewportShot(tabtune, 'layout-1280-verdict');
  await train.region.getByRole('link', { name: 'Next: Compare ↓' }).click(QUICK);
  await soft(compare.compareButton).toBeInViewport();
  await viewportShot(tabtune, 'layout-1280-next-compare');
  soft(await background(compare.compareButton)).toBe(color);
  soft(await background(compare.runHeldoutButton)).not.toBe(color);

  // Every panel that uses the model and the run says what it uses, in the same words (issue 18, "one truth").
  const uses = new RegExp(`${TINY} \\+ .+, step 6, adapter on`);
  await soft(page.getByRole('region', { name: 'Generate' }).getByTestId('generate-source')).toContainText(uses);
  await soft(compare.region.getByTestId('compare-source')).toContainText(uses);
  const exportPanel = new ExportPanel(page);
  await soft(exportPanel.region.getByTestId('export-source')).toContainText(uses);
  await soft(train.region.getByTestId('train-source')).toContainText(uses);
  // Export: the adapter is the loud download, the other three are not.
  soft(await background(exportPanel.button('adapter'))).toBe(color);
  for (const b of ['merged', 'metrics', 'recipe'] as const) soft(await background(exportPanel.button(b))).not.toBe(color);
  // The model in plain words; the internals on demand.
  await soft(tabtune.model.summary).toContainText('a small Llama model');
  soft(await tabtune.model.summary.innerText()).not.toContain('layers ×'); // folded under "details"
  await soft(tabtune.model.summary).toContainText('layers ×');

  await page.evaluate(() => window.scrollTo(0, 0));
  await viewportShot(tabtune, 'layout-1280-trained');
  await page.screenshot({ path: join(tabtune.options.artifactsDir, 'layout-1280-trained-full.png'), fullPage: true });
  const trained = await axeViolations(page);
  soft(trained, trained.join('\n')).toEqual([]);
  // The dark scheme too (its own colours: contrast is checked again).
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await axeViolations(page);
  soft(dark, dark.join('\n')).toEqual([]);
  await viewportShot(tabtune, 'layout-1280-trained-dark');
  await page.emulateMedia({ colorScheme: 'light' });

  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await viewportShot(tabtune, 'layout-1920-trained');
  await page.screenshot({ path: join(tabtune.options.artifactsDir, 'layout-1920-trained-full.png'), fullPage: true });
});
