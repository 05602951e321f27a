// Every supported architecture variant, checked against an independent NumPy forward pass.
// scripts/tiny_reference.py writes tiny random-weight Hugging Face folders (GPT-2, llama untied / GQA /
// biases + linear rope, qwen2, mistral, llama3 rope scaling; F32, F16, BF16 and mixed files) plus the
// float64 logits at every position. Each folder is read through the generic path (readHFModelFiles +
// buildCausalLM) and run on the cpu and wasm backends: full forward, KV-cache decoding, left-padded
// batches, lastOnly, load errors and tensor leaks.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directorySource } from '../node/fs-source';
import { readHFModelFiles } from '../io/hf-folder';
import { setupBackend, type BackendName } from './backend';
import type { CausalLM } from './causal-lm';
import { buildCausalLM } from './load';
import { ModelLoadError, type HFModelFiles, type WeightMap } from './types';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts', 'tiny_reference.py');
const OUT = join(ROOT, '.cache', 'tiny-models');
const TOL = 1e-4;

const VARIANTS = ['gpt2', 'llama-untied', 'llama-gqa', 'qwen2', 'mistral', 'llama3-rope', 'llama-bias-linear'] as const;
type Variant = (typeof VARIANTS)[number];

interface Expected {
  variant: string;
  dtypes: string[];
  mutation: string | null;
  /** cases[0], cases[1]: 12 tokens each (run as one batch); cases[2]: 7 tokens (the left-padded row). */
  cases: { ids: number[]; logits: number[][] }[];
}

/** Measured max |logit diff| per backend, variant and check, printed at the end. */
const report: Record<string, Record<string, Record<string, number>>> = {};
function record(backend: string, variant: string, check: string, diff: number): void {
  ((report[backend] ??= {})[variant] ??= {})[check] = Math.max(report[backend]![variant]![check] ?? 0, diff);
}

let generated = false;
/** Runs the NumPy reference once per test run, into the git-ignored .cache/tiny-models/. */
function generateReference(): void {
  if (generated) return;
  execFileSync('python3', [SCRIPT, OUT], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 });
  generated = true;
}

const filesCache = new Map<Variant, Promise<HFModelFiles>>();
function files(v: Variant): Promise<HFModelFiles> {
  if (!filesCache.has(v)) filesCache.set(v, readHFModelFiles(directorySource(join(OUT, v))));
  return filesCache.get(v)!;
}
const expectedCache = new Map<Variant, Expected>();
function expected(v: Variant): Expected {
  if (!expectedCache.has(v)) expectedCache.set(v, JSON.parse(readFileSync(join(OUT, v, 'expected.json'), 'utf8')) as Expected);
  return expectedCache.get(v)!;
}

/** logits [B, T, V] as nested arrays, then disposed. */
function take(t: tf.Tensor): number[][][] {
  const a = t.arraySync() as number[][][];
  t.dispose();
  return a;
}

/** max |a - b| over rows of logits (each row a position). */
function maxDiff(got: number[][], want: number[][]): number {
  expect(got.length).toBe(want.length);
  let m = 0;
  got.forEach((row, t) => {
    expect(row.length).toBe(want[t]!.length);
    row.forEach((x, i) => {
      const d = Math.abs(x - want[t]![i]!);
      m = Number.isNaN(d) ? Infinity : Math.max(m, d);
    });
  });
  return m;
}

beforeAll(() => generateReference());

afterAll(() => {
  const lines = ['[architectures] max |logit diff| vs the NumPy float64 reference:'];
  for (const [backend, byVariant] of Object.entries(report)) {
    for (const [variant, checks] of Object.entries(byVariant)) {
      const parts = Object.entries(checks).map(([k, d]) => `${k} ${d.toExponential(2)}`);
      lines.push(`  ${backend.padEnd(4)} ${variant.padEnd(18)} ${parts.join(', ')}`);
    }
  }
  console.log(lines.join('\n'));
});

