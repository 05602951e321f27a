// What Generate uses, from the one page state: the loaded model and, when the user keeps the adapter on,
// the adapter of the selected run and checkpoint (the run being trained while one trains: its adapter is
// the one attached). Plain data (no TF.js, no DOM): the controller asks the worker for exactly this, the
// Generate panel says it before and after generating ("tabtune-base + capitals.jsonl, step 12, adapter on").
import type { AppState, GenerationSource } from './store';
import { isTraining } from './store';

type Adapter = NonNullable<GenerationSource['adapter']>;

/**
 * The adapter Generate could apply now, whether or not it is switched on: the training run's (while one
 * trains), else the selected run's checkpoint (its newest for step null). null when none can be applied:
 * nothing selected, no checkpoint yet, a run made elsewhere, or one trained on another model.
 */
export function availableAdapter(s: Pick<AppState, 'train' | 'live' | 'selection' | 'selectedRun' | 'runs' | 'model'>): Adapter | null {
  if (isTraining(s as AppState) && s.train.run) {
    const r = s.train.run;
    const step = s.live.runId === r.runId && s.live.last ? s.live.last.step : r.startStep > 0 ? r.startStep : null;
    return { runId: r.runId, runName: r.name, step, training: true };
  }
  const runId = s.selection.runId;
  const model = s.model.summary;
  if (!runId || !model) return null;
  const summary = s.runs.list.find((r) => r.id === runId) ?? null;
  const ctx = s.selectedRun.run?.runId === runId ? s.selectedRun.run : null;
  // A run made elsewhere (no job) cannot be attached here; one trained on another model does not fit.
  if (summary && !summary.job) return null;
  const trainedOn = summary?.job?.model ?? ctx?.model ?? null;
  if (!trainedOn || trainedOn.numParams !== model.numParams || trainedOn.arch !== model.arch) return null;
  const newest = ctx ? (ctx.checkpoints.at(-1)?.step ?? null) : (summary?.latestCheckpoint?.step ?? null);
  const step = s.selection.step ?? newest;
  if (step === null) return null;
  return { runId, runName: summary?.name ?? ctx?.runName ?? runId, step, training: false };
}

/** What the next generation uses (null: no model is loaded). */
export function generationSource(s: Pick<AppState, 'train' | 'live' | 'selection' | 'selectedRun' | 'runs' | 'model' | 'settings'>): GenerationSource | null {
  const model = s.model.summary;
  if (!model) return null;
  const adapter = availableAdapter(s);
  return s.settings.useAdapter || !adapter ? { model: model.name, adapter } : { model: model.name, adapter: null, adapterOff: true };
}

/** "tabtune-base + capitals.jsonl, step 12, adapter on", "tabtune-base (no adapter)". */
export function describeSource(src: GenerationSource): string {
  const a = src.adapter;
  if (!a) return `${src.model} (${src.adapterOff ? 'adapter off' : 'no adapter'}: the base model alone)`;
  const step = a.step === null ? (a.training ? 'training now' : 'newest step') : `step ${a.step}${a.training ? ', training now' : ''}`;
  return `${src.model} + ${a.runName}, ${step}, adapter on`;
}
