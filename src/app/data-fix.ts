// Fix the data and retrain: a record opened by its line (from the doctor's problem list or the held-out
// table) is edited or removed; the edits are saved as a new version of the dataset (checked by the doctor
// like any file and stored; the original stays), downloadable as JSONL; and a new run continues from a
// checkpoint on the fixed version (TrainPayload.startFrom: the lineage is stored with the run).
// State: the `dataFix` slice (src/store/dataset-edit.ts).
import type { WorkerClient } from '../protocol/client';
import { applyEdits, editableText, initialDataFix, lineOf, nextVersionName, notEditable, recordLine, type DataFixSlice, type RecordOrigin } from '../store/dataset-edit';
import { asProtocolError, pageError } from '../store/errors';
import { isTraining, patch, type AppStore } from '../store/store';
import { toOverrides, withStartAdapter } from '../store/training';
import type { TrainPayload } from '../protocol/messages';

export interface DataFixActions {
  /**
   * Opens record `line` in the editor: of the dataset on the Data panel (origin 'doctor'), or of the dataset
   * run `from.runId` trained on (origin 'heldout'; `from` is also where "Continue" starts by default).
   */
  openRecord(line: number, origin: RecordOrigin, from?: { runId: string; step: number }): Promise<void>;
  setRecordDraft(draft: string): void;
  /** Keeps the draft as the record's new text (refused, with why, when it is not one JSON object). */
  applyRecord(): void;
  /** Removes the open record. */
  removeRecord(): void;
  closeRecord(): void;
  /** Forgets the pending edits (and the open record). */
  discardEdits(): void;
  /** Saves the edited dataset as a new version ("name.v2.jsonl"): the doctor checks it and it becomes the Data panel's dataset. */
  saveDataVersion(): Promise<void>;
  /** The fixed dataset as JSONL for download: the saved version's text, else the text with the pending edits (null when nothing is open). */
  fixedJsonl(): { filename: string; text: string } | null;
  /** Starts a new run on the saved version whose adapter starts from a checkpoint (default: where the record was seen, else the selected one). */
  continueWithFixedData(from?: { runId: string; step: number }): Promise<void>;
}

export interface DataFixDeps {
  client: WorkerClient;
  store: AppStore;
  /** The Data panel's reading of a file (the new version goes through it). */
  inspectFile(file: File): Promise<void>;
  /** Starts a training as Start does (chart, checkpoints, runs and selection follow it). */
  train(payload: TrainPayload): Promise<void>;
}

