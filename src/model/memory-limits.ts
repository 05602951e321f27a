// The device's memory limits as TF.js sees them, for the memory plan (src/train/memory-plan.ts): WebGPU's
// buffer limits from its device, the WASM heap's cap, and the device memory a browser reports.
import * as tf from '@tensorflow/tfjs-core';
import { limitsFor, type DeviceMemoryLimits } from '../train/memory-plan';

/** The current backend's limits: WebGPU's buffer limits from its device, the WASM heap's cap and the device memory the browser reports. */
export function deviceMemoryLimits(): DeviceMemoryLimits {
  const name = tf.getBackend();
  const deviceMemoryGiB = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  if (name === 'webgpu') {
    const limits = (tf.backend() as unknown as { device?: { limits?: { maxBufferSize?: number; maxStorageBufferBindingSize?: number } } }).device?.limits;
    return limitsFor(name, { maxBufferSize: limits?.maxBufferSize, maxStorageBufferBindingSize: limits?.maxStorageBufferBindingSize, deviceMemoryGiB });
  }
  return limitsFor(name, { deviceMemoryGiB });
}
