// OFT on the page, rendered to HTML in Node (react-dom/server, no DOM): the Train panel shows OFT's block
// size and edits OFT's targets in OFT mode (LoRA's rank and targets otherwise), its plan counts OFT's
// parameters; the runs list and the model's memory line name OFT runs by their block size.
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { RunJob, TrainConfig } from '../protocol/messages';
import { createAppStore, patch } from '../store/store';
import { estimateMemory, presetConfig } from '../store/training';
import { tick } from '../testing/fake-worker';
import { testPage } from '../testing/page';
import { MODEL, run, workerWithRuns } from '../testing/studio-fixtures';
import { BROWSER_TRAINING } from '../train/config';
import { UiContext } from './context';
import { ModelPanel } from './ModelPanel';
import { RunsPanel } from './RunsPanel';
import { TrainPanel } from './TrainPanel';

const OFT_MODEL = { ...MODEL, training: BROWSER_TRAINING };

async function render(panel: FunctionComponent, config: TrainConfig): Promise<string> {
  const w = workerWithRuns([], {});
  const p = testPage(w.client, { model: OFT_MODEL });
  patch(p.store, 'train', { config, preset: 'custom' });
  await tick(2);
  return renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(panel)));
}

/** The checked boxes of the targets fieldset, and its legend. */
function targets(html: string): { legend: string; checked: string[] } {
  const f = /<fieldset class="field targets"[^>]*><legend>([^<]+)<\/legend>([\s\S]*?)<\/fieldset>/.exec(html)!;
  const checked = [...f[2]!.matchAll(/<input type="checkbox" checked=""\/>([a-z_]+)<\/label>/g)].map((m) => m[1]!);
  return { legend: f[1]!, checked };
}

const labels = (html: string) => [...html.matchAll(/<label for="[^"]+">([^<]+)<\/label>/g)].map((m) => m[1]!);

describe('the Train panel in OFT mode', () => {
  const lora = { ...presetConfig('balanced', 'llama'), lora: { ...presetConfig('balanced', 'llama').lora, target_modules: ['q_proj', 'v_proj'] } };
  const oft: TrainConfig = { ...lora, mode: 'oft', oft: { ...lora.oft, oft_block_size: 16, target_modules: ['o_proj', 'down_proj'] } };

  it("shows OFT's block size and targets, not LoRA's; LoRA mode the other way round", async () => {
    const o = await render(TrainPanel, oft);
    expect(labels(o)).toContain('OFT block size');
    expect(labels(o)).not.toContain('LoRA rank');
    expect(labels(o)).not.toContain('LoRA alpha');
    expect(labels(o)).not.toContain('LoRA dropout');
    expect(targets(o)).toEqual({ legend: 'OFT targets', checked: ['o_proj', 'down_proj'] });
    expect(o).toMatch(/<option value="oft" selected="">OFT adapter \(orthogonal\)<\/option>/);

    const l = await render(TrainPanel, lora);
    expect(labels(l)).toEqual(expect.arrayContaining(['LoRA rank', 'LoRA alpha', 'LoRA dropout']));
    expect(labels(l)).not.toContain('OFT block size');
    expect(targets(l)).toEqual({ legend: 'LoRA targets', checked: ['q_proj', 'v_proj'] });
  });

  it("the plan counts OFT's parameters (blocks of 16 on o_proj and down_proj)", async () => {
    const o = await render(TrainPanel, oft);
    const n = estimateMemory(OFT_MODEL, oft, 64).trainableParams;
    // o_proj: 64 inputs in 4 blocks of 16; down_proj: (8/3 * 64 = 171 inputs: blocks of 19) 9 blocks of 19; 4 layers.
    expect(n).toBe(4 * (4 * 120 + 9 * 171));
    expect(o).toContain(`${new Intl.NumberFormat('en-US').format(n)} trainable parameters (OFT b16).`);
    const l = await render(TrainPanel, lora);
    expect(l).toContain('trainable parameters (LoRA r8).');
  });

  it("the model's memory line and the runs list name OFT runs by their block size", async () => {
    expect(await render(ModelPanel, oft)).toContain('Training with the current settings (OFT, blocks of 16, batch 8,');
    const job = (mode: 'lora' | 'oft') => {
      const j = run('x').job!;
      return { ...j, train: { ...(mode === 'oft' ? oft : lora), steps: 30 } } as RunJob;
    };
    const w = workerWithRuns([{ ...run('a'), job: job('lora') }, { ...run('b'), job: job('oft') }], {});
    w.on('storage-report', () => ({ report: { runs: [], checkpoints: [], datasets: [], totalBytes: 0 }, estimate: null }));
    const p = testPage(w.client, { model: OFT_MODEL });
    await p.actions.refreshRuns();
    await tick(3);
    const out = renderToStaticMarkup(createElement(UiContext.Provider, { value: { store: createAppStore(p.store.getState()), actions: p.actions } }, createElement(RunsPanel)));
    expect(out).toContain('LoRA r8, lr 0.005, 30 steps, batch 8');
    expect(out).toContain('OFT b16, lr 0.005, 30 steps, batch 8');
    expect(out).not.toContain('full,');
  });
});
