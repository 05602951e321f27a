// Preferences from the compare view: for a prompt shown with two replies (the prompt box, a held-out row)
// the user marks the better one, asks for two samples of the tuned model at two seeds and marks one, or
// edits a reply into a better one (the edit is chosen, the tuned reply rejected). Each mark is a pair stored
// with the run in IndexedDB (the worker's save-preference…); the selected run's pairs are listed, edited,
// deleted, exported as preference JSONL, and trained on: the JSONL goes through the dataset doctor
// (inspect-data, stored like any dataset) and a DPO run starts from the checkpoint the pairs were collected
// on (TrainPayload.startFrom), named "<run> + DPO". State: compare.preferences (src/store/compare.ts).
import type { NewPreference, PreferencePair, PreferencePatch, ProtocolError, TrainPayload } from '../protocol/messages';
import { preferencesToJsonl } from '../storage/preferences';
import {
  idleSamples,
  initialPreferences,
  pairFor,
  TWO_SAMPLES_TEMPERATURE,
  type PreferenceChoice,
  type PreferenceItem,
  type PreferencesState,
  type TwoSamplesState,
} from '../store/compare';
import { asProtocolError, pageError } from '../store/errors';
import { selectedCheckpoint, stepFor } from '../store/run-context';
import { isTraining, patchPart, watch } from '../store/store';
import { toOverrides } from '../store/training';
import type { PreferenceActions } from '../ui/context';
import type { SelectedRunFeatureDeps } from './run-context';

export interface PreferencesDeps extends SelectedRunFeatureDeps {
  /** Starts a training as the Train panel does (its live chart, checkpoints, runs list and selection follow it). */
  train(payload: TrainPayload): Promise<void>;
}

export interface PreferencesFeature extends PreferenceActions {
  dispose(): void;
}

/** The name of the JSONL file the pairs of a run export to (and the DPO dataset's name). */
export function preferencesFileName(runName: string): string {
  const slug = runName.trim().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';
  return `${slug}-preferences.jsonl`;
}

