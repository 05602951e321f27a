import { describe, expect, it } from 'vitest';
import { compareHeader, compareSource, heldoutCount, keepResult, staleResultLine } from './compare-source';
import type { RunContext } from './run-context';
import type { AppState } from './store';

const ck = (step: number) => ({ runId: 'r1', step, createdAt: 0, sizeBytes: 1, chunkCount: 1, trainLoss: 1, valLoss: 1, extra: null, pinned: false, isBest: false, isLatest: false });
const run = (over: Partial<RunContext> = {}): RunContext => ({
  runId: 'r1', runName: 'capitals.jsonl', training: false, checkpoints: [ck(6), ck(12)], checkpoint: ck(12), stopStrings: [], stopTokenId: null, template: 'plain',
  model: { name: 'tiny', numParams: 1, arch: 'llama' }, valExamples: 100, ...over,
});
const state = (sel: { runId: string | null; step: number | null }, r: RunContext | null, liveStep: number | null = null) =>
  ({
    model: { summary: { name: 'tiny' } },
    selection: sel,
    selectedRun: { phase: 'ready', run: r, error: null },
    live: { runId: 'r1', last: liveStep === null ? null : { step: liveStep } },
  }) as unknown as Pick<AppState, 'model' | 'selection' | 'selectedRun' | 'live'>;

describe('what Compare uses and what its results were made with', () => {
  it('describes the selected checkpoint as Generate does, the live step while the newest of a training run is picked', () => {
    expect(compareHeader(compareSource(state({ runId: 'r1', step: null }, run()))!)).toBe('Base model (tiny) vs tiny + capitals.jsonl, step 12, adapter on');
    expect(compareSource(state({ runId: 'r1', step: 6 }, run({ checkpoint: ck(6) })))?.adapter?.step).toBe(6);
    const training = compareSource(state({ runId: 'r1', step: null }, run({ training: true, checkpoint: ck(100) }), 125));
    expect(training?.adapter).toMatchObject({ step: 125, training: true });
    // The run read is another one than the selection (still reading): nothing to describe yet.
    expect(compareSource(state({ runId: 'r2', step: null }, run()))).toBeNull();
  });

  it('says when a shown result was made with another step', () => {
    const src = compareSource(state({ runId: 'r1', step: null }, run({ training: true }), 130));
    expect(staleResultLine('The prompt outputs', 'compare again', { runId: 'r1', runName: 'capitals.jsonl', step: 125, training: true }, src, 'tiny')).toBe(
      'The prompt outputs below were made with tiny + capitals.jsonl, step 125, training now, adapter on, not with tiny + capitals.jsonl, step 130, training now, adapter on: compare again.',
    );
    expect(staleResultLine('The held-out table', 'run it again', { runId: 'r1', runName: 'x', step: 130, training: false }, src, 'tiny')).toBeNull();
  });

  it('keeps results of the same run and step (or its newest), clears those of another run or step', () => {
    expect(keepResult({ runId: 'r1', step: 12 }, { runId: 'r1', step: null })).toBe(true);
    expect(keepResult({ runId: 'r1', step: 12 }, { runId: 'r1', step: 12 })).toBe(true);
    expect(keepResult({ runId: 'r1', step: 12 }, { runId: 'r1', step: 6 })).toBe(false);
    expect(keepResult({ runId: 'r1', step: 12 }, { runId: 'r2', step: null })).toBe(false);
    expect(keepResult({ runId: 'r1', step: 12 }, null)).toBe(false);
  });

  it('counts the held-out rows shown', () => {
    expect(heldoutCount(3, 100)).toBe(" (3 of the run's 100)");
    expect(heldoutCount(4, 4)).toBe(' (4)');
    expect(heldoutCount(null, 100)).toBe(' (100)');
    expect(heldoutCount(null, null)).toBe('');
  });
});

describe('the Compare header names the step a checkpoint figure was measured at', () => {
  it('says "measured at step N" for a checkpoint saved between evaluations', async () => {
    const { describeCheckpoint } = await import('./run-context');
    const c = { ...ck(55), valLoss: 1.03741, valStep: 50 };
    expect(describeCheckpoint(run({ checkpoint: c }), { runId: 'r1', step: 55 })).toBe('step 55 · val loss 1.037 (measured at step 50)');
    expect(describeCheckpoint(run({ checkpoint: { ...c, valStep: 55 } }), { runId: 'r1', step: null })).toBe('step 55 (newest) · val loss 1.037');
  });
});
