import { test as base } from '@playwright/test';
import { join } from 'node:path';
import { REPO_ROOT } from './golden';
import { TabtunePage } from './pages/TabtunePage';

export interface TabtuneOptions {
  /** ?backend= for the page: each Playwright project sets its own. */
  backend: 'auto' | 'webgpu' | 'wasm' | 'cpu';
  /** ?threads= for the WASM backend (undefined: the library's default). */
  wasmThreads: number | undefined;
  /** Origin of e2e/fixture-server.mjs (a second origin serving model folders). */
  fixtureOrigin: string;
}

export const test = base.extend<TabtuneOptions & { tabtune: TabtunePage }>({
  backend: ['wasm', { option: true }],
  wasmThreads: [undefined, { option: true }],
  fixtureOrigin: ['http://localhost:4318', { option: true }],
  tabtune: async ({ page, backend, wasmThreads }, use, testInfo) => {
    // Worker console errors are the first clue when a backend fails: keep them in the report.
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') console.log(`[${testInfo.project.name} console.${m.type()}] ${m.text()}`);
    });
    page.on('pageerror', (e) => console.log(`[${testInfo.project.name} pageerror] ${e.message}`));
    const slug = testInfo.titlePath.slice(1).join(' ').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
    const artifactsDir = join(REPO_ROOT, 'e2e-artifacts', testInfo.project.name, slug);
    await use(new TabtunePage(page, { backend, wasmThreads, artifactsDir }));
  },
});

export { expect } from '@playwright/test';
