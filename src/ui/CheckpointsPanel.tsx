import { useId, useState } from 'react';
import type { CheckpointInfo } from '../protocol/messages';
import { isTraining, type AppState } from '../store/store';
import { formatBytes } from '../storage/errors';
import { DEFAULT_KEEP_LAST } from '../storage/context';
import { bestBadgeText, removedNotice, retentionLine, valAt } from '../store/status-lines';
import { useActions, useAppState } from './context';
import { ErrorNotice } from './ErrorNotice';

const loss = (v: number | null) => (v === null ? '–' : v.toFixed(4));

/** Names the branch a rewind starts (prefilled with "<run> from step N"), then starts it. */
function RewindForm({ c, runName, onDone }: { c: CheckpointInfo; runName: string; onDone(): void }) {
  const actions = useActions();
  const [name, setName] = useState(`${runName} from step ${c.step}`);
  const id = useId();
  return (
    <form
      className="rewind-form row"
      aria-label={`New branch from step ${c.step}`}
      onSubmit={(e) => {
        e.preventDefault();
        onDone();
        void actions.rewindTo(c.runId, c.step, name.trim() || undefined);
      }}
      onKeyDown={(e) => e.key === 'Escape' && onDone()}
    >
      <label htmlFor={`${id}-name`}>Name of the new branch</label>
      <input id={`${id}-name`} value={name} onChange={(e) => setName(e.target.value)} autoFocus maxLength={200} />
      <button type="submit">Start branch</button>
      <button type="button" className="secondary" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}

function Checkpoint({ c, selected, busy, runName, offId, offReason }: { c: CheckpointInfo; selected: boolean; busy: boolean; runName: string; offId: string; offReason: string | null }) {
  const actions = useActions();
  const [confirm, setConfirm] = useState(false);
  const [rewinding, setRewinding] = useState(false);
  const label = `Checkpoint at step ${c.step}`;
  return (
    <li className={`ckpt${selected ? ' selected' : ''}${c.isBest ? ' best' : ''}`} data-testid="checkpoint" data-step={c.step}>
      <button type="button" className="ckpt-main" aria-pressed={selected} aria-label={`${label}${c.isBest ? ', best validation loss' : ''}${selected ? ', selected' : ''}`} onClick={() => actions.selectCheckpoint(c.runId, c.step)}>
        <span className="ckpt-step">Step {c.step}</span>
        <span className="ckpt-badges">
          {c.isBest && <span className="badge best" title="Lowest validation loss of the run's checkpoints" data-testid="best-badge">{bestBadgeText(c)}</span>}
          {c.isLatest && <span className="badge">latest</span>}
          {c.pinned && <span className="badge pinned">pinned</span>}
        </span>
        <span className="ckpt-loss">
          train {loss(c.trainLoss)} · val {valAt(c)}
        </span>
        <span className="ckpt-size">{formatBytes(c.sizeBytes)}</span>
      </button>
      <div className="ckpt-actions" role="group" aria-label={`${label} actions`}>
        <button type="button" className="link" onClick={() => void actions.pinCheckpoint(c.runId, c.step, !c.pinned)} aria-label={`${c.pinned ? 'Unpin' : 'Pin'} step ${c.step}`} title="Pinned checkpoints are never removed to save space">
          {c.pinned ? 'Unpin' : 'Pin'}
        </button>
        <button
          type="button"
          className="link"
          disabled={busy}
          onClick={() => setRewinding(true)}
          aria-label={`Continue training from step ${c.step} as a new branch`}
          aria-describedby={busy ? offId : undefined}
          title={busy && offReason ? offReason : 'Continue training from here as a new run; this run stays as it is'}
        >
          Rewind
        </button>
        {confirm ? (
          <>
            <button type="button" className="link danger" onClick={() => void actions.deleteCheckpoint(c.runId, c.step)} aria-label={`Really delete step ${c.step}`}>
              Really delete
            </button>
            <button type="button" className="link" onClick={() => setConfirm(false)}>
              Keep
            </button>
          </>
        ) : (
          <button type="button" className="link danger" onClick={() => setConfirm(true)} aria-label={`Delete step ${c.step}`} disabled={busy && c.isLatest} aria-describedby={busy && c.isLatest ? offId : undefined} title={busy && c.isLatest && offReason ? offReason : undefined}>
            Delete
          </button>
        )}
      </div>
      {rewinding && !busy && <RewindForm c={c} runName={runName} onDone={() => setRewinding(false)} />}
    </li>
  );
}

const runNameOf = (s: AppState) => s.runs.list.find((r) => r.id === s.checkpoints.runId)?.name ?? s.train.run?.name ?? null;

export function CheckpointsPanel() {
  const cps = useAppState((s) => s.checkpoints);
  const selection = useAppState((s) => s.selection);
  const runName = useAppState(runNameOf);
  const busy = useAppState(isTraining);
  const phase = useAppState((s) => s.train.phase);
  const trainingName = useAppState((s) => s.train.run?.name ?? null);
  const actionError = useAppState((s) => s.runs.actionError);
  const removed = useAppState((s) => (s.checkpoints.removed && s.checkpoints.removed.runId === s.checkpoints.runId ? removedNotice(s.checkpoints.removed.steps, runNameOf(s)) : null));
  const id = useId();
  const latest = cps.list.length ? cps.list[cps.list.length - 1]!.step : null;
  const selectedStep = selection.runId === cps.runId ? (selection.step ?? latest) : null;
  // Why Rewind (and deleting the newest checkpoint) is off: one run trains at a time, and a paused run still holds it.
  const offReason = !busy
    ? null
    : phase === 'paused'
      ? `Rewind is off while ${trainingName ? `“${trainingName}”` : 'a run'} is paused: a paused run still holds the trainer. Resume it and let it finish, or Cancel it (Train panel), then rewind.`
      : `Rewind is off while ${trainingName ? `“${trainingName}”` : 'a run'} is training: one run trains at a time. Let it finish, or Pause and Cancel it (Train panel), then rewind.`;
  return (
    <section className="panel checkpoints" aria-labelledby={`${id}-h`} aria-busy={cps.phase === 'busy'}>
      <h2 id={`${id}-h`}>Checkpoints</h2>
      {cps.runId === null && <p className="help">Checkpoints of the run you train or open appear here; pick one to compare or export it.</p>}
      {cps.runId !== null && runName && (
        <p className="help">
          Run <strong>{runName}</strong>. Select a checkpoint to compare or export it; <em>Rewind</em> continues training from it as a new branch.
        </p>
      )}
      {cps.phase === 'busy' && <p>Reading checkpoints…</p>}
      {cps.phase === 'error' && cps.error && <ErrorNotice title="The checkpoints could not be listed" error={cps.error} />}
      {cps.phase === 'ready' && cps.list.length === 0 && <p className="help">No checkpoint yet: one is saved every “Checkpoint every” steps and when training ends.</p>}
      {cps.list.length > 0 && (
        <ol className="timeline" aria-label="Checkpoint timeline">
          {cps.list.map((c) => (
            <Checkpoint key={c.step} c={c} selected={c.step === selectedStep} busy={busy} runName={runName ?? 'run'} offId={`${id}-off`} offReason={offReason} />
          ))}
        </ol>
      )}
      {cps.list.length > 0 && offReason && (
        <p className="help" id={`${id}-off`} data-testid="checkpoints-off">
          {offReason} The newest checkpoint cannot be deleted meanwhile.
        </p>
      )}
      {removed && (
        <p className="notice warn" role="status" data-testid="checkpoints-removed">
          {removed}
        </p>
      )}
      {cps.list.length > 0 && (
        <p className="help" data-testid="checkpoints-retention">
          {retentionLine(DEFAULT_KEEP_LAST)} A figure measured at an earlier step than its checkpoint says that step.
        </p>
      )}
      {actionError && <ErrorNotice title="That did not work" error={actionError} />}
    </section>
  );
}
