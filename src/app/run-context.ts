// The selected run as Compare and Export need it (store slice `selectedRun`): read from the worker
// (list-runs, list-checkpoints) whenever the selection, the model or the run's checkpoints change.
import type { WorkerClient } from '../protocol/client';
import { asProtocolError, pageError } from '../store/errors';
import { sameSelection, selectedCheckpoint, type RunContext, type Selection } from '../store/run-context';
import { patch, watch, type AppStore } from '../store/store';

export async function fetchRunContext(client: WorkerClient, selection: Selection): Promise<RunContext> {
  const [{ runs }, { checkpoints }] = await Promise.all([client.request('list-runs', {}), client.request('list-checkpoints', { runId: selection.runId })]);
  const run = runs.find((r) => r.id === selection.runId);
  if (!run) throw pageError('NOT_FOUND', 'The selected run is no longer stored.', 'Pick another run under Runs, or train a new one.');
  const sorted = [...checkpoints].sort((a, b) => a.step - b.step);
  const checkpoint = selection.step === null ? (sorted.at(-1) ?? null) : (sorted.find((c) => c.step === selection.step) ?? null);
  const job = run.job;
  return {
    runId: run.id,
    runName: run.name,
    training: run.active,
    checkpoints: sorted,
    checkpoint,
    stopStrings: job?.data.options.stop.stopStrings ?? [],
    stopTokenId: job?.data.options.stop.stopTokenId ?? null,
    template: job?.data.options.template ?? 'auto',
    model: job ? { name: job.model.name, numParams: job.model.numParams, arch: job.model.arch } : null,
    valExamples: job ? job.data.valExamples : null,
  };
}

/** What a feature that acts on the selected run (Compare, Export) is built from. */
export interface SelectedRunFeatureDeps {
  client: WorkerClient;
  store: AppStore;
  selectedRun: SelectedRun;
  /** Clock for elapsed times and ETAs (default Date.now). */
  now?: () => number;
}

export interface SelectedRun {
  /**
   * Reads the selected run again. Resolves once the slice holds the newest read: a read overtaken by a
   * newer one (or finishing after `dispose`) is dropped, so a late answer never overwrites a newer
   * selection's, and the caller waits for the newer one.
   */
  refresh(): Promise<void>;
  dispose(): void;
}

export function createSelectedRun({ client, store }: { client: WorkerClient; store: AppStore }): SelectedRun {
  let token = 0;
  let disposed = false;
  let latest: Promise<void> = Promise.resolve();

  async function read(mine: number): Promise<void> {
    const sel = selectedCheckpoint(store.getState());
    if (!sel) {
      patch(store, 'selectedRun', { phase: 'idle', run: null, error: null });
      return;
    }
    patch(store, 'selectedRun', { phase: 'busy', error: null });
    try {
      const run = await fetchRunContext(client, sel);
      if (mine === token && !disposed) patch(store, 'selectedRun', { phase: 'ready', run, error: null });
    } catch (e) {
      if (mine === token && !disposed) patch(store, 'selectedRun', { phase: 'error', run: null, error: asProtocolError(e) });
    }
  }

  async function refresh(): Promise<void> {
    let p = read(++token);
    latest = p;
    await p;
    while (p !== latest) {
      p = latest;
      await p;
    }
  }

  const unwatch = [
    watch(store, selectedCheckpoint, (selection) => {
      // The same run at another step keeps what is known of it while it is read again.
      if (selection?.runId !== store.getState().selectedRun.run?.runId) patch(store, 'selectedRun', { run: null });
      void refresh();
    }, sameSelection),
    watch(store, (s) => s.model.summary, () => void refresh()),
    // New or deleted checkpoints: "newest" must stay the newest.
    watch(store, (s) => s.checkpoints.list, () => {
      if (selectedCheckpoint(store.getState())) void refresh();
    }),
  ];
  if (selectedCheckpoint(store.getState())) void refresh();

  return {
    refresh,
    dispose() {
      disposed = true;
      for (const u of unwatch) u();
    },
  };
}
