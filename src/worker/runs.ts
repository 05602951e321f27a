// The stored runs and their checkpoints (list, rename, delete, pin, metrics, the storage report): the
// requests over store.runs / store.checkpoints that do not train. A run being trained cannot be deleted;
// a 'running' run that nobody trains any more is reported (and stored) as interrupted.
import { storageEstimate, type CheckpointInfo, type RunRecord } from '../storage/index';
import type { MetricPoint } from '../train/metrics';
import type { RunSummary, StorageReport } from '../protocol/messages';
import type { Adapters } from './adapters';
import { bestEffort } from '../util/async';
import type { WorkerContext } from './context';
import { fail } from './errors';
import { parseJob } from './jobs';
import type { Training } from './training';

export class Runs {
  constructor(
    private readonly worker: Pick<WorkerContext, 'store' | 'serialModel'>,
    private readonly training: Training,
    private readonly adapters: Adapters,
  ) {}

  async list(): Promise<{ runs: RunSummary[] }> {
    const store = await this.worker.store();
    const runs = await store.runs.list();
    const stillRunning = await this.training.runningCheck();
    const out: RunSummary[] = [];
    for (let run of runs) {
      const active = this.training.isTraining(run.id);
      if (run.status === 'running' && !active && !stillRunning(run)) {
        // Its tab was closed or reloaded mid-run: resumable from its newest checkpoint.
        run = { ...run, status: 'interrupted' };
        await bestEffort(() => store.runs.setStatus(run.id, 'interrupted'));
      }
      const checkpoints = await store.checkpoints.list(run.id, { gc: false });
      // The forgetting probe (token ids) stays in storage: the page needs none of it.
      out.push({ ...run, probe: null, active, latestCheckpoint: checkpoints[checkpoints.length - 1] ?? null, checkpointCount: checkpoints.length, job: parseJob(run.config) });
    }
    return { runs: out };
  }

  async listCheckpoints(runId: string): Promise<{ checkpoints: CheckpointInfo[] }> {
    const store = await this.worker.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    return { checkpoints: await store.checkpoints.list(runId) };
  }

  async delete(runId: string): Promise<{ deleted: boolean }> {
    if (this.training.isTraining(runId)) throw fail('BUSY', 'This run is training.', 'Cancel it first, then delete it.');
    const store = await this.worker.store();
    const existed = !!(await store.runs.get(runId));
    if (this.adapters.current?.runId === runId) await this.worker.serialModel(async () => this.adapters.detach());
    await store.deleteRun(runId);
    return { deleted: existed };
  }

  async deleteCheckpoint(runId: string, step: number): Promise<{ deleted: boolean }> {
    return { deleted: await (await this.worker.store()).checkpoints.delete(runId, step) };
  }

  async rename(runId: string, name: string): Promise<{ run: RunRecord }> {
    const trimmed = typeof name === 'string' ? name.trim() : '';
    if (!trimmed) throw fail('BAD_REQUEST', 'A run name cannot be empty.', 'Type a name.');
    const store = await this.worker.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    const run = await store.runs.rename(runId, trimmed.slice(0, 200));
    this.training.renamed(runId, run.name);
    return { run };
  }

  async pinCheckpoint(runId: string, step: number, pinned: boolean): Promise<{ checkpoint: CheckpointInfo }> {
    const store = await this.worker.store();
    const checkpoint = pinned ? await store.checkpoints.pin(runId, step) : await store.checkpoints.unpin(runId, step);
    return { checkpoint };
  }

  async metrics(runId: string): Promise<{ points: MetricPoint[] }> {
    const store = await this.worker.store();
    if (!(await store.runs.get(runId))) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    return { points: (await store.runs.readMetrics(runId)) as unknown as MetricPoint[] };
  }

  async storageReport(): Promise<{ report: StorageReport; estimate: { usage: number; quota: number } | null }> {
    return { report: await (await this.worker.store()).storageReport(), estimate: await storageEstimate() };
  }
}
