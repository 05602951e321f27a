// "Train this on a GPU": the run configured in tabtune as a TRL script and as an Axolotl config, with the
// dataset written in the JSONL shapes both tools read. Same LoRA (r, alpha, dropout, targets) and the same
// optimisation (AdamW, lr, schedule, warmup, weight decay, clipping, batch, accumulation, steps/epochs,
// eval/save cadence, seed, sequence length, validation split).
//
// What cannot match exactly: the validation split draws other examples (each tool shuffles with its own
// RNG); the pair format is trained as plain prompt + completion text with the loss on the completion (TRL's
// prompt-completion, Axolotl's custom format with train_on_inputs false); chats use the tokenizer's chat
// template; transformers' warmup starts at lr * 0 where tabtune's starts at lr / warmup_steps.
import { GPT2_TARGETS, type LoraConfig } from '../train/config';
import type { DataRecord, Message } from '../data/types';
import type { TrainConfig } from '../train/config';

/** tabtune's training settings as the recipes read them (TrainConfig, with the data settings of the job). */
export type RecipeTrain = Pick<TrainConfig, 'lr' | 'warmupSteps' | 'weightDecay' | 'maxGradNorm' | 'batchSize' | 'gradAccum' | 'steps' | 'epochs' | 'evalEvery' | 'saveEvery' | 'seed'> & {
  schedule: 'constant' | 'linear' | 'cosine';
  /** Max tokens per example (longer ones are truncated). */
  seqLen: number;
  /** Fraction of the data held out for evaluation (0 = none). */
  valSplit: number;
  /** Cosine (and linear) floor as a fraction of lr, as tabtune's minLrRatio. Default 0. */
  minLrRatio?: number;
  /** Activation recomputation (tabtune's Recompute activations): the tools' gradient checkpointing. Default off. */
  recompute?: boolean;
};

export interface RecipeJob {
  /** Hub id (or path) of the base model. */
  baseModel: string;
  lora: LoraConfig;
  train: RecipeTrain;
  /** The JSONL file written by datasetForRecipes, as the scripts will find it. */
  datasetFile: string;
  /** 'pair': {"prompt", "completion"} lines; 'chat': {"messages": [...]} lines. */
  format: 'pair' | 'chat';
  /** Default: gpt2 when the targets are GPT-2 module names, else llama. */
  arch?: 'llama' | 'gpt2';
  /** Where the tools write checkpoints and the adapter (default "outputs/tabtune-lora"). */
  outputDir?: string;
}

export class RecipeError extends Error {
  override name = 'RecipeError';
}

const archOf = (job: RecipeJob) => job.arch ?? (job.lora.target_modules.some((t) => GPT2_TARGETS.includes(t)) ? 'gpt2' : 'llama');

function check(job: RecipeJob): void {
  const t = job.train;
  const bad = (what: string) => {
    throw new RecipeError(`recipe: ${what}`);
  };
  if (!job.baseModel) bad('baseModel is empty');
  if (!job.lora.target_modules.length) bad('lora.target_modules is empty');
  for (const [k, v] of Object.entries(t)) if (typeof v === 'number' && !Number.isFinite(v)) bad(`train.${k} is ${v}`);
  if (!(t.lr > 0)) bad(`learning rate must be positive, got ${t.lr}`);
  if (!(t.batchSize >= 1 && t.gradAccum >= 1 && t.seqLen >= 1)) bad('batchSize, gradAccum and seqLen must be at least 1');
  if (!(t.steps > 0 || t.epochs > 0)) bad('either steps or epochs must be positive');
  if (!(t.valSplit >= 0 && t.valSplit < 1)) bad(`valSplit must be in [0, 1), got ${t.valSplit}`);
}

// ---------------------------------------------------------------------------------------------------
// Python literals
// ---------------------------------------------------------------------------------------------------

