// Stop-token detection from the model's own probabilities. tabtune's bundled models learned their EOS
// (id 2) at the end of texts, so EOS is picked. The reference model (stories260K, from ../shared) never
// learned its EOS; it was pretrained with BOS (id 1) between documents, so BOS must be picked there.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { setupBackend } from '../model/backend';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from '../model/load';
import { BUNDLED_BOS, BUNDLED_EOS, TINY_DIR } from '../testing/models';
import { describeReference, ensureReferenceHF } from '../testing/reference';
import { charTokenizer } from '../testing/tokenizers';
import { detectStopToken, LEARNED_PROBABILITY, newlineTokenId } from './stop-token';

describe('stop token on tabtune-tiny', () => {
  let m: LanguageModel;
  beforeAll(async () => {
    await setupBackend('cpu');
    m = await loadModel(directorySource(TINY_DIR));
  });
  afterAll(() => m?.dispose());

  it('picks EOS, which the model learned to predict at the end of text, and says why with the probabilities', async () => {
    const before = tf.memory().numTensors;
    const choice = await detectStopToken(m);
    expect(tf.memory().numTensors).toBe(before);
    expect(choice.kind).toBe('eos');
    expect(choice.stopTokenId).toBe(BUNDLED_EOS);
    expect(choice.stopStrings).toEqual([]);
    expect(choice.candidates).toMatchObject({ eos: BUNDLED_EOS, separator: BUNDLED_BOS });
    expect(choice.probabilities.eos!).toBeGreaterThanOrEqual(LEARNED_PROBABILITY);
    expect(choice.reason).toMatch(/replies end with EOS/);
    expect(choice.probes).toBeGreaterThanOrEqual(6);
  });

  it('dataset texts join the probes; the user can override and still sees the measurements', async () => {
    const withData = await detectStopToken(m, { texts: ['Write as digits: three hundred twelve\nAnswer: 312'] });
    expect(withData.stopTokenId).toBe(BUNDLED_EOS);
    expect(withData.probes).toBe(7);
    const forced = await detectStopToken(m, { override: { stopTokenId: BUNDLED_BOS } });
    expect(forced).toMatchObject({ kind: 'override', stopTokenId: BUNDLED_BOS, stopStrings: [] });
    expect(forced.probabilities).toEqual((await detectStopToken(m)).probabilities);
  });
});

describeReference('stop token on stories260K', () => {
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
