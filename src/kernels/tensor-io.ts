// A tensor's float32 values for the fused CPU ops, without dataSync()'s copy where the backend allows it.
//
// On tfjs-wasm, dataSync() copies the tensor out of the WebAssembly heap into a new array, and the fused
// ops (attention, RMSNorm, the LoRA linear's weight gradients, the cross-entropy, AdamW) then copy it once
// more into their own SIMD memory or only read it: on a small model these copies are a tenth of a training
// step. floats() reads the heap in place instead.
import * as tf from '@tensorflow/tfjs-core';

interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/**
 * The float32 values of `t`, read-only. On wasm a view into TF.js's heap: valid only until the next TF.js
 * call that allocates (growing the heap detaches it), so read it at once and create tensors only after. The
 * tensor must already live on wasm (every tensor the model makes there does): one still held by another
 * backend would be moved first, an allocation that detaches the view being made. On other backends dataSync().
 */
export function floats(t: tf.Tensor): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`floats() reads float32 tensors, not ${t.dtype}`);
  if (tf.getBackend() === 'wasm') return (tf.backend() as unknown as HeapBackend).typedArrayFromHeap(t);
  return t.dataSync() as Float32Array;
}

/**
 * A new float32 tensor holding `values` (which may be a view into memory that is reused later): tfjs-wasm
 * copies it into its heap at once, the CPU backend keeps the array it is given, so it gets a copy.
 */
export function tensorOf(values: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(tf.getBackend() === 'wasm' ? values : values.slice(), shape, 'float32');
}
