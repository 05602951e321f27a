// DPO through the worker protocol: SFT, then DPO on preference pairs starting from the SFT run's
// checkpoint (TrainPayload.startFrom), its preference metrics in the events, lineage stored, and a resume
// after a reload that repeats the uninterrupted run (the reference comes back from the checkpoint).
import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestError, type WorkerClient } from '../protocol/client';
import type { EvalMetrics, StepMetrics, TrainStart } from '../protocol/messages';
import { freshIdb } from '../testing/storage';
import { REPO_ROOT, TINY_DIR } from '../testing/models';
import { modelWorkers } from '../testing/worker';

const lines = readFileSync(join(REPO_ROOT, 'public/examples/number-words.train.jsonl'), 'utf8').trim().split('\n').slice(0, 40);
const SFT = lines.join('\n') + '\n';
/** The right digits chosen, the digits reversed rejected. */
const PREFS =
  lines
    .map((l) => {
      const { prompt, completion } = JSON.parse(l) as { prompt: string; completion: string };
      return JSON.stringify({ prompt, chosen: completion, rejected: [...completion].reverse().join('') === completion ? `${completion}0` : [...completion].reverse().join('') });
    })
    .join('\n') + '\n';
const runsJob = (r: { runs: { name: string; job?: unknown }[] }, name: string) => r.runs.find((x) => x.name === name)?.job;
const DPO = { objective: 'dpo' as const, steps: 4, batchSize: 4, evalEvery: 2, saveEvery: 2, seed: 5, warmupSteps: 0, genEvalExamples: 2, probeSamples: 4, probeTokens: 8 };

describe('DPO through the worker', () => {
  const workers = modelWorkers(TINY_DIR);
  const boot = workers.boot;
  beforeAll(workers.start);
  afterAll(workers.close);
  const inspect = async (client: WorkerClient, text: string, name: string) => (await client.request('inspect-data', { source: { kind: 'text', text, name } })).datasetId;


  it('continues an SFT run with DPO: preference metrics, lineage, the SFT adapter as reference; a resume after a reload repeats it', { timeout: 300_000 }, async () => {
    const backend = freshIdb();
    const client = await boot(backend);
    const sft = await client.request('train', { datasetId: await inspect(client, SFT, 'numbers.jsonl'), name: 'sft', config: { steps: 4, batchSize: 4, saveEvery: 4, evalEvery: 4, lora: { r: 4, target_modules: ['q_proj', 'v_proj'] } } });
    const inspected = await client.request('inspect-data', { source: { kind: 'text', text: PREFS, name: 'prefs.jsonl' } });
    // The doctor reads preference pairs as trainable records (DPO), none rejected.
    expect(inspected.report).toMatchObject({ records: 40, errorCount: 0, kinds: { preference: 40 } });
    const prefsId = inspected.datasetId;

    const run: TrainStart[] = [];
    const steps: StepMetrics[] = [];
    const evals: EvalMetrics[] = [];
    const on = { run: (r: TrainStart) => void run.push(r), metrics: (m: StepMetrics) => void steps.push(m), eval: (e: EvalMetrics) => void evals.push(e) };
    // The request's LoRA shape is replaced by the SFT run's (the adapter it continues).
    const dpo = await client.request('train', { datasetId: prefsId, name: 'sft + DPO', config: { ...DPO, lora: { r: 8 } }, startFrom: { runId: sft.runId, step: 4 } }, on);
    expect(dpo.reason).toBe('done');
    // The base model (adapter off) on the held-out pairs, measured before the first step: the "before".
    expect(dpo.baseline).toMatchObject({ valLoss: expect.any(Number), extra: { 'eval_rewards/accuracies': expect.any(Number), exact_match: expect.any(Number) } });
    expect(run[0]!.config).toMatchObject({ objective: 'dpo', lora: { r: 4, target_modules: ['q_proj', 'v_proj'] } });
    expect(run[0]!.trainExamples).toBe(36);
    expect(runsJob(await client.request('list-runs', {}), 'sft + DPO')).toMatchObject({ data: { trainExamples: 36, valExamples: 4 } });
    for (const m of steps) for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) expect(typeof m.extra?.[k]).toBe('number');
    // Against the SFT adapter as the reference, the first step's loss is ln 2 up to LoRA dropout.
    expect(Math.abs(steps[0]!.loss - Math.log(2))).toBeLessThan(0.01);
    expect(evals.map((e) => e.step)).toEqual([2, 4]);
    for (const e of evals) expect(typeof e.extra?.['eval_rewards/accuracies']).toBe('number');
    const { runs } = await client.request('list-runs', {});
    expect(runs.find((r) => r.id === dpo.runId)!.job?.startFrom).toEqual({ runId: sft.runId, step: 4 });
    // Stored points carry the statistics (the charts read them after a reload).
    const { points } = await client.request('run-metrics', { runId: dpo.runId });
    expect(points.find((p) => p.type === 'step')).toMatchObject({ extra: { 'rewards/margins': expect.any(Number) } });

    // Stopped at step 2, then continued after a reload: the same losses (the reference is in the checkpoint).
    const b = freshIdb();
    const c1 = await boot(b);
    const sft2 = await c1.request('train', { datasetId: await inspect(c1, SFT, 'numbers.jsonl'), name: 'sft', config: { steps: 4, batchSize: 4, saveEvery: 4, evalEvery: 4, lora: { r: 4, target_modules: ['q_proj', 'v_proj'] } } });
    const prefs2 = await inspect(c1, PREFS, 'prefs.jsonl');
    const part: StepMetrics[] = [];
    const first = await c1.request('train', { datasetId: prefs2, config: DPO, startFrom: { runId: sft2.runId, step: 4 }, untilStep: 2 }, { metrics: (m) => void part.push(m) });
    expect(first.reason).toBe('stopped');
    const c2 = await boot(b);
    await c2.request('resume-run', { runId: first.runId }, { metrics: (m) => void part.push(m) });
    expect(part.map((m) => m.step)).toEqual([1, 2, 3, 4]);
    for (let i = 0; i < 4; i++) expect(Math.abs(part[i]!.loss - steps[i]!.loss)).toBeLessThanOrEqual(1e-5);

    // The wrong data for the objective is refused, naming the fix.
    const noPairs = await client.request('train', { datasetId: await inspect(client, SFT, 'numbers.jsonl'), config: DPO }).catch((e: unknown) => e);
    expect(noPairs).toBeInstanceOf(RequestError);
    expect((noPairs as RequestError).code).toBe('BAD_DATASET');
    expect((noPairs as RequestError).message).toMatch(/no preference pairs/);
    const onlyPairs = await client.request('train', { datasetId: prefsId, config: { steps: 2 } }).catch((e: unknown) => e);
    expect((onlyPairs as RequestError).message).toMatch(/only preference pairs/);
    expect((onlyPairs as RequestError).hint).toMatch(/DPO/);
  });
});
