// The benchmark's pure parts: FLOP formulas, the plan, argument parsing, the JSON line shape and the
// ratios. No clock: nothing here times anything.
import { describe, expect, it } from 'vitest';
import { ArgsError, parseBenchArgs } from './args';
import { decodeFlops, loraFlopsPerToken, matmulParams, matmulShapes, prefillFlops, trainStepFlops, trainStepFlops6N, type ModelShape } from './flops';
import { ALL_LINEAR_TARGETS, benchPlan, QV_TARGETS } from './plan';
import { jsonLine, measurement, parseMeasurement, ratios, REQUIRED_KEYS, formatTable } from './records';

/** A Llama of 2 layers, hidden 8, 2 heads of 4 (1 KV head), MLP 16, vocab 32, context 64. */
function tinyShape(): ModelShape {
  const linears = [0, 1].flatMap((l) => {
    const p = `model.layers.${l}`;
    return [
      { name: `${p}.self_attn.q_proj`, in: 8, out: 8 },
      { name: `${p}.self_attn.k_proj`, in: 8, out: 4 },
      { name: `${p}.self_attn.v_proj`, in: 8, out: 4 },
      { name: `${p}.self_attn.o_proj`, in: 8, out: 8 },
      { name: `${p}.mlp.gate_proj`, in: 8, out: 16 },
      { name: `${p}.mlp.up_proj`, in: 8, out: 16 },
      { name: `${p}.mlp.down_proj`, in: 16, out: 8 },
    ];
  });
  return { layers: 2, heads: 2, headDim: 4, hidden: 8, vocab: 32, context: 64, linears, numParams: 1000 };
}

describe('FLOP formulas', () => {
  const m = tinyShape();
  it('counts every matmul parameter, the vocabulary projection included', () => {
    // per layer 64 + 32 + 32 + 64 + 128 + 128 + 128 = 576; head 8 * 32 = 256
    expect(matmulParams(m)).toBe(2 * 576 + 256);
  });
  it('LoRA costs 6 r (in + out) per adapted linear and token', () => {
    expect(loraFlopsPerToken(m, { r: 2, targets: QV_TARGETS })).toBe(2 * (6 * 2 * (8 + 8) + 6 * 2 * (8 + 4)));
    expect(loraFlopsPerToken(m, { r: 2, targets: ['nothing'] })).toBe(0);
  });
  it('a training step is B T (4 N + LoRA + L 12 T H hd)', () => {
    const N = 2 * 576 + 256;
    const lora = loraFlopsPerToken(m, { r: 2, targets: ALL_LINEAR_TARGETS });
    expect(trainStepFlops(m, { r: 2, targets: ALL_LINEAR_TARGETS }, 3, 10)).toBe(3 * 10 * (4 * N + lora + 2 * 12 * 10 * 2 * 4));
    expect(trainStepFlops6N(m, 3, 10)).toBe(6 * 1000 * 30);
  });
  it('prefill: the body per token, one vocabulary projection, attention over T x T', () => {
    expect(prefillFlops(m, 10)).toBe(2 * 2 * 576 * 10 + 2 * 256 + 2 * 4 * 10 * 10 * 2 * 4);
  });
  it('decoding n tokens: a prefill of the prompt, then n - 1 single-token steps over a growing cache', () => {
    expect(decodeFlops(m, 5, 0)).toBe(0);
    expect(decodeFlops(m, 5, 1)).toBe(prefillFlops(m, 5));
    const N = matmulParams(m);
    expect(decodeFlops(m, 5, 3)).toBe(prefillFlops(m, 5) + (2 * N + 2 * 4 * 6 * 8) + (2 * N + 2 * 4 * 7 * 8));
  });
  it('matmul shapes: each distinct projection once, the vocabulary projection last', () => {
    expect(matmulShapes(m, 100)).toEqual([
      [100, 8, 8],
      [100, 8, 4],
      [100, 8, 16],
      [100, 16, 8],
      [100, 8, 32],
    ]);
  });
});

describe('plan', () => {
  it('caps sequences, prefill and generation by the context', () => {
    const p = benchPlan({ ...tinyShape(), context: 64 }, { steps: 4, leakSteps: 50, quick: false });
    expect(p.train.map((t) => [t.batch, t.seq, t.targets.length, t.steps])).toEqual([
      [8, 64, 2, 4],
      [8, 64, 7, 4],
      [1, 64, 2, 4],
      [1, 64, 7, 4],
    ]);
    expect(p.prefill.seq).toBe(64);
    expect(p.generate.prompt_tokens + p.generate.new_tokens).toBe(64);
    expect(p.leak.steps).toBe(50);
    expect(p.matmulRows).toEqual([512, 64]);
  });
  it('keeps the issue shapes on a 256-token model', () => {
    const p = benchPlan({ ...tinyShape(), context: 256 }, { steps: 4, leakSteps: 50, quick: false });
    expect(p.train.map((t) => `${t.batch}x${t.seq}`)).toEqual(['8x128', '8x128', '1x256', '1x256']);
    expect(p.generate).toMatchObject({ prompt_tokens: 8, new_tokens: 248 });
    expect(p.prefill.seq).toBe(256);
  });
  it('--quick trains q,v only with one warm-up step', () => {
    const p = benchPlan({ ...tinyShape(), context: 256 }, { steps: 2, leakSteps: 20, quick: true });
    expect(p.train.map((t) => [t.batch, t.seq, t.targets, t.warmup, t.steps])).toEqual([
      [8, 128, QV_TARGETS, 1, 2],
      [1, 256, QV_TARGETS, 1, 2],
    ]);
  });
  it('--recompute times each training shape again with activation recomputation, a measurement of its own', () => {
    const p = benchPlan({ ...tinyShape(), context: 256 }, { steps: 2, leakSteps: 20, quick: true, recompute: true });
    expect(p.train.map((t) => [t.batch, t.seq, t.recompute ?? false])).toEqual([
      [8, 128, false],
      [8, 128, true],
      [1, 256, false],
      [1, 256, true],
    ]);
    expect(parseBenchArgs(['--recompute']).recompute).toBe(true);
    expect(parseBenchArgs([]).recompute).toBe(false);
    const ctx = { model: 'm', backend: 'wasm', threads: 1, host: 'node' };
    const plain = measurement('train_lora', ctx, { batch: 8, seq: 128, targets: QV_TARGETS, tokens_per_s: 100 });
    const re = measurement('train_lora', ctx, { batch: 8, seq: 128, targets: QV_TARGETS, tokens_per_s: 80, recompute: true });
    const torch = measurement('torch_train_lora', { ...ctx, backend: 'torch-cpu', host: 'torch' }, { batch: 8, seq: 128, targets: QV_TARGETS, tokens_per_s: 200 });
    // Only the plain step is compared with PyTorch's.
    expect(ratios([plain, re, torch]).map((r) => r.what)).toEqual(['train 8x128 q,v']);
    expect(formatTable([plain, re, torch])).toContain('train 8x128 q,v recompute');
  });
});

