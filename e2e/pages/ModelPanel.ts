import type { Locator, Page } from '@playwright/test';

export class ModelPanel {
  readonly region: Locator;
  /** "Another model": the URL form and the folder picker, folded while a model is loaded. */
  readonly more: Locator;
  readonly catalog: Locator;
  readonly urlInput: Locator;
  readonly loadFromUrlButton: Locator;
  readonly progress: Locator;
  readonly summary: Locator;
  readonly error: Locator;
  readonly noModel: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Model' });
    this.more = this.region.getByRole('group', { name: 'Another model', includeHidden: true });
    this.catalog = this.region.getByLabel('Available models');
    this.urlInput = this.region.getByLabel('Model URL or Hugging Face id');
    this.loadFromUrlButton = this.region.getByRole('button', { name: 'Load from URL' });
    this.progress = this.region.getByRole('progressbar');
    this.summary = this.region.getByTestId('model-summary');
    this.error = this.region.getByRole('alert');
    this.noModel = this.region.getByTestId('no-model');
  }

  /** Unfolds "Another model" (a no-op when open). */
  async openMore(): Promise<void> {
    if (!(await this.more.evaluate((d) => (d as HTMLDetailsElement).open))) await this.more.locator('summary').click();
  }

  async loadFromUrl(url: string): Promise<void> {
    await this.openMore();
    await this.urlInput.fill(url);
    await this.loadFromUrlButton.click();
  }
}