export function createDataFix({ client, store, inspectFile, train }: DataFixDeps): DataFixActions {
  const state = () => store.getState();
  const fix = () => state().dataFix;
  const set = (u: Partial<DataFixSlice>) => patch(store, 'dataFix', u);

  /** The text of the dataset being fixed, read once (the edits apply to it). */
  async function load(datasetId: string): Promise<boolean> {
    if (fix().datasetId === datasetId && fix().text !== null) return true;
    const pending = Object.keys(fix().edits).length;
    if (pending) {
      // Another dataset (e.g. a run trained on another version): the pending edits are not dropped silently.
      set({ error: pageError('BAD_REQUEST', `${pending === 1 ? '1 edit' : `${pending} edits`} of "${fix().name}" ${pending === 1 ? 'is' : 'are'} not saved yet, and this record is in another dataset.`, 'Save them as a new version (or discard them) first.') });
      return false;
    }
    set({ ...initialDataFix(), phase: 'busy', datasetId });
    try {
      const r = await client.request('dataset-text', { datasetId });
      if (fix().datasetId !== datasetId) return false;
      set({ phase: 'ready', name: r.name, text: r.text });
      return true;
    } catch (e) {
      if (fix().datasetId === datasetId) set({ phase: 'error', error: asProtocolError(e) });
      return false;
    }
  }

  /** The checkpoint a continuation starts from: the given one, where the record was seen, else the selected run's selected (or newest) checkpoint. */
  function startPoint(from?: { runId: string; step: number }): { runId: string; step: number } | null {
    if (from) return from;
    if (fix().from) return fix().from;
    const sel = state().selection;
    const run = state().runs.list.find((r) => r.id === sel.runId);
    const step = sel.step ?? run?.latestCheckpoint?.step ?? null;
    return run && step !== null ? { runId: run.id, step } : null;
  }

  return {
    async openRecord(line, origin, from) {
      const s = state();
      let datasetId: string | null;
      let container: string | null | undefined;
      let hasValidation: boolean;
      if (origin === 'heldout' && from) {
        const job = s.runs.list.find((r) => r.id === from.runId)?.job;
        datasetId = job?.data.datasetId ?? null;
        hasValidation = !!job?.data.valDatasetId;
        // The doctor's reading of that file is not at hand: its name says whether it is JSONL.
        const ext = /\.([A-Za-z0-9]+)$/.exec(job?.data.name ?? '')?.[1]?.toLowerCase();
        container = ext === 'jsonl' || ext === 'ndjson' || !ext ? 'jsonl' : ext;
        if (!datasetId) {
          set({ ...initialDataFix(), phase: 'error', error: pageError('BAD_DATASET', 'This run was made outside the page: its dataset is not stored here.', 'Fix the file and add it again.') });
          return;
        }
      } else {
        datasetId = s.data.result?.datasetId ?? null;
        container = s.data.result?.report.container;
        hasValidation = !!s.data.result?.report.validation;
        if (!datasetId) return;
      }
      const why = notEditable(container, hasValidation && origin === 'heldout');
      if (why) {
        set({ ...initialDataFix(), phase: 'error', error: pageError('BAD_DATASET', why) });
        return;
      }
      if (!(await load(datasetId))) return;
      const text = fix().text!;
      const pending = fix().edits[line];
      const current = pending === undefined ? lineOf(text, line) : pending;
      if (current === null) {
        set({ open: null, error: pageError('NOT_FOUND', `Line ${line} is not in "${fix().name}" (it has ${text ? text.split('\n').length : 0} lines) or was removed.`) });
        return;
      }
      set({ open: { line, draft: editableText(current), origin, problem: null }, error: null, ...(origin === 'heldout' && from ? { from } : {}) });
    },

    setRecordDraft(draft) {
      const open = fix().open;
      if (open) set({ open: { ...open, draft, problem: null } });
    },

    applyRecord() {
      const open = fix().open;
      if (!open) return;
      const r = recordLine(open.draft);
      if (!r.ok) {
        set({ open: { ...open, problem: r.problem } });
        return;
      }
      set({ edits: { ...fix().edits, [open.line]: r.line }, open: null, saved: null });
    },

    removeRecord() {
      const open = fix().open;
      if (!open) return;
      set({ edits: { ...fix().edits, [open.line]: null }, open: null, saved: null });
    },

    closeRecord() {
      set({ open: null });
    },

    discardEdits() {
      set({ edits: {}, open: null, saved: null, error: null });
    },

    async saveDataVersion() {
      const f = fix();
      if (f.text === null || f.name === null || f.saving || !Object.keys(f.edits).length) return;
      const text = applyEdits(f.text, f.edits);
      const name = nextVersionName(f.name);
      set({ saving: true, error: null });
      try {
        await inspectFile(new File([text], name, { type: 'application/jsonl' }));
        const d = state().data;
        if (d.phase !== 'ready' || !d.result) throw d.error ? d.error : pageError('BAD_DATASET', `The new version "${name}" could not be read.`);
        // The new version is the one edited from now on (a further fix makes v3 of it).
        set({ saving: false, saved: { datasetId: d.result.datasetId, name, result: d.result }, datasetId: d.result.datasetId, name, text, edits: {}, open: null });
      } catch (e) {
        set({ saving: false, error: asProtocolError(e) });
      }
    },

    fixedJsonl() {
      const f = fix();
      if (f.text === null || f.name === null) return null;
      if (f.saved) return { filename: f.saved.name, text: f.text };
      return { filename: Object.keys(f.edits).length ? nextVersionName(f.name) : f.name, text: applyEdits(f.text, f.edits) };
    },

    async continueWithFixedData(from) {
      const f = fix();
      const s = state();
      if (!f.saved || isTraining(s)) return;
      const start = startPoint(from);
      const parent = start ? s.runs.list.find((r) => r.id === start.runId) : undefined;
      if (!start || !parent?.job) {
        set({ error: pageError('BAD_REQUEST', 'Pick the run and checkpoint to continue from (Runs or Checkpoints), then try again.') });
        return;
      }
      set({ error: null });
      // The adapter (method, shape, targets) and the objective are the parent run's; the rest is the Train panel's.
      const config = toOverrides({ ...withStartAdapter(s.train.config, parent.job.train), objective: parent.job.train.objective ?? 'sft' });
      await train({ datasetId: f.saved.datasetId, name: `${parent.name} → ${f.saved.name}`, config, startFrom: start });
    },
  };
}
