// The iterate loop's panels, seen through roles, labels and test ids: "Fix the data" (src/ui/iterate/DataFixPanel.tsx)
// and "Runs compared" (src/ui/iterate/RunsCompareView.tsx), and the Runs panel's ticks, order and Compare button.
import type { Locator, Page } from '@playwright/test';

export class DataFixPanel {
  readonly region: Locator;
  readonly record: Locator;
  readonly keep: Locator;
  readonly remove: Locator;
  readonly pending: Locator;
  readonly save: Locator;
  readonly download: Locator;
  readonly saved: Locator;
  readonly continueButton: Locator;
  readonly problem: Locator;

  constructor(page: Page) {
    this.region = page.getByTestId('data-fix');
    const r = this.region;
    this.record = r.getByLabel(/^Record on line \d+/);
    this.keep = r.getByRole('button', { name: 'Keep this edit' });
    this.remove = r.getByRole('button', { name: 'Remove this record' });
    this.pending = r.getByTestId('pending-edits');
    this.save = r.getByRole('button', { name: 'Save as new version' });
    this.download = this.pending.getByRole('button', { name: 'Download JSONL' });
    this.saved = r.getByTestId('saved-version');
    this.continueButton = r.getByTestId('continue-fixed');
    this.problem = r.getByRole('alert');
  }
}

export class RunsCompare {
  readonly region: Locator;
  readonly overlay: Locator;
  readonly settings: Locator;
  readonly settingRows: Locator;
  readonly examples: Locator;
  readonly exampleRows: Locator;
  readonly busy: Locator;
  readonly byTokens: Locator;

  constructor(page: Page) {
    this.region = page.getByTestId('runs-compare');
    const r = this.region;
    this.overlay = r.getByTestId('runs-overlay');
    this.settings = r.getByTestId('runs-settings');
    this.settingRows = this.settings.getByTestId('setting-row');
    this.examples = r.getByTestId('runs-examples');
    this.exampleRows = this.examples.getByTestId('example-row');
    this.busy = r.getByTestId('runs-heldout-busy');
    this.byTokens = r.getByRole('radio', { name: 'training tokens seen' });
  }

  setting(name: string): Locator {
    return this.settings.locator(`[data-testid="setting-row"][data-setting="${name}"]`);
  }
}
