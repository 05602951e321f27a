// The reference checkpoint (../shared, llama2.c stories260K) converted to an HF folder and run
// through the generic loader must reproduce the independent numpy reference's golden outputs.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { describeReference, ensureReferenceHF, loadGolden, type Golden } from '../testing/reference';
import { setupBackend, type BackendName } from './backend';
import { argmax, generate, generateIds, meanNLL } from './generate';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from './load';

for (const backend of ['wasm', 'cpu'] as BackendName[]) {
  describeReference(`stories260K through the HF loader on ${backend}`, () => {
    let m: LanguageModel;
    let golden: Golden;
    beforeAll(async () => {
      golden = loadGolden();
      const dir = await ensureReferenceHF();
      await setupBackend(backend);
      expect(tf.getBackend()).toBe(backend);
      m = await loadModel(directorySource(dir));
    });
    afterAll(() => m?.dispose());

    it('loads as a 260K-parameter llama', () => {
      expect(m.info.arch).toBe('llama');
      expect(m.info.numParams).toBe(260032);
      expect(m.info.vocabSize).toBe(512);
    });

    it('tokenizes the golden prompt exactly', () => {
      expect(m.tokenizer.encode(golden.prompt_greedy.prompt)).toEqual(golden.prompt_greedy.prompt_tokens);
    });

    it('matches all 512 logits at position 0 after BOS (max abs diff <= 1e-4)', () => {
      const logits = m.lm.forward([[1]]);
      const got = logits.dataSync();
      logits.dispose();
      const want = golden.logits_pos0_after_bos.all as number[];
      expect(got.length).toBe(want.length);
      let maxDiff = 0;
      for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      console.log(`[golden] ${backend}: max |logit diff| at pos 0 = ${maxDiff.toExponential(2)}`);
      expect(maxDiff).toBeLessThanOrEqual(1e-4);
      expect(argmax(got as Float32Array)).toBe(golden.logits_pos0_after_bos.argmax);
    });

    it('reproduces the 64-step greedy continuation of "Once upon a time" token for token', async () => {
      const g = golden.prompt_greedy;
      const generated = g.tokens.length - g.prompt_tokens.length;
      const [r] = await generate(m, [g.prompt], { maxNewTokens: generated, temperature: 0, stopTokenIds: [1] });
      expect([...r!.promptTokens, ...r!.tokens]).toEqual(g.tokens);
      expect(g.prompt + r!.text).toBe(g.text);
    });

    it('reproduces the 256-step greedy sample from BOS token for token', async () => {
      const g = golden.bos_greedy;
      const t0 = performance.now();
      // The reference loop stops only on BOS (its document separator).
      const [r] = await generateIds(m.lm, [[1]], [], { maxNewTokens: g.tokens.length - 1, temperature: 0, stopTokenIds: [1] }, { newStream: () => m.tokenizer.createStreamDecoder() });
      const dt = (performance.now() - t0) / 1000;
      console.log(`[golden] ${backend}: ${r!.tokens.length} greedy tokens in ${dt.toFixed(2)} s (${(r!.tokens.length / dt).toFixed(1)} tokens/s, KV cache)`);
      expect([1, ...r!.tokens]).toEqual(g.tokens);
      expect(r!.text).toBe(g.text);
    });

    it('matches the teacher-forced mean NLL over the first 64 tokens (±1e-4)', () => {
      const g = golden.teacher_forced_first64_of_bos_greedy;
      const nll = meanNLL(m.lm, golden.bos_greedy.tokens.slice(0, 65));
      console.log(`[golden] ${backend}: mean NLL ${nll.toFixed(6)} vs ${g.mean_nll_nats}`);
      expect(Math.abs(nll - g.mean_nll_nats)).toBeLessThanOrEqual(1e-4);
    });

    it('does not leak tensors across generations', async () => {
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await generate(m, ['Once upon a time', 'Lily'], { maxNewTokens: 8, temperature: 0.8, topK: 20, topP: 0.9, seed: i });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
