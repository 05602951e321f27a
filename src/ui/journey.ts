// The journey's steps (model → data → train → compare → export) and where the user stands, derived
// from the one page state (never stored): the step nav at the top of the page shows them, and the
// panels use `nextStep` to make the next step's button the loud one. Plain TS, no DOM.
import { datasetProblem } from '../store/data';
import { EXPORT_KINDS } from '../store/export';
import { isTraining, type AppState } from '../store/store';

export type StepId = 'model' | 'data' | 'train' | 'compare' | 'export';
/** done: the step has a result; current: the first step without one (or the run being trained); todo: later. */
export type StepState = 'done' | 'current' | 'todo';

export interface JourneyStep {
  id: StepId;
  label: string;
  state: StepState;
  /** A few words: what the step holds ("tabtune-tiny", "capitals.jsonl") or what it waits for. */
  detail: string;
}

export const STEP_LABELS: Record<StepId, string> = { model: 'Model', data: 'Data', train: 'Train', compare: 'Compare', export: 'Export' };
export const STEP_IDS: readonly StepId[] = ['model', 'data', 'train', 'compare', 'export'];

/** A usable dataset is read (not one whose problem blocks training). */
export function dataReady(s: Pick<AppState, 'data'>): boolean {
  const report = s.data.phase === 'ready' ? s.data.result?.report : undefined;
  return !!report && !datasetProblem(report)?.blocking;
}

/** What each step has, and the words for it. */
function facts(s: AppState): Record<StepId, { done: boolean; detail: string }> {
  const training = isTraining(s);
  const selected = s.selectedRun.run?.runId === s.selection.runId ? s.selectedRun.run : null;
  const runName = selected?.runName ?? s.runs.list.find((r) => r.id === s.selection.runId)?.name ?? null;
  const step = selected?.checkpoint?.step ?? s.selection.step;
  const runWords = runName ? `${runName}${step !== null ? `, step ${step}` : ''}` : 'a run';
  const compared = s.compare.heldout.result !== null || s.compare.prompt.tuned.outcome !== null;
  // A download of another run does not count for the run in view.
  const exported = s.selection.runId !== null && EXPORT_KINDS.some((k) => s.export[k].last?.runId === s.selection.runId);
  return {
    model: {
      done: s.model.summary !== null,
      detail: s.model.summary?.name ?? (s.model.phase === 'busy' ? 'loading…' : 'none loaded'),
    },
    data: {
      done: dataReady(s),
      detail: s.data.phase === 'busy' ? 'checking…' : dataReady(s) ? (s.data.label ?? 'read') : s.data.label && s.data.phase !== 'idle' ? 'needs a fix' : 'pick a file',
    },
    train: {
      done: !training && (s.train.phase === 'done' || s.selection.runId !== null),
      detail: training ? 'training…' : s.train.phase === 'done' || s.selection.runId !== null ? runWords : 'after the data',
    },
    compare: { done: compared, detail: compared ? 'compared' : 'after a run' },
    export: { done: exported, detail: exported ? 'downloaded' : 'after a run' },
  };
}

/** What to do in a step that is the current one and not started (the model and data steps say their own). */
const CURRENT_WORDS: Partial<Record<StepId, string>> = { train: 'pick a preset, Start', compare: 'base vs tuned', export: 'adapter or merged model' };

/** The five steps in order with their state: done ones, one current (the first not done, or Train while a run trains), the rest to do. */
export function journeySteps(s: AppState): JourneyStep[] {
  const f = facts(s);
  const current: StepId | null = isTraining(s) ? 'train' : (STEP_IDS.find((id) => !f[id].done) ?? null);
  return STEP_IDS.map((id) => ({
    id,
    label: STEP_LABELS[id],
    state: id === current ? 'current' : f[id].done ? 'done' : 'todo',
    detail: id === current && !f[id].done && CURRENT_WORDS[id] && !isTraining(s) ? CURRENT_WORDS[id] : f[id].detail,
  }));
}

/** The step the user is on (null when all are done). */
export function nextStep(s: AppState): StepId | null {
  return journeySteps(s).find((x) => x.state === 'current')?.id ?? null;
}

/** The words a step's state is read as (in the nav, and by screen readers). */
export function stateWords(state: StepState): string {
  return state === 'done' ? 'done' : state === 'current' ? 'next' : 'not yet';
}
