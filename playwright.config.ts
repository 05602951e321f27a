// Browser tests against the production build (vite build + vite preview), in Debian's chromium
// (Playwright's own browser download is not used). Two projects pick the backend through the
// page's ?backend= parameter: `wasm` (threaded, cross-origin isolated) and `webgpu` (SwiftShader
// in headless chromium, so slow but real WebGPU).
import { defineConfig } from '@playwright/test';
import type { TabtuneOptions } from './e2e/fixtures';

const CHROMIUM = process.env.TABTUNE_CHROMIUM || '/usr/bin/chromium';
/** TABTUNE_E2E_PORT moves both servers (preview on it, fixtures on it + 1), e.g. for a second checkout. */
export const PREVIEW_PORT = Number(process.env.TABTUNE_E2E_PORT || 4317);
export const FIXTURE_PORT = PREVIEW_PORT + 1;

const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export default defineConfig<TabtuneOptions>({
  testDir: 'e2e',
  outputDir: 'test-results',
  // The machine this runs on may have 2 cores and no GPU: one test at a time, generous limits.
  workers: 1,
  fullyParallel: false,
  timeout: 300_000,
  expect: { timeout: 30_000 },
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  use: {
    baseURL: `http://localhost:${PREVIEW_PORT}`,
    fixtureOrigin: `http://localhost:${FIXTURE_PORT}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  webServer: [
    {
      // Always a fresh build: a server left running from earlier would test stale code.
      command: `node scripts/prepare-models.mjs && npm run build && npx vite preview --port ${PREVIEW_PORT} --strictPort`,
      url: `http://localhost:${PREVIEW_PORT}/`,
      timeout: 300_000,
      reuseExistingServer: false,
      stdout: 'pipe',
    },
    {
      command: `node e2e/fixture-server.mjs ${FIXTURE_PORT}`,
      url: `http://localhost:${FIXTURE_PORT}/health`,
      timeout: 30_000,
      reuseExistingServer: false,
    },
  ],
  projects: [
    {
      name: 'wasm',
      use: {
        backend: 'wasm',
        // tfjs-backend-wasm caps its pool at hardwareConcurrency / 2; ask for 2 so the threaded
        // path (the one minification used to break) is really exercised even on a 2-core machine.
        wasmThreads: 2,
        launchOptions: { executablePath: CHROMIUM, args: chromiumArgs },
      },
    },
    {
      name: 'webgpu',
      use: {
        backend: 'webgpu',
        launchOptions: { executablePath: CHROMIUM, args: [...chromiumArgs, '--enable-unsafe-webgpu'] },
      },
    },
  ],
});
