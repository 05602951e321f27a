// The page's state: one zustand vanilla store made of slices, created outside React so the protocol
// layer (src/app) can write to it. Components read it with selectors; streamed tokens are read
// through `subscribe` so React does not re-render on every token.
import { createStore, type StoreApi } from 'zustand/vanilla';
import type {
  BackendPreference,
  BackendStatus,
  BackendTimingReport,
  CheckpointInfo,
  ColumnMapping,
  EvalMetrics,
  Events,
  GenerateOutcome,
  InspectDataResult,
  ModelLocation,
  ModelSummary,
  ProtocolError,
  RunSummary,
  StepMetrics,
  StorageReport,
  TrainConfig,
  TrainOutcome,
  TrainStart,
} from '../protocol/messages';
import { initialCompare, type CompareSlice } from './compare';
import { initialExport, type ExportSlice } from './export';
import { initialReport, type ReportSlice } from './report';
import type { SelectedRunSlice } from './run-context';
import type { MeasuredSpeed } from './guide';
import { emptySeries, type Series } from './series';
import { initialTradeoff, type TradeoffSlice } from './tradeoff';
import { initialDataFix, type DataFixSlice } from './dataset-edit';
import { initialRunsCompare, type RunsCompareSlice } from './runs-compare';
import { presetConfig, type PresetName, type StartFrom } from './training';

export type Phase = 'idle' | 'busy' | 'ready' | 'error';

export interface BackendSlice {
  preference: BackendPreference;
  /** Threads asked for the WASM backend (null: the library's default). */
  wasmThreads: number | null;
  phase: Phase;
  status: BackendStatus | null;
  error: ProtocolError | null;
  /** Which backend trains the loaded model faster, measured (time-backends). */
  timing: BackendTimingSlice;
}

export interface BackendTimingSlice {
  phase: Phase;
  /** The latest figures for the loaded model (measured now or stored earlier on this device). */
  report: BackendTimingReport | null;
  /** While measuring: the backend being timed and how many are done. */
  progress: Events['backend-timing'] | null;
  error: ProtocolError | null;
  /** The user asked to time a software WebGPU adapter too. */
  allowSoftware: boolean;
}

export function initialBackendTiming(): BackendTimingSlice {
  return { phase: 'idle', report: null, progress: null, error: null, allowSoftware: false };
}

export interface CatalogEntry {
  name: string;
  url: string;
  origin: 'bundled' | 'reference' | string;
}

export interface LoadProgress {
  file: string;
  loaded: number;
  total: number | null;
  fraction: number;
}

export interface ModelSlice {
  /** What the server offers under /models/ (index.json). */
  catalog: { phase: Phase; entries: CatalogEntry[]; hint: string | null; error: ProtocolError | null };
  /** 'idle' with no summary and an empty catalog = no model available. */
  phase: Phase;
  location: ModelLocation | null;
  /** What the user sees for the model being loaded ("stories260K", a URL). */
  locationLabel: string | null;
  progress: LoadProgress | null;
  /** The working model; it stays while another one loads, and when that load fails. */
  summary: ModelSummary | null;
  /** Why the last load failed (the model in `summary`, if any, still works). */
  error: ProtocolError | null;
  /** What that failed load tried ("asdf", a URL, a catalog name): the error names it, not the working model. */
  errorLabel: string | null;
}

export interface GenerationSlice {
  phase: Phase;
  /** Request id of the generation in flight (what Stop cancels). */
  requestId: number | null;
  prompt: string;
  /** Continuation streamed so far (the prompt not included). */
  text: string;
  tokenCount: number;
  outcome: GenerateOutcome | null;
  error: ProtocolError | null;
  /** What the output was made with (the model, and the run and step of the adapter, or none): it stays with the output. */
  madeWith: GenerationSource | null;
}

/** The model and adapter a generation uses: "tabtune-base + capitals.jsonl, step 12". */
export interface GenerationSource {
  model: string;
  /** null: the base model alone. */
  adapter: { runId: string; runName: string; step: number | null; training: boolean } | null;
  /** An adapter could be applied and the user switched it off. */
  adapterOff?: boolean;
}

