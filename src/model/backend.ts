// Picks and initialises a TF.js backend: WebGPU when a hardware adapter is available, else WASM (threaded
// when the page is cross-origin isolated), else CPU. The choice and the reasons a faster one was not used
// are reported, because a silent fallback (e.g. WebGPU -> WebGL) would make every speed figure a lie.
// 'auto' never picks a software GPU (SwiftShader, llvmpipe, ...: what headless Chromium with WebGPU
// enabled and no GPU offers), which runs WebGPU's kernels on the CPU far slower than WASM does.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from '../kernels/wasm-kernels';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendReport {
  name: BackendName;
  /** WASM threads in use (1 = single-threaded); null for other backends. */
  threads: number | null;
  simd: boolean | null;
  /** Why each faster backend was not used, in words for the user. */
  reasons: string[];
  /**
   * The WebGPU adapter the browser offered, classified (also when it was skipped as software); null when none
   * was offered or WebGPU was not tried (an explicit WASM or CPU choice, Node). Absent in older reports.
   */
  adapter?: AdapterClass | null;
}

export interface BackendOptions {
  /** Where the tfjs-backend-wasm .wasm files are served (a prefix or a file map). */
  wasmPaths?: string | Record<string, string>;
  /** WASM threads to ask for (the library's default and cap: half the logical cores). */
  wasmThreads?: number;
  /** navigator.gpu to use instead of the global one (tests give a fake one, also in Node). */
  gpu?: GpuLike;
}

/** What a browser exposes about a WebGPU adapter (the fields differ between Chrome versions). */
export interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Newer Chrome: on GPUAdapterInfo. */
  isFallbackAdapter?: boolean;
}

export interface AdapterLike {
  /** Newer Chrome. */
  info?: AdapterInfoLike;
  /** Older Chrome: on the adapter itself. */
  isFallbackAdapter?: boolean;
  /** Older Chrome (before adapter.info). */
  requestAdapterInfo?: () => Promise<AdapterInfoLike>;
}

export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<AdapterLike | null>;
}

export interface AdapterClass {
  /** True for a fallback or software adapter (the GPU's work runs on the CPU). */
  software: boolean;
  /** The software renderer's name when recognised ('SwiftShader', 'llvmpipe', ...), else null. */
  renderer: string | null;
  /** The adapter in words from what the browser exposes, e.g. "google swiftshader" or "nvidia ampere"; '' when nothing is exposed. */
  label: string;
}

/** Names (lower case) that mark a software renderer, and how to show them. */
const SOFTWARE_RENDERERS: ReadonlyArray<[needle: string, name: string]> = [
  ['swiftshader', 'SwiftShader'],
  ['llvmpipe', 'llvmpipe'],
  ['lavapipe', 'lavapipe'],
  ['microsoft basic render', 'Microsoft Basic Render Driver'],
  ['software', 'a software rasterizer'],
];

/**
 * Classifies a WebGPU adapter as software/fallback or hardware from what the browser exposes: the fallback
 * flag (GPUAdapter.isFallbackAdapter in older Chrome, adapter.info.isFallbackAdapter in newer) and the
 * vendor/architecture/device/description strings (case-insensitive). `info` is adapter.info, or what
 * requestAdapterInfo() returned where adapter.info is missing.
 */
export function classifyAdapter(adapter: AdapterLike, info: AdapterInfoLike | undefined = adapter.info): AdapterClass {
  const fields = [info?.vendor, info?.architecture, info?.device, info?.description].filter((f): f is string => typeof f === 'string' && f.trim() !== '');
  const label = [...new Set(fields.map((f) => f.trim()))].join(' ');
  const text = label.toLowerCase();
  const hit = SOFTWARE_RENDERERS.find(([needle]) => text.includes(needle));
  const fallback = adapter.isFallbackAdapter === true || info?.isFallbackAdapter === true;
  return { software: fallback || hit !== undefined, renderer: hit ? hit[1] : null, label };
}

/**
 * The words for a software adapter: with 'auto' why WebGPU is skipped, with an explicit 'webgpu' the warning
 * that goes with using it anyway. The slowdown is the one measured with tabtune-base in headless Chromium
 * on SwiftShader (~10 training tokens/s against ~200 on WASM).
 */
