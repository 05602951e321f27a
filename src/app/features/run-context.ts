// What the studio needs to know about the selected run before comparing or exporting: its name, its
// checkpoints, whether it is training right now, how its replies end. Read from the worker
// (list-runs, list-checkpoints), never guessed.
import type { WorkerClient } from '../../protocol/client';
import type { CheckpointInfo, ModelSummary, ProtocolError } from '../../protocol/messages';
import { pageError, protocolError, type Phase, type Selection } from './types';

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

export async function fetchRunContext(client: WorkerClient, selection: Selection): Promise<RunContext> {
  const [{ runs }, { checkpoints }] = await Promise.all([client.request('list-runs', {}), client.request('list-checkpoints', { runId: selection.runId })]);
  const run = runs.find((r) => r.id === selection.runId);
  if (!run) throw pageError('NOT_FOUND', 'The selected run is no longer stored.', 'Pick another run under Runs, or train a new one.');
  const sorted = [...checkpoints].sort((a, b) => a.step - b.step);
  const checkpoint = selection.step === null ? (sorted.at(-1) ?? null) : (sorted.find((c) => c.step === selection.step) ?? null);
  const job = run.job;
  return {
    runId: run.id,
    runName: run.name,
    training: run.active,
    checkpoints: sorted,
    checkpoint,
    stopStrings: job?.data.options.stop.stopStrings ?? [],
    stopTokenId: job?.data.options.stop.stopTokenId ?? null,
    template: job?.data.options.template ?? 'auto',
    model: job ? { name: job.model.name, numParams: job.model.numParams, arch: job.model.arch } : null,
    valExamples: job ? job.data.valExamples : null,
  };
}

/**
 * A feature's "read the selected run again": each call fetches the run context for the selection of
 * the moment and reports it through `set`; a read overtaken by a newer one (or finishing after
 * `live()` turned false) is dropped, so a late answer never overwrites a newer selection's.
 */
export function runContextRefresher(
  client: WorkerClient,
  selection: () => Selection | null,
  set: (update: { phase: Phase; run?: RunContext | null; error: ProtocolError | null }) => void,
  live: () => boolean,
): () => Promise<void> {
  let token = 0;
  return async () => {
    const mine = ++token;
    const sel = selection();
    if (!sel) {
      set({ phase: 'idle', run: null, error: null });
      return;
    }
    set({ phase: 'busy', error: null });
    try {
      const run = await fetchRunContext(client, sel);
      if (mine === token && live()) set({ phase: 'ready', run, error: null });
    } catch (e) {
      if (mine === token && live()) set({ phase: 'error', run: null, error: protocolError(e) });
    }
  };
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
  if (c.valLoss !== null) parts.push(`val loss ${c.valLoss.toFixed(3)}`);
  else if (c.trainLoss !== null) parts.push(`train loss ${c.trainLoss.toFixed(3)}`);
  if (c.isBest) parts.push('best');
  return parts.join(' · ');
}
