// The Data panel's note about skipped lines counts records, not reasons (issue 18 #8).
import { describe, expect, it } from 'vitest';
import { inspectDataset } from '../data/doctor';
import { textSource } from '../data/source';
import { charTokenizer } from '../testing/tokenizers';
import { datasetProblem } from './data';

const pc = (p: string, c: string) => JSON.stringify({ prompt: p, completion: c });

describe('datasetProblem', () => {
  it('2 broken lines, one missing two fields: "2 lines will be skipped" (was 3)', async () => {
    const text = [pc('one', '1'), '{"promt": "two", "complettion": "2"}', pc('three', '3'), '{"prompt": "four"}', pc('five', '5'), pc('six', '6')].join('\n') + '\n';
    const { report } = await inspectDataset(textSource(text, 'two.jsonl'), { tokenizer: charTokenizer(), maxSeqLen: 64, valFraction: 0.2 });
    const p = datasetProblem(report)!;
    expect(p).toMatchObject({ blocking: false, title: '2 lines will be skipped' });
    expect(p.message).toBe('4 of 6 records are valid and will be trained on; the others are listed below with their line numbers.');
  });

  it('a JSON array counts records (one line can hold several)', async () => {
    const text = '[' + [pc('one', '1'), '{"prompt": "two"}', pc('three', '3'), pc('four', '4')].join(',') + ']';
    const { report } = await inspectDataset(textSource(text, 'a.json'), { tokenizer: charTokenizer(), maxSeqLen: 64, valFraction: 0.25 });
    expect(report.container).toBe('json');
    expect(datasetProblem(report)!.title).toBe('1 record will be skipped');
  });
});
