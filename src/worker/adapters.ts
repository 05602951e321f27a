// The active adapter: the one owner of which adapter (LoRA, OFT or prompt tuning) is attached to the loaded model. While a run
// trains it is that run's adapter (owned by the training, never disposed from here); otherwise one
// loaded from a stored checkpoint (load-adapter, compare, export), or none. Generation uses it (or the
// base model), and the dataset doctor measures with it switched off.
import { LoraAdapter } from '../lora/adapter';
import { OftAdapter } from '../oft/adapter';
import { PROMPT_EMBEDDINGS, PromptTuningAdapter } from '../prompt/adapter';
import type { TuningAdapter } from '../train/job';
import type { TrainableAdapter } from '../train/loop';
import type { AdapterInfo, AdapterUse, GenerateParams, RunJob } from '../protocol/messages';
import { fail } from './errors';
import { checkModel, parseJob } from './jobs';
import { requireModel, type WorkerContext } from './context';

export interface ActiveAdapter {
  runId: string;
  runName: string;
  step: number;
  adapter: TuningAdapter;
  job: RunJob;
  /** Owned by the training in progress (never disposed from outside it). */
  training: boolean;
}

/** The run being trained, if any (its adapter is the active one and cannot be swapped). */
export type TrainingRun = () => { runId: string; name: string } | null;

/** Adapter weights (math layout) from a checkpoint's `<module>.lora_A` / `.lora_B` tensors. */
export function adapterWeights(tensors: Record<string, { data: Float32Array }>): Map<string, { A: Float32Array; B: Float32Array }> {
  const out = new Map<string, { A: Float32Array; B: Float32Array }>();
  for (const [name, t] of Object.entries(tensors)) {
    const m = /^(.*)\.lora_A$/.exec(name);
    if (!m) continue;
    const b = tensors[`${m[1]}.lora_B`];
    if (b) out.set(m[1]!, { A: t.data, B: b.data });
  }
  return out;
}

/** An OFT adapter with a checkpoint's `<module>.oft_R` tensors. */
function oftFromCheckpoint(lm: ConstructorParameters<typeof OftAdapter>[0], config: ConstructorParameters<typeof OftAdapter>[1], tensors: Record<string, { data: Float32Array }>): OftAdapter {
  const adapter = new OftAdapter(lm, config);
  try {
    adapter.setTensors(tensors);
  } catch (e) {
    adapter.dispose();
    throw e;
  }
  return adapter;
}

/** A prompt-tuning adapter with a checkpoint's `prompt_embeddings`. */
function promptFromCheckpoint(lm: ConstructorParameters<typeof PromptTuningAdapter>[0], config: ConstructorParameters<typeof PromptTuningAdapter>[1], tensors: Record<string, { data: Float32Array }>): PromptTuningAdapter {
  const t = tensors[PROMPT_EMBEDDINGS];
  if (!t) throw fail('BAD_REQUEST', `The checkpoint has no ${PROMPT_EMBEDDINGS} tensor: it was not made by a prompt-tuning run.`);
  return new PromptTuningAdapter(lm, config, { weights: t.data });
}

export class Adapters {
  private active: ActiveAdapter | null = null;

  constructor(
    private readonly worker: Pick<WorkerContext, 'store' | 'model' | 'serialModel'>,
    private readonly training: TrainingRun,
  ) {}

  /** The attached adapter, or null. */
  get current(): Readonly<ActiveAdapter> | null {
    return this.active;
  }

  /** `load-adapter`: attaches the adapter of (runId, step) (newest checkpoint without a step), or detaches it (runId null). */
  load(p: { runId: string | null; step?: number }): Promise<{ adapter: AdapterInfo | null }> {
    return this.worker.serialModel(async () => {
      if (p.runId === null) {
        if (this.training()) throw fail('BUSY', 'A run is training with its adapter attached.', 'Cancel it or wait for it to finish.');
        this.detach();
        return { adapter: null };
      }
      return { adapter: this.info(await this.ensure(p.runId, p.step)) };
    });
  }

