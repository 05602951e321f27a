// Export's actions: the worker builds the file of one kind (PEFT adapter, merged model, metrics CSV,
// recipe) for the selected run, with progress and ETA; the page turns the bytes into a download
// (src/ui/export). State: the `export` slice (src/store/export.ts).
import type { ExportKind, ExportResult } from '../protocol/messages';
import { asProtocolError } from '../store/errors';
import { EXPORT_KINDS, exportBlocker, needsCheckpoint, type ExportItemState } from '../store/export';
import { sameSelection, selectedCheckpoint, stepFor, type Selection } from '../store/run-context';
import { patchPart, watch } from '../store/store';
import { etaMeter } from '../store/time';
import type { ExportActions } from '../ui/context';
import type { SelectedRunFeatureDeps } from './run-context';


export interface Exporter extends ExportActions {
  dispose(): void;
}

export function createExport({ client, store, selectedRun, now = () => Date.now() }: SelectedRunFeatureDeps): Exporter {
  const state = () => store.getState();
  const setItem = (kind: ExportKind, update: Partial<ExportItemState>) => patchPart(store, 'export', kind, update);
  let disposed = false;

  // A failure of another selection or model is stale.
  const clearErrors = () => {
    for (const kind of EXPORT_KINDS) if (state().export[kind].phase === 'error') setItem(kind, { phase: 'idle', error: null });
  };
  const unwatch = [watch(store, selectedCheckpoint, clearErrors, sameSelection), watch(store, (s) => s.model.summary, clearErrors)];

  async function exportFile(kind: ExportKind): Promise<ExportResult | null> {
    if (state().export[kind].phase === 'busy') return null;
    const t0 = now();
    setItem(kind, { phase: 'busy', startedAt: t0, progress: null, error: null });
    try {
      await selectedRun.refresh();
      const blocker = exportBlocker(state(), kind);
      if (blocker) throw blocker;
      const run = state().selectedRun.run!;
      const step = needsCheckpoint(kind) ? stepFor(run, selectedCheckpoint(state()) as Selection) : undefined;
      const eta = etaMeter(t0);
      const result = await client.request(
        'export',
        { kind, runId: run.runId, step },
        {
          progress: (p) => {
            if (disposed) return;
            setItem(kind, { progress: { stage: p.file, done: p.loaded, total: p.total, fraction: Math.min(1, Math.max(0, p.fraction)), etaMs: eta(now(), p.fraction) } });
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
      if (!disposed) setItem(kind, { phase: 'error', startedAt: null, progress: null, error: asProtocolError(e) });
      return null;
    }
  }

  return {
    exportFile,
    dispose() {
      disposed = true;
      for (const u of unwatch) u();
    },
  };
}
