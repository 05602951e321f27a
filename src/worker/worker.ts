// Web Worker entry: hands the worker scope to the protocol handler, with the URLs Vite serves the
// tfjs-backend-wasm binaries at (hashed assets in a build, node_modules files in dev).
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { createWorkerHandler } from './handler';
import type { MessageEndpoint } from '../protocol/messages';

createWorkerHandler(self as unknown as MessageEndpoint, {
  wasmPaths: {
    'tfjs-backend-wasm.wasm': wasmPlain,
    'tfjs-backend-wasm-simd.wasm': wasmSimd,
    'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimd,
  },
});
