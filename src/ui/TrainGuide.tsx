// The Train panel's plain-words guidance (src/store/guide.ts): a warning when the data is too small for the
// chosen steps, the time estimate next to Start (from a speed measured on the loaded model), the verdict
// at the end of a run (did it learn: the base model's held-out measurement to the last evaluation), and why a disabled control is off.
import { useEffect } from 'react';
import { baseRow, dataSizeWarning, estimateTime, evalRows, formatDuration, runVerdict, stepTimingKey } from '../store/guide';
import { isTraining } from '../store/store';
import { methodLabel } from '../store/training';
import { useActions, useAppState } from './context';

const nf = new Intl.NumberFormat('en-US');

/** Before Start: the dataset is too small for the steps (or the run too short), in plain words. */
export function DataSizeWarning() {
  const config = useAppState((s) => s.train.config);
  const trainExamples = useAppState((s) => s.data.result?.report.split.train ?? null);
  const training = useAppState(isTraining);
  if (trainExamples === null || training) return null;
  const warning = dataSizeWarning(config, trainExamples);
  if (!warning) return null;
  return (
    <p className="notice warn" role="status" data-testid="data-size-warning">
      {warning}
    </p>
  );
}

/** Next to Start: how long the planned steps take at a speed measured on this model (a timed step of these settings, else the last run's), or why there is no estimate yet. */
export function TimeEstimate({ id }: { id: string }) {
  const actions = useActions();
  const config = useAppState((s) => s.train.config);
  const runSpeed = useAppState((s) => s.train.speed);
  const timing = useAppState((s) => s.train.stepTiming);
  const model = useAppState((s) => (s.model.phase === 'ready' ? s.model.summary : null));
  const trainExamples = useAppState((s) => s.data.result?.report.split.train ?? null);
  const key = useAppState((s) => stepTimingKey(s.model.summary, s.data.result?.datasetId ?? null, s.data.options.maxSeqLen, s.train.config));
  const tokensPerExample = useAppState((s) => {
    const t = s.data.result?.report.tokens;
    return t && t.sampleOf > 0 ? t.tokensPerEpoch / t.sampleOf : null;
  });
  const training = useAppState(isTraining);
  // Times a step of the settings once they rest for a moment (each change of what a step costs times it again).
  useEffect(() => {
    if (!key || training || !model) return;
    const t = setTimeout(() => void actions.measureStep(), 600);
    return () => clearTimeout(t);
  }, [key, training, model, actions]);
  if (training || !model || trainExamples === null || tokensPerExample === null) return null;
  const timed = timing && timing.key === key ? timing : null;
  const speed = timed?.speed ?? runSpeed;
  const est = estimateTime(config, { trainExamples, tokensPerExample }, speed, model);
  const evals = (n: number) => (n ? `, plus ${n} evaluation${n === 1 ? '' : 's'}` : '');
  let text: string;
  if (est && est.speed.timed) {
    text = `Takes ${formatDuration(est.seconds)} for ${nf.format(est.steps)} steps (a step of these settings timed on ${est.speed.model.name}: ${nf.format(Math.round(est.speed.tokensPerSec))} tokens/s)${evals(est.evaluations)}.`;
  } else if (est) {
    text = `Takes ${formatDuration(est.seconds)} for ${nf.format(est.steps)} steps at ${nf.format(Math.round(est.speed.tokensPerSec))} tokens/s (measured by run “${est.speed.runName}” on ${est.speed.model.name}, ${methodLabel(config)} now)${evals(est.evaluations)}.`;
  } else if (timed?.phase === 'busy') {
    text = `Timing a training step on ${model.name}…`;
  } else {
    text = `No time estimate yet${timed?.error ? ` (${timed.error.message})` : ''}: no step of these settings has been timed on ${model.name}; the ETA shows after the first steps.`;
  }
  return (
    <span id={id} className="help inline time-estimate" data-testid="time-estimate" aria-live="polite">
      {text}
    </span>
  );
}

/** At the end of a run: whether it learned, from its held-out evaluations. */
export function RunVerdict({ runId }: { runId: string }) {
  // A string, not the object: the selector runs on every store change and React compares its result.
  const verdict = useAppState((s) => {
    if (s.live.runId !== runId) return null;
    const v = runVerdict(evalRows(s.live.series), s.train.outcome?.runId === runId ? baseRow(s.train.outcome.baseline) : null);
    return `${v.kind}|${v.text}`;
  });
  if (!verdict) return null;
  const cut = verdict.indexOf('|');
  return <VerdictLine kind={verdict.slice(0, cut)} text={verdict.slice(cut + 1)} />;
}

function VerdictLine({ kind, text }: { kind: string; text: string }) {
  return (
    <p className={`verdict verdict-${kind}`} data-testid="train-verdict" data-kind={kind}>
      <strong>{text}</strong>
    </p>
  );
}

/** The verdict's kind for the run that just ended ('yes', 'learning', 'no', 'unknown'), or null. */
export function useVerdictKind(runId: string | null): string | null {
  return useAppState((s) => (runId && s.live.runId === runId ? runVerdict(evalRows(s.live.series), s.train.outcome?.runId === runId ? baseRow(s.train.outcome.baseline) : null).kind : null));
}

/** Why each training control is off (null: it is on), for aria-describedby and the visible line under the buttons. */
export function trainControlReasons(phase: string, hasRequest: boolean): { pause: string | null; resume: string | null; cancel: string | null } {
  const idle = !['starting', 'running', 'pausing', 'paused', 'stopping'].includes(phase);
  return {
    pause: phase === 'running' ? null : idle ? 'Pause: nothing is training.' : phase === 'paused' ? 'Pause: the run is already paused (Resume continues it).' : 'Pause: wait for the run to start or stop.',
    resume: phase === 'paused' ? null : idle ? 'Resume: no run is paused (a stored run resumes from Runs).' : 'Resume: the run is not paused.',
    cancel: !idle && phase !== 'stopping' && hasRequest ? null : idle ? 'Cancel: nothing is training.' : 'Cancel: the run is already stopping.',
  };
}
