// Path-wise rewinding of a stored run (explore-path, apply-recipe): measure the task metric and the
// forgetting probe at points along the path from the base model to the run's final and best checkpoints
// (the update scaled by alpha, half of the layers rewound), recommend one, and store a chosen point as a
// checkpoint of its own (a branch run that keeps its recipe), which Compare and Export then use like any
// other. The measuring runs in the model queue with the run's adapter, LoRA or OFT (src/train/quality/path.ts
// puts its weights back afterwards); for an OFT run the path scales the rotation's generator Q (as the
// adapter strength does), not the weight update.
import type { ApplyRecipePayload, ApplyRecipeResult, ExplorePathPayload, ExplorePathResult, TradeoffPoint } from '../protocol/messages';
import type { CheckpointInfo } from '../storage/index';
import { BROWSER_TRAINING, parseTrainConfig, type TrainConfig } from '../train/config';
import { causalLmObjective, evaluateLoss } from '../train/loop';
import { criterionValue, recommend, sameRecipe, type TradeoffRecipe } from '../train/quality/decisions';
import { generationScores } from '../train/quality/generation';
import { adapterTensors, applyRecipe, explorePath, type AdapterTensors } from '../train/quality/path';
import { forgetPct, probeNll, type ProbeSet } from '../train/quality/probe';
import type { RunJob } from '../protocol/messages';
import type { RunRecord } from '../storage/index';
import type { Adapters } from './adapters';
import { requireModel, type WorkerContext } from './context';
import type { DatasetRegistry } from './datasets';
import { fail } from './errors';
import { checkModel, copyParentMetrics, parseJob } from './jobs';
import { bestEffort } from '../util/async';
import { evalsFromPoints } from '../train/metrics';
import { decideRun } from '../train/quality/index';

export interface PathDeps {
  worker: Pick<WorkerContext, 'post' | 'model' | 'serialModel' | 'store'>;
  adapters: Adapters;
  datasets: DatasetRegistry;
  /** The run being trained now, if any: its adapter is attached and changes step by step. */
  training(): { runId: string; name: string } | null;
}

/** The run, its job and its settings (stored settings with the defaults of settings added since). */
async function runAndConfig(deps: PathDeps, runId: string): Promise<{ run: RunRecord; job: RunJob; config: TrainConfig }> {
  if (typeof runId !== 'string' || !runId) throw fail('BAD_REQUEST', 'A runId is required.');
  const t = deps.training();
  if (t) throw fail('BUSY', `Run "${t.name}" is training with its adapter attached.`, 'Wait for it to finish (or pause and cancel it), then explore or apply a path point.', { runId: t.runId });
  const store = await deps.worker.store();
  const run = await store.runs.get(runId);
  if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`, 'Pick a run from the list of runs.');
  const job = parseJob(run.config);
  if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser.`);
  // A learned prompt has no points between base and tuned: scaling its vectors or rewinding layers is meaningless.
  // The path's points are measured with the causal-LM loss on held-out examples: a DPO run's are preference pairs.
  if (job.train.objective === 'dpo') throw fail('BAD_REQUEST', `Run "${run.name}" was trained with DPO: the path from base to tuned is measured on supervised held-out examples, which a preference run does not have.`, 'Compare its stored checkpoints on the trade-off chart instead.');
  if (job.train.mode === 'prompt') throw fail('BAD_REQUEST', `Run "${run.name}" trained a prompt-tuning adapter: the path between base and tuned is made of weight updates, which a learned prompt does not have.`, "Compare its stored checkpoints on the trade-off chart instead.");
  const parsed = parseTrainConfig(job.train, BROWSER_TRAINING);
  if (!parsed.ok) throw fail('BAD_REQUEST', `Run "${run.name}" holds settings this page cannot use: ${parsed.problems.join(' ')}`);
  return { run, job, config: parsed.config };
}

/** A stored checkpoint as a point of the chart (its evaluation's measurements), or null when it has none. */
function storedPoint(c: CheckpointInfo, config: TrainConfig): TradeoffPoint | null {
  const task = criterionValue({ step: c.step, valLoss: c.valLoss ?? NaN, valPpl: NaN, tokens: 0, extra: c.extra ?? undefined }, config.bestMetric);
  if (task === null) return null;
  const f = c.extra?.probe_nll_delta_pct;
  return { id: `step-${c.step}`, step: c.step, label: `step ${c.step}`, task, forgetPct: typeof f === 'number' ? f : null };
}

