import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assembleWat, wasmModuleSource } from '../kernels/assemble';
import { SimdArena } from '../kernels/simd';
import { directorySource } from '../node/fs-source';
import { loadModel } from '../io/load-model';
import { LoraAdapter } from '../lora/adapter';
import { OftAdapter } from '../oft/adapter';
import { PromptTuningAdapter } from '../prompt/adapter';
import { TINY_DIR } from '../testing/models';
import { tinyModel } from '../testing/tiny-model';
import { seededRandom } from '../util/random';
import { setupBackend } from './backend';
import { dropKeptDecoderWeights, FastDecoder, fastDecodeBlocker } from './fast-decode';
import { generate } from './generate';
import type { LlamaModel } from './llama';
import type { LanguageModel } from './load';

describe('SIMD kernels (src/kernels/simd.wat)', () => {
  it('the committed bytes are what the .wat file assembles to', async () => {
    const wat = readFileSync(new URL('../kernels/simd.wat', import.meta.url), 'utf8');
    const committed = readFileSync(new URL('../kernels/simd-wasm.ts', import.meta.url), 'utf8');
    expect(wasmModuleSource(await assembleWat(wat, 'simd.wat'), 'simd.wat')).toBe(committed);
  });

  it('matches a plain loop for every block path (16, 4 and single outputs, a row stride wider than m)', () => {
    const rand = seededRandom(5);
    for (const [n, m, ldw] of [
      [1, 1, 1],
      [3, 5, 5],
      [7, 16, 16],
      [13, 37, 40],
      [64, 21, 64],
      [192, 512, 512],
    ] as const) {
      const a = new SimdArena(n * ldw + n + m + 64);
      const w = a.alloc(n * ldw);
      const x = a.alloc(n);
      const y = a.alloc(m);
      for (let i = 0; i < n * ldw; i++) a.f32[w + i] = rand() - 0.5;
      for (let i = 0; i < n; i++) a.f32[x + i] = rand() - 0.5;
      a.vecmat(x, w, y, n, m, ldw);
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += a.f32[x + k]! * a.f32[w + k * ldw + j]!;
        expect(a.f32[y + j]).toBeCloseTo(s, 5);
      }
    }
  });
});

describe('exp kernels', () => {
  it('exp to float32 accuracy over [-87, 88] (clamped outside it), the row max and sum of exponentials', () => {
    const n = 20001;
    const a = new SimdArena(3 * n + 64);
    const x = a.alloc(n);
    const y = a.alloc(n);
    const out = a.alloc(2);
    for (let i = 0; i < n; i++) a.f32[x + i] = -87 + (175 * i) / (n - 1);
    a.expScale(x, y, n, 0, 1);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const want = Math.exp(a.f32[x + i]!);
      worst = Math.max(worst, Math.abs(a.f32[y + i]! - want) / want);
    }
    expect(worst).toBeLessThan(3e-7);
    a.expScale(x, y, 7, 0, 2); // the scale and the scalar tail
    expect(a.f32[y + 6]! / (2 * Math.exp(a.f32[x + 6]!))).toBeCloseTo(1, 6);
    a.f32.set([-1e9, 3, -2, 7, 1], x);
    a.lseRow(x, 5, out);
    expect(a.f32[out]).toBe(7);
    expect(a.f32[out + 1]).toBeCloseTo(Math.exp(-4) + Math.exp(-9) + 1 + Math.exp(-6), 6);
  });
});

