// Picks and initialises a TF.js backend: WebGPU when available, else WASM (threaded when the page is
// cross-origin isolated), else CPU. The choice and the reasons a faster one was not used are reported,
// because a silent fallback (e.g. WebGPU -> WebGL) would make every speed figure a lie.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendReport {
  name: BackendName;
  /** WASM threads in use (1 = single-threaded); null for other backends. */
  threads: number | null;
  simd: boolean | null;
  /** Why each faster backend was not used, in words for the user. */
  reasons: string[];
}

export interface BackendOptions {
  /** Where the tfjs-backend-wasm .wasm files are served (a prefix or a file map). */
  wasmPaths?: string | Record<string, string>;
  /** WASM threads to ask for (the library's default and cap: half the logical cores). */
  wasmThreads?: number;
}

export class BackendError extends Error {
  override name = 'BackendError';
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof (globalThis as { window?: unknown }).window === 'undefined' && typeof (globalThis as { importScripts?: unknown }).importScripts === 'undefined';

let webgpuRegistered: Promise<void> | null = null;
async function registerWebGPU(): Promise<void> {
  webgpuRegistered ??= import('@tensorflow/tfjs-backend-webgpu').then(() => undefined);
  return webgpuRegistered;
}

async function tryWebGPU(reasons: string[]): Promise<boolean> {
  const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<unknown> } } }).navigator?.gpu;
  if (isNode) {
    reasons.push('WebGPU: not available in Node');
    return false;
  }
  if (!gpu) {
    reasons.push('WebGPU: this browser does not expose navigator.gpu (enable WebGPU or use a recent Chrome/Edge)');
    return false;
  }
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) {
      reasons.push('WebGPU: no GPU adapter was offered (blocklisted GPU or disabled hardware acceleration)');
      return false;
    }
    await registerWebGPU();
    const ok = await tf.setBackend('webgpu');
    await tf.ready();
    if (ok && tf.getBackend() === 'webgpu') return true;
    reasons.push(`WebGPU: initialisation failed (backend is ${tf.getBackend()})`);
  } catch (e) {
    reasons.push(`WebGPU: initialisation failed: ${(e as Error).message}`);
  }
  return false;
}

async function tryWasm(opts: BackendOptions, reasons: string[]): Promise<boolean> {
  try {
    if (opts.wasmPaths) setWasmPaths(opts.wasmPaths as string);
    if (opts.wasmThreads) setThreadsCount(opts.wasmThreads);
    const ok = await tf.setBackend('wasm');
    await tf.ready();
    if (ok && tf.getBackend() === 'wasm') return true;
    reasons.push(`WASM: initialisation failed (backend is ${tf.getBackend()})`);
  } catch (e) {
    reasons.push(`WASM: initialisation failed: ${(e as Error).message}`);
  }
  return false;
}

async function wasmDetails(reasons: string[]): Promise<{ threads: number; simd: boolean }> {
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const mt = Boolean(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'));
  let threads = 1;
  if (mt) {
    const backend = tf.backend() as unknown as { wasm?: { tfjs?: { getThreadsCount?: () => number } } };
    threads = backend.wasm?.tfjs?.getThreadsCount?.() ?? 1;
  } else if (isNode) {
    reasons.push('WASM threads: not available in Node (the threaded build does not initialise there)');
  } else if (!(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) {
    reasons.push('WASM threads: the page is not cross-origin isolated (serve it with COOP/COEP headers)');
  } else {
    reasons.push('WASM threads: SharedArrayBuffer is not available in this browser');
  }
  if (!simd) reasons.push('WASM SIMD: not supported by this browser');
  return { threads, simd };
}

/**
 * Initialises the preferred backend. 'auto' tries WebGPU, then WASM, then CPU. An explicit choice
 * that fails throws (the user asked for it; silently using another would mislead).
 */
export async function setupBackend(pref: BackendPreference = 'auto', opts: BackendOptions = {}): Promise<BackendReport> {
  const reasons: string[] = [];
  if (pref === 'webgpu' || pref === 'auto') {
    if (await tryWebGPU(reasons)) return { name: 'webgpu', threads: null, simd: null, reasons };
    if (pref === 'webgpu') throw new BackendError(reasons.join('; '));
  }
  if (pref === 'wasm' || pref === 'auto') {
    if (await tryWasm(opts, reasons)) {
      const { threads, simd } = await wasmDetails(reasons);
      return { name: 'wasm', threads, simd, reasons };
    }
    if (pref === 'wasm') throw new BackendError(reasons.join('; '));
  }
  await tf.setBackend('cpu');
  await tf.ready();
  if (tf.getBackend() !== 'cpu') throw new BackendError(`could not start any backend (${reasons.join('; ')})`);
  // The cpu backend prints an advert for tfjs-node on first use in Node (which cannot install here):
  // keep the CLI's stderr for real errors.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  if (pref === 'auto') reasons.push('CPU: plain JavaScript backend, the slowest; used because the faster ones failed');
  return { name: 'cpu', threads: null, simd: null, reasons };
}

/** The backend TF.js is really using right now. */
export function currentBackend(): string {
  return tf.getBackend();
}
