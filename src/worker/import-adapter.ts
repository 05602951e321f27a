// `import-adapter`: a PEFT adapter (LoRA, OFT or prompt tuning; a dropped folder's files or a zip) checked
// against the loaded model and stored as a run of its own, so a new run can continue it (TrainPayload.startFrom
// {runId, step: 0}) and generate / compare / export can use it as the active adapter (load-adapter).
//
// The run is 'finished', trained on no dataset (its job's data says "imported adapter"), and holds one
// checkpoint at step 0: the adapter's tensors in the trainer's checkpoint naming (`<module>.lora_A` / `.lora_B`,
// `<module>.oft_R`, `prompt_embeddings`) with zero Adam moments beside them, the checkpoint a trainer would
// have written before its first step. Its train config is the run-config defaults with the adapter's kind and
// shape (as `train --adapter` in the CLI takes them). A tabtune.json in the files (tabtune's own exports) gives
// the stop token the adapter was trained to end its replies with; it goes into the job's data options.
import { loadPeftAdapter, PeftError, type PeftAdapter } from '../io/peft';
import { readTabtuneRecord } from '../io/export';
import { filesSource, type DroppedFile } from '../io/sources';
import { zipSource, ZipError } from '../io/zip';
import type { ModelSource } from '../io/source';
import { LoraAdapter } from '../lora/adapter';
import { OftAdapter } from '../oft/adapter';
import { browserTraining, resolveTrainConfig, type TrainConfig, type TrainConfigOverrides } from '../train/config';
import type { TrainerCheckpoint } from '../train/loop';
import type { AdapterInfo, FrozenInspectOptions, ImportAdapterPayload, RunJob, RunSummary } from '../protocol/messages';
import type { Adapters } from './adapters';
import { requireModel, type ModelContext, type WorkerContext } from './context';
import { fail, RequestFailure } from './errors';

/** What the job of an imported run says in place of a dataset. */
export const IMPORTED_DATA_NAME = 'imported adapter';

export interface ImportAdapterDeps {
  worker: Pick<WorkerContext, 'store' | 'model' | 'serialModel'>;
  adapters: Adapters;
  /** The run being trained, if any (its adapter is attached: nothing else can be). */
  training: () => { runId: string; name: string } | null;
}

/** The loaded model as a run's job records it (makeJob's `model`). */
function jobModel(ctx: ModelContext): RunJob['model'] {
  const info = ctx.model.info;
  return { name: ctx.model.name, label: ctx.source.label, arch: info.arch, numParams: info.numParams, vocabSize: info.vocabSize, baseModel: ctx.location.kind === 'hub' ? ctx.location.id : ctx.model.name };
}

/** "LoRA r8", "OFT b32", "prompt 16 tokens": the adapter's kind and shape, for the run's name. */
export function adapterShape(config: TrainConfig): string {
  if (config.mode === 'oft') return `OFT b${config.oft.oft_block_size}`;
  if (config.mode === 'prompt') return `prompt ${config.prompt.num_virtual_tokens} tokens`;
  return `LoRA r${config.lora.r}`;
}

function sourceOf(p: ImportAdapterPayload): ModelSource {
  if (p.zip !== undefined) {
    if (!(p.zip instanceof Uint8Array)) throw fail('BAD_REQUEST', 'import-adapter: zip must be the bytes of a zip archive.');
    try {
      return zipSource(p.zip, p.name?.trim() || 'the zip archive');
    } catch (e) {
      if (e instanceof ZipError) throw fail('BAD_REQUEST', `That file is ${e.message}.`, 'Pick the adapter folder itself, or a .zip of it (as tabtune\'s "PEFT adapter" export writes).');
      throw e;
    }
  }
  if (!Array.isArray(p.files) || !p.files.length) throw fail('BAD_REQUEST', 'import-adapter needs the adapter\'s files or a zip of them.', 'Pick the folder holding adapter_config.json and adapter_model.safetensors, or a .zip of it.');
  const src = filesSource(p.files as DroppedFile[]);
  return { label: p.name?.trim() || 'the picked folder', read: (x, on) => src.read(x, on) };
}

/** The run-config defaults with the imported adapter's kind and shape, checked against what this page can train. */
function configFor(arch: 'llama' | 'gpt2', adapter: PeftAdapter): TrainConfig {
  let over: TrainConfigOverrides;
  if (adapter instanceof OftAdapter) {
    const o = adapter.config;
    if (!o.oft_block_size) throw fail('BAD_REQUEST', 'This OFT adapter is given by its number of blocks (r), not a block size: it cannot be trained further here.', 'Save it from PEFT with oft_block_size set (r 0).');
    over = { mode: 'oft', oft: { oft_block_size: o.oft_block_size, module_dropout: o.module_dropout, target_modules: [...o.target_modules], coft: o.coft, eps: o.eps } };
  } else if (adapter instanceof LoraAdapter) {
    const l = adapter.config;
    over = { mode: 'lora', lora: { r: l.r, lora_alpha: l.lora_alpha, lora_dropout: l.lora_dropout, target_modules: [...l.target_modules] } };
  } else {
    over = { mode: 'prompt', prompt: { ...adapter.config } };
  }
  const r = resolveTrainConfig(arch, over, browserTraining(arch));
  if (!r.ok) throw fail('BAD_REQUEST', `This adapter's settings cannot be trained in this page: ${r.problems.join(' ')}`, 'Continue it with the command line (npm run cli -- train --adapter DIR), or import another adapter.');
  return r.config;
}

