// Path-wise rewinding of an OFT run through the worker (real handler in-process, fake IndexedDB, the bundled
// tabtune-tiny): explore-path measures the path from the base model to the run's checkpoints with the run's
// OFT adapter (Q scaled, halves of the layers rewound) and puts it back; apply-recipe stores a point as a
// branch checkpoint whose `<module>.oft_R` tensors are the recipe's, which generates as the parent at that
// adapter strength.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalMetrics, TrainOutcome } from '../protocol/messages';
import { TabtuneStore, type KeyValueBackend } from '../storage/index';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';
import { layerOf } from '../train/quality/path';

const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';
const CONFIG = { mode: 'oft' as const, oft: { oft_block_size: 16 }, steps: 4, batchSize: 4, saveEvery: 2, evalEvery: 2, seed: 3, warmupSteps: 1, lr: 1e-2, genEvalExamples: 0, probeSamples: 4, probeTokens: 16 };
const PROMPT = 'Write as digits: forty two\nAnswer:';

describe('path-wise rewinding of an OFT run in the worker (tabtune-tiny)', () => {
  let http: { base: string; close(): void };
  let w: InProcessWorker;
  let backend: KeyValueBackend;
  let out: TrainOutcome;
  const evals: EvalMetrics[] = [];

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    backend = freshIdb();
    w = connectInProcess({ store: () => new TabtuneStore(backend) });
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const { datasetId } = await w.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' }, options: { valFraction: 0.2 } });
    out = await w.client.send('train', { datasetId, name: 'oft', config: CONFIG }, { eval: (e) => void evals.push(e) }).result;
  }, 300_000);

  afterAll(() => {
    w?.close();
    http?.close();
  });

  it('explores an OFT run and applies its points as branch checkpoints', { timeout: 300_000 }, async () => {
    expect(out).toMatchObject({ reason: 'done', step: 4 });
    const gen = async (o: { useAdapter?: boolean; adapterStrength?: number } = {}) => (await w.client.request('generate', { prompt: PROMPT, maxNewTokens: 6, temperature: 0, ...o })).tokens;
    const tunedBefore = await gen();

    const r = await w.client.request('explore-path', { runId: out.runId, steps: [2, 4] });
    const ids = r.points.filter((p) => p.recipe).map((p) => p.id);
    expect(ids).toEqual([
      'base',
      'step-2-x0.25',
      'step-2-x0.5',
      'step-2-x0.75',
      'step-2-x1',
      'step-2-first-half-base',
      'step-2-last-half-base',
      'step-4-x0.25',
      'step-4-x0.5',
      'step-4-x0.75',
      'step-4-x1',
      'step-4-first-half-base',
      'step-4-first-half-step-2',
      'step-4-last-half-base',
      'step-4-last-half-step-2',
    ]);
    // The base model forgets nothing; alpha 1 on the final checkpoint measures what training measured.
    const point = (id: string) => r.points.find((p) => p.id === id)!;
    expect(Math.abs(point('base').forgetPct!)).toBeLessThan(1e-3);
    expect(point('step-4-x1').task).toBeCloseTo(evals.find((e) => e.step === 4)!.valLoss, 4);
    expect(point('step-4-x0.5').task).not.toBeCloseTo(point('step-4-x1').task, 4);
    expect(r.recommendation).not.toBeNull();
    // The run's adapter is back as it was: the same tuned generation.
    expect(await gen()).toEqual(tunedBefore);

    const store = new TabtuneStore(backend);
    const parent = { 2: (await store.checkpoints.load(out.runId, 2)).tensors, 4: (await store.checkpoints.load(out.runId, 4)).tensors };
    const oftNames = Object.keys(parent[4]).filter((n) => n.endsWith('.oft_R'));
    expect(oftNames.length).toBeGreaterThan(0);

    // Half the update: every Q halved (the optimizer's moments are the parent's), which generates as the parent at strength 0.5.
    const half = point('step-4-x0.5');
    const applied = await w.client.request('apply-recipe', { runId: out.runId, recipe: half.recipe! });
    expect(applied.run).toMatchObject({ parentRunId: out.runId, recipe: half.recipe, bestValLoss: half.task });
    expect(applied.checkpoint).toMatchObject({ step: 4, pinned: true, valLoss: half.task });
    const halfTensors = (await store.checkpoints.load(applied.run.id, 4)).tensors;
    expect(Object.keys(halfTensors).sort()).toEqual(Object.keys(parent[4]).sort());
    for (const [name, t] of Object.entries(halfTensors)) {
      expect(t.shape).toEqual(parent[4][name]!.shape);
      expect(t.data).toEqual(name.endsWith('.oft_R') ? parent[4][name]!.data.map((x) => x * 0.5) : parent[4][name]!.data);
    }
    await w.client.request('load-adapter', { runId: out.runId, step: 4 });
    const parentAtHalf = await gen({ adapterStrength: 0.5 });
    await w.client.request('load-adapter', { runId: applied.run.id });
    expect(await gen()).toEqual(parentAtHalf);
    const cmp = await w.client.request('compare-heldout', { runId: applied.run.id, step: 4, maxExamples: 4, maxNewTokens: 2 });
    expect(Number.isFinite(cmp.totals.tuned.loss!)).toBe(true);

    // The first half of the layers rewound to step 2: those modules' Q are step 2's, the others step 4's.
    const rewound = point('step-4-first-half-step-2');
    const branch = await w.client.request('apply-recipe', { runId: out.runId, recipe: rewound.recipe! });
    const rewoundTensors = (await store.checkpoints.load(branch.run.id, 4)).tensors;
    const layers = new Set<number>();
    for (const name of oftNames) {
      const layer = layerOf(name)!;
      layers.add(layer);
      expect(rewoundTensors[name]!.data).toEqual(parent[layer < 2 ? 2 : 4][name]!.data);
    }
    expect([...layers].sort()).toEqual([0, 1, 2, 3]);
    expect(parent[2][oftNames[0]!]!.data).not.toEqual(parent[4][oftNames[0]!]!.data);

    // Every layer rewound to the base model: Q = 0, the identity rotation, which generates as the base model.
    const base = await w.client.request('apply-recipe', { runId: out.runId, recipe: { fromStep: 4, alpha: 1, layers: 'all' } });
    const baseTensors = (await store.checkpoints.load(base.run.id, 4)).tensors;
    for (const name of oftNames) expect(baseTensors[name]!.data.every((x) => x === 0)).toBe(true);
    await w.client.request('load-adapter', { runId: base.run.id });
    expect(await gen()).toEqual(await gen({ useAdapter: false }));
  });
});
