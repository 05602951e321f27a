// TabtuneStore: runs, metrics, datasets and checkpoints on top of a KeyValueBackend (IndexedDB in the browser,
// the filesystem in the CLI). Plain TypeScript: runs in a page, a Web Worker and Node.
//
// Key layout (one object store / one folder; ids never contain "/"; numbers are zero-padded so keys sort):
//   run/<runId>                                  RunRecord (JSON)
//   metrics/<runId>/<page:8>                     JsonValue[]: metric points [page*P, page*P + P)
//   ckpt/<runId>/<step:12>                       CheckpointManifest (JSON): the commit point of a checkpoint
//   chunk/<runId>/<step:12>/<writeId>/<index:6>  Uint8Array: bytes of the checkpoint blob (safetensors)
//   dataset/<datasetId>                          DatasetRecord (JSON): the commit point of a dataset
//   dchunk/<datasetId>/<index:6>                 Uint8Array: the dataset's bytes
//
// Crash safety: chunks are written first under a fresh writeId, the manifest last. Until the manifest exists
// nothing refers to the chunks, so a tab closed mid-write leaves orphans (collected later) and the previous
// checkpoint untouched. Re-saving a step writes new chunks under a new writeId and only deletes the old ones
// after the new manifest is committed.

import type { UseStore } from 'idb-keyval';
import { IdbBackend, type JsonValue, type KeyValueBackend, type StoredValue } from './backend';
import { crc32 } from './checksum';
import { chunkPlan, decodeCheckpointBlob, planCheckpointBlob, type BlobPlan, type CheckpointPayload } from './codec';
import { CheckpointCorruptError, StorageError, StorageFullError, formatBytes, isQuotaError, type FreeableItem } from './errors';

export type RunStatus = 'running' | 'paused' | 'interrupted' | 'finished' | 'failed';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'paused', 'interrupted', 'finished', 'failed'];

export interface RunDatasetRef {
  fingerprint: string;
  name: string;
  /** Id of the stored copy (saveDataset), when there is one. */
  datasetId: string | null;
}

export interface RunRecord {
  id: string;
  name: string;
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
  config: JsonValue;
  dataset: RunDatasetRef | null;
  status: RunStatus;
  /** Why the run failed (status 'failed'), else null. */
  error: string | null;
  /** Last sign of life from the training loop (ms since the epoch). */
  heartbeatAt: number | null;
  /** Lowest `valLoss` seen in appended metric points or saved checkpoints. */
  bestValLoss: number | null;
  bestValStep: number | null;
  metricsCount: number;
  metricsPageSize: number;
  /** Set when the run is a branch: it continues from `parentCheckpointStep` of `parentRunId`. */
  parentRunId: string | null;
  parentCheckpointStep: number | null;
}

export interface CreateRunInput {
  name: string;
  config?: unknown;
  dataset?: { fingerprint: string; name: string; datasetId?: string | null } | null;
  status?: RunStatus;
  /** Optional caller-chosen id ([A-Za-z0-9_-][A-Za-z0-9_.-]*, at most 100 characters). */
  id?: string;
  parentRunId?: string | null;
  parentCheckpointStep?: number | null;
}

export type RunPatch = Partial<Pick<RunRecord, 'name' | 'status' | 'error' | 'bestValLoss' | 'bestValStep'>> & {
  config?: unknown;
  dataset?: CreateRunInput['dataset'];
};

export interface ChunkInfo {
  bytes: number;
  crc32: number;
}

/** Stored at ckpt/<runId>/<step>; its existence is what makes a checkpoint visible. */
export interface CheckpointManifest {
  kind: 'tabtune-checkpoint';
  version: 1;
  runId: string;
  step: number;
  writeId: string;
  createdAt: number;
  format: 'safetensors-f32';
  totalBytes: number;
  /** Chunk size limit in force when it was written. */
  maxChunkBytes: number;
  chunks: ChunkInfo[];
  tensorCount: number;
  trainLoss: number | null;
  valLoss: number | null;
  pinned: boolean;
}

export interface CheckpointInfo {
  runId: string;
  step: number;
  createdAt: number;
  sizeBytes: number;
  chunkCount: number;
  trainLoss: number | null;
  valLoss: number | null;
  pinned: boolean;
  /** Lowest validation loss of the run's checkpoints (the earliest on ties). */
  isBest: boolean;
  /** Highest step of the run. */
  isLatest: boolean;
}

export interface LoadedCheckpoint extends CheckpointPayload {
  info: CheckpointInfo;
}

export interface SaveCheckpointOptions {
  /** Pin the new checkpoint (retention never deletes pinned ones). Re-saving a pinned step keeps the pin. */
  pinned?: boolean;
  /** Override the store's keepLast for this retention pass. */
  keepLast?: number;
}

export interface SaveCheckpointResult {
  info: CheckpointInfo;
  /** Steps retention deleted after the commit. */
  deletedSteps: number[];
}

export interface DatasetRecord {
  id: string;
  name: string;
  fingerprint: string;
  kind: 'text' | 'bytes';
  mimeType: string | null;
  byteLength: number;
  maxChunkBytes: number;
  chunks: ChunkInfo[];
  createdAt: number;
}

export interface SaveDatasetInput {
  name: string;
  /** Text is stored UTF-8 encoded and given back as text. */
  content: string | Uint8Array;
  /** Defaults to "sha256:<hex of the bytes>". */
  fingerprint?: string;
  mimeType?: string;
}

export interface LoadedDataset {
  info: DatasetRecord;
  bytes: Uint8Array;
  /** The text for a text dataset, null for bytes. */
  text: string | null;
}

export interface GcResult {
  /** Keys deleted (orphan chunks, records of deleted runs). */
  removedKeys: number;
}

export interface StorageReport {
  runs: { runId: string; name: string; checkpointCount: number; checkpointBytes: number; metricsPoints: number }[];
  checkpoints: (CheckpointInfo & { runName: string })[];
  datasets: { datasetId: string; name: string; bytes: number }[];
  /** Checkpoint and dataset bytes (records and metrics are small and not counted). */
  totalBytes: number;
}

