// What Generate says it uses (and asks the worker for): the selected run's checkpoint, the training run's
// adapter while one trains, or the base model alone; never a run made elsewhere or on another model.
import { describe, expect, it } from 'vitest';
import type { ModelSummary, RunSummary } from '../protocol/messages';
import { availableAdapter, describeSource, generationSource } from './generation';
import { initialState, type AppState } from './store';

const model = { name: 'tabtune-base', numParams: 1000, arch: 'llama' } as ModelSummary;

function run(id: string, name: string, over: Partial<RunSummary> = {}): RunSummary {
  return {
    id,
    name,
    latestCheckpoint: { runId: id, step: 12 },
    job: { model: { name: 'tabtune-base', numParams: 1000, arch: 'llama' } },
    ...over,
  } as unknown as RunSummary;
}

function state(over: Partial<AppState> = {}): AppState {
  const s = initialState();
  return { ...s, model: { ...s.model, phase: 'ready', summary: model }, ...over };
}

describe('generation source', () => {
  it('is the base model alone when no run is selected', () => {
    const s = state();
    expect(availableAdapter(s)).toBeNull();
    expect(describeSource(generationSource(s)!)).toBe('tabtune-base (no adapter: the base model alone)');
  });

  it('applies the selected run at the selected step, or its newest checkpoint', () => {
    const s = state({ runs: { ...initialState().runs, list: [run('r1', 'capitals.jsonl')] }, selection: { runId: 'r1', step: null } });
    expect(generationSource(s)).toEqual({ model: 'tabtune-base', adapter: { runId: 'r1', runName: 'capitals.jsonl', step: 12, training: false } });
    expect(describeSource(generationSource(s)!)).toBe('tabtune-base + capitals.jsonl, step 12, adapter on');
    const at5 = { ...s, selection: { runId: 'r1', step: 5 } };
    expect(generationSource(at5)!.adapter!.step).toBe(5);
  });

  it('says the adapter is off when the user switched it off', () => {
    const s = state({ runs: { ...initialState().runs, list: [run('r1', 'capitals.jsonl')] }, selection: { runId: 'r1', step: null } });
    const off = { ...s, settings: { ...s.settings, useAdapter: false } };
    expect(generationSource(off)!.adapter).toBeNull();
    expect(describeSource(generationSource(off)!)).toBe('tabtune-base (adapter off: the base model alone)');
  });

  it('applies nothing from a run made elsewhere, one on another model, or one without a checkpoint', () => {
    const list = [run('cli', 'cli run', { job: null }), run('other', 'gpt2 run', { job: { model: { name: 'gpt2', numParams: 5, arch: 'gpt2' } } as RunSummary['job'] }), run('new', 'fresh', { latestCheckpoint: null })];
    for (const id of ['cli', 'other', 'new']) {
      expect(availableAdapter(state({ runs: { ...initialState().runs, list }, selection: { runId: id, step: null } }))).toBeNull();
    }
  });

  it('while a run trains: that run\'s adapter at its current step', () => {
    const s0 = state({ runs: { ...initialState().runs, list: [run('r1', 'capitals.jsonl')] }, selection: { runId: 'r1', step: null } });
    const s = {
      ...s0,
      train: { ...s0.train, phase: 'running' as const, run: { runId: 't', name: 'numbers', startStep: 0 } as AppState['train']['run'] },
      live: { ...s0.live, runId: 't', last: { step: 7 } as AppState['live']['last'] },
    };
    expect(describeSource(generationSource(s)!)).toBe('tabtune-base + numbers, step 7, training now, adapter on');
  });
});
