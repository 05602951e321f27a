// The bench page's worker: starts the asked backend the way the app's worker does (setupBackend, the
// wasm binaries at the URLs Vite serves, the thread cap raised as src/worker/handler.ts does) and runs
// bench/measure.ts's benchModel on each model, read over HTTP without the Cache API (load time is real).
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { urlSource } from '../../src/io/sources';
import { classifyAdapter, setupBackend, type GpuLike } from '../../src/model/backend';
import { setGpuFusedOps } from '../../src/model/ops';
import { benchModel, type RunContext } from '../measure';
import type { BenchPlan } from '../plan';
import type { BrowserJob, WorkerMessage } from './protocol';

const post = (m: WorkerMessage): void => (self as unknown as { postMessage(m: WorkerMessage): void }).postMessage(m);

/** tfjs-backend-wasm caps its pool at hardwareConcurrency / 2: report enough cores for the threads asked. */
function allowWasmThreads(threads: number): void {
  const nav = navigator as { hardwareConcurrency?: number };
  if ((nav.hardwareConcurrency ?? 0) >= threads * 2) return;
  Object.defineProperty(nav, 'hardwareConcurrency', { value: threads * 2, configurable: true });
}

/**
 * A few steps and tokens only (software WebGPU: ~20-45 s per 8 x 128 step on tabtune-tiny here): LoRA on
 * q,v at both shapes, one warm-up and one timed step each.
 */
function light(p: BenchPlan): BenchPlan {
  return {
    ...p,
    train: p.train.filter((t) => t.targets.length === 2).map((t) => ({ ...t, warmup: 1, steps: 1 })),
    leak: { ...p.leak, steps: Math.min(p.leak.steps, 5) },
    prefill: { ...p.prefill, reps: 1 },
    generate: { ...p.generate, new_tokens: Math.min(p.generate.new_tokens, 16), reps: 1 },
    matmulBudgetMs: 100,
    matmulMinReps: 1,
  };
}

async function adapterInfo(): Promise<{ label: string | null; software: boolean | null }> {
  const gpu = (navigator as { gpu?: GpuLike }).gpu;
  const adapter = await gpu?.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { label: null, software: null };
  const info = adapter.info ?? (await adapter.requestAdapterInfo?.().catch(() => undefined));
  const c = classifyAdapter(adapter, info);
  return { label: c.renderer ?? c.label, software: c.software };
}

self.onmessage = async (e: MessageEvent<BrowserJob>) => {
  const job = e.data;
  try {
    if (job.backend === 'wasm') allowWasmThreads(job.threads);
    const rep = await setupBackend(job.backend, {
      wasmThreads: job.threads,
      wasmPaths: { 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd },
    });
    const adapter = rep.name === 'webgpu' ? await adapterInfo() : { label: null, software: null };
    setGpuFusedOps(job.gpuFused);
    const unfused = rep.name === 'webgpu' && !job.gpuFused ? ' (TF.js ops)' : '';
    const backendLabel = (rep.name === 'webgpu' && adapter.software ? `webgpu (software: ${adapter.label ?? 'fallback adapter'})` : rep.name) + unfused;
    const memory = (performance as { memory?: { usedJSHeapSize: number } }).memory;
    // A software adapter runs WebGPU's kernels on the CPU, ~1 s per generated token even on tabtune-tiny:
    // the first model only, few steps and tokens, labelled software.
    const software = rep.name === 'webgpu' && adapter.software === true;
    for (const m of software ? job.models.slice(0, 1) : job.models) {
      const ctx: RunContext = { model: m.name, backend: backendLabel, threads: rep.threads ?? 1, host: 'browser', jsHeap: () => memory?.usedJSHeapSize ?? null, cpuMs: () => null };
      await benchModel(
        urlSource(m.url, { cacheName: false }),
        ctx,
        job,
        (x) => post({ kind: 'measurement', m: x }),
        (text) => post({ kind: 'log', text }),
        software ? light : undefined,
      );
    }
    post({ kind: 'done', backend: { name: rep.name, threads: rep.threads, reasons: rep.reasons, adapter: adapter.label, software: adapter.software, crossOriginIsolated: globalThis.crossOriginIsolated } });
  } catch (err) {
    post({ kind: 'error', message: (err as Error).stack ?? String(err) });
  }
};
