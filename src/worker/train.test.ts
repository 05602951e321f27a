// Training through the worker protocol in Node: the real client and handler over a MessageChannel,
// IndexedDB from fake-indexeddb, the bundled tabtune-tiny model served over HTTP. A "reload" is a new
// handler on the same database.
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, type WorkerClient } from '../protocol/client';
import type { CheckpointInfo, EvalMetrics, PauseResult, RunJob, RunSummary, StepMetrics, TrainOutcome, TrainStart } from '../protocol/messages';
import { SafetensorsFile } from '../io/safetensors';
import { unzipFiles } from '../io/zip';
import { TabtuneStore, type KeyValueBackend } from '../storage/index';
import { freshIdb, QuotaBackend } from '../testing/storage';
import { BUNDLED_EOS, REPO_ROOT, TINY_DIR } from '../testing/models';
import { connectInProcess, serveFolder, type InProcessWorker } from '../testing/worker';
import { maxTensorMapDiff } from '../testing/tensors';

const N = 3;
const CONFIG = { steps: 2 * N, batchSize: 2, saveEvery: N, evalEvery: N, seed: 3, warmupSteps: 2 };
const TOL = 1e-5;
/** A tiny slice of the example dataset: 40 records (36 train, 4 validation). */
const DATA = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').split('\n').slice(0, 40).join('\n') + '\n';

interface Collected {
  run: TrainStart | null;
  metrics: StepMetrics[];
  evals: EvalMetrics[];
  checkpoints: (CheckpointInfo & { deletedSteps: number[] })[];
}

function collector(onMetrics?: (m: StepMetrics) => void, onCheckpoint?: (c: CheckpointInfo) => void) {
  const c: Collected = { run: null, metrics: [], evals: [], checkpoints: [] };
  return {
    c,
    on: {
      run: (r: TrainStart) => void (c.run = r),
      metrics: (m: StepMetrics) => (c.metrics.push(m), onMetrics?.(m)),
      eval: (e: EvalMetrics) => void c.evals.push(e),
      checkpoint: (k: CheckpointInfo & { deletedSteps: number[] }) => (c.checkpoints.push(k), onCheckpoint?.(k)),
    },
  };
}

function adapterTensors(zip: Uint8Array): Map<string, Float32Array> {
  const files = unzipFiles(zip);
  const st = new SafetensorsFile(files.get('adapter_model.safetensors')!);
  return new Map(st.names().map((n) => [n, st.getFloat32(n)]));
}

const lossesOf = (ms: StepMetrics[]) => new Map(ms.map((m) => [m.step, m.loss]));

