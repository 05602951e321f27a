// Knowing when to stop, assembled once for every host (the CLI, the browser worker): the measurements
// plugged into each evaluation of the one training loop (generated held-out answers, the forgetting probe,
// activation similarity, cost), the stop rule (early stopping), replay examples mixed into training, and
// the decisions made from the evaluations (best, recommended, which checkpoints retention keeps).
import type { DataRecord } from '../../data/types';
import type { RecordEncoder } from '../../data/encode';
import type { LanguageModel } from '../../model/load';
import type { RunQuality } from '../../storage/runs';
import type { TrainConfig } from '../config';
import { evaluateLoss, TrainingError, type EvalMetrics, type Example, type TrainableAdapter, type Trainer } from '../loop';
import type { EvalMetric, StopRule } from '../run-loop';
import { baseLayerStates, ckaMetric } from './cka';
import { criterionValue, earlyStopping, forgetPctOf, paretoFront, summariseRun, type TradeoffPoint } from './decisions';
import { generationMetric } from './generation';
import { promptAndAnswer } from '../job';
import { packText } from '../../data/text';
import type { TextRecord } from '../../data/types';
import { basePerplexityMetric } from '../text';
import { forgettingMetric, inEvalMode, replayCount, replayExamples, sampleProbeSet, withBaseModel, type ProbeSet } from './probe';

export interface QualityInput {
  model: LanguageModel;
  /** The run's adapter (switched off while the base model's activations are read). */
  adapter: TrainableAdapter | null;
  config: TrainConfig;
  encoder: RecordEncoder;
  trainRecords: readonly DataRecord[];
  valRecords: readonly DataRecord[];
  /** The run's forgetting probe (runProbe), or null when the probe is off. */
  probe: ProbeSet | null;
  /** Evaluations made before (a resumed run): the cost metric continues their clock. */
  history?: readonly EvalMetrics[];
  signal?: AbortSignal;
}

export interface QualityPlugins {
  metrics: EvalMetric[];
  stopRules: StopRule[];
  /** What the settings ask for that this run cannot do, for the user (e.g. early stopping without held-out examples). */
  warnings: string[];
}

/**
 * The run's forgetting probe: the one stored with it (a resumed run measures the same texts), else texts
 * sampled from the base model (`adapter` is switched off meanwhile) plus chunks of the user's general
 * text; null when the configuration turns the probe off. Sampled before the replay text, which avoids it.
 */
export async function runProbe(model: LanguageModel, adapter: TrainableAdapter | null, config: TrainConfig, o: { stored?: ProbeSet | null; text?: string } = {}): Promise<ProbeSet | null> {
  if (o.text !== undefined && config.probeSamples <= 0) {
    throw new TrainingError('BAD_DATA', 'a general text was given for the forgetting probe, but the probe is off (probe size 0)', 'Set the forgetting probe size above 0, or leave the text out.');
  }
  if (config.probeSamples <= 0) return null;
  if (o.stored) return o.stored;
  const probe = await sampleProbeSet(model, adapter, { n: config.probeSamples, tokens: config.probeTokens, seed: config.seed, text: o.text });
  if (o.text !== undefined && !probe.samples.some((s) => s.source === 'text')) {
    throw new TrainingError('BAD_DATA', `the general text for the forgetting probe is shorter than one probe text (${probe.tokens} tokens)`, 'Use a longer text (a few paragraphs), or a shorter probe text length.');
  }
  return probe;
}

/**
 * Time and tokens spent so far: `elapsed_s` (wall time of training, across resumes) and `train_tokens`
 * (tokens of the micro-batches trained on).
 */
