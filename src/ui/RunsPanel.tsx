import { useId, useMemo, useState } from 'react';
import type { CheckpointInfo, RunSummary } from '../protocol/messages';
import { interruptedRuns, isTraining } from '../store/store';
import { checkpointText, isRecipeBranch, runCriterion } from '../store/tradeoff';
import { lineageText, runMethodLabel } from '../store/training';
import { compareRunsBlocker, parentText, runParent, sortRuns, type RunsSort } from '../store/runs-compare';
import { formatBytes } from '../storage/errors';
import { cancelledNote, canResume, runStatusLabel } from '../store/status-lines';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';

const date = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeStyle: 'short' });

/** A run made by import-adapter (src/worker/import-adapter.ts): no dataset, one checkpoint at step 0. */
const isImported = (r: RunSummary) => r.job?.data.name === 'imported adapter' && !r.job.data.datasetId;

function settings(r: RunSummary): string {
  const t = r.job?.train;
  if (!t) return 'made outside the page';
  // An imported adapter was trained elsewhere: only its kind and shape are known.
  if (isImported(r)) return runMethodLabel(t);
  const length = t.steps > 0 ? `${t.steps} steps` : `${t.epochs} epoch${t.epochs === 1 ? '' : 's'}`;
  return `${runMethodLabel(t)}, lr ${t.lr}, ${length}, batch ${t.batchSize}`;
}

// Cancelled ≠ paused (issue 18 #5): a cancelled run says so and offers no Resume (src/store/status-lines.ts).
const resumable = canResume;

/** "best step 30 (val loss 0.800, general skill −7%) · recommended step 20 (…)" from the run's decision and those checkpoints' measurements. */
function Decision({ r, figures }: { r: RunSummary; figures: CheckpointInfo[] | undefined }) {
  const q = r.quality;
  if (isRecipeBranch(r) && r.latestCheckpoint) {
    // A point of its parent's trade-off path, stored: its checkpoint holds the measurements made when it was explored.
    const text = checkpointText(r.latestCheckpoint, runCriterion(r).criterion);
    return text ? (
      <p className="run-decision" data-testid="run-decision">
        trade-off point at step {r.latestCheckpoint.step}: {text}
      </p>
    ) : null;
  }
  if (!q || (q.bestStep === null && q.recommendedStep === null)) return null;
  const part = (name: string, step: number | null) => {
    if (step === null) return null;
    const c = figures?.find((x) => x.step === step);
    const text = c ? checkpointText(c, q.criterion) : null;
    return `${name} step ${step}${text ? ` (${text})` : figures && !c ? ' (checkpoint deleted)' : ''}`;
  };
  const parts = [part('best', q.bestStep), q.recommendedStep === q.bestStep ? null : part('recommended', q.recommendedStep)].filter(Boolean);
  return (
    <p className="run-decision" data-testid="run-decision">
      {parts.join(' · ')}
      {q.recommendedStep !== null && q.recommendedStep === q.bestStep ? ' · also the recommended one' : ''}
      {q.stoppedEarly ? ' · stopped early' : ''}
    </p>
  );
}