describe('training through the worker (Node, fake IndexedDB)', () => {
  let http: { base: string; close(): void };
  const open: InProcessWorker[] = [];

  /** A "page load": a new handler on `backend`, with the model loaded. */
  async function boot(backend: KeyValueBackend, opts: { staleAfterMs?: number } = {}): Promise<{ w: InProcessWorker; client: WorkerClient }> {
    const w = connectInProcess({ store: () => new TabtuneStore(backend), ...opts });
    open.push(w);
    await w.client.request('init-backend', { preference: 'wasm' });
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    return { w, client: w.client };
  }

  async function inspect(client: WorkerClient): Promise<string> {
    const r = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } });
    return r.datasetId;
  }

  let reference: { result: TrainOutcome; losses: Map<number, number>; evals: EvalMetrics[]; adapter: Map<string, Float32Array>; runId: string; backend: KeyValueBackend };

  beforeAll(async () => {
    http = await serveFolder(TINY_DIR);
    // The reference: 2N steps without interruption.
    const backend = freshIdb();
    const { client } = await boot(backend);
    const datasetId = await inspect(client);
    const { c, on } = collector();
    const result = await client.request('train', { datasetId, name: 'reference', config: CONFIG }, on);
    const zip = await client.request('export', { kind: 'peft', runId: result.runId });
    reference = { result, losses: lossesOf(c.metrics), evals: c.evals, adapter: adapterTensors(zip.bytes), runId: result.runId, backend };
  });

  afterAll(() => {
    for (const w of open) w.close();
    http?.close();
  });

  it('inspects a dataset, stores it, and trains a run with metrics, evaluations and checkpoints', async () => {
    const { client } = await boot(freshIdb());
    const progress: number[] = [];
    const r = await client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' } }, { 'data-progress': (p) => progress.push(p.fraction) });
    expect(r.stored).toBe(true);
    expect(r.storageError).toBeNull();
    expect(r.datasetId).not.toMatch(/^mem-/);
    expect(r.report).toMatchObject({ format: 'prompt-completion-jsonl', total: 40, records: 40, split: { train: 36, val: 4 } });
    expect(r.report.stop?.stopTokenId).toBe(BUNDLED_EOS); // tabtune's models end text with EOS
    expect(progress.length).toBeGreaterThan(0);

    const { c, on } = collector();
    const out = await client.request('train', { datasetId: r.datasetId, name: 'first', config: CONFIG }, on);
    expect(out).toMatchObject({ name: 'first', reason: 'done', step: 2 * N, totalSteps: 2 * N, resumedFrom: null });
    expect(c.run).toMatchObject({ runId: out.runId, startStep: 0, totalSteps: 2 * N, trainExamples: 36, valExamples: 4, backend: 'wasm' });
    expect(c.run!.trainableParams).toBeGreaterThan(0);
    expect(c.metrics.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(c.metrics.every((m) => Number.isFinite(m.loss) && m.tokens > 0 && m.tokensPerSec > 0)).toBe(true);
    expect(c.evals.map((e) => e.step)).toEqual([N, 2 * N]);
    expect(c.checkpoints.map((k) => k.step)).toEqual([N, 2 * N]);
    expect(out.finalTrainLoss).toBe(c.metrics.at(-1)!.loss);
    expect(out.finalValLoss).toBe(c.evals.at(-1)!.valLoss);
    expect(out.checkpoint?.step).toBe(2 * N);
    expect(out.tokensPerSecond).toBeGreaterThan(0);
    // Same config, same data: the same numbers as the reference run on another database.
    expect(maxTensorMapDiff(adapterTensors((await client.request('export', { kind: 'peft' })).bytes), reference.adapter)).toBe(0);

    const { runs } = await client.request('list-runs', {});
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: out.runId, name: 'first', status: 'finished', active: false, checkpointCount: 2, latestCheckpoint: { step: 2 * N } });
    expect(runs[0]!.job?.data.options.stop).toEqual({ stopTokenId: BUNDLED_EOS, stopStrings: [] });
    expect(runs[0]!.metricsCount).toBe(2 * N + 2); // steps and evaluations, stored with the checkpoints

    // Metrics as CSV: one row per step, evaluations merged in.
    const csv = await client.request('export', { kind: 'metrics-csv', runId: out.runId });
    expect(csv.mimeType).toBe('text/csv');
    const lines = new TextDecoder().decode(csv.bytes).trim().split('\n');
    const header = lines[0]!.split(',');
    expect(header.slice(0, 11).join(',')).toBe('step,epoch,loss,smooth_loss,lr,grad_norm,tokens,tokens_per_sec,val_loss,val_ppl,skipped');
    // Then what each evaluation measured besides the loss (generated answers, forgetting probe, cost), sorted.
    expect(header.slice(11)).toEqual(expect.arrayContaining(['exact_match', 'token_f1', 'probe_nll', 'probe_nll_delta_pct', 'cka_mean', 'elapsed_s', 'train_tokens']));
    expect(lines).toHaveLength(2 * N + 1);
    expect(Number(lines[N]!.split(',')[8])).toBeCloseTo(c.evals[0]!.valLoss, 6);
  });

  it(`resumes exactly after a reload: N steps + reload + N steps = 2N steps (losses within ${TOL}, same adapter)`, async () => {
    const backend = freshIdb();
    const first = await boot(backend);
    const datasetId = await inspect(first.client);
    const a = collector();
    const part1 = await first.client.request('train', { datasetId, name: 'interrupted', config: CONFIG, untilStep: N }, a.on);
    expect(part1).toMatchObject({ reason: 'stopped', step: N, totalSteps: 2 * N, checkpoint: { step: N } });
    first.w.close();

    // The reload: a new worker, the same IndexedDB; no file given again.
    const second = await boot(backend);
    const { runs } = await second.client.request('list-runs', {});
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ id: part1.runId, status: 'paused', latestCheckpoint: { step: N }, active: false });
    const b = collector();
    const part2 = await second.client.request('resume-run', { runId: part1.runId }, b.on);
    expect(part2).toMatchObject({ runId: part1.runId, reason: 'done', step: 2 * N, resumedFrom: { runId: part1.runId, step: N } });
    expect(b.c.run).toMatchObject({ startStep: N, resumedFrom: { runId: part1.runId, step: N } });
    expect(b.c.metrics.map((m) => m.step)).toEqual([4, 5, 6]);

    const losses = lossesOf([...a.c.metrics, ...b.c.metrics]);
    const diffs = [...reference.losses].map(([step, l]) => Math.abs(losses.get(step)! - l));
    console.log(`[node wasm] resume loss diffs per step: ${diffs.map((d) => d.toExponential(1)).join(' ')}`);
    expect(Math.max(...diffs)).toBeLessThanOrEqual(TOL);
    expect(Math.abs(b.c.evals.at(-1)!.valLoss - reference.evals.at(-1)!.valLoss)).toBeLessThanOrEqual(TOL);
    const adapterDiff = maxTensorMapDiff(adapterTensors((await second.client.request('export', { kind: 'peft', runId: part1.runId })).bytes), reference.adapter);
    console.log(`[node wasm] resume adapter max |diff| = ${adapterDiff}`);
    expect(adapterDiff).toBeLessThanOrEqual(TOL);

    // Stored metrics cover the whole run once.
    const after = (await second.client.request('list-runs', {})).runs[0]!;
    expect(after).toMatchObject({ status: 'finished', metricsCount: 2 * N + 2, latestCheckpoint: { step: 2 * N } });
  });

  it('after a reload, a new run on a stored dataset reads it with the options it was inspected with', async () => {
    const backend = freshIdb();
    const first = await boot(backend);
    const r = await first.client.request('inspect-data', { source: { kind: 'text', text: DATA, name: 'numbers.jsonl' }, options: { valFraction: 0.25, seed: 7 } });
    expect(r.report.split).toMatchObject({ train: 30, val: 10 });
    const a = collector();
    await first.client.request('train', { datasetId: r.datasetId, config: CONFIG, untilStep: 1 }, a.on);
    first.w.close();
    const second = await boot(backend);
    const b = collector();
    await second.client.request('train', { datasetId: r.datasetId, config: CONFIG, untilStep: 1 }, b.on);
    expect(b.c.run).toMatchObject({ trainExamples: 30, valExamples: 10 });
    expect(b.c.metrics[0]!.loss).toBe(a.c.metrics[0]!.loss);
  });

  it('rewinds: resuming from an older checkpoint trains a branch that repeats the original', async () => {
    const { client } = await boot(reference.backend);
    const b = collector();
    const out = await client.request('resume-run', { runId: reference.runId, step: N, name: 'branch' }, b.on);
    expect(out.runId).not.toBe(reference.runId);
    expect(out).toMatchObject({ name: 'branch', reason: 'done', step: 2 * N, resumedFrom: { runId: reference.runId, step: N } });
    for (const m of b.c.metrics) expect(Math.abs(m.loss - reference.losses.get(m.step)!)).toBeLessThanOrEqual(TOL);
    const runs = (await client.request('list-runs', {})).runs;
    const branch = runs.find((r) => r.id === out.runId)!;
    expect(branch).toMatchObject({ parentRunId: reference.runId, parentCheckpointStep: N, status: 'finished', latestCheckpoint: { step: 2 * N } });
    // The branch's metrics start with the parent's up to the branch point.
    const csv = new TextDecoder().decode((await client.request('export', { kind: 'metrics-csv', runId: out.runId })).bytes).trim().split('\n');
    expect(csv.slice(1).map((l) => Number(l.split(',')[0]))).toEqual([1, 2, 3, 4, 5, 6]);
    // The original run is untouched.
    expect(runs.find((r) => r.id === reference.runId)).toMatchObject({ status: 'finished', latestCheckpoint: { step: 2 * N } });
  });

  it('pauses between steps (saving a checkpoint), keeps answering, and resumes to the same losses', async () => {
    const { client } = await boot(freshIdb());
    const datasetId = await inspect(client);
    let pauseSent = null as Promise<PauseResult> | null;
    const seenWhilePaused: number[] = [];
    const col = collector((m) => {
      if (m.step === 2) pauseSent ??= client.request('pause', {});
    });
    const handle = client.send('train', { datasetId, config: CONFIG }, col.on);
    await expect.poll(() => pauseSent !== null, { timeout: 60_000 }).toBe(true);
    const paused = await pauseSent!;
    expect(paused.paused).toBe(true);
    expect(paused.step).toBeGreaterThanOrEqual(2);
    expect(paused.checkpoint?.step).toBe(paused.step);

    const stepsAtPause = col.c.metrics.length;
    // While paused: the worker answers, the run shows as paused, and the tuned model can be tried.
    expect((await client.request('get-backend', {})).backend).toBe('wasm');
    const run = (await client.request('list-runs', {})).runs[0]!;
    expect(run).toMatchObject({ status: 'paused', active: true, latestCheckpoint: { step: paused.step } });
    const tuned = await client.request('generate', { prompt: 'Write as digits: five\nAnswer:', maxNewTokens: 6, temperature: 0 });
    expect(tuned.adapter).toEqual({ runId: run.id, step: paused.step, strength: 1 });
    const base = await client.request('generate', { prompt: 'Write as digits: five\nAnswer:', maxNewTokens: 6, temperature: 0, useAdapter: false });
    expect(base.adapter).toBeNull();
    await new Promise((r) => setTimeout(r, 300));
    seenWhilePaused.push(col.c.metrics.length - stepsAtPause);
    expect(seenWhilePaused).toEqual([0]);

    expect(await client.request('resume-train', {})).toMatchObject({ resumed: true, step: paused.step });
    const out = await handle.result;
    expect(out).toMatchObject({ reason: 'done', step: 2 * N });
    // A pause (and generations in it) does not change what the run computes.
    for (const m of col.c.metrics) expect(Math.abs(m.loss - reference.losses.get(m.step)!)).toBeLessThanOrEqual(TOL);
    expect(col.c.checkpoints.map((k) => k.step)).toEqual([...new Set([paused.step!, N, 2 * N])].sort((a, b) => a - b));
  });

  it('answers get-backend and list-runs while it trains, between steps', async () => {
    const { client } = await boot(freshIdb());
    const datasetId = await inspect(client);
    const latencies: number[] = [];
    let settled = false;
    const col = collector();
    const handle = client.send('train', { datasetId, config: { ...CONFIG, steps: 40, saveEvery: 20, evalEvery: 20 } }, col.on);
    void handle.result.then(() => (settled = true));
    await expect.poll(() => col.c.metrics.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const b = await client.request('get-backend', {});
      latencies.push(performance.now() - t0);
      expect(b.backend).toBe('wasm');
    }
    const runs = await client.request('list-runs', {});
    expect(runs.runs[0]).toMatchObject({ status: 'running', active: true });
    const stepsWhenAnswered = col.c.metrics.length;
    expect(settled).toBe(false);
    const out = await handle.result;
    console.log(`[node wasm] get-backend while training: ${latencies.map((l) => l.toFixed(0)).join(', ')} ms (answered at step ${stepsWhenAnswered} of 40)`);
    expect(stepsWhenAnswered).toBeLessThan(40);
    expect(out.reason).toBe('done');
  });

  it('refuses a second run while one trains (BUSY), and cancel stops it with a checkpoint', async () => {
    const { client } = await boot(freshIdb());
    const datasetId = await inspect(client);
    const col = collector();
    const handle = client.send('train', { datasetId, config: { ...CONFIG, steps: 30 } }, col.on);
    await expect.poll(() => col.c.metrics.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(1);
    // The busy check comes before the cancel (cancelling first would let the second run start).
    const busy = await client.request('train', { datasetId, config: CONFIG }).catch((e) => e);
    expect(busy).toBeInstanceOf(RequestError);
    expect(busy.code).toBe('BUSY');
    expect(busy.hint).toMatch(/one run/i);
    await expect.poll(() => col.c.metrics.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    const cancelSent = client.cancel(handle.id);
    const out = await handle.result;
    expect(await cancelSent).toBe(true);
    expect(out.reason).toBe('cancelled');
    expect(out.step).toBeGreaterThanOrEqual(2);
    expect(out.step).toBeLessThan(30);
    expect(out.checkpoint?.step).toBe(out.step);
    const run = (await client.request('list-runs', {})).runs[0]!;
    // Cancelled, not paused (issue 18 #5): nothing waits to resume it; its checkpoint stays.
    expect(run).toMatchObject({ status: 'cancelled', active: false, latestCheckpoint: { step: out.step } });
    expect(await client.cancel(handle.id)).toBe(false);
  });

  it('cancels a run that is still being set up, before its first step', async () => {
    const { client } = await boot(freshIdb());
    const datasetId = await inspect(client);
    const col = collector();
    const handle = client.send('train', { datasetId, config: CONFIG }, col.on);
    expect(await client.cancel(handle.id)).toBe(true);
    const out = await handle.result;
    expect(out).toMatchObject({ reason: 'cancelled', step: 0, checkpoint: null });
    expect(col.c.metrics).toEqual([]);
    expect((await client.request('list-runs', {})).runs[0]).toMatchObject({ status: 'cancelled', checkpointCount: 0 });
  });

  it('stops cleanly when storage is full: QUOTA_EXCEEDED with what to delete; the earlier checkpoint still loads', async () => {
    const backend = new QuotaBackend(freshIdb(), () => new DOMException('', 'QuotaExceededError'));
    const { client } = await boot(backend);
    const datasetId = await inspect(client);
    const col = collector(undefined, (k) => {
      if (k.step === N) backend.budget = 0; // the disk fills up after the first checkpoint
    });
    const err = await client.request('train', { datasetId, name: 'full disk', config: CONFIG }, col.on).catch((e) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err.code).toBe('QUOTA_EXCEEDED');
    expect(err.message).toMatch(/Storage is full/);
    expect(err.hint).toMatch(/Free space by deleting/);
    expect(err.details).toMatchObject({ lastCheckpointStep: N, step: 2 * N });
    expect(err.details.suggestions.length).toBeGreaterThan(0);
    expect(col.c.checkpoints.map((k) => k.step)).toEqual([N]);

    // Reads still work: the run is not shown as running, and its checkpoint at N loads.
    const run = (await client.request('list-runs', {})).runs[0]!;
    expect(run.status).not.toBe('running');
    expect(run.latestCheckpoint?.step).toBe(N);
    const loaded = await client.request('load-adapter', { runId: run.id, step: N });
    expect(loaded.adapter).toMatchObject({ runId: run.id, step: N });

    // Space freed: resume from N and finish exactly like the reference.
    backend.budget = Infinity;
    const b = collector();
    const out = await client.request('resume-run', { runId: run.id }, b.on);
    expect(out).toMatchObject({ reason: 'done', step: 2 * N, resumedFrom: { step: N } });
    for (const m of b.c.metrics) expect(Math.abs(m.loss - reference.losses.get(m.step)!)).toBeLessThanOrEqual(TOL);
  });

  it('stops on a non-finite loss with NON_FINITE_LOSS and keeps the last good checkpoint', async () => {
    const { client } = await boot(freshIdb());
    const datasetId = await inspect(client);
    const col = collector();
    // Inside the run configuration's bounds: AdamW's decay at lr 10 x weight decay 1 multiplies the adapter
    // by -9 every step until it overflows float32.
    const err = await client.request('train', { datasetId, config: { ...CONFIG, lr: 10, weightDecay: 1, schedule: 'constant', warmupSteps: 0, saveEvery: 1, maxBadSteps: 2, steps: 60 } }, col.on).catch((e) => e);
    expect(err).toBeInstanceOf(RequestError);
    expect(err.code).toBe('NON_FINITE_LOSS');
    expect(err.hint).toMatch(/learning rate/i);
    // The run stops after maxBadSteps consecutive bad steps (an isolated one earlier, e.g. an infinite
    // gradient norm followed by a finite one, does not stop it).
    const skipped = col.c.metrics.filter((m) => m.skipped);
    expect(skipped.length).toBeGreaterThanOrEqual(2);
    expect(col.c.metrics.slice(-2).every((m) => m.skipped)).toBe(true);
    const good = col.c.checkpoints.map((k) => k.step);
    expect(err.details.lastCheckpointStep).toBe(good.length ? Math.max(...good) : null);
    const run = (await client.request('list-runs', {})).runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/NON_FINITE_LOSS/);
  });

  it('answers what it cannot do with codes and hints: NO_MODEL, BAD_DATASET, BAD_REQUEST, NO_ADAPTER, NOT_FOUND, MODEL_MISMATCH', async () => {
    const w = connectInProcess({ store: () => new TabtuneStore(freshIdb()) });
    open.push(w);
    await w.client.request('init-backend', { preference: 'wasm' });
    const noModel = await w.client.request('train', { datasetId: 'x', config: CONFIG }).catch((e) => e);
    expect(noModel.code).toBe('NO_MODEL');
    await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
    const unknown = await w.client.request('train', { datasetId: 'nope', config: CONFIG }).catch((e) => e);
    expect(unknown.code).toBe('BAD_DATASET');
    expect(unknown.hint).toMatch(/again/);
    const bad = await w.client.request('inspect-data', { source: { kind: 'text', text: '{"oops": 1}\nnot json\n', name: 'bad.jsonl' } });
    expect(bad.report.errorCount).toBeGreaterThan(0);
    const empty = await w.client.request('train', { datasetId: bad.datasetId, config: CONFIG }).catch((e) => e);
    expect(empty.code).toBe('BAD_DATASET');
    expect(empty.hint).toBeTruthy();
    const setting = await w.client.request('train', { datasetId: bad.datasetId, config: { batchsize: 2 } as never }).catch((e) => e);
    expect(setting.code).toBe('BAD_REQUEST');
    const noAdapter = await w.client.request('generate', { prompt: 'x', maxNewTokens: 1, temperature: 0, useAdapter: true }).catch((e) => e);
    expect(noAdapter.code).toBe('NO_ADAPTER');
    const missing = await w.client.request('resume-run', { runId: 'nope' }).catch((e) => e);
    expect(missing.code).toBe('NOT_FOUND');

    // A run trained on another model (here: its record says so) is not resumed on this one.
    const backend = freshIdb();
    const { client } = await boot(backend);
    const part = await client.request('train', { datasetId: await inspect(client), config: CONFIG, untilStep: 1 });
    const store = new TabtuneStore(backend);
    const run = (await store.runs.get(part.runId))!;
    const job = run.config as unknown as RunJob;
    await store.runs.update(run.id, { config: { ...job, model: { ...job.model, name: 'other-model', numParams: 12345 } } });
    const mismatch = await client.request('resume-run', { runId: run.id }).catch((e) => e);
    expect(mismatch.code).toBe('MODEL_MISMATCH');
    expect(mismatch.hint).toMatch(/Load other-model/);
  });

  it('compares base and tuned on the held-out records, and exports a merged model and a recipe', async () => {
    const { client } = await boot(reference.backend);
    const loaded = await client.request('load-adapter', { runId: reference.runId });
    expect(loaded.adapter).toMatchObject({ runId: reference.runId, step: 2 * N, training: false });
    const progress: number[] = [];
    const cmp = await client.request('compare-heldout', { maxNewTokens: 6 }, { progress: (p) => progress.push(p.fraction) });
    expect(cmp).toMatchObject({ runId: reference.runId, step: 2 * N, totals: { n: 4 } });
    expect(cmp.rows).toHaveLength(4);
    for (const r of cmp.rows) expect(r.prompt).toMatch(/^Write as digits/);
    expect(progress.at(-1)).toBe(1);

    // Strength 0 is the base model (tuned generations also stop at the run's stop token).
    const prompt = 'Write as digits: forty two\nAnswer:';
    const base = await client.request('generate', { prompt, maxNewTokens: 8, temperature: 0, useAdapter: false });
    const zero = await client.request('generate', { prompt, maxNewTokens: 8, temperature: 0, adapterStrength: 0 });
    expect(zero.adapter).toEqual({ runId: reference.runId, step: 2 * N, strength: 0 });
    expect(base.tokens.slice(0, zero.tokens.length)).toEqual(zero.tokens);
    const bad = await client.request('generate', { prompt, maxNewTokens: 1, temperature: 0, adapterStrength: 2 }).catch((e) => e);
    expect(bad.code).toBe('BAD_REQUEST');

    const merged = await client.request('export', { kind: 'merged' });
    const mergedFiles = unzipFiles(merged.bytes);
    expect([...mergedFiles.keys()].sort()).toEqual(expect.arrayContaining(['config.json', 'model.safetensors', 'tokenizer.json']));
    const recipe = await client.request('export', { kind: 'recipe', runId: reference.runId });
    const recipeFiles = unzipFiles(recipe.bytes);
    expect([...recipeFiles.keys()].sort()).toEqual(['axolotl.yaml', 'data.jsonl', 'train_trl.py']);
    expect(new TextDecoder().decode(recipeFiles.get('data.jsonl')!).trim().split('\n')).toHaveLength(40);
    const peft = unzipFiles((await client.request('export', { kind: 'peft' })).bytes);
    expect(JSON.parse(new TextDecoder().decode(peft.get('adapter_config.json')!))).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16 });
  });

  it('reports a run whose tab died mid-run (stale heartbeat) as interrupted', async () => {
    const backend = freshIdb();
    const store = new TabtuneStore(backend, { now: () => Date.now() - 10 * 60_000 });
    const run = await store.runs.create({ name: 'crashed', status: 'running' });
    const { client } = await boot(backend, { staleAfterMs: 60_000 });
    const runs: RunSummary[] = (await client.request('list-runs', {})).runs;
    expect(runs.find((r) => r.id === run.id)).toMatchObject({ status: 'interrupted', active: false, latestCheckpoint: null });
  });

  it('parses a large file in the worker, streaming with progress, while it keeps answering', async () => {
    const { client } = await boot(freshIdb());
    const line = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8');
    const text = line.repeat(Math.ceil((24 * 1024 * 1024) / line.length)); // ~24 MB
    const blob = new Blob([text]);
    const progress: { phase: string; fraction: number }[] = [];
    const latencies: number[] = [];
    let done = false;
    const t0 = performance.now();
    const req = client.request('inspect-data', { source: { kind: 'blob', blob, name: 'big.jsonl' }, store: false }, { 'data-progress': (p) => progress.push(p) });
    void req.then(() => (done = true));
    while (!done) {
      const t = performance.now();
      await client.request('get-backend', {});
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = await req;
    const sec = (performance.now() - t0) / 1000;
    console.log(`[node] ${(blob.size / 1e6).toFixed(1)} MB inspected in ${sec.toFixed(1)} s (${progress.length} progress events); get-backend meanwhile: max ${Math.max(...latencies).toFixed(0)} ms over ${latencies.length} calls`);
    expect(r.report.records).toBe(r.report.total);
    expect(r.report.total).toBeGreaterThan(100_000);
    expect(r.stored).toBe(false);
    const reads = progress.filter((p) => p.phase === 'read').map((p) => p.fraction);
    expect(reads.length).toBeGreaterThan(10);
    expect([...reads].sort((a, b) => a - b)).toEqual(reads);
    expect(latencies.length).toBeGreaterThan(3);
    expect(Math.max(...latencies)).toBeLessThan(1000);
  });
});
