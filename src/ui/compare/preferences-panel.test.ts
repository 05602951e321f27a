// The preference controls of the Compare panel rendered to HTML in Node (react-dom/server, no DOM): the
// marking bar in every held-out row (short visible labels, whole accessible names, the marked choice
// pressed), the bar and two-samples block under the prompt box once both replies are in, and the
// Preferences list (count, each pair as text with markup escaped, Edit/Delete, Export JSONL, Train with DPO).
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { PreferencePair } from '../../protocol/messages';
import { heldoutKey } from '../../store/compare';
import { createAppStore, patch } from '../../store/store';
import { tick } from '../../testing/fake-worker';
import { testPage, type TestPage } from '../../testing/page';
import { checkpoint, COMPARE_RESULT, MODEL, run, workerWithRuns } from '../../testing/studio-fixtures';
import { UiContext } from '../context';
import { ComparePanel } from './ComparePanel';

const CKS = { r1: [checkpoint('r1', 3), checkpoint('r1', 6, { isLatest: true })] };
const PAIRS: PreferencePair[] = [
  { id: 'p1', runId: 'r1', step: 6, prompt: 'Write as digits: seven', chosen: '7', rejected: '<b>seven</b>', source: 'base-vs-tuned', createdAt: 1, updatedAt: 1 },
  { id: 'p2', runId: 'r1', step: 6, prompt: [{ role: 'system', content: 'Digits only.' }, { role: 'user', content: 'twelve' }], chosen: '12', rejected: '', source: 'edited', createdAt: 2, updatedAt: 2 },
];

async function page(): Promise<TestPage> {
  const worker = workerWithRuns([run('r1', { name: 'numbers', checkpoints: CKS.r1 })], CKS);
  worker.on('compare-heldout', () => COMPARE_RESULT);
  worker.on('list-preferences', () => ({ preferences: PAIRS }));
  worker.on('generate', (p) => ({ promptTokens: [1], tokens: [2], text: p.useAdapter ? '7' : 'seven', finishReason: 'eos', ms: 1, tokensPerSecond: 1, adapter: null }));
  const p = testPage(worker.client, { selection: { runId: 'r1', step: null }, model: MODEL });
  await tick(5);
  return p;
}

const html = (p: TestPage) => renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(ComparePanel)));

describe('Compare panel: preferences (server-rendered)', () => {
  it('the Preferences list: count, pairs as text, edit/delete per pair, export and DPO', async () => {
    const p = await page();
    const out = html(p);
    expect(out).toContain('2 preference pairs stored with run &quot;numbers&quot;.');
    expect(out).toContain('&lt;b&gt;seven&lt;/b&gt;');
    expect(out).not.toContain('<b>seven</b>');
    expect(out).toContain('system: Digits only.\nuser: twelve');
    expect(out).toContain('(empty)');
    expect(out).toContain('base vs tuned · step 6');
    expect(out).toContain('edited reply · step 6');
    expect(out).toContain('aria-label="Edit pair 2"');
    expect(out).toContain('aria-label="Delete pair 1"');
    expect(out).toMatch(/<button type="button">Export JSONL<\/button>/);
    expect(out).toMatch(/<button type="button" aria-describedby="[^"]+">Train with DPO on these 2 preferences<\/button>/);
    expect(out).toContain('Starts a new run, &quot;numbers + DPO&quot;, from the selected checkpoint');
  });

  it('a marking bar in every held-out row; the marked choice is pressed; the prompt box offers one once both replies are in', async () => {
    const p = await page();
    expect(html(p)).not.toContain('Which reply to this prompt is better?');
    await p.actions.compareHeldout();
    patch(p.store, 'compare', { preferences: { ...p.store.getState().compare.preferences, marks: { [heldoutKey('r1', 6, 3)]: { pairId: 'p1', choice: 'tuned' } } } });
    const out = html(p);
    expect(out).toContain('aria-label="Which reply is better on line 3?"');
    expect(out).toContain('aria-label="Which reply is better on line 9?"');
    expect(out).toMatch(/aria-label="Tuned is better" aria-pressed="true"[^>]*>Tuned<\/button>/);
    expect(out).toMatch(/class="secondary" aria-label="Base is better" aria-pressed="false"[^>]*>Base<\/button>/);
    expect(out).toContain('Saved: tuned reply preferred.');

    p.actions.setCompareSettings({ prompt: 'Write as digits: seven' });
    await p.actions.comparePrompt();
    const after = html(p);
    expect(after).toContain('aria-label="Which reply to this prompt is better?"');
    expect(after).toMatch(/aria-label="Base is better" aria-pressed="false"[^>]*>Base is better<\/button>/);
    expect(after).toContain('Sample two tuned replies');
    expect(after).toContain('seeds 1 and 2; temperature 0.8');
  });
});
