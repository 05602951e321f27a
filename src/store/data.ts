// What the Data panel says about a doctor report before the details: a file that cannot be trained on
// at all (empty, binary, unrecognized, every record broken) gets one clear message and what to do.
import type { DataReport } from '../protocol/messages';
import { recordNoun, skippedRecords } from '../data/words';

export interface DatasetProblem {
  /** Blocking: nothing can be trained. Otherwise a note (some lines skipped). */
  blocking: boolean;
  title: string;
  message: string;
  hint: string;
}

const FORMAT_HINT = 'tabtune reads JSONL (one JSON object per line), a JSON array, or CSV/TSV with a header row.';

export function datasetProblem(report: DataReport): DatasetProblem | null {
  const fileError = report.errors.find((e) => e.line === 0);
  const codes = report.byCode;
  if (codes['empty-file']) {
    return { blocking: true, title: 'This file is empty', message: `${report.name} has no content (${report.bytes} bytes).`, hint: `Pick the file that holds your examples. ${FORMAT_HINT}` };
  }
  if (fileError && /binary file/.test(fileError.message)) {
    return {
      blocking: true,
      title: 'This is not a dataset',
      message: `${report.name}: ${fileError.message}. It looks like an image, an archive or another binary file.`,
      hint: `${FORMAT_HINT} Export your examples as text, for example {"prompt": "…", "completion": "…"} on each line.`,
    };
  }
  if (codes['invalid-utf8'] && report.records === 0) {
    return { blocking: true, title: 'This file is not UTF-8 text', message: fileError?.message ?? `${report.name} could not be read as UTF-8 text.`, hint: `Save it as UTF-8. ${FORMAT_HINT}` };
  }
  if (report.table && report.table.mapping === null && report.records === 0 && !codes['empty-file']) {
    const cols = report.table.columns.map((c) => `"${c}"`).join(', ');
    return {
      blocking: true,
      title: 'Choose the columns',
      message: `${report.name} is a table with the columns ${cols}, and their names do not say which is the prompt and which the completion.`,
      hint: 'Tick the prompt column(s) and choose the completion column under "Columns" below, then "Use these columns".',
    };
  }
  if (fileError && report.records === 0) {
    return { blocking: true, title: 'This file could not be read as a dataset', message: `${report.name}: ${fileError.message}.`, hint: `${FORMAT_HINT} If the format was detected wrongly, pick the right one under "Format".` };
  }
  if (report.records === 0) {
    const first = report.errors[0];
    return {
      blocking: true,
      title: 'No valid examples',
      message: `None of the ${report.total} record${report.total === 1 ? '' : 's'} in ${report.name} can be trained on (${report.errorCount} error${report.errorCount === 1 ? '' : 's'})${first ? `; the first, line ${first.line}: ${first.message}` : ''}.`,
      hint: 'Fix the lines listed below, or pick the right format under "Format" if the detected one is wrong.',
    };
  }
  if (report.split.train === 0) {
    return { blocking: true, title: 'Nothing left to train on', message: `All ${report.records} valid examples went to validation.`, hint: 'Lower the validation fraction, or add more examples.' };
  }
  // One per record, however many reasons it has (src/data/words.ts skippedRecords).
  const skipped = skippedRecords(report);
  if (skipped > 0 || report.errorCount > 0) {
    return {
      blocking: false,
      title: skipped > 0 ? `${recordNoun(report.container, skipped)} will be skipped` : `${report.errorCount} problem${report.errorCount === 1 ? '' : 's'} in the file`,
      message: `${report.records} of ${report.total} records are valid and will be trained on; the others are listed below with their line numbers.`,
      hint: 'Training works as it is; fix the file and drop it again to use every line.',
    };
  }
  return null;
}

/** One page of a long list: items [page * size, (page + 1) * size). */
export function pageOf<T>(items: readonly T[], page: number, size: number): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const p = Math.min(Math.max(0, page), pages - 1);
  return { items: items.slice(p * size, (p + 1) * size), page: p, pages };
}

/** Formats the doctor can be told to use (a container, a schema, or both). */
export const FORMAT_CHOICES: readonly { value: string; label: string }[] = [
  { value: 'jsonl', label: 'JSONL (one object per line)' },
  { value: 'json', label: 'JSON array' },
  { value: 'csv', label: 'CSV' },
  { value: 'tsv', label: 'TSV' },
  { value: 'prompt-completion', label: 'prompt / completion' },
  { value: 'input-output', label: 'input / output' },
  { value: 'alpaca', label: 'Alpaca (instruction, input, output)' },
  { value: 'openai-chat', label: 'OpenAI chat (messages)' },
  { value: 'sharegpt', label: 'ShareGPT (conversations)' },
  { value: 'preference', label: 'Preference (DPO: chosen / rejected)' },
  { value: 'text', label: 'Plain text (domain adaptation)' },
];

/** The doctor's plain-text report in one sentence (src/data/text.ts). */
export { textSummary } from '../data/text';
