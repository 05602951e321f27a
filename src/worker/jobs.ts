// A run's stored job (RunRecord.config of runs trained in the browser).
import type { RunJob } from '../protocol/messages';

export function parseJob(config: unknown): RunJob | null {
  const j = config as Partial<RunJob> | null;
  return j && typeof j === 'object' && j.kind === 'tabtune-run' && j.version === 1 && j.train && j.data && j.model ? (j as RunJob) : null;
}
