// One tab trains a run at a time: the worker holds a Web Lock named after the run while it trains it,
// and a closed or reloaded tab releases it. Where Web Locks are missing (Node) nothing is locked and a
// run's heartbeat tells whether it is still alive (see Training.runningCheck).
import { fail } from './errors';

const LOCK_PREFIX = 'tabtune-run:';

interface LocksLike {
  request(name: string, options: { signal?: AbortSignal }, cb: () => Promise<void>): Promise<unknown>;
  query(): Promise<{ held?: { name?: string }[]; pending?: { name?: string }[] }>;
}

function webLocks(): LocksLike | null {
  const locks = (globalThis as { navigator?: { locks?: LocksLike } }).navigator?.locks;
  return locks && typeof locks.request === 'function' && typeof locks.query === 'function' ? locks : null;
}

/**
 * Takes the Web Lock named after the run for as long as this worker trains it (a reloading tab's worker
 * may hold it for a moment longer, hence the wait). Resolves with the release function; BUSY when
 * another tab keeps it.
 */
export function acquireRunLock(runId: string, waitMs = 5_000): Promise<() => void> {
  const locks = webLocks();
  if (!locks) return Promise.resolve(() => undefined);
  return new Promise((resolve, reject) => {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), waitMs);
    locks
      .request(LOCK_PREFIX + runId, { signal: timeout.signal }, () => {
        clearTimeout(timer);
        let release!: () => void;
        const held = new Promise<void>((r) => (release = r));
        resolve(release);
        return held;
      })
      .catch(() => {
        clearTimeout(timer);
        reject(fail('BUSY', 'This run is being trained in another tab.', 'Close that tab (or stop the run there), then resume it here.', { runId }));
      });
  });
}

/** The ids of the runs locked (held or waited for) in any tab of this origin, or null where Web Locks are missing (Node). */
export async function lockedRuns(): Promise<Set<string> | null> {
  const locks = webLocks();
  if (!locks) return null;
  try {
    const q = await locks.query();
    return new Set(
      [...(q.held ?? []), ...(q.pending ?? [])]
        .map((l) => l.name ?? '')
        .filter((n) => n.startsWith(LOCK_PREFIX))
        .map((n) => n.slice(LOCK_PREFIX.length)),
    );
  } catch {
    return null;
  }
}
