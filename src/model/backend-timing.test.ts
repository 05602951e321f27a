// Backend timing: the engine part with fake sessions (what the pick follows, the budget, skips, failures,
// disposal) and for real in Node with the cpu and wasm backends as the two candidates, on tabtune-tiny:
// both timed with the app's LoRA step, every tensor freed, back on the backend it started on.
// No wall-clock assertions: only structure, and the pick against given (fake) figures.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../io/load-model';
import { directorySource } from '../node/fs-source';
import { TINY_DIR } from '../testing/models';
import { openTimingStep, timingBatch, timingExamples } from '../train/backend-step';
import { setupBackend, switchBackend, type BackendName } from './backend';
import { interrupted, pickFaster, timeBackends, TimingInterrupted, timingKey, timingReasons, type BackendTiming, type TimingSession } from './backend-timing';
import { rebuildLanguageModel, type LanguageModel } from './load';

/** A clock the fake steps advance: each step "takes" its backend's ms per step. */
function fakeClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

function fakeOpen(clock: ReturnType<typeof fakeClock>, msPerStep: Partial<Record<BackendName, number>>, log: string[]) {
  return async (b: BackendName): Promise<TimingSession> => {
    log.push(`open ${b}`);
    if (msPerStep[b] === undefined) throw new Error(`${b} is broken`);
    return {
      async step() {
        clock.advance(msPerStep[b]!);
        return 64;
      },
      dispose: () => void log.push(`dispose ${b}`),
    };
  };
}

const measured = (backend: BackendName, tokensPerS: number): BackendTiming => ({
  backend,
  status: 'measured',
  tokensPerS,
  slowerThan: null,
  note: '',
  steps: 1,
  tokens: 64,
  ms: 1,
  loadMs: 0,
  warmupMs: 0,
});