describe('tiny reference folders', () => {
  it('are read with their stored dtypes and shapes', async () => {
    const dt = (v: Variant, name: string) => files(v).then((f) => f.weights.get(name)?.dtype);
    expect(await dt('llama-gqa', 'model.layers.0.self_attn.q_proj.weight')).toBe('F16');
    expect(await dt('qwen2', 'model.layers.0.self_attn.q_proj.weight')).toBe('BF16');
    expect(await dt('qwen2', 'model.norm.weight')).toBe('F32');
    expect(await dt('gpt2', 'transformer.h.0.attn.c_attn.weight')).toBe('F32');
    const gqa = await files('llama-gqa');
    expect(gqa.weights.get('model.layers.0.self_attn.q_proj.weight')!.shape).toEqual([40, 24]); // head_dim 10 * 4 heads
    expect(gqa.weights.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([20, 24]); // 2 kv heads
    expect(gqa.weights.has('lm_head.weight')).toBe(false);
    expect((await files('llama-untied')).weights.has('lm_head.weight')).toBe(true);
  });
});

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  describe(`architectures vs NumPy on ${backend}`, () => {
    const models = new Map<Variant, CausalLM>();
    beforeAll(async () => {
      await setupBackend(backend);
      expect(tf.getBackend()).toBe(backend);
      for (const v of VARIANTS) models.set(v, buildCausalLM(await files(v)));
    });
    afterAll(() => {
      for (const m of models.values()) m.dispose();
    });

    for (const v of VARIANTS) {
      describe(v, () => {
        it(`logits at every position match (batch of 2 and a single row, <= ${TOL})`, () => {
          const m = models.get(v)!;
          const { cases } = expected(v);
          const [a, b, c] = cases as [Expected['cases'][0], Expected['cases'][0], Expected['cases'][0]];
          const out = take(m.forward([a.ids, b.ids]));
          const d = Math.max(maxDiff(out[0]!, a.logits), maxDiff(out[1]!, b.logits));
          const single = take(m.forward([c.ids]));
          const d1 = maxDiff(single[0]!, c.logits);
          record(backend, v, 'full', Math.max(d, d1));
          expect(d).toBeLessThanOrEqual(TOL);
          expect(d1).toBeLessThanOrEqual(TOL);
        });

        it('KV-cache decoding (prefill 5, then one token at a time) equals the full forward', () => {
          const m = models.get(v)!;
          const [a, b] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0]];
          const full = take(m.forward([a.ids, b.ids]));
          const cache = m.createCache(2);
          const k = 5;
          const steps: number[][][][] = [take(m.forward([a.ids.slice(0, k), b.ids.slice(0, k)], { cache }))]; // [step][B][T][V]
          for (let t = k; t < a.ids.length; t++) steps.push(take(m.forward([[a.ids[t]!], [b.ids[t]!]], { cache })));
          expect(cache.length).toBe(a.ids.length);
          cache.dispose();
          const inc = [0, 1].map((r) => steps.flatMap((s) => s[r]!));
          const dFull = Math.max(maxDiff(inc[0]!, full[0]!), maxDiff(inc[1]!, full[1]!));
          const dRef = Math.max(maxDiff(inc[0]!, a.logits), maxDiff(inc[1]!, b.logits));
          record(backend, v, 'cache-vs-full', dFull);
          record(backend, v, 'cache', dRef);
          expect(dFull).toBeLessThanOrEqual(TOL);
          expect(dRef).toBeLessThanOrEqual(TOL);
        });

        it('a left-padded batch with a mask gives each row the logits it gets alone', () => {
          const m = models.get(v)!;
          const [a, , c] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0], Expected['cases'][0]];
          const pad = a.ids.length - c.ids.length; // 5
          const padded = [...new Array<number>(pad).fill(0), ...c.ids];
          const mask = [a.ids.map(() => 1), padded.map((_, i) => (i < pad ? 0 : 1))];
          const out = take(m.forward([a.ids, padded], { mask }));
          const aloneA = take(m.forward([a.ids]))[0]!;
          const aloneC = take(m.forward([c.ids]))[0]!;
          const dAlone = Math.max(maxDiff(out[0]!, aloneA), maxDiff(out[1]!.slice(pad), aloneC));
          const dRef = Math.max(maxDiff(out[0]!, a.logits), maxDiff(out[1]!.slice(pad), c.logits));
          record(backend, v, 'padded-vs-alone', dAlone);
          record(backend, v, 'padded', dRef);
          expect(dAlone).toBeLessThanOrEqual(TOL);
          expect(dRef).toBeLessThanOrEqual(TOL);
          for (const row of out[1]!.slice(0, pad)) for (const x of row) expect(Number.isFinite(x)).toBe(true);
        });

        it('left-padded prefill + cached decoding, with a masked (skipped) step in one row', () => {
          const m = models.get(v)!;
          const [a, , c] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0], Expected['cases'][0]];
          // Row 0: a[0..8) prefill, then a[8], a[9], a[10]. Row 1: 3 pads + c[0..5) prefill, then c[5], a
          // masked step (pad, mask 0: must neither attend nor advance the position), then c[6].
          const cache = m.createCache(2);
          const pre = take(m.forward([a.ids.slice(0, 8), [0, 0, 0, ...c.ids.slice(0, 5)]], { cache, mask: [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]] }));
          const s1 = take(m.forward([[a.ids[8]!], [c.ids[5]!]], { cache }));
          const s2 = take(m.forward([[a.ids[9]!], [0]], { cache, mask: [[1], [0]] }));
          const s3 = take(m.forward([[a.ids[10]!], [c.ids[6]!]], { cache }));
          cache.dispose();
          const rowA = [...pre[0]!, s1[0]![0]!, s2[0]![0]!, s3[0]![0]!];
          const rowC = [...pre[1]!.slice(3), s1[1]![0]!, s3[1]![0]!];
          const d = Math.max(maxDiff(rowA, a.logits.slice(0, 11)), maxDiff(rowC, c.logits));
          record(backend, v, 'padded-cache', d);
          expect(d).toBeLessThanOrEqual(TOL);
        });

        it('lastOnly equals the last position of the full forward (plain and left-padded)', () => {
          const m = models.get(v)!;
          const [a, b, c] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0], Expected['cases'][0]];
          const V = a.logits[0]!.length;
          const full = take(m.forward([a.ids, b.ids]));
          const lastT = m.forward([a.ids, b.ids], { lastOnly: true });
          expect(lastT.shape).toEqual([2, 1, V]);
          const last = take(lastT);
          let d = Math.max(maxDiff(last[0]!, [full[0]!.at(-1)!]), maxDiff(last[1]!, [full[1]!.at(-1)!]));
          const padded = [0, 0, 0, 0, 0, ...c.ids];
          const lp = take(m.forward([a.ids, padded], { lastOnly: true, mask: [a.ids.map(() => 1), padded.map((_, i) => (i < 5 ? 0 : 1))] }));
          d = Math.max(d, maxDiff(lp[0]!, [a.logits.at(-1)!]), maxDiff(lp[1]!, [c.logits.at(-1)!]));
          record(backend, v, 'lastOnly', d);
          expect(d).toBeLessThanOrEqual(TOL);
        });

        it('leaves no tensors behind after forward / cache / dispose cycles', async () => {
          const m = models.get(v)!;
          const [a, b] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0]];
          const start = tf.memory().numTensors;
          for (let round = 0; round < 2; round++) {
            m.forward([a.ids, b.ids]).dispose();
            m.forward([a.ids], { lastOnly: true }).dispose();
            const cache = m.createCache(2);
            m.forward([a.ids.slice(0, 4), b.ids.slice(0, 4)], { cache, lastOnly: true }).dispose();
            for (let t = 4; t < 8; t++) m.forward([[a.ids[t]!], [b.ids[t]!]], { cache, mask: [[1], [t % 2]] }).dispose();
            const sub = cache.select([1]);
            m.forward([[b.ids[8]!]], { cache: sub }).dispose();
            sub.dispose();
            cache.dispose();
          }
          expect(tf.memory().numTensors).toBe(start);
          // Building and disposing a whole model returns every weight tensor too.
          const fresh = buildCausalLM(await files(v));
          expect(tf.memory().numTensors).toBeGreaterThan(start);
          fresh.forward([a.ids]).dispose();
          fresh.dispose();
          expect(tf.memory().numTensors).toBe(start);
        });
      });
    }
  });
}

