// What the page knows about the selected run before comparing or exporting it: its name, its
// checkpoints, whether it is training right now, how its replies end (read from the worker by
// src/app/run-context.ts, never guessed), and the checks Compare and Export make with it.
import type { CheckpointInfo, ModelSummary, ProtocolError } from '../protocol/messages';
import { pageError } from './errors';
import type { AppState, Phase } from './store';

/** A picked checkpoint; step null = the run's newest checkpoint. */
export interface Selection {
  runId: string;
  step: number | null;
}

export interface RunContext {
  runId: string;
  runName: string;
  /** The run is being trained in this worker now (its adapter changes step by step). */
  training: boolean;
  /** Stored checkpoints, oldest first. */
  checkpoints: CheckpointInfo[];
  /** The checkpoint the selection means (the newest for step null), or null when there is none yet. */
  checkpoint: CheckpointInfo | null;
  /** Stop strings the run's replies were trained to end with (also given to the base model, for a fair comparison). */
  stopStrings: string[];
  /** The token id the run's replies were trained to end with (null: none); sent to both sides of a comparison. */
  stopTokenId: number | null;
  /** 'plain' when the run's prompts were written as `{prompt}\nAnswer:`; 'chat-template' or 'auto' otherwise. */
  template: 'auto' | 'chat-template' | 'plain';
  /** The base model the run was trained on (null for a run made elsewhere). */
  model: { name: string; numParams: number; arch: string } | null;
  /** Validation examples the run holds (null when unknown). */
  valExamples: number | null;
}

/** The selected run as the worker last described it (read again when the selection, the model or the checkpoints change). */
export interface SelectedRunSlice {
  /** busy: reading list-runs / list-checkpoints. */
  phase: Phase;
  run: RunContext | null;
  error: ProtocolError | null;
}

/** What Compare and Export check before they ask the worker for anything (the app state, or the parts a panel selected). */
export type BlockerInput = Pick<AppState, 'selection' | 'selectedRun'> & { model: Pick<AppState['model'], 'summary'> };

/** The selection slice ({ runId: string | null; step }) as a Selection (null: nothing picked). */
export function selectedCheckpoint(s: Pick<AppState, 'selection'>): Selection | null {
  return s.selection.runId ? { runId: s.selection.runId, step: s.selection.step ?? null } : null;
}

export function sameSelection(a: Selection | null, b: Selection | null): boolean {
  return a === b || (!!a && !!b && a.runId === b.runId && a.step === b.step);
}

/** Why the selected checkpoint cannot be used yet (null: it can). */
export function unusable(run: RunContext, selection: Selection, model: ModelSummary | null): ProtocolError | null {
  if (!model) return pageError('NO_MODEL', 'No model is loaded.', 'Load a model first (Model panel).');
  if (run.model && (run.model.numParams !== model.numParams || run.model.arch !== model.arch)) {
    return pageError('MODEL_MISMATCH', `Run "${run.runName}" was trained on ${run.model.name}, not on the loaded ${model.name}.`, `Load ${run.model.name} in the Model panel, then come back.`);
  }
  if (!run.checkpoint && !run.training) {
    if (selection.step !== null) return pageError('NOT_FOUND', `Run "${run.runName}" has no checkpoint at step ${selection.step} (retention may have deleted it).`, 'Pick another checkpoint in the timeline.');
    return pageError('NOT_FOUND', `Run "${run.runName}" has no checkpoint yet.`, 'Let it train until its first checkpoint is saved, then compare.');
  }
  return null;
}

/**
 * The step to ask the worker for: the selected one, else the newest checkpoint; undefined while the run
 * trains and the newest is wanted (the worker then uses the live adapter).
 */
export function stepFor(run: RunContext, selection: Selection): number | undefined {
  if (selection.step !== null) return selection.step;
  if (run.training) return undefined;
  return run.checkpoint?.step;
}

/** "step 120 (newest) · val loss 0.412" — only what the worker measured. */
export function describeCheckpoint(run: RunContext, selection: Selection): string {
  const c = run.checkpoint;
  if (!c) return run.training ? 'the adapter being trained now' : 'no checkpoint yet';
  const parts = [`step ${c.step}${selection.step === null ? ' (newest)' : ''}`];
  // A checkpoint saved between evaluations carries an earlier step's figure: it says which (issue 18 #6).
  if (c.valLoss !== null) parts.push(`val loss ${c.valLoss.toFixed(3)}${c.valStep != null && c.valStep !== c.step ? ` (measured at step ${c.valStep})` : ''}`);
  else if (c.trainLoss !== null) parts.push(`train loss ${c.trainLoss.toFixed(3)}`);
  if (c.isBest) parts.push('best');
  return parts.join(' · ');
}
