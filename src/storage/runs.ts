// Runs: their records (run/<id>) and their metric history (metrics/<id>/<page>), over the store's one backend.
// A run record changes only under its "run:<id>" lock, read-modify-write.

import type { JsonValue, StoredValue } from './backend';
import type { GcResult, StoreContext } from './context';
import { StorageError } from './errors';
import { checkId, checkName, checkStep, finiteOrNull, keyId, storageKeys, toJson } from './keys';

/** cancelled: the user cancelled it (not paused: nothing waits to resume it; its checkpoints stay). */
export type RunStatus = 'running' | 'paused' | 'interrupted' | 'finished' | 'failed' | 'cancelled';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'paused', 'interrupted', 'finished', 'failed', 'cancelled'];

export interface RunDatasetRef {
  fingerprint: string;
  name: string;
  /** Id of the stored copy (datasets.save), when there is one. */
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
  /** What the run's evaluations decided; absent in records written before it existed, null until a run ends. */
  quality?: RunQuality | null;
  /** The forgetting probe sampled from the base model before training (src/train/quality/probe.ts). */
  probe?: JsonValue | null;
  /** The base model measured on the held-out split before the first step (src/train/quality: Baseline). */
  baseline?: JsonValue | null;
  /** How this run's checkpoint was derived from another's (path-wise rewinding: scaled or rewound layers). */
  recipe?: JsonValue | null;
}

/** The decisions of a run's evaluations (src/train/quality/decisions.ts), stored with the run. */
export interface RunQuality {
  criterion: 'val_loss' | 'exact_match';
  /** The best checkpoint by the criterion, the recommended one (best task metric within the forgetting budget), the last. */
  bestStep: number | null;
  recommendedStep: number | null;
  finalStep: number;
  stoppedEarly: boolean;
  /** Why the run stopped before its last step (early stopping's sentence), else null. */
  stopReason: string | null;
  /** The recommendation in one sentence ("step 300: exact match 92%, general skill −1.8%; …"). */
  sentence: string | null;
  budgetPct: number;
  /** Points measured along the path from base to tuned (rewinding), with their recipes; null until explored. */
  path?: JsonValue | null;
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

export type RunPatch = Partial<Pick<RunRecord, 'name' | 'status' | 'error' | 'bestValLoss' | 'bestValStep' | 'quality'>> & {
  probe?: unknown;
  baseline?: unknown;
  recipe?: unknown;
  config?: unknown;
  dataset?: CreateRunInput['dataset'];
};

export function runLabel(run: Pick<RunRecord, 'id' | 'name'> | null | undefined, runId: string): string {
  return run ? `run "${run.name}"` : `run ${runId}`;
}

export class RunsRepository {
  /** Tail page of each run's metrics, valid while `count` matches the run record. */
  private readonly metricsTail = new Map<string, { count: number; page: JsonValue[] }>();

  constructor(private readonly ctx: StoreContext) {}

  async create(input: CreateRunInput): Promise<RunRecord> {
    const now = this.ctx.now();
    const id = input.id !== undefined ? checkId(input.id, 'run') : this.ctx.newId();
    const status = input.status ?? 'running';
    checkStatus(status);
    const run: RunRecord = {
      id,
      name: checkName(input.name),
      createdAt: now,
      updatedAt: now,
      config: toJson(input.config ?? null, 'run config'),
      dataset: datasetRef(input.dataset),
      status,
      error: null,
      heartbeatAt: status === 'running' ? now : null,
      bestValLoss: null,
      bestValStep: null,
      metricsCount: 0,
      metricsPageSize: this.ctx.metricsPageSize,
      parentRunId: input.parentRunId != null ? checkId(input.parentRunId, 'parent run') : null,
      parentCheckpointStep: input.parentCheckpointStep != null ? checkStep(input.parentCheckpointStep) : null,
    };
    return this.ctx.withLock(`run:${id}`, async () => {
      const { backend } = this.ctx;
      if (await backend.get(storageKeys.run(id))) throw new StorageError('INVALID_INPUT', `a run with id ${id} already exists`);
      await this.ctx.guardWrite(`the new run "${run.name}"`, 0, id, () => backend.set(storageKeys.run(id), run as unknown as JsonValue));
      return run;
    });
  }

  async get(runId: string): Promise<RunRecord | null> {
    return ((await this.ctx.backend.get(storageKeys.run(runId))) as unknown as RunRecord | undefined) ?? null;
  }