export interface SettingsSlice {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  /** Generate with the selected run's adapter (when there is one); false = the base model alone. */
  useAdapter: boolean;
}

/** An example dataset the app serves (public/examples/index.json). */
export interface ExampleEntry {
  id: string;
  title: string;
  description: string;
  format: string;
  train: string;
  val?: string;
  trainRecords: number;
  valRecords?: number;
}

/** How the doctor reads the dataset; changing one re-inspects it. */
export interface DataOptions {
  /** null: the detected format. */
  format: string | null;
  valFraction: number;
  /** null: the model's context length. */
  maxSeqLen: number | null;
  lossOn: 'completion' | 'all';
  /** CSV/TSV: which columns are the prompt and the completion (null: the detected or suggested ones). Not kept across files. */
  columns: ColumnMapping | null;
}

export interface DataSlice {
  /** busy: reading / checking; ready: `result` holds the report; error: `error` says why. */
  phase: Phase;
  examples: { phase: Phase; entries: ExampleEntry[]; error: ProtocolError | null };
  /** What the user gave ("my.jsonl", "Example: Number words to digits"). */
  label: string | null;
  /** The separate validation file checked with it (else the validation share is split off). */
  validationLabel: string | null;
  options: DataOptions;
  progress: { file: 'train' | 'validation'; phase: 'read' | 'tokenize'; fraction: number } | null;
  result: InspectDataResult | null;
  error: ProtocolError | null;
  /** Request id of the inspection in flight (what a new file cancels). */
  requestId: number | null;
}

export type TrainPhase = 'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'stopping' | 'done' | 'error';

export interface TrainSlice {
  preset: PresetName | 'custom';
  config: TrainConfig;
  phase: TrainPhase;
  /** Request id of the train / resume-run in flight (what Cancel cancels). */
  requestId: number | null;
  run: TrainStart | null;
  outcome: TrainOutcome | null;
  error: ProtocolError | null;
  /** General text the user added to the forgetting probe (sent with the next run), or null. */
  probeText: { name: string; text: string } | null;
  /** Where the next DPO run starts: null = the base model, else a stored run's checkpoint (TrainPayload.startFrom). */
  startFrom: StartFrom | null;
  /** The checkpoint steps of the run picked to start from (list-checkpoints), for the step picker; null when none is picked. */
  startCheckpoints: { runId: string; phase: Phase; steps: number[]; error: ProtocolError | null } | null;
  /** The newest training speed measured on the loaded model (a run's steps), for the time estimate before Start. */
  speed: MeasuredSpeed | null;
  /** One step of the current settings timed before any run (measure-step), for the settings named by `key` (stepTimingKey). */
  stepTiming: { key: string; phase: Phase; speed: MeasuredSpeed | null; error: ProtocolError | null } | null;
}

/**
 * What streams in while training (one update per step): components read it through `subscribe`,
 * never with a selector, so React does not re-render per step.
 */
export interface LiveSlice {
  /** The run the series belong to. */
  runId: string | null;
  series: Series;
  /** Bumped on every change of `series` (its arrays are appended in place). */
  version: number;
  last: StepMetrics | null;
  /** The latest evaluation, its measurements (extra) and their detail (details) included. */
  lastEval: EvalMetrics | null;
}

export interface CheckpointsSlice {
  runId: string | null;
  phase: Phase;
  list: CheckpointInfo[];
  error: ProtocolError | null;
  /** Steps retention removed from the run being trained (its checkpoint events' deletedSteps), for the notice. */
  removed?: { runId: string; steps: number[] } | null;
}

export interface RunsSlice {
  phase: Phase;
  list: RunSummary[];
  error: ProtocolError | null;
  storage: { report: StorageReport; estimate: { usage: number; quota: number } | null } | null;
  /** The user closed the "resume the interrupted run" banner. */
  bannerDismissed: boolean;
  /** A run or checkpoint action the user asked for failed (rename, delete, pin…). */
  actionError: ProtocolError | null;
  /**
   * The checkpoints of a run's best and recommended steps (RunQuality), for their figures in the list;
   * read again when the run's updatedAt changes.
   */
  figures: Record<string, { updatedAt: number; checkpoints: CheckpointInfo[] }>;
}

