// Stop-token detection on the reference model: stories260K never learned its EOS (id 2); it was
// pretrained with BOS (id 1) between documents, so BOS must be picked, from the model's own probabilities.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../io/fs-source';
import { setupBackend } from '../model/backend';
import { loadModel, type LanguageModel } from '../model/load';
import { ensureReferenceHF, referenceAvailable } from '../testing/reference';
import { charTokenizer } from './test-helpers';
import { detectStopToken, LEARNED_PROBABILITY, newlineTokenId } from './stop-token';

describe.skipIf(!referenceAvailable())('stop token on stories260K', () => {
  let m: LanguageModel;
  beforeAll(async () => {
    await setupBackend('cpu');
    m = await loadModel(directorySource(await ensureReferenceHF()));
  });
  afterAll(() => m?.dispose());

  it('picks the BOS document separator, not EOS, and says why with the probabilities', async () => {
    const before = tf.memory().numTensors;
    const choice = await detectStopToken(m);
    expect(tf.memory().numTensors).toBe(before);
    expect(choice.kind).toBe('separator');
    expect(choice.stopTokenId).toBe(1);
    expect(choice.stopStrings).toEqual([]);
    expect(choice.candidates).toEqual({ eos: 2, separator: 1, newline: 13 });
    // EOS was never a training target: astronomically unlikely. BOS is a real prediction at the end of a story.
    expect(choice.probabilities.eos!).toBeLessThan(1e-8);
    expect(choice.probabilities.separator!).toBeGreaterThan(LEARNED_PROBABILITY * 10);
    expect(choice.reason).toMatch(/never learned/);
    expect(choice.probes).toBeGreaterThanOrEqual(6);
  });

  it('dataset texts join the probes; the user can override and still sees the measurements', async () => {
    const withData = await detectStopToken(m, { texts: ['Write as digits: three hundred twelve\nAnswer: 312'] });
    expect(withData.stopTokenId).toBe(1);
    expect(withData.probes).toBe(7);
    const forced = await detectStopToken(m, { override: { stopTokenId: null, stopStrings: ['\n'] } });
    expect(forced).toMatchObject({ kind: 'override', stopTokenId: null, stopStrings: ['\n'] });
    expect(forced.probabilities.eos).not.toBeNull();
  });
});

describe('newline token', () => {
  it('is the token "\\n" becomes after text', () => {
    expect(newlineTokenId(charTokenizer())).toBe(4);
  });
});