describe('arguments', () => {
  it('defaults', () => {
    expect(parseBenchArgs([])).toMatchObject({ models: [], threads: 1, steps: 10, leakSteps: 50, json: false, torch: true, out: 'bench/results/latest.json' });
  });
  it('repeated --model, numbers, switches', () => {
    const a = parseBenchArgs(['--model', 'a', '--model', 'b', '--threads', '2', '--steps', '5', '--json', '--no-torch']);
    expect(a).toMatchObject({ models: ['a', 'b'], threads: 2, steps: 5, json: true, torch: false });
    expect(parseBenchArgs(['--browser', '--gpu-unfused'])).toMatchObject({ browser: true, gpuUnfused: true });
    expect(parseBenchArgs([]).gpuUnfused).toBe(false);
  });
  it('--quick lowers the step counts unless they are given', () => {
    expect(parseBenchArgs(['--quick'])).toMatchObject({ steps: 3, leakSteps: 20 });
    expect(parseBenchArgs(['--quick', '--steps', '7'])).toMatchObject({ steps: 7 });
  });
  it('an unknown option or a bad number is an ArgsError naming it', () => {
    expect(() => parseBenchArgs(['--modle', 'x'])).toThrow(ArgsError);
    expect(() => parseBenchArgs(['--modle', 'x'])).toThrow(/--modle/);
    expect(() => parseBenchArgs(['--steps', '0'])).toThrow(/--steps needs a whole number/);
    expect(() => parseBenchArgs(['--threads', 'two'])).toThrow(/--threads/);
    expect(() => parseBenchArgs(['stray'])).toThrow(ArgsError);
    expect(() => parseBenchArgs(['--gpu-unfused'])).toThrow(/--gpu-unfused measures WebGPU in the browser: add --browser/);
  });
});

describe('measurements', () => {
  const ctx = { model: 'm', backend: 'wasm', threads: 1, host: 'node' };
  it('a JSON line has every required key first, null where it does not apply', () => {
    const line = jsonLine(measurement('generate', ctx, { tokens_per_s: 100, new_tokens: 8 }));
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(o).slice(0, REQUIRED_KEYS.length)).toEqual([...REQUIRED_KEYS]);
    expect(o).toMatchObject({ name: 'generate', model: 'm', backend: 'wasm', threads: 1, batch: null, mfu: null, tokens_per_s: 100, new_tokens: 8 });
    expect(parseMeasurement(line).name).toBe('generate');
  });
  it('a line from the peer is checked', () => {
    expect(() => parseMeasurement('not json')).toThrow(/not a JSON line/);
    expect(() => parseMeasurement('{"name":"bogus"}')).toThrow(/unknown measurement name/);
    expect(() => parseMeasurement('{"name":"torch_generate","model":"m"}')).toThrow(/lacks backend/);
  });
  it('ratios pair a measurement with its PyTorch twin, raw and at equal peaks', () => {
    const torch = { ...ctx, backend: 'torch-cpu', host: 'torch' };
    const all = [
      measurement('matmul_peak', ctx, { gflops: 40 }),
      measurement('torch_matmul_peak', torch, { gflops: 120 }),
      measurement('train_lora', ctx, { batch: 8, seq: 128, targets: QV_TARGETS, tokens_per_s: 1000, tokens_per_s_cpu: 1200 }),
      measurement('torch_train_lora', torch, { batch: 8, seq: 128, targets: QV_TARGETS, tokens_per_s: 2000, tokens_per_s_cpu: 1600 }),
      measurement('train_lora', ctx, { batch: 8, seq: 128, targets: ALL_LINEAR_TARGETS, tokens_per_s: 500 }),
    ];
    const r = ratios(all);
    expect(r).toHaveLength(1);
    expect(r[0]!.raw).toBeCloseTo(0.5);
    expect(r[0]!.normalised).toBeCloseTo(1.5);
    expect(r[0]!.cpu).toBeCloseTo(0.75);
    expect(formatTable(all)).toContain('0.50x');
  });
  it('the table flags a leak loudly', () => {
    const t = formatTable([measurement('tensors', ctx, { steps: 50, what: 'x', tensors_before: 10, tensors_after: 12, leak: true })]);
    expect(t).toMatch(/LEAK/);
  });
});
