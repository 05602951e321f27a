import type { Locator, Page } from '@playwright/test';

export class ModelPanel {
  readonly region: Locator;
  readonly catalog: Locator;
  readonly urlInput: Locator;
  readonly loadFromUrlButton: Locator;
  readonly progress: Locator;
  readonly summary: Locator;
  readonly error: Locator;
  readonly noModel: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Model' });
    this.catalog = this.region.getByLabel('Available models');
    this.urlInput = this.region.getByLabel('Model URL or Hugging Face id');
    this.loadFromUrlButton = this.region.getByRole('button', { name: 'Load from URL' });
    this.progress = this.region.getByRole('progressbar');
    this.summary = this.region.getByTestId('model-summary');
    this.error = this.region.getByRole('alert');
    this.noModel = this.region.getByTestId('no-model');
  }

  async loadFromUrl(url: string): Promise<void> {
    await this.urlInput.fill(url);
    await this.loadFromUrlButton.click();
  }
}
