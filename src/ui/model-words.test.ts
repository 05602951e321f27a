import { describe, expect, it } from 'vitest';
import { compactCount, modelWords } from './model-words';

describe('modelWords', () => {
  it('counts parameters in M or B, two significant digits below 10', () => {
    expect(compactCount(447_040)).toBe('0.45 M');
    expect(compactCount(260_032)).toBe('0.26 M');
    expect(compactCount(3_104_000)).toBe('3.1 M');
    expect(compactCount(124_439_808)).toBe('124 M');
    expect(compactCount(1_235_814_400)).toBe('1.2 B');
    expect(compactCount(999_600_000)).toBe('1 B');
  });

  it('says the family, the size and how far the model reads, in plain words', () => {
    expect(modelWords({ arch: 'llama', numParams: 447_040, contextLength: 256 })).toBe('a small Llama model, 0.45 M parameters, reads up to 256 tokens');
    expect(modelWords({ arch: 'gpt2', numParams: 124_439_808, contextLength: 1024 })).toBe('a small GPT-2 model, 124 M parameters, reads up to 1,024 tokens');
    expect(modelWords({ arch: 'llama', numParams: 7e9, contextLength: 4096 })).toBe('a Llama model, 7 B parameters, reads up to 4,096 tokens');
  });
});
