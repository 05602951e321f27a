import { describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { setupBackend } from '../model/backend';
import { meanNLL } from '../model/generate';
import { loadModel } from '../io/load-model';
import { exactMatch, exampleLoss, overlapF1, promptAndAnswer } from './job';

describe('held-out scores', () => {
  it('exact match ignores surrounding whitespace only', () => {
    expect(exactMatch(' 312\n', '312')).toBe(true);
    expect(exactMatch('312.', '312')).toBe(false);
  });
  it('token overlap is word-level F1', () => {
    expect(overlapF1('the cat sat', 'the cat sat')).toBe(1);
    expect(overlapF1('the dog', 'the cat')).toBeCloseTo(0.5);
    expect(overlapF1('', 'x')).toBe(0);
    expect(overlapF1('A, b!', 'a b')).toBe(1);
  });
  it('evaluates the last assistant turn of a chat against the turns before it', () => {
    const pa = promptAndAnswer({ kind: 'chat', line: 3, messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'bye' }, { role: 'assistant', content: 'ciao' }] });
    expect(pa?.expected).toBe('ciao');
    expect(pa?.shown).toBe('bye');
    expect('messages' in pa!.prompt && pa!.prompt.messages.length).toBe(3);
  });
});

describe('exampleLoss', () => {
  it('is the weighted mean NLL of the targets (equals meanNLL with all weights 1, and the masked mean otherwise)', async () => {
    await setupBackend('cpu');
    const model = await loadModel(directorySource('models/tabtune-tiny'));
    try {
      const ids = model.tokenizer.encode('The President said that the people of the United States');
      const input = ids.slice(0, -1);
      const target = ids.slice(1);
      const all = (await exampleLoss(model.lm, { input, target, weight: target.map(() => 1) }))!;
      expect(all).toBeCloseTo(meanNLL(model.lm, ids), 5);
      // Only the last 3 targets: the mean of their NLLs, checked against scoring prefixes.
      const w = target.map((_, i) => (i >= target.length - 3 ? 1 : 0));
      const nllAt = (k: number) => meanNLL(model.lm, ids.slice(0, k + 2)) * (k + 1) - (k > 0 ? meanNLL(model.lm, ids.slice(0, k + 1)) * k : 0);
      const want = [target.length - 3, target.length - 2, target.length - 1].reduce((a, k) => a + nllAt(k), 0) / 3;
      expect((await exampleLoss(model.lm, { input, target, weight: w }))!).toBeCloseTo(want, 4);
      expect(await exampleLoss(model.lm, { input, target, weight: target.map(() => 0) })).toBeNull();
    } finally {
      model.dispose();
    }
  });
});
