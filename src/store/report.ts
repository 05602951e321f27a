// The Report slice: the run report (model card) of the selected run or checkpoint, as the worker read it
// from the run's records (run-report). Actions: src/app/report.ts; view: src/ui/report.
import type { CardInput, ProtocolError } from '../protocol/messages';
import type { Phase } from './store';

export interface ReportSlice {
  /** The view is shown (it reads the report again when the selection changes). */
  open: boolean;
  phase: Phase;
  /** What was read: the run and the checkpoint step (null: the run has no checkpoint yet). */
  input: CardInput | null;
  error: ProtocolError | null;
}

export function initialReport(): ReportSlice {
  return { open: false, phase: 'idle', input: null, error: null };
}

/** The file-name stem of a report ("numbers-step40"), from the run's name as the exports name their zips. */
export function reportStem(input: Pick<CardInput, 'run' | 'checkpoint'>): string {
  const name = input.run.name.replace(/\.(jsonl|ndjson|json|csv|tsv|txt)$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'run';
  return input.checkpoint ? `${name}-step${input.checkpoint.step}` : name;
}
