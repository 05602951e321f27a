// The one message module the page and the TF.js worker share (like web-llm's). Every request has a
// kind and an id; the worker answers that id with exactly one `result` or `error`, and may send
// `progress`/`token` events for it before that. Both sides import these types, so renaming a field
// fails to compile on both.
import type { BackendName, BackendPreference, BackendReport } from '../model/backend';
import type { BackendTiming } from '../model/backend-timing';
import type { BackendTimingRecord } from '../storage/backend-timings';
import type { Baseline } from '../train/quality/index';
import type { ModelInfo } from '../model/load';
import type { DataReport } from '../data/doctor';
import type { ColumnMapping, ReadProgress } from '../data/types';
import type { CheckpointInfo, NewPreference, PreferencePair, PreferencePatch, RunQuality, RunRecord, StorageReport } from '../storage/index';
import type { FreeableItem } from '../storage/errors';
import type { EvalMetrics, StepMetrics } from '../train/loop';
import type { DeviceMemoryLimits } from '../train/memory-plan';
import type { TrainCapabilities, TrainConfig, TrainConfigOverrides } from '../train/config';
import type { MetricPoint } from '../train/metrics';
import type { TradeoffPoint, TradeoffRecipe } from '../train/quality/decisions';
import type { CardInput } from '../report/card';

export type { BackendName, BackendPreference, BackendReport } from '../model/backend';
export type { BackendTiming, TimingStatus } from '../model/backend-timing';
export type { BackendTimingRecord } from '../storage/backend-timings';
export type { DataReport } from '../data/doctor';
export type { ColumnMapping } from '../data/types';
export type { CheckpointInfo, RunQuality, RunRecord, RunStatus, StorageReport } from '../storage/index';
export type { NewPreference, PreferencePair, PreferencePatch, PreferencePrompt, PreferenceSource } from '../storage/index';
export type { FreeableItem } from '../storage/errors';
export type { EvalMetrics, StepMetrics } from '../train/loop';
export type { LoraConfig, TrainCapabilities, TrainConfig, TrainConfigOverrides } from '../train/config';

/** Where a model's files come from. Files are structured-cloned into the worker. */
export type ModelLocation =
  /** cache: keep a Cache API copy (for remote URLs; off for the page's own /models/). */
  | { kind: 'url'; url: string; cache?: boolean }
  | { kind: 'hub'; id: string }
  | { kind: 'files'; files: File[] };

export interface BackendStatus extends BackendReport {
  /** What tf.getBackend() says in the worker: the backend really in use. */
  tfBackend: string;
  crossOriginIsolated: boolean;
  /** What training may fill on this backend (the memory plan's limits: WASM's heap cap, WebGPU's buffer limits). */
  memory?: DeviceMemoryLimits;
}

/** time-backends: which backend trains the loaded model faster on this device (cached per model and device). */
export interface TimeBackendsPayload {
  /** Measure again even when a stored timing exists. */
  force?: boolean;
  /** Also time a software WebGPU adapter (SwiftShader, llvmpipe…), which is otherwise skipped. Auto still never moves to one. */
  allowSoftware?: boolean;
  /** The fixed batch every backend trains on (default 1 window of 64 tokens, cut to the model's context). */
  batch?: { windows: number; seq: number };
  /** Wall time the timed steps of one backend may take (default 1500 ms). */
  budgetMs?: number;
}

export interface BackendTimingReport extends BackendTimingRecord {
  /** Read from storage (measured earlier on this device), not measured now. */
  fromCache: boolean;
  /** With 'auto': the backend now in use when the worker moved the model to the faster one, else null. */
  switchedTo: BackendStatus | null;
  /** Why the worker did not move to the faster one (an explicit backend choice, a run training…), else null. */
  kept: string | null;
  /** tf.memory().numTensors when the request started and when it ended (equal: the timing left nothing behind, unless other requests ran meanwhile). */
  tensors: { before: number; after: number };
}

