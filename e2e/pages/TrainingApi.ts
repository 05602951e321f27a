// Training through the page's test API (window.__tabtune): there is no training UI yet, so the tests
// drive the worker protocol from the page, exactly as the studio will. Exports come back base64-encoded
// and are decoded here.
import type { Page } from '@playwright/test';
import type { ExportedForTest, TrainingJobState } from '../../src/app/test-api';
import type {
  CheckpointInfo,
  CompareResult,
  DatasetInput,
  ExportPayload,
  InspectDataOptions,
  InspectDataResult,
  PauseResult,
  ResumeRunPayload,
  RunSummary,
  TrainPayload,
} from '../../src/protocol/messages';

export type { TrainingJobState } from '../../src/app/test-api';

export interface ExportedFile extends Omit<ExportedForTest, 'base64'> {
  bytes: Uint8Array;
}

export class TrainingApi {
  constructor(private readonly page: Page) {}

  inspect(source: DatasetInput, options?: InspectDataOptions, store?: boolean): Promise<InspectDataResult & { progressEvents: number }> {
    return this.page.evaluate(([s, o, st]) => window.__tabtune!.inspectData(s, o, st), [source, options, store] as const);
  }

  /** Starts a training and returns its request id at once. */
  start(payload: TrainPayload): Promise<number> {
    return this.page.evaluate((p) => window.__tabtune!.startTraining('train', p), payload);
  }

  startResume(payload: ResumeRunPayload): Promise<number> {
    return this.page.evaluate((p) => window.__tabtune!.startTraining('resume-run', p), payload);
  }

  /** What the training has streamed so far. */
  job(id: number): Promise<TrainingJobState | null> {
    return this.page.evaluate((id) => window.__tabtune!.trainingJob(id), id);
  }

  /** Waits for the training to end; a failure is in `error`. */
  wait(id: number): Promise<TrainingJobState> {
    return this.page.evaluate((id) => window.__tabtune!.waitTraining(id), id);
  }

  async train(payload: TrainPayload): Promise<TrainingJobState> {
    return this.wait(await this.start(payload));
  }

  async resume(payload: ResumeRunPayload): Promise<TrainingJobState> {
    return this.wait(await this.startResume(payload));
  }

  pause(): Promise<PauseResult> {
    return this.page.evaluate(() => window.__tabtune!.pauseTraining());
  }

  listRuns(): Promise<RunSummary[]> {
    return this.page.evaluate(() => window.__tabtune!.listRuns());
  }

  listCheckpoints(runId: string): Promise<CheckpointInfo[]> {
    return this.page.evaluate((r) => window.__tabtune!.listCheckpoints(r), runId);
  }

  compare(maxExamples?: number, maxNewTokens?: number): Promise<CompareResult> {
    return this.page.evaluate(([m, t]) => window.__tabtune!.compareHeldout({ maxExamples: m, maxNewTokens: t }), [maxExamples, maxNewTokens] as const);
  }

  /** Milliseconds the worker takes to answer get-backend now. */
  ping(): Promise<number> {
    return this.page.evaluate(() => window.__tabtune!.pingWorker());
  }

  async export(payload: ExportPayload): Promise<ExportedFile> {
    const r = await this.page.evaluate((p) => window.__tabtune!.exportRun(p), payload);
    const { base64, ...rest } = r;
    return { ...rest, bytes: new Uint8Array(Buffer.from(base64, 'base64')) };
  }
}