/**
 * explore-path: for the run's final and best checkpoints (or `steps`), the update at alpha 0…1 and each
 * half of the layers rewound (to base and to the earlier checkpoint), each measured on the run's held-out
 * split (the run's criterion) and its forgetting probe. The result, with the recommendation over these and
 * the run's stored checkpoints, is also stored with the run.
 */
export function explorePathRequest(deps: PathDeps, p: ExplorePathPayload, id: number, signal?: AbortSignal): Promise<ExplorePathResult> {
  const { worker, adapters, datasets } = deps;
  return worker.serialModel(async () => {
    const t0 = performance.now();
    const { run, job, config } = await runAndConfig(deps, p?.runId);
    const model = requireModel(worker).model;
    const store = await worker.store();
    const list = await store.checkpoints.list(run.id, { gc: false });
    if (!list.length) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint yet.`, 'Train it until its first checkpoint.');
    const final = list[list.length - 1]!;
    // By default the final and the best checkpoint (when the best is still stored: the user may have deleted it).
    const bestStep = [run.quality?.bestStep, list.find((c) => c.isBest)?.step].find((s) => s != null && list.some((c) => c.step === s)) ?? null;
    const wanted = p?.steps?.length ? p.steps : [final.step, ...(bestStep !== null ? [bestStep] : [])];
    const steps = [...new Set(wanted)].sort((a, b) => a - b);
    for (const s of steps) {
      if (!list.some((c) => c.step === s)) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${s}.`, `Its checkpoints: ${list.map((c) => c.step).join(', ')}.`);
    }
    // The run's own adapter (LoRA or OFT, as it trained), attached to the model that is measured; the one
    // attached before (what the page generates with) comes back afterwards.
    const before = adapters.current ? { runId: adapters.current.runId, step: adapters.current.step } : null;
    const adapter = (await adapters.ensure(run.id, final.step)).adapter;
    try {
      const data = await datasets.prepare(job.data.datasetId, { model, requestId: id, signal }, { frozen: job.data.options, valDatasetId: job.data.valDatasetId });
      if (!data.val.length) throw fail('BAD_DATASET', 'The run has no held-out records to measure on.', 'Train with a validation split or a validation file.');
      const probe = (run.probe as ProbeSet | null | undefined) ?? null;
      const checkpoints: { step: number; weights: AdapterTensors }[] = [];
      for (const s of steps) checkpoints.push({ step: s, weights: adapterTensors((await store.checkpoints.load(run.id, s)).tensors) });

      const measure = async () => {
        let task: number;
        if (config.bestMetric === 'exact_match') task = (await generationScores({ model, encoder: data.encoder, val: data.result.val, train: data.result.train, maxExamples: config.genEvalExamples, signal })).exact_match;
        else {
          const { nll, tokens } = await evaluateLoss(model.lm, causalLmObjective, data.val, config.batchSize, 25);
          task = tokens ? nll / tokens : NaN;
        }
        return { task, forgetPct: probe ? forgetPct(await probeNll(model.lm, probe), probe.baseNll) : null };
      };
      let measured: TradeoffPoint[];
      try {
        measured = await explorePath({
          adapter,
          checkpoints,
          numLayers: model.info.layers,
          measure,
          signal,
          onProgress: (done, total, label) => worker.post({ kind: 'progress', id, payload: { file: label, loaded: done, total, fraction: done / total } }),
        });
      } catch (e) {
        if (signal?.aborted) throw fail('CANCELLED', 'Exploring the path was cancelled.');
        throw e;
      }
      // The run's other checkpoints, as measured while it trained (a checkpoint measured here at alpha 1 is not repeated).
      const explored = new Set(measured.filter((m) => m.recipe && m.recipe.alpha === 1 && !m.recipe.layers).map((m) => m.step));
      const points = [...measured, ...list.map((c) => storedPoint(c, config)).filter((x): x is TradeoffPoint => x !== null && !explored.has(x.step))];
      const r = recommend(points, { criterion: config.bestMetric, budgetPct: config.forgetBudgetPct, finalStep: final.step });
      const recommendation = r ? { pointId: r.point.id, sentence: r.sentence } : null;
      const path = { points, recommendation, measuredAt: Date.now() };
      // A run without a stored decision (interrupted, or from before decisions were stored) gets one from its evaluations.
      const quality = run.quality ?? decideRun(evalsFromPoints(await store.runs.readMetrics(run.id)), config, list.map((c) => c.step), final.step, null);
      await store.runs.update(run.id, { quality: { ...quality, path: path as never } });
      return { runId: run.id, points, recommendation, ms: performance.now() - t0 };
    } finally {
      if (!before) adapters.detach();
      else if (before.runId !== run.id || before.step !== final.step) await bestEffort(() => adapters.ensure(before.runId, before.step));
    }
  });
}

