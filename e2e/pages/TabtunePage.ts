// The tabtune page, seen through stable roles and labels plus the page's small test API
// (window.__tabtune), never through CSS classes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';
import type { ModelSummary } from '../../src/protocol/messages';
import { BackendPanel } from './BackendPanel';
import { GeneratePanel } from './GeneratePanel';
import { ModelPanel } from './ModelPanel';
import { TrainingApi } from './TrainingApi';

export class TabtunePage {
  readonly backend: BackendPanel;
  readonly model: ModelPanel;
  readonly generate: GeneratePanel;
  /** Training through the page's test API (no training UI yet). */
  readonly training: TrainingApi;
  private shots = 0;

  constructor(
    readonly page: Page,
    readonly options: { backend: string; wasmThreads?: number; artifactsDir: string },
  ) {
    this.backend = new BackendPanel(page);
    this.model = new ModelPanel(page);
    this.generate = new GeneratePanel(page);
    this.training = new TrainingApi(page);
    mkdirSync(options.artifactsDir, { recursive: true });
  }

  /** Opens the page with the project's backend (?backend=…&threads=…). */
  async open(params: Record<string, string> = {}): Promise<void> {
    const q = new URLSearchParams({ backend: this.options.backend, ...params });
    if (this.options.wasmThreads) q.set('threads', String(this.options.wasmThreads));
    await this.page.goto(`/?${q}`);
    await expect(this.page.getByRole('heading', { name: 'tabtune', level: 1 })).toBeVisible();
  }

  /** Saves a numbered full-page screenshot into e2e-artifacts/<project>/<test>/. */
  async shot(name: string): Promise<string> {
    const path = join(this.options.artifactsDir, `${String(++this.shots).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path, fullPage: true });
    return path;
  }

  whenModelReady(): Promise<ModelSummary> {
    return this.page.evaluate(() => window.__tabtune!.whenModelReady());
  }

  /** What TF.js in the worker reports (tf.getBackend()), and the WASM thread count. */
  getBackend(): Promise<{ backend: string; threads: number | null }> {
    return this.page.evaluate(() => window.__tabtune!.getBackend());
  }

  forward(ids: number[]): Promise<{ logits: number[]; vocabSize: number }> {
    return this.page.evaluate((ids) => window.__tabtune!.forward(ids), ids);
  }

  /** Token ids of the last finished generation. */
  lastTokens(): Promise<number[] | null> {
    return this.page.evaluate(() => window.__tabtune!.state().generation.outcome?.tokens ?? null);
  }

  crossOriginIsolated(): Promise<boolean> {
    return this.page.evaluate(() => self.crossOriginIsolated);
  }
}
