// Multi-threaded tfjs-backend-wasm in Node, for `npm run bench -- --threads K` (K > 1). Node-only.
//
// Why the library's threaded build does not start in Node (checked against @tensorflow/tfjs-backend-wasm
// 4.22.0, dist/tf-backend-wasm.node.js):
//  1. the flag WASM_HAS_MULTITHREAD_SUPPORT returns false whenever IS_NODE (tfjs issue #3830), so the
//     single-threaded SIMD build is loaded;
//  2. forcing the flag on, Emscripten's pthread pool starts its workers from a blob: URL made with
//     URL.createObjectURL, and Node's worker_threads refuses it (ERR_WORKER_PATH); the workers then
//     importScripts() the main script, again a blob: URL (a Blob of the factory's source);
//  3. XNNPACK's thread pool is capped at half the logical cores the module sees (os.cpus() in Node,
//     navigator.hardwareConcurrency in a page), so on a 2-core machine it gets 1 thread whatever is asked.
// What this module does: writes the library's own worker script (wasmWorkerContents from the bundle) to a
// temporary file with its importScripts pointed at wasm-out/tfjs-backend-wasm-threaded-simd.js for the
// blob URL, hands that file to Emscripten while the backend initialises, forces the flag on, and reports
// at least 2 * K logical cores while it initialises. A benchmark aid, not part of the engine.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

/** Runs `init` (which must start the wasm backend) with the threaded build enabled for `threads` threads. */
export async function withNodeWasmThreads<T>(threads: number, init: () => Promise<T>): Promise<T> {
  const require = createRequire(import.meta.url);
  const bundle = require.resolve('@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.node.js');
  const factory = bundle.replace(/dist[\\/]tf-backend-wasm\.node\.js$/, join('wasm-out', 'tfjs-backend-wasm-threaded-simd.js'));
  const m = /var wasmWorkerContents = (".*?");\n/.exec(readFileSync(bundle, 'utf8'));
  if (!m) throw new Error(`${bundle}: the worker script (wasmWorkerContents) was not found; this tfjs-backend-wasm version is not supported by --threads > 1 in Node`);
  // The library escapes newlines the same way before making its Blob.
  let worker = (JSON.parse(m[1]!) as string).replace(/\n/g, '\\n');
  const needle = 'fs.readFileSync(f,"utf8")';
  if (!worker.includes(needle)) throw new Error('tfjs-backend-wasm worker script: importScripts not found; --threads > 1 is not supported with this version in Node');
  worker = worker.replace(needle, `fs.readFileSync(String(f).startsWith("blob:")?${JSON.stringify(factory)}:f,"utf8")`);
  const file = join(mkdtempSync(join(os.tmpdir(), 'tabtune-bench-')), 'tfjs-wasm-worker.cjs');
  writeFileSync(file, worker);

  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  URL.createObjectURL = (() => file) as typeof URL.createObjectURL;
  const real = cpus();
  (os as { cpus: typeof os.cpus }).cpus = () => (real.length >= 2 * threads ? real : Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]!));
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  try {
    return await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    (os as { cpus: typeof os.cpus }).cpus = cpus;
  }
}
