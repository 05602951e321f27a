// The studio's Compare panel, seen through roles and labels (src/ui/compare/ComparePanel.tsx).
import { expect, type Locator, type Page } from '@playwright/test';

export class ComparePanel {
  readonly region: Locator;
  readonly target: Locator;
  readonly empty: Locator;
  readonly prompt: Locator;
  readonly trainingFormat: Locator;
  readonly maxNewTokens: Locator;
  readonly temperature: Locator;
  readonly topK: Locator;
  readonly topP: Locator;
  readonly seed: Locator;
  readonly strength: Locator;
  readonly compareButton: Locator;
  readonly stopButton: Locator;
  readonly baseOutput: Locator;
  readonly tunedOutput: Locator;
  readonly baseContinuation: Locator;
  readonly tunedContinuation: Locator;
  readonly baseStats: Locator;
  readonly tunedStats: Locator;
  readonly runHeldoutButton: Locator;
  readonly cancelHeldoutButton: Locator;
  readonly heldoutProgress: Locator;
  readonly heldoutCancelled: Locator;
  readonly totals: Locator;
  /** Plain text: "held-out perplexity: base X → tuned Y". */
  readonly perplexity: Locator;
  readonly table: Locator;
  readonly rows: Locator;
  readonly onlyMismatches: Locator;
  readonly errors: Locator;

  constructor(page: Page) {
    this.region = page.getByRole('region', { name: 'Compare', exact: true });
    const r = this.region;
    this.target = r.getByTestId('compare-target');
    this.empty = r.getByTestId('compare-empty');
    this.prompt = r.getByLabel('Prompt for both models');
    this.trainingFormat = r.getByLabel('Write the prompt as in training');
    this.maxNewTokens = r.getByLabel('Max new tokens');
    this.temperature = r.getByLabel('Temperature');
    this.topK = r.getByLabel('Top-k');
    this.topP = r.getByLabel('Top-p');
    this.seed = r.getByLabel('Seed');
    this.strength = r.getByRole('slider', { name: 'Adapter strength' });
    this.compareButton = r.getByRole('button', { name: 'Compare outputs' });
    this.stopButton = r.getByRole('button', { name: 'Stop' });
    this.baseOutput = r.getByTestId('base-output');
    this.tunedOutput = r.getByTestId('tuned-output');
    this.baseContinuation = r.getByTestId('base-continuation');
    this.tunedContinuation = r.getByTestId('tuned-continuation');
    this.baseStats = r.getByTestId('base-stats');
    this.tunedStats = r.getByTestId('tuned-stats');
    this.runHeldoutButton = r.getByRole('button', { name: /^Run the held-out comparison/ });
    this.cancelHeldoutButton = r.getByRole('button', { name: 'Cancel' });
    this.heldoutProgress = r.getByTestId('heldout-progress');
    this.heldoutCancelled = r.getByTestId('heldout-cancelled');
    this.totals = r.getByTestId('heldout-totals');
    this.perplexity = r.getByTestId('heldout-ppl');
    this.table = r.getByTestId('heldout-table');
    this.rows = this.table.locator('tbody tr');
    this.onlyMismatches = r.getByLabel('Only rows where the tuned output is not an exact match');
    this.errors = r.getByRole('alert');
  }

  async fill(opts: { prompt: string; maxNewTokens?: number; temperature?: number; topK?: number; topP?: number; seed?: number }): Promise<void> {
    await this.prompt.fill(opts.prompt);
    if (opts.maxNewTokens !== undefined) await this.maxNewTokens.fill(String(opts.maxNewTokens));
    if (opts.temperature !== undefined) await this.temperature.fill(String(opts.temperature));
    if (opts.topK !== undefined) await this.topK.fill(String(opts.topK));
    if (opts.topP !== undefined) await this.topP.fill(String(opts.topP));
    if (opts.seed !== undefined) await this.seed.fill(String(opts.seed));
  }

  /** How many comparisons the panel has started. */
  async runs(): Promise<number> {
    return Number(await this.region.getByTestId('compare-sides').getAttribute('data-runs'));
  }

  /** Clicks Compare outputs (or runs `start`) and waits for both sides of that new run to finish; returns the two continuations. */
  async compare(timeout = 240_000, start: () => Promise<void> = () => this.compareButton.click()): Promise<{ base: string; tuned: string }> {
    const before = await this.runs();
    await start();
    await expect.poll(() => this.runs(), { timeout }).toBeGreaterThan(before);
    await expect(this.baseStats).toContainText('finished:', { timeout });
    await expect(this.tunedStats).toContainText('finished:', { timeout });
    return { base: (await this.baseContinuation.textContent()) ?? '', tuned: (await this.tunedContinuation.textContent()) ?? '' };
  }

  /**
   * Starts the held-out comparison and waits until it has visibly started (progress or a result). On a loaded
   * machine a click can land while the page above still shifts (a verdict arriving); a click that started
   * nothing is repeated (a second one while it runs is refused by the disabled button, and by the store).
   */
  async startHeldout(): Promise<void> {
    await expect(async () => {
      if (await this.runHeldoutButton.isEnabled()) await this.runHeldoutButton.click({ timeout: 10_000 });
      await expect(this.heldoutProgress.or(this.totals).first()).toBeVisible({ timeout: 5_000 });
    }).toPass({ timeout: 60_000 });
  }

  /** Runs the held-out comparison to the end; returns the totals line. */
  async runHeldout(timeout = 600_000): Promise<string> {
    await this.startHeldout();
    await expect(this.totals).toContainText('exact match: base', { timeout });
    return (await this.totals.textContent()) ?? '';
  }
}
