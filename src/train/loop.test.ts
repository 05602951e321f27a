import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { LoraAdapter } from '../lora/adapter';
import { setupBackend } from '../model/backend';
import { seededRandom } from '../util/random';
import { buildCausalLM } from '../model/load';
import { tinyConfig, tinyModel, tinyWeights, type TinySpec } from '../testing/tiny-model';
import { maskedCrossEntropy } from './loss';
import { causalLmObjective, collate, Trainer, weighedPositions, type Example } from './loop';
import { PromptTuningAdapter } from '../prompt/adapter';
import { gradDiff, withForwardShapes } from '../testing/forward';
import { AdamW, clipByGlobalNorm } from './optimizer';
import { learningRate } from './schedule';
import { runTraining } from './run-loop';
import { DEFAULT_TRAIN, totalSteps, type TrainConfig } from './config';

/** A toy task on a tiny vocab: "a b c =" -> "c b a" (reverse), prompt masked out of the loss. */
function reverseTask(n: number, seed: number, vocab = 40): Example[] {
  const rand = seededRandom(seed);
  const out: Example[] = [];
  for (let k = 0; k < n; k++) {
    const len = 2 + Math.floor(rand() * 3);
    const xs = Array.from({ length: len }, () => 4 + Math.floor(rand() * (vocab - 4)));
    const seq = [1, ...xs, 3, ...xs.slice().reverse(), 2];
    const input = seq.slice(0, -1);
    const target = seq.slice(1);
    const weight = target.map((_, t) => (t >= len + 1 ? 1 : 0));
    out.push({ input, target, weight });
  }
  return out;
}

const LORA_ALL = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function cfg(over: Partial<TrainConfig>): TrainConfig {
  return { ...DEFAULT_TRAIN, lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: LORA_ALL }, warmupSteps: 2, batchSize: 4, evalEvery: 5, saveEvery: 5, ...over };
}

function makeTrainer(spec: TinySpec, c: TrainConfig, train: Example[], val: Example[] = [], loraSeed = c.seed): Trainer {
  const lm = c.mode === 'full' ? buildCausalLM({ config: tinyConfig(spec), weights: tinyWeights(spec) }, { trainable: true }) : tinyModel(spec);
  const ad = c.mode === 'lora' ? new LoraAdapter(lm, c.lora, { seed: loraSeed }) : null;
  return new Trainer(lm, train, val, c, ad);
}

function disposeTrainer(t: Trainer): void {
  t.dispose();
  t.adapter?.dispose();
  t.lm.dispose();
}

