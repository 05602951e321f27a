// Fix the data: the record opened from the doctor's problem list or the held-out table (edit it, or remove
// it), the pending edits, "Save as new version", the download as JSONL and "Continue from this checkpoint
// with new data". Logic: src/store/dataset-edit.ts, src/app/data-fix.ts.
import { useEffect, useId, useRef } from 'react';
import { editsSummary, nextVersionName } from '../../store/dataset-edit';
import { isTraining } from '../../store/store';
import { useActions, useAppState } from '../context';
import { ErrorNotice } from '../ErrorNotice';
import { downloadBytes } from '../export/download';
import './iterate.css';

/** "Fix" beside a problem or a held-out row: opens that record in the editor. */
export function FixRecordButton({ line, origin, from, label }: { line: number; origin: 'doctor' | 'heldout'; from?: { runId: string; step: number }; label?: string }) {
  const actions = useActions();
  return (
    <button type="button" className="secondary small fix-record" onClick={() => void actions.openRecord(line, origin, from)} aria-label={label ?? `Fix the record on line ${line}`} data-testid="fix-record">
      Fix
    </button>
  );
}

export function DataFixPanel() {
  const fix = useAppState((s) => s.dataFix);
  const training = useAppState(isTraining);
  const selection = useAppState((s) => s.selection);
  const runs = useAppState((s) => s.runs.list);
  const actions = useActions();
  const id = useId();
  const editor = useRef<HTMLTextAreaElement>(null);
  const panel = useRef<HTMLElement>(null);
  const openLine = fix.open?.line ?? null;
  useEffect(() => {
    if (openLine === null) return;
    panel.current?.scrollIntoView({ block: 'nearest' });
    editor.current?.focus();
  }, [openLine]);
  if (fix.phase === 'idle') return null;
  const pending = editsSummary(fix.edits);
  const from = fix.from ?? (selection.runId ? { runId: selection.runId, step: selection.step ?? runs.find((r) => r.id === selection.runId)?.latestCheckpoint?.step ?? null } : null);
  const fromRun = from ? runs.find((r) => r.id === from.runId) : undefined;
  const download = () => {
    const f = actions.fixedJsonl();
    if (f) downloadBytes(new TextEncoder().encode(f.text), f.filename, 'application/jsonl');
  };
  return (
    // Named "Record fixes", not after its heading: the e2e page objects find the Data panel as the region named "Data".
    <section ref={panel} className="panel data-fix" aria-label="Record fixes" aria-busy={fix.phase === 'busy' || fix.saving} data-testid="data-fix">
      <h2>Fix the data{fix.name ? `: ${fix.name}` : ''}</h2>
      {fix.phase === 'busy' && <p>Reading the dataset…</p>}
      {fix.error && <ErrorNotice title="The data could not be fixed" error={fix.error} />}
      {fix.open && (
        <form
          className="record-editor"
          onSubmit={(e) => {
            e.preventDefault();
            actions.applyRecord();
          }}
        >
          <label htmlFor={`${id}-rec`}>
            Record on line {fix.open.line} ({fix.open.origin === 'heldout' ? 'from the held-out table' : 'from the dataset report'})
          </label>
          <textarea
            id={`${id}-rec`}
            ref={editor}
            rows={Math.min(12, Math.max(4, fix.open.draft.split('\n').length + 1))}
            value={fix.open.draft}
            spellCheck={false}
            onChange={(e) => actions.setRecordDraft(e.target.value)}
            aria-describedby={fix.open.problem ? `${id}-problem` : `${id}-help`}
            aria-invalid={fix.open.problem ? true : undefined}
            onKeyDown={(e) => {
              if (e.key === 'Escape') actions.closeRecord();
            }}
          />
          {fix.open.problem ? (
            <p id={`${id}-problem`} className="help error-text" role="alert">
              {fix.open.problem}
            </p>
          ) : (
            <p id={`${id}-help`} className="help">
              One JSON object; it is saved as one line. Nothing changes in the stored dataset until you save a new version.
            </p>
          )}
          <div className="row">
            <button type="submit">Keep this edit</button>
            <button type="button" className="secondary danger" onClick={() => actions.removeRecord()}>
              Remove this record
            </button>
            <button type="button" className="secondary" onClick={() => actions.closeRecord()}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {pending && (
        <div className="pending-edits" data-testid="pending-edits">
          <p>
            Not saved yet: {pending}. Saving makes <strong>{fix.name ? nextVersionName(fix.name) : 'a new version'}</strong>; {fix.name} stays as it is, and the runs trained on it keep
            pointing to it.
          </p>
          <div className="row">
            <button type="button" onClick={() => void actions.saveDataVersion()} disabled={fix.saving}>
              {fix.saving ? 'Saving…' : 'Save as new version'}
            </button>
            <button type="button" className="secondary" onClick={download}>
              Download JSONL
            </button>
            <button type="button" className="secondary" onClick={() => actions.discardEdits()} disabled={fix.saving}>
              Discard edits
            </button>
          </div>
        </div>
      )}
      {fix.saved && (
        <div className="saved-version" data-testid="saved-version" role="status">
          <p>
            Saved <strong>{fix.saved.name}</strong> ({fix.saved.result.report.split.train} training, {fix.saved.result.report.split.val} validation examples
            {fix.saved.result.report.errorCount ? `, ${fix.saved.result.report.errorCount} lines still rejected` : ''}): it is now the Data panel&rsquo;s dataset.
          </p>
          <div className="row">
            <button type="button" className="secondary" onClick={download}>
              Download {fix.saved.name}
            </button>
            {fromRun && from?.step != null ? (
              <button type="button" onClick={() => void actions.continueWithFixedData({ runId: from.runId, step: from.step! })} disabled={training} data-testid="continue-fixed">
                Continue from {fromRun.name} at step {from.step} with {fix.saved.name}
              </button>
            ) : (
              <span className="help">Open a run (Runs) to continue from one of its checkpoints with the new version.</span>
            )}
          </div>
          <p className="help">
            The new run starts from that checkpoint&rsquo;s adapter (its method and shape), trains with the Train panel&rsquo;s other settings on {fix.saved.name}, and records where it
            started: the runs list and the run comparison show it.
          </p>
        </div>
      )}
    </section>
  );
}
