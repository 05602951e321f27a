// Waiting without blocking: one sleep for the engine (the loop yields between steps, a paused run
// waits, a long read lets a worker answer between chunks).
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Lets the event loop run (pending messages, timers) before going on: one task posted through a
 * MessageChannel. Not setTimeout(0): browsers make a timer nested five deep wait at least 4 ms, and the
 * training loop (a yield per step) and decoding (one every 15 ms) nest them without end: measured in a
 * Chromium worker, 4.19 ms per setTimeout(0) yield against 0.05 ms per message, a tenth of a small
 * model's training step. setTimeout where there is no MessageChannel.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof MessageChannel !== 'function') return sleep(0);
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

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
