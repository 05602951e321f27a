// `npm run cli -- train` on plain text: detected (or --format text), the data event's token and window
// counts (those of the doctor), evaluation lines with val_loss and the base model's ppl_base, and with
// --compare the held-out perplexity of the base and the tuned model (bundled tabtune-tiny, a few steps).
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli as cli } from '../testing/cli';
import { TINY_DIR } from '../testing/models';
import { shipsLog } from '../testing/ships-log';



describe('npm run cli -- train on plain text', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tabtune-text-'));
  const common = ['--model', TINY_DIR, '--seq-len', '64', '--steps', '6', '--eval-every', '3', '--save-every', '6', '--batch-size', '4', '--probe-samples', '0', '--seed', '2'];

  it('detects a .txt file, counts tokens and windows, evaluates val_loss with ppl_base, and --compare prints the perplexities', { timeout: 300_000 }, async () => {
    const data = join(tmp, 'log.txt');
    writeFileSync(data, shipsLog({ voyages: 6, entries: 4 }));
    const r = await cli(['train', '--data', data, '--out', join(tmp, 'a'), '--val-split', '0.2', '--compare', ...common]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ev = (name: string) => r.lines.find((l) => l.event === name) as Record<string, unknown>;
    const d = ev('data') as Record<string, unknown> & { windows: { train: number; val: number }; held_out: Record<string, unknown>; tokens: number };
    expect(d).toMatchObject({ format: 'text', method: 'sft', documents: 6, paragraphs: 36, seq_len: 64, held_out: { by: 'document', documents: 1, paragraphs: 6 } });
    // The windows the data event counts are the examples trained on and held out.
    expect(d.train).toBe(d.windows.train);
    expect(d.val).toBe(d.windows.val);
    expect(d.tokens).toBeGreaterThan(d.windows.train * 64);
    expect(d.held_out.share as number).toBeGreaterThan(0.1);
    const evals = r.lines.filter((l) => typeof l.val_loss === 'number' && !l.event);
    expect(evals.map((l) => l.step)).toEqual([3, 6]);
    const base = evals[0]!.ppl_base as number;
    expect(Number.isFinite(base)).toBe(true);
    expect(evals.every((l) => l.ppl_base === base && Math.abs((l.val_ppl as number) - Math.exp(l.val_loss as number)) < 1e-6 * (l.val_ppl as number))).toBe(true);
    const cmp = ev('compare') as { ppl_base: number; ppl_tuned: number; windows: number; examples: { opening: string; base: string; tuned: string }[] };
    expect(cmp.windows).toBe(d.windows.val);
    expect(cmp.ppl_base).toBeCloseTo(base, 6);
    expect(cmp.ppl_tuned).toBeCloseTo(evals.at(-1)!.val_ppl as number, 6);
    expect(cmp.examples.length).toBeGreaterThan(0);
    expect(cmp.examples[0]!.opening.length).toBeGreaterThan(0);
    console.log(`[cli text] tabtune-tiny, 6 steps: held-out perplexity base ${cmp.ppl_base.toFixed(1)} -> tuned ${cmp.ppl_tuned.toFixed(1)}`);
    // The adapter and the card; no TRL/Axolotl recipe (they describe prompt/completion and chat jobs).
    for (const f of ['adapter_model.safetensors', 'README.md']) expect(existsSync(join(tmp, 'a', f))).toBe(true);
    expect(existsSync(join(tmp, 'a', 'recipe'))).toBe(false);
  });

  it('--full trains every weight on plain text; --compare takes the base perplexity measured before the first step', { timeout: 300_000 }, async () => {
    const data = join(tmp, 'full.txt');
    writeFileSync(data, shipsLog({ voyages: 5, entries: 3 }));
    const r = await cli(['train', '--data', data, '--out', join(tmp, 'c'), '--full', '--lr', '0.001', '--val-split', '0.2', '--compare', ...common, '--steps', '4', '--eval-every', '4', '--save-every', '4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ev = r.lines.find((l) => typeof l.val_loss === 'number' && !l.event)!;
    const cmp = r.lines.find((l) => l.event === 'compare') as { ppl_base: number; ppl_tuned: number };
    expect(cmp.ppl_base).toBe(ev.ppl_base);
    expect(cmp.ppl_tuned).toBeCloseTo(ev.val_ppl as number, 6);
    expect(cmp.ppl_tuned).toBeLessThan(cmp.ppl_base);
    expect(existsSync(join(tmp, 'c', 'model.safetensors'))).toBe(true);
  });

  it('--format text reads any file as plain text', { timeout: 300_000 }, async () => {
    const data = join(tmp, 'notes.jsonl');
    writeFileSync(data, shipsLog({ voyages: 3, entries: 3 }).replace(/^Log of/gm, '{"prompt": "x", "completion": "y"}\n\nLog of'));
    const r = await cli(['train', '--data', data, '--format', 'text', '--out', join(tmp, 'b'), ...common, '--steps', '2', '--eval-every', '2', '--save-every', '2']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.find((l) => l.event === 'data')).toMatchObject({ format: 'text', documents: 3, paragraphs: 3 * 6 });
  });

  it('prompt tuning on plain text packs windows that leave room for the virtual tokens (the default max sequence length is the whole context)', { timeout: 300_000 }, async () => {
    const data = join(tmp, 'pt.txt');
    writeFileSync(data, shipsLog({ voyages: 4, entries: 6 }));
    const r = await cli(['train', '--model', TINY_DIR, '--data', data, '--method', 'prompt-tuning', '--virtual-tokens', '4', '--steps', '2', '--eval-every', '2', '--save-every', '2', '--batch-size', '2', '--probe-samples', '0', '--val-split', '0.25', '--out', join(tmp, 'pt')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.lines.find((l) => l.event === 'done')).toBeTruthy();
  });
});
