// The studio's Report panel (src/ui/report/ReportPanel.tsx): shows the run report of the selected run or
// checkpoint, and downloads the card (README.md) and the loss curve (PNG).
import { readFile } from 'node:fs/promises';
import type { Locator, Page } from '@playwright/test';

export class ReportPanel {
  readonly region: Locator;
  readonly show: Locator;
  readonly hide: Locator;
  readonly body: Locator;
  readonly curve: Locator;
  readonly errors: Locator;

  constructor(private readonly page: Page) {
    this.region = page.getByRole('region', { name: 'Report', exact: true });
    this.show = this.region.getByRole('button', { name: 'Show the report' });
    this.hide = this.region.getByRole('button', { name: 'Hide the report' });
    this.body = this.region.getByTestId('report-body');
    this.curve = this.region.getByTestId('report-curve');
    this.errors = this.region.getByRole('alert');
  }

  /** A section of the report by its id (base-model, data, method, training, evaluation, checkpoint, loss-curve, load, reproduce, license). */
  section(id: string): Locator {
    return this.region.getByTestId(`report-${id}`);
  }

  /** The value of a fact (a dt/dd pair) in a section. */
  fact(section: string, label: string): Locator {
    return this.section(section).locator('dt', { hasText: new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }).locator('xpath=following-sibling::dd[1]');
  }

  /** Focuses a download button and presses Enter (the keyboard path); returns the file the browser saved. */
  async download(which: 'card' | 'curve', timeout = 60_000): Promise<{ filename: string; bytes: Uint8Array }> {
    const button = this.region.getByRole('button', { name: which === 'card' ? 'Download the card (README.md)' : 'Download the loss curve (PNG)' });
    await button.focus();
    const [download] = await Promise.all([this.page.waitForEvent('download', { timeout }), this.page.keyboard.press('Enter')]);
    return { filename: download.suggestedFilename(), bytes: new Uint8Array(await readFile(await download.path())) };
  }
}
