// `npm run cli -- train`: JSON lines, PEFT output, an interrupted run resumed exactly, and the
// adapter used by generate / forward / export-merged.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli as cli } from '../testing/cli';
import { SafetensorsFile } from '../io/safetensors';
import { TINY_DIR } from '../testing/models';

const ROOT = resolve(__dirname, '../..');


const stepLosses = (lines: Record<string, unknown>[]) => new Map(lines.filter((l) => typeof l.loss === 'number').map((l) => [l.step as number, l.loss as number]));

describe('npm run cli -- train', () => {
  let model: string;
  const tmp = mkdtempSync(join(tmpdir(), 'tabtune-train-'));
  const common = () => ['train', '--model', model, '--data', 'public/examples/story-sentiment.train.jsonl', '--val', 'public/examples/story-sentiment.val.jsonl', '--steps', '8', '--save-every', '4', '--eval-every', '4', '--batch-size', '4', '--seed', '3'];
  beforeAll(() => {
    model = TINY_DIR; // the bundled tabtune-tiny
  });

  it('an interrupted run resumed with --resume gives the same losses and adapter as an uninterrupted one', { timeout: 300_000 }, async () => {
    const a = await cli([...common(), '--out', join(tmp, 'a')]);
    expect(a.code).toBe(0);
    const la = stepLosses(a.lines);
    expect(la.size).toBe(8);
    expect(a.lines.find((l) => l.event === 'done')).toBeTruthy();
    expect(a.lines.filter((l) => typeof l.val_loss === 'number' && !l.event).length).toBe(2);
    for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'metrics.jsonl', 'tabtune.json']) expect(existsSync(join(tmp, 'a', f))).toBe(true);

    // Killed right after the step-4 checkpoint is on disk, then resumed.
    const b1 = await cli([...common(), '--out', join(tmp, 'b')], (l) => l.includes('"event":"checkpoint","step":4'));
    expect(b1.code).not.toBe(0);
    expect(existsSync(join(tmp, 'b', 'adapter_model.safetensors'))).toBe(false);
    // A run started before settings were added resumes with their defaults: job.json without them.
    const jobPath = join(tmp, 'b', 'job.json');
    const job = JSON.parse(readFileSync(jobPath, 'utf8')) as { config: Record<string, unknown> };
    for (const k of ['bestMetric', 'earlyStopPatience', 'earlyStopMinDelta', 'genEvalExamples', 'probeSamples', 'probeTokens', 'forgetBudgetPct', 'replayFraction', 'oft']) delete job.config[k];
    writeFileSync(jobPath, JSON.stringify(job));
    const b2 = await cli(['train', '--out', join(tmp, 'b'), '--resume']);
    expect(b2.stderr).toBe('');
    expect(b2.code).toBe(0);
    expect(b2.lines.find((l) => l.event === 'resume')).toEqual({ event: 'resume', step: 4 });
    const lb = new Map([...stepLosses(b1.lines)].filter(([s]) => s <= 4).concat([...stepLosses(b2.lines)]));
    let maxDiff = 0;
    for (const [s, l] of la) maxDiff = Math.max(maxDiff, Math.abs(l - lb.get(s)!));
    console.log(`[cli resume] max loss diff over 8 steps: ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThanOrEqual(1e-5);
    const fa = new SafetensorsFile(readFileSync(join(tmp, 'a', 'adapter_model.safetensors')));
    const fb = new SafetensorsFile(readFileSync(join(tmp, 'b', 'adapter_model.safetensors')));
    expect(fb.names().sort()).toEqual(fa.names().sort());
    for (const n of fa.names()) expect(Array.from(fb.getFloat32(n))).toEqual(Array.from(fa.getFloat32(n)));
    // metrics.jsonl holds each step once, the killed run's tail replaced by the resumed one
    const metricSteps = readFileSync(join(tmp, 'b', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number }).filter((m) => m.loss !== undefined).map((m) => m.step);
    expect(metricSteps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);

    // The adapter in use: merged export gives the same logits as base + adapter.
    const ids = '1,359,419,308,293,349';
    const withAdapter = (await cli(['forward', '--model', model, '--adapter', join(tmp, 'a'), '--tokens', ids, '--json'])).lines[0]!.logits as number[][];
    const base = (await cli(['forward', '--model', model, '--tokens', ids, '--json'])).lines[0]!.logits as number[][];
    const merged = await cli(['export-merged', '--model', model, '--adapter', join(tmp, 'a'), '--out', join(tmp, 'merged'), '--json']);
    expect(merged.code).toBe(0);
    const mergedLogits = (await cli(['forward', '--model', join(tmp, 'merged'), '--tokens', ids, '--json'])).lines[0]!.logits as number[][];
    const diff = (x: number[][], y: number[][]) => Math.max(...x.flatMap((r, i) => r.map((v, j) => Math.abs(v - y[i]![j]!))));
    console.log(`[cli merge] max |merged - base+adapter| ${diff(mergedLogits, withAdapter).toExponential(2)}; adapter moved logits by ${diff(base, withAdapter).toFixed(3)}`);
    expect(diff(mergedLogits, withAdapter)).toBeLessThanOrEqual(1e-4);
    expect(diff(base, withAdapter)).toBeGreaterThan(1e-2);
  });

  it('knows when to stop: each evaluation line carries the task and forgetting measurements, the last line the decision', { timeout: 300_000 }, async () => {
    const out = join(tmp, 'q');
    const r = await cli([
      'train', '--model', model, '--data', 'public/examples/story-sentiment.train.jsonl', '--val', 'public/examples/story-sentiment.val.jsonl', '--batch-size', '4', '--seed', '3',
      '--steps', '12', '--eval-every', '2', '--save-every', '2', '--lr', '0.05',
      '--early-stop-patience', '2', '--forget-budget', '5', '--replay', '0.1', '--gen-eval-examples', '4', '--probe-samples', '8', '--probe-tokens', '16', '--best-metric', 'exact_match',
      '--out', out,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const data = r.lines.find((l) => l.event === 'data')!;
    // 10% of the mix is base-model text: round(0.1 * n / 0.9) sequences.
    expect(data.replay).toBe(Math.round((0.1 * (data.train as number)) / 0.9));
    expect(r.lines.find((l) => l.event === 'probe')).toMatchObject({ samples: 8, tokens: 16 });
    // The base model measured on the held-out split before the first step, with the same metrics.
    const baseline = r.lines.find((l) => l.event === 'baseline')!;
    expect(baseline).toMatchObject({ val_loss: expect.any(Number), exact_match: expect.any(Number), token_f1: expect.any(Number) });
    expect(JSON.parse(readFileSync(join(out, 'baseline.json'), 'utf8'))).toEqual({ of: 'base model', valLoss: baseline.val_loss, extra: { exact_match: baseline.exact_match, token_f1: baseline.token_f1, ...Object.fromEntries(Object.entries(baseline).filter(([k]) => !['event', 'val_loss', 'exact_match', 'token_f1'].includes(k))) } });
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('measured on the same held-out examples before the first step');
    const evals = r.lines.filter((l) => typeof l.val_loss === 'number' && !l.event);
    expect(evals.length).toBeGreaterThan(0);
    for (const e of evals) {
      expect(typeof e.exact_match).toBe('number');
      expect(typeof e.probe_nll_delta_pct).toBe('number');
      expect(typeof e.elapsed_s).toBe('number');
    }
    const done = r.lines.find((l) => l.event === 'done')!;
    expect(done).toMatchObject({ final_step: done.step, stopped_early: expect.any(Boolean) });
    expect(typeof done.best_step).toBe('number');
    expect(typeof done.recommended_step).toBe('number');
    expect(typeof done.recommendation).toBe('string');
    if (done.stopped_early) expect(done.stop_reason).toMatch(/early stopping: exact match did not improve/);
    else expect(done.stop_reason).toBeNull();
    expect(existsSync(join(out, 'probe.json'))).toBe(true);
  });

  it('refuses to overwrite a run and explains --resume', async () => {
    const r = await cli([...common(), '--out', join(tmp, 'a')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--resume/);
  });

  it('DPO after SFT: --method dpo --adapter continues the SFT adapter against it frozen, prints the preference metrics, resumes exactly', { timeout: 600_000 }, async () => {
    // Preferences from the sentiment task: the right label chosen, the other rejected.
    const prefs = (file: string) =>
      readFileSync(join(ROOT, 'public/examples', file), 'utf8')
        .trim()
        .split('\n')
        .slice(0, 60)
        .map((l) => {
          const { prompt, completion } = JSON.parse(l) as { prompt: string; completion: string };
          return JSON.stringify({ prompt, chosen: completion, rejected: completion === 'happy' ? 'sad' : 'happy' });
        })
        .join('\n');
    writeFileSync(join(tmp, 'prefs.jsonl'), prefs('story-sentiment.train.jsonl'));
    writeFileSync(join(tmp, 'prefs.val.jsonl'), prefs('story-sentiment.val.jsonl').split('\n').slice(0, 12).join('\n'));
    const sft = await cli([...common(), '--out', join(tmp, 'sft'), '--rank', '4', '--targets', 'q_proj,v_proj']);
    expect(sft.code).toBe(0);
    const dpo = (out: string, more: string[] = []) => [
      'train', '--model', model, '--method', 'dpo', '--adapter', join(tmp, 'sft'), '--data', join(tmp, 'prefs.jsonl'), '--val', join(tmp, 'prefs.val.jsonl'),
      '--steps', '6', '--eval-every', '3', '--save-every', '3', '--batch-size', '4', '--beta', '0.2', '--probe-samples', '4', '--probe-tokens', '8', '--gen-eval-examples', '2', '--out', out, ...more,
    ];
    const a = await cli(dpo(join(tmp, 'dpo-a')));
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    expect(a.lines.find((l) => l.event === 'data')).toMatchObject({ method: 'dpo', pairs: 60, val: 12 });
    expect(a.lines.find((l) => l.event === 'reference')).toEqual({ event: 'reference', pairs: 72, from: join(tmp, 'sft') });
    const steps = a.lines.filter((l) => typeof l.loss === 'number');
    expect(steps.length).toBe(6);
    for (const l of steps) for (const k of ['reward_margin', 'pref_accuracy', 'rewards/chosen', 'rewards/rejected', 'rewards/margins', 'rewards/accuracies', 'logps/chosen', 'logps/rejected']) expect(typeof l[k]).toBe('number');
    // The reference is the SFT adapter itself: the first step's loss is ln 2 (rewards 0 before any update) up to LoRA dropout.
    expect(Math.abs((steps[0]!.loss as number) - Math.log(2))).toBeLessThan(0.01);
    const evals = a.lines.filter((l) => typeof l.val_loss === 'number' && !l.event);
    expect(evals.length).toBe(2);
    for (const e of evals) expect(typeof e.val_pref_accuracy).toBe('number');
    // The DPO adapter has the SFT adapter's shape (rank 4 on q_proj and v_proj), in PEFT's format.
    const cfg = JSON.parse(readFileSync(join(tmp, 'dpo-a', 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
    expect(cfg.r).toBe(4);
    expect([...cfg.target_modules].sort()).toEqual(['q_proj', 'v_proj']);
    expect(existsSync(join(tmp, 'dpo-a', 'recipe'))).toBe(false);

    // Killed after the step-3 checkpoint, resumed: the same losses (the reference came back from the checkpoint).
    const b1 = await cli(dpo(join(tmp, 'dpo-b')), (l) => l.includes('"event":"checkpoint","step":3'));
    expect(b1.code).not.toBe(0);
    const b2 = await cli(['train', '--out', join(tmp, 'dpo-b'), '--resume']);
    expect(b2.stderr).toBe('');
    expect(b2.code).toBe(0);
    expect(b2.lines.find((l) => l.event === 'reference')).toBeUndefined();
    const la = stepLosses(a.lines);
    const lb = new Map([...stepLosses(b1.lines)].filter(([s]) => s <= 3).concat([...stepLosses(b2.lines)]));
    for (const [s, l] of la) expect(Math.abs(l - lb.get(s)!)).toBeLessThanOrEqual(1e-5);

    // What cannot work is refused, naming the fix.
    const noPairs = await cli([...common(), '--method', 'dpo', '--out', join(tmp, 'dpo-c')]);
    expect(noPairs.code).toBe(2);
    expect(noPairs.stderr).toMatch(/no preference pairs .* drop --method dpo/);
    const betaAlone = await cli([...common(), '--beta', '0.3', '--out', join(tmp, 'dpo-d')]);
    expect(betaAlone.code).toBe(2);
    expect(betaAlone.stderr).toMatch(/--beta: DPO settings; add --method dpo/);
    const badMethod = await cli([...common(), '--method', 'ppo', '--out', join(tmp, 'dpo-e')]);
    expect(badMethod.stderr).toMatch(/--method ppo: must be sft, dpo, prompt-tuning/);
    const shape = await cli([...dpo(join(tmp, 'dpo-f')), '--rank', '8']);
    expect(shape.stderr).toMatch(/--rank: the adapter in .* sets its own kind and shape/);
  });

  it("prompt tuning: --method prompt-tuning learns virtual tokens and writes them in PEFT's format; settings of other methods are refused", { timeout: 300_000 }, async () => {
    const out = join(tmp, 'pt');
    const r = await cli([...common(), '--method', 'prompt-tuning', '--virtual-tokens', '4', '--prompt-init-text', 'Is this story happy or sad?', '--lr', '0.05', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.find((l) => l.event === 'data')).toMatchObject({ method: 'prompt-tuning' });
    const hidden = (JSON.parse(readFileSync(join(TINY_DIR, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    expect(r.lines.find((l) => l.event === 'start')).toMatchObject({ trainable_params: 4 * hidden });
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'PROMPT_TUNING', num_virtual_tokens: 4, prompt_tuning_init: 'TEXT', prompt_tuning_init_text: 'Is this story happy or sad?' });
    const st = new SafetensorsFile(readFileSync(join(out, 'adapter_model.safetensors')));
    expect(st.names()).toEqual(['prompt_embeddings']);
    expect(existsSync(join(out, 'recipe'))).toBe(false);
    const lora = await cli([...common(), '--method', 'prompt-tuning', '--rank', '4', '--out', join(tmp, 'pt2')]);
    expect(lora.stderr).toMatch(/--rank: LoRA settings, but prompt tuning trains virtual tokens only/);
    const alone = await cli([...common(), '--virtual-tokens', '8', '--out', join(tmp, 'pt3')]);
    expect(alone.stderr).toMatch(/--virtual-tokens: prompt-tuning settings; add --method prompt-tuning/);
  });
});