/** The run and checkpoint the user picked (Checkpoints, Runs); step null = the run's newest. Compare and Export use it. */
export interface SelectionSlice {
  runId: string | null;
  step: number | null;
}

export interface AppState {
  backend: BackendSlice;
  model: ModelSlice;
  generation: GenerationSlice;
  settings: SettingsSlice;
  data: DataSlice;
  train: TrainSlice;
  live: LiveSlice;
  checkpoints: CheckpointsSlice;
  runs: RunsSlice;
  selection: SelectionSlice;
  /** What the worker says about the selected run (Compare and Export read it). */
  selectedRun: SelectedRunSlice;
  compare: CompareSlice;
  export: ExportSlice;
  /** The run report (model card) of the selected run or checkpoint. */
  report: ReportSlice;
  /** The selected run's checkpoints as task vs forgetting, its explored path and what to keep. */
  tradeoff: TradeoffSlice;
  /** Runs picked in the Runs panel and compared side by side; the runs list's order. */
  runsCompare: RunsCompareSlice;
  /** A dataset's records being fixed, saved as a new version. */
  dataFix: DataFixSlice;
}

export type AppStore = StoreApi<AppState>;

export const DEFAULT_SETTINGS: SettingsSlice = { prompt: 'Once upon a time', maxNewTokens: 64, temperature: 0, useAdapter: true };

export function initialState(
  overrides: { backend?: Partial<BackendSlice>; settings?: Partial<SettingsSlice>; saved?: SavedSettings | null } = {},
): AppState {
  const saved = overrides.saved ?? null;
  return {
    backend: { preference: 'auto', wasmThreads: null, phase: 'idle', status: null, error: null, timing: initialBackendTiming(), ...overrides.backend },
    model: {
      catalog: { phase: 'idle', entries: [], hint: null, error: null },
      phase: 'idle',
      location: null,
      locationLabel: null,
      progress: null,
      summary: null,
      error: null,
      errorLabel: null,
    },
    generation: { phase: 'idle', requestId: null, prompt: '', text: '', tokenCount: 0, outcome: null, error: null, madeWith: null },
    settings: { ...DEFAULT_SETTINGS, ...overrides.settings },
    data: {
      phase: 'idle',
      examples: { phase: 'idle', entries: [], error: null },
      label: null,
      validationLabel: null,
      options: { ...DEFAULT_DATA_OPTIONS, ...saved?.dataOptions },
      progress: null,
      result: null,
      error: null,
      requestId: null,
    },
    // Balanced = the engine's defaults (the settings the learning test holds to the bar on tabtune-base) with early stopping.
    train: { preset: saved?.preset ?? 'balanced', config: saved?.config ?? presetConfig(saved?.preset && saved.preset !== 'custom' ? saved.preset : 'balanced', 'llama'), phase: 'idle', requestId: null, run: null, outcome: null, error: null, probeText: null, startFrom: null, startCheckpoints: null, speed: null, stepTiming: null },
    live: emptyLive(),
    checkpoints: { runId: null, phase: 'idle', list: [], error: null },
    runs: { phase: 'idle', list: [], error: null, storage: null, bannerDismissed: false, actionError: null, figures: {} },
    selection: { runId: null, step: null },
    selectedRun: { phase: 'idle', run: null, error: null },
    compare: initialCompare(),
    export: initialExport(),
    report: initialReport(),
    tradeoff: initialTradeoff(),
    runsCompare: initialRunsCompare(),
    dataFix: initialDataFix(),
  };
}

export const DEFAULT_DATA_OPTIONS: DataOptions = { format: null, valFraction: 0.1, maxSeqLen: null, lossOn: 'completion', columns: null };

export function emptyLive(runId: string | null = null): LiveSlice {
  return { runId, series: emptySeries(), version: 0, last: null, lastEval: null };
}

export function createAppStore(state: AppState = initialState()): AppStore {
  return createStore<AppState>()(() => state);
}

/** Shallow-merges `patch` into one slice. */
export function patch<K extends keyof AppState>(store: AppStore, slice: K, update: Partial<AppState[K]>): void {
  store.setState((s) => ({ [slice]: { ...s[slice], ...update } }) as Pick<AppState, K>);
}