/** The loaded model as the page shows it: the engine's ModelInfo plus where and how fast it loaded. */
export interface ModelSummary extends ModelInfo {
  name: string;
  /** Where it was loaded from, for the user ("http://…/models/stories260K/"). */
  label: string;
  loadMs: number;
  /** What the worker can train on it (the Train panel offers only these modes). */
  training: TrainCapabilities;
}

export interface GenerateParams {
  prompt: string;
  maxNewTokens: number;
  /** 0 = greedy. */
  temperature: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopStrings?: string[];
  /**
   * Also stop when one of these token ids is produced (e.g. the run's stop token, so the base side of
   * a comparison ends where the tuned side does). The tuned side adds the run's own stop token anyway.
   */
  stopTokenIds?: number[];
  /**
   * Generate with the active LoRA adapter (the run trained last, or the one `load-adapter` picked).
   * Default: true when an adapter is active. false = the base model. With the adapter, generation also
   * stops at the run's stop token (the one its replies were trained to end with).
   */
  useAdapter?: boolean;
  /** 0 = base model .. 1 = tuned (default 1); values between scale the adapter's update. */
  adapterStrength?: number;
}

/** The adapter a generation used (null: the base model). */
export interface AdapterUse {
  runId: string;
  step: number;
  strength: number;
}

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateOutcome {
  promptTokens: number[];
  tokens: number[];
  /** The continuation only (the prompt is not repeated). */
  text: string;
  finishReason: FinishReason;
  /** Wall time of the whole request (prefill + decode), milliseconds. */
  ms: number;
  /** New tokens per second of wall time. */
  tokensPerSecond: number;
  /** The adapter the generation ran with; null for the base model. */
  adapter: AdapterUse | null;
}

// ---------------------------------------------------------------------------------------------------
// Datasets

/** Where a dataset comes from. Blobs (dropped Files) are structured-cloned into the worker, not read on the page. */
export type DatasetInput =
  | { kind: 'blob'; blob: Blob; name?: string }
  /** Fetched by the worker (e.g. an example the app serves at /examples/…): give an absolute URL. */
  | { kind: 'url'; url: string; name?: string }
  | { kind: 'text'; text: string; name: string }
  /** A dataset already stored in this browser (a run's, after a reload), by the id `inspect-data` returned. */
  | { kind: 'stored'; datasetId: string };

/** How the dataset doctor reads and encodes a dataset; stored with every run trained on it. */
export interface InspectDataOptions {
  /** Longest training sequence in tokens (default: the model's context length). */
  maxSeqLen?: number;
  lossOn?: 'completion' | 'all';
  template?: 'auto' | 'chat-template' | 'plain';
  /** Force the end of text (default: measured on the base model). */
  stop?: { stopTokenId?: number | null; stopStrings?: string[] };
  /** Fraction held out for validation when no validation file is given (default 0.1). */
  valFraction?: number;
  /** Seed of the train/validation split (default 0). */
  seed?: number;
  /** Force the format ("jsonl", "alpaca", "openai-chat-jsonl", …); default: detected. */
  format?: string;
  /** CSV/TSV column mapping. */
  columns?: ColumnMapping;
}

export interface InspectDataPayload {
  source: DatasetInput;
  /** A separate validation file (else a seeded split of `source`). */
  validation?: DatasetInput;
  options?: InspectDataOptions;
  /** Keep a copy in IndexedDB so a reload can resume training without the file (default true). */
  store?: boolean;
}

export interface InspectDataResult {
  /** What `train` takes. A stored dataset keeps its id across reloads; an unstored one starts with "mem-". */
  datasetId: string;
  report: DataReport;
  /** Whether the dataset (and its validation file) were saved in IndexedDB. */
  stored: boolean;
  /** Why it could not be stored (e.g. QUOTA_EXCEEDED); training still works until the page is closed. */
  storageError: ProtocolError | null;
  ms: number;
}

// ---------------------------------------------------------------------------------------------------
// Training


/** The doctor's options with the stop token it chose frozen in, so a resumed run encodes exactly the same way. */
export type FrozenInspectOptions = InspectDataOptions & { stop: { stopTokenId: number | null; stopStrings: string[] } };