export interface TabtuneStoreOptions {
  /** Largest stored chunk of a checkpoint or dataset. Default 64 MiB. */
  maxChunkBytes?: number;
  /** Retention keeps this many most recent checkpoints per run (plus the best, pinned ones and branch points). Default 3. */
  keepLast?: number;
  /** Metric points per stored page. Default 500. */
  metricsPageSize?: number;
  /**
   * Orphan chunks younger than this are left alone by garbage collection, in case another tab is still
   * writing them (chunks of this store's own in-flight writes are always left alone). Default 2 minutes.
   */
  orphanGraceMs?: number;
  /** Runs whose status is 'running' with no heartbeat for this long are interrupted. Default 60 s. */
  staleAfterMs?: number;
  /** Clock (ms since the epoch); tests inject one. */
  now?: () => number;
}

export const DEFAULT_MAX_CHUNK_BYTES = 64 * 1024 * 1024;
export const DEFAULT_KEEP_LAST = 3;
export const DEFAULT_METRICS_PAGE_SIZE = 500;
export const DEFAULT_ORPHAN_GRACE_MS = 2 * 60_000;
export const DEFAULT_STALE_AFTER_MS = 60_000;

// ---------------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------------

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export const storageKeys = {
  run: (runId: string) => `run/${runId}`,
  runPrefix: 'run/',
  metricsPrefix: (runId: string) => `metrics/${runId}/`,
  metricsPage: (runId: string, page: number) => `metrics/${runId}/${pad(page, 8)}`,
  manifestPrefix: (runId: string) => `ckpt/${runId}/`,
  manifest: (runId: string, step: number) => `ckpt/${runId}/${pad(step, 12)}`,
  allManifestsPrefix: 'ckpt/',
  chunkRunPrefix: (runId: string) => `chunk/${runId}/`,
  chunkWritePrefix: (runId: string, step: number, writeId: string) => `chunk/${runId}/${pad(step, 12)}/${writeId}/`,
  chunk: (runId: string, step: number, writeId: string, index: number) => `chunk/${runId}/${pad(step, 12)}/${writeId}/${pad(index, 6)}`,
  allChunksPrefix: 'chunk/',
  dataset: (datasetId: string) => `dataset/${datasetId}`,
  datasetPrefix: 'dataset/',
  datasetChunkPrefix: (datasetId: string) => `dchunk/${datasetId}/`,
  datasetChunk: (datasetId: string, index: number) => `dchunk/${datasetId}/${pad(index, 6)}`,
  allDatasetChunksPrefix: 'dchunk/',
  allMetricsPrefix: 'metrics/',
};

const ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;

function checkId(id: string, what: string): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new StorageError('INVALID_INPUT', `${what} id ${JSON.stringify(id)} is invalid (letters, digits, "_", "-", "."; at most 100 characters)`);
  }
  return id;
}

function checkStep(step: number): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new StorageError('INVALID_INPUT', `checkpoint step must be a non-negative integer, got ${step}`);
  return step;
}

/** Creation time of an id made by newId (its base-36 time prefix); -Infinity (infinitely old) when it has none. */
function idTime(id: string): number {
  const t = parseInt(id.split('-')[0] ?? '', 36);
  return Number.isFinite(t) ? t : -Infinity;
}

/** Round-trips through JSON so every backend stores the same thing (and non-JSON input fails early). */
function toJson(value: unknown, what: string): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new StorageError('INVALID_INPUT', `${what} is not JSON-serialisable: ${(e as Error).message}`);
  }
  return text === undefined ? null : (JSON.parse(text) as JsonValue);
}

function finiteOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function asBytes(v: unknown): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return null;
}

function onlyManifests(values: unknown[]): CheckpointManifest[] {
  return values.filter(isManifest) as CheckpointManifest[];
}

function isManifest(v: unknown): v is CheckpointManifest {
  const m = v as CheckpointManifest | undefined;
  return !!m && typeof m === 'object' && m.kind === 'tabtune-checkpoint' && typeof m.step === 'number' && Array.isArray(m.chunks);
}

export function runLabel(run: Pick<RunRecord, 'id' | 'name'> | null | undefined, runId: string): string {
  return run ? `run "${run.name}"` : `run ${runId}`;
}

