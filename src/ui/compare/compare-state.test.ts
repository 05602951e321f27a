// Compare never mixes runs (issue 18 #3), on the page's store with a fake worker: results of another
// checkpoint are cleared, the held-out heading counts the rows shown, and the prompt can be compared
// while the selected run is being read (the comparison waits for the read instead of being lost).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import { testPage, type TestPage } from '../../testing/page';
import { createAppStore } from '../../store/store';
import { tick } from '../../testing/fake-worker';
import { checkpoint, COMPARE_RESULT, MODEL, run, workerWithRuns } from '../../testing/studio-fixtures';
import { UiContext } from '../context';
import { ComparePanel } from './ComparePanel';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true, isBest: true })] };

async function page(): Promise<TestPage> {
  const worker = workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
  worker.on('compare-heldout', () => COMPARE_RESULT);
  worker.on('generate', (g) => ({ promptTokens: [1], tokens: [5], text: g.useAdapter ? ' 42' : ' once', finishReason: 'length', ms: 1, tokensPerSecond: 1000, adapter: null }));
  const p = testPage(worker.client, { selection: { runId: 'r1', step: null }, model: MODEL });
  await tick(5);
  return p;
}
const html = (p: TestPage) => renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(ComparePanel)));

describe('Compare never mixes runs', () => {
  it('clears the held-out table made with another checkpoint, and counts the rows shown', async () => {
    const p = await page();
    await p.actions.compareHeldout();
    const out = html(p);
    expect(out).toContain(`every validation example of the run (${COMPARE_RESULT.rows.length} of the run&#x27;s 4)`);
    expect(out).toContain('The tuned side uses tabtune-tiny + numbers, step 6, adapter on.'.replace('tabtune-tiny', MODEL.name));
    p.store.setState({ selection: { runId: 'r1', step: 3 } });
    await tick(5);
    expect(p.store.getState().compare.heldout.result).toBeNull();
    expect(html(p)).not.toContain('data-testid="heldout-totals"');
  });

  it('a comparison asked for while the run is being read is enabled, says it waits, and is not lost', async () => {
    const p = await page();
    p.store.setState({ selectedRun: { phase: 'busy', run: null, error: null } });
    const out = html(p);
    expect(out).toMatch(/<button type="submit">Compare outputs<\/button>/);
    expect(out).toContain('Reading the selected run…');
    // Asked for meanwhile (Ctrl+Enter, the button): it waits for the read, then compares the selected checkpoint.
    p.actions.setCompareSettings({ prompt: 'Write as digits: forty two' });
    await p.actions.comparePrompt();
    expect(p.store.getState().compare.prompt).toMatchObject({ phase: 'ready', adapter: { runId: 'r1', step: 6 } });
    // Another checkpoint: the outputs made with step 6 are cleared, not left under a "step 3" header.
    p.store.setState({ selection: { runId: 'r1', step: 3 } });
    await tick(5);
    expect(p.store.getState().compare.prompt).toMatchObject({ phase: 'idle', adapter: null });
    expect(p.store.getState().compare.stream.tuned).toBe('');
  });
});