/** What a run stores in RunRecord.config: everything needed to rebuild its trainer after a reload. */
export interface RunJob {
  kind: 'tabtune-run';
  version: 1;
  train: TrainConfig;
  data: {
    datasetId: string;
    valDatasetId: string | null;
    name: string;
    /** The options the doctor was given (what a new run on this dataset starts from after a reload). */
    requested: InspectDataOptions;
    /** The options it ran with, the stop token it chose frozen in (what a resume encodes with). */
    options: FrozenInspectOptions;
    trainExamples: number;
    valExamples: number;
  };
  /** The base model the run was trained on (checked on resume). */
  model: { name: string; label: string; arch: string; numParams: number; vocabSize: number; baseModel: string };
  /** The TF.js backend the run started training on (absent in runs stored before it was recorded). */
  backend?: string;
  /** The run and checkpoint the adapter started from (TrainPayload.startFrom, e.g. DPO after SFT): its lineage, shown in the runs list. */
  startFrom?: { runId: string; step: number };
}

export interface MeasureStepPayload {
  datasetId: string;
  config?: TrainConfigOverrides;
}

/** One timed optimizer step (after an untimed one): its wall time, the tokens it fed, and the examples it took. */
export interface MeasureStepResult {
  ms: number;
  tokens: number;
  tokensPerSec: number;
  examples: number;
}

export interface TrainPayload {
  datasetId: string;
  /** Run name (default: the dataset's name). */
  name?: string;
  config?: TrainConfigOverrides;
  /**
   * Stop after this step, save a checkpoint there and leave the run resumable ('paused'), as if the user
   * had stopped it. The schedule still spans the whole run.
   */
  untilStep?: number;
  /**
   * General text the user adds to the forgetting probe (plain text: its chunks of probeTokens tokens are
   * scored at every evaluation beside the base model's own texts); stored with the run's probe.
   */
  probeText?: { name: string; text: string };
  /**
   * Start the new run's adapter from a stored checkpoint (e.g. DPO after SFT): the adapter's kind and shape
   * come from that run's settings, and for DPO that checkpoint, frozen, is the reference model.
   */
  startFrom?: { runId: string; step: number };
}

export interface ResumeRunPayload {
  runId: string;
  /**
   * The checkpoint to continue from (default: the newest one that verifies). A checkpoint older than the
   * newest starts a branch: a new run (store.checkpoints.branch) that continues from there ("rewind").
   */
  step?: number;
  /** Name of the branch, when one is made. */
  name?: string;
  untilStep?: number;
  /** Train on this dataset instead of the run's stored one (e.g. the file added again after it was deleted). */
  datasetId?: string;
}

/** First event of a `train` / `resume-run`: the run it writes to. */
export interface TrainStart {
  runId: string;
  name: string;
  /** Step the run continues from (0 for a new run). */
  startStep: number;
  totalSteps: number;
  trainableParams: number;
  trainExamples: number;
  valExamples: number;
  backend: string;
  config: TrainConfig;
  /** The run and checkpoint step it continues from (a branch names its parent), or null. */
  resumedFrom: { runId: string; step: number } | null;
  /** What the settings ask for that this run cannot do (e.g. early stopping without held-out examples). */
  warnings?: string[];
}

export interface TrainOutcome {
  runId: string;
  name: string;
  /** done: every step; stopped: reached untilStep; cancelled: `cancel`. A checkpoint is saved in all three cases. */
  reason: 'done' | 'stopped' | 'cancelled';
  step: number;
  totalSteps: number;
  /** Loss of the last step (null when no step ran). */
  finalTrainLoss: number | null;
  /** Validation loss of the last evaluation (null when there was none). */
  finalValLoss: number | null;
  /** The run's newest checkpoint when it ended. */
  checkpoint: CheckpointInfo | null;
  resumedFrom: { runId: string; step: number } | null;
  /** Why the run ended before its last step (early stopping), else null. */
  stoppedBy: string | null;
  /** What the run's evaluations decided (best, recommended, final step), also stored with the run. */
  quality: RunQuality | null;
  /** The base model measured on the held-out split before the run's first step (RunRecord.baseline), or null. */
  baseline?: Baseline | null;
  /** Wall time of the request, and training tokens per second over the steps it ran. */
  ms: number;
  tokensPerSecond: number;
}