function RunRow({ r, selected, training }: { r: RunSummary; selected: boolean; training: boolean }) {
  const figures = useAppState((s) => s.runs.figures[r.id]?.checkpoints);
  const lineage = useAppState((s) => lineageText(r, s.runs.list));
  // A branch's parent by name (the line above says only "branch from step N"); a continued run's is its lineage text.
  const parent = useAppState((s) => {
    const p = runParent(r, s.runs.list);
    return p?.kind === 'branch' ? parentText(p) : null;
  });
  const picked = useAppState((s) => s.runsCompare.picked.includes(r.id));
  const actions = useActions();
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(r.name);
  const [confirm, setConfirm] = useState(false);
  const id = useId();
  return (
    <li className={`run${selected ? ' selected' : ''}`} data-testid="run" data-run-id={r.id}>
      <div className="run-head">
        <input type="checkbox" checked={picked} onChange={(e) => actions.pickRun(r.id, e.target.checked)} aria-label={`Compare ${r.name}`} data-testid="run-pick" />
        {renaming ? (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              void actions.renameRun(r.id, name).then(() => setRenaming(false));
            }}
          >
            <label htmlFor={`${id}-name`} className="visually-hidden">
              New name for {r.name}
            </label>
            <input id={`${id}-name`} type="text" value={name} onChange={(e) => setName(e.target.value)} autoFocus maxLength={200} />
            <button type="submit" disabled={!name.trim()}>
              Save
            </button>
            <button type="button" className="secondary" onClick={() => setRenaming(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <strong className="run-name">{r.name}</strong>
        )}
        <span className={`badge status-${r.status}`}>{runStatusLabel(r)}</span>
      </div>
      <p className="run-meta">
        {r.job?.data.name ?? r.dataset?.name ?? 'unknown dataset'}
        {r.job && !isImported(r) ? ` (${r.job.data.trainExamples} + ${r.job.data.valExamples} examples)` : ''} · {settings(r)} · best validation loss{' '}
        {r.bestValLoss !== null ? `${r.bestValLoss.toFixed(4)} at step ${r.bestValStep}` : '–'} · {r.checkpointCount} checkpoint{r.checkpointCount === 1 ? '' : 's'}
        {r.latestCheckpoint ? ` (newest at step ${r.latestCheckpoint.step})` : ''} · {date.format(r.updatedAt)}
        {r.parentRunId ? ` · branch from step ${r.parentCheckpointStep}` : ''}
        {r.recipe ? ' (a point of its trade-off path)' : ''}
        {lineage ? <span data-testid="run-lineage"> · {lineage}</span> : null}
      </p>
      {parent ? (
        <p className="run-parent" data-testid="run-parent">
          {parent}
        </p>
      ) : null}
      <Decision r={r} figures={figures} />
      {r.error && <p className="help">Failed: {r.error}</p>}
      {cancelledNote(r) && (
        <p className="help" data-testid="run-cancelled">
          {cancelledNote(r)}
        </p>
      )}
      <div className="row run-actions" role="group" aria-label={`Actions for ${r.name}`}>
        <button type="button" className="secondary" onClick={() => void actions.openRun(r.id)} aria-label={`Open ${r.name}`} aria-pressed={selected}>
          Open
        </button>
        {resumable(r) && (
          <button type="button" onClick={() => void actions.resumeRun(r.id)} disabled={training} aria-label={`Resume ${r.name}`}>
            Resume
          </button>
        )}
        <button type="button" className="secondary" onClick={() => (setName(r.name), setRenaming(true))} aria-label={`Rename ${r.name}`}>
          Rename
        </button>
        {confirm ? (
          <>
            <button type="button" className="secondary danger" onClick={() => void actions.deleteRun(r.id)} aria-label={`Really delete ${r.name}`}>
              Really delete
            </button>
            <button type="button" className="secondary" onClick={() => setConfirm(false)}>
              Keep
            </button>
          </>
        ) : (
          <button type="button" className="secondary danger" onClick={() => setConfirm(true)} disabled={r.active} aria-label={`Delete ${r.name}`}>
            Delete
          </button>
        )}
      </div>
    </li>
  );
}

function Storage() {
  const storage = useAppState((s) => s.runs.storage);
  if (!storage) return null;
  const used = storage.estimate?.usage ?? storage.report.totalBytes;
  const quota = storage.estimate?.quota ?? null;
  return (
    <div className="storage" data-testid="storage">
      {quota ? <meter min={0} max={quota} value={used} aria-label="Browser storage used" /> : null}
      <span className="help">
        Storage: tabtune keeps {formatBytes(storage.report.totalBytes)} (checkpoints and datasets); this site uses {formatBytes(used)}
        {quota ? ` of ${formatBytes(quota)} the browser allows` : ''}.
      </span>
    </div>
  );
}

/** "Import a PEFT adapter…": a zip or a folder (adapter_config.json + adapter_model.safetensors) becomes a run Train can start from. */
function ImportAdapter() {
  const actions = useActions();
  const modelReady = useAppState((s) => s.model.phase === 'ready');
  const training = useAppState(isTraining);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Awaited<ReturnType<typeof actions.importAdapter>> | null>(null);
  const id = useId();
  const disabled = busy || training || !modelReady;
  const run = async (input: HTMLInputElement, pick: { zip?: File; files?: File[] }) => {
    setBusy(true);
    setResult(null);
    try {
      setResult(await actions.importAdapter(pick));
    } finally {
      setBusy(false);
      input.value = '';
    }
  };
  return (
    <details className="import-adapter" data-testid="import-adapter">
      <summary>Import a PEFT adapter…</summary>
      <p className="help" id={`${id}-help`}>
        A LoRA, OFT or prompt-tuning adapter made for the loaded model (adapter_config.json and adapter_model.safetensors, as PEFT or tabtune&apos;s export
        saves them). It is kept as a run of its own: generate, compare and export with it, or continue it on your data (the data fix&apos;s <em>Continue from…</em>, or
        Train&apos;s <em>Start from</em> with DPO).
        {training ? ' (Not while a run trains.)' : !modelReady ? ' Load the model first.' : ''}
      </p>
      <div className="row">
        <label htmlFor={`${id}-zip`}>A .zip of the adapter</label>
        <input
          id={`${id}-zip`}
          type="file"
          accept=".zip,application/zip"
          disabled={disabled}
          aria-describedby={`${id}-help`}
          data-testid="import-adapter-zip"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f) void run(e.target, { zip: f });
          }}
        />
      </div>
      <div className="row">
        <label htmlFor={`${id}-dir`}>Or its folder</label>
        <input
          id={`${id}-dir`}
          type="file"
          multiple
          disabled={disabled}
          aria-describedby={`${id}-help`}
          data-testid="import-adapter-folder"
          {...{ webkitdirectory: '' }}
          onChange={(e) => {
            const files = Array.from(e.target.files ?? []);
            if (files.length) void run(e.target, { files });
          }}
        />
      </div>
      {busy && <p role="status">Reading the adapter and checking it against the model…</p>}
      {result && 'error' in result && <ErrorNotice title="The adapter could not be imported" error={result.error} />}
      {result && 'run' in result && (
        <p role="status" data-testid="import-adapter-done">
          Imported as <strong>{result.run.name}</strong>: it is the active adapter now, and a new run can continue it.
          {result.warnings.length ? ` Note: ${result.warnings.join(' ')}` : ''}
        </p>
      )}
    </details>
  );
}

