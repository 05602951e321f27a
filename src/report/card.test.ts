// The card's generic parts: the method named from any configuration (DPO, prompt tuning), settings that
// differ from the defaults, and what a run did not measure said rather than left out.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { defaultTrainConfig } from '../train/config';
import { changedSettings, checkpointReasons, methodOf, modelCard, NOT_MEASURED, type CardInput } from './card';
import { lossCurvePng } from './png';

function bare(config: Record<string, unknown> | null): CardInput {
  return {
    version: 1,
    target: 'adapter',
    run: { id: 'r1', name: 'a "quoted": run', createdAt: null, updatedAt: null, status: null, parent: null, derived: null },
    model: { name: 'm', baseModel: 'org/model: v2 # not a comment', source: null, arch: null, numParams: null },
    config,
    defaults: defaultTrainConfig('llama') as unknown as Record<string, unknown>,
    data: { name: 'd.jsonl', fingerprint: null, report: null, missing: 'the test gives none', template: null, plainFormat: null, stop: null, trainExamples: null, valExamples: null },
    points: [],
    quality: null,
    checkpoint: null,
    storedSteps: [],
    probe: null,
    backend: null,
    recipe: { unavailable: 'none in this test' },
    command: null,
    lossCurve: null,
  };
}

const frontOf = (md: string) => parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(md)![1]!) as Record<string, unknown>;

describe('model card', () => {
  it('names DPO and prompt tuning in the tags and the method section, with their settings', () => {
    const dpo = { ...defaultTrainConfig('llama'), objective: 'dpo', dpoBeta: 0.2 } as unknown as Record<string, unknown>;
    expect(methodOf(dpo).tags).toEqual(['lora', 'dpo']);
    const md = modelCard(bare(dpo));
    expect(frontOf(md).tags).toEqual(['tabtune', 'lora', 'dpo']);
    expect(md).toContain('Method: LoRA, DPO (direct preference optimization).');
    expect(md).toContain('| DPO | beta 0.2, RPO weight');
    expect(changedSettings(bare(dpo))).toEqual([['dpoBeta', '0.2', '0.1'], ['objective', 'dpo', 'sft']]);

    const prompt = { ...defaultTrainConfig('llama'), mode: 'prompt', prompt: { num_virtual_tokens: 8, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: 'Answer:' } } as unknown as Record<string, unknown>;
    const pmd = modelCard(bare(prompt));
    expect(frontOf(pmd)).toMatchObject({ library_name: 'peft', tags: ['tabtune', 'prompt-tuning', 'sft'] });
    expect(pmd).toContain('| Prompt tuning | num_virtual_tokens 8, prompt_tuning_init TEXT, prompt_tuning_init_text "Answer:" |');
    // Settings of other modes and objectives (LoRA's, DPO's) are not "changes" of a prompt-tuning SFT run.
    expect(changedSettings(bare(prompt)).map(([k]) => k)).toEqual(['mode', 'prompt.num_virtual_tokens', 'prompt.prompt_tuning_init', 'prompt.prompt_tuning_init_text']);
  });

  it('front matter quotes what YAML would misread; the license is left to the user', () => {
    const md = modelCard(bare(null));
    expect(frontOf(md)).toEqual({ base_model: 'org/model: v2 # not a comment', library_name: 'peft', pipeline_tag: 'text-generation', tags: ['tabtune', 'unknown', 'sft'] });
    expect(frontOf(md)).not.toHaveProperty('license');
    expect(md).toMatch(/^# license: not set/m);
  });

  it('says what was not measured instead of leaving it out', () => {
    const md = modelCard(bare(defaultTrainConfig('llama') as unknown as Record<string, unknown>));
    for (const label of ['SHA-256', 'Size, format, records', 'Architecture', 'Parameters', 'Steps', 'Training time', 'Backend', 'Best validation loss', 'Early stopping']) {
      expect(md.split('\n').find((l) => l.startsWith(`| ${label} |`)), label).toContain(`${NOT_MEASURED}: `);
    }
    expect(md).toContain(`## Evaluation\n\n${NOT_MEASURED}: the run made no evaluation on held-out examples`);
    expect(md).toContain(`## Loss curve\n\n${NOT_MEASURED}: no training step recorded`);
    expect(md).toContain(`Recipe for the Python tools: ${NOT_MEASURED}: none in this test.`);
    expect(md).toContain('Every setting is at its default.');
  });

  it('why a checkpoint: best, recommended, last, a rewind, or by hand', () => {
    const q = { criterion: 'val_loss', bestStep: 10, recommendedStep: 20, finalStep: 30, stoppedEarly: false, stopReason: null, sentence: null, budgetPct: 5 };
    const at = (step: number, run: Partial<CardInput['run']> = {}) => checkpointReasons({ ...bare(null), quality: q, run: { ...bare(null).run, ...run }, checkpoint: { step, trainLoss: 1, valLoss: 1, extra: null, pinned: false } });
    expect(at(10)).toEqual(['the best checkpoint by validation loss']);
    expect(at(20)[0]).toMatch(/^the recommended checkpoint/);
    expect(at(30)).toEqual(['the last step of the run']);
    expect(at(15)[0]).toMatch(/^chosen by hand/);
    expect(at(15, { parent: { runId: 'p', step: 5 } })[0]).toMatch(/^a branch continued from step 5 of run p/);
  });

  it('no loss to draw, no PNG', () => {
    expect(lossCurvePng([])).toBeNull();
    expect(lossCurvePng([{ type: 'step', step: 1, epoch: 0, loss: NaN, smoothLoss: NaN, lr: 0, gradNorm: 0, tokens: 1, tokensPerSec: 1 }])).toBeNull();
  });
});
