// Status lines that never contradict each other (issue 18 #5, #6): a run's stored status as the Runs
// list shows it (cancelled ≠ paused), the Train panel's lines naming the run each describes, and a
// checkpoint's figures naming the step they were measured at, with the retention rule that removes
// checkpoints. Plain data, no DOM.
import type { CheckpointInfo, RunSummary, TrainOutcome } from '../protocol/messages';

/** The Runs list's status badge. */
export function runStatusLabel(r: Pick<RunSummary, 'status' | 'active'>): string {
  if (r.active) return 'training now';
  return r.status === 'running' ? 'training' : r.status;
}

/** Whether Resume makes sense: the run stopped part way (paused, interrupted by a reload, failed) and a checkpoint holds where. A cancelled or finished run is not resumed. */
export function canResume(r: Pick<RunSummary, 'status' | 'active' | 'latestCheckpoint'>): boolean {
  return !r.active && r.latestCheckpoint !== null && (r.status === 'interrupted' || r.status === 'paused' || r.status === 'failed');
}

/** What a cancelled run offers instead of Resume (null for any other status). */
export function cancelledNote(r: Pick<RunSummary, 'status' | 'active' | 'latestCheckpoint'>): string | null {
  if (r.active || r.status !== 'cancelled') return null;
  return r.latestCheckpoint
    ? `Cancelled at step ${r.latestCheckpoint.step}. Its checkpoints are kept: open it to compare or export one, or continue from one as a new branch (Checkpoints, Rewind).`
    : 'Cancelled before its first checkpoint: nothing to continue from.';
}

/** "Stored run “capitals”: 172 steps · last training loss 0.7663 · best validation loss 0.8000" (the run the charts show). */
export function storedRunLine(name: string | null, steps: number, lastLoss: number | null, bestVal: number | null, nf: Intl.NumberFormat = new Intl.NumberFormat('en-US')): string {
  const parts = [`Stored run${name ? ` “${name}”` : ''}: ${nf.format(steps)} steps`];
  if (lastLoss !== null) parts.push(`last training loss ${lastLoss.toFixed(4)}`);
  if (bestVal !== null) parts.push(`best validation loss ${bestVal.toFixed(4)}`);
  return parts.join(' · ');
}

/**
 * The run an end-of-run notice describes, when the charts above it show another one ("of “number-words”,
 * the run trained here; the charts show “capitals”"), else null.
 */
export function outcomeRunNote(outcome: Pick<TrainOutcome, 'runId' | 'name'>, shown: { runId: string | null; name: string | null }): string | null {
  if (!shown.runId || shown.runId === outcome.runId) return null;
  if (shown.name === outcome.name) return `of the run trained here, “${outcome.name}” (the charts show another run of the same name, opened under Runs)`;
  return `of “${outcome.name}”, the run trained here (the charts show “${shown.name ?? shown.runId}”)`;
}

/** The word an end-of-run notice starts with. */
export function outcomeWord(o: Pick<TrainOutcome, 'stoppedBy' | 'reason'>): string {
  return o.stoppedBy ? 'Ended' : o.reason === 'cancelled' ? 'Cancelled' : o.reason === 'stopped' ? 'Stopped' : 'Finished';
}

/** A checkpoint's validation loss with the step it was measured at when that is another step: "1.0374 (step 50)". */
export function valAt(c: Pick<CheckpointInfo, 'step' | 'valLoss'> & { valStep?: number | null }, digits = 4): string {
  if (c.valLoss === null) return '–';
  const v = c.valLoss.toFixed(digits);
  return c.valStep !== undefined && c.valStep !== null && c.valStep !== c.step ? `${v} (step ${c.valStep})` : v;
}

/** The best badge's text: "best: val 0.8000" or "best: val 0.8000 (measured at step 150)". */
export function bestBadgeText(c: Pick<CheckpointInfo, 'step' | 'valLoss'> & { valStep?: number | null }): string {
  if (c.valLoss === null) return 'best';
  const other = c.valStep !== undefined && c.valStep !== null && c.valStep !== c.step;
  return `best: val ${c.valLoss.toFixed(4)}${other ? ` (measured at step ${c.valStep})` : ''}`;
}

/** Which checkpoints retention keeps, in one line (src/storage/checkpoints.ts applyRetention). */
export function retentionLine(keepLast: number): string {
  return `Kept: the best by validation loss, the recommended one and the trade-off front, pinned ones, branch points, and the newest ${keepLast}; older ones are removed as new ones are saved (Pin one to keep it).`;
}

/** The notice when retention removed checkpoints: "Removed step 20 and step 30 (retention: …)". */
export function removedNotice(steps: readonly number[], runName: string | null): string | null {
  if (!steps.length) return null;
  const sorted = [...steps].sort((a, b) => a - b);
  const list = sorted.length === 1 ? `step ${sorted[0]}` : `steps ${sorted.slice(0, -1).join(', ')} and ${sorted.at(-1)}`;
  return `Removed the checkpoint${sorted.length === 1 ? '' : 's'} at ${list}${runName ? ` of “${runName}”` : ''}: neither best, recommended, pinned nor among the newest.`;
}
