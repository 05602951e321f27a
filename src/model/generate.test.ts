import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { TINY_DIR } from '../testing/models';
import { setupBackend } from './backend';
import { seededRandom } from '../util/random';
import { generate, sampleToken } from './generate';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from './load';

describe('sampling', () => {
  const logits = Float32Array.from([2, 1, 0.5, 3, -1]);

  it('temperature 0 is argmax', () => {
    expect(sampleToken(logits, { temperature: 0 }, Math.random)).toBe(3);
  });

  it('top-k 2 only ever returns the two best tokens, in proportion to their probabilities', () => {
    const rand = seededRandom(1);
    const counts = new Map<number, number>();
    for (let i = 0; i < 4000; i++) {
      const t = sampleToken(logits, { temperature: 1, topK: 2 }, rand);
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([0, 3]);
    // p(3) / p(0) = e^(3-2) = 2.718
    expect(counts.get(3)! / counts.get(0)!).toBeGreaterThan(2.3);
    expect(counts.get(3)! / counts.get(0)!).toBeLessThan(3.2);
  });

  it('top-p keeps the smallest set reaching p', () => {
    // softmax([2,1,.5,3,-1]) ~ [.23,.085,.05,.63,.01]: p=0.6 keeps only token 3; p=0.8 keeps 3 and 0.
    const rand = seededRandom(2);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.6 }, rand));
    expect([...seen]).toEqual([3]);
    const seen2 = new Set<number>();
    for (let i = 0; i < 500; i++) seen2.add(sampleToken(logits, { temperature: 1, topP: 0.8 }, rand));
    expect([...seen2].sort()).toEqual([0, 3]);
  });
});

describe('generate on the bundled tabtune-tiny', () => {
  let m: LanguageModel;
  beforeAll(async () => {
    await setupBackend('wasm');
    m = await loadModel(directorySource(TINY_DIR));
  });
  afterAll(() => m?.dispose());

  it('same seed, same text; different seed, different text', async () => {
    const opts = { maxNewTokens: 40, temperature: 1, topK: 40 };
    const [a] = await generate(m, ['Once upon a time'], { ...opts, seed: 7 });
    const [b] = await generate(m, ['Once upon a time'], { ...opts, seed: 7 });
    const [c] = await generate(m, ['Once upon a time'], { ...opts, seed: 8 });
    expect(a!.tokens).toEqual(b!.tokens);
    expect(a!.tokens).not.toEqual(c!.tokens);
  });

  it('a batch of prompts of different lengths gives each prompt its solo greedy continuation', async () => {
    const prompts = ['Once upon a time', 'Tom had a big red', 'The sun'];
    const batch = await generate(m, prompts, { maxNewTokens: 24, temperature: 0 });
    for (let i = 0; i < prompts.length; i++) {
      const [solo] = await generate(m, [prompts[i]!], { maxNewTokens: 24, temperature: 0 });
      expect(batch[i]!.tokens).toEqual(solo!.tokens);
    }
  });

  it('streams tokens whose concatenation is the final text, and stops on a stop string without streaming it', async () => {
    const pieces: string[] = [];
    const [r] = await generate(m, ['Once upon a time'], { maxNewTokens: 60, temperature: 0, stopStrings: ['time'], onToken: (e) => pieces.push(e.text) });
    expect(r!.finishReason).toBe('stop');
    expect(r!.text).toBe(', and the same '); // greedy tabtune-tiny: ", and the same time, and the same time, …"
    expect(pieces.join('')).toBe(r!.text);
    expect(pieces.length).toBeGreaterThan(3);
  });

  it('stops at max new tokens and reports it', async () => {
    const [r] = await generate(m, ['Once upon a time'], { maxNewTokens: 5, temperature: 0 });
    expect(r!.tokens.length).toBe(5);
    expect(r!.finishReason).toBe('length');
  });

  it('cancels through an AbortSignal', async () => {
    const ctl = new AbortController();
    let n = 0;
    const [r] = await generate(m, ['Once upon a time'], {
      maxNewTokens: 200,
      temperature: 0,
      signal: ctl.signal,
      onToken: () => {
        if (++n === 3) ctl.abort();
      },
    });
    expect(r!.finishReason).toBe('cancelled');
    expect(r!.tokens.length).toBeLessThan(10);
  });

  it('stops on an EOS id', async () => {
    // Treat the token the model emits first after the prompt as an end token.
    const [g] = await generate(m, ['Once upon a time'], { maxNewTokens: 3, temperature: 0 });
    const [r] = await generate(m, ['Once upon a time'], { maxNewTokens: 20, temperature: 0, stopTokenIds: [g!.tokens[1]!] });
    expect(r!.finishReason).toBe('eos');
    expect(r!.tokens).toEqual([g!.tokens[0]]);
  });
});
