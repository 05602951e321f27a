// A plain-text run through the worker protocol (Node, fake IndexedDB, tabtune-tiny over HTTP): inspect-data
// reports the text, train packs it into windows and reports ppl_base at every evaluation, compare-heldout gives
// the held-out perplexity of base and tuned (the evaluation's figures) and continues held-out openings, the
// recipe export says why it does not apply, and a resume after a reload trains on the same windows.
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvalMetrics } from '../protocol/messages';
import { freshIdb } from '../testing/storage';
import { TINY_DIR } from '../testing/models';
import { shipsLog } from '../testing/ships-log';
import { modelWorkers } from '../testing/worker';

const TEXT = shipsLog({ voyages: 6, entries: 3 });
const CONFIG = { steps: 4, batchSize: 4, saveEvery: 2, evalEvery: 2, seed: 3, warmupSteps: 1, genEvalExamples: 0, probeSamples: 0 };

describe('a plain-text run through the worker', () => {
  const workers = modelWorkers(TINY_DIR);
  const boot = workers.boot;
  beforeAll(workers.start);
  afterAll(workers.close);

  it('inspects, trains with ppl_base, compares perplexities and openings, refuses recipes, resumes', { timeout: 300_000 }, async () => {
    const backend = freshIdb();
    const client = await boot(backend);
    const { datasetId, report } = await client.request('inspect-data', { source: { kind: 'text', text: TEXT, name: 'log.txt' }, options: { maxSeqLen: 64, valFraction: 0.2 } });
    expect(report.format).toBe('text');
    expect(report.text).toMatchObject({ documents: 6, paragraphs: 30, seqLen: 64, split: { by: 'document', val: { documents: 1, paragraphs: 5 } } });
    const evals: EvalMetrics[] = [];
    const out = await client.request('train', { datasetId, name: 'text', config: CONFIG, untilStep: 2 }, { eval: (e) => void evals.push(e) });
    expect(out).toMatchObject({ reason: 'stopped', step: 2 });
    const resumed = await client.request('resume-run', { runId: out.runId }, { eval: (e) => void evals.push(e) });
    expect(resumed).toMatchObject({ reason: 'done', step: 4 });
    expect(evals.map((e) => e.step)).toEqual([2, 4]);
    const base = evals[0]!.extra!.ppl_base!;
    expect(evals.every((e) => Math.abs(e.extra!.ppl_base! - base) < 1e-9 * base)).toBe(true);

    const cmp = await client.request('compare-heldout', { maxNewTokens: 8 });
    expect(cmp.totals.ppl!.base).toBeCloseTo(base, 4);
    expect(cmp.totals.ppl!.tuned).toBeCloseTo(evals[1]!.valPpl, 4);
    expect(cmp.totals.ppl!.tuned).toBeLessThan(cmp.totals.ppl!.base);
    expect(cmp.rows).toHaveLength(5);
    expect(cmp.rows[0]!.prompt).toMatch(/^Log of the schooner/);
    expect(`${cmp.rows[0]!.prompt} ${cmp.rows[0]!.expected}`.replace(/\s+/g, ' ')).toMatch(/^Log of the schooner Marrow Lark, voyage \d, from [\w ]+ to [\w ]+\.$/);

    await expect(client.request('export', { kind: 'recipe', runId: out.runId })).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringContaining('plain text') });
  });
});