describe('fast batch-1 decoder against the TF.js forward (tabtune-tiny)', () => {
  let m: LanguageModel;
  beforeAll(async () => {
    await setupBackend('wasm');
    m = await loadModel(directorySource(TINY_DIR));
  });
  afterAll(() => m?.dispose());

  /** Logits of both paths for a prompt then `follow` fed one token at a time; the largest difference. */
  function compare(prompt: number[], follow: number[], opts: { keptInUse?: boolean } = {}): { maxDiff: number; tfLogits: Float32Array[] } {
    const cache = m.lm.createCache(1);
    const ref = m.lm.createCache(1);
    // Another decoder holding the kept weights: this one then copies them (adapters folded in).
    const other = opts.keptInUse ? m.lm.createCache(1) : null;
    let holder: FastDecoder | null = null;
    try {
      if (other) {
        m.lm.forward([prompt], { cache: other, lastOnly: true }).dispose();
        holder = FastDecoder.start(m.lm, other, 2);
      }
      m.lm.forward([prompt], { cache, lastOnly: true }).dispose();
      m.lm.forward([prompt], { cache: ref, lastOnly: true }).dispose();
      const dec = FastDecoder.start(m.lm, cache, follow.length);
      expect(dec).not.toBeNull();
      let maxDiff = 0;
      const tfLogits: Float32Array[] = [];
      for (const t of follow) {
        const fast = dec!.step(0, t);
        const lt = m.lm.forward([[t]], { cache: ref, lastOnly: true });
        const want = lt.dataSync() as Float32Array;
        lt.dispose();
        tfLogits.push(Float32Array.from(want));
        for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i]! - fast[i]!));
      }
      dec!.release();
      return { maxDiff, tfLogits };
    } finally {
      holder?.release();
      other?.dispose();
      cache.dispose();
      ref.dispose();
    }
  }

  const prompt = [1, 40, 41, 42, 43, 44];
  const follow = Array.from({ length: 40 }, (_, i) => 5 + ((i * 37) % 3000));

  it('base model: logits within 1e-4 at every step; no tensor left behind', () => {
    expect(fastDecodeBlocker(m.lm)).toBeNull();
    const before = tf.memory().numTensors;
    const { maxDiff } = compare(prompt, follow);
    expect(maxDiff).toBeLessThan(1e-4);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('LoRA on every linear layer, B non-zero: beside the kept weights, or folded into a copy while they are in use; logits within 1e-4 and different from the base', () => {
    const base = compare(prompt, follow.slice(0, 5)).tfLogits;
    const ad = new LoraAdapter(m.lm, { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, { seed: 3 });
    try {
      ad.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', i)));
      expect(compare(prompt, follow.slice(0, 5), { keptInUse: true }).maxDiff).toBeLessThan(1e-4);
      const { maxDiff, tfLogits } = compare(prompt, follow.slice(0, 5));
      expect(maxDiff).toBeLessThan(1e-4);
      let moved = 0;
      for (let i = 0; i < base[0]!.length; i++) moved = Math.max(moved, Math.abs(base[0]![i]! - tfLogits[0]![i]!));
      expect(moved).toBeGreaterThan(0.1);
    } finally {
      ad.dispose();
    }
  });

  it('OFT (a rotation, not a low-rank delta) folds in too', () => {
    const ad = new OftAdapter(m.lm, { oft_block_size: 8, module_dropout: 0, target_modules: ['q_proj', 'up_proj'], coft: false, eps: 6e-5 }, {});
    try {
      ad.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 10 + i)));
      expect(compare(prompt, follow.slice(0, 5)).maxDiff).toBeLessThan(1e-4);
    } finally {
      ad.dispose();
    }
  });

  it('prompt tuning: the virtual tokens come in through the prefilled cache', () => {
    const ad = new PromptTuningAdapter(m.lm, { num_virtual_tokens: 6, prompt_tuning_init: 'RANDOM', prompt_tuning_init_text: '' }, { seed: 4 });
    try {
      expect(compare(prompt, follow.slice(0, 8)).maxDiff).toBeLessThan(1e-4);
    } finally {
      ad.dispose();
    }
  });

  it('a full-parameter (trainable) model, whose tied head is the embedding variable itself', async () => {
    const full = await loadModel(directorySource(TINY_DIR), { trainable: true });
    try {
      const a = await generate(full, ['Once upon a time'], { maxNewTokens: 24, temperature: 0, ignoreEos: true, decoder: 'tfjs' });
      const b = await generate(full, ['Once upon a time'], { maxNewTokens: 24, temperature: 0, ignoreEos: true });
      expect(b[0]!.tokens).toEqual(a[0]!.tokens);
    } finally {
      full.dispose();
    }
  });

  it('generate(): the same greedy tokens as the TF.js path for a batch of prompts of different lengths, and the same seeded samples', async () => {
    const prompts = ['Once upon a time', 'The dog', 'A little girl named Lily went to the park and'];
    const want = await generate(m, prompts, { maxNewTokens: 48, temperature: 0, ignoreEos: true, decoder: 'tfjs' });
    const got = await generate(m, prompts, { maxNewTokens: 48, temperature: 0, ignoreEos: true });
    expect(got.map((r) => r.tokens)).toEqual(want.map((r) => r.tokens));
    expect(got.map((r) => r.text)).toEqual(want.map((r) => r.text));
    const s1 = await generate(m, prompts, { maxNewTokens: 32, temperature: 0.8, topK: 20, seed: 9, decoder: 'tfjs' });
    const s2 = await generate(m, prompts, { maxNewTokens: 32, temperature: 0.8, topK: 20, seed: 9 });
    expect(s2.map((r) => r.tokens)).toEqual(s1.map((r) => r.tokens));
    expect(s2.map((r) => r.finishReason)).toEqual(s1.map((r) => r.finishReason));
  });

  it('keeps the base weights between generations, and copies again when a weight or an adapter changes', async () => {
    const full = await loadModel(directorySource(TINY_DIR), { trainable: true });
    const lm = full.lm as LlamaModel;
    const opts = { maxNewTokens: 16, temperature: 0, ignoreEos: true } as const;
    // Each generation's decoder: which copy of the weights it decoded with (a new one each time they are copied).
    const copies: unknown[] = [];
    const start = FastDecoder.start;
    const spy = vi.spyOn(FastDecoder, 'start').mockImplementation((...args) => {
      const d = start.apply(FastDecoder, args);
      copies.push((d as unknown as { layers: unknown }).layers);
      return d;
    });
    const expectBoth = async () => {
      const want = await generate(full, ['Once upon a time'], { ...opts, decoder: 'tfjs' });
      const got = await generate(full, ['Once upon a time'], opts);
      expect(got[0]!.tokens).toEqual(want[0]!.tokens);
      return got[0]!.tokens;
    };
    try {
      const first = await expectBoth();
      expect(await expectBoth()).toEqual(first);
      expect(copies[1]).toBe(copies[0]); // the same weights: not copied again

      // A weight changes (as a training step or a loaded checkpoint changes it): copied again, and it shows.
      const q = lm.decodeParts().layers[0]!.q.w as tf.Variable;
      const was = q.clone();
      q.assign(tf.tidy(() => tf.mul(q, 3)));
      const changed = await expectBoth();
      expect(changed).not.toEqual(first);
      expect(copies[2]).not.toBe(copies[1]);
      q.assign(was);
      was.dispose();
      expect(await expectBoth()).toEqual(first);

      // LoRA runs beside the kept weights as its low-rank parts, read again each generation (a strength, a
      // training step); OFT is folded into a copy of its own. Without them the kept weights serve as before.
      const ad = new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'] }, { seed: 3 });
      ad.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', i)));
      const tuned = await expectBoth();
      expect(tuned).not.toEqual(first);
      expect(copies[4]).toBe(copies[3]);
      ad.strength = 0.5;
      const half = await expectBoth();
      expect(half).not.toEqual(tuned);
      ad.variables()[1]!.assign(tf.tidy(() => tf.mul(ad.variables()[1]!, -1)));
      expect(await expectBoth()).not.toEqual(half);
      ad.dispose();
      expect(await expectBoth()).toEqual(first);
      expect(copies[7]).toBe(copies[3]);
      const oft = new OftAdapter(lm, { oft_block_size: 8, module_dropout: 0, target_modules: ['q_proj', 'up_proj'], coft: false, eps: 6e-5 }, {});
      oft.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.3, 'float32', 20 + i)));
      expect(await expectBoth()).not.toEqual(first);
      expect(copies[8]).not.toBe(copies[3]);
      oft.dispose();
      expect(await expectBoth()).toEqual(first);
      expect(copies[9]).toBe(copies[3]);

      // A longer generation than the kept arena was sized for grows it, the weights copied across.
      const long = await generate(full, ['Once upon a time'], { ...opts, maxNewTokens: 120, decoder: 'tfjs' });
      expect((await generate(full, ['Once upon a time'], { ...opts, maxNewTokens: 120 }))[0]!.tokens).toEqual(long[0]!.tokens);
      // Two decoders at once: the second (the kept arena is busy) gets a copy of its own.
      const c1 = lm.createCache(1);
      const c2 = lm.createCache(1);
      lm.forward([[1, 40, 41]], { cache: c1, lastOnly: true }).dispose();
      lm.forward([[1, 40, 41]], { cache: c2, lastOnly: true }).dispose();
      const d1 = FastDecoder.start(lm, c1, 4)!;
      const d2 = FastDecoder.start(lm, c2, 4)!;
      expect(copies.at(-1)).not.toBe(copies.at(-2));
      expect(Array.from(d2.step(0, 50))).toEqual(Array.from(d1.step(0, 50)));
      d1.release();
      d2.release();
      c1.dispose();
      c2.dispose();
    } finally {
      spy.mockRestore();
      dropKeptDecoderWeights();
      full.dispose();
    }
  });

  it('other architectures keep the TF.js path (the decoder is Llama-family only)', () => {
    const gpt2 = tinyModel({ arch: 'gpt2' });
    expect(fastDecodeBlocker(gpt2)).toMatch(/Llama family only/);
    gpt2.dispose();
  });

  it('stops at the context the same way (the decoder is sized for the budget)', async () => {
    const long = Array.from({ length: 240 }, (_, i) => 5 + i).map(String).join(' ');
    const ids = m.tokenizer.encode(long).slice(0, 240);
    const text = m.tokenizer.decode(ids);
    const want = await generate(m, [text], { maxNewTokens: 100, temperature: 0, ignoreEos: true, decoder: 'tfjs' });
    const got = await generate(m, [text], { maxNewTokens: 100, temperature: 0, ignoreEos: true });
    expect(got[0]!.tokens).toEqual(want[0]!.tokens);
    expect(got[0]!.finishReason).toBe('length');
  });
});