/** Shallow-merges `update` into one part of a slice (e.g. compare.heldout, export.merged). */
export function patchPart<K extends keyof AppState, P extends keyof AppState[K]>(store: AppStore, slice: K, part: P, update: Partial<AppState[K][P]>): void {
  store.setState((s) => {
    const whole: AppState[K] = { ...s[slice], [part]: { ...s[slice][part], ...update } };
    return { [slice]: whole } as Pick<AppState, K>;
  });
}

/**
 * Calls `onChange` when the selected value changes (by `equal`), with the value before. It keeps the
 * last value it saw rather than trusting zustand's `prev`: when a listener sets state, the listeners
 * after it are called with the newest state but an older `prev`. Returns the unsubscribe function.
 */
export function watch<T>(store: AppStore, select: (s: AppState) => T, onChange: (next: T, prev: T) => void, equal: (a: T, b: T) => boolean = Object.is): () => void {
  let last = select(store.getState());
  return store.subscribe((s) => {
    const next = select(s);
    if (equal(last, next)) return;
    const prev = last;
    last = next;
    onChange(next, prev);
  });
}

/** True when the catalog is known and offers nothing, and no model was loaded another way. */
export function noModelAvailable(s: AppState): boolean {
  return s.model.catalog.phase === 'ready' && s.model.catalog.entries.length === 0 && !s.model.summary && s.model.phase !== 'busy';
}

export function canGenerate(s: AppState): boolean {
  return s.model.phase === 'ready' && s.generation.phase !== 'busy';
}

/** A training request is in flight (starting, running, paused or stopping). */
export function isTraining(s: AppState): boolean {
  return ['starting', 'running', 'pausing', 'paused', 'stopping'].includes(s.train.phase);
}

/** Why Start is not possible now, or null when it is. */
export function cannotStart(s: AppState): string | null {
  if (isTraining(s)) return 'A run is training.';
  if (s.model.phase !== 'ready') return s.model.phase === 'busy' ? 'The model is still loading.' : 'Load a model first.';
  if (s.data.phase === 'busy') return 'The dataset is still being checked.';
  if (!s.data.result) return 'Add a dataset first (Data, above).';
  if (s.data.result.report.split.train === 0) return 'The dataset has no valid examples to train on.';
  return null;
}

/** Runs interrupted by a reload or a closed tab that can continue from a checkpoint. */
export function interruptedRuns(list: readonly RunSummary[]): RunSummary[] {
  return list.filter((r) => r.status === 'interrupted' && !r.active && r.latestCheckpoint !== null);
}

/** The sequence length the memory estimate assumes: the longest example (capped by the context), else the context. */
export function estimateSeqLen(s: AppState): number {
  const ctx = s.model.summary?.contextLength ?? 512;
  const t = s.data.result?.report.tokens;
  return t && t.examples > 0 ? Math.min(t.maxSeqLen, Math.max(2, t.total.max)) : ctx;
}

/** What the page keeps across reloads besides IndexedDB (training settings, how the doctor reads data). */
export interface SavedSettings {
  version: 1;
  preset: PresetName | 'custom';
  config: TrainConfig;
  dataOptions: DataOptions;
}

export function savedSettings(s: AppState): SavedSettings {
  return { version: 1, preset: s.train.preset, config: s.train.config, dataOptions: { ...s.data.options, columns: null } };
}

/** Reads saved settings back, or null when they are missing or from another version. */
export function parseSavedSettings(json: string | null): SavedSettings | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as Partial<SavedSettings>;
    if (v?.version !== 1 || !v.config || typeof v.config !== 'object' || !v.config.lora || !v.dataOptions || typeof v.preset !== 'string') return null;
    if (!['quick', 'balanced', 'thorough', 'custom'].includes(v.preset)) return null;
    return { version: 1, preset: v.preset, config: { ...presetConfig('balanced', 'llama'), ...v.config }, dataOptions: { ...DEFAULT_DATA_OPTIONS, ...v.dataOptions } };
  } catch {
    return null;
  }
}