/** "sha256:<hex>" of the bytes (WebCrypto: page, worker and Node 20). */
export async function fingerprintBytes(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return 'sha256:' + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------------

export class TabtuneStore {
  readonly backend: KeyValueBackend;
  readonly maxChunkBytes: number;
  readonly keepLast: number;
  readonly metricsPageSize: number;
  readonly orphanGraceMs: number;
  readonly staleAfterMs: number;
  private readonly now: () => number;
  private readonly locks = new Map<string, Promise<void>>();
  /** writeIds / dataset ids this store is writing right now: never garbage. */
  private readonly inflight = new Set<string>();
  /** Tail page of each run's metrics, valid while `count` matches the run record. */
  private readonly metricsTail = new Map<string, { count: number; page: JsonValue[] }>();

  /**
   * @param backend a KeyValueBackend, or an idb-keyval store (`createStore(db, store)`), or nothing for the
   * default IndexedDB database "tabtune".
   */
  constructor(backend?: KeyValueBackend | UseStore, options: TabtuneStoreOptions = {}) {
    this.backend = typeof backend === 'function' ? new IdbBackend(backend) : (backend ?? new IdbBackend());
    this.maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    this.keepLast = options.keepLast ?? DEFAULT_KEEP_LAST;
    this.metricsPageSize = options.metricsPageSize ?? DEFAULT_METRICS_PAGE_SIZE;
    this.orphanGraceMs = options.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS;
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    this.now = options.now ?? (() => Date.now());
    if (!Number.isSafeInteger(this.maxChunkBytes) || this.maxChunkBytes < 1) {
      throw new StorageError('INVALID_INPUT', `maxChunkBytes must be a positive integer, got ${this.maxChunkBytes}`);
    }
    if (!Number.isSafeInteger(this.keepLast) || this.keepLast < 1) throw new StorageError('INVALID_INPUT', `keepLast must be at least 1, got ${this.keepLast}`);
    if (!Number.isSafeInteger(this.metricsPageSize) || this.metricsPageSize < 1) {
      throw new StorageError('INVALID_INPUT', `metricsPageSize must be a positive integer, got ${this.metricsPageSize}`);
    }
  }

  /**
   * What to call once at startup (page load, worker start): collects orphan chunks and records of crashed
   * writes, and marks runs that were 'running' with a stale heartbeat as 'interrupted'.
   */
  async recover(options: { staleAfterMs?: number; orphanGraceMs?: number } = {}): Promise<{ interrupted: RunRecord[]; garbage: GcResult }> {
    const garbage = await this.collectGarbage({ graceMs: options.orphanGraceMs });
    const interrupted = await this.findInterruptedRuns({ staleAfterMs: options.staleAfterMs });
    return { interrupted, garbage };
  }

  // ---------------------------------------------------------------------------------------------------
  // Runs
  // ---------------------------------------------------------------------------------------------------

  async createRun(input: CreateRunInput): Promise<RunRecord> {
    const now = this.now();
    const id = input.id !== undefined ? checkId(input.id, 'run') : this.newId();
    const status = input.status ?? 'running';
    this.checkStatus(status);
    const run: RunRecord = {
      id,
      name: this.checkName(input.name),
      createdAt: now,
      updatedAt: now,
      config: toJson(input.config ?? null, 'run config'),
      dataset: this.datasetRef(input.dataset),
      status,
      error: null,
      heartbeatAt: status === 'running' ? now : null,
      bestValLoss: null,
      bestValStep: null,
      metricsCount: 0,
      metricsPageSize: this.metricsPageSize,
      parentRunId: input.parentRunId != null ? checkId(input.parentRunId, 'parent run') : null,
      parentCheckpointStep: input.parentCheckpointStep != null ? checkStep(input.parentCheckpointStep) : null,
    };
    return this.withLock(`run:${id}`, async () => {
      if (await this.backend.get(storageKeys.run(id))) throw new StorageError('INVALID_INPUT', `a run with id ${id} already exists`);
      await this.guardWrite(`the new run "${run.name}"`, 0, id, () => this.backend.set(storageKeys.run(id), run as unknown as JsonValue));
      return run;
    });
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    return ((await this.backend.get(storageKeys.run(runId))) as unknown as RunRecord | undefined) ?? null;
  }

  /** All runs, most recently updated first. */
  async listRuns(): Promise<RunRecord[]> {
    const ks = await this.backend.keys(storageKeys.runPrefix);
    const runs = (await this.backend.getMany(ks)).filter((r): r is JsonValue => !!r) as unknown as RunRecord[];
    return runs.sort((a, b) => b.updatedAt - a.updatedAt || b.createdAt - a.createdAt);
  }

  async updateRun(runId: string, patch: RunPatch): Promise<RunRecord> {
    return this.mutateRun(runId, (run) => {
      const next: RunRecord = { ...run, updatedAt: this.now() };
      if (patch.name !== undefined) next.name = this.checkName(patch.name);
      if (patch.config !== undefined) next.config = toJson(patch.config, 'run config');
      if (patch.dataset !== undefined) next.dataset = this.datasetRef(patch.dataset);
      if (patch.error !== undefined) next.error = patch.error;
      if (patch.bestValLoss !== undefined) next.bestValLoss = finiteOrNull(patch.bestValLoss);
      if (patch.bestValStep !== undefined) next.bestValStep = patch.bestValStep;
      if (patch.status !== undefined) {
        this.checkStatus(patch.status);
        next.status = patch.status;
        if (patch.status === 'running') next.heartbeatAt = this.now();
        if (patch.status !== 'failed' && patch.error === undefined) next.error = null;
      }
      return next;
    });
  }

  renameRun(runId: string, name: string): Promise<RunRecord> {
    return this.updateRun(runId, { name });
  }

  /** Sets the status ('running' also refreshes the heartbeat; `error` is kept only for 'failed'). */
  setRunStatus(runId: string, status: RunStatus, error?: string): Promise<RunRecord> {
    return this.updateRun(runId, { status, error: status === 'failed' ? (error ?? 'unknown error') : null });
  }

  /** Records a sign of life from the training loop (call every few seconds while training). */
  async heartbeat(runId: string): Promise<void> {
    await this.mutateRun(runId, (run) => ({ ...run, heartbeatAt: this.now() }));
  }

  /**
   * Runs whose status is 'running' but whose heartbeat (or, lacking one, last update) is older than
   * `staleAfterMs`: their tab was closed or crashed. They are marked 'interrupted' (unless markInterrupted
   * is false) and returned so the UI can offer to resume them.
   */
  async findInterruptedRuns(options: { staleAfterMs?: number; markInterrupted?: boolean } = {}): Promise<RunRecord[]> {
    const stale = options.staleAfterMs ?? this.staleAfterMs;
    const mark = options.markInterrupted ?? true;
    const now = this.now();
    const out: RunRecord[] = [];
    for (const run of await this.listRuns()) {
      if (run.status !== 'running' || now - (run.heartbeatAt ?? run.updatedAt) <= stale) continue;
      if (!mark) {
        out.push(run);
        continue;
      }
      try {
        const updated = await this.mutateRun(run.id, (r) => {
          // Re-check under the lock: a heartbeat may have arrived meanwhile.
          if (r.status !== 'running' || now - (r.heartbeatAt ?? r.updatedAt) <= stale) return null;
          return { ...r, status: 'interrupted', updatedAt: now };
        });
        if (updated.status === 'interrupted') out.push(updated);
      } catch (e) {
        if (!(e instanceof StorageError && e.code === 'NOT_FOUND')) throw e;
      }
    }
    return out;
  }

  /**
   * Starts a new run that continues from checkpoint `step` of `parentRunId` ("rewind and branch"). The new
   * run inherits the parent's config and dataset unless given; its first resume point is the parent's
   * checkpoint (see resolveResumeCheckpoint), which retention on the parent then keeps.
   */
  async branchRun(
    parentRunId: string,
    step: number,
    input: Partial<Omit<CreateRunInput, 'parentRunId' | 'parentCheckpointStep'>> = {},
  ): Promise<RunRecord> {
    const parent = await this.requireRun(parentRunId);
    checkStep(step);
    if (!isManifest(await this.backend.get<unknown>(storageKeys.manifest(parentRunId, step)))) {
      throw new StorageError('NOT_FOUND', `${runLabel(parent, parentRunId)} has no checkpoint at step ${step} to branch from`);
    }
    return this.createRun({
      name: input.name ?? `${parent.name} (from step ${step})`,
      config: input.config !== undefined ? input.config : parent.config,
      dataset: input.dataset !== undefined ? input.dataset : parent.dataset,
      status: input.status ?? 'paused',
      id: input.id,
      parentRunId,
      parentCheckpointStep: step,
    });
  }

  /** Deletes a run with its metrics and checkpoints. Branches of it keep their own data. */
  async deleteRun(runId: string): Promise<void> {
    await this.withLock(`run:${runId}`, () => this.backend.del(storageKeys.run(runId)));
    this.metricsTail.delete(runId);
    await this.withLock(`ckpt:${runId}`, async () => {
      await this.backend.delMany(await this.backend.keys(storageKeys.manifestPrefix(runId)));
      await this.backend.delMany(await this.backend.keys(storageKeys.chunkRunPrefix(runId)));
    });
    await this.backend.delMany(await this.backend.keys(storageKeys.metricsPrefix(runId)));
  }

  // ---------------------------------------------------------------------------------------------------
  // Metrics
  // ---------------------------------------------------------------------------------------------------

  appendMetric(runId: string, point: unknown): Promise<number> {
    return this.appendMetrics(runId, [point]);
  }

  /**
   * Appends metric points (any JSON). Only the last page and the run record are rewritten, so the cost does
   * not grow with the history. A point with a finite numeric `valLoss` updates the run's bestValLoss (and
   * bestValStep from its `step`). Returns the new number of points.
   */
  async appendMetrics(runId: string, points: unknown[]): Promise<number> {
    const incoming = points.map((p, i) => toJson(p, `metric point ${i}`));
    return this.withLock(`run:${runId}`, async () => {
      const run = await this.requireRun(runId);
      if (!incoming.length) return run.metricsCount;
      const ps = run.metricsPageSize || this.metricsPageSize;
      const count = run.metricsCount;
      let pageIndex = Math.floor(count / ps);
      const inPage = count % ps;
      let page: JsonValue[] = [];
      if (inPage) {
        const cached = this.metricsTail.get(runId);
        if (cached && cached.count === count) page = cached.page.slice();
        else page = (((await this.backend.get(storageKeys.metricsPage(runId, pageIndex))) as JsonValue[] | undefined) ?? []).slice(0, inPage);
      }
      const entries: [string, StoredValue][] = [];
      let best = run.bestValLoss;
      let bestStep = run.bestValStep;
      for (const p of incoming) {
        page.push(p);
        if (page.length === ps) {
          entries.push([storageKeys.metricsPage(runId, pageIndex), page]);
          pageIndex++;
          page = [];
        }
        if (p && typeof p === 'object' && !Array.isArray(p)) {
          const v = finiteOrNull(p.valLoss);
          if (v !== null && (best === null || v < best)) {
            best = v;
            bestStep = finiteOrNull(p.step);
          }
        }
      }
      if (page.length) entries.push([storageKeys.metricsPage(runId, pageIndex), page]);
      const next: RunRecord = { ...run, metricsCount: count + incoming.length, bestValLoss: best, bestValStep: bestStep, updatedAt: this.now() };
      // Pages first, run record last: if only the pages land, the old count still describes valid data.
      entries.push([storageKeys.run(runId), next as unknown as JsonValue]);
      const approx = entries.reduce((a, [, v]) => a + JSON.stringify(v).length, 0);
      this.metricsTail.delete(runId);
      await this.guardWrite(`${incoming.length} metric point(s) of ${runLabel(run, runId)}`, approx, runId, () => this.backend.setMany(entries));
      this.metricsTail.set(runId, { count: next.metricsCount, page });
      return next.metricsCount;
    });
  }

  /** Metric points [from, to) (default: all). */
  async readMetrics(runId: string, range: { from?: number; to?: number } = {}): Promise<JsonValue[]> {
    const run = await this.requireRun(runId);
    const ps = run.metricsPageSize || this.metricsPageSize;
    const from = Math.max(0, Math.floor(range.from ?? 0));
    const to = Math.min(run.metricsCount, Math.floor(range.to ?? run.metricsCount));
    if (to <= from) return [];
    const first = Math.floor(from / ps);
    const last = Math.floor((to - 1) / ps);
    const pageKeys: string[] = [];
    for (let p = first; p <= last; p++) pageKeys.push(storageKeys.metricsPage(runId, p));
    const pages = (await this.backend.getMany(pageKeys)) as (JsonValue[] | undefined)[];
    const out: JsonValue[] = [];
    pages.forEach((page, i) => {
      const base = (first + i) * ps;
      const lo = Math.max(from - base, 0);
      const hi = Math.min(to - base, ps);
      if (page) out.push(...page.slice(lo, hi));
    });
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Checkpoints
  // ---------------------------------------------------------------------------------------------------

  /**
   * Saves a checkpoint: chunks first, manifest last, then retention. On a quota error the partial chunks are
   * removed and a StorageFullError is thrown; earlier checkpoints are untouched either way.
   */
  async saveCheckpoint(runId: string, payload: CheckpointPayload, options: SaveCheckpointOptions = {}): Promise<SaveCheckpointResult> {
    const run = await this.requireRun(runId);
    const step = checkStep(payload.step);
    const plan = planCheckpointBlob(payload); // validates shapes and state before anything is written
    const trainLoss = finiteOrNull(payload.metrics?.trainLoss);
    const valLoss = finiteOrNull(payload.metrics?.valLoss);
    const what = `checkpoint step ${step} of ${runLabel(run, runId)}`;
    const writeId = this.newId();
    const prefix = storageKeys.chunkWritePrefix(runId, step, writeId);
    let committed = false;
    let manifest: CheckpointManifest | undefined;
    this.inflight.add(writeId);
    try {
      const chunks = await this.writeChunks(plan, (i) => storageKeys.chunk(runId, step, writeId, i));
      const present = await this.backend.keys(prefix);
      if (present.length !== chunks.length) {
        throw new StorageError(
          'WRITE_CONFLICT',
          `${what}: ${chunks.length - present.length} of its ${chunks.length} chunks vanished before it was committed (another tab collected them as garbage?)`,
          'Save the checkpoint again.',
        );
      }
      manifest = await this.withLock(`ckpt:${runId}`, async () => {
        const old = await this.backend.get<unknown>(storageKeys.manifest(runId, step));
        const m: CheckpointManifest = {
          kind: 'tabtune-checkpoint',
          version: 1,
          runId,
          step,
          writeId,
          createdAt: this.now(),
          format: 'safetensors-f32',
          totalBytes: plan.totalBytes,
          maxChunkBytes: this.maxChunkBytes,
          chunks,
          tensorCount: Object.keys(payload.tensors).length,
          trainLoss,
          valLoss,
          pinned: options.pinned ?? (isManifest(old) ? old.pinned : false),
        };
        await this.backend.set(storageKeys.manifest(runId, step), m as unknown as JsonValue); // the commit point
        committed = true;
        if (isManifest(old) && old.writeId !== writeId) {
          await this.bestEffort(async () => this.backend.delMany(await this.backend.keys(storageKeys.chunkWritePrefix(runId, step, old.writeId))));
        }
        return m;
      });
    } catch (e) {
      if (!committed) await this.bestEffort(async () => this.backend.delMany(await this.backend.keys(prefix)));
      if (isQuotaError(e)) throw await this.storageFullError(what, plan.totalBytes, runId, e);
      throw e;
    } finally {
      this.inflight.delete(writeId);
    }
    if (valLoss !== null) {
      // The checkpoint is committed: failing to note its loss on the run record must not fail the save.
      await this.bestEffort(() =>
        this.mutateRun(runId, (r) =>
          r.bestValLoss === null || valLoss < r.bestValLoss ? { ...r, bestValLoss: valLoss, bestValStep: step, updatedAt: this.now() } : null,
        ),
      );
    }
    const deletedSteps = await this.applyRetention(runId, { keepLast: options.keepLast });
    const info = (await this.listCheckpoints(runId, { gc: false })).find((c) => c.step === step) ?? this.toInfo(manifest!, false, false);
    return { info, deletedSteps };
  }

  /**
   * Committed checkpoints of a run, oldest first. Also collects the run's orphan chunks (crashed writes) unless
   * gc is false.
   */
  async listCheckpoints(runId: string, options: { gc?: boolean } = {}): Promise<CheckpointInfo[]> {
    if (options.gc ?? true) await this.collectRunOrphans(runId);
    return this.infos(await this.manifests(runId));
  }

  /** The run's newest committed checkpoint, or null. */
  async latestCheckpoint(runId: string): Promise<CheckpointInfo | null> {
    const list = await this.listCheckpoints(runId);
    return list[list.length - 1] ?? null;
  }

  /** Reads and verifies (sizes, CRC-32 of every chunk, safetensors structure) one checkpoint. */
  async loadCheckpoint(runId: string, step: number): Promise<LoadedCheckpoint> {
    const manifests = await this.manifests(runId);
    const m = manifests.find((x) => x.step === step);
    if (!m) {
      const run = await this.getRun(runId);
      throw new StorageError('NOT_FOUND', `${runLabel(run, runId)} has no checkpoint at step ${step}`);
    }
    const info = this.infos(manifests).find((x) => x.step === step)!;
    const what = `checkpoint step ${step} of run ${runId}`;
    const n = m.chunks.length;
    const total = new Uint8Array(m.totalBytes);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const expect = m.chunks[i]!;
      const raw = await this.backend.get(storageKeys.chunk(runId, step, m.writeId, i));
      const bytes = asBytes(raw);
      if (raw === undefined) throw new CheckpointCorruptError(runId, step, `${what} is damaged: chunk ${i + 1} of ${n} is missing`, i);
      if (!bytes) throw new CheckpointCorruptError(runId, step, `${what} is damaged: chunk ${i + 1} of ${n} is not binary data`, i);
      if (bytes.byteLength !== expect.bytes) {
        throw new CheckpointCorruptError(runId, step, `${what} is damaged: chunk ${i + 1} of ${n} is ${bytes.byteLength} bytes, expected ${expect.bytes}`, i);
      }
      const got = crc32(bytes);
      if (got !== expect.crc32) {
        throw new CheckpointCorruptError(
          runId,
          step,
          `${what} is damaged: chunk ${i + 1} of ${n} fails its CRC-32 check (stored ${hex(expect.crc32)}, read ${hex(got)})`,
          i,
        );
      }
      if (off + bytes.byteLength > total.byteLength) throw new CheckpointCorruptError(runId, step, `${what} is damaged: its chunks exceed its recorded size`, i);
      total.set(bytes, off);
      off += bytes.byteLength;
    }
    if (off !== m.totalBytes) throw new CheckpointCorruptError(runId, step, `${what} is damaged: ${off} bytes read, expected ${m.totalBytes}`);
    let decoded: ReturnType<typeof decodeCheckpointBlob>;
    try {
      decoded = decodeCheckpointBlob(total, what);
    } catch (e) {
      if (e instanceof StorageError) throw new CheckpointCorruptError(runId, step, `${what} is damaged: ${e.message}`);
      throw e;
    }
    const metrics: CheckpointPayload['metrics'] = {};
    if (m.trainLoss !== null) metrics.trainLoss = m.trainLoss;
    if (m.valLoss !== null) metrics.valLoss = m.valLoss;
    return { step, tensors: decoded.tensors, state: decoded.state, metrics, info };
  }

  /**
   * Loads the newest checkpoint that verifies. With fallback (default), damaged newer ones are skipped and
   * reported in `skipped`; without it, the first damage throws. Null when the run has no checkpoint.
   */
  async loadLatestCheckpoint(
    runId: string,
    options: { fallback?: boolean } = {},
  ): Promise<{ checkpoint: LoadedCheckpoint; skipped: CheckpointCorruptError[] } | null> {
    const list = await this.listCheckpoints(runId);
    const skipped: CheckpointCorruptError[] = [];
    for (let i = list.length - 1; i >= 0; i--) {
      try {
        return { checkpoint: await this.loadCheckpoint(runId, list[i]!.step), skipped };
      } catch (e) {
        if (!(e instanceof CheckpointCorruptError) || options.fallback === false) throw e;
        skipped.push(e);
      }
    }
    if (skipped.length) throw skipped[0]!;
    return null;
  }

  /**
   * Where to resume a run from: its own newest checkpoint, else (for a branch with none yet) the parent's
   * checkpoint it branched from. Null when there is neither.
   */
  async resolveResumeCheckpoint(runId: string): Promise<CheckpointInfo | null> {
    const own = await this.latestCheckpoint(runId);
    if (own) return own;
    const run = await this.getRun(runId);
    if (!run?.parentRunId || run.parentCheckpointStep === null) return null;
    return (await this.listCheckpoints(run.parentRunId)).find((c) => c.step === run.parentCheckpointStep) ?? null;
  }

  pinCheckpoint(runId: string, step: number): Promise<CheckpointInfo> {
    return this.setPinned(runId, step, true);
  }

  /** Unpins; the checkpoint is then subject to retention at the next save (or applyRetention). */
  unpinCheckpoint(runId: string, step: number): Promise<CheckpointInfo> {
    return this.setPinned(runId, step, false);
  }

  /** Deletes one checkpoint (pinned or not): manifest first, so it is never visible with missing chunks. */
  async deleteCheckpoint(runId: string, step: number): Promise<boolean> {
    return this.withLock(`ckpt:${runId}`, async () => {
      const m = await this.backend.get<unknown>(storageKeys.manifest(runId, step));
      if (!isManifest(m)) return false;
      await this.deleteManifests(runId, [m]);
      return true;
    });
  }

  /**
   * Deletes checkpoints that are none of: the `keepLast` newest, the best by validation loss, pinned, or a
   * branch point of another run. Runs after every save; returns the deleted steps.
   */
  async applyRetention(runId: string, options: { keepLast?: number } = {}): Promise<number[]> {
    const keepLast = options.keepLast ?? this.keepLast;
    if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new StorageError('INVALID_INPUT', `keepLast must be at least 1, got ${keepLast}`);
    const branchPoints = new Set(
      (await this.listRuns()).filter((r) => r.parentRunId === runId && r.parentCheckpointStep !== null).map((r) => r.parentCheckpointStep!),
    );
    return this.withLock(`ckpt:${runId}`, async () => {
      const manifests = await this.manifests(runId);
      const best = bestStep(manifests);
      const recent = new Set(manifests.slice(-keepLast).map((m) => m.step));
      const doomed = manifests.filter((m) => !recent.has(m.step) && m.step !== best && !m.pinned && !branchPoints.has(m.step));
      await this.deleteManifests(runId, doomed);
      return doomed.map((m) => m.step);
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // Datasets
  // ---------------------------------------------------------------------------------------------------

  /**
   * Stores a dataset so a reload does not need the file again. With the same fingerprint already stored, the
   * existing record is returned and nothing is written.
   */
  async saveDataset(input: SaveDatasetInput): Promise<DatasetRecord> {
    const kind = typeof input.content === 'string' ? 'text' : 'bytes';
    const bytes = typeof input.content === 'string' ? new TextEncoder().encode(input.content) : input.content;
    if (!(bytes instanceof Uint8Array)) throw new StorageError('INVALID_INPUT', 'dataset content must be a string or a Uint8Array');
    const fingerprint = input.fingerprint ?? (await fingerprintBytes(bytes));
    const existing = await this.findDatasetByFingerprint(fingerprint);
    if (existing) return existing;
    const id = this.newId();
    const name = this.checkName(input.name);
    const plan: BlobPlan = { parts: [bytes], totalBytes: bytes.byteLength };
    let committed = false;
    this.inflight.add(id);
    try {
      const chunks = await this.writeChunks(plan, (i) => storageKeys.datasetChunk(id, i));
      const rec: DatasetRecord = {
        id,
        name,
        fingerprint,
        kind,
        mimeType: input.mimeType ?? null,
        byteLength: bytes.byteLength,
        maxChunkBytes: this.maxChunkBytes,
        chunks,
        createdAt: this.now(),
      };
      await this.backend.set(storageKeys.dataset(id), rec as unknown as JsonValue);
      committed = true;
      return rec;
    } catch (e) {
      if (!committed) await this.bestEffort(async () => this.backend.delMany(await this.backend.keys(storageKeys.datasetChunkPrefix(id))));
      if (isQuotaError(e)) throw await this.storageFullError(`dataset "${name}"`, bytes.byteLength, null, e);
      throw e;
    } finally {
      this.inflight.delete(id);
    }
  }

  async getDataset(datasetId: string): Promise<DatasetRecord | null> {
    return ((await this.backend.get(storageKeys.dataset(datasetId))) as unknown as DatasetRecord | undefined) ?? null;
  }

  /** Stored datasets, newest first. */
  async listDatasets(): Promise<DatasetRecord[]> {
    const ks = await this.backend.keys(storageKeys.datasetPrefix);
    const recs = (await this.backend.getMany(ks)).filter(Boolean) as unknown as DatasetRecord[];
    return recs.sort((a, b) => b.createdAt - a.createdAt);
  }

  async findDatasetByFingerprint(fingerprint: string): Promise<DatasetRecord | null> {
    return (await this.listDatasets()).find((d) => d.fingerprint === fingerprint) ?? null;
  }

  /** Reads and verifies a dataset. */
  async loadDataset(datasetId: string): Promise<LoadedDataset> {
    const info = await this.getDataset(datasetId);
    if (!info) throw new StorageError('NOT_FOUND', `no stored dataset ${datasetId}`);
    const out = new Uint8Array(info.byteLength);
    let off = 0;
    const n = info.chunks.length;
    for (let i = 0; i < n; i++) {
      const bytes = asBytes(await this.backend.get(storageKeys.datasetChunk(datasetId, i)));
      const expect = info.chunks[i]!;
      const bad = (why: string) =>
        new StorageError('DATASET_CORRUPT', `stored dataset "${info.name}" is damaged: chunk ${i + 1} of ${n} ${why}`, 'Delete it and add the file again.');
      if (!bytes) throw bad('is missing');
      if (bytes.byteLength !== expect.bytes || off + bytes.byteLength > out.byteLength) throw bad(`is ${bytes.byteLength} bytes, expected ${expect.bytes}`);
      if (crc32(bytes) !== expect.crc32) throw bad('fails its CRC-32 check');
      out.set(bytes, off);
      off += bytes.byteLength;
    }
    if (off !== info.byteLength) throw new StorageError('DATASET_CORRUPT', `stored dataset "${info.name}" is damaged: ${off} of ${info.byteLength} bytes present`);
    return { info, bytes: out, text: info.kind === 'text' ? new TextDecoder().decode(out) : null };
  }

  async deleteDataset(datasetId: string): Promise<boolean> {
    const rec = await this.getDataset(datasetId);
    await this.backend.del(storageKeys.dataset(datasetId));
    await this.backend.delMany(await this.backend.keys(storageKeys.datasetChunkPrefix(datasetId)));
    return !!rec;
  }

  // ---------------------------------------------------------------------------------------------------
  // Space
  // ---------------------------------------------------------------------------------------------------

  /** What takes space, largest first: per run, per checkpoint, per dataset. */
  async storageReport(): Promise<StorageReport> {
    const runs = await this.listRuns();
    const names = new Map(runs.map((r) => [r.id, r.name]));
    const all = onlyManifests(await this.backend.getMany<unknown>(await this.backend.keys(storageKeys.allManifestsPrefix)));
    const byRun = new Map<string, CheckpointManifest[]>();
    for (const m of all) byRun.set(m.runId, [...(byRun.get(m.runId) ?? []), m]);
    const checkpoints: StorageReport['checkpoints'] = [];
    for (const [runId, ms] of byRun) {
      ms.sort((a, b) => a.step - b.step);
      for (const info of this.infos(ms)) checkpoints.push({ ...info, runName: names.get(runId) ?? runId });
    }
    checkpoints.sort((a, b) => b.sizeBytes - a.sizeBytes);
    const runRows = runs
      .map((r) => {
        const ms = byRun.get(r.id) ?? [];
        return { runId: r.id, name: r.name, checkpointCount: ms.length, checkpointBytes: ms.reduce((a, m) => a + m.totalBytes, 0), metricsPoints: r.metricsCount };
      })
      .sort((a, b) => b.checkpointBytes - a.checkpointBytes);
    const datasets = (await this.listDatasets()).map((d) => ({ datasetId: d.id, name: d.name, bytes: d.byteLength })).sort((a, b) => b.bytes - a.bytes);
    const totalBytes = all.reduce((a, m) => a + m.totalBytes, 0) + datasets.reduce((a, d) => a + d.bytes, 0);
    return { runs: runRows, checkpoints, datasets, totalBytes };
  }

  /**
   * Removes what crashed or interrupted writes left behind: chunks no manifest refers to, dataset chunks
   * without a record, checkpoints and metrics of deleted runs. Chunks of writes in flight in this store, and
   * orphans younger than `graceMs` (another tab may be writing them), are kept.
   */
  async collectGarbage(options: { graceMs?: number } = {}): Promise<GcResult> {
    const graceMs = options.graceMs ?? this.orphanGraceMs;
    const result: GcResult = { removedKeys: 0 };
    const runIds = new Set((await this.backend.keys(storageKeys.runPrefix)).map((k) => k.slice(storageKeys.runPrefix.length)));
    // Checkpoints of runs that no longer exist (a deleteRun interrupted half way).
    const manifestKeys = await this.backend.keys(storageKeys.allManifestsPrefix);
    const manifestRuns = new Set(manifestKeys.map((k) => k.split('/')[1]!));
    for (const runId of manifestRuns) {
      if (runIds.has(runId)) continue;
      await this.withLock(`ckpt:${runId}`, async () => {
        const ks = await this.backend.keys(storageKeys.manifestPrefix(runId));
        await this.backend.delMany(ks);
        result.removedKeys += ks.length;
      });
    }
    // Orphan checkpoint chunks, run by run.
    const chunkRuns = new Set((await this.backend.keys(storageKeys.allChunksPrefix)).map((k) => k.split('/')[1]!));
    for (const runId of chunkRuns) {
      result.removedKeys += (await this.collectRunOrphans(runId, graceMs)).removedKeys;
    }
    // Metrics of deleted runs.
    const metricsKeys = (await this.backend.keys(storageKeys.allMetricsPrefix)).filter((k) => !runIds.has(k.split('/')[1]!));
    if (metricsKeys.length) {
      await this.backend.delMany(metricsKeys);
      result.removedKeys += metricsKeys.length;
    }
    // Dataset chunks without a record.
    const datasetIds = new Set((await this.backend.keys(storageKeys.datasetPrefix)).map((k) => k.slice(storageKeys.datasetPrefix.length)));
    const orphanDatasetChunks = (await this.backend.keys(storageKeys.allDatasetChunksPrefix)).filter((k) => {
      const id = k.split('/')[1]!;
      return !datasetIds.has(id) && !this.inflight.has(id) && this.now() - idTime(id) >= graceMs;
    });
    if (orphanDatasetChunks.length) {
      await this.backend.delMany(orphanDatasetChunks);
      result.removedKeys += orphanDatasetChunks.length;
    }
    return result;
  }

  // ---------------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------------

  /** Writes a blob as chunks (sequentially: one chunk of memory at a time); returns their sizes and CRCs. */
  private async writeChunks(plan: BlobPlan, keyOf: (index: number) => string): Promise<ChunkInfo[]> {
    const chunks: ChunkInfo[] = [];
    let i = 0;
    for (const chunk of chunkPlan(plan, this.maxChunkBytes)) {
      chunks.push({ bytes: chunk.byteLength, crc32: crc32(chunk) });
      await this.backend.set(keyOf(i++), chunk);
    }
    return chunks;
  }

  private async manifests(runId: string): Promise<CheckpointManifest[]> {
    const ks = await this.backend.keys(storageKeys.manifestPrefix(runId));
    return onlyManifests(await this.backend.getMany<unknown>(ks)).sort((a, b) => a.step - b.step);
  }

  private infos(manifests: CheckpointManifest[]): CheckpointInfo[] {
    const best = bestStep(manifests);
    const latest = manifests.length ? manifests[manifests.length - 1]!.step : -1;
    return manifests.map((m) => this.toInfo(m, m.step === best, m.step === latest));
  }

  private toInfo(m: CheckpointManifest, isBest: boolean, isLatest: boolean): CheckpointInfo {
    return {
      runId: m.runId,
      step: m.step,
      createdAt: m.createdAt,
      sizeBytes: m.totalBytes,
      chunkCount: m.chunks.length,
      trainLoss: m.trainLoss,
      valLoss: m.valLoss,
      pinned: m.pinned,
      isBest,
      isLatest,
    };
  }

  private async setPinned(runId: string, step: number, pinned: boolean): Promise<CheckpointInfo> {
    await this.withLock(`ckpt:${runId}`, async () => {
      const m = await this.backend.get<unknown>(storageKeys.manifest(runId, step));
      if (!isManifest(m)) throw new StorageError('NOT_FOUND', `run ${runId} has no checkpoint at step ${step}`);
      if (m.pinned !== pinned) await this.backend.set(storageKeys.manifest(runId, step), { ...m, pinned } as unknown as JsonValue);
    });
    return (await this.listCheckpoints(runId, { gc: false })).find((c) => c.step === step)!;
  }

  /** Call with the run's ckpt lock held. */
  private async deleteManifests(runId: string, doomed: CheckpointManifest[]): Promise<void> {
    if (!doomed.length) return;
    await this.backend.delMany(doomed.map((m) => storageKeys.manifest(runId, m.step)));
    for (const m of doomed) await this.backend.delMany(await this.backend.keys(storageKeys.chunkWritePrefix(runId, m.step, m.writeId)));
  }

  private async collectRunOrphans(runId: string, graceMs = this.orphanGraceMs): Promise<GcResult> {
    return this.withLock(`ckpt:${runId}`, async () => {
      const manifests = await this.manifests(runId);
      const live = new Set(manifests.map((m) => `${m.step}/${m.writeId}`));
      const now = this.now();
      const orphans: string[] = [];
      for (const k of await this.backend.keys(storageKeys.chunkRunPrefix(runId))) {
        const [, , stepText, writeId] = k.split('/');
        if (!stepText || !writeId) continue;
        if (live.has(`${Number(stepText)}/${writeId}`) || this.inflight.has(writeId)) continue;
        if (now - idTime(writeId) < graceMs) continue;
        orphans.push(k);
      }
      await this.backend.delMany(orphans);
      return { removedKeys: orphans.length };
    });
  }

  private async storageFullError(what: string, bytes: number, currentRunId: string | null, cause: unknown): Promise<StorageFullError> {
    let suggestions: FreeableItem[] = [];
    try {
      const report = await this.storageReport();
      const cks = report.checkpoints
        .filter((c) => !c.pinned)
        .slice(0, 5)
        .map(
          (c): FreeableItem => ({
            kind: 'checkpoint',
            label: `checkpoint step ${c.step} of run "${c.runName}"${c.isLatest ? ' (latest)' : c.isBest ? ' (best)' : ''}`,
            bytes: c.sizeBytes,
            runId: c.runId,
            step: c.step,
          }),
        );
      const runs = report.runs
        .filter((r) => r.runId !== currentRunId && r.checkpointBytes > 0)
        .slice(0, 3)
        .map((r): FreeableItem => ({ kind: 'run', label: `run "${r.name}"`, bytes: r.checkpointBytes, runId: r.runId }));
      const datasets = report.datasets
        .slice(0, 3)
        .map((d): FreeableItem => ({ kind: 'dataset', label: `dataset "${d.name}"`, bytes: d.bytes, datasetId: d.datasetId }));
      suggestions = [...cks, ...runs, ...datasets].sort((a, b) => b.bytes - a.bytes);
    } catch {
      // Listing failed too: the message still says what happened.
    }
    const message = `Storage is full: could not write ${what} (${formatBytes(bytes)}). Earlier data is intact.`;
    const hint = suggestions.length
      ? `Free space by deleting some of: ${suggestions.map((s) => `${s.label} (${formatBytes(s.bytes)})`).join(', ')}. ` +
        'Pinned checkpoints are not listed; unpin them first if you do not need them.'
      : 'tabtune has nothing large stored to delete: free space in the browser (site data of other sites) or on the disk, then try again.';
    return new StorageFullError(message, hint, bytes, suggestions, { cause });
  }

  /** Runs a write; a quota failure becomes a StorageFullError. */
  private async guardWrite<T>(what: string, bytes: number, runId: string | null, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (isQuotaError(e)) throw await this.storageFullError(what, bytes, runId, e);
      throw e;
    }
  }

  private async requireRun(runId: string): Promise<RunRecord> {
    const run = await this.getRun(runId);
    if (!run) throw new StorageError('NOT_FOUND', `no run with id ${runId}`);
    return run;
  }

  /** Read-modify-write of a run record under its lock; `fn` returning null means "no change". */
  private mutateRun(runId: string, fn: (run: RunRecord) => RunRecord | null): Promise<RunRecord> {
    return this.withLock(`run:${runId}`, async () => {
      const run = await this.requireRun(runId);
      const next = fn(run);
      if (!next) return run;
      await this.guardWrite(`${runLabel(run, runId)}`, 0, runId, () => this.backend.set(storageKeys.run(runId), next as unknown as JsonValue));
      if (next.metricsCount !== run.metricsCount) this.metricsTail.delete(runId);
      return next;
    });
  }

  private async withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.locks.set(name, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }

  private async bestEffort(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch {
      // Cleanup that fails now is retried by collectGarbage later.
    }
  }

  /** Time-prefixed unique id: "<ms base36>-<random>". The prefix lets GC tell a fresh orphan from an old one. */
  private newId(): string {
    const rand = crypto.getRandomValues(new Uint32Array(2));
    return `${Math.max(0, Math.floor(this.now())).toString(36).padStart(9, '0')}-${rand[0]!.toString(36).padStart(7, '0')}${rand[1]!.toString(36).padStart(7, '0')}`;
  }

  private checkName(name: string): string {
    if (typeof name !== 'string' || !name.trim()) throw new StorageError('INVALID_INPUT', 'a name must be a non-empty string');
    return name.trim();
  }

  private checkStatus(status: RunStatus): void {
    if (!RUN_STATUSES.includes(status)) throw new StorageError('INVALID_INPUT', `unknown run status ${JSON.stringify(status)}`);
  }

  private datasetRef(d: CreateRunInput['dataset']): RunDatasetRef | null {
    if (!d) return null;
    if (typeof d.fingerprint !== 'string' || typeof d.name !== 'string') throw new StorageError('INVALID_INPUT', 'a run dataset needs a fingerprint and a name');
    return { fingerprint: d.fingerprint, name: d.name, datasetId: d.datasetId ?? null };
  }
}

function bestStep(manifests: CheckpointManifest[]): number | null {
  let best: CheckpointManifest | null = null;
  for (const m of manifests) if (m.valLoss !== null && (best === null || m.valLoss < best.valLoss!)) best = m;
  return best ? best.step : null;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
