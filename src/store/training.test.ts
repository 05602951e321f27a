// The page's arithmetic for OFT runs, against the adapter the worker builds: the block size a layer gets
// (PEFT's nearest divisor) and the trainable-parameter count of the memory estimate equal those of a real
// OftAdapter on a tiny model; the method labels of runs.
import { beforeAll, describe, expect, it } from 'vitest';
import { setupBackend } from '../model/backend';
import { OftAdapter, oftBlocks } from '../oft/adapter';
import { tinyModel } from '../testing/tiny-model';
import { checkpoint, MODEL, run, runSummary } from '../testing/studio-fixtures';
import { BROWSER_TRAINING, browserTraining, CLI_TRAINING, defaultTrainConfig, MODE_OPTION, OFT_GPT2 } from '../train/config';
import {
  adapterTargets,
  dataKinds,
  defaultStartStep,
  dpoOffer,
  estimateMemory,
  keepMethod,
  lineageText,
  methodChoices,
  methodLabel,
  objectiveDataProblem,
  objectiveLabel,
  oftBlockSize,
  oftLayerParams,
  presetConfig,
  runMethodLabel,
  startFromRuns,
  toOverrides,
  withStartAdapter,
  withTarget,
} from './training';

describe('OFT in the memory estimate', () => {
  beforeAll(async () => {
    await setupBackend('cpu');
  });

  it('picks the block size oftBlocks picks, for every width and wanted size', () => {
    for (let n = 2; n <= 200; n++) {
      for (const b of [2, 3, 4, 5, 7, 8, 16, 24, 32, 33, 64, 100, 256]) {
        expect(oftBlockSize(n, b), `${n} inputs, blocks of ${b}`).toBe(oftBlocks(n, { oft_block_size: b }).blockSize);
      }
    }
    // 176 inputs, blocks of 32: 22 (8 blocks of 231 parameters).
    expect(oftLayerParams(176, 32)).toBe(8 * 231);
    expect(oftLayerParams(64, 32)).toBe(2 * 496);
  });

  it('counts the parameters an OftAdapter trains (targets, adjusted blocks), and fewer with smaller blocks', () => {
    // hidden 48 (blocks of 32 -> 24), intermediate 100 (down_proj's input: blocks of 32 -> 25).
    const lm = tinyModel({ arch: 'llama', hidden: 48, inter: 100, layers: 3, heads: 4, kvHeads: 2 });
    const model = { numParams: 100_000, hiddenSize: 48, intermediateSize: 100, layers: 3, vocabSize: 40, arch: 'llama' };
    for (const oft of [
      { oft_block_size: 32, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
      { oft_block_size: 8, target_modules: ['q_proj', 'down_proj'] },
      { oft_block_size: 7, target_modules: ['v_proj', 'up_proj'] },
    ]) {
      const base = defaultTrainConfig('llama');
      const c = { ...base, mode: 'oft' as const, oft: { ...base.oft, ...oft } };
      const adapter = new OftAdapter(lm, c.oft);
      try {
        expect(estimateMemory(model, c, 16).trainableParams, JSON.stringify(oft)).toBe(adapter.numParams());
        expect(adapter.numParams()).toBeGreaterThan(0);
      } finally {
        adapter.dispose();
      }
    }
    const c = { ...defaultTrainConfig('llama'), mode: 'oft' as const };
    const big = estimateMemory(model, c, 16);
    const small = estimateMemory(model, { ...c, oft: { ...c.oft, oft_block_size: 8 } }, 16);
    expect(small.trainableParams).toBeLessThan(big.trainableParams);
    expect(small.trainable).toBe(small.trainableParams * 4 * 4);
    // LoRA's targets do not count for OFT, OFT's not for LoRA.
    expect(estimateMemory(model, { ...c, lora: { ...c.lora, target_modules: ['q_proj'] } }, 16).trainableParams).toBe(big.trainableParams);
    const lora = estimateMemory(model, { ...c, mode: 'lora', oft: { ...c.oft, target_modules: ['q_proj'] } }, 16);
    expect(lora.trainableParams).toBe(3 * 8 * (4 * 96 + 2 * 148 + 148));
  });
});

describe('method labels', () => {
  it('LoRA with its rank, OFT with its block size (the default for configurations stored before OFT), prompt tuning with its tokens, full', () => {
    const c = defaultTrainConfig('llama');
    expect(methodLabel(c)).toBe('LoRA r8');
    expect(methodLabel({ ...c, mode: 'oft', oft: { ...c.oft, oft_block_size: 16 } })).toBe('OFT b16');
    expect(methodLabel({ mode: 'oft', lora: c.lora })).toBe('OFT b32');
    expect(methodLabel({ ...c, mode: 'prompt', prompt: { ...c.prompt, num_virtual_tokens: 8 } })).toBe('Prompt 8 tokens');
    expect(methodLabel({ ...c, mode: 'prompt', prompt: { ...c.prompt, num_virtual_tokens: 1 } })).toBe('Prompt 1 token');
    expect(methodLabel({ mode: 'prompt' })).toBe('Prompt 16 tokens');
    expect(methodLabel({ ...c, mode: 'full' })).toBe('full');
  });

  it('the objective: SFT (also for configurations stored before DPO) or DPO, before the adapter', () => {
    const c = defaultTrainConfig('llama');
    expect(runMethodLabel(c)).toBe('SFT · LoRA r8');
    expect(runMethodLabel({ mode: 'lora', lora: { r: 4 } })).toBe('SFT · LoRA r4');
    expect(runMethodLabel({ ...c, objective: 'dpo', mode: 'oft' })).toBe('DPO · OFT b32');
    expect(runMethodLabel({ ...c, objective: 'dpo', mode: 'prompt' })).toBe('DPO · Prompt 16 tokens');
    expect(objectiveLabel({})).toBe('SFT');
  });
});

describe('the method picker', () => {
  it('offers LoRA, OFT and prompt tuning with their trade-offs; what the worker cannot train carries its reason; full only where it runs', () => {
    const browser = methodChoices(BROWSER_TRAINING);
    expect(browser.map((m) => m.mode)).toEqual(['lora', 'oft', 'prompt']);
    expect(browser.map((m) => m.tradeoff)).toEqual([MODE_OPTION.tradeoffs.lora, MODE_OPTION.tradeoffs.oft, MODE_OPTION.tradeoffs.prompt]);
    for (const m of browser) expect(m.unavailable === null, m.mode).toBe(BROWSER_TRAINING.modes.includes(m.mode));
    const gpt2 = methodChoices(browserTraining('gpt2'));
    expect(gpt2.find((m) => m.mode === 'oft')!.unavailable).toBe(OFT_GPT2);
    expect(gpt2.find((m) => m.mode === 'lora')!.unavailable).toBeNull();
    expect(methodChoices({ modes: ['lora'] }).find((m) => m.mode === 'prompt')!.unavailable).toBe('Prompt tuning (learned virtual tokens) is not available here.');
    expect(methodChoices(CLI_TRAINING).map((m) => [m.mode, m.unavailable])).toEqual([['lora', null], ['oft', null], ['prompt', null], ['full', null]]);
    // Full, picked elsewhere, is shown (unavailable, with the reason) rather than silently dropped.
    expect(methodChoices(BROWSER_TRAINING, 'full').at(-1)).toMatchObject({ mode: 'full', unavailable: BROWSER_TRAINING.unavailable!.full });
  });
});

describe('prompt tuning and DPO in the memory estimate', () => {
  const model = { numParams: 100_000, hiddenSize: 48, intermediateSize: 100, layers: 3, vocabSize: 40, arch: 'llama' };
  it("counts PEFT's prompt_embeddings (virtual tokens x hidden), not LoRA's targets, and their positions in the activations", () => {
    const c = { ...defaultTrainConfig('llama'), mode: 'prompt' as const, prompt: { ...defaultTrainConfig('llama').prompt, num_virtual_tokens: 20 } };
    const m = estimateMemory(model, c, 16);
    expect(m.trainableParams).toBe(20 * 48);
    // The same activations as a run on sequences 20 tokens longer that adapts no linear layer.
    expect(m.activations).toBe(estimateMemory(model, { ...c, mode: 'lora', lora: { ...c.lora, target_modules: [] } }, 36).activations);
  });
  it('DPO holds both replies of each pair: the activations of twice the batch', () => {
    const c = defaultTrainConfig('llama');
    expect(estimateMemory(model, { ...c, objective: 'dpo' }, 16).activations).toBe(estimateMemory(model, { ...c, batchSize: 2 * c.batchSize }, 16).activations);
    expect(estimateMemory(model, { ...c, objective: 'dpo' }, 16).trainableParams).toBe(estimateMemory(model, c, 16).trainableParams);
  });
});

describe("DPO's data and starting point", () => {
  const kinds = (pair: number, chat: number, preference: number) => ({ kinds: { pair, chat, preference } });
  it('offers DPO for a dataset of preference pairs only, and says what each objective lacks', () => {
    expect(dpoOffer(kinds(0, 0, 12))).toBe(
      'This dataset holds 12 preference pairs (prompt, chosen and rejected replies) and no prompt/completion examples: it trains with DPO, which learns to prefer the chosen reply.',
    );
    expect(dpoOffer(kinds(3, 0, 12))).toBeNull();
    expect(dpoOffer(kinds(3, 2, 0))).toBeNull();
    expect(dpoOffer(null)).toBeNull();
    expect(objectiveDataProblem('dpo', kinds(5, 1, 0))).toMatch(/^DPO needs preference pairs, and this dataset has none: add a JSONL file whose lines have "prompt", "chosen" and "rejected"/);
    expect(objectiveDataProblem('dpo', kinds(5, 0, 1))).toBeNull();
    expect(objectiveDataProblem('sft', kinds(0, 0, 4))).toBe('SFT needs prompt/completion or chat examples, and this dataset holds only preference pairs: pick DPO as the objective.');
    expect(objectiveDataProblem('sft', kinds(1, 0, 4))).toBeNull();
    expect(objectiveDataProblem('dpo', null)).toBeNull();
    expect(dataKinds(kinds(2, 3, 4))).toEqual({ preference: 4, sft: 5 });
  });

  it('starts from runs made on the page, with a checkpoint, not training, on the loaded model', () => {
    const ck = checkpoint('a', 10);
    const runs = [
      run('a', { checkpoints: [ck] }),
      run('none'),
      run('busy', { checkpoints: [ck], active: true }),
      run('cli', { checkpoints: [ck], job: false }),
      run('other', { checkpoints: [ck], model: { numParams: 1 } }),
    ];
    expect(startFromRuns(runs, MODEL).map((r) => r.id)).toEqual(['a']);
    expect(startFromRuns(runs, null).map((r) => r.id)).toEqual(['a', 'other']);
  });

  it("takes the adapter (method, shape, targets) of the run it starts from, keeps the rest", () => {
    const c = { ...defaultTrainConfig('llama'), objective: 'dpo' as const, lr: 1e-4 };
    const parent = { ...defaultTrainConfig('llama'), mode: 'oft' as const, oft: { ...defaultTrainConfig('llama').oft, oft_block_size: 16, target_modules: ['q_proj'] } };
    const next = withStartAdapter(c, parent);
    expect([next.mode, next.oft.oft_block_size, next.oft.target_modules, next.lr, next.objective]).toEqual(['oft', 16, ['q_proj'], 1e-4, 'dpo']);
    expect(next.oft.target_modules).not.toBe(parent.oft.target_modules);
    // A configuration stored before OFT and prompt tuning: theirs stay as they were.
    const old = withStartAdapter(c, { mode: 'lora', lora: { ...c.lora, r: 4 } } as never);
    expect([old.mode, old.lora.r, old.oft, old.prompt]).toEqual(['lora', 4, c.oft, c.prompt]);
  });

  it("picks the run's recommended checkpoint to start from, else its best, else its newest; presets keep the picked method", () => {
    const q = (recommendedStep: number | null, bestStep: number | null) => ({ quality: { recommendedStep, bestStep } });
    expect(defaultStartStep(q(20, 30), [10, 20, 30])).toBe(20);
    expect(defaultStartStep(q(15, 30), [10, 20, 30])).toBe(30);
    expect(defaultStartStep(q(15, 25), [10, 30, 20])).toBe(30);
    expect(defaultStartStep({}, [])).toBeNull();
    const picked = { ...defaultTrainConfig('llama'), mode: 'prompt' as const, objective: 'dpo' as const, dpoBeta: 0.3, rpoAlpha: 1, prompt: { ...defaultTrainConfig('llama').prompt, num_virtual_tokens: 4 } };
    const quick = keepMethod(presetConfig('quick', 'llama'), picked);
    expect([quick.mode, quick.objective, quick.dpoBeta, quick.rpoAlpha, quick.prompt.num_virtual_tokens, quick.steps, quick.lora.r]).toEqual(['prompt', 'dpo', 0.3, 1, 4, 60, 4]);
  });

  it('names the run and step a run started from (lineage)', () => {
    const parent = runSummary('p', { name: 'sft numbers' });
    const child = run('c');
    expect(lineageText(child, [parent])).toBeNull();
    const started = { ...child, job: { ...child.job!, startFrom: { runId: 'p', step: 30 } } };
    expect(lineageText(started, [parent, child])).toBe('started from sft numbers at step 30');
    expect(lineageText(started, [child])).toBe('started from a deleted run at step 30');
  });
});

describe('the targets the Train panel edits', () => {
  it("OFT's for OFT, LoRA's otherwise; the other adapter's stay as they are; the overrides carry both", () => {
    const c = { ...defaultTrainConfig('llama'), lora: { ...defaultTrainConfig('llama').lora, target_modules: ['q_proj', 'v_proj'] } };
    const o = { ...c, mode: 'oft' as const };
    expect(adapterTargets(c)).toEqual(['q_proj', 'v_proj']);
    expect(adapterTargets(o)).toEqual(c.oft.target_modules);
    const lessO = withTarget(o, 'down_proj', false);
    expect(lessO.oft.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj']);
    expect(lessO.lora.target_modules).toEqual(['q_proj', 'v_proj']);
    expect(withTarget(withTarget(lessO, 'down_proj', true), 'down_proj', true).oft.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    const moreL = withTarget(c, 'o_proj', true);
    expect(moreL.lora.target_modules).toEqual(['q_proj', 'v_proj', 'o_proj']);
    expect(moreL.oft.target_modules).toEqual(c.oft.target_modules);
    expect(withTarget({ ...c, mode: 'full' }, 'q_proj', false).lora.target_modules).toEqual(['v_proj']);
    const over = toOverrides(lessO);
    expect(over.oft).toEqual(lessO.oft);
    expect(over.oft!.target_modules).not.toBe(lessO.oft.target_modules);
  });
});
