// Preferences in the Compare panel (src/ui/compare/Preferences.tsx): the marking bars under the prompt
// box's replies and in each held-out row, two tuned samples, and the run's Preferences list.
import { readFile } from 'node:fs/promises';
import type { Locator, Page } from '@playwright/test';

export class PreferencesPanel {
  readonly compare: Locator;
  /** The marking bar under the prompt box's two replies. */
  readonly promptMark: Locator;
  readonly samples: Locator;
  readonly list: Locator;
  readonly count: Locator;
  readonly items: Locator;
  readonly exportButton: Locator;
  readonly exported: Locator;
  readonly trainDpo: Locator;
  readonly dpoStatus: Locator;
  readonly errors: Locator;

  constructor(private readonly page: Page) {
    this.compare = page.getByRole('region', { name: 'Compare', exact: true });
    this.promptMark = this.compare.getByRole('group', { name: 'Which reply to this prompt is better?' });
    this.samples = this.compare.getByTestId('pref-samples');
    this.list = this.compare.getByRole('region', { name: 'Preferences' });
    this.count = this.list.getByTestId('pref-count');
    this.items = this.list.getByTestId('pref-item');
    this.exportButton = this.list.getByRole('button', { name: 'Export JSONL' });
    this.exported = this.list.getByTestId('pref-exported');
    this.trainDpo = this.list.getByRole('button', { name: /^Train with DPO on these \d+ preferences?$/ });
    this.dpoStatus = this.list.getByTestId('pref-dpo-status');
    this.errors = this.list.getByRole('alert');
  }

  /** The marking bar of held-out row `line`. */
  rowMark(line: number): Locator {
    return this.compare.getByRole('group', { name: `Which reply is better on line ${line}?` });
  }

  /** Edits the tuned reply of a marking bar from the keyboard: opens the editor, types, Ctrl+Enter saves. */
  async editTuned(mark: Locator, text: string): Promise<void> {
    await mark.getByRole('button', { name: 'Edit the tuned reply…' }).click();
    const box = mark.getByLabel('Better reply');
    await box.fill(text);
    await box.press('Control+Enter');
  }

  /** Clicks Export JSONL and returns the file the browser saved. */
  async exportJsonl(timeout = 60_000): Promise<{ filename: string; text: string }> {
    const [download] = await Promise.all([this.page.waitForEvent('download', { timeout }), this.exportButton.click()]);
    return { filename: download.suggestedFilename(), text: await readFile(await download.path(), 'utf8') };
  }
}
