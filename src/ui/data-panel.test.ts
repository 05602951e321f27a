import { describe, expect, it } from 'vitest';
import { mappingProblem, seqLenChoices } from './DataPanel';

describe('Data panel helpers', () => {
  it('a column mapping needs a prompt and a completion, and no column in two roles', () => {
    expect(mappingProblem({ prompt: ['q'], completion: 'a' })).toBeNull();
    expect(mappingProblem({ prompt: ['q', 'ctx'], completion: 'a', system: 's' })).toBeNull();
    expect(mappingProblem({ prompt: [], completion: 'a' })).toMatch(/prompt column/);
    expect(mappingProblem({ prompt: ['q'], completion: '' })).toMatch(/completion column/);
    expect(mappingProblem({ prompt: ['q', 'a'], completion: 'a' })).toMatch(/cannot also be a prompt/);
    expect(mappingProblem({ prompt: ['q'], completion: 'a', system: 'a' })).toMatch(/system column/);
  });

  it('offers max lengths from 32 tokens up to below the context', () => {
    expect(seqLenChoices(256)).toEqual([32, 64, 128]);
    expect(seqLenChoices(300)).toEqual([32, 64, 128, 256]);
    expect(seqLenChoices(32)).toEqual([]);
  });
});
