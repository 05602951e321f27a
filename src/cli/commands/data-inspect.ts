// `tabtune data inspect FILE [--model DIR] [--format F] [--max-seq-len N] [--json] ...`: the dataset
// doctor on a file. With --json, stdout is one JSON object {format, total, records, errors, warnings,
// tokens, ...} (errors/warnings: [{line, message, code, snippet, reasons?}], line = 1-based physical line where the
// record starts, 0 = the whole file; one entry per record, its reasons listed in `reasons` when several;
// added after the details: formatWords, skipped = records not trained). Without --json, a summary in plain
// words on stdout (ids and measured figures in brackets) and one line per problem on stderr. Exit status: 0 when the file was read (even with bad records), non-zero when it cannot be
// read or is not a dataset at all.
import { UsageError, type Args, type OptionSpec } from '../args';
import { openModel } from '../model-args';
import { inspectDataset, type InspectOptions } from '../../data/doctor';
import { textSummary } from '../../data/text';
import { fileSource } from '../../node/data-file';
import { formatWords, parseFormatOverride } from '../../data/formats';
import { promptFormatNote, recordNoun, skippedRecords, stopDetails, stopWords } from '../../data/words';
import type { ColumnMapping } from '../../data/types';
import type { LanguageModel } from '../../model/load';

export const DATA_INSPECT_USAGE = `usage: data inspect FILE [options]
  --model DIR_OR_URL        tokenize with this model, check lengths against its context, pick the stop token
  --format F                force the format: jsonl, json, csv, tsv, or a schema (prompt-completion, input-output,
                            alpaca, openai-chat, sharegpt, preference) or both (alpaca-json)
  --max-seq-len N           longest training sequence (default: the model's context)
  --val FILE                a separate validation file (default: a seeded 10% split)
  --val-fraction F --seed N split settings (default 0.1, 0)
  --prompt-column A[,B]     CSV/TSV: the prompt column(s); --completion-column C: the completion column
  --columns JSON            CSV/TSV mapping as JSON: {"prompt":["A"],"completion":"C","system":"S"}
  --loss completion|all     tokens trained (default completion)
  --template auto|chat-template|plain
  --stop-token ID | --stop-string S   force the end of text (S may use \\n)
  --json                    machine-readable report on stdout`;

/** The options `data inspect` takes (see DATA_INSPECT_USAGE). */
export const DATA_INSPECT_OPTIONS: OptionSpec = {
  model: 'string',
  backend: 'string',
  format: 'string',
  'max-seq-len': 'string',
  val: 'string',
  'val-fraction': 'string',
  seed: 'string',
  'prompt-column': 'string',
  'completion-column': 'string',
  columns: 'string',
  loss: 'string',
  template: 'string',
  'stop-token': 'string',
  'stop-string': 'string',
  json: 'boolean',
  help: 'boolean',
};

function opt(args: Args, key: string): string | undefined {
  const v = args[key];
  if (v === true) throw new UsageError(`--${key} needs a value\n${DATA_INSPECT_USAGE}`);
  return typeof v === 'string' ? v : undefined;
}

