// The Export slice: the selected checkpoint as a PEFT adapter zip, a merged model zip, the run's
// metrics as CSV, and its TRL / Axolotl recipe; one item per kind. Actions: src/app/export.ts (the
// worker builds the bytes); src/ui/export turns them into a download.
import type { ExportKind, ProtocolError } from '../protocol/messages';
import { pageError } from './errors';
import { selectedCheckpoint, unusable, type BlockerInput } from './run-context';
import type { Phase } from './store';

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

export type ExportSlice = Record<ExportKind, ExportItemState>;

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

export function initialExport(): ExportSlice {
  return { peft: idleItem(), merged: idleItem(), 'metrics-csv': idleItem(), recipe: idleItem() };
}

/** Why `kind` cannot be exported now (null: it can). */
export function exportBlocker(s: BlockerInput, kind: ExportKind): ProtocolError | null {
  const model = s.model.summary;
  const selection = selectedCheckpoint(s);
  const c = s.selectedRun;
  if (!selection) return pageError('NO_ADAPTER', 'No run is selected.', 'Train a run, or pick one under Runs or in the checkpoint timeline.');
  if (c.phase === 'error' && c.error) return c.error;
  if (!c.run) return pageError('NO_ADAPTER', 'Reading the selected run…');
  if (needsModel(kind) && !model) return pageError('NO_MODEL', 'No model is loaded.', 'Load the model the run was trained on (Model panel).');
  if (needsCheckpoint(kind)) return unusable(c.run, selection, model);
  if (kind === 'recipe' && !c.run.model) return pageError('BAD_REQUEST', `Run "${c.run.runName}" was not made in this browser, so there is no recipe for it.`);
  if (needsModel(kind)) {
    const e = unusable(c.run, selection, model);
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
