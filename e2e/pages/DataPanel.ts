// The Data panel: the drop zone, the file button, the example datasets and the doctor's report.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Locator, Page } from '@playwright/test';

export class DataPanel {
  readonly region: Locator;
  readonly dropZone: Locator;
  readonly fileInput: Locator;
  readonly chooseFile: Locator;
  readonly examples: Locator;
  readonly status: Locator;
  readonly report: Locator;
  readonly counts: Locator;
  /** The format in plain words ("JSON Lines, prompt/completion pairs"); formatId: its id, inside a details toggle. */
  readonly format: Locator;
  readonly formatId: Locator;
  /** The end of text in plain words; stopDetails: the toggle with the token id and the probabilities. */
  readonly stopWords: Locator;
  readonly stopDetails: Locator;
  /** Where "Answer:" (or "User:"/"Assistant:") in the token preview comes from. */
  readonly promptFormatNote: Locator;
  readonly split: Locator;
  /** Plain text: characters, tokens, documents/paragraphs, windows and the held-out share. */
  readonly text: Locator;
  readonly problem: Locator;
  readonly issues: Locator;
  readonly tokenExample: Locator;
  readonly progress: Locator;
  readonly maxLength: Locator;
  readonly validation: Locator;
  readonly validationInput: Locator;

  constructor(private readonly page: Page) {
    this.region = page.getByRole('region', { name: 'Data' });
    this.dropZone = this.region.getByTestId('drop-zone');
    this.fileInput = this.region.getByLabel('Dataset file');
    this.chooseFile = this.region.getByRole('button', { name: 'Choose a file…' });
    this.examples = this.region.getByRole('group', { name: 'Example datasets' });
    this.status = this.region.getByTestId('data-status');
    this.report = this.region.getByTestId('data-report');
    this.counts = this.region.getByTestId('data-counts');
    this.format = this.region.getByTestId('data-format');
    this.formatId = this.region.getByTestId('data-format-id');
    this.stopWords = this.region.getByTestId('data-stop-words');
    this.stopDetails = this.region.getByTestId('data-stop-details');
    this.promptFormatNote = this.region.getByTestId('prompt-format-note');
    this.split = this.region.getByTestId('data-split');
    this.text = this.region.getByTestId('data-text');
    this.problem = this.region.getByTestId('data-problem');
    this.issues = this.region.getByTestId('issue');
    this.tokenExample = this.region.getByTestId('token-example');
    this.progress = this.region.getByRole('progressbar');
    this.maxLength = this.region.getByLabel('Max length');
    this.validation = this.region.getByTestId('data-validation');
    this.validationInput = this.region.getByLabel('Validation file', { exact: true });
  }

  /** Picks a file through the (keyboard-reachable) file input. */
  async pick(path: string): Promise<void> {
    await this.fileInput.setInputFiles(path);
  }

  /**
   * Drops a file the way a browser does: a DataTransfer holding a File, dispatched as dragenter/dragover/drop
   * on `target` (default: the drop zone; any element works, the whole window takes drops).
   */
  async drop(file: { name: string; bytes: Uint8Array | string; type?: string }, target: Locator = this.dropZone): Promise<void> {
    const bytes = typeof file.bytes === 'string' ? Buffer.from(file.bytes, 'utf8') : Buffer.from(file.bytes);
    const dataTransfer = await this.page.evaluateHandle(
      ({ name, b64, type }) => {
        const bin = atob(b64);
        const data = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) data[i] = bin.charCodeAt(i);
        const dt = new DataTransfer();
        dt.items.add(new File([data], name, { type }));
        return dt;
      },
      { name: file.name, b64: bytes.toString('base64'), type: file.type ?? '' },
    );
    await target.dispatchEvent('dragenter', { dataTransfer });
    await target.dispatchEvent('dragover', { dataTransfer });
    await target.dispatchEvent('drop', { dataTransfer });
    await dataTransfer.dispose();
  }

  async dropPath(path: string, target?: Locator): Promise<void> {
    await this.drop({ name: basename(path), bytes: readFileSync(path) }, target);
  }

  async useExample(title: string): Promise<void> {
    await this.examples.getByRole('button', { name: title }).click();
  }

  issueAtLine(line: number): Locator {
    return this.region.locator(`[data-testid="issue"][data-line="${line}"]`);
  }
}
