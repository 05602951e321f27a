// The Compare and Export panels rendered to HTML in Node (react-dom/server, no DOM): empty states,
// the held-out totals and table, outputs as text (markup escaped), the labels of every control.
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { testPage, type TestPage } from '../../testing/page';
import type { ModelSummary } from '../../protocol/messages';
import type { Selection } from '../../store/run-context';
import { createAppStore } from '../../store/store';
import { tick } from '../../testing/fake-worker';
import { checkpoint, COMPARE_RESULT, MODEL, run, workerWithRuns } from '../../testing/studio-fixtures';
import { UiContext } from '../context';
import { ExportPanel } from '../export/ExportPanel';
import { ComparePanel } from './ComparePanel';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true, isBest: true })] };

async function page(selection: Selection | null, model: ModelSummary | null = MODEL): Promise<TestPage> {
  const worker = workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
  worker.on('compare-heldout', () => COMPARE_RESULT);
  const p = testPage(worker.client, { selection, model });
  await tick(5);
  return p;
}

/** The panel as the page renders it, with the app state of the moment (server rendering reads a store's initial state: a frozen copy). */
const html = (panel: FunctionComponent, p: TestPage) =>
  renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(panel)));

describe('Compare panel (server-rendered)', () => {
  it('empty state without a selection; every control labelled', async () => {
    const out = html(ComparePanel, await page(null));
    expect(out).toContain('aria-label="Compare"');
    expect(out).toContain('No run or checkpoint is selected.');
    expect(out).toMatch(/<button type="submit" disabled="">Compare outputs<\/button>/);
    for (const label of ['Prompt for both models', 'Max new tokens', 'Temperature', 'Top-k', 'Top-p', 'Seed', 'Adapter strength', 'Write the prompt as in training']) {
      const m = new RegExp(`<label for="([^"]+)">${label}</label>`).exec(out);
      expect(m, label).not.toBeNull();
      expect(out).toContain(`id="${m![1]}"`);
    }
    expect(out).toMatch(/type="range"[^>]*min="0"[^>]*max="1"/);
  });

  it('empty state without a model', async () => {
    expect(html(ComparePanel, await page({ runId: 'r1', step: null }, null))).toContain('No model is loaded.');
  });

  it('held-out: totals at the top, rows with diffs, outputs escaped', async () => {
    const p = await page({ runId: 'r1', step: null });
    await p.actions.compareHeldout();
    const out = html(ComparePanel, p);
    expect(out).toContain('Base model vs numbers: step 6 (newest) · val loss 0.333 · best.');
    expect(out).toContain('exact match: base 3% → tuned 94%');
    expect(out.indexOf('exact match')).toBeLessThan(out.indexOf('<table'));
    expect(out).toContain('token overlap: base 0.10 → tuned 0.83');
    // Dataset text and model outputs are text: the base output "<b>bold</b>" is escaped, not markup.
    expect(out).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(out).not.toContain('<b>bold</b>');
    // "7 7" vs "7": the second 7 is an extra word.
    expect(out).toMatch(/<span>7<\/span><ins title="Not in the expected output"> 7<\/ins>/);
    // Per-example losses (measured by the worker; – for an example it could not score) and the mean in the totals.
    expect(out).toContain('Loss (base → tuned)');
    expect(out).toContain('4.210 → 0.350');
    expect(out).toContain('– → –');
    expect(out).toContain('mean loss: base 4.210 → tuned 0.350');
    expect(out).not.toContain('not reported');
    expect((out.match(/<tr class="(match|mismatch)"/g) ?? []).length).toBe(2);
  });
});

describe('Export panel (server-rendered)', () => {
  it('empty state without a selection', async () => {
    const out = html(ExportPanel, await page(null));
    expect(out).toContain('aria-label="Export"');
    expect(out).toContain('No run is selected.');
    expect(out).not.toContain('<button');
  });

  it('four downloads for the selected checkpoint; without a model only the CSV is enabled', async () => {
    const out = html(ExportPanel, await page({ runId: 'r1', step: 3 }));
    expect(out).toContain('Run numbers: step 3 · val loss 0.667.');
    // What it exports, in Generate's words; the adapter is the loud download, the other three secondary.
    expect(out).toContain('Exports <strong>tabtune-tiny + numbers, step 3, adapter on</strong>');
    for (const b of ['Download the adapter (.zip)', 'Download the merged model (.zip)', 'Download the metrics (.csv)', 'Download the recipe (.zip)']) {
      const cls = b.includes('adapter') ? '' : ' class="secondary"';
      expect(out).toMatch(new RegExp(`<button type="button"${cls} aria-describedby="[^"]+">${b.replace(/[().]/g, '\\$&')}</button>`));
    }
    const out2 = html(ExportPanel, await page({ runId: 'r1', step: 3 }, null));
    expect((out2.match(/disabled=""/g) ?? []).length).toBe(3);
    expect(out2).toContain('No model is loaded.');
  });
});