/** One stored metric point of a run: an optimizer step or an evaluation. */
export type RunMetricPoint = MetricPoint;

export interface PauseResult {
  /** Whether a training was running (and is now paused). */
  paused: boolean;
  runId: string | null;
  step: number | null;
  /** The checkpoint saved at the pause (the run's newest). */
  checkpoint: CheckpointInfo | null;
}

export interface RunSummary extends RunRecord {
  /** This worker is training it right now. */
  active: boolean;
  latestCheckpoint: CheckpointInfo | null;
  checkpointCount: number;
  /** RunRecord.config read as a tabtune job (null for runs made elsewhere, e.g. by the CLI). */
  job: RunJob | null;
}

export interface AdapterInfo {
  runId: string;
  runName: string;
  step: number;
  params: number;
  /** The run is being trained: the adapter changes step by step. */
  training: boolean;
}

export interface ComparePayload {
  /** Default: the active adapter's run. */
  runId?: string;
  /** Default: the active adapter's step (or the run's newest checkpoint). */
  step?: number;
  /** Compare at most this many held-out records (default: all). */
  maxExamples?: number;
  maxNewTokens?: number;
}

export interface CompareRow {
  line: number;
  prompt: string;
  expected: string;
  base: string;
  tuned: string;
  baseExact: boolean;
  tunedExact: boolean;
  baseOverlap: number;
  tunedOverlap: number;
  /**
   * The example's loss (mean NLL in nats of the tokens training puts the loss on, exactly as the
   * trainer computes it) under the base and the tuned model; null when it cannot be encoded.
   */
  baseLoss: number | null;
  tunedLoss: number | null;
}

export interface CompareResult {
  runId: string;
  step: number;
  rows: CompareRow[];
  /** exact / overlap: fractions in [0, 1]; loss: the mean of the rows' losses (null when none could be scored). */
  totals: {
    n: number;
    base: { exact: number; overlap: number; loss: number | null };
    tuned: { exact: number; overlap: number; loss: number | null };
    /** Plain text: the held-out perplexity (per token of the held-out windows) of the base and the tuned model; absent for other data. */
    ppl?: { base: number; tuned: number; tokens: number };
  };
  ms: number;
}

/** A candidate on the task-vs-forgetting chart: a checkpoint, or weights derived from one (its recipe). */
export type { TradeoffPoint, TradeoffRecipe } from '../train/quality/decisions';

export interface ExplorePathPayload {
  runId: string;
  /** Checkpoints to explore from (default: the run's final and best). */
  steps?: number[];
}

export interface ExplorePathResult {
  runId: string;
  /** The run's checkpoints (plain points) and the points measured along the path from base to them. */
  points: TradeoffPoint[];
  /** The point recommend() picks among all of them, with its sentence. */
  recommendation: { pointId: string; sentence: string } | null;
  ms: number;
}

export interface ApplyRecipePayload {
  runId: string;
  recipe: TradeoffRecipe;
  /** Name of the run that holds the result (default: the parent's name and the recipe). */
  name?: string;
}

export interface ApplyRecipeResult {
  /** A branch of the run at recipe.fromStep whose one checkpoint holds the derived weights (its recipe stored). */
  run: RunRecord;
  checkpoint: CheckpointInfo;
}

export interface RunReportPayload {
  runId: string;
  /** The checkpoint the report describes (default: the run's newest). */
  step?: number;
}

export type { CardInput } from '../report/card';

export type ExportKind = 'peft' | 'merged' | 'metrics-csv' | 'recipe';

/** A PEFT adapter to import: a picked folder's files, or a zip of them (one of the two). */
export interface ImportAdapterPayload {
  /** The adapter's name in the run's name ("imported: <name> (LoRA r8)"); default: the zip's or folder's label. */
  name?: string;
  files?: File[];
  /** A zip archive's bytes (tabtune's "PEFT adapter" export, or any zip of an adapter folder). */
  zip?: Uint8Array;
}

