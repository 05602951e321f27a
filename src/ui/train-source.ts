// What the Train panel uses, in the same words as Generate, Compare and Export (describeSource,
// src/store/generation.ts, the one source of truth): before a run the model and the dataset, while
// one trains the model + the run's adapter at its newest step, after it the run and step it made.
// Plain TS, no DOM.
import { availableAdapter, describeSource } from '../store/generation';
import { isTraining, type AppState } from '../store/store';
import { dataReady } from './journey';

/** "Training tabtune-base + capitals.jsonl, step 7, training now, adapter on"; "Trained …, step 12, adapter on"; "Trains tabtune-base on capitals.jsonl"; null without a model. */
export function trainSource(s: AppState): string | null {
  const model = s.model.summary;
  if (!model) return null;
  if (isTraining(s)) {
    const a = availableAdapter(s);
    return a ? `Training ${describeSource({ model: model.name, adapter: a })}` : null;
  }
  const o = s.train.phase === 'done' ? s.train.outcome : null;
  if (o) return `Trained ${describeSource({ model: model.name, adapter: { runId: o.runId, runName: o.name, step: o.checkpoint?.step ?? o.step, training: false } })}`;
  return dataReady(s) && s.data.label ? `Trains ${model.name} on ${s.data.label}` : null;
}
