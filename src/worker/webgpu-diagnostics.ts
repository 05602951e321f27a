// WebGPU failures are silent by default: a pipeline that fails validation drops its whole command
// buffer, and a lost device makes every later call throw something unrelated. Report both on the
// worker's console (Playwright collects it; the browser tests fail on any of them).
import * as tf from '@tensorflow/tfjs-core';

interface DeviceLike {
  lost?: Promise<{ reason: string; message: string }>;
  addEventListener?(type: 'uncapturederror', listener: (e: { error: { message: string } }) => void): void;
}

const watched = new WeakSet<object>();

/** Starts reporting the current WebGPU device's errors and loss (no-op on other backends; idempotent). */
export function watchWebGpuDevice(): void {
  if (tf.getBackend() !== 'webgpu') return;
  const device = (tf.backend() as unknown as { device?: DeviceLike }).device;
  if (!device || watched.has(device)) return;
  watched.add(device);
  void device.lost?.then((i) => console.error(`WebGPU device lost: ${i.reason}: ${i.message}`));
  device.addEventListener?.('uncapturederror', (e) => console.error(`WebGPU error: ${e.error.message}`));
}
