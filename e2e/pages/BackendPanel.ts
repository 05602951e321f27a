import type { Locator, Page } from '@playwright/test';

export class BackendPanel {
  readonly region: Locator;
  readonly select: Locator;
  readonly status: Locator;
  readonly inUse: Locator;
  readonly reasons: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Backend' });
    this.select = this.region.getByLabel('Compute backend');
    this.status = this.region.getByTestId('backend-status');
    this.inUse = this.region.getByTestId('backend-name');
    this.reasons = this.region.getByRole('group');
  }

  async choose(label: 'Auto (fastest that works)' | 'WebGPU' | 'WASM' | 'CPU (plain JavaScript)'): Promise<void> {
    await this.select.selectOption({ label });
  }
}
