// Checkpoints of runs: chunked safetensors blobs (chunk/…) committed by a manifest (ckpt/<runId>/<step>),
// retention, pins, garbage collection of crashed writes, and branches (a run continuing from another run's
// checkpoint, which retention then keeps and resume falls back to).
//
// Crash safety: chunks are written first under a fresh writeId, the manifest last. Until the manifest exists
// nothing refers to the chunks, so a tab closed mid-write leaves orphans (collected later) and the previous
// checkpoint untouched. Re-saving a step writes new chunks under a new writeId and only deletes the old ones
// after the new manifest is committed. A run's manifests change only under its "ckpt:<id>" lock.

import { bestEffort } from '../util/async';
import type { JsonValue } from './backend';
import { crc32 } from './checksum';
import { decodeCheckpointBlob, planCheckpointBlob, type CheckpointPayload } from './codec';
import { idTime, type ChunkInfo, type GcResult, type StoreContext } from './context';
import { CheckpointCorruptError, StorageError, isQuotaError } from './errors';
import { asBytes, checkStep, finiteOrNull, keyId, storageKeys } from './keys';
import { runLabel, type CreateRunInput, type RunRecord, type RunsRepository } from './runs';

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
  /** The step valLoss was measured at (absent in manifests written before it was recorded). */
  valStep?: number | null;
  /** The evaluation's other measurements at this step (absent in manifests written before they existed). */
  extra?: Record<string, number> | null;
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
  /**
   * The step valLoss was measured at: the checkpoint's own, or an earlier one when it was saved between two
   * evaluations (a pause, the last step); null or absent when unknown (checkpoints saved before it was recorded).
   */
  valStep?: number | null;
  /** The evaluation's other measurements at this step (exact_match, probe_nll_delta_pct…), or null. */
  extra: Record<string, number> | null;
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
  /** Steps this retention pass must keep besides the usual ones (the best by the run's criterion, the recommended one, the Pareto front). */
  keep?: readonly number[];
}

export interface SaveCheckpointResult {
  info: CheckpointInfo;
  /** Steps retention deleted after the commit. */
  deletedSteps: number[];
}

export class CheckpointsRepository {
  constructor(
    private readonly ctx: StoreContext,
    private readonly runs: RunsRepository,
  ) {}

  /**
   * Saves a checkpoint: chunks first, manifest last, then retention. On a quota error the partial chunks are
   * removed and a StorageFullError is thrown; earlier checkpoints are untouched either way.
   */
  async save(runId: string, payload: CheckpointPayload, options: SaveCheckpointOptions = {}): Promise<SaveCheckpointResult> {
    const { backend } = this.ctx;
    const run = await this.runs.getExisting(runId);
    const step = checkStep(payload.step);
    const plan = planCheckpointBlob(payload); // validates shapes and state before anything is written
    const trainLoss = finiteOrNull(payload.metrics?.trainLoss);
    const valLoss = finiteOrNull(payload.metrics?.valLoss);
    const valStep = valLoss !== null && Number.isSafeInteger(payload.metrics?.valStep) ? payload.metrics!.valStep! : null;
    const extra = finiteExtra(payload.metrics?.extra);
    const what = `checkpoint step ${step} of ${runLabel(run, runId)}`;
    const writeId = this.ctx.newId();
    const prefix = storageKeys.chunkWritePrefix(runId, step, writeId);
    let committed = false;
    let manifest: CheckpointManifest | undefined;
    this.ctx.inflight.add(writeId);
    try {
      const chunks = await this.ctx.writeChunks(plan, (i) => storageKeys.chunk(runId, step, writeId, i));
      const present = await backend.keys(prefix);
      if (present.length !== chunks.length) {
        throw new StorageError(
          'WRITE_CONFLICT',
          `${what}: ${chunks.length - present.length} of its ${chunks.length} chunks vanished before it was committed (another tab collected them as garbage?)`,
          'Save the checkpoint again.',
        );
      }
      manifest = await this.ctx.withLock(`ckpt:${runId}`, async () => {
        const old = await backend.get<unknown>(storageKeys.manifest(runId, step));
        const m: CheckpointManifest = {
          kind: 'tabtune-checkpoint',
          version: 1,
          runId,
          step,
          writeId,
          createdAt: this.ctx.now(),
          format: 'safetensors-f32',
          totalBytes: plan.totalBytes,
          maxChunkBytes: this.ctx.maxChunkBytes,
          chunks,
          tensorCount: Object.keys(payload.tensors).length,
          trainLoss,
          valLoss,
          valStep,
          extra,
          pinned: options.pinned ?? (isManifest(old) ? old.pinned : false),
        };
        await backend.set(storageKeys.manifest(runId, step), m as unknown as JsonValue); // the commit point
        committed = true;
        if (isManifest(old) && old.writeId !== writeId) {
          await bestEffort(async () => backend.delMany(await backend.keys(storageKeys.chunkWritePrefix(runId, step, old.writeId))));
        }
        return m;
      });
    } catch (e) {
      if (!committed) await bestEffort(async () => backend.delMany(await backend.keys(prefix)));
      if (isQuotaError(e)) throw await this.ctx.storageFullError(what, plan.totalBytes, runId, e);
      throw e;
    } finally {
      this.ctx.inflight.delete(writeId);
    }
    // The checkpoint is committed: failing to note its loss on the run record must not fail the save.
    if (valLoss !== null) await bestEffort(() => this.runs.noteValLoss(runId, valStep ?? step, valLoss));
    const deletedSteps = await this.applyRetention(runId, { keepLast: options.keepLast, keep: options.keep });
    const info = (await this.list(runId, { gc: false })).find((c) => c.step === step) ?? toInfo(manifest!, false, false);
    return { info, deletedSteps };
  }