/** A Python literal for JSON-like values (JSON strings are valid Python string literals). */
export function pyLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RecipeError(`cannot write ${v} as a Python number`);
    return String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pyLiteral).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as object).map(([k, x]) => `${JSON.stringify(k)}: ${pyLiteral(x)}`).join(', ')}}`;
  throw new RecipeError(`cannot write a ${typeof v} as a Python literal`);
}

/** transformers' lr_scheduler_type (+ kwargs) for tabtune's schedule. */
export function hfScheduler(t: RecipeTrain): { type: string; kwargs: Record<string, number> | null } {
  const min = t.minLrRatio ?? 0;
  if (t.schedule === 'constant') return { type: t.warmupSteps > 0 ? 'constant_with_warmup' : 'constant', kwargs: null };
  if (t.schedule === 'cosine' && min > 0) return { type: 'cosine_with_min_lr', kwargs: { min_lr_rate: min } };
  return { type: t.schedule, kwargs: null }; // linear decays to 0 in transformers (tabtune: to lr * minLrRatio)
}

const DEFAULT_OUT = 'outputs/tabtune-lora';

/** A runnable TRL (SFTTrainer + PEFT LoRA) script for the job. */
export function trlScript(job: RecipeJob): string {
  check(job);
  const t = job.train;
  const arch = archOf(job);
  const sched = hfScheduler(t);
  const lora: Record<string, unknown> = {
    r: job.lora.r,
    lora_alpha: job.lora.lora_alpha,
    lora_dropout: job.lora.lora_dropout,
    target_modules: job.lora.target_modules,
    bias: 'none',
    task_type: 'CAUSAL_LM',
  };
  if (arch === 'gpt2') lora.fan_in_fan_out = true; // GPT-2's Conv1D stores weights (in, out)
  const train: [string, unknown][] = [
    ['learning_rate', t.lr],
    ['lr_scheduler_type', sched.type],
    ...(sched.kwargs ? ([['lr_scheduler_kwargs', sched.kwargs]] as [string, unknown][]) : []),
    ['warmup_steps', t.warmupSteps],
    ['weight_decay', t.weightDecay],
    ['max_grad_norm', t.maxGradNorm],
    ['optim', 'adamw_torch'],
    ['adam_beta1', 0.9],
    ['adam_beta2', 0.999],
    ['adam_epsilon', 1e-8],
    ['per_device_train_batch_size', t.batchSize],
    ['per_device_eval_batch_size', t.batchSize],
    ['gradient_accumulation_steps', t.gradAccum],
    ...(t.recompute ? ([['gradient_checkpointing', true]] as [string, unknown][]) : []),
    t.steps > 0 ? ['max_steps', t.steps] : ['num_train_epochs', t.epochs],
    ['eval_strategy', t.evalEvery > 0 && t.valSplit > 0 ? 'steps' : 'no'],
    ...(t.evalEvery > 0 && t.valSplit > 0 ? ([['eval_steps', t.evalEvery]] as [string, unknown][]) : []),
    ['save_strategy', t.saveEvery > 0 ? 'steps' : 'no'],
    ...(t.saveEvery > 0 ? ([['save_steps', t.saveEvery]] as [string, unknown][]) : []),
    ['logging_steps', 1],
    ['seed', t.seed],
    ['data_seed', t.seed],
    ['max_length', t.seqLen],
    ['packing', false],
    ['report_to', 'none'],
  ];
  const dict = (entries: [string, unknown][]) => `dict(\n${entries.map(([k, v]) => `    ${k}=${pyLiteral(v)},`).join('\n')}\n)`;
  const dataDoc =
    job.format === 'pair'
      ? `{"prompt": "...", "completion": "..."} per line (loss on the completion only)`
      : `{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]} per line (formatted with the tokenizer's chat template)`;
  return `#!/usr/bin/env python3
"""LoRA fine-tuning of ${job.baseModel.replace(/\\/g, '/').replace(/"""/g, '')} with TRL: the recipe of a tabtune run.

Generated by tabtune. Install:
    pip install torch transformers peft trl datasets accelerate
Run (the data file is ${JSON.stringify(job.datasetFile)}, exported by tabtune next to this script):
    python train_trl.py [--data FILE] [--output-dir DIR] [--merge]
Data: ${dataDoc}.
Writes the adapter (adapter_config.json + adapter_model.safetensors, loadable in tabtune) to the output
directory, and with --merge the merged model to OUTPUT_DIR/merged.
"""
import argparse
import inspect

import torch
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

BASE_MODEL = ${pyLiteral(job.baseModel)}
DATA_FILE = ${pyLiteral(job.datasetFile)}
DATA_FORMAT = ${pyLiteral(job.format)}  # "pair": prompt/completion lines, "chat": messages lines
OUTPUT_DIR = ${pyLiteral(job.outputDir ?? DEFAULT_OUT)}
SEED = ${pyLiteral(t.seed)}
VAL_SPLIT = ${pyLiteral(t.valSplit)}  # fraction held out for evaluation

LORA = ${dict(Object.entries(lora))}
${t.schedule === 'linear' && (t.minLrRatio ?? 0) > 0 ? `# note: tabtune's linear decay stops at ${t.minLrRatio} x learning_rate; transformers' "linear" decays to 0\n` : ''}
TRAIN = ${dict(train)}


def sft_config(output_dir, **kw):
    """SFTConfig across versions: TRL < 0.16 calls max_length max_seq_length, transformers < 4.41 calls
    eval_strategy evaluation_strategy; options this version lacks are reported and left out."""
    params = inspect.signature(SFTConfig.__init__).parameters
    for new, old in (("max_length", "max_seq_length"), ("eval_strategy", "evaluation_strategy")):
        if new in kw and new not in params and old in params:
            kw[old] = kw.pop(new)
    for key in [k for k in kw if k not in params]:
        print(f"note: this TRL version has no SFTConfig({key}=...); left out")
        kw.pop(key)
    return SFTConfig(output_dir=output_dir, **kw)


def main():
    ap = argparse.ArgumentParser(description="LoRA fine-tuning with TRL (recipe exported by tabtune)")
    ap.add_argument("--data", default=DATA_FILE, help="JSONL training data (default: %(default)s)")
    ap.add_argument("--output-dir", default=OUTPUT_DIR, help="where checkpoints and the adapter go (default: %(default)s)")
    ap.add_argument("--merge", action="store_true", help="also save the merged model to OUTPUT_DIR/merged")
    ap.add_argument("--assistant-only-loss", action="store_true",
                    help="chat data: loss on assistant turns only (needs a chat template with {%% generation %%} markers)")
    args = ap.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL)

    data = load_dataset("json", data_files=args.data, split="train")
    train_data, eval_data = data, None
    if VAL_SPLIT > 0:
        split = data.train_test_split(test_size=VAL_SPLIT, seed=SEED)
        train_data, eval_data = split["train"], split["test"]

    train_args = dict(TRAIN)
    if eval_data is None:
        train_args["eval_strategy"] = "no"
        train_args.pop("eval_steps", None)
    if not torch.cuda.is_available():
        # Without a CUDA GPU train in float32 (recent TRL defaults to bf16, which needs one).
        train_args.update(bf16=False, fp16=False)
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            train_args["use_cpu"] = True
    if DATA_FORMAT == "chat" and args.assistant_only_loss:
        train_args["assistant_only_loss"] = True
    config = sft_config(args.output_dir, **train_args)

    trainer_kwargs = dict(
        model=model,
        args=config,
        train_dataset=train_data,
        eval_dataset=eval_data,
        peft_config=LoraConfig(**LORA),
    )
    # TRL >= 0.12 takes the tokenizer as processing_class, older versions as tokenizer.
    if "processing_class" in inspect.signature(SFTTrainer.__init__).parameters:
        trainer_kwargs["processing_class"] = tokenizer
    else:
        trainer_kwargs["tokenizer"] = tokenizer
    trainer = SFTTrainer(**trainer_kwargs)
    trainer.train()
    if eval_data is not None:
        print(trainer.evaluate())

    trainer.save_model(args.output_dir)  # adapter_config.json + adapter_model.safetensors
    tokenizer.save_pretrained(args.output_dir)
    if args.merge:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(f"{args.output_dir}/merged")
        tokenizer.save_pretrained(f"{args.output_dir}/merged")


