// The compute backend, inside the Model panel's "Engine" details (folded by default): read while folded
// (the region is found hidden too), opened before a backend is chosen.
import type { Locator, Page } from '@playwright/test';

export class BackendPanel {
  /** The folded "Engine" details that hold the backend picker and the memory estimate. */
  readonly engine: Locator;
  readonly region: Locator;
  readonly select: Locator;
  readonly status: Locator;
  readonly inUse: Locator;
  readonly reasons: Locator;

  constructor(page: Page) {
    this.engine = page.getByRole('group', { name: 'Engine' });
    this.region = page.getByRole('region', { name: 'Backend', includeHidden: true });
    this.select = this.region.getByLabel('Compute backend');
    this.status = this.region.getByTestId('backend-status');
    this.inUse = this.region.getByTestId('backend-name');
    this.reasons = this.region.getByRole('group');
  }

  /** Unfolds the Engine details (a no-op when open). */
  async open(): Promise<void> {
    if (!(await this.engine.evaluate((d) => (d as HTMLDetailsElement).open))) await this.engine.locator(':scope > summary').click();
  }

  async choose(label: 'Auto (fastest that works)' | 'WebGPU' | 'WASM' | 'CPU (plain JavaScript)'): Promise<void> {
    await this.open();
    await this.select.selectOption({ label });
  }
}
