// `train` writes the run report into --out (README.md, loss_curve.png, report.json) and `export-merged`
// carries it into the merged folder: the YAML front matter parses, and the figures are metrics.jsonl's.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli as cli } from '../testing/cli';
import { parse as parseYaml } from 'yaml';
import { num } from '../report/card';
import { TINY_DIR } from '../testing/models';



function front(md: string): Record<string, unknown> {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(md);
  if (!m) throw new Error('no front matter');
  return parseYaml(m[1]!) as Record<string, unknown>;
}

const factRow = (md: string, label: string) => md.split('\n').find((l) => l.startsWith(`| ${label} |`))?.slice(2, -2).split(' | ')[1];

describe('the run report from the command line', () => {
  it('train writes README.md, loss_curve.png and report.json; export-merged carries the card', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'tabtune-report-'));
    const run = join(out, 'run');
    const r = await cli(['train', '--model', TINY_DIR, '--data', 'public/examples/number-words.val.jsonl', '--steps', '6', '--eval-every', '3', '--save-every', '3', '--batch-size', '4', '--probe-samples', '4', '--probe-tokens', '8', '--gen-eval-examples', '2', '--out', run]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['README.md', 'loss_curve.png', 'report.json']) expect(existsSync(join(run, f))).toBe(true);
    const md = readFileSync(join(run, 'README.md'), 'utf8');
    expect(front(md)).toEqual({ base_model: TINY_DIR, library_name: 'peft', pipeline_tag: 'text-generation', tags: ['tabtune', 'lora', 'sft'] });

    const rows = readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number>);
    const steps = rows.filter((x) => typeof x.loss === 'number');
    const evals = rows.filter((x) => typeof x.val_loss === 'number');
    expect(factRow(md, 'Final training loss')).toBe(`${num(steps.at(-1)!.loss)} (smoothed ${num(steps.at(-1)!.smooth_loss)}) at step 6`);
    expect(factRow(md, 'Final validation loss')).toBe(`${num(evals.at(-1)!.val_loss)} at step 6`);
    expect(factRow(md, 'Tokens trained on')).toBe(evals.at(-1)!.train_tokens!.toLocaleString('en-US'));
    expect(factRow(md, 'Backend')).toBe('wasm');
    expect(factRow(md, 'Steps')).toBe("6 (the run's last step: 6)");
    expect(factRow(md, 'Stored checkpoints')).toBe('3, 6');
    expect(factRow(md, 'Why this one')).toContain('the last step of the run');
    expect(factRow(md, 'File')).toBe('number-words.val.jsonl');
    expect(factRow(md, 'Records')).toBe('100 read, 100 used, 0 skipped');

    const merged = join(out, 'merged');
    const m = await cli(['export-merged', '--model', TINY_DIR, '--adapter', run, '--out', merged]);
    expect(m.code, m.stderr).toBe(0);
    const mmd = readFileSync(join(merged, 'README.md'), 'utf8');
    expect(front(mmd)).toMatchObject({ library_name: 'transformers', tags: ['tabtune', 'lora', 'sft', 'merged'] });
    expect(factRow(mmd, 'Final validation loss')).toBe(factRow(md, 'Final validation loss'));
    expect(readFileSync(join(merged, 'loss_curve.png'))).toEqual(readFileSync(join(run, 'loss_curve.png')));
    expect(mmd).toContain('AutoModelForCausalLM.from_pretrained("./this-folder")');
  });
});
