// What Compare's tuned side uses, and what its shown outputs were made with (issue 18 #3): the same
// "what is active" description as Generate (describeSource, src/store/generation.ts), for the selected
// run and checkpoint (the live adapter while the newest of a training run is selected). A shown result
// made with another run or step says so, and switching run clears results made with another run.
import type { AdapterInfo } from '../protocol/messages';
import { describeSource } from './generation';
import { selectedCheckpoint, type Selection } from './run-context';
import type { AppState, GenerationSource } from './store';

/** The run and step a shown result was made with. */
export interface MadeWith {
  runId: string;
  runName: string;
  step: number;
  training: boolean;
}

/** The model and adapter Compare's tuned side uses now (null: nothing selected, read or loaded yet). */
export function compareSource(s: Pick<AppState, 'model' | 'selection' | 'selectedRun' | 'live'>): GenerationSource | null {
  const model = s.model.summary;
  const sel = selectedCheckpoint(s);
  const run = s.selectedRun.run;
  if (!model || !sel || !run || run.runId !== sel.runId) return null;
  const live = run.training && sel.step === null;
  const liveStep = live && s.live.runId === run.runId && s.live.last ? s.live.last.step : null;
  const step = liveStep ?? run.checkpoint?.step ?? null;
  return { model: model.name, adapter: { runId: run.runId, runName: run.runName, step, training: live } };
}

/** "Base model vs tabtune-base + capitals.jsonl, step 12, adapter on". */
export function compareHeader(src: GenerationSource): string {
  return `Base model (${src.model}) vs ${describeSource(src)}`;
}

export function madeWithOf(a: AdapterInfo): MadeWith {
  return { runId: a.runId, runName: a.runName, step: a.step, training: a.training };
}

/** Whether a result made with `made` shows what `src` describes (same run and step). */
export function sameSource(made: MadeWith, src: GenerationSource | null): boolean {
  return !!src?.adapter && src.adapter.runId === made.runId && src.adapter.step === made.step;
}

/**
 * A line above a shown result made with another step than the one Compare uses now (null when it
 * shows what is active): "The prompt outputs below were made with tabtune-base + run, step 125 — compare again for step 130."
 */
export function staleResultLine(what: string, again: string, made: MadeWith | null, src: GenerationSource | null, model: string): string | null {
  if (!made || !src || sameSource(made, src)) return null;
  const was = describeSource({ model, adapter: { runId: made.runId, runName: made.runName, step: made.step, training: made.training } });
  const now = src.adapter ? describeSource(src) : src.model;
  return `${what} below ${what.endsWith('s') ? 'were' : 'was'} made with ${was}, not with ${now}: ${again}.`;
}

/**
 * Whether a result made with `made` still belongs to the new selection: a result of another run is
 * cleared; one of the same run stays (relabelled by staleResultLine) unless another step was picked.
 */
export function keepResult(made: Pick<MadeWith, 'runId' | 'step'>, selection: Selection | null): boolean {
  if (!selection || selection.runId !== made.runId) return false;
  return selection.step === null || selection.step === made.step;
}

/** "(3)" — the number of held-out rows shown; "(3 of 100)" when the run holds more validation examples. */
export function heldoutCount(rows: number | null, valExamples: number | null): string {
  if (rows === null) return valExamples !== null ? ` (${valExamples})` : '';
  return valExamples !== null && valExamples !== rows ? ` (${rows} of the run's ${valExamples})` : ` (${rows})`;
}