  /** The run, or a NOT_FOUND StorageError. */
  async getExisting(runId: string): Promise<RunRecord> {
    const run = await this.get(runId);
    if (!run) throw new StorageError('NOT_FOUND', `no run with id ${runId}`);
    return run;
  }

  /** All runs, most recently updated first. */
  async list(): Promise<RunRecord[]> {
    const { backend } = this.ctx;
    const ks = await backend.keys(storageKeys.runPrefix);
    const runs = (await backend.getMany(ks)).filter((r): r is JsonValue => !!r) as unknown as RunRecord[];
    return runs.sort((a, b) => b.updatedAt - a.updatedAt || b.createdAt - a.createdAt);
  }

  /** Ids of the stored runs (no records read). */
  async ids(): Promise<Set<string>> {
    return new Set((await this.ctx.backend.keys(storageKeys.runPrefix)).map(keyId));
  }

  async update(runId: string, patch: RunPatch): Promise<RunRecord> {
    return this.mutate(runId, (run) => {
      const next: RunRecord = { ...run, updatedAt: this.ctx.now() };
      if (patch.name !== undefined) next.name = checkName(patch.name);
      if (patch.config !== undefined) next.config = toJson(patch.config, 'run config');
      if (patch.dataset !== undefined) next.dataset = datasetRef(patch.dataset);
      if (patch.error !== undefined) next.error = patch.error;
      if (patch.bestValLoss !== undefined) next.bestValLoss = finiteOrNull(patch.bestValLoss);
      if (patch.bestValStep !== undefined) next.bestValStep = patch.bestValStep;
      if (patch.quality !== undefined) next.quality = patch.quality === null ? null : (toJson(patch.quality, 'run quality') as unknown as RunQuality);
      if (patch.probe !== undefined) next.probe = toJson(patch.probe, 'forgetting probe');
      if (patch.baseline !== undefined) next.baseline = toJson(patch.baseline, 'baseline');
      if (patch.recipe !== undefined) next.recipe = toJson(patch.recipe, 'recipe');
      if (patch.status !== undefined) {
        checkStatus(patch.status);
        next.status = patch.status;
        if (patch.status === 'running') next.heartbeatAt = this.ctx.now();
        if (patch.status !== 'failed' && patch.error === undefined) next.error = null;
      }
      return next;
    });
  }

  rename(runId: string, name: string): Promise<RunRecord> {
    return this.update(runId, { name });
  }

  /** Sets the status ('running' also refreshes the heartbeat; `error` is kept only for 'failed'). */
  setStatus(runId: string, status: RunStatus, error?: string): Promise<RunRecord> {
    return this.update(runId, { status, error: status === 'failed' ? (error ?? 'unknown error') : null });
  }

  /** Records a sign of life from the training loop (call every few seconds while training). */
  async heartbeat(runId: string): Promise<void> {
    await this.mutate(runId, (run) => ({ ...run, heartbeatAt: this.ctx.now() }));
  }

  /** Lowers the run's bestValLoss to `valLoss` (reached at `step`) when it beats it; otherwise nothing is written. */
  async noteValLoss(runId: string, step: number, valLoss: number): Promise<void> {
    await this.mutate(runId, (r) =>
      r.bestValLoss === null || valLoss < r.bestValLoss ? { ...r, bestValLoss: valLoss, bestValStep: step, updatedAt: this.ctx.now() } : null,
    );
  }

