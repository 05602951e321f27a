// 'auto' never picks a software GPU: in the webgpu project's browser (headless Chromium with
// --enable-unsafe-webgpu and no GPU, which offers SwiftShader) ?backend=auto runs on WASM and says why
// under "Why not a faster backend?", and ?backend=webgpu still uses WebGPU, with the same note as a warning.
// With Auto a real training step of the loaded model is timed on each backend once per model and device:
// here WASM is measured and WebGPU (SwiftShader) skipped, the figures survive a reload (stored, not measured
// again), and with the software GPU allowed both are measured.
// On a machine with a real GPU these checks do not hold, and the tests skip (the adapter is logged).
import { expect, test } from './fixtures';
import { TINY } from './engine';
import type { TabtunePage } from './pages/TabtunePage';

/** The adapter Chromium offers here, as the page sees it. */
async function adapterInfo(tabtune: TabtunePage): Promise<{ vendor: string; architecture: string; fallback: boolean | null } | null> {
  return tabtune.page.evaluate(async () => {
    type Info = { vendor?: string; architecture?: string; isFallbackAdapter?: boolean };
    const gpu = (navigator as { gpu?: { requestAdapter(o?: object): Promise<{ info?: Info; isFallbackAdapter?: boolean } | null> } }).gpu;
    const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return null;
    return { vendor: adapter.info?.vendor ?? '', architecture: adapter.info?.architecture ?? '', fallback: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? null };
  });
}

/** Opens the backend panel and its "Why not a faster backend?" details, and returns the reasons' text. */
async function shownReasons(tabtune: TabtunePage): Promise<string> {
  await tabtune.backend.open();
  const why = tabtune.backend.region.getByRole('group').filter({ hasText: 'Why not a faster backend?' });
  await why.getByText('Why not a faster backend?').click();
  await expect(why.getByRole('listitem').first()).toBeVisible();
  return (await why.getByRole('listitem').allTextContents()).join('\n');
}

/** tf.memory().numTensors in the worker when the latest time-backends started and ended. */
async function timingTensors(tabtune: TabtunePage): Promise<{ before: number; after: number }> {
  return tabtune.page.evaluate(() => window.__tabtune!.state().backend.timing.report!.tensors);
}

const AUTO_REASON = /^WebGPU: the only adapter is a software renderer \(SwiftShader\), typically ~20x slower than WASM; using WASM\. Pick WebGPU explicitly to try it anyway\.$/m;
const EXPLICIT_WARNING = /^WebGPU: the only adapter is a software renderer \(SwiftShader\), typically ~20x slower than WASM; using it because WebGPU was picked explicitly \(Auto would use WASM\)\.$/m;

