// tabtune's replacements for two tfjs-backend-wasm kernels that copy when they need not.
//
// TF.js's gradient tape keeps every tensor an op saves for its backward as a clone (an Identity kernel), and
// gives each clone a gradient of its own (a Cast to float32). tfjs-wasm runs both as a full copy of the data
// into a new buffer: a training step of a small model spends a few percent of its time copying activations
// it never changes. Tensors are immutable in TF.js (a Variable's assign() points it at new data), so the
// clone can share its input's buffer, counted by reference, as tfjs-wasm's own Reshape already does and as
// the CPU backend's Identity does. A Cast to another dtype still converts through the original kernel.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

interface RefCounting {
  incRef(dataId: object): void;
}

let installed = false;

/** Registers the sharing Identity and same-dtype Cast for the 'wasm' backend (idempotent; before it starts). */
export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  const share = (x: tf.TensorInfo, backend: RefCounting): tf.TensorInfo => {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  const cast = tf.getKernel('Cast', 'wasm');
  if (tf.getKernel('Identity', 'wasm')) tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => share(inputs.x as tf.TensorInfo, backend as unknown as RefCounting),
  });
  if (cast) {
    tf.unregisterKernel('Cast', 'wasm');
    tf.registerKernel({
      ...cast,
      kernelFunc: (args) => {
        const x = args.inputs.x as tf.TensorInfo;
        if (x.dtype === (args.attrs as { dtype: string }).dtype && x.dtype !== 'string') return share(x, args.backend as unknown as RefCounting);
        return cast.kernelFunc(args);
      },
    });
  }
}