if __name__ == "__main__":
    main()
`;
}

// ---------------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------------

/** A double-quoted YAML scalar (escapes what YAML 1.1 readers such as PyYAML refuse raw). */
export function yamlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0) || (c >= 0xd800 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** A YAML float that YAML 1.1 (PyYAML) also reads as a float: "2e-4" is a string there, "2.0e-04" is not. */
export function yamlFloat(n: number): string {
  if (!Number.isFinite(n)) throw new RecipeError(`cannot write ${n} as a YAML number`);
  const s = String(n);
  const m = /^(-?[\d.]+)e([+-]?)(\d+)$/.exec(s);
  if (m) {
    const mant = m[1]!.includes('.') ? m[1]! : `${m[1]}.0`;
    return `${mant}e${m[2] || '+'}${m[3]!.padStart(2, '0')}`;
  }
  return s.includes('.') ? s : `${s}.0`;
}

const yamlNum = (n: number) => (Number.isInteger(n) ? String(n) : yamlFloat(n));

/** An Axolotl config for the job. */
export function axolotlYaml(job: RecipeJob): string {
  check(job);
  const t = job.train;
  const arch = archOf(job);
  const min = t.minLrRatio ?? 0;
  const lines: string[] = [
    `# Axolotl config: the recipe of a tabtune LoRA run.`,
    `# Run: axolotl train this.yaml   (the data file ${job.datasetFile} was exported by tabtune)`,
    `base_model: ${yamlString(job.baseModel)}`,
    `load_in_8bit: false`,
    `load_in_4bit: false`,
    ``,
    `adapter: lora`,
    ...(Number.isInteger(job.lora.lora_alpha) ? [] : [`# note: Axolotl's schema wants an integer lora_alpha; ${job.lora.lora_alpha} gives the same scale as in tabtune but may be refused`]),
    `lora_r: ${job.lora.r}`,
    `lora_alpha: ${yamlNum(job.lora.lora_alpha)}`,
    `lora_dropout: ${yamlFloat(job.lora.lora_dropout)}`,
    `lora_target_modules:`,
    ...job.lora.target_modules.map((m) => `  - ${yamlString(m)}`),
  ];
  if (arch === 'gpt2') lines.push(`lora_fan_in_fan_out: true`);
  lines.push(``, `datasets:`, `  - path: ${yamlString(job.datasetFile)}`, `    ds_type: json`, `    split: train`);
  if (job.format === 'pair') {
    // Plain prompt + completion, loss on the completion (train_on_inputs: false).
    lines.push(
      `    type:`,
      `      field_instruction: prompt`,
      `      field_output: completion`,
      `      format: "{instruction}"`,
      `      no_input_format: "{instruction}"`,
    );
  } else {
    lines.push(
      `    type: chat_template`,
      `    field_messages: messages`,
      `    roles_to_train:`,
      `      - assistant`,
      `    message_field_training: training`,
      `chat_template: tokenizer_default`,
    );
  }
  lines.push(
    `train_on_inputs: false`,
    `val_set_size: ${yamlFloat(t.valSplit)}`,
    `dataset_prepared_path: ${yamlString(`${job.outputDir ?? DEFAULT_OUT}/prepared`)}`,
    `output_dir: ${yamlString(job.outputDir ?? DEFAULT_OUT)}`,
    ``,
    `sequence_len: ${t.seqLen}`,
    `sample_packing: false`,
    `pad_to_sequence_len: false`,
    ``,
    `micro_batch_size: ${t.batchSize}`,
    `gradient_accumulation_steps: ${t.gradAccum}`,
  );
  if (t.recompute) lines.push(`gradient_checkpointing: true`);
  if (t.steps > 0) lines.push(`max_steps: ${t.steps}`);
  else lines.push(`num_epochs: ${yamlNum(t.epochs)}`);
  lines.push(
    `optimizer: adamw_torch`,
    `adam_beta1: 0.9`,
    `adam_beta2: 0.999`,
    `adam_epsilon: ${yamlFloat(1e-8)}`,
    `learning_rate: ${yamlFloat(t.lr)}`,
    `lr_scheduler: ${t.schedule === 'constant' ? (t.warmupSteps > 0 ? 'constant_with_warmup' : 'constant') : t.schedule}`,
  );
  if (t.schedule === 'cosine' && min > 0) lines.push(`cosine_min_lr_ratio: ${yamlFloat(min)}`);
  if (t.schedule === 'linear' && min > 0) lines.push(`# note: tabtune's linear decay stops at ${min} x learning_rate; this one decays to 0`);
  lines.push(`warmup_steps: ${t.warmupSteps}`, `weight_decay: ${yamlFloat(t.weightDecay)}`, `max_grad_norm: ${yamlFloat(t.maxGradNorm)}`, ``);
  if (t.evalEvery > 0 && t.valSplit > 0) lines.push(`eval_steps: ${t.evalEvery}`);
  if (t.saveEvery > 0) lines.push(`save_steps: ${t.saveEvery}`);
  else lines.push(`save_strategy: "no"`);
  lines.push(`logging_steps: 1`, `seed: ${t.seed}`, ``);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------------

