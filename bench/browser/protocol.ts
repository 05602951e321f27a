// Messages between the bench page (bench/browser/page.ts) and its worker (bench/browser/worker.ts).
import type { Measurement } from '../records';

/** One run in the page: a backend and the models to measure on it. */
export interface BrowserJob {
  backend: 'wasm' | 'webgpu';
  /** WASM threads to ask for. */
  threads: number;
  models: { name: string; url: string }[];
  steps: number;
  leakSteps: number;
  quick: boolean;
  /** WebGPU: tabtune's fused WGSL kernels (the default) or TF.js's own ops (bench --gpu-unfused). */
  gpuFused: boolean;
}

export type WorkerMessage =
  | { kind: 'log'; text: string }
  | { kind: 'measurement'; m: Measurement }
  | { kind: 'done'; backend: { name: string; threads: number | null; reasons: string[]; adapter: string | null; software: boolean | null; crossOriginIsolated: boolean } }
  | { kind: 'error'; message: string };
