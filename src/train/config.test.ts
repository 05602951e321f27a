// The run configuration: one table, one check, one step count for every host.
import { describe, expect, it } from 'vitest';
import { buildTrainConfig } from '../worker/training';
import { BROWSER_TRAINING, browserTraining, CLI_TRAINING, DEFAULT_TRAIN, defaultTrainConfig, modeChoices, MODES, NUMERIC_OPTIONS, parseTrainConfig, PROMPT_LR, resolveTrainConfig, TRAIN_KEYS, totalSteps, validateConfig, withMode } from './config';

describe('run configuration', () => {
  it('the defaults pass their own check, on both architectures', () => {
    expect(validateConfig(defaultTrainConfig('llama'), BROWSER_TRAINING)).toEqual([]);
    expect(validateConfig(defaultTrainConfig('gpt2'), BROWSER_TRAINING)).toEqual([]);
    expect(defaultTrainConfig('gpt2').lora.target_modules).toEqual(['c_attn', 'c_proj', 'c_fc']);
  });

  it('the table covers every numeric setting, each with a distinct flag and its default inside its bounds', () => {
    const numeric = TRAIN_KEYS.filter((k) => typeof DEFAULT_TRAIN[k as keyof typeof DEFAULT_TRAIN] === 'number');
    expect(NUMERIC_OPTIONS.filter((o) => !o.key.includes('.')).map((o) => o.key).sort()).toEqual(numeric.sort());
    expect(new Set(NUMERIC_OPTIONS.map((o) => o.flag)).size).toBe(NUMERIC_OPTIONS.length);
  });

  it('an unknown or misspelled setting is an error naming the known ones, not a silent no-op', () => {
    const r = parseTrainConfig({ ...DEFAULT_TRAIN, learningRate: 1e-3 }, CLI_TRAINING);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems[0]).toMatch(/Unknown setting\(s\): learningRate\. Known settings: mode, objective, lora, oft, prompt, schedule, .*lr/);
    const l = resolveTrainConfig('llama', { lora: { rank: 4 } as never }, CLI_TRAINING);
    expect(l.ok).toBe(false);
    if (!l.ok) expect(l.problems[0]).toMatch(/Unknown setting\(s\): lora\.rank\. Known settings: r, lora_alpha, lora_dropout, target_modules/);
  });

  it('bounds, whole numbers, schedule and mode are checked with one message per bad field', () => {
    const r = resolveTrainConfig('llama', { lr: 0, batchSize: 2.5, schedule: 'exponential' as never, lora: { r: 0 } }, CLI_TRAINING);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.problems).toContain('Learning rate: must be between 0.000001 and 10.');
      expect(r.problems).toContain('Batch size: must be a whole number.');
      expect(r.problems).toContain('LoRA rank: must be between 1 and 256.');
      expect(r.problems.some((p) => p.startsWith('Schedule: must be cosine, linear, constant'))).toBe(true);
    }
  });

  it('giving steps without epochs means that many steps', () => {
    const r = resolveTrainConfig('llama', { steps: 7 }, CLI_TRAINING);
    expect(r.ok && r.config.epochs).toBe(0);
    expect(r.ok && totalSteps(r.config, 1000)).toBe(7);
  });

  it('one step count: epochs x steps per epoch rounded up (fractional epochs included)', () => {
    const c = { ...DEFAULT_TRAIN, steps: 0, batchSize: 8, gradAccum: 1 };
    expect(totalSteps({ ...c, epochs: 1.1 }, 24)).toBe(4);
    expect(totalSteps({ ...c, epochs: 3 }, 24)).toBe(9);
    expect(totalSteps({ ...c, epochs: 3 }, 903)).toBe(3 * 113);
    expect(totalSteps({ ...c, epochs: 0.1 }, 30 * 8)).toBe(3);
    expect(totalSteps({ ...c, epochs: 1, gradAccum: 2 }, 24)).toBe(2);
    expect(totalSteps({ ...c, epochs: 0.1 }, 8)).toBe(1);
  });

  it('the worker refuses full-parameter training, and the Train panel never offers a mode the worker refuses', () => {
    expect(() => buildTrainConfig('llama', { mode: 'full' })).toThrow(/not available in the browser/);
    const offered = modeChoices(BROWSER_TRAINING, 'lora');
    expect(offered.map((m) => m.mode)).toEqual(['lora', 'oft', 'prompt']);
    for (const m of offered) expect(buildTrainConfig('llama', { mode: m.mode }).mode).toBe(m.mode);
    // A saved 'full' setting is shown as unavailable (not offered), and the check says why.
    expect(modeChoices(BROWSER_TRAINING, 'full')).toEqual([
      { mode: 'lora', label: 'LoRA adapter', available: true },
      { mode: 'oft', label: 'OFT adapter (orthogonal)', available: true },
      { mode: 'prompt', label: 'Prompt tuning (learned virtual tokens)', available: true },
      { mode: 'full', label: 'Every weight (full fine-tuning) (not available here)', available: false },
    ]);
    expect(validateConfig({ ...DEFAULT_TRAIN, mode: 'full' }, BROWSER_TRAINING)).toEqual([BROWSER_TRAINING.unavailable!.full]);
    // Where every mode runs (the CLI), every mode is offered and accepted.
    expect(modeChoices(CLI_TRAINING, 'lora').map((m) => m.mode)).toEqual([...MODES]);
    expect(validateConfig({ ...DEFAULT_TRAIN, mode: 'full' }, CLI_TRAINING)).toEqual([]);
  });

  it('OFT: its settings field by field, the defaults for stored configurations without them, refused where it cannot run', () => {
    const r = resolveTrainConfig('gpt2', { mode: 'oft', oft: { oft_block_size: 16 } }, CLI_TRAINING);
    expect(r.ok && r.config.oft).toEqual({ oft_block_size: 16, module_dropout: 0, target_modules: ['c_attn', 'c_proj', 'c_fc'], coft: false, eps: 6e-5 });
    expect(MODES).toContain('oft');
    expect(modeChoices(CLI_TRAINING, 'oft').find((m) => m.mode === 'oft')).toEqual({ mode: 'oft', label: 'OFT adapter (orthogonal)', available: true });
    // A configuration stored before OFT existed (no `oft`) still parses, with the defaults.
    const { oft: _, ...stored } = DEFAULT_TRAIN;
    const old = parseTrainConfig(stored, BROWSER_TRAINING);
    expect(old.ok && old.config.oft).toEqual(DEFAULT_TRAIN.oft);
    // The browser's worker trains OFT, except on GPT-2 (PEFT's OFT does not wrap its Conv1D layers): there it
    // is refused with the reason and not offered.
    expect(validateConfig({ ...DEFAULT_TRAIN, mode: 'oft' }, BROWSER_TRAINING)).toEqual([]);
    expect(browserTraining('llama')).toBe(BROWSER_TRAINING);
    expect(validateConfig({ ...DEFAULT_TRAIN, mode: 'oft' }, browserTraining('gpt2'))).toEqual([expect.stringMatching(/not available for GPT-2 models.*Conv1D/)]);
    expect(modeChoices(browserTraining('gpt2'), 'lora').map((m) => m.mode)).toEqual(['lora', 'prompt']); // prompt tuning needs no particular layer type
    expect(() => buildTrainConfig('gpt2', { mode: 'oft' })).toThrow(/GPT-2/);
    expect(buildTrainConfig('llama', { mode: 'oft' }).mode).toBe('oft');
    const bad = resolveTrainConfig('llama', { mode: 'oft', oft: { oft_block_size: 1, module_dropout: 1, target_modules: [], eps: 0 } }, CLI_TRAINING);
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.problems).toContain('OFT block size: must be between 2 and 256.');
      expect(bad.problems).toContain('OFT module dropout: must be at least 0 and below 1.');
      expect(bad.problems).toContain('OFT eps: must be positive.');
    }
    const empty = resolveTrainConfig('llama', { mode: 'oft', oft: { target_modules: [] } }, CLI_TRAINING);
    expect(!empty.ok && empty.problems).toEqual(['OFT targets: pick at least one layer type.']);
    const unknown = resolveTrainConfig('llama', { oft: { block: 4 } as never }, CLI_TRAINING);
    expect(!unknown.ok && unknown.problems[0]).toMatch(/Unknown setting\(s\): oft\.block\. Known settings: oft_block_size, module_dropout, target_modules, coft, eps/);
  });

  it("each method starts from its own learning rate; a rate the user set is kept; DPO's settings and prompt tuning's are checked", () => {
    const r = resolveTrainConfig('llama', { mode: 'prompt' }, CLI_TRAINING);
    expect(r.ok && r.config.lr).toBe(PROMPT_LR);
    const mine = resolveTrainConfig('llama', { mode: 'prompt', lr: 0.1 }, CLI_TRAINING);
    expect(mine.ok && mine.config.lr).toBe(0.1);
    const c = defaultTrainConfig('llama');
    expect(withMode(c, 'prompt').lr).toBe(PROMPT_LR);
    expect(withMode(withMode(c, 'prompt'), 'lora').lr).toBe(DEFAULT_TRAIN.lr);
    expect(withMode({ ...c, lr: 0.02 }, 'prompt').lr).toBe(0.02);
    const text = resolveTrainConfig('llama', { mode: 'prompt', prompt: { prompt_tuning_init: 'TEXT' } }, CLI_TRAINING);
    expect(!text.ok && text.problems[0]).toMatch(/a text is needed to start from a text/);
    const replay = resolveTrainConfig('llama', { objective: 'dpo', replayFraction: 0.1 }, CLI_TRAINING);
    expect(!replay.ok && replay.problems[0]).toMatch(/DPO trains on preference pairs only/);
    const beta = resolveTrainConfig('llama', { objective: 'dpo', dpoBeta: 0 }, CLI_TRAINING);
    expect(!beta.ok && beta.problems[0]).toMatch(/DPO beta: must be between 0.001 and 10/);
  });
});