test.describe('backend choice with a software GPU', () => {
  test.beforeEach(async ({ tabtune }, testInfo) => {
    test.skip(testInfo.project.name !== 'webgpu', 'needs the webgpu project\'s browser (WebGPU enabled, SwiftShader offered)');
    await tabtune.page.goto('/models/index.json'); // a page of the origin that does not start the app
    const info = await adapterInfo(tabtune);
    console.log(`[${testInfo.project.name}] adapter offered: ${JSON.stringify(info)}`);
    test.skip(!info || !/swiftshader/i.test(`${info.vendor} ${info.architecture}`), 'this browser offers no SwiftShader adapter (a real GPU or none)');
  });

  test("?backend=auto runs on WASM and says the software renderer is why", async ({ tabtune }, testInfo) => {
    await tabtune.open({ backend: 'auto', threads: '2', model: TINY });
    await tabtune.whenModelReady();
    expect((await tabtune.getBackend()).backend).toBe('wasm');
    await expect(tabtune.backend.inUse).toContainText('WASM');
    const reasons = await shownReasons(tabtune);
    console.log(`[${testInfo.project.name}] auto: ${await tabtune.backend.inUse.textContent()}; reasons:\n${reasons}`);
    expect(reasons).toMatch(AUTO_REASON);
    await tabtune.shot('auto-wasm-reason');
  });

  test('?backend=webgpu uses WebGPU anyway and shows the warning; measuring times it against WASM and keeps it', async ({ tabtune }, testInfo) => {
    await tabtune.open({ backend: 'webgpu', model: TINY });
    await tabtune.whenModelReady();
    expect((await tabtune.getBackend()).backend).toBe('webgpu');
    await expect(tabtune.backend.inUse).toHaveText('WebGPU');
    const reasons = await shownReasons(tabtune);
    console.log(`[${testInfo.project.name}] webgpu: reasons:\n${reasons}`);
    expect(reasons).toMatch(EXPLICIT_WARNING);
    await tabtune.shot('webgpu-warning');

    // An explicit choice is not timed by itself; asked, the backend in use is timed (software or not) against WASM,
    // whose weights are built for the occasion and freed, and the explicit choice stays.
    const panel = tabtune.backend;
    await expect(panel.measureAgain).toHaveText('Measure backends');
    await panel.measureAgain.click();
    await expect(panel.timingSummary).toBeVisible({ timeout: 240_000 });
    await expect(panel.timingRow('webgpu')).toHaveAttribute('data-status', /^(measured|stopped)$/);
    await expect(panel.timingRow('wasm')).toHaveAttribute('data-status', 'measured');
    expect(await panel.tokensPerS('wasm')).toBeGreaterThan(0);
    console.log(`[${testInfo.project.name}] explicit webgpu, measured: ${(await panel.timing.locator('tbody').innerText()).replace(/\s+/g, ' ')} | ${await panel.timingSummary.innerText()}`);
    expect((await tabtune.getBackend()).backend).toBe('webgpu');
    await expect(panel.inUse).toHaveText('WebGPU');
    if ((await panel.timingRow('wasm').getAttribute('data-status')) === 'measured' && /WASM \(picked\)/.test(await panel.timingRow('wasm').innerText())) {
      await expect(panel.timingSummary).toContainText('kept WebGPU: WebGPU was picked explicitly (Auto would use WASM)');
    }
    const tensors = await timingTensors(tabtune);
    expect(tensors.after).toBe(tensors.before);
  });

  test('Auto times a training step on WASM, skips the software GPU, and reads the figures back after a reload', async ({ tabtune }, testInfo) => {
    await tabtune.open({ backend: 'auto', threads: '2', model: TINY });
    await tabtune.whenModelReady();
    const panel = tabtune.backend;
    await panel.openWhy();
    await expect(panel.timingRow('wasm')).toHaveAttribute('data-status', 'measured', { timeout: 120_000 });
    await expect(panel.timingRow('webgpu')).toHaveAttribute('data-status', 'skipped');
    await expect(panel.timingRow('webgpu')).toContainText('skipped: software adapter (SwiftShader)');
    const wasm = await panel.tokensPerS('wasm');
    expect(wasm).not.toBeNull();
    expect(Number.isFinite(wasm) && wasm! > 0).toBe(true);
    expect(await panel.tokensPerS('webgpu')).toBeNull();
    await expect(panel.timingRow('wasm')).toContainText(/^WASM \(picked\)[\d,.]+ tokens\/s/);
    await expect(panel.timingSummary).toContainText('Faster here: WASM (in use).');
    await expect(panel.timingSummary).not.toContainText('stored');
    console.log(`[${testInfo.project.name}] measured: ${(await panel.timing.locator('tbody').innerText()).replace(/\s+/g, ' ')} | ${await panel.timingSummary.innerText()}`);
    expect((await tabtune.getBackend()).backend).toBe('wasm');
    await panel.timing.scrollIntoViewIfNeeded();
    await tabtune.shot('auto-timing');
    await panel.region.screenshot({ path: testInfo.outputPath('backend-panel-auto.png') });

    // A reload finds the stored figures for this model and device: the same number, not measured again.
    await tabtune.page.reload();
    await tabtune.whenModelReady();
    await panel.openWhy();
    await expect(panel.timingSummary).toContainText('(stored for this model and device)', { timeout: 60_000 });
    expect(await panel.tokensPerS('wasm')).toBe(wasm);
  });

  test('with the software GPU allowed, Measure again times a step on both backends and Auto stays on WASM', async ({ tabtune }, testInfo) => {
    await tabtune.open({ backend: 'auto', threads: '2', model: TINY });
    await tabtune.whenModelReady();
    const panel = tabtune.backend;
    await panel.openWhy();
    await expect(panel.timingSummary).toBeVisible({ timeout: 120_000 });
    await panel.timeSoftwareGpu.check();
    await panel.measureAgain.click();
    // The earlier figures stay on screen while the new ones are measured.
    await expect(panel.timing.getByTestId('backend-timing-progress')).toBeVisible();
    await expect(panel.timing.getByTestId('backend-timing-progress')).toBeHidden({ timeout: 240_000 });
    await expect(panel.timingRow('webgpu')).toHaveAttribute('data-status', /^(measured|stopped)$/);
    await expect(panel.timingRow('wasm')).toHaveAttribute('data-status', 'measured');
    const rows = (await panel.timing.locator('tbody').innerText()).replace(/\s+/g, ' ');
    console.log(`[${testInfo.project.name}] with SwiftShader: ${rows} | ${await panel.timingSummary.innerText()}`);
    // Every figure shown is a number: measured tokens/s, or the bound a stopped backend is slower than.
    await expect(panel.timingRow('webgpu').getByTestId('timing-rate')).toHaveText(/^(<\s)?[\d,.]+ tokens\/s$/);
    expect(await panel.tokensPerS('wasm')).toBeGreaterThan(0);
    // Auto never moves to a software adapter, whatever it measured; the model rebuilt on WebGPU was freed there.
    expect((await tabtune.getBackend()).backend).toBe('wasm');
    const tensors = await timingTensors(tabtune);
    expect(tensors.after).toBe(tensors.before);
    await expect(panel.timingSummary).not.toContainText('stored');
    await panel.timing.scrollIntoViewIfNeeded();
    await tabtune.shot('timing-with-swiftshader');
    await panel.region.screenshot({ path: testInfo.outputPath('backend-panel-swiftshader.png') });
  });
});

test.describe('backend timing without a WebGPU adapter', () => {
  test('Auto measures WASM and says WebGPU is not available', async ({ tabtune }, testInfo) => {
    test.skip(testInfo.project.name !== 'wasm', "needs the wasm project's browser (WebGPU not enabled)");
    await tabtune.page.goto('/models/index.json');
    const info = await adapterInfo(tabtune);
    test.skip(info !== null, `this browser offers a WebGPU adapter (${JSON.stringify(info)})`);
    await tabtune.open({ backend: 'auto', model: TINY });
    await tabtune.whenModelReady();
    const panel = tabtune.backend;
    await panel.openWhy();
    await expect(panel.timingRow('wasm')).toHaveAttribute('data-status', 'measured', { timeout: 120_000 });
    await expect(panel.timingRow('webgpu')).toHaveAttribute('data-status', 'skipped');
    await expect(panel.timingRow('webgpu')).toContainText(/skipped: not available \(.+\)/);
    expect(await panel.tokensPerS('wasm')).toBeGreaterThan(0);
    await expect(panel.timingSummary).toContainText('Faster here: WASM (in use).');
    console.log(`[${testInfo.project.name}] measured: ${(await panel.timing.locator('tbody').innerText()).replace(/\s+/g, ' ')}`);
  });
});