export interface ImportAdapterResult {
  run: RunSummary;
  /** The imported adapter, now the active one (null if it could not be attached). */
  adapter: AdapterInfo | null;
  /** Non-fatal findings (another base model name, rsLoRA converted, ...). */
  warnings: string[];
}

export interface ExportPayload {
  kind: ExportKind;
  /** Default: the active adapter's run. */
  runId?: string;
  /** Default: the active adapter's step when it is that run's, else the run's newest checkpoint. */
  step?: number;
}

export interface ExportResult {
  kind: ExportKind;
  filename: string;
  mimeType: string;
  /** Transferred, not copied. A zip for peft / merged / recipe, CSV text for metrics-csv. */
  bytes: Uint8Array;
  /** The files inside the zip (or the CSV's own name). */
  files: string[];
  runId: string;
  /** The checkpoint step exported (null for metrics-csv and recipe). */
  step: number | null;
}

/** Every request: its payload and what its result carries. */
export interface Requests {
  'init-backend': { payload: { preference: BackendPreference; wasmThreads?: number }; result: BackendStatus };
  'load-model': { payload: { location: ModelLocation }; result: ModelSummary };
  generate: { payload: GenerateParams; result: GenerateOutcome };
  /** Cancels the request with id `target` (a generation, a dataset reading, a training, a held-out comparison). Answers whether something was running. */
  cancel: { payload: { target: number }; result: { cancelled: boolean } };
  /** ids (one row, no padding) -> logits, row-major [ids.length][vocabSize]. */
  forward: { payload: { ids: number[] }; result: { logits: number[]; vocabSize: number } };
  /** Asks TF.js itself which backend it is running on. */
  'get-backend': { payload: Record<string, never>; result: { backend: string; threads: number | null } };
  /** Parses, validates and measures a dataset (streaming, with `data-progress`), keeps it by id and stores it. */
  'inspect-data': { payload: InspectDataPayload; result: InspectDataResult };
  /**
   * Times one LoRA training step of the loaded model on each available backend (events `backend-timing`),
   * stores the figures per model and device (a stored timing answers without measuring unless `force`), and
   * with 'auto' moves the model to the faster backend. Refused while a run trains (BUSY).
   */
  'time-backends': { payload: TimeBackendsPayload; result: BackendTimingReport };
  /** Times one training step of a configuration on the loaded model and a read dataset (SFT), nothing stored: the estimate before Start. */
  'measure-step': { payload: MeasureStepPayload; result: MeasureStepResult };
  /** Starts a LoRA run: events `run`, `metrics`, `eval`, `checkpoint`; `cancel` with this id stops it. */
  train: { payload: TrainPayload; result: TrainOutcome };
  /** Pauses the training in progress between two steps and saves a checkpoint there. */
  pause: { payload: Record<string, never>; result: PauseResult };
  /** Unpauses it. */
  'resume-train': { payload: Record<string, never>; result: { resumed: boolean; runId: string | null; step: number | null } };
  /** Continues a stored run (after a reload, or from an older checkpoint as a branch); events as `train`. */
  'resume-run': { payload: ResumeRunPayload; result: TrainOutcome };
  'list-runs': { payload: Record<string, never>; result: { runs: RunSummary[] } };
  'list-checkpoints': { payload: { runId: string }; result: { checkpoints: CheckpointInfo[] } };
  /** Makes a run's checkpoint (default: its newest) the active adapter; runId null detaches it. */
  'load-adapter': { payload: { runId: string | null; step?: number }; result: { adapter: AdapterInfo | null } };
  /** Greedy base vs tuned on the run's held-out records (default: the active adapter). `progress` events; `cancel` stops it (error CANCELLED). */
  'compare-heldout': { payload: ComparePayload; result: CompareResult };
  /**
   * Files for download (default: the active adapter's run). The merged model sends `progress` events,
   * tensor by tensor (file 'merged: read' | 'merged: merge' | 'merged: write'; loaded / total count tensors).
   */
  export: { payload: ExportPayload; result: ExportResult };
  'delete-run': { payload: { runId: string }; result: { deleted: boolean } };
  'delete-checkpoint': { payload: { runId: string; step: number }; result: { deleted: boolean } };
  /** What takes space in IndexedDB, and the browser's usage/quota estimate. */
  'storage-report': { payload: Record<string, never>; result: { report: StorageReport; estimate: { usage: number; quota: number } | null } };
  /** Renames a stored run. */
  'rename-run': { payload: { runId: string; name: string }; result: { run: RunRecord } };
  /** Pins (retention never deletes it) or unpins a checkpoint. */
  'pin-checkpoint': { payload: { runId: string; step: number; pinned: boolean }; result: { checkpoint: CheckpointInfo } };
  /** Every stored metric point of a run (a branch starts with its parent's points up to the branch step). */
  'run-metrics': { payload: { runId: string }; result: { points: RunMetricPoint[] } };
  /** Path-wise rewinding: measures the task metric and forgetting at scaled updates and rewound layer halves (progress events). */
  'explore-path': { payload: ExplorePathPayload; result: ExplorePathResult };
  /** Stores a point of explore-path as a checkpoint of its own (a branch run with the recipe). */
  'apply-recipe': { payload: ApplyRecipePayload; result: ApplyRecipeResult };
  /** The run report of a run or checkpoint (default: its newest): the model card's input, read from the run's records (src/report). */
  'run-report': { payload: RunReportPayload; result: { input: CardInput } };
  /** The preference pairs collected for a run in the compare view, oldest first. */
  'list-preferences': { payload: { runId: string }; result: { preferences: PreferencePair[] } };
  /** Stores a new preference pair with its run. */
  'save-preference': { payload: NewPreference; result: { preference: PreferencePair } };
  /** Edits a stored pair's prompt or replies. */
  'update-preference': { payload: { runId: string; id: string; patch: PreferencePatch }; result: { preference: PreferencePair } };
  'delete-preference': { payload: { runId: string; id: string }; result: { deleted: boolean } };
  /** A dataset's text (a stored one, or one inspected since the page opened), to fix records and save a new version with inspect-data. */
  'dataset-text': { payload: { datasetId: string }; result: { datasetId: string; name: string; fingerprint: string; text: string } };
  /** Stores a PEFT adapter (LoRA, OFT, prompt tuning) checked against the loaded model as a finished run with one checkpoint at step 0, and makes it the active adapter: a new run continues it with startFrom {runId, step: 0}. */
  'import-adapter': { payload: ImportAdapterPayload; result: ImportAdapterResult };
}

