// The doctor on every real third-party file in ../shared/datasets (read in place, never copied):
// format, record counts and every known defect from MANIFEST.json, at its line.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, REFERENCE_ABSENT, ensureReferenceHF } from '../testing/reference';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { inspectDataset } from './doctor';
import { fileSource } from '../node/data-file';
import { folderTokenizer } from '../testing/tokenizers';
import type { ColumnMapping, IssueCode } from './types';

const DIR = resolve(REPO_ROOT, '..', 'shared', 'datasets');
const available = existsSync(join(DIR, 'MANIFEST.json'));
/** These files are other people's data: they live only in ../shared, never in the repository. */
const SKIP = available ? REFERENCE_ABSENT : `skipped: third-party datasets absent at ${DIR} (MANIFEST.json)`;

interface Entry {
  file: string;
  format: string;
  records: number;
  known_defects: { line: number | string; problem: string }[];
  sha256: string;
  notes: string;
  records_if_lenient?: number;
  records_well_formed?: number;
}

/**
 * What the doctor must find in each file, with a tokenizer (reference, 512 tokens), max sequence
 * length 8192 and the plain format (model-independent: the reference chat template rejects tool turns,
 * checked separately below). `total` = records seen, `records` = valid training examples; `defects` maps each
 * MANIFEST defect line to the issue code reported there. `duplicates` were counted independently with
 * Python (json.loads of each record, exact repeats of the training content).
 */
const EXPECT: Record<string, { total: number; records: number; defects?: Record<string, IssueCode[]>; columns?: ColumnMapping; duplicates?: number }> = {
  'alpaca-gpteacher-toolformer-300.json': { total: 300, records: 300 },
  'alpaca-llamafactory-identity.json': { total: 91, records: 91 },
  // Line 4: system + assistant only. Line 5: the assistant reply alone is 16k tokens.
  'openai-chat-toy.jsonl': { total: 5, records: 3, defects: { 4: ['no-user'], 5: ['too-long'] } },
  'sharegpt-fastchat-dummy-conversation.json': { total: 500, records: 500 },
  // function_call/observation turns are valid ShareGPT roles (assistant tool call / tool answer).
  'sharegpt-llamafactory-glaive-toolcall.json': { total: 300, records: 300, duplicates: 38 },
  'prompt-completion-truthfulqa-500.jsonl': { total: 500, records: 500, duplicates: 6 },
  'prompt-completion-mlx-wwdc25-valid.jsonl': { total: 144, records: 144, duplicates: 21 },
  'csv-truthfulqa-eval-examples.csv': { total: 817, records: 817, defects: { 1: ['bom'] }, columns: { prompt: ['Question'], completion: 'Examples: True' } },
  'csv-truthfulqa-questions.csv': { total: 790, records: 790, defects: { 791: ['no-final-newline'] }, columns: { prompt: ['Question'], completion: 'Best Answer' } },
  'dpo-hh-rlhf-harmless-test-300.jsonl': { total: 300, records: 300 },
  'dpo-sharegpt-llamafactory-dpo-en-demo.json': { total: 300, records: 300, duplicates: 5 },
  'prompt-completion-broken-bom-crlf.jsonl': { total: 50, records: 50, defects: { 1: ['bom'], '1-50': ['crlf'] } },
  'prompt-completion-broken-blank-trailingcomma.jsonl': { total: 50, records: 49, defects: { 11: ['blank-line'], 21: ['trailing-comma'] } },
  // Strict JSON rejects the whole file; the doctor reports the comma at its line and reads the 20 records.
  'alpaca-broken-trailing-comma.json': { total: 20, records: 20, defects: { 101: ['trailing-comma'] } },
  'openai-chat-broken-latin1.jsonl': { total: 3, records: 2, defects: { 2: ['invalid-utf8'] } },
  'csv-broken-short-row.csv': { total: 20, records: 19, defects: { 11: ['csv-field-count'] }, columns: { prompt: ['Question'], completion: 'Best Answer' } },
};

/** The MANIFEST format names, e.g. "csv (header row)" or "alpaca-json (BROKEN variant, made by us)". */
const formatOf = (f: string) => f.split(' ')[0]!;