describe('schedules, AdamW and clipping', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('warmup then constant / linear / cosine', () => {
    const base = { lr: 1, warmupSteps: 4, totalSteps: 14 };
    expect(learningRate({ ...base, kind: 'constant' }, 0)).toBeCloseTo(0.25);
    expect(learningRate({ ...base, kind: 'constant' }, 3)).toBeCloseTo(1);
    expect(learningRate({ ...base, kind: 'constant' }, 10)).toBe(1);
    expect(learningRate({ ...base, kind: 'linear' }, 4)).toBeCloseTo(1);
    expect(learningRate({ ...base, kind: 'linear' }, 9)).toBeCloseTo(0.5);
    expect(learningRate({ ...base, kind: 'linear' }, 14)).toBeCloseTo(0);
    expect(learningRate({ ...base, kind: 'cosine' }, 9)).toBeCloseTo(0.5);
    expect(learningRate({ ...base, kind: 'cosine', minRatio: 0.1 }, 14)).toBeCloseTo(0.1);
  });

  for (const where of ['host', 'device'] as const)
  it(`AdamW matches a hand computation (bias correction, decoupled weight decay, a clipping scale), moments ${where === 'host' ? 'in typed arrays' : 'on the device'}`, () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([p], { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 }, where);
    const scales = [1, 0.5];
    const gs = [
      [0.5, -1],
      [0.2, 0.3],
    ];
    // reference in float64
    let w = [1, -2];
    let m = [0, 0];
    let v = [0, 0];
    gs.forEach((g, k) => {
      const t = k + 1;
      const lr = 0.01;
      w = w.map((x) => x * (1 - lr * 0.1));
      const gs_ = g.map((x) => x * scales[k]!);
      m = m.map((x, i) => 0.9 * x + 0.1 * gs_[i]!);
      v = v.map((x, i) => 0.999 * x + 0.001 * gs_[i]! ** 2);
      w = w.map((x, i) => x - (lr * (m[i]! / (1 - 0.9 ** t))) / (Math.sqrt(v[i]! / (1 - 0.999 ** t)) + 1e-8));
      const gt = tf.tensor1d(g);
      opt.apply([gt], lr, scales[k]);
      gt.dispose();
    });
    const got = p.dataSync();
    expect(got[0]).toBeCloseTo(w[0]!, 6);
    expect(got[1]).toBeCloseTo(w[1]!, 6);
    // The state round-trips (a checkpoint) in either place.
    const st = opt.getState();
    expect(st.t).toBe(2);
    expect(st.m[0]![1]).toBeCloseTo(0.9 * 0.1 * -1 + 0.1 * 0.3 * 0.5, 6);
    const other = new AdamW([p], opt.config, where === 'host' ? 'device' : 'host');
    other.setState(st);
    expect(Array.from(other.getState().v[0]!)).toEqual(Array.from(st.v[0]!));
    expect(() => other.setState({ t: 1, m: [new Float32Array(3)], v: [new Float32Array(3)] })).toThrow(/3 values/);
    other.dispose();
    opt.dispose();
    p.dispose();
  });

  it('clips by global norm', () => {
    const g = [tf.tensor1d([3, 0]), tf.tensor1d([0, 4])];
    const { grads, norm } = clipByGlobalNorm(g, 1);
    expect(norm).toBeCloseTo(5);
    const n2 = Math.sqrt(grads.map((x) => tf.sum(tf.square(x)).dataSync()[0]!).reduce((a, b) => a + b));
    expect(n2).toBeCloseTo(1, 4);
    tf.dispose(grads);
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`training loop on ${backend}`, () => {
    beforeAll(async () => {
      await setupBackend(backend);
    });

    it('no tensor leaks: numTensors is flat across 50 steps (with accumulation, eval and checkpoints)', async () => {
      const start = tf.memory().numTensors;
      const t = makeTrainer({ arch: 'llama' }, cfg({ steps: 50, gradAccum: 2 }), reverseTask(24, 1), reverseTask(6, 2));
      t.trainStep();
      t.evaluate();
      const counts: number[] = [];
      await runTraining(t, {}, (e) => void (e.type === 'step' && counts.push(tf.memory().numTensors)));
      expect(counts.length).toBe(49);
      expect(new Set(counts).size).toBe(1);
      disposeTrainer(t);
      // Building and disposing a trainer (model, adapter, optimizer) leaves nothing behind.
      expect(tf.memory().numTensors).toBe(start);
    });

    it('no tensor leaks in full-parameter mode either: flat across steps, nothing left after dispose', async () => {
      const start = tf.memory().numTensors;
      const t = makeTrainer({ arch: 'llama', tied: true }, cfg({ mode: 'full', steps: 12 }), reverseTask(8, 1), reverseTask(4, 2));
      t.trainStep();
      const counts: number[] = [];
      await runTraining(t, {}, (e) => void (e.type === 'step' && counts.push(tf.memory().numTensors)));
      expect(new Set(counts).size).toBe(1);
      disposeTrainer(t);
      expect(tf.memory().numTensors).toBe(start);
    });

    it('overfits a fixed tiny batch to near-zero loss (LoRA)', () => {
      const data = reverseTask(4, 3);
      const t = makeTrainer({ arch: 'llama', hidden: 32, seed: 3 }, cfg({ steps: 150, lr: 2e-2, schedule: 'constant', batchSize: 4, lora: { r: 8, lora_alpha: 16, lora_dropout: 0, target_modules: LORA_ALL } }), data);
      const first = t.trainStep().loss;
      let last = first;
      for (let i = 1; i < 150; i++) last = t.trainStep().loss;
      console.log(`[overfit] ${backend}: LoRA loss ${first.toFixed(3)} -> ${last.toFixed(4)}`);
      expect(first).toBeGreaterThan(2);
      expect(last).toBeLessThan(0.05);
      disposeTrainer(t);
    });

    it('full-parameter mode trains every weight, embeddings included (one-hot gradient)', () => {
      const data = reverseTask(4, 5);
      const t = makeTrainer({ arch: 'llama', seed: 5, tied: true }, cfg({ mode: 'full', steps: 120, lr: 1e-2, schedule: 'constant' }), data);
      const emb0 = t.lm.exportWeights().get('model.embed_tokens.weight')!.data;
      const first = t.trainStep().loss;
      let last = first;
      for (let i = 1; i < 120; i++) last = t.trainStep().loss;
      const emb1 = t.lm.exportWeights().get('model.embed_tokens.weight')!.data;
      console.log(`[overfit] ${backend}: full-parameter loss ${first.toFixed(3)} -> ${last.toFixed(4)}`);
      expect(last).toBeLessThan(0.05);
      expect(emb1.some((x, i) => Math.abs(x - emb0[i]!) > 1e-3)).toBe(true);
      disposeTrainer(t);
    });

    it('resume is exact: N steps + checkpoint + fresh trainer + N steps == 2N steps', async () => {
      const train = reverseTask(20, 7);
      const val = reverseTask(4, 8);
      const c = cfg({ steps: 16, gradAccum: 2, batchSize: 3, lr: 5e-3 });
      const a = makeTrainer({ arch: 'llama', seed: 9 }, c, train, val);
      const lossesA: number[] = [];
      for (let i = 0; i < 16; i++) lossesA.push(a.trainStep().loss);
      const wA = a.checkpoint().tensors;

      const b1 = makeTrainer({ arch: 'llama', seed: 9 }, c, train, val);
      const lossesB: number[] = [];
      for (let i = 0; i < 8; i++) lossesB.push(b1.trainStep().loss);
      const ck = b1.checkpoint();
      disposeTrainer(b1);
      // a different init seed proves the weights come from the checkpoint, not from re-initialisation
      const b2 = makeTrainer({ arch: 'llama', seed: 9 }, c, train, val, 12345);
      b2.restore(ck);
      for (let i = 0; i < 8; i++) lossesB.push(b2.trainStep().loss);
      const wB = b2.checkpoint().tensors;
      const maxLossDiff = Math.max(...lossesA.map((l, i) => Math.abs(l - lossesB[i]!)));
      let maxW = 0;
      for (const k of Object.keys(wA)) wA[k]!.data.forEach((x, i) => (maxW = Math.max(maxW, Math.abs(x - wB[k]!.data[i]!))));
      console.log(`[resume] ${backend}: max loss diff ${maxLossDiff.toExponential(2)}, max weight diff ${maxW.toExponential(2)}`);
      expect(maxLossDiff).toBeLessThanOrEqual(1e-5);
      expect(maxW).toBeLessThanOrEqual(1e-5);
      expect(lossesA[15]).toBeLessThan(lossesA[0]!);
      disposeTrainer(a);
      disposeTrainer(b2);
    });
  });
}

