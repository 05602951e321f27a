// The training half of window.__tabtune: what Playwright drives training with until the studio UI
// exists. Thin wrappers over the protocol client; a training is started, then polled or awaited by id,
// with its events collected in the page (page.evaluate cannot stream callbacks to the test).
import type { WorkerClient } from '../protocol/client';
import { asProtocolError } from '../store/errors';
import type {
  AdapterInfo,
  CheckpointInfo,
  ComparePayload,
  CompareResult,
  DatasetInput,
  EvalMetrics,
  Events,
  ExportPayload,
  GenerateOutcome,
  GenerateParams,
  InspectDataOptions,
  InspectDataResult,
  PauseResult,
  ProtocolError,
  ResumeRunPayload,
  RunSummary,
  StepMetrics,
  TrainOutcome,
  TrainPayload,
  TrainStart,
} from '../protocol/messages';

export interface TrainingJobState {
  /** The request id (what `cancel` takes). */
  id: number;
  kind: 'train' | 'resume-run';
  run: TrainStart | null;
  metrics: StepMetrics[];
  evals: EvalMetrics[];
  checkpoints: Events['checkpoint'][];
  done: boolean;
  result: TrainOutcome | null;
  error: ProtocolError | null;
}

export interface ExportedForTest {
  filename: string;
  mimeType: string;
  files: string[];
  runId: string;
  step: number | null;
  size: number;
  /** The bytes, base64 (page.evaluate returns JSON). */
  base64: string;
}

export interface TrainingTestApi {
  /** inspect-data; a `url` source may be relative to the page ("/examples/…"). */
  inspectData(source: DatasetInput, options?: InspectDataOptions, store?: boolean): Promise<InspectDataResult & { progressEvents: number }>;
  /** Starts a train / resume-run and returns its id at once. */
  startTraining(kind: 'train', payload: TrainPayload): number;
  startTraining(kind: 'resume-run', payload: ResumeRunPayload): number;
  /** What a training has streamed so far (and its outcome once done). */
  trainingJob(id: number): TrainingJobState | null;
  /** Resolves when the training ends (never rejects: a failure is in `error`). */
  waitTraining(id: number): Promise<TrainingJobState>;
  pauseTraining(): Promise<PauseResult>;
  resumeTraining(): Promise<{ resumed: boolean; runId: string | null; step: number | null }>;
  cancelRequest(id: number): Promise<boolean>;
  listRuns(): Promise<RunSummary[]>;
  listCheckpoints(runId: string): Promise<CheckpointInfo[]>;
  loadAdapter(runId: string | null, step?: number): Promise<AdapterInfo | null>;
  compareHeldout(payload?: ComparePayload): Promise<CompareResult>;
  generateRaw(params: GenerateParams): Promise<GenerateOutcome>;
  exportRun(payload: ExportPayload): Promise<ExportedForTest>;
  /** Milliseconds the worker takes to answer get-backend right now. */
  pingWorker(): Promise<number>;
}

function base64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function createTrainingTestApi(client: WorkerClient, absoluteUrl: (path: string) => string): TrainingTestApi {
  const jobs = new Map<number, { state: TrainingJobState; settled: Promise<TrainingJobState> }>();

  function start(kind: 'train' | 'resume-run', payload: TrainPayload | ResumeRunPayload): number {
    const state: TrainingJobState = { id: 0, kind, run: null, metrics: [], evals: [], checkpoints: [], done: false, result: null, error: null };
    const handle = client.send(kind as 'train', payload as TrainPayload, {
      run: (r) => void (state.run = r),
      metrics: (m) => void state.metrics.push(m),
      eval: (e) => void state.evals.push(e),
      checkpoint: (c) => void state.checkpoints.push(c),
    });
    state.id = handle.id;
    const settled = handle.result.then(
      (r) => ((state.result = r), (state.done = true), state),
      (e) => ((state.error = asProtocolError(e)), (state.done = true), state),
    );
    jobs.set(handle.id, { state, settled });
    return handle.id;
  }

  return {
    async inspectData(source, options, store) {
      let progressEvents = 0;
      const src = source.kind === 'url' ? { ...source, url: absoluteUrl(source.url) } : source;
      const r = await client.request('inspect-data', { source: src, options, store }, { 'data-progress': () => void progressEvents++ });
      return { ...r, progressEvents };
    },
    startTraining: start as TrainingTestApi['startTraining'],
    trainingJob: (id) => jobs.get(id)?.state ?? null,
    async waitTraining(id) {
      const job = jobs.get(id);
      if (!job) throw new Error(`no training with id ${id}`);
      return job.settled;
    },
    pauseTraining: () => client.request('pause', {}),
    resumeTraining: () => client.request('resume-train', {}),
    cancelRequest: (id) => client.cancel(id),
    listRuns: async () => (await client.request('list-runs', {})).runs,
    listCheckpoints: async (runId) => (await client.request('list-checkpoints', { runId })).checkpoints,
    loadAdapter: async (runId, step) => (await client.request('load-adapter', { runId, step })).adapter,
    compareHeldout: (payload = {}) => client.request('compare-heldout', payload),
    generateRaw: (params) => client.request('generate', params),
    async exportRun(payload) {
      const r = await client.request('export', payload);
      return { filename: r.filename, mimeType: r.mimeType, files: r.files, runId: r.runId, step: r.step, size: r.bytes.byteLength, base64: base64(r.bytes) };
    },
    async pingWorker() {
      const t0 = performance.now();
      await client.request('get-backend', {});
      return performance.now() - t0;
    },
  };
}
