// TabtuneStore: runs, checkpoints and datasets that survive a reload, as three repositories over one
// KeyValueBackend (IndexedDB in the browser, the filesystem in the CLI). Plain TypeScript: runs in a page, a
// Web Worker and Node.
//   store.runs         run records, status, heartbeat, metrics (runs.ts)
//   store.checkpoints  chunked checkpoints, retention, pins, branches and resume (checkpoints.ts)
//   store.datasets     stored dataset files (datasets.ts)
//   store.preferences  preference pairs collected in the compare view, per run (preferences.ts)
//   store.backendTimings  which backend trains a model faster on this device, measured (backend-timings.ts)
// The store itself holds only what spans them: deleting a run, garbage collection, recovery at startup and
// the storage report. Key layout: keys.ts; what the repositories share (locks, quota errors): context.ts.

import type { UseStore } from 'idb-keyval';
import { IdbBackend, type KeyValueBackend } from './backend';
import { BackendTimingsRepository } from './backend-timings';
import { CheckpointsRepository, type CheckpointInfo } from './checkpoints';
import { StoreContext, type GcResult, type TabtuneStoreOptions } from './context';
import { DatasetsRepository } from './datasets';
import { PreferencesRepository } from './preferences';
import type { FreeableItem } from './errors';
import { RunsRepository, type RunRecord } from './runs';

export interface StorageReport {
  runs: { runId: string; name: string; checkpointCount: number; checkpointBytes: number; metricsPoints: number }[];
  checkpoints: (CheckpointInfo & { runName: string })[];
  datasets: { datasetId: string; name: string; bytes: number }[];
  /** Checkpoint and dataset bytes (records and metrics are small and not counted). */
  totalBytes: number;
}

export class TabtuneStore {
  readonly backend: KeyValueBackend;
  readonly runs: RunsRepository;
  readonly checkpoints: CheckpointsRepository;
  readonly datasets: DatasetsRepository;
  readonly preferences: PreferencesRepository;
  readonly backendTimings: BackendTimingsRepository;
  private readonly ctx: StoreContext;

  /**
   * @param backend a KeyValueBackend, or an idb-keyval store (`createStore(db, store)`), or nothing for the
   * default IndexedDB database "tabtune".
   */
  constructor(backend?: KeyValueBackend | UseStore, options: TabtuneStoreOptions = {}) {
    this.backend = typeof backend === 'function' ? new IdbBackend(backend) : (backend ?? new IdbBackend());
    this.ctx = new StoreContext(this.backend, options, (currentRunId) => this.freeable(currentRunId));
    this.runs = new RunsRepository(this.ctx);
    this.checkpoints = new CheckpointsRepository(this.ctx, this.runs);
    this.datasets = new DatasetsRepository(this.ctx);
    this.preferences = new PreferencesRepository(this.ctx, this.runs);
    this.backendTimings = new BackendTimingsRepository(this.backend);
  }

  /**
   * What to call once at startup (page load, worker start): collects orphan chunks and records of crashed
   * writes, and marks runs that were 'running' with a stale heartbeat as 'interrupted'.
   */
  async recover(options: { staleAfterMs?: number; orphanGraceMs?: number } = {}): Promise<{ interrupted: RunRecord[]; garbage: GcResult }> {
    const garbage = await this.collectGarbage({ graceMs: options.orphanGraceMs });
    const interrupted = await this.runs.findInterrupted({ staleAfterMs: options.staleAfterMs });
    return { interrupted, garbage };
  }

  /** Deletes a run with its metrics, checkpoints and preference pairs (the record first). Branches of it keep their own data. */
  async deleteRun(runId: string): Promise<void> {
    await this.runs.deleteRecordAndMetrics(runId);
    await this.checkpoints.deleteAllOf(runId);
    await this.preferences.deleteAllOf(runId);
  }

  /**
   * Removes what crashed or interrupted writes left behind: chunks no manifest refers to, dataset chunks
   * without a record, checkpoints and metrics of deleted runs. Chunks of writes in flight in this store, and
   * orphans younger than `graceMs` (another tab may be writing them), are kept. Preference pairs of deleted runs go too.
   */
  async collectGarbage(options: { graceMs?: number } = {}): Promise<GcResult> {
    const graceMs = options.graceMs ?? this.ctx.orphanGraceMs;
    const parts = [await this.checkpoints.collectGarbage(graceMs), await this.runs.collectGarbage(), await this.datasets.collectGarbage(graceMs), await this.preferences.collectGarbage()];
    return { removedKeys: parts.reduce((a, p) => a + p.removedKeys, 0) };
  }

  /** What takes space, largest first: per run, per checkpoint, per dataset. */
  async storageReport(): Promise<StorageReport> {
    const runs = await this.runs.list();
    const names = new Map(runs.map((r) => [r.id, r.name]));
    const all = await this.checkpoints.listAll();
    const checkpoints = all.map((c) => ({ ...c, runName: names.get(c.runId) ?? c.runId })).sort((a, b) => b.sizeBytes - a.sizeBytes);
    const runRows = runs
      .map((r) => {
        const cs = all.filter((c) => c.runId === r.id);
        return { runId: r.id, name: r.name, checkpointCount: cs.length, checkpointBytes: cs.reduce((a, c) => a + c.sizeBytes, 0), metricsPoints: r.metricsCount };
      })
      .sort((a, b) => b.checkpointBytes - a.checkpointBytes);
    const datasets = (await this.datasets.list()).map((d) => ({ datasetId: d.id, name: d.name, bytes: d.byteLength })).sort((a, b) => b.bytes - a.bytes);
    const totalBytes = all.reduce((a, c) => a + c.sizeBytes, 0) + datasets.reduce((a, d) => a + d.bytes, 0);
    return { runs: runRows, checkpoints, datasets, totalBytes };
  }

  /** What a StorageFullError offers to delete: the largest unpinned checkpoints, other runs and datasets, largest first. */
  private async freeable(currentRunId: string | null): Promise<FreeableItem[]> {
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
    return [...cks, ...runs, ...datasets].sort((a, b) => b.bytes - a.bytes);
  }
}
