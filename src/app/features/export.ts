// The studio's Export feature: the selected checkpoint as a PEFT adapter zip, a merged model zip, the
// run's metrics as CSV, and its TRL / Axolotl recipe. The worker builds the bytes (`export`); the
// page turns them into a download (src/ui/export, Blob + object URL). Its own zustand vanilla store.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type { ExportKind, ExportResult, ModelSummary, ProtocolError } from '../../protocol/messages';
import { runContextRefresher, stepFor, unusable, type RunContext } from './run-context';
import { pageError, protocolError, sameSelection, type FeatureDeps, type Phase, type Selection } from './types';

export type ExportDeps = FeatureDeps;

/** What the worker reported of an export in progress (the merged model: tensor by tensor). */
export interface ExportProgress {
  /** The worker's stage, e.g. 'merged: read' | 'merged: merge' | 'merged: write'. */
  stage: string;
  /** Tensors done and in all (over the whole export). */
  done: number;
  total: number | null;
  fraction: number;
  /** Measured from the progress so far (null until two points, or one point after some time). */
  etaMs: number | null;
}

export interface ExportItemState {
  phase: Phase;
  /** When the export started (null when none runs). */
  startedAt: number | null;
  /** null: nothing measured yet (the UI shows an indeterminate bar). */
  progress: ExportProgress | null;
  /** The last file made: its name, size, contents and the step it holds. */
  last: { filename: string; size: number; files: string[]; runId: string; step: number | null; ms: number } | null;
  error: ProtocolError | null;
}

export interface ExportState {
  context: { model: ModelSummary | null; selection: Selection | null; phase: Phase; run: RunContext | null; error: ProtocolError | null };
  items: Record<ExportKind, ExportItemState>;
}

export interface ExportActions {
  /** Asks the worker for the file; resolves with it (null on failure: the error is in the store). */
  exportFile(kind: ExportKind): Promise<ExportResult | null>;
  refresh(): Promise<void>;
}

export interface ExportFeature {
  store: StoreApi<ExportState>;
  actions: ExportActions;
  dispose(): void;
}

export const EXPORT_KINDS: readonly ExportKind[] = ['peft', 'merged', 'metrics-csv', 'recipe'];

/** Exports of one checkpoint (the others describe the whole run). */
export function needsCheckpoint(kind: ExportKind): boolean {
  return kind === 'peft' || kind === 'merged';
}

/** Exports the worker builds with the model loaded (all but the metrics CSV). */
export function needsModel(kind: ExportKind): boolean {
  return kind !== 'metrics-csv';
}

const idleItem = (): ExportItemState => ({ phase: 'idle', startedAt: null, progress: null, last: null, error: null });

/** Why `kind` cannot be exported now (null: it can). */
export function exportBlocker(s: ExportState, kind: ExportKind): ProtocolError | null {
  const c = s.context;
  if (!c.selection) return pageError('NO_ADAPTER', 'No run is selected.', 'Train a run, or pick one under Runs or in the checkpoint timeline.');
  if (c.phase === 'error' && c.error) return c.error;
  if (!c.run) return pageError('NO_ADAPTER', 'Reading the selected run…');
  if (needsModel(kind) && !c.model) return pageError('NO_MODEL', 'No model is loaded.', 'Load the model the run was trained on (Model panel).');
  if (needsCheckpoint(kind)) return unusable(c.run, c.selection, c.model);
  if (kind === 'recipe' && !c.run.model) return pageError('BAD_REQUEST', `Run "${c.run.runName}" was not made in this browser, so there is no recipe for it.`);
  if (needsModel(kind)) {
    const e = unusable(c.run, c.selection, c.model);
    if (e?.code === 'MODEL_MISMATCH') return e;
  }
  return null;
}