describe('timeBackends with fake sessions', () => {
  it('times every candidate after a warm-up step, within the budget, and disposes each session', async () => {
    const clock = fakeClock();
    const log: string[] = [];
    const progress: Array<string | null> = [];
    const rows = await timeBackends([{ backend: 'webgpu' }, { backend: 'wasm' }], fakeOpen(clock, { webgpu: 100, wasm: 400 }, log), {
      now: clock.now,
      budgetMs: 1000,
      maxSteps: 3,
      onProgress: (p) => void progress.push(p.measuring),
    });
    expect(log).toEqual(['open webgpu', 'dispose webgpu', 'open wasm', 'dispose wasm']);
    expect(progress).toEqual(['webgpu', 'wasm', null]);
    expect(rows.map((r) => [r.backend, r.status, r.steps, r.tokens, r.ms, r.warmupMs])).toEqual([
      ['webgpu', 'measured', 3, 192, 300, 100], // maxSteps reached
      ['wasm', 'measured', 3, 192, 1200, 400], // the third step started within the budget
    ]);
    expect(rows[0]!.tokensPerS).toBeCloseTo(640, 9);
    expect(rows[1]!.tokensPerS).toBeCloseTo(160, 9);
    expect(rows[0]!.note).toBe('640 tokens/s (3 steps of 64 tokens)');
    expect(pickFaster(rows)).toBe('webgpu');
  });

  it('the pick follows the measured numbers, never a stopped, skipped or failed row', () => {
    expect(pickFaster([measured('webgpu', 10), measured('wasm', 200)])).toBe('wasm');
    expect(pickFaster([measured('webgpu', 2000), measured('wasm', 200)])).toBe('webgpu');
    expect(pickFaster([measured('webgpu', 200), measured('wasm', 200)])).toBe('webgpu'); // a tie: the earlier row
    const stopped: BackendTiming = { ...measured('webgpu', 0), status: 'stopped', tokensPerS: null, slowerThan: 5000 };
    expect(pickFaster([stopped, measured('wasm', 200)])).toBe('wasm');
    expect(pickFaster([{ ...measured('webgpu', 0), status: 'skipped', tokensPerS: null }])).toBeNull();
    expect(timingReasons([measured('webgpu', 12.34), measured('wasm', 240)], 'wasm')).toEqual(['WebGPU: measured 12.3 tokens/s training this model, WASM 240; using WASM']);
    expect(timingReasons([stopped, measured('wasm', 240)], 'wasm')).toEqual(['WebGPU: slower than 5,000 tokens/s training this model, WASM 240; using WASM']);
  });

  it('skips without opening, reports a failed load, and stops measuring when asked', async () => {
    const clock = fakeClock();
    const log: string[] = [];
    let stop: string | null = null;
    const rows = await timeBackends(
      [{ backend: 'webgpu', skip: 'software adapter (SwiftShader)' }, { backend: 'cpu' }, { backend: 'wasm' }],
      async (b) => {
        const s = await fakeOpen(clock, { wasm: 10 }, log)(b);
        return s;
      },
      { now: clock.now, shouldStop: () => stop },
    ).then(async (first) => {
      stop = 'a training run started';
      const second = await timeBackends([{ backend: 'wasm' }], fakeOpen(clock, { wasm: 10 }, log), { now: clock.now, shouldStop: () => stop });
      return [...first, ...second];
    });
    expect(rows.map((r) => [r.backend, r.status, r.note])).toEqual([
      ['webgpu', 'skipped', 'skipped: software adapter (SwiftShader)'],
      ['cpu', 'failed', 'failed to load the model there: cpu is broken'],
      ['wasm', 'measured', expect.stringMatching(/tokens\/s/)],
      ['wasm', 'skipped', 'not measured: a training run started'],
    ]);
    expect(log).toEqual(['open cpu', 'open wasm', 'dispose wasm']);
    expect(interrupted(rows)).toBe(true);
    expect(interrupted(rows.slice(0, 3))).toBe(false);
    // open() itself may say the measurement should not go on.
    const cut = await timeBackends([{ backend: 'wasm' }], async () => {
      throw new TimingInterrupted('another model was loaded');
    });
    expect(cut.map((r) => [r.status, r.note])).toEqual([['skipped', 'not measured: another model was loaded']]);
  });

  it('a step still running when the budget runs out stops the backend with an upper bound, and is awaited before disposal', async () => {
    const log: string[] = [];
    let calls = 0;
    const rows = await timeBackends(
      [{ backend: 'webgpu' }],
      async () => ({
        step: () => {
          calls++;
          // The warm-up finishes at once; the timed step takes longer than the 50 ms budget.
          return calls === 1 ? Promise.resolve(32) : new Promise<number>((r) => setTimeout(() => (log.push('step done'), r(32)), 120));
        },
        dispose: () => void log.push('dispose'),
      }),
      { budgetMs: 50 },
    );
    expect(rows[0]).toMatchObject({ backend: 'webgpu', status: 'stopped', tokensPerS: null, steps: 0 });
    expect(rows[0]!.slowerThan).toBeGreaterThan(0);
    expect(rows[0]!.note).toMatch(/^slower than [\d.,]+ tokens\/s, stopped after [\d.]+ s$/);
    expect(log).toEqual(['step done', 'dispose']);
    expect(pickFaster(rows)).toBeNull();
  });

  it('a warm-up step over its limit stops the backend, and a failing step is reported', async () => {
    const rows = await timeBackends([{ backend: 'webgpu' }, { backend: 'wasm' }], async (b) => ({
      step: () => (b === 'webgpu' ? new Promise<number>((r) => setTimeout(() => r(32), 80)) : Promise.reject(new Error('out of memory'))),
      dispose: () => undefined,
    }), { warmupLimitMs: 20 });
    expect(rows.map((r) => [r.status, r.note.replace(/[\d.]+ s/, 'N s')])).toEqual([
      ['stopped', 'stopped after N s: its warm-up step (kernel compilation) had not finished'],
      ['failed', 'the training step failed: out of memory'],
    ]);
  });

  it("a candidate's own warm-up limit replaces the default (a software GPU compiles for longer)", async () => {
    let calls = 0;
    const rows = await timeBackends([{ backend: 'webgpu', warmupLimitMs: 500 }], async () => ({
      step: () => (++calls === 1 ? new Promise<number>((r) => setTimeout(() => r(32), 60)) : Promise.resolve(32)),
      dispose: () => undefined,
    }), { warmupLimitMs: 20, maxSteps: 1 });
    expect(rows[0]).toMatchObject({ status: 'measured', steps: 1, tokens: 32 });
  });

  it('refuses a budget that is not positive', async () => {
    await expect(timeBackends([], async () => ({ step: async () => 1, dispose() {} }), { budgetMs: 0 })).rejects.toThrow(/budgetMs/);
  });

  it('keys the cache by the model fingerprint and the device', () => {
    const model = { name: 'tabtune-base', arch: 'llama', numParams: 3_100_000, layers: 6, hiddenSize: 192, vocabSize: 4096 };
    const device = { adapter: 'google swiftshader', wasmThreads: 2, cores: 2, userAgent: 'Mozilla/5.0 Chrome/131' };
    const key = timingKey(model, device);
    expect(key).toBe('tabtune-base|llama|3100000p|6x192|v4096||google swiftshader|wasm-threads=2|cores=2|Mozilla/5.0 Chrome/131');
    expect(timingKey({ ...model, numParams: 3_100_001 }, device)).not.toBe(key);
    expect(timingKey(model, { ...device, wasmThreads: 1 })).not.toBe(key);
    expect(timingKey(model, { ...device, adapter: '' })).toContain('no-adapter');
    expect(timingKey(model, { ...device, userAgent: 'Firefox' })).not.toBe(key);
  });
});

