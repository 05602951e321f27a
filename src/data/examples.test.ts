// The bundled example datasets (public/examples) and the e2e fixture: generated deterministically,
// clean, held-out validation, and tasks the base models cannot do (the bundled ones; the reference where
// ../shared has it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFiles, extractionEntities, numberWords, PLANTED_BAD_LINE } from '../../scripts/make-examples';
import { directorySource } from '../node/fs-source';
import { setupBackend } from '../model/backend';
import { generateIds } from '../model/generate';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from '../model/load';
import { BUNDLED_EOS, TINY_DIR } from '../testing/models';
import { ensureReferenceHF, REFERENCE_ABSENT, referenceTitle, REPO_ROOT } from '../testing/reference';
import { inspectDataset } from './doctor';
import { fileSource } from '../node/data-file';
import type { PairRecord } from './types';

const EX = join(REPO_ROOT, 'public', 'examples');

describe('example datasets', () => {
  it('the files on disk are exactly what scripts/make-examples.ts generates (deterministic, up to date)', () => {
    for (const [rel, text] of Object.entries(exampleFiles())) expect(readFileSync(join(REPO_ROOT, rel), 'utf8'), rel).toBe(text);
    expect(numberWords(312)).toBe('three hundred twelve');
    expect(numberWords(40)).toBe('forty');
    expect(numberWords(907)).toBe('nine hundred seven');
  });

  for (const task of ['number-words', 'story-sentiment', 'extract-names']) {
    it(`${task}: clean prompt/completion JSONL, validation held out`, async () => {
      const index = JSON.parse(readFileSync(join(EX, 'index.json'), 'utf8')) as { id: string; train: string; val: string; trainRecords: number; valRecords: number }[];
      const entry = index.find((e) => e.id === task)!;
      const res = await inspectDataset(await fileSource(join(EX, entry.train)), { validation: await fileSource(join(EX, entry.val)) });
      const r = res.report;
      expect(r.format).toBe('prompt-completion-jsonl');
      expect([r.records, r.validation!.records]).toEqual([entry.trainRecords, entry.valRecords]);
      expect([r.errorCount, r.warningCount, r.validation!.errorCount, r.validation!.warningCount]).toEqual([0, 0, 0, 0]);
      expect(r.validation!.overlap).toBe(0);
      expect(r.split.source).toBe('file');
    });
  }

  it('extract-names: every answer is copied from its prompt, and no held-out name occurs anywhere in training', () => {
    const read = (f: string) => readFileSync(join(EX, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string });
    const train = read('extract-names.train.jsonl');
    const val = read('extract-names.val.jsonl');
    for (const r of [...train, ...val]) expect(r.prompt.split(/[ .]/)).toContain(r.completion);
    const trainWords = new Set(train.flatMap((r) => r.prompt.split(/[ .]+/)).map((w) => w.toLowerCase()));
    const heldNames = val.map((r) => r.completion.toLowerCase());
    expect(heldNames.filter((w) => trainWords.has(w))).toEqual([]);
    // All three kinds of name are asked for, in all four sentence forms.
    expect(new Set(val.map((r) => r.prompt.split(/[.?] /)[0]))).toEqual(new Set(['Who is named', 'Name the person', 'Which city is named', 'Name the city', 'What is the product', 'Name the product']));
    for (const form of ['moved to', 'The parcel for', 'ordered a box of', 'A shop in']) expect(val.filter((r) => r.prompt.includes(form)).length, form).toBeGreaterThanOrEqual(20);
    const { train: trainNames, val: valNames } = extractionEntities();
    expect([...valNames].filter((n) => trainNames.has(n))).toEqual([]);
  });

  it('the planted-bad-line fixture: 41 lines, one invalid JSON record on the documented line', async () => {
    const res = await inspectDataset(await fileSource(join(REPO_ROOT, 'e2e', 'fixtures', 'planted-bad-line.jsonl')));
    const r = res.report;
    expect(PLANTED_BAD_LINE).toBe(17);
    expect([r.format, r.total, r.records, r.warningCount]).toEqual(['prompt-completion-jsonl', 41, 40, 0]);
    expect(r.errors.map((e) => [e.line, e.code, e.message])).toEqual([[17, 'trailing-comma', 'invalid JSON: trailing comma before "}" (column 67)']]);
    const readme = readFileSync(join(REPO_ROOT, 'e2e', 'fixtures', 'README.md'), 'utf8');
    expect(readme).toContain('**Line 17**');
    expect(readme).toContain(r.errors[0]!.message.replace(/"/g, '\\"'));
  });
});

// tabtune-base (the app's default) is held to the same bar, on all 100 validation prompts, by the
// learning test (src/train/learning.test.ts) before it trains.
const BASE_MODELS = [
  { name: 'tabtune-tiny', skip: null, dir: async () => TINY_DIR, stop: BUNDLED_EOS },
  // The reference ends its texts with BOS (its document separator).
  { name: 'stories260K', skip: REFERENCE_ABSENT, dir: ensureReferenceHF, stop: 1 },
];

describe.each(BASE_MODELS)('the base model $name cannot do the example tasks', ({ skip, dir, stop }) => {
  let m: LanguageModel;
  beforeAll(async () => {
    if (skip) return;
    await setupBackend('cpu');
    m = await loadModel(directorySource(await dir()));
  });
  afterAll(() => m?.dispose());

  for (const task of ['number-words', 'story-sentiment']) {
    const title = `${task}: greedy answers of the base model on 40 validation prompts are (almost) never right`;
    it.skipIf(skip !== null)(skip ? referenceTitle(title) : title, async () => {
      const res = await inspectDataset(await fileSource(join(EX, `${task}.val.jsonl`)), { model: m });
      expect(res.report.stop?.stopTokenId).toBe(stop);
      const enc = res.encoder!;
      const recs = res.records.slice(0, 40) as PairRecord[];
      const out = await generateIds(m.lm, recs.map((r) => enc.promptIds(r)), m.eosIds, { maxNewTokens: 6, temperature: 0, stopTokenIds: [stop] }, { newStream: () => m.tokenizer.createStreamDecoder() });
      const right = out.filter((o, i) => o.text.trim() === recs[i]!.completion).length;
      expect(right).toBeLessThanOrEqual(2);
    });
  }
});
