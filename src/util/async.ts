// Waiting without blocking: one sleep for the engine (the loop yields between steps, a paused run
// waits, a long read lets a worker answer between chunks).
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Lets the event loop run (pending messages, timers) before going on. */
export const yieldToEventLoop = (): Promise<void> => sleep(0);
