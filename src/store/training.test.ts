// The page's arithmetic for OFT runs, against the adapter the worker builds: the block size a layer gets
// (PEFT's nearest divisor) and the trainable-parameter count of the memory estimate equal those of a real
// OftAdapter on a tiny model; the method labels of runs.
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { OftAdapter, oftBlocks } from '../oft/adapter';
import { tinyModel } from '../testing/tiny-model';
import { defaultTrainConfig } from '../train/config';
import { adapterTargets, estimateMemory, methodLabel, oftBlockSize, oftLayerParams, toOverrides, withTarget } from './training';

describe('OFT in the memory estimate', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('picks the block size oftBlocks picks, for every width and wanted size', () => {
    for (let n = 2; n <= 200; n++) {
      for (const b of [2, 3, 4, 5, 7, 8, 16, 24, 32, 33, 64, 100, 256]) {
        expect(oftBlockSize(n, b), `${n} inputs, blocks of ${b}`).toBe(oftBlocks(n, { oft_block_size: b }).blockSize);
      }
    }
    // 176 inputs, blocks of 32: 22 (8 blocks of 231 parameters).
    expect(oftLayerParams(176, 32)).toBe(8 * 231);
    expect(oftLayerParams(64, 32)).toBe(2 * 496);
  });

  it('counts the parameters an OftAdapter trains (targets, adjusted blocks), and fewer with smaller blocks', () => {
    // hidden 48 (blocks of 32 -> 24), intermediate 100 (down_proj's input: blocks of 32 -> 25).
    const lm = tinyModel({ arch: 'llama', hidden: 48, inter: 100, layers: 3, heads: 4, kvHeads: 2 });
    const model = { numParams: 100_000, hiddenSize: 48, intermediateSize: 100, layers: 3, vocabSize: 40, arch: 'llama' };
    for (const oft of [
      { oft_block_size: 32, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
      { oft_block_size: 8, target_modules: ['q_proj', 'down_proj'] },
      { oft_block_size: 7, target_modules: ['v_proj', 'up_proj'] },
    ]) {
      const base = defaultTrainConfig('llama');
      const c = { ...base, mode: 'oft' as const, oft: { ...base.oft, ...oft } };
      const adapter = new OftAdapter(lm, c.oft);
      try {
        expect(estimateMemory(model, c, 16).trainableParams, JSON.stringify(oft)).toBe(adapter.numParams());
        expect(adapter.numParams()).toBeGreaterThan(0);
      } finally {
        adapter.dispose();
      }
    }
    const c = { ...defaultTrainConfig('llama'), mode: 'oft' as const };
    const big = estimateMemory(model, c, 16);
    const small = estimateMemory(model, { ...c, oft: { ...c.oft, oft_block_size: 8 } }, 16);
    expect(small.trainableParams).toBeLessThan(big.trainableParams);
    expect(small.trainable).toBe(small.trainableParams * 4 * 4);
    // LoRA's targets do not count for OFT, OFT's not for LoRA.
    expect(estimateMemory(model, { ...c, lora: { ...c.lora, target_modules: ['q_proj'] } }, 16).trainableParams).toBe(big.trainableParams);
    const lora = estimateMemory(model, { ...c, mode: 'lora', oft: { ...c.oft, target_modules: ['q_proj'] } }, 16);
    expect(lora.trainableParams).toBe(3 * 8 * (4 * 96 + 2 * 148 + 148));
  });
});

describe('method labels', () => {
  it('LoRA with its rank, OFT with its block size (the default for configurations stored before OFT), full', () => {
    const c = defaultTrainConfig('llama');
    expect(methodLabel(c)).toBe('LoRA r8');
    expect(methodLabel({ ...c, mode: 'oft', oft: { ...c.oft, oft_block_size: 16 } })).toBe('OFT b16');
    expect(methodLabel({ mode: 'oft', lora: c.lora })).toBe('OFT b32');
    expect(methodLabel({ ...c, mode: 'full' })).toBe('full');
  });
});

describe('the targets the Train panel edits', () => {
  it("OFT's for OFT, LoRA's otherwise; the other adapter's stay as they are; the overrides carry both", () => {
    const c = { ...defaultTrainConfig('llama'), lora: { ...defaultTrainConfig('llama').lora, target_modules: ['q_proj', 'v_proj'] } };
    const o = { ...c, mode: 'oft' as const };
    expect(adapterTargets(c)).toEqual(['q_proj', 'v_proj']);
    expect(adapterTargets(o)).toEqual(c.oft.target_modules);
    const lessO = withTarget(o, 'down_proj', false);
    expect(lessO.oft.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj']);
    expect(lessO.lora.target_modules).toEqual(['q_proj', 'v_proj']);
    expect(withTarget(withTarget(lessO, 'down_proj', true), 'down_proj', true).oft.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    const moreL = withTarget(c, 'o_proj', true);
    expect(moreL.lora.target_modules).toEqual(['q_proj', 'v_proj', 'o_proj']);
    expect(moreL.oft.target_modules).toEqual(c.oft.target_modules);
    expect(withTarget({ ...c, mode: 'full' }, 'q_proj', false).lora.target_modules).toEqual(['v_proj']);
    const over = toOverrides(lessO);
    expect(over.oft).toEqual(lessO.oft);
    expect(over.oft!.target_modules).not.toBe(lessO.oft.target_modules);
  });
});