export function createPreferences({ client, store, selectedRun, train }: PreferencesDeps): PreferencesFeature {
  const state = () => store.getState();
  const prefs = () => state().compare.preferences;
  const set = (update: Partial<PreferencesState>) => patchPart(store, 'compare', 'preferences', update);
  const setSamples = (update: Partial<TwoSamplesState>) => set({ samples: { ...prefs().samples, ...update } });
  let listToken = 0;

  async function refreshPreferences(): Promise<void> {
    const runId = state().selection.runId;
    const mine = ++listToken;
    if (!runId) {
      set({ runId: null, phase: 'idle', list: [], error: null });
      return;
    }
    if (prefs().runId !== runId) set({ runId, phase: 'busy', list: [], error: null });
    try {
      const { preferences } = await client.request('list-preferences', { runId });
      if (mine === listToken) set({ runId, phase: 'ready', list: preferences });
    } catch (e) {
      if (mine === listToken) set({ runId, phase: 'error', list: [], error: asProtocolError(e) });
    }
  }

  /** Puts a saved or edited pair into the list when it belongs to the run listed. */
  function upsert(pair: PreferencePair): void {
    if (prefs().runId !== pair.runId) return;
    const list = prefs().list;
    const at = list.findIndex((p) => p.id === pair.id);
    set({ list: at < 0 ? [...list, pair] : list.map((p) => (p.id === pair.id ? pair : p)) });
  }

  function remove(runId: string, id: string): void {
    if (prefs().runId === runId) set({ list: prefs().list.filter((p) => p.id !== id) });
    const marks = Object.fromEntries(Object.entries(prefs().marks).filter(([, m]) => m.pairId !== id));
    set({ marks });
  }

  async function guard<T>(fn: () => Promise<T>): Promise<T | null> {
    set({ error: null });
    try {
      return await fn();
    } catch (e) {
      set({ error: asProtocolError(e) });
      return null;
    }
  }

  async function markPreference(item: PreferenceItem, choice: PreferenceChoice, edited?: string): Promise<void> {
    const was = prefs().marks[item.key];
    if (was && was.choice === choice && (choice !== 'edited' || was.edited === edited)) return;
    const samples = prefs().samples;
    const extra = { edited, samples: choice.startsWith('sample-') && samples.forRun === state().compare.prompt.runs ? samples.texts : null };
    let pair: ReturnType<typeof pairFor>;
    try {
      pair = pairFor(item, choice, extra);
    } catch (e) {
      set({ error: pageError('BAD_REQUEST', (e as Error).message, 'Generate the two samples first.') });
      return;
    }
    if (pair.chosen === pair.rejected) {
      set({
        error: pageError(
          'BAD_REQUEST',
          choice === 'edited' ? 'The edited reply is the same as the tuned one: nothing to prefer.' : 'Both replies are the same: nothing to prefer.',
          choice === 'edited' ? 'Change the reply, then save it.' : 'Try two tuned samples at different seeds, or edit a reply.',
        ),
      });
      return;
    }
    await guard(async () => {
      const input: NewPreference = { runId: item.runId, step: item.step, prompt: item.prompt, ...pair };
      const { preference } = await client.request('save-preference', input);
      // A new choice for the same item replaces its pair: one pair per shown prompt.
      if (was) {
        await client.request('delete-preference', { runId: item.runId, id: was.pairId }).catch(() => undefined);
        remove(item.runId, was.pairId);
      }
      set({ marks: { ...prefs().marks, [item.key]: { pairId: preference.id, choice, ...(choice === 'edited' ? { edited } : {}) } } });
      upsert(preference);
    });
  }

  async function unmarkPreference(key: string): Promise<void> {
    const mark = prefs().marks[key];
    if (!mark) return;
    const pair = prefs().list.find((p) => p.id === mark.pairId);
    const runId = pair?.runId ?? prefs().runId;
    if (!runId) return;
    await guard(async () => {
      await client.request('delete-preference', { runId, id: mark.pairId });
      remove(runId, mark.pairId);
    });
  }

  async function updatePreference(id: string, patch: PreferencePatch): Promise<boolean> {
    const runId = prefs().runId;
    if (!runId) return false;
    const ok = await guard(async () => {
      const { preference } = await client.request('update-preference', { runId, id, patch });
      upsert(preference);
      return true;
    });
    return ok === true;
  }

  async function deletePreference(id: string): Promise<void> {
    const runId = prefs().runId;
    if (!runId) return;
    await guard(async () => {
      await client.request('delete-preference', { runId, id });
      remove(runId, id);
    });
  }

  /** Two samples of the tuned model on the prompt box's last prompt, at its seed and the next one. */
  async function sampleTwo(): Promise<void> {
    const p = state().compare.prompt;
    const run = state().selectedRun.run;
    if (p.phase === 'busy' || prefs().samples.phase === 'busy') return;
    if (!p.adapter || !p.used || !p.sentPrompt || !run) {
      setSamples({ phase: 'error', error: pageError('BAD_REQUEST', 'Compare the outputs on a prompt first.', 'Two tuned samples are drawn for the prompt of the last comparison.') });
      return;
    }
    const forRun = p.runs;
    const temperature = p.used.temperature > 0 ? p.used.temperature : TWO_SAMPLES_TEMPERATURE;
    const seeds: [number, number] = [p.used.seed, p.used.seed + 1];
    set({ samples: { ...idleSamples(forRun), phase: 'busy', seeds, temperature } });
    try {
      // The checkpoint of the comparison (the selection may have moved since).
      if (!p.adapter.training) await client.request('load-adapter', { runId: p.adapter.runId, step: p.adapter.step });
      const texts: string[] = [];
      for (const seed of seeds) {
        const out = await client.request('generate', {
          prompt: p.sentPrompt,
          maxNewTokens: p.used.maxNewTokens,
          temperature,
          topK: p.used.topK > 0 ? p.used.topK : undefined,
          topP: p.used.topP < 1 ? p.used.topP : undefined,
          seed,
          stopStrings: run.stopStrings.length ? run.stopStrings : undefined,
          stopTokenIds: run.stopTokenId !== null ? [run.stopTokenId] : undefined,
          useAdapter: true,
          adapterStrength: p.strength,
        });
        texts.push(out.text);
      }
      if (state().compare.prompt.runs !== forRun) return;
      setSamples({ phase: 'ready', texts: [texts[0]!, texts[1]!] });
    } catch (e) {
      if (state().compare.prompt.runs === forRun) setSamples({ phase: 'error', error: asProtocolError(e) });
    }
  }

  function preferencesJsonl(): { filename: string; text: string; count: number } | null {
    const { list, runId } = prefs();
    if (!runId || !list.length) return null;
    const name = state().runs.list.find((r) => r.id === runId)?.name ?? state().selectedRun.run?.runName ?? runId;
    return { filename: preferencesFileName(name), text: preferencesToJsonl(list), count: list.length };
  }

  /** Why "Train with DPO" cannot start now (null: it can). */
  function dpoBlocker(): ProtocolError | null {
    const s = state();
    if (isTraining(s)) return pageError('BUSY', 'A run is training.', 'Wait for it to finish (or cancel it), then train on the preferences.');
    if (s.model.phase !== 'ready') return pageError('NO_MODEL', 'No model is loaded.', 'Load the model the run was trained on.');
    const sel = selectedCheckpoint(s);
    const run = s.selectedRun.run;
    if (!sel || !run || run.runId !== prefs().runId) return pageError('NO_ADAPTER', 'No run is selected.', 'Pick the run the preferences were collected on.');
    if (run.training) return pageError('BUSY', `Run "${run.runName}" is training.`, 'Wait for it to finish, then train on its preferences.');
    if (!prefs().list.length) return pageError('BAD_DATASET', 'There are no preferences to train on.', 'Mark the better reply for some prompts in the compare view first.');
    if (!run.checkpoint) return pageError('NOT_FOUND', `Run "${run.runName}" has no checkpoint to start from.`);
    return null;
  }

  async function trainDpoOnPreferences(): Promise<void> {
    if (prefs().dpo.phase === 'busy') return;
    set({ dpo: { phase: 'busy', step: 'dataset', error: null } });
    const fail = (error: ProtocolError) => set({ dpo: { phase: 'error', step: null, error } });
    try {
      await selectedRun.refresh();
      const blocker = dpoBlocker();
      if (blocker) return fail(blocker);
      const s = state();
      const run = s.selectedRun.run!;
      const step = stepFor(run, selectedCheckpoint(s)!)!;
      const exported = preferencesJsonl()!;
      // The pairs go through the dataset doctor like any file (kept in this browser, so the run can be resumed).
      const inspected = await client.request('inspect-data', {
        source: { kind: 'text', text: exported.text, name: exported.filename },
        options: { format: 'preference-jsonl', valFraction: s.data.options.valFraction, lossOn: 'completion', ...(s.data.options.maxSeqLen ? { maxSeqLen: s.data.options.maxSeqLen } : {}) },
      });
      if (inspected.report.split.train === 0) {
        return fail(pageError('BAD_DATASET', 'None of the preferences could be used for training.', 'Check the pairs in the list (too long for the model, or empty).'));
      }
      // The adapter's kind and shape come from the run it continues; the rest are the Train panel's settings.
      const sft = s.runs.list.find((r) => r.id === run.runId)?.job?.train;
      const base = s.train.config;
      const config = toOverrides({ ...base, mode: sft?.mode ?? base.mode, lora: sft?.lora ?? base.lora, oft: sft?.oft ?? base.oft, prompt: sft?.prompt ?? base.prompt, objective: 'dpo' });
      set({ dpo: { phase: 'busy', step: 'training', error: null } });
      await train({ datasetId: inspected.datasetId, name: `${run.runName} + DPO`, config, startFrom: { runId: run.runId, step } });
      // How the run went is the Train panel's to say (its outcome or its error).
      set({ dpo: { phase: 'ready', step: null, error: null } });
    } catch (e) {
      fail(asProtocolError(e));
    }
  }

  const unwatch = [
    // The list follows the selected run (a new run, another run opened, a run deleted).
    watch(store, (s) => s.selection.runId, () => void refreshPreferences()),
    // Items of another model's comparisons are gone; their stored pairs stay.
    watch(store, (s) => s.compare.prompt.runs, (runs) => {
      if (prefs().samples.forRun !== runs) setSamples(idleSamples(runs));
    }),
  ];
  if (state().selection.runId) void refreshPreferences();

  return {
    refreshPreferences,
    markPreference,
    unmarkPreference,
    updatePreference,
    deletePreference,
    sampleTwo,
    preferencesJsonl,
    trainDpoOnPreferences,
    dispose() {
      for (const u of unwatch) u();
      listToken++;
      set({ ...initialPreferences(), runId: prefs().runId, list: prefs().list });
    },
  };
}
