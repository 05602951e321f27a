// `data inspect` (src/cli/commands/data-inspect.ts), called as the CLI's main calls it, with stdout
// and stderr captured.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dataInspectCommand } from '../cli/commands/data-inspect';
import { UsageError } from '../cli/args';
import { BUNDLED_EOS, REPO_ROOT, TINY_DIR } from '../testing/models';
import { DataReadError } from './source';

const FIXTURE = join(REPO_ROOT, 'e2e', 'fixtures', 'planted-bad-line.jsonl');

/**
 * A CSV whose header names no obvious prompt/completion pair (so the columns must be mapped): a header
 * and 20 records, the one on line 11 cut short (two of its four fields).
 */
function shortRowCsv(): string {
  const rows = ['Category,Question,Best Answer,Source'];
  for (let i = 1; i <= 20; i++) rows.push(i === 10 ? `sums,"What is ${i} plus ${i}?"` : `sums,"What is ${i} plus ${i}?",${2 * i},made up for this test`);
  const file = join(mkdtempSync(join(tmpdir(), 'tabtune-csv-')), 'short-row.csv');
  writeFileSync(file, rows.join('\n') + '\n');
  return file;
}

async function run(args: Record<string, string | boolean>, ...pos: string[]): Promise<{ stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  try {
    await dataInspectCommand({ _: ['data', 'inspect', ...pos], ...args } as Parameters<typeof dataInspectCommand>[0]);
  } finally {
    vi.restoreAllMocks();
  }
  return { stdout, stderr };
}

describe('data inspect', () => {
  afterEach(() => vi.restoreAllMocks());

  it('--json: format, counts and the bad line', async () => {
    const { stdout } = await run({ json: true }, FIXTURE);
    const j = JSON.parse(stdout);
    expect(Object.keys(j).slice(0, 6)).toEqual(['format', 'total', 'records', 'errors', 'warnings', 'tokens']);
    expect(j).toMatchObject({ format: 'prompt-completion-jsonl', total: 41, records: 40, warnings: [], tokens: null });
    expect(j.errors).toEqual([{ line: 17, severity: 'error', code: 'trailing-comma', message: 'invalid JSON: trailing comma before "}" (column 67)', snippet: '{"prompt": "Write as digits: one hundred one", "completion": "101",}' }]);
  });

  it('text mode: summary on stdout, one line per problem on stderr', async () => {
    const { stdout, stderr } = await run({}, FIXTURE);
    // The format in plain words first, its id in brackets (issue 18 #8: was "prompt-completion-jsonl, 41 records, ...").
    expect(stdout).toContain('JSON Lines, prompt/completion pairs [prompt-completion-jsonl], 41 records, 40 valid, 1 line skipped (1 error, 0 warnings)');
    expect(stderr).toContain(`${FIXTURE}:17: error: invalid JSON: trailing comma`);
  });

  it('2 broken lines, one missing two fields: 2 errors, 2 lines skipped, every reason of a line on its line', async () => {
    const file = join(REPO_ROOT, 'e2e', 'fixtures', 'two-broken-lines.jsonl');
    const j = JSON.parse((await run({ json: true }, file)).stdout);
    expect(j).toMatchObject({ format: 'prompt-completion-jsonl', formatWords: 'JSON Lines, prompt/completion pairs', total: 22, records: 20, errorCount: 2, skipped: 2 });
    expect(j.errors.map((e: { line: number; code: string; message: string }) => [e.line, e.code, e.message])).toEqual([
      [6, 'missing-field', 'missing fields "prompt" and "completion"'],
      [15, 'missing-field', 'missing field "completion"'],
    ]);
    expect(j.errors[0].reasons).toHaveLength(2);
    const { stdout, stderr } = await run({}, file);
    expect(stdout).toContain('22 records, 20 valid, 2 lines skipped (2 errors, 0 warnings)');
    expect(stderr.trim().split('\n')).toEqual([
      `${file}:6: error: missing fields "prompt" and "completion"  | {"promt": "Write as digits: two hundred nineteen", "complettion": "219"}`,
      `${file}:15: error: missing field "completion"  | {"prompt": "Write as digits: eight hundred twenty two"}`,
    ]);
  });

  it('unreadable files and bad options fail', async () => {
    await expect(run({}, '/nonexistent/file.jsonl')).rejects.toThrow(DataReadError);
    await expect(run({}, '/nonexistent/file.jsonl')).rejects.toThrow('no such file');
    await expect(run({ format: 'parquet' }, FIXTURE)).rejects.toThrow(UsageError);
    await expect(run({})).rejects.toThrow(UsageError);
    await expect(run({}, REPO_ROOT)).rejects.toThrow('not a file');
  });

  it('CSV column mapping flags', async () => {
    const file = shortRowCsv();
    const j = JSON.parse((await run({ json: true, 'prompt-column': 'Question', 'completion-column': 'Best Answer' }, file)).stdout);
    expect(j).toMatchObject({ format: 'csv', total: 20, records: 19 });
    expect(j.errors.map((e: { line: number }) => e.line)).toEqual([11]);
    expect(j.table.mapping).toEqual({ prompt: ['Question'], completion: 'Best Answer' });
    const none = JSON.parse((await run({ json: true }, file)).stdout);
    expect(none.records).toBe(0);
    expect(none.table.suggested).toEqual({ prompt: ['Question'], completion: 'Best Answer' });
  });

  it('--model: token statistics, the stop token and a rendered example', async () => {
    const j = JSON.parse((await run({ json: true, model: TINY_DIR, backend: 'cpu', 'max-seq-len': '64' }, join(REPO_ROOT, 'public', 'examples', 'number-words.val.jsonl'))).stdout);
    expect(j.stop).toMatchObject({ kind: 'eos', stopTokenId: BUNDLED_EOS }); // tabtune's models end text with EOS
    expect(j.tokens.examples).toBe(100);
    expect(j.tokens.maxSeqLen).toBe(64);
    expect(j.tokens.example.at(-1)).toEqual({ id: BUNDLED_EOS, text: '</s>', trained: true });
    expect(j.tokens.completion.max).toBeLessThanOrEqual(5);
    expect(j.split).toMatchObject({ train: 90, val: 10, source: 'split' });
  });

  it('--model, text mode: the end of text in plain words, its figures indented below, the "Answer:" separator explained', async () => {
    const { stdout } = await run({ model: TINY_DIR, backend: 'cpu', 'max-seq-len': '64' }, join(REPO_ROOT, 'public', 'examples', 'number-words.val.jsonl'));
    const lines = stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('end of text: '));
    expect(lines[at]).toBe("end of text: Replies will end with the model's end-of-text token, which it already uses to end text.");
    expect(lines[at + 1]).toBe(`  Stop token: id ${BUNDLED_EOS}.`);
    expect(lines[at + 2]).toMatch(/^ {2}Mean probability the base model gives each right after \d+ finished texts: end-of-text token \(id \d+\) [\d.e-]+/);
    expect(lines[at + 3]).toMatch(/^ {2}Why: the model predicts its EOS token/);
    expect(stdout).toContain(`  "Answer:" is not in your file: tabtune's plain prompt format`);
  });
});