  /** The active adapter, or the one of (runId, step) loaded from storage and made active. Call inside the model queue. */
  async ensure(runId?: string, step?: number): Promise<ActiveAdapter> {
    const a = this.active;
    if (runId === undefined) {
      if (!a) throw fail('NO_ADAPTER', 'There is no trained adapter.', 'Train a run, or pick one of the stored runs.');
      if (step === undefined || step === a.step) return a;
      runId = a.runId;
    }
    if (a && a.runId === runId && (step === undefined || step === a.step)) return a;
    const training = this.training();
    if (training) {
      throw fail('BUSY', `Run "${training.name}" is training with its adapter attached.`, 'Wait for it to finish or cancel it, then pick another checkpoint.', { runId: training.runId });
    }
    const ctx = requireModel(this.worker);
    const store = await this.worker.store();
    const run = await store.runs.get(runId);
    if (!run) throw fail('NOT_FOUND', `There is no run ${runId}.`);
    const job = parseJob(run.config);
    if (!job) throw fail('BAD_REQUEST', `Run "${run.name}" was not made in the browser.`);
    checkModel(job, ctx, run);
    let ck;
    if (step === undefined) {
      const info = await store.checkpoints.resolveResume(runId);
      if (!info) throw fail('NOT_FOUND', `Run "${run.name}" has no checkpoint yet.`, 'Let it train until its first checkpoint (saveEvery).');
      ck = await store.checkpoints.load(info.runId, info.step);
    } else ck = await store.checkpoints.load(runId, step);
    this.detach();
    const adapter =
      job.train.mode === 'oft'
        ? oftFromCheckpoint(ctx.model.lm, job.train.oft, ck.tensors)
        : job.train.mode === 'prompt'
          ? promptFromCheckpoint(ctx.model.lm, job.train.prompt, ck.tensors)
          : new LoraAdapter(ctx.model.lm, job.train.lora, { seed: job.train.seed, weights: adapterWeights(ck.tensors) });
    this.active = { runId, runName: run.name, step: ck.step, adapter, job, training: false };
    return this.active;
  }

  /** Attaches a training run's adapter (the caller has detached the previous one). */
  attachTraining(a: Omit<ActiveAdapter, 'training'>): void {
    this.active = { ...a, training: true };
  }

  /** `adapter` (if attached) now holds the weights of `step`. */
  trainedTo(adapter: TrainableAdapter | null, step: number): void {
    if (this.active && this.active.adapter === adapter) this.active.step = step;
  }

  /** The training that owned `adapter` ended: it stays attached, now disposable. */
  trainingEnded(adapter: TrainableAdapter | null): void {
    if (this.active && this.active.adapter === adapter) this.active.training = false;
  }

  /** Drops the active adapter (a new run, another checkpoint, or the model is about to be disposed or replaced). */
  detach(): void {
    if (this.active && !this.active.training) this.active.adapter.dispose();
    this.active = null;
  }

  /** Runs fn with the base model: the active adapter switched off meanwhile. */
  async withBase<T>(fn: () => Promise<T>): Promise<T> {
    const a = this.active?.adapter;
    if (!a) return fn();
    const was = a.enabled;
    a.enabled = false;
    try {
      return await fn();
    } finally {
      a.enabled = was;
    }
  }

  /**
   * Sets the active adapter up for one generation (call inside the model queue) and says how to undo it.
   * Tuned generations also stop at the run's stop token.
   */
  forGeneration(p: GenerateParams): { use: AdapterUse | null; stopTokenIds: number[]; stopStrings: string[] | undefined; restore(): void } {
    const a = this.active;
    if (p.adapterStrength !== undefined && !(p.adapterStrength >= 0 && p.adapterStrength <= 1)) {
      throw fail('BAD_REQUEST', `adapterStrength must be between 0 and 1, got ${p.adapterStrength}.`);
    }
    if (p.useAdapter === true && !a) throw fail('NO_ADAPTER', 'There is no trained adapter to generate with.', 'Train a run, or pick one of the stored runs (load-adapter).');
    if (!a) return { use: null, stopTokenIds: [], stopStrings: p.stopStrings, restore: () => undefined };
    const ad = a.adapter;
    const was = { enabled: ad.enabled, strength: ad.strength };
    const restore = () => {
      ad.enabled = was.enabled;
      ad.strength = was.strength;
    };
    if (p.useAdapter === false) {
      ad.enabled = false;
      return { use: null, stopTokenIds: [], stopStrings: p.stopStrings, restore };
    }
    const strength = p.adapterStrength ?? 1;
    ad.enabled = true;
    ad.strength = strength;
    const stop = a.job.data.options.stop;
    const stopStrings = [...new Set([...(p.stopStrings ?? []), ...stop.stopStrings])];
    return { use: { runId: a.runId, step: a.step, strength }, stopTokenIds: stop.stopTokenId !== null ? [stop.stopTokenId] : [], stopStrings: stopStrings.length ? stopStrings : undefined, restore };
  }

  private info(a: ActiveAdapter): AdapterInfo {
    return { runId: a.runId, runName: a.runName, step: a.step, params: a.adapter.numParams(), training: a.training };
  }
}