function num(args: Args, key: string): number | undefined {
  const v = opt(args, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${key} needs a number, got ${JSON.stringify(v)}`);
  return n;
}

function columnsOf(args: Args): ColumnMapping | undefined {
  const json = opt(args, 'columns');
  if (json !== undefined) {
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      throw new UsageError(`--columns must be JSON like {"prompt":["Question"],"completion":"Answer"}`);
    }
    const o = v as { prompt?: unknown; completion?: unknown; system?: unknown };
    const prompt = typeof o.prompt === 'string' ? [o.prompt] : o.prompt;
    if (!Array.isArray(prompt) || !prompt.every((p) => typeof p === 'string') || typeof o.completion !== 'string') throw new UsageError('--columns needs "prompt" (a column or a list) and "completion" (a column)');
    return { prompt, completion: o.completion, ...(typeof o.system === 'string' ? { system: o.system } : {}) };
  }
  const p = opt(args, 'prompt-column');
  const c = opt(args, 'completion-column');
  if (p === undefined && c === undefined) return undefined;
  if (p === undefined || c === undefined) throw new UsageError('--prompt-column and --completion-column go together');
  return { prompt: p.split(',').map((s) => s.trim()), completion: c };
}

export async function dataInspectCommand(args: Args): Promise<void> {
  let pos = args._;
  if (pos[0] === 'data') pos = pos.slice(1);
  if (pos[0] === 'inspect') pos = pos.slice(1);
  const file = pos[0];
  if (!file) throw new UsageError(`missing FILE\n${DATA_INSPECT_USAGE}`);
  const src = await fileSource(file); // throws for a missing/unreadable file
  const valFile = opt(args, 'val');
  const validation = valFile ? await fileSource(valFile) : undefined;

  const loss = opt(args, 'loss');
  if (loss !== undefined && loss !== 'completion' && loss !== 'all') throw new UsageError('--loss must be completion or all');
  const template = opt(args, 'template');
  if (template !== undefined && !['auto', 'chat-template', 'plain'].includes(template)) throw new UsageError('--template must be auto, chat-template or plain');
  const stopToken = num(args, 'stop-token');
  const stopString = opt(args, 'stop-string')?.replace(/\\n/g, '\n');
  const format = opt(args, 'format');
  if (format !== undefined) {
    try {
      parseFormatOverride(format);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }

  let model: LanguageModel | undefined;
  if (args.model !== undefined) model = await openModel(args as Parameters<typeof openModel>[0], DATA_INSPECT_USAGE);
  try {
    const opts: InspectOptions = {
      format,
      columns: columnsOf(args),
      model,
      maxSeqLen: num(args, 'max-seq-len'),
      validation,
      valFraction: num(args, 'val-fraction'),
      seed: num(args, 'seed'),
      lossOn: loss as InspectOptions['lossOn'],
      template: template as InspectOptions['template'],
      stop: stopToken !== undefined || stopString !== undefined ? { stopTokenId: stopToken ?? null, stopStrings: stopString !== undefined ? [stopString] : [] } : undefined,
    };
    const r = (await inspectDataset(src, opts)).report;
    if (r.container === null) throw new Error(`${file}: ${r.errors[0]?.message ?? 'not a dataset'}`);
    if (args.json) {
      // Key order: the summary first, then the problems, then the details.
      const { format: fmt, total, records, errors, warnings, tokens, ...rest } = r;
      process.stdout.write(JSON.stringify({ format: fmt, total, records, errors, warnings, tokens, ...rest, formatWords: formatWords(r.container, r.schema), skipped: skippedRecords(r) }) + '\n');
      return;
    }
    const lines: string[] = [];
    const skipped = skippedRecords(r);
    lines.push(`${file}: ${formatWords(r.container, r.schema)} [${r.format}], ${r.total} records, ${r.records} valid${skipped ? `, ${recordNoun(r.container, skipped)} skipped` : ''} (${r.errorCount} error${r.errorCount === 1 ? '' : 's'}, ${r.warningCount} warning${r.warningCount === 1 ? '' : 's'})`);
    if (r.table) {
      lines.push(`columns: ${r.table.columns.map((c) => JSON.stringify(c)).join(', ')}`);
      lines.push(r.table.mapping ? `mapping (${r.table.mappingSource}): prompt ${r.table.mapping.prompt.join(' + ')} -> completion ${r.table.mapping.completion}` : `no column mapping: pass --prompt-column/--completion-column${r.table.suggested ? ` (suggested: ${r.table.suggested.prompt.join(',')} -> ${r.table.suggested.completion})` : ''}`);
    }
    if (r.stop) lines.push(`end of text: ${stopWords(r.stop, { plainText: !!r.text })}`, ...stopDetails(r.stop).map((d) => `  ${d}`));
    const t = r.tokens;
    if (t) {
      lines.push(`tokens (${t.sampled ? `sample of ${t.examples}` : `${t.examples} examples`}, max ${t.maxSeqLen}): prompt mean ${t.prompt.mean.toFixed(1)} p95 ${t.prompt.p95}, completion mean ${t.completion.mean.toFixed(1)} p95 ${t.completion.p95}, total max ${t.total.max}`);
      lines.push(`per epoch: ${t.tokensPerEpoch} tokens, ${t.trainedTokensPerEpoch} trained; ${t.truncated} truncated`);
      if (t.example) lines.push(`example (line ${t.exampleLine}): ${t.example.map((x) => (x.trained ? `[${x.text}]` : x.text)).join('')}   ([...] = trained)`);
      const note = promptFormatNote(t.example);
      if (note) lines.push(`  ${note}`);
    }
    lines.push(`split: ${r.split.train} train / ${r.split.val} validation (${r.split.source})`);
    if (r.text) lines.push(`plain text: ${textSummary(r.text)}`);
    if (r.validation) lines.push(`validation file ${r.validation.name}: ${r.validation.records} valid of ${r.validation.total}, ${r.validation.overlap} overlapping prompts`);
    process.stdout.write(lines.join('\n') + '\n');
    const problems = [...r.errors.map((e) => ({ ...e, file })), ...(r.validation?.errors ?? []).map((e) => ({ ...e, file: valFile! }))];
    for (const e of problems) process.stderr.write(`${e.file}:${e.line}: error: ${e.message}${e.snippet ? `  | ${e.snippet}` : ''}\n`);
    if (r.errorsOmitted) process.stderr.write(`... and ${r.errorsOmitted} more errors\n`);
    for (const w of r.warnings) process.stderr.write(`${file}:${w.line}: warning: ${w.message}\n`);
    if (r.warningsOmitted) process.stderr.write(`... and ${r.warningsOmitted} more warnings\n`);
  } finally {
    model?.dispose();
  }
}