export function RunsPanel() {
  const runs = useAppState((s) => s.runs);
  const selected = useAppState((s) => s.selection.runId);
  const training = useAppState(isTraining);
  const sort = useAppState((s) => s.runsCompare.sort);
  const picked = useAppState((s) => s.runsCompare.picked);
  const actions = useActions();
  const sorted = useMemo(() => sortRuns(runs.list, sort, runs.figures), [runs.list, sort, runs.figures]);
  const cannotCompare = compareRunsBlocker(picked, runs.list);
  const id = useId();
  return (
    <section className="panel runs" aria-labelledby={`${id}-h`} aria-busy={runs.phase === 'busy'}>
      <h2 id={`${id}-h`}>Runs</h2>
      {runs.phase === 'busy' && runs.list.length === 0 && <p>Reading stored runs…</p>}
      {runs.phase === 'error' && runs.error && <ErrorNotice title="The stored runs could not be read" error={runs.error} />}
      {runs.phase === 'ready' && runs.list.length === 0 && <p className="help">No runs yet. Every training run is kept in this browser, with its checkpoints, across reloads.</p>}
      {runs.list.length > 1 && (
        <div className="runs-toolbar" role="group" aria-label="Order and compare runs">
          <label>
            Order by{' '}
            <select value={sort} onChange={(e) => actions.setRunsSort(e.target.value as RunsSort)}>
              <option value="newest">newest first</option>
              <option value="val-loss">best validation loss (lowest first)</option>
              <option value="heldout">held-out score (exact match, highest first)</option>
            </select>
          </label>
          <button type="button" onClick={() => void actions.compareRuns()} disabled={cannotCompare !== null} aria-describedby={`${id}-cmp`}>
            Compare {picked.length >= 2 ? `${picked.length} runs` : 'runs'}
          </button>
          <span id={`${id}-cmp`} className="help">
            {cannotCompare ?? 'Losses overlaid, the settings that differ and each run’s held-out outputs.'}
          </span>
        </div>
      )}
      {runs.list.length > 0 && (
        <ul className="run-list" aria-label="Stored runs">
          {sorted.map((r) => (
            <RunRow key={r.id} r={r} selected={r.id === selected} training={training} />
          ))}
        </ul>
      )}
      <ImportAdapter />
      <Storage />
    </section>
  );
}

/** After a reload: offers to continue a run the reload interrupted. */
export function ResumeBanner() {
  // Select the list (a stable reference) and filter here: a selector returning a new array loops React.
  const list = useAppState((s) => s.runs.list);
  const runs = useMemo(() => interruptedRuns(list), [list]);
  const dismissed = useAppState((s) => s.runs.bannerDismissed);
  const training = useAppState(isTraining);
  const actions = useActions();
  if (dismissed || training || runs.length === 0) return null;
  const r = runs[0]!;
  return (
    <div className="banner" role="alert" data-testid="resume-banner">
      <span>
        The run <strong>{r.name}</strong> was interrupted (the page was closed or reloaded). It can continue from its checkpoint at step {r.latestCheckpoint!.step}
        {runs.length > 1 ? ` (${runs.length - 1} more interrupted run${runs.length > 2 ? 's' : ''} under Runs)` : ''}.
      </span>
      <button type="button" onClick={() => void actions.resumeRun(r.id)}>
        Resume {r.name}
      </button>
      <button type="button" className="secondary" onClick={() => actions.dismissBanner()}>
        Not now
      </button>
    </div>
  );
}
