// Running tabtune's own WGSL programs on tfjs-backend-webgpu. A program is the backend's WebGPUProgram
// interface (tfjs-backend-webgpu/dist/webgpu_program.d.ts): the backend prepends the bindings (the output as
// `result: array<f32>`, each input by its variable name as `array<f32>` or `array<i32>`, a `uniforms` struct
// with the shapes and the program's own fields) and calls `main(index)` once per invocation, index being the
// flat invocation id (also when a large dispatch is reshaped to 2-D). Every input must be read by the code: the
// pipeline's bind-group layout is derived from what the shader uses.
//
// This module imports only types from the backend package: nothing registers or loads WebGPU until the
// backend itself is set up (src/model/backend.ts), so the kernels load in Node and in workers without it.
import * as tf from '@tensorflow/tfjs-core';

/** Invocations per workgroup of every tabtune program. */
export const WG = 64;

/** The fields of tfjs-backend-webgpu's WebGPUProgram that tabtune's programs set. */
export interface GpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  getUserCode: () => string;
}

/** A uniform the program declares in its `uniforms` string, in the same order. */
export interface Uniform {
  type: 'int32' | 'float32';
  data: number[];
}

interface WebGPUBackendLike {
  runWebGPUProgram(program: GpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
}

/** Whether TF.js runs on WebGPU now. */
export function webgpuBackend(): boolean {
  return tf.getBackend() === 'webgpu';
}

/**
 * A program of `invocations` invocations (groups of WG) writing a float32 `outputShape`. `name` plus `key`
 * must identify the WGSL: the backend caches pipelines by them (and the ranks and dtypes of the tensors).
 * `fields` declares the program's uniforms ("n : i32, eps : f32,"), `code` is WGSL defining `fn main(index : i32)`.
 */
export function gpuProgram(name: string, key: string, variableNames: string[], outputShape: number[], invocations: number, fields: string, code: string): GpuProgram {
  return {
    variableNames,
    outputShape,
    shaderKey: `tabtune_${name}_${key}`,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.max(1, Math.ceil(invocations / WG)), 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: fields,
    getUserCode: () => code,
  };
}

let runs = 0;
/** How many tabtune programs have run so far (tests check that the fused path really ran). */
export function gpuProgramRuns(): number {
  return runs;
}

/** Runs a program on the WebGPU backend and returns its output as a tensor (tracked by the enclosing tidy). */
export function runProgram(program: GpuProgram, inputs: tf.Tensor[], uniforms: Uniform[]): tf.Tensor {
  const backend = tf.backend() as unknown as Partial<WebGPUBackendLike>;
  if (!webgpuBackend() || typeof backend.runWebGPUProgram !== 'function') {
    throw new Error(`tabtune's WebGPU kernel ${program.shaderKey} needs the webgpu backend, but TF.js runs on ${tf.getBackend()}: turn the fused GPU ops off (setGpuFusedOps(false)) or switch the backend`);
  }
  const info = backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  runs++;
  return tf.engine().makeTensorFromTensorInfo(info);
}

export const i32 = (...data: number[]): Uniform => ({ type: 'int32', data });
export const f32 = (...data: number[]): Uniform => ({ type: 'float32', data });

/**
 * WGSL for a workgroup sum of `v` into `buf[0]` (buf: array<f32, WG> in workgroup memory); every invocation
 * of the group must call it (it holds barriers). Returns the sum to all of them.
 */
export const WG_SUM = `
  fn wgSum(v : f32, tid : i32) -> f32 {
    red[tid] = v;
    workgroupBarrier();
    for (var s = ${WG / 2}; s > 0; s = s >> 1) {
      if (tid < s) { red[tid] = red[tid] + red[tid + s]; }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
  }
  fn wgMax(v : f32, tid : i32) -> f32 {
    red[tid] = v;
    workgroupBarrier();
    for (var s = ${WG / 2}; s > 0; s = s >> 1) {
      if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
      workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
  }
  var<workgroup> red : array<f32, ${WG}>;
`;
