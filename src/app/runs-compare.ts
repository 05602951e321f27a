// Runs compared side by side: the runs ticked in the Runs panel, their stored metrics (run-metrics) for
// the overlaid curves and the figures, their checkpoints (list-checkpoints) for the step picker, and their
// held-out outputs at the picked checkpoint (compare-heldout, one run after the other). State: the
// `runsCompare` slice (src/store/runs-compare.ts).
import type { WorkerClient } from '../protocol/client';
import { asProtocolError } from '../store/errors';
import { compareRunsBlocker, togglePicked, type ComparedRun, type CompareAxis, type RunsSort } from '../store/runs-compare';
import { patch, watch, type AppStore } from '../store/store';

/** What the Runs panel and the comparison view may ask for. */
export interface RunsCompareActions {
  /** Ticks (or unticks) a run for the comparison. */
  pickRun(runId: string, on: boolean): void;
  setRunsSort(sort: RunsSort): void;
  /** Shows the ticked runs side by side: reads their metrics and checkpoints, then makes their held-out outputs. */
  compareRuns(): Promise<void>;
  /** Makes one run's held-out outputs with another of its checkpoints. */
  setComparedStep(runId: string, step: number): Promise<void>;
  setCompareAxis(axis: CompareAxis): void;
  /** Shows every setting (true) or only those that differ. */
  showAllSettings(all: boolean): void;
  closeRunsCompare(): void;
}

export interface RunsCompare extends RunsCompareActions {
  dispose(): void;
}

export function createRunsCompare({ client, store }: { client: WorkerClient; store: AppStore }): RunsCompare {
  const state = () => store.getState();
  const slice = () => state().runsCompare;
  /** Bumped by every new comparison: answers for an older one are dropped. */
  let token = 0;

  function setRun(t: number, runId: string, update: (r: ComparedRun) => ComparedRun): void {
    if (t !== token) return;
    const view = slice().view;
    if (!view) return;
    patch(store, 'runsCompare', { view: { ...view, runs: view.runs.map((r) => (r.runId === runId ? update(r) : r)) } });
  }

  async function heldout(t: number, runId: string, step: number | null): Promise<void> {
    setRun(t, runId, (r) => ({ ...r, heldout: { phase: 'busy', result: null, error: null } }));
    try {
      const result = await client.request('compare-heldout', { runId, ...(step !== null ? { step } : {}) });
      setRun(t, runId, (r) => ({ ...r, step: result.step, heldout: { phase: 'ready', result, error: null } }));
    } catch (e) {
      setRun(t, runId, (r) => ({ ...r, heldout: { phase: 'error', result: null, error: asProtocolError(e) } }));
    }
  }

  const actions: RunsCompare = {
    pickRun(runId, on) {
      patch(store, 'runsCompare', { picked: togglePicked(slice().picked, runId, on) });
    },

    setRunsSort(sort) {
      patch(store, 'runsCompare', { sort });
    },

    async compareRuns() {
      const runs = state().runs.list;
      if (compareRunsBlocker(slice().picked, runs)) return;
      const t = ++token;
      const ids = slice().picked.filter((id) => runs.some((r) => r.id === id));
      const initial = (runId: string): ComparedRun => {
        const r = runs.find((x) => x.id === runId)!;
        const sel = state().selection;
        // The checkpoint selected in the Checkpoints panel for the selected run, else the run's newest.
        const step = sel.runId === runId && sel.step !== null ? sel.step : (r.latestCheckpoint?.step ?? null);
        return { runId, step, metrics: { phase: 'busy', points: [], error: null }, heldout: { phase: 'idle', result: null, error: null }, steps: [] };
      };
      const prev = slice().view;
      patch(store, 'runsCompare', { view: { runs: ids.map(initial), axis: prev?.axis ?? 'step', allSettings: prev?.allSettings ?? false } });
      await Promise.all(
        ids.map(async (runId) => {
          try {
            const [{ points }, { checkpoints }] = await Promise.all([client.request('run-metrics', { runId }), client.request('list-checkpoints', { runId })]);
            setRun(t, runId, (r) => ({ ...r, metrics: { phase: 'ready', points, error: null }, steps: checkpoints.map((c) => c.step).sort((a, b) => a - b) }));
          } catch (e) {
            setRun(t, runId, (r) => ({ ...r, metrics: { phase: 'error', points: [], error: asProtocolError(e) } }));
          }
        }),
      );
      // One after the other: each loads its run's checkpoint and generates on every held-out example.
      for (const runId of ids) {
        if (t !== token) return;
        const r = slice().view?.runs.find((x) => x.runId === runId);
        if (!r) continue;
        if (r.step === null && !r.steps.length) {
          setRun(t, runId, (x) => ({ ...x, heldout: { phase: 'error', result: null, error: { code: 'NOT_FOUND', message: 'This run has no checkpoint to make outputs with.' } } }));
          continue;
        }
        await heldout(t, runId, r.step);
      }
    },

    async setComparedStep(runId, step) {
      setRun(token, runId, (r) => ({ ...r, step }));
      await heldout(token, runId, step);
    },

    setCompareAxis(axis) {
      const view = slice().view;
      if (view) patch(store, 'runsCompare', { view: { ...view, axis } });
    },

    showAllSettings(all) {
      const view = slice().view;
      if (view) patch(store, 'runsCompare', { view: { ...view, allSettings: all } });
    },

    closeRunsCompare() {
      token++;
      patch(store, 'runsCompare', { view: null });
    },

    dispose() {
      token++;
      unwatch();
    },
  };

  // A deleted run leaves the ticked ones (and the comparison, which then shows the rest).
  const unwatch = watch(store, (s) => s.runs.list, (list) => {
    const picked = slice().picked.filter((id) => list.some((r) => r.id === id));
    if (picked.length !== slice().picked.length) patch(store, 'runsCompare', { picked });
    const view = slice().view;
    if (view && view.runs.some((r) => !list.some((x) => x.id === r.runId))) {
      const runs = view.runs.filter((r) => list.some((x) => x.id === r.runId));
      patch(store, 'runsCompare', { view: runs.length >= 2 ? { ...view, runs } : null });
    }
  });

  return actions;
}
