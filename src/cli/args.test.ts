// The command line rejects what it does not know (never a silent no-op), and train's flags and --help
// come from the run configuration's table.
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_TRAINING, DEFAULT_TRAIN, NUMERIC_OPTIONS, parseTrainConfig, RECOMPUTE_OPTION } from '../train/config';
import { parseArgs, UsageError } from './args';
import { configFromArgs, TRAIN_OPTIONS, TRAIN_USAGE } from './commands/train';

const ROOT = resolve(__dirname, '../..');

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
}

describe('command-line options', () => {
  it('parses --key value, --key=value, flags and positionals', () => {
    const a = parseArgs(['inspect', 'f.jsonl', '--lr', '0.01', '--rank=4', '--full'], { lr: 'string', rank: 'string', full: 'boolean' }, 'train');
    expect(a).toEqual({ _: ['inspect', 'f.jsonl'], lr: '0.01', rank: '4', full: true });
  });

  it('an unknown option is an error that lists the valid ones and suggests the closest', () => {
    expect(() => parseArgs(['--lrate', '1'], { lr: 'string', rate: 'string', seed: 'string' }, 'train')).toThrow(UsageError);
    expect(() => parseArgs(['--sead', '1'], { lr: 'string', seed: 'string' }, 'train')).toThrow('train: unknown option --sead (did you mean --seed?)\nvalid options: --lr --seed');
    expect(() => parseArgs(['--lr'], { lr: 'string' }, 'train')).toThrow(/argument missing/);
  });

  it('a value that starts with a dash is still the value of the option before it (there are no short flags)', () => {
    expect(parseArgs(['--prompt', '-5 apples', '--stop', '-', '--lr', '-1'], { prompt: 'string', stop: 'string', lr: 'string' }, 'generate')).toEqual({ _: [], prompt: '-5 apples', stop: '-', lr: '-1' });
    expect(() => parseArgs(['--full', '-x'], { full: 'boolean' }, 'train')).toThrow(/unknown option -x/);
  });

  it("train's options and --help come from the run configuration's table", () => {
    for (const o of NUMERIC_OPTIONS) {
      expect(TRAIN_OPTIONS[o.flag]).toBe('string');
      expect(TRAIN_USAGE).toContain(`--${o.flag}`);
      expect(TRAIN_USAGE).toContain(o.help);
    }
    const args = parseArgs(['--lr', '0.002', '--rank', '4', '--alpha', '8', '--targets', 'q_proj,v_proj', '--steps', '12', '--schedule', 'linear'], TRAIN_OPTIONS, 'train');
    const c = configFromArgs(args, 'llama');
    expect(c).toMatchObject({ lr: 0.002, steps: 12, epochs: 0, schedule: 'linear', lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], lora_dropout: 0.05 } });
    expect(() => configFromArgs(parseArgs(['--rank', '0', '--schedule', 'exp'], TRAIN_OPTIONS, 'train'), 'llama')).toThrow(/--rank \(LoRA rank: must be between 1 and 256\.\)[\s\S]*--schedule \(Schedule: must be/);
  });

  it('--oft picks OFT (its block size and targets from --oft-block-size and --targets); refused with --full and on GPT-2', () => {
    const c = configFromArgs(parseArgs(['--oft', '--oft-block-size', '16', '--targets', 'q_proj,v_proj', '--steps', '3'], TRAIN_OPTIONS, 'train'), 'llama');
    expect(c.mode).toBe('oft');
    expect(c.oft).toEqual({ oft_block_size: 16, module_dropout: 0, target_modules: ['q_proj', 'v_proj'], coft: false, eps: 6e-5 });
    expect(c.lora.target_modules).toHaveLength(7); // LoRA's targets untouched
    expect(TRAIN_USAGE).toMatch(/--oft .*OFT adapter \(orthogonal\)/);
    expect(TRAIN_USAGE).toContain('--oft-block-size');
    expect(() => configFromArgs(parseArgs(['--oft', '--oft-block-size', '1'], TRAIN_OPTIONS, 'train'), 'llama')).toThrow(/--oft-block-size \(OFT block size: must be between 2 and 256\.\)/);
    expect(() => configFromArgs(parseArgs(['--oft', '--full'], TRAIN_OPTIONS, 'train'), 'llama')).toThrow(/pick one/);
    expect(() => configFromArgs(parseArgs(['--oft'], TRAIN_OPTIONS, 'train'), 'gpt2')).toThrow(/Conv1D/);
    // A setting of the other adapter kind is refused, not ignored.
    expect(() => configFromArgs(parseArgs(['--oft', '--rank', '4'], TRAIN_OPTIONS, 'train'), 'llama')).toThrow(/--rank: LoRA settings, but --oft trains an OFT adapter/);
    expect(() => configFromArgs(parseArgs(['--oft-block-size', '16'], TRAIN_OPTIONS, 'train'), 'llama')).toThrow(/--oft-block-size: an OFT setting; add --oft/);
  });

  it('--recompute turns on activation recomputation (off by default), listed in --help from the table', () => {
    expect(TRAIN_OPTIONS[RECOMPUTE_OPTION.flag]).toBe('boolean');
    expect(configFromArgs(parseArgs(['--steps', '3'], TRAIN_OPTIONS, 'train'), 'llama').recompute).toBe(false);
    expect(configFromArgs(parseArgs(['--recompute', '--steps', '3'], TRAIN_OPTIONS, 'train'), 'llama')).toMatchObject({ recompute: true, steps: 3, mode: 'lora' });
    expect(configFromArgs(parseArgs(['--recompute', '--full'], TRAIN_OPTIONS, 'train'), 'gpt2')).toMatchObject({ recompute: true, mode: 'full' });
    expect(TRAIN_USAGE).toContain(`--recompute`);
    expect(TRAIN_USAGE).toContain(RECOMPUTE_OPTION.help);
    // A stored configuration from before it is off; a value that is not a boolean is refused by name.
    const { recompute: _, ...old } = DEFAULT_TRAIN;
    expect(parseTrainConfig(old, CLI_TRAINING)).toMatchObject({ ok: true, config: { recompute: false } });
    expect(parseTrainConfig({ ...DEFAULT_TRAIN, recompute: 'yes' }, CLI_TRAINING)).toEqual({ ok: false, problems: ['Recompute activations: true or false.'] });
  });

  it('`train --no-such-option` (and a method tabtune does not have) exits non-zero naming the valid options', { timeout: 60_000 }, () => {
    const ppo = cli(['train', '--model', 'models/tabtune-tiny', '--data', 'x.jsonl', '--out', '/tmp/never', '--method', 'ppo']);
    expect(ppo.status).toBe(2);
    expect(ppo.stderr).toMatch(/--method ppo: must be sft, dpo, prompt-tuning/);
    for (const bad of [['--no-such-option'], ['--lora-rank', '8']]) {
      const r = cli(['train', '--model', 'models/tabtune-tiny', '--data', 'x.jsonl', '--out', '/tmp/never', ...bad]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`unknown option ${bad[0]}`));
      expect(r.stderr).toMatch(/valid options: .*--lr .*--rank .*--targets/);
      expect(r.stdout).toBe('');
    }
    const gen = cli(['generate', '--model', 'models/tabtune-tiny', '--promt', 'hi']);
    expect(gen.status).toBe(2);
    expect(gen.stderr).toMatch(/generate: unknown option --promt \(did you mean --prompt\?\)/);
  });
});