describe('guards and control', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('a non-finite loss skips the step and says so; repeated ones stop the run with the cause', async () => {
    const t = makeTrainer({ arch: 'llama' }, cfg({ steps: 40, lr: 1e30, schedule: 'constant', warmupSteps: 0, maxGradNorm: 0, maxBadSteps: 3 }), reverseTask(8, 1));
    const skipped: string[] = [];
    const saved: number[] = [];
    const out = await runTraining(t, {}, (e) => {
      if (e.type === 'step' && e.metrics.skipped) skipped.push(e.metrics.skipped);
      if (e.type === 'checkpoint') saved.push(e.checkpoint.step);
    });
    expect(out.reason).toBe('failed');
    if (out.reason === 'failed') {
      expect(out.error.code).toBe('NON_FINITE_LOSS');
      expect(out.error.message).toMatch(/non-finite/);
      expect(out.error.hint).toMatch(/learning rate/);
    }
    expect(skipped.length).toBe(3);
    expect(skipped[0]).toMatch(/loss is (NaN|Infinity)|gradient norm/);
    disposeTrainer(t);
  });

  it('pause holds the loop, resume continues, cancel stops it', async () => {
    const t = makeTrainer({ arch: 'llama' }, cfg({ steps: 1000 }), reverseTask(8, 1));
    let paused = false;
    const ctl = new AbortController();
    let steps = 0;
    const beforeStep = async () => {
      while (paused && !ctl.signal.aborted) await new Promise((r) => setTimeout(r, 10));
    };
    const run = runTraining(t, { beforeStep, signal: ctl.signal }, (e) => void (e.type === 'step' && steps++));
    await new Promise((r) => setTimeout(r, 100));
    paused = true;
    await new Promise((r) => setTimeout(r, 100));
    const atPause = steps;
    await new Promise((r) => setTimeout(r, 200));
    expect(steps).toBe(atPause);
    paused = false;
    await new Promise((r) => setTimeout(r, 100));
    expect(steps).toBeGreaterThan(atPause);
    ctl.abort();
    const out = await run;
    expect(out.reason).toBe('cancelled');
    expect(out.step).toBeLessThan(1000);
    disposeTrainer(t);
  });

  it('the loop: fractional epochs run exactly totalSteps(); eval/checkpoint order; extra metrics; a stop rule ends the run with a checkpoint', async () => {
    // 24 examples, batch 8, 1.1 epochs: 3 steps per epoch x 1.1 = 3.3 -> 4 steps (the count the Train panel shows).
    const c = cfg({ steps: 0, epochs: 1.1, batchSize: 8, evalEvery: 2, saveEvery: 3 });
    expect(totalSteps(c, 24)).toBe(4);
    const t = makeTrainer({ arch: 'llama' }, c, reverseTask(24, 1), reverseTask(4, 2));
    expect(t.totalSteps).toBe(4);
    const seen: string[] = [];
    const out = await runTraining(t, { metrics: [{ name: 'probe', measure: async (tr) => ({ values: { probe_step: tr.step + 0.5 } }) }] }, (e) => {
      seen.push(e.type === 'step' ? `s${e.metrics.step}` : e.type === 'eval' ? `e${e.metrics.step}:${e.metrics.extra?.probe_step}` : `c${e.checkpoint.step}`);
    });
    expect(out).toEqual({ reason: 'done', step: 4 });
    expect(seen).toEqual(['s1', 's2', 'e2:2.5', 's3', 'c3', 's4', 'e4:4.5', 'c4']);
    disposeTrainer(t);

    // Early stopping: a rule that fires at the second evaluation ends the run there, with a checkpoint.
    const t2 = makeTrainer({ arch: 'llama' }, cfg({ steps: 20, evalEvery: 2, saveEvery: 100 }), reverseTask(8, 1), reverseTask(4, 2));
    const ck: number[] = [];
    const out2 = await runTraining(t2, { stopRules: [(evals) => (evals.length === 2 ? 'no better in 1 evaluation' : null)] }, (e) => void (e.type === 'checkpoint' && ck.push(e.checkpoint.step)));
    expect(out2).toEqual({ reason: 'done', step: 4, stoppedBy: 'no better in 1 evaluation' });
    expect(ck).toEqual([4]);
    disposeTrainer(t2);
  });

  it('a resumed epoch-based run keeps its planned step count, older checkpoints (rounded to nearest) included', () => {
    const c = cfg({ steps: 0, epochs: 1.1, batchSize: 8 });
    const a = makeTrainer({ arch: 'llama' }, c, reverseTask(24, 1));
    a.trainStep();
    const ck = a.checkpoint();
    expect(ck.state.totalSteps).toBe(4);
    const b = makeTrainer({ arch: 'llama' }, c, reverseTask(24, 1));
    b.restore(ck);
    expect(b.totalSteps).toBe(4);
    // A checkpoint from before the count was recorded: that version ran round(3 x 1.1) = 3 steps.
    const legacy = makeTrainer({ arch: 'llama' }, c, reverseTask(24, 1));
    legacy.restore({ ...ck, state: { ...ck.state, totalSteps: undefined } });
    expect(legacy.totalSteps).toBe(3);
    for (const t of [a, b, legacy]) disposeTrainer(t);
  });

  it('the loop: untilStep and shouldStop stop resumably with a checkpoint at that step', async () => {
    const t = makeTrainer({ arch: 'llama' }, cfg({ steps: 10, saveEvery: 100 }), reverseTask(8, 1));
    const ck: number[] = [];
    const out = await runTraining(t, { untilStep: 3 }, (e) => void (e.type === 'checkpoint' && ck.push(e.checkpoint.step)));
    expect(out).toEqual({ reason: 'stopped', step: 3 });
    let n = 0;
    const out2 = await runTraining(t, { shouldStop: () => ++n >= 2 }, (e) => void (e.type === 'checkpoint' && ck.push(e.checkpoint.step)));
    expect(out2).toEqual({ reason: 'stopped', step: 5 });
    const out3 = await runTraining(t, {}, (e) => void (e.type === 'checkpoint' && ck.push(e.checkpoint.step)));
    expect(out3).toEqual({ reason: 'done', step: 10 });
    expect(ck).toEqual([3, 5, 10]);
    disposeTrainer(t);
  });

  it('full-parameter gradients (embedding via one-hot, tied head) equal finite differences', () => {
    const spec: TinySpec = { arch: 'gpt2', seed: 4, std: 0.3 };
    const lm = buildCausalLM({ config: tinyConfig(spec), weights: tinyWeights(spec) }, { trainable: true });
    const ex = reverseTask(2, 4);
    const c = { ids: ex.map((e) => e.input.slice(0, 6)), tg: ex.map((e) => e.target.slice(0, 6)), w: ex.map(() => [1, 1, 1, 1, 1, 1]) };
    const vars = lm.trainableVariables();
    const lossFn = () => maskedCrossEntropy(lm.forward(c.ids), c.tg, c.w);
    const { grads } = tf.variableGrads(lossFn, vars);
    const loss = () => tf.tidy(() => lossFn().dataSync()[0]!);
    let worst = 0;
    for (const v of vars.filter((x) => x.shape.length === 2).slice(0, 6)) {
      const g = grads[v.name]!.dataSync();
      let j = 0;
      for (let k = 1; k < g.length; k++) if (Math.abs(g[k]!) > Math.abs(g[j]!)) j = k;
      const orig = v.dataSync().slice();
      const at = (h: number) => {
        const d = orig.slice();
        d[j] = d[j]! + h;
        v.assign(tf.tensor(d, v.shape));
        const l = loss();
        v.assign(tf.tensor(orig, v.shape));
        return l;
      };
      const central = (h: number) => (at(h) - at(-h)) / (2 * h);
      const fd = (4 * central(1e-2) - central(2e-2)) / 3;
      worst = Math.max(worst, Math.abs(fd - g[j]!) / Math.abs(g[j]!));
    }
    console.log(`[gradcheck] full-parameter gpt2 (wte, wpe, c_attn...): worst rel err ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-3);
    tf.dispose(Object.values(grads));
    lm.dispose();
  });
});

describe('logits only where the loss looks (logitRanges)', () => {
  beforeAll(async () => {
    await setupBackend('wasm');
  });

  it('weighedPositions: from the first to the last weighed position of each row; null when nothing is left out', () => {
    expect(weighedPositions([[0, 0, 1, 1, 0], [0, 1, 0, 1, 0]])).toEqual({ ranges: [[2, 4], [1, 4]] });
    expect(weighedPositions([[1, 1], [0, 0]])).toEqual({ ranges: [[0, 2], [0, 0]] });
    expect(weighedPositions([[1, 0, 1], [1, 1, 1]])).toBeNull();
    expect(weighedPositions([[0, 0]])).toBeNull(); // no weight: maskedCrossEntropy says so
  });

  // The same loss and the same gradients as logits everywhere, on both architectures, on LoRA and on prompt
  // tuning (whose virtual tokens come before the ranges), with activation recomputation too.
  for (const [arch, method, recompute] of [
    ['llama', 'lora', false],
    ['llama', 'lora', true],
    ['gpt2', 'lora', false],
    ['llama', 'prompt', false],
  ] as const) {
    it(`${arch}, ${method}${recompute ? ', recomputed' : ''}: loss and gradients equal the full logits'`, () => {
      const spec: TinySpec = { arch, seed: 6, std: 0.3 };
      const lm = tinyModel(spec);
      const ad =
        method === 'lora'
          ? new LoraAdapter(lm, { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: arch === 'llama' ? LORA_ALL : ['c_attn', 'c_proj', 'c_fc'] }, { seed: 2 })
          : new PromptTuningAdapter(lm, { num_virtual_tokens: 3, prompt_tuning_init: 'RANDOM', prompt_tuning_init_text: '' }, { seed: 2 });
      ad.variables().forEach((v, i) => v.assign(tf.randomNormal(v.shape, 0, 0.2, 'float32', 30 + i)));
      const batch = reverseTask(3, 7); // prompts masked, rows of different lengths (padding)
      const b = collate(batch);
      expect(weighedPositions(b.weight)).not.toBeNull();
      const vars = ad.variables();
      const full = tf.variableGrads(() => maskedCrossEntropy(lm.forward(b.ids, { mask: b.mask, recompute }), b.target, b.weight), vars);
      // The objective's forward really returns the weighed positions' logits alone.
      const { result: cut, shapes } = withForwardShapes(lm, () => tf.variableGrads(() => causalLmObjective.loss(lm, batch, undefined, { recompute }), vars));
      const kept = weighedPositions(b.weight)!.ranges.reduce((n, [s, e]) => n + e - s, 0);
      expect(kept).toBeLessThan(b.ids.length * b.ids[0]!.length);
      expect(shapes).toEqual([[1, kept, lm.config.vocab_size]]);
      expect(cut.value.dataSync()[0]).toBeCloseTo(full.value.dataSync()[0]!, 5);
      const { worst, largest } = gradDiff(full.grads, cut.grads);
      expect(largest).toBeGreaterThan(1e-3);
      expect(worst).toBeLessThan(1e-5);
      tf.dispose([full.value, cut.value, ...Object.values(full.grads), ...Object.values(cut.grads)]);
      ad.dispose();
      lm.dispose();
    });
  }
});