export function costMetric(history: readonly EvalMetrics[] = []): EvalMetric {
  const prior = [...history].reverse().find((e) => e.extra?.elapsed_s !== undefined)?.extra?.elapsed_s ?? 0;
  const start = performance.now();
  let counted = 0;
  let tokens = 0;
  return {
    name: 'cost',
    async measure(t: Trainer) {
      // Micro-batches are a pure function of (seed, index): count the ones trained since the last call.
      for (; counted < t.micro; counted++) tokens += t.objective.count(t.microBatch(counted)).tokens;
      return { values: { elapsed_s: prior + (performance.now() - start) / 1000, train_tokens: tokens } };
    },
  };
}

/** The model a run starts from on its held-out split: the "before" of every before → after (stored with the run). */
export interface Baseline {
  /** What was measured: "base model", or the adapter the run continues ("run X, step N"; a folder). */
  of: string;
  /** The objective's held-out loss with the adapter off. */
  valLoss: number;
  /** The generation metric's numbers (exact_match, token_f1, …) and the objective's statistics, with the adapter off. */
  extra: Record<string, number>;
}

/**
 * Measures the model a run starts from on the held-out split once, before its first step: the base model
 * (the run's adapter switched off), or with `continues` the adapter it continues as loaded (e.g. the SFT
 * adapter of DPO after SFT, labelled by `continues`) — the validation loss and the generated answers'
 * scores, so reports and verdicts compare the tuned model with where it began. Null without held-out examples.
 */
export async function measureBaseline(trainer: Trainer, metrics: readonly EvalMetric[], continues: string | null = null): Promise<Baseline | null> {
  if (!trainer.val.length) return null;
  const measure = async (): Promise<Baseline> => {
    const { nll, tokens, extra } = await evaluateLoss(trainer.lm, trainer.objective, trainer.val, trainer.config.batchSize, 25);
    const out: Baseline = { of: continues ?? 'base model', valLoss: nll / tokens, extra: { ...extra } };
    for (const m of metrics) if (m.name === 'generation') Object.assign(out.extra, (await m.measure(trainer)).values);
    return out;
  };
  return continues ? inEvalMode(trainer.adapter, measure) : withBaseModel(trainer.adapter, measure);
}

/** The measurements and stop rules a run's configuration asks for. */
export async function qualityPlugins(o: QualityInput): Promise<QualityPlugins> {
  const c = o.config;
  const answerable = o.valRecords.filter((r) => promptAndAnswer(r) !== null).length;
  if (c.bestMetric === 'exact_match' && !answerable) {
    throw new TrainingError(
      'BAD_DATA',
      'the best checkpoint is to be judged by exact match, but the held-out split has no example with an expected answer to generate',
      'Keep a validation share above 0 (or add a validation file) with prompt/answer examples, or judge the best checkpoint by validation loss.',
    );
  }
  const warnings: string[] = [];
  if (!o.valRecords.length && (c.earlyStopPatience > 0 || c.probeSamples > 0 || c.genEvalExamples > 0)) {
    warnings.push('This run has no held-out examples, so it is never evaluated: it cannot stop early, measure forgetting or generated answers, or pick a best checkpoint. Keep a validation share above 0 or add a validation file.');
  }
  const metrics: EvalMetric[] = [];
  // Generated answers need records with an answer (plain text has none: its measure is the held-out perplexity).
  if (c.genEvalExamples > 0 && answerable) {
    metrics.push(generationMetric({ model: o.model, encoder: o.encoder, val: o.valRecords.filter((r) => promptAndAnswer(r) !== null), train: [...o.trainRecords], maxExamples: c.genEvalExamples, signal: o.signal }));
  }
  // Plain text: the base model's held-out perplexity, measured once now (a resumed full-parameter run has no base model left to measure).
  const textVal = o.valRecords.filter((r): r is TextRecord => r.kind === 'text');
  if (textVal.length && (o.adapter || !o.history?.length)) metrics.push(await basePerplexityMetric(o.model.lm, o.adapter, packText(o.encoder.tokenizer, textVal, o.encoder.maxSeqLen), c.batchSize));
  const probe = o.probe;
  if (probe) {
    metrics.push(forgettingMetric(o.model.lm, probe));
    metrics.push(ckaMetric(o.model.lm, probe, await baseLayerStates(o.model.lm, o.adapter, probe)));
  }
  metrics.push(costMetric(o.history));
  const stopRules = c.earlyStopPatience > 0 ? [earlyStopping({ patience: c.earlyStopPatience, minDelta: c.earlyStopMinDelta, criterion: c.bestMetric })] : [];
  return { metrics, stopRules, warnings };
}

