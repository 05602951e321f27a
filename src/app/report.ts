// Report's actions: show the run report of the selected run or checkpoint (the worker reads it from the
// run's records: run-report), read it again when the selection or its checkpoints change while it is
// shown, and hide it. State: the `report` slice (src/store/report.ts); view: src/ui/report.
import { asProtocolError, pageError } from '../store/errors';
import { sameSelection, selectedCheckpoint, stepFor, type Selection } from '../store/run-context';
import { patch, watch } from '../store/store';
import type { ReportActions } from '../ui/context';
import type { SelectedRunFeatureDeps } from './run-context';

export interface Reporter extends ReportActions {
  dispose(): void;
}

export function createReport({ client, store, selectedRun }: SelectedRunFeatureDeps): Reporter {
  const state = () => store.getState();
  let token = 0;
  let disposed = false;

  async function read(): Promise<void> {
    const mine = ++token;
    patch(store, 'report', { phase: 'busy', error: null });
    try {
      await selectedRun.refresh();
      const selection = selectedCheckpoint(state());
      if (!selection) throw pageError('NO_ADAPTER', 'No run is selected.', 'Train a run, or pick one under Runs or in the checkpoint timeline.');
      const run = state().selectedRun.run;
      if (!run) throw state().selectedRun.error ?? pageError('NOT_FOUND', 'The selected run could not be read.');
      const step = run.checkpoint ? stepFor(run, selection as Selection) : undefined;
      const { input } = await client.request('run-report', { runId: run.runId, step });
      if (mine === token && !disposed) patch(store, 'report', { phase: 'ready', input, error: null });
    } catch (e) {
      if (mine === token && !disposed) patch(store, 'report', { phase: 'error', input: null, error: asProtocolError(e) });
    }
  }

  const reread = () => {
    if (state().report.open) void read();
  };
  const unwatch = [watch(store, selectedCheckpoint, reread, sameSelection), watch(store, (s) => s.checkpoints.list, reread)];

  return {
    async showReport() {
      patch(store, 'report', { open: true });
      await read();
    },
    hideReport() {
      token++;
      patch(store, 'report', { open: false, phase: 'idle' });
    },
    dispose() {
      disposed = true;
      for (const u of unwatch) u();
    },
  };
}