describe('checkpoint naming variants (cpu)', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  function check(v: Variant, weights: WeightMap, config?: Record<string, unknown>): number {
    const m = buildCausalLM({ config: config ?? expectedConfig(v), weights });
    try {
      const [a, b] = expected(v).cases as [Expected['cases'][0], Expected['cases'][0]];
      const out = take(m.forward([a.ids, b.ids]));
      return Math.max(maxDiff(out[0]!, a.logits), maxDiff(out[1]!, b.logits));
    } finally {
      m.dispose();
    }
  }
  const expectedConfig = (v: Variant) => JSON.parse(readFileSync(join(OUT, v, 'config.json'), 'utf8')) as Record<string, unknown>;

  it('GPT-2 saved without the "transformer." prefix (the original checkpoints) runs the same', async () => {
    const g = await files('gpt2');
    const bare: WeightMap = new Map([...g.weights].map(([k, t]) => [k.replace(/^transformer\./, ''), t]));
    expect(bare.has('wte.weight')).toBe(true);
    expect(check('gpt2', bare)).toBeLessThanOrEqual(TOL);
  });

  it('a tied llama that also stores an identical lm_head.weight runs the same', async () => {
    const f = await files('llama-gqa');
    const withHead = new Map(f.weights);
    withHead.set('lm_head.weight', f.weights.get('model.embed_tokens.weight')!);
    expect(check('llama-gqa', withHead)).toBeLessThanOrEqual(TOL);
  });
});