export interface Events {
  progress: { file: string; loaded: number; total: number | null; fraction: number };
  /** One generated token; `text` is the text this token added to the continuation. */
  token: { token: number; text: string };
  /** Reading / tokenizing a dataset; `file` says which one (training or validation). */
  'data-progress': ReadProgress & { file: 'train' | 'validation' };
  /** The run a `train` / `resume-run` writes to (first event). */
  run: TrainStart;
  /** One optimizer step. */
  metrics: StepMetrics;
  eval: EvalMetrics;
  /** time-backends: the backend being timed now (null: done), and the rows so far. */
  'backend-timing': { measuring: BackendName | null; done: number; total: number; rows: BackendTiming[] };
  /** A checkpoint committed to storage with the metrics up to it (deletedSteps: what retention removed; ms: time to store). */
  checkpoint: CheckpointInfo & { deletedSteps: number[]; ms: number };
}

export type RequestKind = keyof Requests;
export type EventKind = keyof Events;
export type PayloadOf<K extends RequestKind> = Requests[K]['payload'];
export type ResultOf<K extends RequestKind> = Requests[K]['result'];

export type RequestMessage = { [K in RequestKind]: { kind: K; id: number; payload: PayloadOf<K> } }[RequestKind];
export type EventMessage = { [E in EventKind]: { kind: E; id: number; payload: Events[E] } }[EventKind];