describe('timeBackends in Node: cpu and wasm on tabtune-tiny', () => {
  let model: LanguageModel;
  beforeAll(async () => {
    await setupBackend('wasm');
    model = await loadModel(directorySource(TINY_DIR));
  });
  afterAll(() => model?.dispose());

  it('the fixed batch fits the model and trains every position', () => {
    expect(timingBatch(model)).toEqual({ windows: 1, seq: 64 });
    expect(timingBatch(model, { windows: 2, seq: 4096 })).toEqual({ windows: 2, seq: 256 }); // the context
    expect(() => timingBatch(model, { windows: 0, seq: 64 })).toThrow(/windows/);
    const ex = timingExamples(4096, { windows: 2, seq: 32 });
    expect(ex.map((e) => [e.input.length, e.target.length, e.weight.every((w) => w === 1)])).toEqual([[32, 32, true], [32, 32, true]]);
    expect(ex[0]!.target.slice(0, -1)).toEqual(ex[0]!.input.slice(1));
    expect(ex[0]!.input.every((t) => t >= 0 && t < 4096)).toBe(true);
  });

  it('times both with a real LoRA step, frees every tensor and comes back to wasm', async () => {
    const weights = model.lm.exportWeights();
    const tensors = tf.memory().numTensors;
    const opened: string[] = [];
    const open = async (b: BackendName): Promise<TimingSession> => {
      opened.push(b);
      // The loaded model lives on wasm; another backend gets its own copy of the weights.
      if (b === 'wasm') return openTimingStep(model, { windows: 1, seq: 16 });
      await switchBackend(b);
      const there = rebuildLanguageModel(model, weights);
      return openTimingStep(there, { windows: 1, seq: 16 }, () => {
        there.dispose();
        void switchBackend('wasm');
      });
    };
    const rows = await timeBackends([{ backend: 'wasm' }, { backend: 'cpu' }], open, { budgetMs: 400, maxSteps: 2 });
    await switchBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(opened).toEqual(['wasm', 'cpu']);
    for (const r of rows) {
      expect(r.status, r.note).toBe('measured');
      expect(r.steps).toBeGreaterThanOrEqual(1);
      expect(r.tokens).toBe(16 * r.steps);
      expect(r.tokensPerS).toBeGreaterThan(0);
      expect(r.warmupMs).toBeGreaterThan(0);
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(['wasm', 'cpu']).toContain(pickFaster(rows));
    // The model still works where it was.
    const logits = model.lm.forward([[1, 2, 3]]);
    expect(logits.shape).toEqual([1, 3, 4096]);
    logits.dispose();
  });
});