// The reference run with one piece of HF semantics deliberately broken (scripts/tiny_reference.py
// --mutate) must disagree with the runtime on exactly the variants that use that piece: this guards the
// checks above against being vacuous (e.g. a GQA model whose kv heads happen to be interchangeable).
const MUTATIONS: Record<string, Variant[]> = {
  rope_sign: ['llama-untied', 'llama-gqa', 'qwen2', 'mistral', 'llama3-rope', 'llama-bias-linear'],
  rope_half: ['llama-untied', 'llama-gqa', 'qwen2', 'mistral', 'llama3-rope', 'llama-bias-linear'],
  gqa_map: ['llama-gqa', 'qwen2'],
  llama3_off: ['llama3-rope'],
  no_qkv_bias: ['qwen2', 'llama-bias-linear'],
  gelu_erf: ['gpt2'],
  untie_ignored: ['llama-untied', 'mistral', 'llama-bias-linear'],
};

describe('the reference is discriminating (cpu)', () => {
  const models = new Map<Variant, CausalLM>();
  beforeAll(async () => {
    await setupBackend('cpu');
    for (const v of VARIANTS) models.set(v, buildCausalLM(await files(v)));
  });
  afterAll(() => {
    for (const m of models.values()) m.dispose();
  });

  for (const [mutation, affected] of Object.entries(MUTATIONS)) {
    it(`--mutate ${mutation} is caught on ${affected.join(', ')} and only there`, () => {
      const dir = join(OUT, '_mutated', mutation);
      execFileSync('python3', [SCRIPT, dir, '--mutate', mutation], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 });
      for (const v of VARIANTS) {
        const exp = JSON.parse(readFileSync(join(dir, v, 'expected.json'), 'utf8')) as Expected;
        expect(exp.mutation).toBe(mutation);
        const [a, b] = exp.cases as [Expected['cases'][0], Expected['cases'][0]];
        const out = take(models.get(v)!.forward([a.ids, b.ids]));
        const d = Math.max(maxDiff(out[0]!, a.logits), maxDiff(out[1]!, b.logits));
        record('mut', v, mutation, d);
        if (affected.includes(v)) expect(d, `${mutation} on ${v}`).toBeGreaterThan(10 * TOL);
        else expect(d, `${mutation} on ${v}`).toBeLessThanOrEqual(TOL);
      }
    });
  }
});

