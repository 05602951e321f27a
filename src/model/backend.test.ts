// Backend choice: a software/fallback WebGPU adapter is recognised from every shape a browser exposes it in,
// 'auto' skips it for WASM with the reason in words, an explicit 'webgpu' keeps it with the same note, and
// a hardware adapter is never skipped. setupBackend runs here in Node with a fake navigator.gpu.
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { BackendError, classifyAdapter, setupBackend, softwareAdapterNote, type AdapterInfoLike, type AdapterLike, type GpuLike } from './backend';

/** Chrome's own strings for SwiftShader (vendor, architecture), as adapter.info gives them. */
const SWIFTSHADER: AdapterInfoLike = { vendor: 'google', architecture: 'swiftshader', device: '', description: '' };
const NVIDIA: AdapterInfoLike = { vendor: 'nvidia', architecture: 'ampere', device: '', description: '' };

describe('classifyAdapter', () => {
  it('recognises the fallback flag on the adapter (older Chrome) and on adapter.info (newer)', () => {
    expect(classifyAdapter({ isFallbackAdapter: true, info: { vendor: '', architecture: '' } })).toEqual({ software: true, renderer: null, label: '' });
    expect(classifyAdapter({ info: { vendor: 'google', architecture: '', isFallbackAdapter: true } })).toEqual({ software: true, renderer: null, label: 'google' });
    expect(classifyAdapter({ isFallbackAdapter: false, info: { ...NVIDIA, isFallbackAdapter: false } }).software).toBe(false);
  });

  it('recognises software renderers by vendor, architecture, device or description, in any case', () => {
    const cases: Array<[AdapterInfoLike, string]> = [
      [SWIFTSHADER, 'SwiftShader'],
      [{ vendor: 'Google', device: 'SwiftShader Device (Subzero)' }, 'SwiftShader'],
      [{ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }, 'llvmpipe'],
      [{ vendor: 'mesa', device: 'LAVAPIPE' }, 'lavapipe'],
      [{ vendor: 'microsoft', description: 'Microsoft Basic Render Driver' }, 'Microsoft Basic Render Driver'],
      [{ vendor: 'acme', description: 'Generic Software Adapter' }, 'a software rasterizer'],
    ];
    for (const [info, renderer] of cases) {
      const c = classifyAdapter({ info });
      expect(c, JSON.stringify(info)).toMatchObject({ software: true, renderer });
    }
    expect(classifyAdapter({ info: SWIFTSHADER }).label).toBe('google swiftshader');
  });

  it('keeps real GPUs and adapters that expose nothing as hardware', () => {
    for (const info of [NVIDIA, { vendor: 'intel', architecture: 'gen-12lp' }, { vendor: 'apple', architecture: 'metal-3' }, { vendor: 'amd', architecture: 'rdna-2', description: 'AMD Radeon RX 6800' }, {}]) {
      expect(classifyAdapter({ info }), JSON.stringify(info)).toMatchObject({ software: false, renderer: null });
    }
    expect(classifyAdapter({})).toEqual({ software: false, renderer: null, label: '' });
    expect(classifyAdapter({ info: NVIDIA }).label).toBe('nvidia ampere');
  });

  it('uses the info it is given (from requestAdapterInfo) over a missing adapter.info', () => {
    expect(classifyAdapter({}, SWIFTSHADER)).toMatchObject({ software: true, renderer: 'SwiftShader' });
  });
});

describe('softwareAdapterNote', () => {
  it('says why auto skips it, and warns when WebGPU was picked explicitly', () => {
    const c = classifyAdapter({ info: SWIFTSHADER });
    expect(softwareAdapterNote(c, 'auto')).toBe(
      'WebGPU: the only adapter is a software renderer (SwiftShader), typically ~20x slower than WASM; using WASM. Pick WebGPU explicitly to try it anyway.',
    );
    expect(softwareAdapterNote(c, 'webgpu')).toBe(
      'WebGPU: the only adapter is a software renderer (SwiftShader), typically ~20x slower than WASM; using it because WebGPU was picked explicitly (Auto would use WASM).',
    );
    expect(softwareAdapterNote(classifyAdapter({ info: { vendor: 'acme', description: 'Software Adapter' } }), 'auto')).toContain('a software renderer (acme Software Adapter)');
    expect(softwareAdapterNote(classifyAdapter({ isFallbackAdapter: true }), 'auto')).toMatch(/^WebGPU: the only adapter is a fallback \(software\) adapter, typically/);
  });
});

/** A navigator.gpu that offers one adapter and records the options it was asked with. */
function fakeGpu(adapter: AdapterLike | null): GpuLike & { asked: unknown[] } {
  const asked: unknown[] = [];
  return {
    asked,
    requestAdapter: (options) => {
      asked.push(options);
      return Promise.resolve(adapter);
    },
  };
}

describe('setupBackend with a WebGPU adapter', () => {
  afterAll(() => setupBackend('cpu'));

  it("'auto' skips a software adapter for WASM and says why; it asks for the high-performance adapter", async () => {
    const gpu = fakeGpu({ info: SWIFTSHADER });
    const report = await setupBackend('auto', { gpu });
    expect(report.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(report.reasons[0]).toBe(softwareAdapterNote(classifyAdapter({ info: SWIFTSHADER }), 'auto'));
    expect(gpu.asked).toEqual([{ powerPreference: 'high-performance' }]);
  });

  it("'auto' reads requestAdapterInfo() where adapter.info is missing (older Chrome)", async () => {
    const report = await setupBackend('auto', { gpu: fakeGpu({ requestAdapterInfo: () => Promise.resolve({ vendor: 'mesa', description: 'llvmpipe (LLVM 15)' }) }) });
    expect(report.name).toBe('wasm');
    expect(report.reasons[0]).toMatch(/^WebGPU: the only adapter is a software renderer \(llvmpipe\)/);
  });

  it("'auto' does not skip a hardware adapter (it tries WebGPU, which cannot start in Node, then WASM)", async () => {
    const report = await setupBackend('auto', { gpu: fakeGpu({ info: NVIDIA }) });
    expect(report.name).toBe('wasm');
    expect(report.reasons.some((r) => r.includes('software'))).toBe(false);
    expect(report.reasons[0]).toMatch(/^WebGPU: initialisation failed/);
  });

  it("an explicit 'webgpu' keeps a software adapter (it tries to start it) and carries the warning", async () => {
    const err = await setupBackend('webgpu', { gpu: fakeGpu({ isFallbackAdapter: true, info: SWIFTSHADER }) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    const message = (err as Error).message;
    expect(message).toContain('using it because WebGPU was picked explicitly');
    expect(message).toMatch(/WebGPU: initialisation failed/);
  });
});
