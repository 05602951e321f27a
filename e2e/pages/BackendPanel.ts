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
  /** Under "Why not a faster backend?": the measured training step per backend. */
  readonly why: Locator;
  readonly timing: Locator;
  readonly timingSummary: Locator;
  readonly measureAgain: Locator;
  readonly timeSoftwareGpu: Locator;

  constructor(page: Page) {
    this.engine = page.getByRole('group', { name: 'Engine' });
    this.region = page.getByRole('region', { name: 'Backend', includeHidden: true });
    this.select = this.region.getByLabel('Compute backend');
    this.status = this.region.getByTestId('backend-status');
    this.inUse = this.region.getByTestId('backend-name');
    this.reasons = this.region.getByRole('group');
    this.why = this.region.getByRole('group').filter({ hasText: 'Why not a faster backend?' });
    this.timing = this.region.getByTestId('backend-timing');
    this.timingSummary = this.timing.getByTestId('backend-timing-summary');
    this.measureAgain = this.timing.getByRole('button', { name: /^Measure (again|backends)$/ });
    this.timeSoftwareGpu = this.timing.getByRole('checkbox', { name: 'Also time the software GPU (slow)' });
  }

  /** The timing table's row of one backend (its status in data-status). */
  timingRow(backend: 'webgpu' | 'wasm' | 'cpu'): Locator {
    return this.timing.locator(`tr[data-backend="${backend}"]`);
  }

  /** A row's measured tokens/s (null when it has none). */
  async tokensPerS(backend: 'webgpu' | 'wasm' | 'cpu'): Promise<number | null> {
    const v = await this.timingRow(backend).getByTestId('timing-rate').getAttribute('data-tokens-per-s');
    return v === null ? null : Number(v);
  }

  /** Opens the Engine details and "Why not a faster backend?". */
  async openWhy(): Promise<void> {
    await this.open();
    if (!(await this.why.evaluate((d) => (d as HTMLDetailsElement).open))) await this.why.getByText('Why not a faster backend?').click();
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