describe('load errors (ModelLoadError naming the problem)', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  /** Expects fn to throw a ModelLoadError with this code and a message matching re, leaking no tensors. */
  async function expectLoadError(fn: () => unknown, code: string, re: RegExp): Promise<ModelLoadError> {
    const before = tf.memory().numTensors;
    let err: unknown = null;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    expect(err, 'expected a ModelLoadError').toBeInstanceOf(ModelLoadError);
    const e = err as ModelLoadError;
    expect(e.code).toBe(code);
    expect(e.message).toMatch(re);
    expect(tf.memory().numTensors).toBe(before);
    return e;
  }

  const withWeights = (w: WeightMap, edit: (w: WeightMap) => void): WeightMap => {
    const copy = new Map(w);
    edit(copy);
    return copy;
  };

  it('unknown model_type', async () => {
    const f = await files('llama-untied');
    await expectLoadError(() => buildCausalLM({ config: { ...f.config, model_type: 'falcon' }, weights: f.weights }), 'UNSUPPORTED_MODEL', /model_type "falcon"/);
    await expectLoadError(() => buildCausalLM({ config: { ...f.config, model_type: undefined }, weights: f.weights }), 'BAD_CONFIG', /model_type/);
  });

  it('a missing tensor', async () => {
    const f = await files('llama-gqa');
    const name = 'model.layers.1.self_attn.k_proj.weight';
    await expectLoadError(() => buildCausalLM({ config: f.config, weights: withWeights(f.weights, (w) => w.delete(name)) }), 'BAD_TENSOR', new RegExp(`"${name.replace(/\./g, '\\.')}"`));
    const q = await files('qwen2');
    await expectLoadError(
      () => buildCausalLM({ config: q.config, weights: withWeights(q.weights, (w) => w.delete('model.layers.0.self_attn.v_proj.bias')) }),
      'BAD_TENSOR',
      /"model\.layers\.0\.self_attn\.v_proj\.bias"/,
    );
    const u = await files('llama-untied');
    await expectLoadError(() => buildCausalLM({ config: u.config, weights: withWeights(u.weights, (w) => w.delete('lm_head.weight')) }), 'BAD_TENSOR', /"lm_head\.weight"/);
    const g = await files('gpt2');
    await expectLoadError(
      () => buildCausalLM({ config: g.config, weights: withWeights(g.weights, (w) => w.delete('transformer.h.1.mlp.c_fc.bias')) }),
      'BAD_TENSOR',
      /"transformer\.h\.1\.mlp\.c_fc\.bias"/,
    );
  });

  it('a mis-shaped tensor', async () => {
    const f = await files('llama-gqa');
    const name = 'model.layers.0.self_attn.k_proj.weight';
    const t = f.weights.get(name)!;
    const e = await expectLoadError(
      () => buildCausalLM({ config: f.config, weights: withWeights(f.weights, (w) => w.set(name, { ...t, shape: [t.shape[1]!, t.shape[0]!] })) }),
      'BAD_TENSOR',
      /k_proj\.weight/,
    );
    expect(e.message).toContain('[24, 20]');
    expect(e.message).toContain('[20, 24]');
    // A config that disagrees with the weights: without the explicit head_dim (10), q_proj is the wrong shape.
    const { head_dim: _hd, ...noHeadDim } = f.config;
    void _hd;
    await expectLoadError(() => buildCausalLM({ config: noHeadDim, weights: f.weights }), 'BAD_TENSOR', /q_proj\.weight.*\[40, 24\].*\[24, 24\]/);
    // GPT-2 Conv1D weights are [in, out]: an nn.Linear-style [out, in] c_fc is refused.
    const g = await files('gpt2');
    const fc = g.weights.get('transformer.h.0.mlp.c_fc.weight')!;
    await expectLoadError(
      () => buildCausalLM({ config: g.config, weights: withWeights(g.weights, (w) => w.set('transformer.h.0.mlp.c_fc.weight', { ...fc, shape: [fc.shape[1]!, fc.shape[0]!] })) }),
      'BAD_TENSOR',
      /c_fc\.weight/,
    );
  });

  it('a quantized config', async () => {
    const f = await files('llama-untied');
    const quant = { ...f.config, quantization_config: { quant_method: 'gptq', bits: 4 } };
    await expectLoadError(() => buildCausalLM({ config: quant, weights: f.weights }), 'UNSUPPORTED_MODEL', /quantized.*gptq/);
    // And through the folder reader, which refuses before reading the weights.
    const dir = mkdtempSync(join(tmpdir(), 'tabtune-quant-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify(quant));
      copyFileSync(join(OUT, 'llama-untied', 'model.safetensors'), join(dir, 'model.safetensors'));
      await expectLoadError(() => readHFModelFiles(directorySource(dir)), 'UNSUPPORTED_MODEL', /quantized.*gptq/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