export function softwareAdapterNote(c: AdapterClass, pref: 'auto' | 'webgpu'): string {
  const named = c.renderer && c.renderer !== 'a software rasterizer' ? c.renderer : c.label;
  const what = c.renderer ? 'a software renderer' : 'a fallback (software) adapter';
  const head = `WebGPU: the only adapter is ${what}${named ? ` (${named})` : ''}, typically ~20x slower than WASM`;
  return pref === 'auto'
    ? `${head}; using WASM. Pick WebGPU explicitly to try it anyway.`
    : `${head}; using it because WebGPU was picked explicitly (Auto would use WASM).`;
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

async function adapterInfo(adapter: AdapterLike): Promise<AdapterInfoLike | undefined> {
  if (adapter.info) return adapter.info;
  if (typeof adapter.requestAdapterInfo === 'function') {
    try {
      return await adapter.requestAdapterInfo();
    } catch {
      return undefined;
    }
  }
  return undefined;
}

async function tryWebGPU(pref: 'auto' | 'webgpu', opts: BackendOptions, reasons: string[], seen: { adapter: AdapterClass | null }): Promise<boolean> {
  const gpu = opts.gpu ?? (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (isNode && !opts.gpu) {
    reasons.push('WebGPU: not available in Node');
    return false;
  }
  if (!gpu) {
    reasons.push('WebGPU: this browser does not expose navigator.gpu (enable WebGPU or use a recent Chrome/Edge)');
    return false;
  }
  try {
    // tfjs-backend-webgpu asks for the high-performance adapter too: classify the one it will get.
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      reasons.push('WebGPU: no GPU adapter was offered (blocklisted GPU or disabled hardware acceleration)');
      return false;
    }
    const kind = classifyAdapter(adapter, await adapterInfo(adapter));
    seen.adapter = kind;
    if (kind.software) {
      reasons.push(softwareAdapterNote(kind, pref));
      if (pref === 'auto') return false;
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
    installWasmKernels();
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
 * Initialises the preferred backend. 'auto' tries WebGPU (a hardware adapter only), then WASM, then CPU.
 * An explicit choice that fails throws (the user asked for it; silently using another would mislead);
 * an explicit 'webgpu' on a software adapter is used, with a warning in reasons.
 */
export async function setupBackend(pref: BackendPreference = 'auto', opts: BackendOptions = {}): Promise<BackendReport> {
  const reasons: string[] = [];
  const seen: { adapter: AdapterClass | null } = { adapter: null };
  if (pref === 'webgpu' || pref === 'auto') {
    if (await tryWebGPU(pref, opts, reasons, seen)) return { name: 'webgpu', threads: null, simd: null, reasons, adapter: seen.adapter };
    if (pref === 'webgpu') throw new BackendError(reasons.join('; '));
  }
  if (pref === 'wasm' || pref === 'auto') {
    if (await tryWasm(opts, reasons)) {
      const { threads, simd } = await wasmDetails(reasons);
      return { name: 'wasm', threads, simd, reasons, adapter: seen.adapter };
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
  return { name: 'cpu', threads: null, simd: null, reasons, adapter: seen.adapter };
}

/**
 * Makes `name` TF.js's backend without auto's checks (a software WebGPU adapter is used if that is the one):
 * for timing a step there and coming back (src/worker/backend-timing.ts). WASM gets the .wasm paths and
 * thread count of `opts` on its first start. Throws BackendError when the backend does not start.
 */
export async function switchBackend(name: BackendName, opts: BackendOptions = {}): Promise<void> {
  if (tf.getBackend() === name) return;
  const reasons: string[] = [];
  let ok = false;
  if (name === 'webgpu') {
    try {
      await registerWebGPU();
      ok = (await tf.setBackend('webgpu')) && tf.getBackend() === 'webgpu';
    } catch (e) {
      reasons.push((e as Error).message);
    }
  } else if (name === 'wasm') {
    ok = await tryWasm(opts, reasons);
  } else {
    ok = (await tf.setBackend('cpu')) && tf.getBackend() === 'cpu';
    (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  }
  await tf.ready();
  if (!ok) throw new BackendError(`could not switch to ${name}${reasons.length ? `: ${reasons.join('; ')}` : ` (backend is ${tf.getBackend()})`}`);
}

/** The backend TF.js is really using right now. */
export function currentBackend(): string {
  return tf.getBackend();
}

/**
 * The report of `name` once switchBackend made it TF.js's backend (auto moving to the backend measured faster):
 * for WASM its threads and SIMD are looked up, their notes added to `reasons`.
 */
export async function reportFor(name: BackendName, reasons: string[], adapter: AdapterClass | null): Promise<BackendReport> {
  if (name === 'wasm') {
    const { threads, simd } = await wasmDetails(reasons);
    return { name, threads, simd, reasons, adapter };
  }
  return { name, threads: null, simd: null, reasons, adapter };
}
