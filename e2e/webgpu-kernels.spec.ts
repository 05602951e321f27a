// tabtune's fused WebGPU kernels (src/kernels/webgpu: RMSNorm, SwiGLU, RoPE, attention, cross-entropy) against
// the plain TF.js ops on the same backend, values and gradients to 1e-4, and one LoRA training step of the
// bundled tabtune-tiny both ways. Needs WebGPU: the webgpu project's browser (headless Chromium with
// --enable-unsafe-webgpu offers SwiftShader, a software adapter: slow, but the WGSL runs as on a GPU). The
// check page (e2e/webgpu-kernels/) is served by a Vite dev server of the project's own config, started here.
import { createServer as netServer } from 'node:net';
import { resolve } from 'node:path';
import { createServer, type ViteDevServer } from 'vite';
import { expect, test } from './fixtures';
import { REPO_ROOT } from './golden';
import type { KernelCheck, ModelCheck } from './webgpu-kernels/page';

const TOL = 1e-4;

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = netServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface KernelApi {
  start(): Promise<{ backend: string; adapter: string }>;
  kernelChecks(): Promise<KernelCheck[]>;
  modelCheck(url: string): Promise<ModelCheck>;
}

test.describe('fused WebGPU kernels', () => {
  test.skip(({ backend }) => backend !== 'webgpu', 'needs WebGPU: runs in the webgpu project only');
  // SwiftShader compiles every pipeline in software and runs it on the CPU.
  test.setTimeout(600_000);
  let server: ViteDevServer | null = null;
  let origin = '';

  test.beforeAll(async ({ backend }) => {
    if (backend !== 'webgpu') return;
    const port = await freePort();
    server = await createServer({
      configFile: resolve(REPO_ROOT, 'vite.config.ts'),
      root: REPO_ROOT,
      logLevel: 'warn',
      clearScreen: false,
      server: { port, strictPort: true, host: '127.0.0.1', hmr: false },
      optimizeDeps: { entries: ['e2e/webgpu-kernels/index.html'] },
    });
    await server.listen();
    origin = `http://127.0.0.1:${port}`;
  });
  test.afterAll(async () => {
    await server?.close();
  });

  test('each kernel equals the TF.js ops (values and gradients to 1e-4); a LoRA step of tabtune-tiny gives the same loss and gradients', async ({ page }, testInfo) => {
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.log(`[${testInfo.project.name} console.${m.type()}] ${m.text()}`);
    });
    await page.goto(`${origin}/e2e/webgpu-kernels/index.html`);
    await page.waitForFunction(() => 'tabtuneKernels' in globalThis, null, { timeout: 120_000 });
    const started = await page.evaluate(() => (globalThis as unknown as { tabtuneKernels: KernelApi }).tabtuneKernels.start());
    console.log(`[webgpu kernels] backend ${started.backend}, adapter ${started.adapter}`);
    expect(started.backend).toBe('webgpu');

    const checks = await page.evaluate(() => (globalThis as unknown as { tabtuneKernels: KernelApi }).tabtuneKernels.kernelChecks());
    for (const c of checks) console.log(`[webgpu kernels] ${c.name}: value ${c.value.toExponential(2)}, grads ${c.grads.map((g) => g.toExponential(2)).join(' ')} (largest |TF.js| ${c.scale.toFixed(2)}, leaked ${c.leaked}, WGSL programs off/on ${c.programs.join('/')})`);
    for (const c of checks) {
      expect.soft(c.value, `${c.name}: value`).toBeLessThan(TOL);
      c.grads.forEach((g, i) => expect.soft(g, `${c.name}: gradient ${i}`).toBeLessThan(TOL));
      expect.soft(c.scale, `${c.name}: a non-trivial comparison`).toBeGreaterThan(0.1);
      expect.soft(c.leaked, `${c.name}: tensors left`).toBe(0);
      expect.soft(c.programs[0], `${c.name}: the TF.js path runs no tabtune program`).toBe(0);
      expect.soft(c.programs[1], `${c.name}: the fused path runs tabtune's programs`).toBeGreaterThan(0);
    }

    const m = await page.evaluate((url) => (globalThis as unknown as { tabtuneKernels: KernelApi }).tabtuneKernels.modelCheck(url), `${origin}/models/tabtune-tiny/`);
    console.log(`[webgpu kernels] ${m.name}: loss fused ${m.loss[0]} vs TF.js ${m.loss[1]}, gradients max diff ${m.grads.toExponential(2)} (largest ${m.scale.toExponential(2)}), numTensors over steps ${m.numTensors.join(' ')}, WGSL programs off/on ${m.programs.join('/')}; the same step again: gradients differ by ${m.repeat[0].toExponential(2)} fused, ${m.repeat[1].toExponential(2)} on TF.js's ops`);
    expect(Math.abs(m.loss[0] - m.loss[1])).toBeLessThan(TOL);
    expect(m.grads).toBeLessThan(TOL);
    expect(m.scale).toBeGreaterThan(1e-3);
    expect(m.programs[0]).toBe(0);
    // per layer: 2 RMSNorm, 2 RoPE, attention, SwiGLU forward and backward; the final norm; the cross-entropy
    expect(m.programs[1]).toBeGreaterThan(4 * 6);
    expect(new Set(m.numTensors).size, `numTensors flat across fused steps: ${m.numTensors.join(' ')}`).toBe(1);
  });
});