  /**
   * Runs whose status is 'running' but whose heartbeat (or, lacking one, last update) is older than
   * `staleAfterMs`: their tab was closed or crashed. They are marked 'interrupted' (unless markInterrupted
   * is false) and returned so the UI can offer to resume them.
   */
  async findInterrupted(options: { staleAfterMs?: number; markInterrupted?: boolean } = {}): Promise<RunRecord[]> {
    const stale = options.staleAfterMs ?? this.ctx.staleAfterMs;
    const mark = options.markInterrupted ?? true;
    const now = this.ctx.now();
    const out: RunRecord[] = [];
    for (const run of await this.list()) {
      if (run.status !== 'running' || now - (run.heartbeatAt ?? run.updatedAt) <= stale) continue;
      if (!mark) {
        out.push(run);
        continue;
      }
      try {
        const updated = await this.mutate(run.id, (r) => {
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
   * Deletes the run record (first: whatever is left of the run is then garbage) and its metrics. Its
   * checkpoints belong to the checkpoints repository: TabtuneStore.deleteRun deletes the run with them.
   */
  async deleteRecordAndMetrics(runId: string): Promise<void> {
    await this.ctx.withLock(`run:${runId}`, () => this.ctx.backend.del(storageKeys.run(runId)));
    this.metricsTail.delete(runId);
    await this.ctx.backend.delMany(await this.ctx.backend.keys(storageKeys.metricsPrefix(runId)));
  }

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
    return this.ctx.withLock(`run:${runId}`, async () => {
      const { backend } = this.ctx;
      const run = await this.getExisting(runId);
      if (!incoming.length) return run.metricsCount;
      const ps = run.metricsPageSize || this.ctx.metricsPageSize;
      const count = run.metricsCount;
      let pageIndex = Math.floor(count / ps);
      const inPage = count % ps;
      let page: JsonValue[] = [];
      if (inPage) {
        const cached = this.metricsTail.get(runId);
        if (cached && cached.count === count) page = cached.page.slice();
        else page = (((await backend.get(storageKeys.metricsPage(runId, pageIndex))) as JsonValue[] | undefined) ?? []).slice(0, inPage);
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
      const next: RunRecord = { ...run, metricsCount: count + incoming.length, bestValLoss: best, bestValStep: bestStep, updatedAt: this.ctx.now() };
      // Pages first, run record last: if only the pages land, the old count still describes valid data.
      entries.push([storageKeys.run(runId), next as unknown as JsonValue]);
      const approx = entries.reduce((a, [, v]) => a + JSON.stringify(v).length, 0);
      this.metricsTail.delete(runId);
      await this.ctx.guardWrite(`${incoming.length} metric point(s) of ${runLabel(run, runId)}`, approx, runId, () => backend.setMany(entries));
      this.metricsTail.set(runId, { count: next.metricsCount, page });
      return next.metricsCount;
    });
  }

  /** Metric points [from, to) (default: all). */
  async readMetrics(runId: string, range: { from?: number; to?: number } = {}): Promise<JsonValue[]> {
    const run = await this.getExisting(runId);
    const ps = run.metricsPageSize || this.ctx.metricsPageSize;
    const from = Math.max(0, Math.floor(range.from ?? 0));
    const to = Math.min(run.metricsCount, Math.floor(range.to ?? run.metricsCount));
    if (to <= from) return [];
    const first = Math.floor(from / ps);
    const last = Math.floor((to - 1) / ps);
    const pageKeys: string[] = [];
    for (let p = first; p <= last; p++) pageKeys.push(storageKeys.metricsPage(runId, p));
    const pages = (await this.ctx.backend.getMany(pageKeys)) as (JsonValue[] | undefined)[];
    const out: JsonValue[] = [];
    pages.forEach((page, i) => {
      const base = (first + i) * ps;
      const lo = Math.max(from - base, 0);
      const hi = Math.min(to - base, ps);
      if (page) out.push(...page.slice(lo, hi));
    });
    return out;
  }

  /** Deletes metrics of runs that no longer exist (a deleteRecordAndMetrics interrupted half way). */
  async collectGarbage(): Promise<GcResult> {
    const { backend } = this.ctx;
    const runIds = await this.ids();
    const metricsKeys = (await backend.keys(storageKeys.allMetricsPrefix)).filter((k) => !runIds.has(keyId(k)));
    if (metricsKeys.length) await backend.delMany(metricsKeys);
    return { removedKeys: metricsKeys.length };
  }

  /** Read-modify-write of a run record under its lock; `fn` returning null means "no change". */
  private mutate(runId: string, fn: (run: RunRecord) => RunRecord | null): Promise<RunRecord> {
    return this.ctx.withLock(`run:${runId}`, async () => {
      const run = await this.getExisting(runId);
      const next = fn(run);
      if (!next) return run;
      await this.ctx.guardWrite(`${runLabel(run, runId)}`, 0, runId, () => this.ctx.backend.set(storageKeys.run(runId), next as unknown as JsonValue));
      if (next.metricsCount !== run.metricsCount) this.metricsTail.delete(runId);
      return next;
    });
  }
}

function checkStatus(status: RunStatus): void {
  if (!RUN_STATUSES.includes(status)) throw new StorageError('INVALID_INPUT', `unknown run status ${JSON.stringify(status)}`);
}

function datasetRef(d: CreateRunInput['dataset']): RunDatasetRef | null {
  if (!d) return null;
  if (typeof d.fingerprint !== 'string' || typeof d.name !== 'string') throw new StorageError('INVALID_INPUT', 'a run dataset needs a fingerprint and a name');
  return { fingerprint: d.fingerprint, name: d.name, datasetId: d.datasetId ?? null };
}
