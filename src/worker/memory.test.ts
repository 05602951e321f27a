import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import type { ModelInfo } from '../model/load';
import { defaultTrainConfig } from '../train/config';
import { limitsFor, WASM_HEAP_MAX } from '../train/memory-plan';
import { RequestFailure } from './errors';
import { deviceMemoryLimits } from '../model/memory-limits';
import { longestSequence } from '../train/memory-plan';
import { applyMemoryPlan } from './memory';

// tabtune-tiny as ModelInfo reports it.
const TINY: ModelInfo = { arch: 'llama', numParams: 447_040, vocabSize: 4096, contextLength: 256, hiddenSize: 64, layers: 4, intermediateSize: 176, heads: 4, kvHeads: 2, headDim: 16, tiedHead: true, storedDtype: 'F32' };
const windows = (n: number, len: number) => Array.from({ length: n }, () => ({ input: new Array<number>(len).fill(5), target: [], weight: [] }));

describe('the memory plan in the worker', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });

  it("reads the WASM heap's cap on the wasm backend", () => {
    expect(deviceMemoryLimits()).toMatchObject({ backend: 'wasm', totalBytes: WASM_HEAP_MAX, maxTensorBytes: null });
  });

  it('measures the longest sequence of examples and of preference pairs', () => {
    expect(longestSequence([...windows(2, 7), ...windows(1, 12)])).toBe(12);
    expect(longestSequence([{ chosen: { input: [1, 2, 3] }, rejected: { input: [1, 2, 3, 4, 5] } }])).toBe(5);
  });

  it('keeps a batch that fits, splits one that does not with the same effective batch, refuses one that never fits', () => {
    const c = { ...defaultTrainConfig('llama'), batchSize: 128, gradAccum: 1 };
    const wasm = limitsFor('wasm');
    const kept = applyMemoryPlan(TINY, { ...c, batchSize: 8 }, windows(4, 256), wasm);
    expect(kept.plan.changed).toBe(false);
    expect(kept.config.batchSize).toBe(8);
    // 128 windows of 256 tokens: about 5 GB on tabtune-tiny (the logits alone are 128 x 256 x 4096 floats).
    const split = applyMemoryPlan(TINY, c, windows(4, 256), wasm);
    expect(split.plan.changed).toBe(true);
    expect(split.config.batchSize * split.config.gradAccum).toBe(128);
    expect(split.config.batchSize).toBeLessThan(128);
    expect(split.plan.message).toMatch(new RegExp(`^Batch 128 of 256-token sequences will not fit: .* Training with micro-batches of ${split.config.batchSize} x ${split.config.gradAccum} accumulation steps`));
    // A 64 MB device: not even one window fits.
    const err = (() => {
      try {
        applyMemoryPlan(TINY, c, windows(4, 256), { backend: 'wasm', totalBytes: 64 * 2 ** 20, totalSource: 'a test limit', maxTensorBytes: null });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(RequestFailure);
    expect((err as RequestFailure).error.code).toBe('TOO_LARGE');
    expect((err as RequestFailure).error.message).toMatch(/will not fit in memory: even one 256-token sequence per micro-batch needs about \d+ MB of the 48 MB WASM can use/);
    expect((err as RequestFailure).error.hint).toMatch(/max sequence length/);
    // There one window fits with Recompute activations: the message and the hint offer it first, and with it on the run trains.
    expect((err as RequestFailure).error.message).toContain('Turn on Recompute activations');
    expect((err as RequestFailure).error.hint).toMatch(/^Turn on Recompute activations \(Train panel\), or lower the max sequence length/);
    const small = { backend: 'wasm', totalBytes: 64 * 2 ** 20, totalSource: 'a test limit', maxTensorBytes: null };
    const re = applyMemoryPlan(TINY, { ...c, recompute: true }, windows(4, 256), small);
    expect(re.config).toMatchObject({ recompute: true });
    expect(re.config.batchSize * re.config.gradAccum).toBe(128);
  });
});