describe.skipIf(SKIP !== null)(`the doctor on ../shared/datasets (MANIFEST.json)${SKIP ? ` [${SKIP}]` : ''}`, () => {
  const manifest: Entry[] = available ? (JSON.parse(readFileSync(join(DIR, 'MANIFEST.json'), 'utf8')) as Entry[]) : [];
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    tokenizer = folderTokenizer(await ensureReferenceHF());
  });

  it('covers every file of the folder and every MANIFEST entry', () => {
    const files = readdirSync(DIR).filter((f) => f !== 'MANIFEST.json' && f !== 'README.md');
    expect(manifest.map((e) => e.file).sort()).toEqual(files.sort());
    expect(Object.keys(EXPECT).sort()).toEqual(files.sort());
  });

  for (const entry of available ? (JSON.parse(readFileSync(join(DIR, 'MANIFEST.json'), 'utf8')) as Entry[]) : []) {
    it(`${entry.file}: ${formatOf(entry.format)}, counts and known defects`, async () => {
      const path = join(DIR, entry.file);
      expect(createHash('sha256').update(readFileSync(path)).digest('hex')).toBe(entry.sha256);
      const want = EXPECT[entry.file]!;
      const { report } = await inspectDataset(await fileSource(path), { tokenizer, maxSeqLen: 8192, columns: want.columns, template: 'plain' });
      expect(report.format).toBe(formatOf(entry.format));
      expect(report.total).toBe(want.total);
      expect(report.records).toBe(want.records);
      // MANIFEST's own count: records a strict parser gets (alpaca-broken: 0 strict, 20 lenient; the others
      // count parseable records, e.g. 49 for the blank/trailing-comma file, 19 well-formed CSV rows of 20).
      const manifestCount = entry.records_if_lenient ?? entry.records;
      expect([want.total, want.records]).toContain(manifestCount);

      // Every known defect is reported at its line with the expected code.
      const all = [...report.errors, ...report.warnings];
      expect(Object.keys(want.defects ?? {}).sort()).toEqual(entry.known_defects.map((d) => String(d.line)).sort());
      for (const d of entry.known_defects) {
        const codes = want.defects![String(d.line)]!;
        const line = typeof d.line === 'number' ? d.line : Number(String(d.line).split('-')[0]);
        for (const code of codes) expect(all.some((i) => i.line === line && i.code === code), `${entry.file}:${d.line} ${code} (${d.problem})`).toBe(true);
      }
      // No error beyond the known defects.
      const expectedErrors = Object.entries(want.defects ?? {}).filter(([, codes]) => codes.some((c) => report.errors.some((e) => e.code === c)));
      expect(report.errorCount).toBe(expectedErrors.length);
      expect(report.byCode.duplicate ?? 0).toBe(want.duplicates ?? 0);
    });
  }

  it('with the reference chat template, conversations with tool turns fail with the template\'s own message', async () => {
    const file = join(DIR, 'sharegpt-llamafactory-glaive-toolcall.json');
    const raw = JSON.parse(readFileSync(file, 'utf8')) as { conversations: { from: string }[] }[];
    const withTool = raw.filter((r) => r.conversations.some((m) => m.from === 'observation')).length;
    const { report } = await inspectDataset(await fileSource(file), { tokenizer, maxSeqLen: 8192 });
    expect(report.errorCount).toBe(withTool);
    expect(report.records).toBe(300 - withTool);
    expect(new Set(report.errors.map((e) => `${e.code}: ${e.message}`))).toEqual(new Set(['template-error: chat template: Unsupported chat role: tool (use system, user or assistant)']));
  });

  it('MANIFEST details: multi-line CSV records start where it says; the duplicate-prompt file has 44 distinct prompts', () => {
    const eval_ = manifest.find((e) => e.file === 'csv-truthfulqa-eval-examples.csv')!;
    const listed = /records starting at lines ([\d,]+)/.exec(eval_.notes)![1]!.split(',').map(Number);
    expect(listed).toHaveLength(25);
    return (async () => {
      const res = await inspectDataset(await fileSource(join(DIR, eval_.file)), { columns: { prompt: ['Question'], completion: 'Examples: True' } });
      // A record spans several lines when the next one starts more than one line later (the file has 843 lines).
      const physical = /over (\d+) physical lines/.exec(eval_.notes)![1]!;
      const starts = res.records.map((r) => r.line);
      const nextStart = [...starts.slice(1), Number(physical) + 1];
      expect(starts.filter((l, i) => nextStart[i]! - l > 1)).toEqual(listed);
      const mlx = (await inspectDataset(await fileSource(join(DIR, 'prompt-completion-mlx-wwdc25-valid.jsonl')))).report;
      expect(mlx.total - (mlx.byCode.duplicate ?? 0) - (mlx.byCode['duplicate-prompt'] ?? 0)).toBe(44);
    })();
  });
});