/** What an export in progress is doing, for the status line ("Merging the adapter: 12 / 30 tensors"). */
export function describeExportStage(p: Pick<ExportProgress, 'stage' | 'done' | 'total'>): string {
  const of = p.total !== null ? ` ${p.done} / ${p.total} tensors` : '';
  if (p.stage === 'merged: read') return `Read the base weights:${of}`;
  if (p.stage === 'merged: merge') return `Merging the adapter into the weights:${of}`;
  if (p.stage === 'merged: write') return `Wrote the safetensors:${of}; zipping`;
  return `${p.stage}:${of}`;
}

/** "1.2 MB" */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function createExportFeature(deps: ExportDeps): ExportFeature {
  const { client } = deps;
  const now = deps.now ?? (() => Date.now());
  const store = createStore<ExportState>()(() => ({
    context: { model: deps.model.get(), selection: deps.selection.get(), phase: 'idle', run: null, error: null },
    items: { peft: idleItem(), merged: idleItem(), 'metrics-csv': idleItem(), recipe: idleItem() },
  }));
  const setContext = (update: Partial<ExportState['context']>) => store.setState((s) => ({ context: { ...s.context, ...update } }));
  const setItem = (kind: ExportKind, update: Partial<ExportItemState>) => store.setState((s) => ({ items: { ...s.items, [kind]: { ...s.items[kind], ...update } } }));
  let disposed = false;

  const refresh = runContextRefresher(client, () => store.getState().context.selection, setContext, () => !disposed);

  const clearErrors = () => {
    for (const kind of EXPORT_KINDS) if (store.getState().items[kind].phase === 'error') setItem(kind, { phase: 'idle', error: null });
  };
  const unsubSelection = deps.selection.subscribe((selection) => {
    if (sameSelection(selection, store.getState().context.selection)) return;
    setContext({ selection, run: null });
    clearErrors();
    void refresh();
  });
  const unsubModel = deps.model.subscribe((model) => {
    setContext({ model });
    clearErrors();
    void refresh();
  });
  const unsubChanges = deps.changes?.subscribe(() => {
    if (store.getState().context.selection) void refresh();
  });
  if (store.getState().context.selection) void refresh();

  async function exportFile(kind: ExportKind): Promise<ExportResult | null> {
    if (store.getState().items[kind].phase === 'busy') return null;
    const t0 = now();
    setItem(kind, { phase: 'busy', startedAt: t0, progress: null, error: null });
    try {
      await refresh();
      const blocker = exportBlocker(store.getState(), kind);
      if (blocker) throw blocker;
      const { run, selection } = store.getState().context as { run: RunContext; selection: Selection };
      const step = needsCheckpoint(kind) ? stepFor(run, selection) : undefined;
      // The ETA is measured between progress points (the first point's rate includes the request's start).
      let first: { t: number; f: number } | null = null;
      const result = await client.request(
        'export',
        { kind, runId: run.runId, step },
        {
          progress: (p) => {
            if (disposed) return;
            const t = now();
            const f = Math.min(1, Math.max(0, p.fraction));
            let etaMs: number | null = null;
            if (!first) {
              first = { t, f };
              if (f > 0) etaMs = ((t - t0) * (1 - f)) / f;
            } else if (f > first.f) etaMs = ((t - first.t) * (1 - f)) / (f - first.f);
            setItem(kind, { progress: { stage: p.file, done: p.loaded, total: p.total, fraction: f, etaMs: f >= 1 ? 0 : etaMs } });
          },
        },
      );
      if (disposed) return null;
      setItem(kind, {
        phase: 'ready',
        startedAt: null,
        progress: null,
        last: { filename: result.filename, size: result.bytes.byteLength, files: result.files, runId: result.runId, step: result.step, ms: now() - t0 },
      });
      return result;
    } catch (e) {
      if (!disposed) setItem(kind, { phase: 'error', startedAt: null, progress: null, error: protocolError(e) });
      return null;
    }
  }

  return {
    store,
    actions: { exportFile, refresh },
    dispose() {
      disposed = true;
      unsubSelection();
      unsubModel();
      unsubChanges?.();
    },
  };
}
