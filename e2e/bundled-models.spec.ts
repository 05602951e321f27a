// tabtune's own bundled models (models/<name>/): each one loads in the page, says what it is, and
// writes text; the time from navigation to "model ready" on a second visit (files cached) is
// measured and reported (never asserted: tests do not assert wall-clock time).
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import type { ModelSummary } from '../src/protocol/messages';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';

const ready = (page: Page): Promise<ModelSummary> => page.evaluate(() => window.__tabtune!.whenModelReady()) as Promise<ModelSummary>;

const bundled = readdirSync(join(REPO_ROOT, 'models'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(REPO_ROOT, 'models', d.name, 'config.json')))
  .map((d) => d.name)
  .sort();

test('the repository bundles tabtune-tiny', () => {
  expect(bundled).toContain('tabtune-tiny');
});

for (const name of bundled) {
  test(`${name} loads, describes itself and writes text`, async ({ tabtune, page, backend }, testInfo) => {
    test.skip(backend !== 'wasm' && name !== 'tabtune-tiny', 'larger models are checked on WASM only (SwiftShader WebGPU is a software GPU)');
    await tabtune.open({ model: name });
    const first = await ready(page);
    expect(first.name).toBe(name);
    expect(first.arch).toBe('llama');
    await expect(tabtune.model.summary).toContainText(name);
    await expect(tabtune.model.summary).toContainText(first.numParams.toLocaleString('en-US'));

    // Second visit: the files come from the cache. Time from navigation start to ready.
    await page.reload();
    const second = await ready(page);
    const pageMs = await page.evaluate(() => performance.now());
    const line = `${name} on ${backend}: second visit, navigation -> model ready ${pageMs.toFixed(0)} ms (worker load ${second.loadMs.toFixed(0)} ms, first visit worker load ${first.loadMs.toFixed(0)} ms)`;
    console.log(`[bundled-models] ${line}`);
    testInfo.annotations.push({ type: 'load time', description: line });

    await tabtune.generate.fill({ prompt: 'The President said that', maxNewTokens: 24, temperature: 0 });
    await tabtune.generate.run();
    const text = (await tabtune.generate.output.textContent()) ?? '';
    console.log(`[bundled-models] ${name} greedy: ${JSON.stringify(text)}`);
    // Words, not byte soup: mostly letters and spaces, several words long.
    expect(text.trim().split(/\s+/).length).toBeGreaterThanOrEqual(5);
    expect((text.match(/[A-Za-z ]/g) ?? []).length / Math.max(1, text.length)).toBeGreaterThan(0.8);
    await tabtune.shot(`${name}-ready`);
  });
}
