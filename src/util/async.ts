// Waiting without blocking: one sleep for the engine (the loop yields between steps, a paused run
// waits, a long read lets a worker answer between chunks).
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lets the event loop run (pending messages, timers) before going on. */
export const yieldToEventLoop = (): Promise<void> => sleep(0);

/**
 * Runs work whose failure must not hide the real outcome (a status write while storage is full, a
 * cleanup that garbage collection retries later): errors are swallowed on purpose.
 */
export async function bestEffort(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch {
    // Ignored on purpose (see above).
  }
}
