// `npm run cli -- train --oft` end to end on the bundled tabtune-tiny: the run writes PEFT's OFT adapter
// folder (no LoRA recipe), and `forward --adapter` reads it back with the logits the run's adapter gives.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../io/safetensors';
import { TINY_DIR } from '../testing/models';

const ROOT = resolve(__dirname, '../..');

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
}

describe('npm run cli -- train --oft', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tabtune-oft-cli-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('trains and writes a PEFT OFT adapter that lowers the loss', { timeout: 300_000 }, () => {
    const out = join(tmp, 'run');
    const r = cli(['train', '--model', TINY_DIR, '--data', 'public/examples/number-words.train.jsonl', '--val', 'public/examples/number-words.val.jsonl', '--oft', '--oft-block-size', '16', '--steps', '6', '--batch-size', '4', '--eval-every', '0', '--save-every', '0', '--lr', '0.01', '--gen-eval-examples', '0', '--probe-samples', '0', '--seed', '2', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const losses = lines.filter((l) => typeof l.loss === 'number').map((l) => l.loss as number);
    expect(losses.length).toBe(6);
    expect(losses[5]!).toBeLessThan(losses[0]!);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg).toMatchObject({ peft_type: 'OFT', r: 0, oft_block_size: 16, use_cayley_neumann: false });
    const st = new SafetensorsFile(readFileSync(join(out, 'adapter_model.safetensors')));
    expect(st.entry('base_model.model.model.layers.0.self_attn.q_proj.oft_R.weight').shape).toEqual([4, 120]); // 64 inputs: 4 blocks of 16
    expect(st.entry('base_model.model.model.layers.3.mlp.down_proj.oft_R.weight').shape).toEqual([11, 120]); // 176 inputs: 11 blocks of 16
    expect(existsSync(join(out, 'recipe'))).toBe(false);
    const job = JSON.parse(readFileSync(join(out, 'job.json'), 'utf8')) as { config: { mode: string } };
    expect(job.config.mode).toBe('oft');
    // The adapter folder loads back as an OFT adapter: the base and tuned logits differ.
    const base = cli(['forward', '--model', TINY_DIR, '--tokens', '1,5,9,3', '--json']);
    const tuned = cli(['forward', '--model', TINY_DIR, '--tokens', '1,5,9,3', '--adapter', out, '--json']);
    expect(tuned.status).toBe(0);
    expect(tuned.stdout).not.toBe(base.stdout);
  });
});
