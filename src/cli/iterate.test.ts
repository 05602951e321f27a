// `train --adapter DIR` continues a run: DIR is another run's --out folder (its PEFT files) or a PEFT adapter
// folder, and the `start` event says which it started from; a full-parameter run's folder is refused with why.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli as cli } from '../testing/cli';
import { TINY_DIR } from '../testing/models';

const ROOT = resolve(__dirname, '../..');


describe('npm run cli -- train --adapter (continue a run on fixed data)', () => {
  it("starts from a run's output folder or a PEFT folder and says so in its start event", { timeout: 300_000 }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tabtune-iterate-'));
    const data = readFileSync(join(ROOT, 'e2e/fixtures/iterate-mislabeled.jsonl'), 'utf8');
    // The fix: line 29's answer corrected, the broken line 17 removed.
    const fixed = data
      .split('\n')
      .filter((_l, i) => i !== 16)
      .map((l) => l.replace('"completion":"871"', '"completion":"817"'))
      .join('\n');
    writeFileSync(join(tmp, 'fixed.jsonl'), fixed);
    const noShape = ['--model', TINY_DIR, '--steps', '4', '--batch-size', '4', '--eval-every', '2', '--save-every', '2', '--seed', '2'];
    const first = await cli(['train', ...noShape, '--rank', '4', '--data', 'e2e/fixtures/iterate-mislabeled.jsonl', '--out', join(tmp, 'a')]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.lines.find((l) => l.event === 'start')).not.toHaveProperty('from');

    // The continued run takes the adapter's shape (rank 4) from the folder.
    const second = await cli(['train', ...noShape, '--data', join(tmp, 'fixed.jsonl'), '--adapter', join(tmp, 'a'), '--out', join(tmp, 'b')]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.lines.find((l) => l.event === 'start')).toMatchObject({ from: join(tmp, 'a'), from_kind: 'run' });
    expect(second.lines.find((l) => l.event === 'data')).toMatchObject({ errors: 0 });
    // The continued adapter has the first run's shape.
    expect(JSON.parse(readFileSync(join(tmp, 'b', 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 4 });

    // A plain PEFT folder (the two files only).
    mkdirSync(join(tmp, 'peft'));
    for (const f of ['adapter_config.json', 'adapter_model.safetensors']) copyFileSync(join(tmp, 'a', f), join(tmp, 'peft', f));
    const third = await cli(['train', ...noShape, '--data', join(tmp, 'fixed.jsonl'), '--adapter', join(tmp, 'peft'), '--out', join(tmp, 'c')]);
    expect(third.code, third.stderr).toBe(0);
    expect(third.lines.find((l) => l.event === 'start')).toMatchObject({ from: join(tmp, 'peft'), from_kind: 'adapter' });

    // A run folder without an adapter (as a full-parameter run leaves it): refused with why.
    mkdirSync(join(tmp, 'full'));
    writeFileSync(join(tmp, 'full', 'job.json'), '{}');
    const refused = await cli(['train', ...noShape, '--data', join(tmp, 'fixed.jsonl'), '--adapter', join(tmp, 'full'), '--out', join(tmp, 'd')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/holds no adapter.*give it as --model instead/);
  });
});
