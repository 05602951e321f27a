import { expect, type Locator, type Page } from '@playwright/test';

export class GeneratePanel {
  readonly region: Locator;
  readonly prompt: Locator;
  readonly maxNewTokens: Locator;
  readonly temperature: Locator;
  readonly generateButton: Locator;
  readonly stopButton: Locator;
  readonly output: Locator;
  readonly continuation: Locator;
  readonly stats: Locator;
  readonly error: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Generate' });
    this.prompt = this.region.getByLabel('Prompt');
    this.maxNewTokens = this.region.getByLabel('Max new tokens');
    this.temperature = this.region.getByLabel('Temperature');
    this.generateButton = this.region.getByRole('button', { name: 'Generate' });
    this.stopButton = this.region.getByRole('button', { name: 'Stop' });
    this.output = this.region.getByTestId('output');
    this.continuation = this.region.getByTestId('continuation');
    this.stats = this.region.getByTestId('generation-stats');
    this.error = this.region.getByRole('alert');
  }

  async fill(opts: { prompt: string; maxNewTokens: number; temperature: number }): Promise<void> {
    await this.prompt.fill(opts.prompt);
    await this.maxNewTokens.fill(String(opts.maxNewTokens));
    await this.temperature.fill(String(opts.temperature));
  }

  /** Clicks Generate and waits for the run to finish; returns the stats line. */
  async run(timeout = 240_000): Promise<string> {
    await this.generateButton.click();
    await expect(this.stats).toContainText('finished:', { timeout });
    return (await this.stats.textContent()) ?? '';
  }
}
