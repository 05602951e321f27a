// The Checkpoints panel: the timeline of a run's checkpoints and what can be done with each.
import type { Locator, Page } from '@playwright/test';

export class CheckpointsPanel {
  readonly region: Locator;
  readonly items: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Checkpoints' });
    this.items = this.region.getByTestId('checkpoint');
  }

  item(step: number): Locator {
    return this.region.locator(`[data-testid="checkpoint"][data-step="${step}"]`);
  }

  async steps(): Promise<number[]> {
    return (await this.items.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-step'))))).filter(Number.isFinite);
  }

  best(): Locator {
    return this.region.locator('[data-testid="checkpoint"].best');
  }

  async select(step: number): Promise<void> {
    await this.item(step).getByRole('button', { name: new RegExp(`^Checkpoint at step ${step}\\b`) }).click();
  }

  async pin(step: number): Promise<void> {
    await this.item(step).getByRole('button', { name: `Pin step ${step}` }).click();
  }

  /** Rewind: names the new branch (or keeps the suggested name) and starts it. */
  async rewind(step: number, name?: string): Promise<void> {
    await this.item(step).getByRole('button', { name: `Continue training from step ${step} as a new branch` }).click();
    const form = this.item(step).getByRole('form', { name: `New branch from step ${step}` });
    if (name !== undefined) await form.getByLabel('Name of the new branch').fill(name);
    await form.getByRole('button', { name: 'Start branch' }).click();
  }

  async remove(step: number): Promise<void> {
    await this.item(step).getByRole('button', { name: `Delete step ${step}` }).click();
    await this.item(step).getByRole('button', { name: `Really delete step ${step}` }).click();
  }
}
