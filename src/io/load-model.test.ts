import { describe, expect, it } from 'vitest';
import { ModelLoadError } from '../model/types';
import { loadModel } from './load-model';
import type { ModelSource } from './source';

describe('loadModel', () => {
  it('refuses an unsupported architecture from config.json before downloading any weights', async () => {
    const reads: string[] = [];
    const files: Record<string, string> = { 'config.json': JSON.stringify({ model_type: 'falcon', hidden_size: 8 }), 'model.safetensors': 'x' };
    const source: ModelSource = {
      label: 'memory',
      read: async (p) => {
        reads.push(p);
        return p in files ? new TextEncoder().encode(files[p]) : null;
      },
    };
    const err = await loadModel(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelLoadError);
    expect((err as ModelLoadError).code).toBe('UNSUPPORTED_MODEL');
    expect((err as ModelLoadError).message).toMatch(/falcon/);
    expect(reads).toEqual(['config.json']);
  });
});
