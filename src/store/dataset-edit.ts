// Fix the data: open a record of a JSONL dataset by its line (from the doctor's problem list or from the
// held-out table), edit or remove it, and save the result as a new version of the dataset ("name.v2.jsonl";
// the original stays stored, and every run records the dataset it trained on by id, name and fingerprint).
// Then a new run can continue from a checkpoint on the fixed data. Plain data and text: the slice
// (`dataFix`), its actions in src/app/data-fix.ts, the editor in src/ui/iterate/DataFixPanel.tsx.
import type { InspectDataResult, ProtocolError } from '../protocol/messages';
import type { Phase } from './store';

/** Where the user opened a record from. */
export type RecordOrigin = 'doctor' | 'heldout';

export interface DataFixSlice {
  /** Reading the dataset's text from the worker (busy), ready to edit, or why not (error). */
  phase: Phase;
  /** The dataset being fixed (a stored dataset's id), its name and its text as stored. */
  datasetId: string | null;
  name: string | null;
  text: string | null;
  /** Changes not saved yet: line number -> the new line, or null when the record is removed. */
  edits: Record<number, string | null>;
  /** The record open in the editor. */
  open: { line: number; draft: string; origin: RecordOrigin; problem: string | null } | null;
  /** The run and checkpoint the opened record was seen with (held-out table), where "Continue" starts by default. */
  from: { runId: string; step: number } | null;
  /** The saved version (its doctor's report), after "Save as new version". */
  saved: { datasetId: string; name: string; result: InspectDataResult } | null;
  saving: boolean;
  error: ProtocolError | null;
}

export function initialDataFix(): DataFixSlice {
  return { phase: 'idle', datasetId: null, name: null, text: null, edits: {}, open: null, from: null, saved: null, saving: false, error: null };
}

/** The lines of a text (without their line endings; a final newline does not make an empty last line). */
export function textLines(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The text of line `line` (1-based), or null when there is no such line. */
export function lineOf(text: string, line: number): string | null {
  const lines = textLines(text);
  return Number.isInteger(line) && line >= 1 && line <= lines.length ? lines[line - 1]! : null;
}

/**
 * A JSONL record as typed in the editor, as one line: a valid JSON object is written compactly (a record
 * pasted over several lines becomes one); anything else is refused with why.
 */
export function recordLine(draft: string): { ok: true; line: string } | { ok: false; problem: string } {
  const t = draft.trim();
  if (!t) return { ok: false, problem: 'The record is empty: remove it instead, or write a JSON object.' };
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (e) {
    return { ok: false, problem: `Not valid JSON: ${(e as Error).message}. A record is one JSON object, e.g. {"prompt": "…", "completion": "…"}.` };
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return { ok: false, problem: 'A record is one JSON object ({…}), not an array or a single value.' };
  return { ok: true, line: JSON.stringify(v) };
}

/** A record's text made readable in the editor: a valid JSON object pretty-printed, anything else as it is (e.g. a line with a syntax error). */
export function editableText(line: string): string {
  try {
    const v = JSON.parse(line) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return JSON.stringify(v, null, 2);
  } catch {
    // Shown as it is: the user fixes the syntax.
  }
  return line;
}

/** The text with the edits applied: edited lines replaced, removed lines left out; LF line endings and a final newline. */
export function applyEdits(text: string, edits: Readonly<Record<number, string | null>>): string {
  const out: string[] = [];
  textLines(text).forEach((l, i) => {
    const e = edits[i + 1];
    if (e === null) return;
    out.push(e === undefined ? l : e);
  });
  return out.length ? out.join('\n') + '\n' : '';
}

/** "notes.jsonl" -> "notes.v2.jsonl"; "notes.v2.jsonl" -> "notes.v3.jsonl"; "notes" -> "notes.v2". */
export function nextVersionName(name: string): string {
  const m = /^(.*?)(?:\.v(\d+))?(\.[A-Za-z0-9]+)?$/.exec(name)!;
  const base = m[1] || 'dataset';
  const version = m[2] ? Number(m[2]) + 1 : 2;
  return `${base}.v${version}${m[3] ?? ''}`;
}

/** The version a dataset name says (1 when it says none). */
export function versionOf(name: string): number {
  const m = /\.v(\d+)(\.[A-Za-z0-9]+)?$/.exec(name);
  return m ? Number(m[1]) : 1;
}

/** The pending changes in words: "line 17 edited, line 30 removed" (null when there are none). */
export function editsSummary(edits: Readonly<Record<number, string | null>>): string | null {
  const lines = Object.keys(edits)
    .map(Number)
    .sort((a, b) => a - b);
  if (!lines.length) return null;
  return lines.map((l) => `line ${l} ${edits[l] === null ? 'removed' : 'edited'}`).join(', ');
}

/** Why the dataset cannot be fixed record by record here (null: it can). Only JSONL datasets (one record a line). */
export function notEditable(container: string | null | undefined, hasValidationFile: boolean): string | null {
  if (hasValidationFile) return 'This run was trained with a separate validation file: fix that file and add it again (records are edited here only in the training file).';
  if (container && container !== 'jsonl') return `Records are edited here only in JSONL files (one record a line); this file is ${container.toUpperCase()}. Download it as JSONL from a run, or fix the file and add it again.`;
  return null;
}
