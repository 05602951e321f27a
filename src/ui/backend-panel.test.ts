// The Backend panel's measured figures, rendered to HTML in Node (react-dom/server, no DOM): each backend's
// tokens/s (or the bound a stopped one is slower than, or a dash with the reason), which is faster and in use,
// when and on what it was measured, stored or not, progress while measuring, and an explicit choice kept.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, it } from 'vitest';
import type { BackendStatus, BackendTimingReport } from '../protocol/messages';
import { createAppStore, initialBackendTiming, initialState, type BackendTimingSlice } from '../store/store';
import { MODEL } from '../testing/studio-fixtures';
import { BackendPanel } from './BackendPanel';
import { UiContext, type AllActions } from './context';

const STATUS: BackendStatus = { name: 'wasm', threads: 2, simd: true, reasons: ['WebGPU: the only adapter is a software renderer (SwiftShader)…'], tfBackend: 'wasm', crossOriginIsolated: true };

const REPORT: BackendTimingReport = {
  key: 'k',
  measuredAt: Date.UTC(2026, 0, 5, 14, 3),
  model: 'tabtune-base',
  batch: { windows: 1, seq: 64 },
  budgetMs: 1500,
  picked: 'wasm',
  rows: [
    { backend: 'webgpu', status: 'stopped', tokensPerS: null, slowerThan: 38.18, note: 'slower than 38.2 tokens/s, stopped after 1.7 s', steps: 0, tokens: 0, ms: 0, loadMs: 340, warmupMs: 27_907 },
    { backend: 'wasm', status: 'measured', tokensPerS: 222.9, slowerThan: null, note: '223 tokens/s (3 steps of 64 tokens)', steps: 3, tokens: 192, ms: 861, loadMs: 20, warmupMs: 406 },
  ],
  fromCache: true,
  switchedTo: null,
  kept: null,
  tensors: { before: 100, after: 100 },
};

function render(timing: Partial<BackendTimingSlice>, status: BackendStatus = STATUS): string {
  const state = initialState({ backend: { phase: 'ready', status, timing: { ...initialBackendTiming(), ...timing } } });
  state.model = { ...state.model, phase: 'ready', summary: MODEL };
  const store = createAppStore(state);
  return renderToStaticMarkup(createElement(UiContext.Provider, { value: { store, actions: {} as AllActions } }, createElement(BackendPanel)));
}

const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/&lt;/g, '<').replace(/\s+/g, ' ');

describe('Backend panel: measured training speed', () => {
  it('shows each figure, the pick and where the figures come from', () => {
    const t = text(render({ phase: 'ready', report: REPORT }));
    expect(t).toContain('Why not a faster backend?');
    expect(t).toContain('WebGPU < 38.2 tokens/s slower than 38.2 tokens/s, stopped after 1.7 s; warm-up step 27.9 s');
    expect(t).toContain('WASM (picked) 223 tokens/s 3 timed steps of 64 tokens, 287 ms each; warm-up step 0.4 s');
    expect(t).toContain('Faster here: WASM (in use).');
    expect(t).toContain('(stored for this model and device) on tabtune-base, 1 × 64 tokens, warm-up step not counted.');
    expect(t).toContain('Measure again');
    const html = render({ phase: 'ready', report: REPORT });
    expect(html).toContain('data-tokens-per-s="222.9"');
    expect(html).not.toContain('Also time the software GPU'); // nothing was skipped as software
  });

  it('offers to time a skipped software GPU, says which backend it is measuring, and why an explicit choice is kept', () => {
    const skipped: BackendTimingReport = {
      ...REPORT,
      fromCache: false,
      rows: [{ ...REPORT.rows[0]!, status: 'skipped', slowerThan: null, note: 'skipped: software adapter (SwiftShader)', loadMs: null, warmupMs: null }, REPORT.rows[1]!],
    };
    const t = text(render({ phase: 'ready', report: skipped }));
    expect(t).toContain('WebGPU — skipped: software adapter (SwiftShader) WASM');
    expect(t).toContain('Also time the software GPU (slow)');
    expect(t).not.toContain('stored');
    const busy = text(render({ phase: 'busy', report: null, progress: { measuring: 'webgpu', done: 0, total: 2, rows: [] } }));
    expect(busy).toContain('Measuring backends… WebGPU (1 of 2)');
    expect(busy).toContain('Measure backends');
    const kept = text(render({ phase: 'ready', report: { ...REPORT, kept: 'WebGPU was picked explicitly (Auto would use WASM)' } }, { ...STATUS, name: 'webgpu', threads: null, simd: null, tfBackend: 'webgpu' }));
    expect(kept).toContain('Faster here: WASM; kept WebGPU: WebGPU was picked explicitly (Auto would use WASM).');
  });
});