/**
 * The training examples with replay mixed in: `replayFraction` of the result is base-model text (sampled
 * from a stream the probe does not use, never one of the probe's texts, so the probe measures text the
 * run did not train on).
 */
export async function withReplay(model: LanguageModel, adapter: TrainableAdapter | null, config: TrainConfig, train: Example[], probe: ProbeSet | null): Promise<Example[]> {
  const n = replayCount(train.length, config.replayFraction);
  if (!n) return train;
  return [...train, ...(await replayExamples(model, adapter, { n, tokens: config.probeTokens, seed: config.seed, exclude: probe ?? undefined }))];
}

/** Every evaluated step with a checkpoint as a point of the task-vs-forgetting chart. */
export function checkpointPoints(evals: readonly EvalMetrics[], config: Pick<TrainConfig, 'bestMetric'>, checkpointSteps: readonly number[]): TradeoffPoint[] {
  const saved = new Set(checkpointSteps);
  const byStep = new Map<number, EvalMetrics>();
  for (const e of evals) if (saved.has(e.step)) byStep.set(e.step, e);
  const out: TradeoffPoint[] = [];
  for (const e of [...byStep.values()].sort((a, b) => a.step - b.step)) {
    const task = criterionValue(e, config.bestMetric);
    if (task !== null) out.push({ id: `step-${e.step}`, step: e.step, label: `step ${e.step}`, task, forgetPct: forgetPctOf(e) });
  }
  return out;
}

/**
 * The steps retention must keep while a run trains besides the newest ones: the best by the run's
 * criterion, the recommended one, and the end of the Pareto front that forgets least (the other end is the
 * best). Not the whole front: while the loss falls and forgetting rises every checkpoint is on it, and
 * keeping them all would fill the browser's storage.
 */
export function keepSteps(evals: readonly EvalMetrics[], config: Pick<TrainConfig, 'bestMetric' | 'forgetBudgetPct'>, checkpointSteps: readonly number[], finalStep: number): number[] {
  const s = summariseRun(evals, { criterion: config.bestMetric, budgetPct: config.forgetBudgetPct, finalStep, checkpointSteps });
  const front = paretoFront(checkpointPoints(evals, config, checkpointSteps), config.bestMetric).filter((p) => p.forgetPct !== null);
  const leastForgetting = front.length ? front.reduce((a, b) => (b.forgetPct! < a.forgetPct! ? b : a)).step : null;
  return [...new Set([s.bestStep, s.recommendedStep, leastForgetting].filter((x): x is number => x !== null))].sort((a, b) => a - b);
}

/** What a run's evaluations decided, stored with the run and printed by the CLI (the path is explored later). */
export type RunDecision = Omit<RunQuality, 'path'>;

export function decideRun(evals: readonly EvalMetrics[], config: Pick<TrainConfig, 'bestMetric' | 'forgetBudgetPct'>, checkpointSteps: readonly number[], finalStep: number, stoppedBy: string | null): RunDecision {
  const s = summariseRun(evals, { criterion: config.bestMetric, budgetPct: config.forgetBudgetPct, finalStep, checkpointSteps });
  return {
    criterion: config.bestMetric,
    bestStep: s.bestStep,
    recommendedStep: s.recommendedStep,
    finalStep,
    stoppedEarly: stoppedBy !== null,
    stopReason: stoppedBy,
    sentence: evals.length ? s.sentence : null,
    budgetPct: config.forgetBudgetPct,
  };
}