/** The checkpoint a trainer would write before its first step: the adapter's tensors and zero Adam moments. */
export function importedCheckpoint(adapter: PeftAdapter, seed: number): TrainerCheckpoint {
  const weights = adapter.getTensors();
  const tensors: TrainerCheckpoint['tensors'] = {};
  for (const [name, t] of Object.entries(weights)) {
    tensors[name] = t;
    tensors[`${name}.adam_m`] = { shape: [...t.shape], data: new Float32Array(t.data.length) };
    tensors[`${name}.adam_v`] = { shape: [...t.shape], data: new Float32Array(t.data.length) };
  }
  return {
    step: 0,
    tensors,
    state: { step: 0, micro: 0, seed, smoothLoss: null, smoothCount: 0, badSteps: 0, optimizerT: 0, lastValLoss: null, lastValStep: null, params: Object.keys(weights) },
    metrics: {},
  };
}

/** `import-adapter`: checks the adapter against the loaded model, stores it as a finished run, and makes it the active adapter. */
export async function importAdapter(deps: ImportAdapterDeps, p: ImportAdapterPayload): Promise<{ run: RunSummary; adapter: AdapterInfo | null; warnings: string[] }> {
  if (!p || typeof p !== 'object') throw fail('BAD_REQUEST', 'import-adapter needs a payload.');
  const runId = await deps.worker.serialModel(async () => {
    const ctx = requireModel(deps.worker);
    const training = deps.training();
    if (training) throw fail('BUSY', `Run "${training.name}" is training with its adapter attached.`, 'Wait for it to finish or cancel it, then import the adapter.', { runId: training.runId });
    const source = sourceOf(p);
    const warnings: string[] = [];
    // The imported adapter wraps the model's layers while it is read: nothing else may be attached.
    deps.adapters.detach();
    let adapter: PeftAdapter;
    try {
      adapter = await loadPeftAdapter(ctx.model.lm, source, { expectedBaseModel: jobModel(ctx).baseModel, onWarning: (m) => warnings.push(m) });
    } catch (e) {
      if (e instanceof RequestFailure) throw e;
      const msg = (e as Error).message;
      throw fail(
        'BAD_REQUEST',
        `This adapter does not fit the loaded model ${ctx.model.name}: ${msg}`,
        e instanceof PeftError || /shape|dimension|no module|not found/i.test(msg)
          ? `Load the base model the adapter was trained on (its adapter_config.json names it in base_model_name_or_path), or pick an adapter made for ${ctx.model.name}.`
          : 'Pick a PEFT adapter folder (adapter_config.json and adapter_model.safetensors) or a .zip of one.',
      );
    }
    try {
      const config = configFor(ctx.model.lm.config.arch, adapter);
      const rec = await readTabtuneRecord(source).catch(() => null);
      const stop: FrozenInspectOptions['stop'] = rec ? { stopTokenId: rec.stop_token_id, stopStrings: rec.stop_strings } : { stopTokenId: null, stopStrings: [] };
      const label = (p.name?.trim() || source.label).replace(/\.zip$/i, '');
      const job: RunJob = {
        kind: 'tabtune-run',
        version: 1,
        train: config,
        data: { datasetId: '', valDatasetId: null, name: IMPORTED_DATA_NAME, requested: {}, options: { stop }, trainExamples: 0, valExamples: 0 },
        model: jobModel(ctx),
      };
      const store = await deps.worker.store();
      const run = await store.runs.create({ name: `imported: ${label} (${adapterShape(config)})`.slice(0, 200), config: job, dataset: null, status: 'finished' });
      try {
        await store.checkpoints.save(run.id, importedCheckpoint(adapter, config.seed));
      } catch (e) {
        await store.deleteRun(run.id).catch(() => undefined);
        throw e;
      }
      return { id: run.id, warnings };
    } finally {
      adapter.dispose();
    }
  });
  const { adapter } = await deps.adapters.load({ runId: runId.id, step: 0 });
  const store = await deps.worker.store();
  const run = (await store.runs.get(runId.id))!;
  const checkpoints = await store.checkpoints.list(run.id, { gc: false });
  return { run: { ...run, probe: null, active: false, latestCheckpoint: checkpoints[checkpoints.length - 1] ?? null, checkpointCount: checkpoints.length, job: run.config as unknown as RunJob }, adapter, warnings: runId.warnings };
}