export interface RecipeDataset {
  /** One JSON object per line, newline-terminated. */
  jsonl: string;
  format: 'pair' | 'chat';
  /** Lines written. */
  count: number;
  /** Records left out (preference pairs: SFT recipes cannot use them). */
  skipped: number;
  notes: string[];
}

function messageJson(m: Message): Record<string, unknown> {
  // Axolotl reads "training": false (message_field_training) as "never train this turn"; TRL ignores it.
  return m.train === false ? { role: m.role, content: m.content, training: false } : { role: m.role, content: m.content };
}

/**
 * Why the recipes cannot describe a run, or null when they can: they describe supervised LoRA jobs on
 * prompt/completion or chat data (the one rule the CLI, the page's export and the model card follow).
 */
export function recipeUnavailable(config: Pick<TrainConfig, 'mode' | 'objective'>, records: readonly DataRecord[] | null): string | null {
  const what = { oft: 'an OFT adapter', prompt: 'a prompt-tuning adapter', full: 'every weight', lora: 'a LoRA adapter' }[config.mode];
  if (config.mode !== 'lora') return `this run trained ${what}; the TRL and Axolotl recipes describe LoRA jobs`;
  if ((config.objective ?? 'sft') !== 'sft') return `this run trained with ${config.objective === 'dpo' ? 'DPO' : config.objective}; the TRL and Axolotl recipes describe supervised (SFT) jobs`;
  // (records null: the data is not read yet; the settings alone decide so far)
  if (!records) return null;
  if (records.some((r) => r.kind === 'text')) return 'this run trained on plain text; the TRL and Axolotl recipes describe prompt/completion and chat jobs';
  if (!records.some((r) => r.kind === 'pair' || r.kind === 'chat')) return 'the dataset has no prompt/completion or chat records for the recipes';
  return null;
}