function recipeName(r: TradeoffRecipe): string {
  const parts = [`step ${r.fromStep}`];
  if (r.layers) parts.push(`${r.layers} rewound to ${r.rewindTo === undefined || r.rewindTo === 'base' ? 'base' : `step ${r.rewindTo}`}`);
  if (r.alpha !== 1) parts.push(`× ${r.alpha}`);
  return parts.join(', ');
}

function checkRecipe(r: unknown): TradeoffRecipe {
  const x = r as Partial<TradeoffRecipe> | null;
  const ok =
    !!x &&
    Number.isSafeInteger(x.fromStep) &&
    typeof x.alpha === 'number' &&
    x.alpha >= 0 &&
    x.alpha <= 1 &&
    (x.layers === undefined || ['all', 'first-half', 'last-half'].includes(x.layers)) &&
    (x.rewindTo === undefined || x.rewindTo === 'base' || Number.isSafeInteger(x.rewindTo));
  if (!ok) throw fail('BAD_REQUEST', `Not a recipe: ${JSON.stringify(r)?.slice(0, 200)}.`, 'Pick a point of the explored path.');
  return x as TradeoffRecipe;
}

/**
 * apply-recipe: the weights of a path point, stored as a checkpoint of a branch of the run at the step it
 * derives from (the branch keeps the parent's optimizer state, its metric history up to that step and the
 * recipe), so it can be compared, exported, pinned or trained on like any checkpoint.
 */
export function applyRecipeRequest(deps: PathDeps, p: ApplyRecipePayload): Promise<ApplyRecipeResult> {
  return deps.worker.serialModel(async () => {
    const { run, job, config } = await runAndConfig(deps, p?.runId);
    const recipe = checkRecipe(p?.recipe);
    const ctx = requireModel(deps.worker);
    // The layer halves are the run's model's: another model loaded would split them elsewhere.
    checkModel(job, ctx, run);
    const model = ctx.model;
    const store = await deps.worker.store();
    const from = await store.checkpoints.load(run.id, recipe.fromStep).catch(() => {
      throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${recipe.fromStep}.`, 'Explore the path again: retention may have deleted it.');
    });
    const byStep = new Map<number, AdapterTensors>([[recipe.fromStep, adapterTensors(from.tensors)]]);
    if (typeof recipe.rewindTo === 'number' && recipe.rewindTo !== recipe.fromStep) {
      const to = await store.checkpoints.load(run.id, recipe.rewindTo).catch(() => {
        throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint at step ${recipe.rewindTo}.`, 'Explore the path again: retention may have deleted it.');
      });
      byStep.set(recipe.rewindTo, adapterTensors(to.tensors));
    }
    // The point's adapter tensors (LoRA's A and B, OFT's Q) by name over the checkpoint's; the optimizer's moments stay the parent's.
    const tensors = { ...from.tensors };
    for (const [name, data] of applyRecipe(byStep, recipe, model.info.layers)) tensors[name] = { ...tensors[name]!, data };
    // The measurements explore-path made of this point, when it did.
    const path = run.quality?.path as { points?: TradeoffPoint[] } | null | undefined;
    const point = path?.points?.find((q) => sameRecipe(q.recipe, recipe));
    const metrics: { valLoss?: number; extra?: Record<string, number> } = {};
    if (point) {
      if (config.bestMetric === 'val_loss') metrics.valLoss = point.task;
      else metrics.extra = { exact_match: point.task };
      if (point.forgetPct !== null) metrics.extra = { ...metrics.extra, probe_nll_delta_pct: point.forgetPct };
    }
    const branch = await store.checkpoints.branch(run.id, recipe.fromStep, { name: p.name?.trim() || `${run.name} (${recipeName(recipe)})`, status: 'finished' });
    try {
      await copyParentMetrics(store, run.id, branch.id, recipe.fromStep);
      const { info } = await store.checkpoints.save(branch.id, { step: recipe.fromStep, tensors, state: from.state, metrics }, { pinned: true });
      // Its best validation loss is its own checkpoint's (the copied history is the parent's), or unknown.
      const updated = await store.runs.update(branch.id, { recipe, bestValLoss: metrics.valLoss ?? null, bestValStep: metrics.valLoss !== undefined ? recipe.fromStep : null });
      return { run: updated, checkpoint: info };
    } catch (e) {
      // Without its checkpoint the branch would stand for the parent's: remove it (storage full, …).
      await bestEffort(() => store.deleteRun(branch.id));
      throw e;
    }
  });
}