  /**
   * Committed checkpoints of a run, oldest first. Also collects the run's orphan chunks (crashed writes) unless
   * gc is false.
   */
  async list(runId: string, options: { gc?: boolean } = {}): Promise<CheckpointInfo[]> {
    if (options.gc ?? true) await this.collectRunOrphans(runId);
    return infos(await this.manifests(runId));
  }

  /** Committed checkpoints of every run: run by run (in key order), oldest first within a run. */
  async listAll(): Promise<CheckpointInfo[]> {
    const { backend } = this.ctx;
    const all = onlyManifests(await backend.getMany<unknown>(await backend.keys(storageKeys.allManifestsPrefix)));
    const byRun = new Map<string, CheckpointManifest[]>();
    for (const m of all) byRun.set(m.runId, [...(byRun.get(m.runId) ?? []), m]);
    return [...byRun.values()].flatMap((ms) => infos(ms.sort((a, b) => a.step - b.step)));
  }

  /** The run's newest committed checkpoint, or null. */
  async latest(runId: string): Promise<CheckpointInfo | null> {
    const list = await this.list(runId);
    return list[list.length - 1] ?? null;
  }

  /** Reads and verifies (sizes, CRC-32 of every chunk, safetensors structure) one checkpoint. */
  async load(runId: string, step: number): Promise<LoadedCheckpoint> {
    const manifests = await this.manifests(runId);
    const m = manifests.find((x) => x.step === step);
    if (!m) {
      const run = await this.runs.get(runId);
      throw new StorageError('NOT_FOUND', `${runLabel(run, runId)} has no checkpoint at step ${step}`);
    }
    const info = infos(manifests).find((x) => x.step === step)!;
    const what = `checkpoint step ${step} of run ${runId}`;
    const n = m.chunks.length;
    const total = new Uint8Array(m.totalBytes);
    let off = 0;
    for (let i = 0; i < n; i++) {
      const expect = m.chunks[i]!;
      const raw = await this.ctx.backend.get(storageKeys.chunk(runId, step, m.writeId, i));
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
    if (m.valLoss !== null && typeof m.valStep === 'number') metrics.valStep = m.valStep;
    return { step, tensors: decoded.tensors, state: decoded.state, metrics, info };
  }

  /**
   * Loads the newest checkpoint that verifies. With fallback (default), damaged newer ones are skipped and
   * reported in `skipped`; without it, the first damage throws. Null when the run has no checkpoint.
   */
  async loadLatest(runId: string, options: { fallback?: boolean } = {}): Promise<{ checkpoint: LoadedCheckpoint; skipped: CheckpointCorruptError[] } | null> {
    const list = await this.list(runId);
    const skipped: CheckpointCorruptError[] = [];
    for (let i = list.length - 1; i >= 0; i--) {
      try {
        return { checkpoint: await this.load(runId, list[i]!.step), skipped };
      } catch (e) {
        if (!(e instanceof CheckpointCorruptError) || options.fallback === false) throw e;
        skipped.push(e);
      }
    }
    if (skipped.length) throw skipped[0]!;
    return null;
  }

  /**
   * Starts a new run that continues from checkpoint `step` of `parentRunId` ("rewind and branch"). The new
   * run inherits the parent's config and dataset unless given; its first resume point is the parent's
   * checkpoint (see resolveResume), which retention on the parent then keeps.
   */
  async branch(parentRunId: string, step: number, input: Partial<Omit<CreateRunInput, 'parentRunId' | 'parentCheckpointStep'>> = {}): Promise<RunRecord> {
    const parent = await this.runs.getExisting(parentRunId);
    checkStep(step);
    if (!isManifest(await this.ctx.backend.get<unknown>(storageKeys.manifest(parentRunId, step)))) {
      throw new StorageError('NOT_FOUND', `${runLabel(parent, parentRunId)} has no checkpoint at step ${step} to branch from`);
    }
    return this.runs.create({
      name: input.name ?? `${parent.name} (from step ${step})`,
      config: input.config !== undefined ? input.config : parent.config,
      dataset: input.dataset !== undefined ? input.dataset : parent.dataset,
      status: input.status ?? 'paused',
      id: input.id,
      parentRunId,
      parentCheckpointStep: step,
    });
  }

  /**
   * Where to resume a run from: its own newest checkpoint, else (for a branch with none yet) the parent's
   * checkpoint it branched from. Null when there is neither.
   */
  async resolveResume(runId: string): Promise<CheckpointInfo | null> {
    const own = await this.latest(runId);
    if (own) return own;
    const run = await this.runs.get(runId);
    if (!run?.parentRunId || run.parentCheckpointStep === null) return null;
    return (await this.list(run.parentRunId)).find((c) => c.step === run.parentCheckpointStep) ?? null;
  }

  pin(runId: string, step: number): Promise<CheckpointInfo> {
    return this.setPinned(runId, step, true);
  }

  /** Unpins; the checkpoint is then subject to retention at the next save (or applyRetention). */
  unpin(runId: string, step: number): Promise<CheckpointInfo> {
    return this.setPinned(runId, step, false);
  }

  /** Deletes one checkpoint (pinned or not): manifest first, so it is never visible with missing chunks. */
  async delete(runId: string, step: number): Promise<boolean> {
    return this.ctx.withLock(`ckpt:${runId}`, async () => {
      const m = await this.ctx.backend.get<unknown>(storageKeys.manifest(runId, step));
      if (!isManifest(m)) return false;
      await this.deleteManifests(runId, [m]);
      return true;
    });
  }

  /** Deletes every checkpoint of a run, pinned ones included (TabtuneStore.deleteRun). */
  async deleteAllOf(runId: string): Promise<void> {
    const { backend } = this.ctx;
    await this.ctx.withLock(`ckpt:${runId}`, async () => {
      await backend.delMany(await backend.keys(storageKeys.manifestPrefix(runId)));
      await backend.delMany(await backend.keys(storageKeys.chunkRunPrefix(runId)));
    });
  }

  /**
   * Deletes checkpoints that are none of: the `keepLast` newest, the best by validation loss, pinned, in
   * `keep`, or a branch point of another run. Runs after every save; returns the deleted steps.
   */
  async applyRetention(runId: string, options: { keepLast?: number; keep?: readonly number[] } = {}): Promise<number[]> {
    const keepLast = options.keepLast ?? this.ctx.keepLast;
    if (!Number.isSafeInteger(keepLast) || keepLast < 1) throw new StorageError('INVALID_INPUT', `keepLast must be at least 1, got ${keepLast}`);
    const branchPoints = new Set(
      (await this.runs.list()).filter((r) => r.parentRunId === runId && r.parentCheckpointStep !== null).map((r) => r.parentCheckpointStep!),
    );
    return this.ctx.withLock(`ckpt:${runId}`, async () => {
      const manifests = await this.manifests(runId);
      const best = bestStep(manifests);
      const recent = new Set(manifests.slice(-keepLast).map((m) => m.step));
      const keep = new Set(options.keep ?? []);
      const doomed = manifests.filter((m) => !recent.has(m.step) && m.step !== best && !m.pinned && !branchPoints.has(m.step) && !keep.has(m.step));
      await this.deleteManifests(runId, doomed);
      return doomed.map((m) => m.step);
    });
  }

  /**
   * Removes checkpoints of runs that no longer exist (a deleteRun interrupted half way) and chunks no manifest
   * refers to. Chunks of writes in flight in this store, and orphans younger than `graceMs`, are kept.
   */
  async collectGarbage(graceMs: number): Promise<GcResult> {
    const { backend } = this.ctx;
    const result: GcResult = { removedKeys: 0 };
    const runIds = await this.runs.ids();
    const manifestRuns = new Set((await backend.keys(storageKeys.allManifestsPrefix)).map(keyId));
    for (const runId of manifestRuns) {
      if (runIds.has(runId)) continue;
      await this.ctx.withLock(`ckpt:${runId}`, async () => {
        const ks = await backend.keys(storageKeys.manifestPrefix(runId));
        await backend.delMany(ks);
        result.removedKeys += ks.length;
      });
    }
    // Orphan chunks, run by run.
    const chunkRuns = new Set((await backend.keys(storageKeys.allChunksPrefix)).map(keyId));
    for (const runId of chunkRuns) result.removedKeys += (await this.collectRunOrphans(runId, graceMs)).removedKeys;
    return result;
  }

  private async manifests(runId: string): Promise<CheckpointManifest[]> {
    const { backend } = this.ctx;
    const ks = await backend.keys(storageKeys.manifestPrefix(runId));
    return onlyManifests(await backend.getMany<unknown>(ks)).sort((a, b) => a.step - b.step);
  }

  private async setPinned(runId: string, step: number, pinned: boolean): Promise<CheckpointInfo> {
    const { backend } = this.ctx;
    await this.ctx.withLock(`ckpt:${runId}`, async () => {
      const m = await backend.get<unknown>(storageKeys.manifest(runId, step));
      if (!isManifest(m)) throw new StorageError('NOT_FOUND', `run ${runId} has no checkpoint at step ${step}`);
      if (m.pinned !== pinned) await backend.set(storageKeys.manifest(runId, step), { ...m, pinned } as unknown as JsonValue);
    });
    return (await this.list(runId, { gc: false })).find((c) => c.step === step)!;
  }

  /** Call with the run's ckpt lock held. */
  private async deleteManifests(runId: string, doomed: CheckpointManifest[]): Promise<void> {
    if (!doomed.length) return;
    const { backend } = this.ctx;
    await backend.delMany(doomed.map((m) => storageKeys.manifest(runId, m.step)));
    for (const m of doomed) await backend.delMany(await backend.keys(storageKeys.chunkWritePrefix(runId, m.step, m.writeId)));
  }

  private async collectRunOrphans(runId: string, graceMs = this.ctx.orphanGraceMs): Promise<GcResult> {
    const { backend } = this.ctx;
    return this.ctx.withLock(`ckpt:${runId}`, async () => {
      const manifests = await this.manifests(runId);
      const live = new Set(manifests.map((m) => `${m.step}/${m.writeId}`));
      const now = this.ctx.now();
      const orphans: string[] = [];
      for (const k of await backend.keys(storageKeys.chunkRunPrefix(runId))) {
        const [, , stepText, writeId] = k.split('/');
        if (!stepText || !writeId) continue;
        if (live.has(`${Number(stepText)}/${writeId}`) || this.ctx.inflight.has(writeId)) continue;
        if (now - idTime(writeId) < graceMs) continue;
        orphans.push(k);
      }
      await backend.delMany(orphans);
      return { removedKeys: orphans.length };
    });
  }
}

function isManifest(v: unknown): v is CheckpointManifest {
  const m = v as CheckpointManifest | undefined;
  return !!m && typeof m === 'object' && m.kind === 'tabtune-checkpoint' && typeof m.step === 'number' && Array.isArray(m.chunks);
}

function onlyManifests(values: unknown[]): CheckpointManifest[] {
  return values.filter(isManifest) as CheckpointManifest[];
}

/** Infos of one run's manifests (sorted by step). */
function infos(manifests: CheckpointManifest[]): CheckpointInfo[] {
  const best = bestStep(manifests);
  const latest = manifests.length ? manifests[manifests.length - 1]!.step : -1;
  return manifests.map((m) => toInfo(m, m.step === best, m.step === latest));
}

function toInfo(m: CheckpointManifest, isBest: boolean, isLatest: boolean): CheckpointInfo {
  return {
    runId: m.runId,
    step: m.step,
    createdAt: m.createdAt,
    sizeBytes: m.totalBytes,
    chunkCount: m.chunks.length,
    trainLoss: m.trainLoss,
    valLoss: m.valLoss,
    valStep: m.valStep ?? null,
    extra: m.extra ?? null,
    pinned: m.pinned,
    isBest,
    isLatest,
  };
}

/** The finite numbers of an evaluation's extra measurements, or null when there are none. */
function finiteExtra(extra: Record<string, number> | undefined): Record<string, number> | null {
  if (!extra || typeof extra !== 'object') return null;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(extra)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  return Object.keys(out).length ? out : null;
}

function bestStep(manifests: CheckpointManifest[]): number | null {
  let best: CheckpointManifest | null = null;
  // A checkpoint saved between evaluations carries an earlier step's figure: its own weights were not measured.
  for (const m of manifests) if (m.valLoss !== null && (m.valStep ?? m.step) === m.step && (best === null || m.valLoss < best.valLoss!)) best = m;
  return best ? best.step : null;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