/**
 * The dataset as JSONL for TRL and Axolotl: prompt/completion lines when every record is a pair, else
 * messages lines (pairs become a user turn and an assistant turn). Preference records are skipped.
 */
export function datasetForRecipes(records: readonly DataRecord[]): RecipeDataset {
  const notes: string[] = [];
  const usable = records.filter((r) => r.kind !== 'preference');
  const skipped = records.length - usable.length;
  if (skipped) notes.push(`${skipped} preference record${skipped === 1 ? '' : 's'} left out (supervised fine-tuning uses pairs and chats only)`);
  const chat = usable.some((r) => r.kind === 'chat');
  const lines: string[] = [];
  let converted = 0;
  for (const r of usable) {
    if (r.kind === 'pair') {
      if (chat) {
        converted++;
        lines.push(JSON.stringify({ messages: [{ role: 'user', content: r.prompt }, { role: 'assistant', content: r.completion }] }));
      } else lines.push(JSON.stringify({ prompt: r.prompt, completion: r.completion }));
    } else if (r.kind === 'chat') lines.push(JSON.stringify({ messages: r.messages.map(messageJson) }));
  }
  if (converted) notes.push(`${converted} prompt/completion record${converted === 1 ? '' : 's'} written as user/assistant chats, since the data also has chats`);
  return { jsonl: lines.map((l) => l + '\n').join(''), format: chat ? 'chat' : 'pair', count: lines.length, skipped, notes };
}

/**
 * Everything for "train this elsewhere" in one folder: the data, the TRL script and the Axolotl config
 * (job.datasetFile and job.format are taken from the data).
 */
export function recipeFiles(job: Omit<RecipeJob, 'format'> & { format?: RecipeJob['format'] }, records: readonly DataRecord[]): Map<string, Uint8Array> {
  const data = datasetForRecipes(records);
  const full: RecipeJob = { ...job, format: data.format };
  const enc = new TextEncoder();
  return new Map([
    [job.datasetFile, enc.encode(data.jsonl)],
    ['train_trl.py', enc.encode(trlScript(full))],
    ['axolotl.yaml', enc.encode(axolotlYaml(full))],
  ]);
}
