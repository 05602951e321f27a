// The bench page: runs a BrowserJob in a dedicated worker (as the app runs its engine) and hands the
// results to Playwright through window.tabtuneBench.
import type { BrowserJob, WorkerMessage } from './protocol';

type Done = Extract<WorkerMessage, { kind: 'done' }>['backend'];

function run(job: BrowserJob): Promise<{ measurements: unknown[]; backend: Done }> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  const measurements: unknown[] = [];
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const msg = e.data;
      if (msg.kind === 'log') console.log(msg.text);
      else if (msg.kind === 'measurement') measurements.push(msg.m);
      else if (msg.kind === 'done') {
        worker.terminate();
        resolve({ measurements, backend: msg.backend });
      } else {
        worker.terminate();
        reject(new Error(msg.message));
      }
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`bench worker failed: ${e.message}`));
    };
    worker.postMessage(job);
  });
}

(globalThis as { tabtuneBench?: unknown }).tabtuneBench = { run, crossOriginIsolated: globalThis.crossOriginIsolated };
