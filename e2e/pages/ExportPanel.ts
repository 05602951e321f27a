// The studio's Export panel (src/ui/export/ExportPanel.tsx): four downloads, each a button.
import { readFile } from 'node:fs/promises';
import type { Locator, Page } from '@playwright/test';

export type ExportButton = 'adapter' | 'merged' | 'metrics' | 'recipe';

const BUTTONS: Record<ExportButton, string> = {
  adapter: 'Download the adapter (.zip)',
  merged: 'Download the merged model (.zip)',
  metrics: 'Download the metrics (.csv)',
  recipe: 'Download the recipe (.zip)',
};

export class ExportPanel {
  readonly region: Locator;
  readonly target: Locator;
  readonly empty: Locator;
  readonly errors: Locator;

  constructor(private readonly page: Page) {
    this.region = page.getByRole('region', { name: 'Export', exact: true });
    this.target = this.region.getByTestId('export-target');
    this.empty = this.region.getByTestId('export-empty');
    this.errors = this.region.getByRole('alert');
  }

  button(which: ExportButton): Locator {
    return this.region.getByRole('button', { name: BUTTONS[which] });
  }

  /** Clicks a download button and returns the file the browser saved. */
  async download(which: ExportButton, timeout = 300_000): Promise<{ filename: string; bytes: Uint8Array }> {
    const [download] = await Promise.all([this.page.waitForEvent('download', { timeout }), this.button(which).click()]);
    const path = await download.path();
    return { filename: download.suggestedFilename(), bytes: new Uint8Array(await readFile(path)) };
  }
}