/** Codes the UI can act on; model-loading codes come from src/model/types.ts. */
export type ErrorCode =
  | 'UNSUPPORTED_MODEL'
  | 'MISSING_FILE'
  | 'BAD_TENSOR'
  | 'TOO_LARGE'
  | 'BAD_CONFIG'
  | 'NETWORK'
  | 'NO_MODEL'
  | 'BACKEND_UNAVAILABLE'
  | 'BAD_REQUEST'
  /** Training stopped: the loss or the gradients stayed NaN/Inf. details.lastCheckpointStep is the last good one. */
  | 'NON_FINITE_LOSS'
  /** Storage is full: details.suggestions lists what to delete; earlier checkpoints are intact. */
  | 'QUOTA_EXCEEDED'
  /** The dataset is unknown, gone from storage, unreadable, or has nothing to train on. */
  | 'BAD_DATASET'
  /** No such run / checkpoint. */
  | 'NOT_FOUND'
  /** A stored checkpoint fails verification. */
  | 'CHECKPOINT_CORRUPT'
  /** The run was trained on another model than the one loaded. */
  | 'MODEL_MISMATCH'
  /** Something else is training (one run at a time). */
  | 'BUSY'
  /** The request needs an adapter (a trained or loaded run) and there is none. */
  | 'NO_ADAPTER'
  /** Another storage failure (IndexedDB unavailable, a write conflict…). */
  | 'STORAGE'
  /** The request was cancelled before it finished (e.g. a dataset being read). */
  | 'CANCELLED'
  | 'INTERNAL';

/** Machine-readable context of an error, for the UI to act on. */
export interface ErrorDetails {
  runId?: string;
  /** Step the run had reached. */
  step?: number;
  /** Newest checkpoint still stored (resume from here), or null. */
  lastCheckpointStep?: number | null;
  /** QUOTA_EXCEEDED: what the user could delete, largest first. */
  suggestions?: FreeableItem[];
}

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** What the user can do about it. */
  hint?: string;
  details?: ErrorDetails;
}

export interface ResultMessage<K extends RequestKind = RequestKind> {
  kind: 'result';
  id: number;
  payload: ResultOf<K>;
}

export interface ErrorMessage {
  kind: 'error';
  id: number;
  error: ProtocolError;
}

export type WorkerMessage = EventMessage | ResultMessage | ErrorMessage;

/** The part of Worker / DedicatedWorkerGlobalScope / MessagePort both ends need. */
export interface MessageEndpoint {
  /** `transfer`: buffers moved rather than copied (export results). */
  postMessage(message: unknown, transfer?: Transferable[]): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  removeEventListener?(type: 'message', listener: (event: { data: unknown }) => void): void;
}

const requestKinds: ReadonlySet<string> = new Set<RequestKind>([
  'init-backend',
  'load-model',
  'generate',
  'cancel',
  'forward',
  'get-backend',
  'inspect-data',
  'train',
  'pause',
  'resume-train',
  'resume-run',
  'list-runs',
  'list-checkpoints',
  'load-adapter',
  'measure-step',
  'time-backends',
  'compare-heldout',
  'export',
  'delete-run',
  'delete-checkpoint',
  'storage-report',
  'rename-run',
  'pin-checkpoint',
  'run-metrics',
  'explore-path',
  'apply-recipe',
  'run-report',
  'list-preferences',
  'save-preference',
  'update-preference',
  'delete-preference',
  'dataset-text',
  'import-adapter',
]);
const eventKinds: ReadonlySet<string> = new Set<EventKind>(['progress', 'token', 'data-progress', 'run', 'metrics', 'eval', 'checkpoint', 'backend-timing']);

export function isRequestMessage(m: unknown): m is RequestMessage {
  const r = m as Partial<RequestMessage> | null;
  return !!r && typeof r === 'object' && typeof r.id === 'number' && typeof r.kind === 'string' && requestKinds.has(r.kind) && 'payload' in r;
}

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  const r = m as Partial<WorkerMessage> | null;
  return (
    !!r &&
    typeof r === 'object' &&
    typeof r.id === 'number' &&
    (r.kind === 'result' || r.kind === 'error' || eventKinds.has(r.kind as string))
  );
}
