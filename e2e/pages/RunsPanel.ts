// The Runs panel (every stored run, storage use) and the resume banner shown after a reload.
import type { Locator, Page } from '@playwright/test';

export class RunsPanel {
  readonly region: Locator;
  readonly items: Locator;
  readonly storage: Locator;
  readonly banner: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Runs' });
    this.items = this.region.getByTestId('run');
    this.storage = this.region.getByTestId('storage');
    this.banner = page.getByTestId('resume-banner');
  }

  run(name: string): Locator {
    return this.items.filter({ has: this.region.page().getByText(name, { exact: true }) });
  }

  async open(name: string): Promise<void> {
    await this.run(name).getByRole('button', { name: `Open ${name}` }).click();
  }

  async resume(name: string): Promise<void> {
    await this.run(name).getByRole('button', { name: `Resume ${name}` }).click();
  }

  async rename(name: string, to: string): Promise<void> {
    // The name turns into a text field: find the row by its run id from here on.
    const id = await this.run(name).getAttribute('data-run-id');
    const row = this.region.locator(`[data-testid="run"][data-run-id="${id}"]`);
    await row.getByRole('button', { name: `Rename ${name}` }).click();
    await row.getByLabel(`New name for ${name}`).fill(to);
    await row.getByRole('button', { name: 'Save' }).click();
  }

  async remove(name: string): Promise<void> {
    const row = this.run(name);
    await row.getByRole('button', { name: `Delete ${name}` }).click();
    await row.getByRole('button', { name: `Really delete ${name}` }).click();
  }
}
