import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataRecord } from '../data/types';
import { axolotlYaml, datasetForRecipes, hfScheduler, pyLiteral, recipeFiles, RecipeError, trlScript, yamlFloat, yamlString, type RecipeJob } from './recipes';

const JOB: RecipeJob = {
  baseModel: 'HuggingFaceTB/SmolLM2-135M',
  lora: { r: 16, lora_alpha: 32, lora_dropout: 0.05, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  train: {
    lr: 2e-4,
    schedule: 'cosine',
    warmupSteps: 20,
    weightDecay: 0.01,
    maxGradNorm: 1,
    batchSize: 4,
    gradAccum: 2,
    steps: 300,
    epochs: 3,
    evalEvery: 25,
    saveEvery: 100,
    seed: 1234,
    seqLen: 512,
    valSplit: 0.1,
    minLrRatio: 0.1,
  },
  datasetFile: 'train.jsonl',
  format: 'pair',
};

const python = (args: string[], input?: string) => execFileSync('python3', args, { encoding: 'utf8', input });

/** LORA and TRAIN of a generated script, read by Python's own parser (ast.literal_eval of the dict(...) keywords). */
const READ_DICTS = String.raw`
import ast, json, sys
tree = ast.parse(open(sys.argv[1]).read())
out = {}
for node in tree.body:
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        name, v = node.targets[0].id, node.value
        if isinstance(v, ast.Call) and getattr(v.func, "id", None) == "dict":
            out[name] = {k.arg: ast.literal_eval(k.value) for k in v.keywords}
        else:
            try:
                out[name] = ast.literal_eval(v)
            except ValueError:
                pass
print(json.dumps(out))
`;

/** YAML -> JSON with PyYAML; without PyYAML a line-based reader for the flat "key: value" lines. */
const READ_YAML = String.raw`
import json, re, sys
text = sys.stdin.read()
try:
    import yaml
    print(json.dumps({"parser": "pyyaml", "doc": yaml.safe_load(text)}))
except ImportError:
    doc = {}
    for line in text.splitlines():
        m = re.match(r'^([a-z_0-9]+): (.+)$', line)
        if m:
            v = m.group(2)
            if v.startswith('"'):
                v = json.loads(v)
            elif v in ("true", "false"):
                v = v == "true"
            elif re.match(r'^-?\d+$', v):
                v = int(v)
            elif re.match(r'^-?\d+\.\d*(e[-+]\d+)?$', v):
                v = float(v)
            doc[m.group(1)] = v
    print(json.dumps({"parser": "lines", "doc": doc}))
`;

describe('TRL script', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tabtune-recipes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function compileAndRead(job: RecipeJob, name: string): Record<string, Record<string, unknown> | unknown> {
    const file = join(dir, name);
    writeFileSync(file, trlScript(job));
    python(['-m', 'py_compile', file]);
    return JSON.parse(python(['-c', READ_DICTS, file])) as Record<string, Record<string, unknown>>;
  }

  it('compiles and carries the job hyper-parameters', () => {
    const d = compileAndRead(JOB, 'pair.py');
    expect(d.BASE_MODEL).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(d.DATA_FILE).toBe('train.jsonl');
    expect(d.DATA_FORMAT).toBe('pair');
    expect(d.SEED).toBe(1234);
    expect(d.VAL_SPLIT).toBe(0.1);
    expect(d.LORA).toEqual({ r: 16, lora_alpha: 32, lora_dropout: 0.05, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], bias: 'none', task_type: 'CAUSAL_LM' });
    expect(d.TRAIN).toEqual({
      learning_rate: 2e-4,
      lr_scheduler_type: 'cosine_with_min_lr',
      lr_scheduler_kwargs: { min_lr_rate: 0.1 },
      warmup_steps: 20,
      weight_decay: 0.01,
      max_grad_norm: 1,
      optim: 'adamw_torch',
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      per_device_train_batch_size: 4,
      per_device_eval_batch_size: 4,
      gradient_accumulation_steps: 2,
      max_steps: 300,
      eval_strategy: 'steps',
      eval_steps: 25,
      save_strategy: 'steps',
      save_steps: 100,
      logging_steps: 1,
      seed: 1234,
      data_seed: 1234,
      max_length: 512,
      packing: false,
      report_to: 'none',
    });
    const src = trlScript(JOB);
    expect(src).toMatch(/from trl import SFTConfig, SFTTrainer/);
    expect(src).toMatch(/peft_config=LoraConfig\(\*\*LORA\)/);
    expect(src).toMatch(/load_dataset\("json", data_files=args\.data, split="train"\)/);
  });

  it('epochs instead of steps, other schedules, GPT-2 fan_in_fan_out, chat data, no eval/save', () => {
    const job: RecipeJob = {
      ...JOB,
      baseModel: 'openai-community/gpt2',
      lora: { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['c_attn'] },
      train: { ...JOB.train, steps: 0, epochs: 2, schedule: 'constant', evalEvery: 0, saveEvery: 0, valSplit: 0, recompute: true },
      format: 'chat',
    };
    const d = compileAndRead(job, 'chat.py') as { LORA: Record<string, unknown>; TRAIN: Record<string, unknown>; DATA_FORMAT: string };
    // tabtune's Recompute activations is transformers' gradient checkpointing.
    expect(d.TRAIN.gradient_checkpointing).toBe(true);
    expect(trlScript(JOB)).not.toContain('gradient_checkpointing');
    expect(d.LORA.fan_in_fan_out).toBe(true);
    expect(d.DATA_FORMAT).toBe('chat');
    expect(d.TRAIN).toMatchObject({ num_train_epochs: 2, lr_scheduler_type: 'constant_with_warmup', eval_strategy: 'no', save_strategy: 'no' });
    expect(d.TRAIN).not.toHaveProperty('max_steps');
    expect(d.TRAIN).not.toHaveProperty('eval_steps');
    expect(d.TRAIN).not.toHaveProperty('lr_scheduler_kwargs');
    expect(hfScheduler({ ...JOB.train, schedule: 'linear' })).toEqual({ type: 'linear', kwargs: null });
    expect(hfScheduler({ ...JOB.train, schedule: 'cosine', minLrRatio: 0 })).toEqual({ type: 'cosine', kwargs: null });
    expect(hfScheduler({ ...JOB.train, schedule: 'constant', warmupSteps: 0 })).toEqual({ type: 'constant', kwargs: null });
  });

  it('notes what transformers cannot reproduce (linear decay to a floor)', () => {
    const job: RecipeJob = { ...JOB, train: { ...JOB.train, schedule: 'linear', minLrRatio: 0.2 } };
    const d = compileAndRead(job, 'linear.py') as { TRAIN: Record<string, unknown> };
    expect(d.TRAIN.lr_scheduler_type).toBe('linear');
    expect(trlScript(job)).toMatch(/^# note: tabtune's linear decay stops at 0.2 x learning_rate/m);
    expect(axolotlYaml(job)).toMatch(/^# note: tabtune's linear decay stops at 0.2 x learning_rate/m);
  });

  it('quotes awkward names safely', () => {
    const d = compileAndRead({ ...JOB, baseModel: 'C:\\models\\"odd" name\u00e9', datasetFile: 'data/my "file".jsonl' }, 'odd.py');
    expect(d.BASE_MODEL).toBe('C:\\models\\"odd" name\u00e9');
    expect(d.DATA_FILE).toBe('data/my "file".jsonl');
    expect(pyLiteral([1, true, null, 'a', { b: 2.5 }])).toBe('[1, True, None, "a", {"b": 2.5}]');
    expect(() => pyLiteral(NaN)).toThrow(RecipeError);
  });

  it('refuses impossible jobs', () => {
    expect(() => trlScript({ ...JOB, train: { ...JOB.train, lr: 0 } })).toThrow(RecipeError);
    expect(() => trlScript({ ...JOB, train: { ...JOB.train, steps: 0, epochs: 0 } })).toThrow(RecipeError);
    expect(() => axolotlYaml({ ...JOB, lora: { ...JOB.lora, target_modules: [] } })).toThrow(RecipeError);
  });
});

describe('Axolotl config', () => {
  const parse = (yaml: string, noSite = false) => JSON.parse(python([...(noSite ? ['-S'] : []), '-c', READ_YAML], yaml)) as { parser: string; doc: Record<string, unknown> };

  it('parses and has the job values with the right types', () => {
    const { parser, doc } = parse(axolotlYaml(JOB));
    expect(doc).toMatchObject({
      base_model: 'HuggingFaceTB/SmolLM2-135M',
      adapter: 'lora',
      lora_r: 16,
      lora_alpha: 32,
      lora_dropout: 0.05,
      sequence_len: 512,
      micro_batch_size: 4,
      gradient_accumulation_steps: 2,
      max_steps: 300,
      learning_rate: 2e-4, // a float, not the string "2e-4"
      lr_scheduler: 'cosine',
      cosine_min_lr_ratio: 0.1,
      warmup_steps: 20,
      weight_decay: 0.01,
      max_grad_norm: 1,
      seed: 1234,
      val_set_size: 0.1,
      eval_steps: 25,
      save_steps: 100,
      train_on_inputs: false,
      output_dir: 'outputs/tabtune-lora',
    });
    expect(doc).not.toHaveProperty('num_epochs');
    // the line reader (used where PyYAML is missing; python3 -S hides site-packages) agrees on the flat keys
    const lines = parse(axolotlYaml(JOB), true);
    if (lines.parser === 'lines' && parser === 'pyyaml') {
      for (const [k, v] of Object.entries(lines.doc)) expect(doc[k]).toEqual(v);
      expect(Object.keys(lines.doc).length).toBeGreaterThan(25);
    }
    if (parser === 'pyyaml') {
      expect(doc.lora_target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj']);
      expect(doc.datasets).toEqual([
        { path: 'train.jsonl', ds_type: 'json', split: 'train', type: { field_instruction: 'prompt', field_output: 'completion', format: '{instruction}', no_input_format: '{instruction}' } },
      ]);
    }
  });

  it('chat data uses chat_template; epochs, constant schedule, GPT-2', () => {
    const job: RecipeJob = {
      ...JOB,
      lora: { r: 8, lora_alpha: 12.5, lora_dropout: 0, target_modules: ['c_attn', 'c_fc'] },
      train: { ...JOB.train, steps: 0, epochs: 3, schedule: 'constant', saveEvery: 0, recompute: true },
      format: 'chat',
    };
    const { parser, doc } = parse(axolotlYaml(job));
    expect(axolotlYaml(JOB)).not.toContain('gradient_checkpointing');
    expect(doc).toMatchObject({ gradient_checkpointing: true, num_epochs: 3, lr_scheduler: 'constant_with_warmup', lora_alpha: 12.5, lora_fan_in_fan_out: true, save_strategy: 'no', chat_template: 'tokenizer_default' });
    expect(doc).not.toHaveProperty('max_steps');
    expect(doc).not.toHaveProperty('cosine_min_lr_ratio');
    if (parser === 'pyyaml') {
      expect(doc.datasets).toEqual([
        { path: 'train.jsonl', ds_type: 'json', split: 'train', type: 'chat_template', field_messages: 'messages', roles_to_train: ['assistant'], message_field_training: 'training' },
      ]);
    }
  });

  it('writes YAML 1.1-safe scalars', () => {
    expect(yamlFloat(2e-4)).toBe('0.0002');
    expect(yamlFloat(2e-7)).toBe('2.0e-07');
    expect(yamlFloat(1.5e-12)).toBe('1.5e-12');
    expect(yamlFloat(3)).toBe('3.0');
    expect(yamlFloat(1e21)).toBe('1.0e+21');
    expect(yamlString('a "b" \\ c\n\u007f')).toBe('"a \\"b\\" \\\\ c\\n\\u007f"');
    const { doc } = parse(`a: ${yamlFloat(2e-7)}\nb: ${yamlString('x: {y} # z "q" \u00e9\u007f')}\n`);
    expect(doc).toEqual({ a: 2e-7, b: 'x: {y} # z "q" \u00e9\u007f' });
  });
});

describe('datasetForRecipes', () => {
  const pair = (prompt: string, completion: string, line = 1): DataRecord => ({ kind: 'pair', prompt, completion, line });

  it('writes prompt/completion JSONL for pairs', () => {
    const d = datasetForRecipes([pair('Q1 "x"', 'A1\n'), pair('Q2', 'A2')]);
    expect(d.format).toBe('pair');
    expect(d.count).toBe(2);
    expect(d.jsonl).toBe('{"prompt":"Q1 \\"x\\"","completion":"A1\\n"}\n{"prompt":"Q2","completion":"A2"}\n');
  });

  it('writes messages JSONL when there are chats (pairs become user/assistant turns), skips preference records', () => {
    const records: DataRecord[] = [
      { kind: 'chat', line: 1, messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'U' }, { role: 'assistant', content: 'draft', train: false }, { role: 'user', content: 'again' }, { role: 'assistant', content: 'A' }] },
      pair('P', 'C', 2),
      { kind: 'preference', line: 3, prompt: [{ role: 'user', content: 'x' }], chosen: 'a', rejected: 'b' },
    ];
    const d = datasetForRecipes(records);
    expect(d.format).toBe('chat');
    expect(d.count).toBe(2);
    expect(d.skipped).toBe(1);
    expect(d.notes.length).toBe(2);
    const lines = d.jsonl.trimEnd().split('\n').map((l) => JSON.parse(l) as { messages: unknown[] });
    expect(lines[0]!.messages[2]).toEqual({ role: 'assistant', content: 'draft', training: false });
    expect(lines[0]!.messages[4]).toEqual({ role: 'assistant', content: 'A' });
    expect(lines[1]).toEqual({ messages: [{ role: 'user', content: 'P' }, { role: 'assistant', content: 'C' }] });
  });

  it('recipeFiles bundles data, script and config with the data format', () => {
    const files = recipeFiles({ ...JOB, datasetFile: 'data.jsonl' }, [{ kind: 'chat', line: 1, messages: [{ role: 'user', content: 'U' }, { role: 'assistant', content: 'A' }] }]);
    expect([...files.keys()]).toEqual(['data.jsonl', 'train_trl.py', 'axolotl.yaml']);
    const dec = (k: string) => new TextDecoder().decode(files.get(k)!);
    expect(dec('train_trl.py')).toMatch(/^DATA_FORMAT = "chat"/m);
    expect(dec('train_trl.py')).toMatch(/^DATA_FILE = "data.jsonl"/m);
    expect(dec('axolotl.yaml')).toMatch(/type: chat_template/);
  });
});
