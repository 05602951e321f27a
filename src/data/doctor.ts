// The dataset doctor: parse + validate + (with a tokenizer) encode, measure and check lengths
// + (with a model) pick the stop token + split. One call for the worker's `inspect-data` request and for
// `tabtune data inspect`. The report is plain JSON; the records and the split come with it.
import type { LanguageModel } from '../model/load';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { plainCompletionText, plainPromptText, preferenceSides, RecordEncoder, defaultStop, type EncodeResult, type StopSpec, type TrainingExample } from './encode';
import type { TableInfo } from './csv';
import { IssueLog, type IssueSummary } from './issues';
import { parseDataset, type ParsedDataset, type ParseOptions } from './parse';
import { shuffle } from '../util/random';
import { splitRecords, DEFAULT_VAL_FRACTION } from './split';
import { tokenStats, type TokenStats } from './stats';
import { detectStopToken, type StopTokenChoice } from './stop-token';
import { yieldToEventLoop } from '../util/async';
import type { DataInput } from './source';
import { checkOverlap } from './validate';
import type { DataRecord, TextRecord } from './types';
import { packText, splitText, textReport, type TextReport } from './text';

export interface InspectOptions extends ParseOptions {
  /** Tokenizer for token statistics and length checks (default: the model's). */
  tokenizer?: TextTokenizer;
  /** The base model: enables stop-token detection; its context is the default maxSeqLen. */
  model?: Pick<LanguageModel, 'lm' | 'tokenizer' | 'eosIds' | 'info'>;
  /** Longest input sequence (default: the model's context length, else 512). */
  maxSeqLen?: number;
  lossOn?: 'completion' | 'all';
  template?: 'auto' | 'chat-template' | 'plain';
  /** Force the end of text (stop token id and/or stop strings). */
  stop?: Partial<StopSpec>;
  /** A separate validation file (else a seeded split of this one). */
  validation?: DataInput;
  valFraction?: number;
  seed?: number;
  /** Records tokenized for statistics (default 5000; beyond, a seeded sample; long records are always checked). */
  statsSample?: number;
}

/** What the doctor says about one file: the parser's findings (records counted, not listed) and its issues. */
export interface FileReport extends IssueSummary, Pick<ParsedDataset, 'name' | 'format' | 'container' | 'schema' | 'detected' | 'total'> {
  /** Valid training examples. */
  records: number;
  /** `text`: paragraphs of a plain-text file (absent in reports made before plain text was read). */
  kinds: { pair: number; chat: number; preference: number; text?: number };
  bytes: number;
  table?: TableInfo;
}

export interface DataReport extends FileReport {
  tokens: TokenStats | null;
  stop: StopTokenChoice | null;
  split: { train: number; val: number; source: 'split' | 'file' | 'none'; valFraction: number; seed: number };
  /** The separate validation file, when one was given (its overlap with training is in its warnings). */
  validation: (FileReport & { overlap: number }) | null;
  /** Plain text (format "text"): characters, tokens, windows, documents/paragraphs and the held-out share; null for other formats. */
  text?: TextReport | null;
}

export interface InspectResult {
  report: DataReport;
  /** Valid records of the training file (too-long ones removed when a tokenizer was given). */
  records: DataRecord[];
  train: DataRecord[];
  val: DataRecord[];
  /** The encoder the statistics used (same tokenizer, stop token and options): hand it to the trainer. */
  encoder: RecordEncoder | null;
}

function fileReport(p: ParsedDataset, records: DataRecord[] = p.records): FileReport {
  const kinds = { pair: 0, chat: 0, preference: 0, text: 0 };
  for (const r of records) kinds[r.kind]++;
  return {
    name: p.name,
    format: p.format,
    container: p.container,
    schema: p.schema,
    detected: p.detected,
    total: p.total,
    records: records.length,
    kinds,
    bytes: p.bytes,
    ...(p.table ? { table: p.table } : {}),
    ...p.issues.summary(),
  };
}

/** Texts from the dataset for stop-token probing: a few completions in the training format. */
function probeTexts(records: DataRecord[], n = 8): string[] {
  const out: string[] = [];
  for (const r of records) {
    if (out.length >= n) break;
    if (r.kind === 'pair') out.push(plainPromptText(r.prompt) + plainCompletionText(r.completion));
    else if (r.kind === 'chat') out.push(r.messages[r.messages.length - 1]!.content);
    else if (r.kind === 'preference') out.push(r.chosen);
  }
  return out;
}

/**
 * Tokenizes records (a sample for the statistics, plus every record that might be too long), reports
 * too-long and truncated examples into `log`, and returns the examples measured and the lines of the
 * records that cannot be trained.
 */
async function measure(records: DataRecord[], encoder: RecordEncoder, log: IssueLog, opts: InspectOptions): Promise<{ examples: TrainingExample[]; dropped: Set<number>; population: number }> {
  const sampleN = opts.statsSample ?? 5000;
  const inSample = new Set<number>();
  const trainable = records.map((r, i) => [r, i] as const);
  if (trainable.length <= sampleN) trainable.forEach(([, i]) => inSample.add(i));
  else shuffle(trainable, opts.seed ?? 0).slice(0, sampleN).forEach(([, i]) => inSample.add(i));
  const examples: TrainingExample[] = [];
  const dropped = new Set<number>();
  const limit = encoder.maxSeqLen + 1;
  let last = performance.now();
  const total = records.length;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    // A preference pair trains both replies (DPO): both must fit; the statistics measure the chosen side.
    const sides = r.kind === 'preference' ? preferenceSides(r) : [r];
    if (!inSample.has(i) && sides.every((x) => encoder.lengthBound(x) <= limit)) continue;
    let res: EncodeResult;
    if (r.kind === 'preference') {
      const p = encoder.encodePreference(r);
      res = p.ok ? { ok: true, example: p.chosen.truncated >= p.rejected.truncated ? p.chosen : p.rejected } : p;
    } else res = encoder.encode(r);
    if (performance.now() - last > 25) {
      opts.onProgress?.({ phase: 'tokenize', loaded: i, total, fraction: i / total });
      await yieldToEventLoop();
      last = performance.now();
    }
    if (!res.ok) {
      dropped.add(i);
      log.add({ line: r.line, severity: 'error', code: res.code === 'too-long' ? 'too-long' : 'template-error', message: res.message });
      continue;
    }
    const ex = res.example;
    if (ex.truncated > 0)
      log.warn(r.line, 'truncated', `the example is ${ex.fullLength} tokens, more than the max sequence length ${encoder.maxSeqLen} (+1): ${ex.truncated} token${ex.truncated > 1 ? 's' : ''} cut from the left of the prompt`);
    if (inSample.has(i)) examples.push(ex);
  }
  opts.onProgress?.({ phase: 'tokenize', loaded: total, total, fraction: 1 });
  return { examples, dropped, population: trainable.length - dropped.size };
}

/** Runs the whole doctor on a dataset file (and an optional validation file). */
export async function inspectDataset(input: DataInput, opts: InspectOptions = {}): Promise<InspectResult> {
  const parsed = await parseDataset(input, opts);
  const valParsed = opts.validation ? await parseDataset(opts.validation, { ...opts, columns: opts.columns }) : null;
  if (parsed.container === 'text') return inspectText(parsed, valParsed, opts);
  const tokenizer = opts.tokenizer ?? opts.model?.tokenizer ?? null;
  let records = parsed.records;
  let valRecords = valParsed?.records ?? [];
  let tokens: TokenStats | null = null;
  let stop: StopTokenChoice | null = null;
  let encoder: RecordEncoder | null = null;
  const lossOn = opts.lossOn ?? 'completion';

  if (tokenizer) {
    const maxSeqLen = opts.maxSeqLen ?? opts.model?.info.contextLength ?? 512;
    if (opts.model) stop = await detectStopToken(opts.model, { texts: probeTexts(records), override: opts.stop });
    else {
      const d = defaultStop(tokenizer);
      const o = opts.stop;
      const forced = o && (o.stopTokenId !== undefined || o.stopStrings !== undefined);
      stop = {
        stopTokenId: forced ? (o.stopTokenId ?? null) : d.stopTokenId,
        stopStrings: forced ? (o.stopStrings ?? []) : d.stopStrings,
        kind: forced ? 'override' : 'default',
        reason: forced ? 'set by the user' : 'no model given to measure it: the tokenizer\'s EOS (or a newline when it has none)',
        probabilities: { eos: null, separator: null, newline: null },
        candidates: { eos: tokenizer.eosId, separator: null, newline: null },
        probes: 0,
      };
    }
    encoder = new RecordEncoder(tokenizer, { maxSeqLen, lossOn, template: opts.template, stop: { stopTokenId: stop.stopTokenId, stopStrings: stop.stopStrings } });
    const m = await measure(records, encoder, parsed.issues, opts);
    records = records.filter((_, i) => !m.dropped.has(i));
    tokens = tokenStats(m.examples, { maxSeqLen, lossOn, population: m.population, tokenizer });
    if (valParsed) {
      const mv = await measure(valRecords, encoder, valParsed.issues, { ...opts, statsSample: 0 });
      valRecords = valRecords.filter((_, i) => !mv.dropped.has(i));
    }
  }

  let overlap = 0;
  if (valParsed) overlap = checkOverlap(records, valRecords, valParsed.issues);
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  const seed = opts.seed ?? 0;
  const split = valParsed ? { train: shuffle(records, seed), val: valRecords, source: 'file' as const } : splitRecords(records, { valFraction, seed });

  const report: DataReport = {
    ...fileReport(parsed, records),
    tokens,
    stop,
    split: { train: split.train.length, val: split.val.length, source: split.source, valFraction: valParsed ? 0 : valFraction, seed },
    validation: valParsed ? { ...fileReport(valParsed, valRecords), overlap } : null,
    text: null,
  };
  return { report, records, train: split.train, val: split.val, encoder };
}

/**
 * The doctor on plain text: paragraphs and documents, the held-out share by whole documents or paragraphs
 * (or a separate validation file), and with a tokenizer the tokens and the windows training packs them into.
 * The stop token is the end-of-document token (EOS) that packing puts after each document.
 */
async function inspectText(parsed: ParsedDataset, valParsed: ParsedDataset | null, opts: InspectOptions): Promise<InspectResult> {
  const tokenizer = opts.tokenizer ?? opts.model?.tokenizer ?? null;
  const records = parsed.records.filter((r): r is TextRecord => r.kind === 'text');
  if (valParsed && valParsed.container !== 'text') valParsed.issues.error(0, 'mixed-shape', `the validation file is ${valParsed.format}, the training file plain text: its records are not used`);
  // A separate validation file: its documents come after the training file's.
  const docOffset = records.length ? Math.max(...records.map((r) => r.doc)) + 1 : 0;
  const valRecords = valParsed && valParsed.container === 'text' ? valParsed.records.filter((r): r is TextRecord => r.kind === 'text').map((r) => ({ ...r, doc: r.doc + docOffset })) : [];
  const valFraction = opts.valFraction ?? DEFAULT_VAL_FRACTION;
  const seed = opts.seed ?? 0;
  const split = valParsed ? { train: records, val: valRecords, by: 'document' as const } : splitText(records, { valFraction, seed });
  let encoder: RecordEncoder | null = null;
  let tokens: TokenStats | null = null;
  let stop: StopTokenChoice | null = null;
  const maxSeqLen = opts.maxSeqLen ?? opts.model?.info.contextLength ?? 512;
  if (tokenizer) {
    opts.onProgress?.({ phase: 'tokenize', loaded: 0, total: records.length, fraction: 0 });
    const o = opts.stop;
    const forced = o && (o.stopTokenId !== undefined || o.stopStrings !== undefined);
    stop = {
      stopTokenId: forced ? (o.stopTokenId ?? null) : tokenizer.eosId,
      stopStrings: forced ? (o.stopStrings ?? []) : [],
      kind: forced ? 'override' : tokenizer.eosId !== null ? 'eos' : 'default',
      reason: forced ? 'set by the user' : tokenizer.eosId !== null ? 'plain text: each document ends with the end-of-document token (EOS)' : 'plain text, and this tokenizer has no end-of-document token',
      probabilities: { eos: null, separator: null, newline: null },
      candidates: { eos: tokenizer.eosId, separator: null, newline: null },
      probes: 0,
    };
    encoder = new RecordEncoder(tokenizer, { maxSeqLen, lossOn: 'all', template: 'plain', stop: { stopTokenId: stop.stopTokenId, stopStrings: stop.stopStrings } });
    await yieldToEventLoop();
    // The windows as the statistics measure examples: every token trained.
    const windows = packText(tokenizer, split.train, maxSeqLen).slice(0, opts.statsSample ?? 5000);
    const examples: TrainingExample[] = windows.map((w, i) => ({ ...w, line: i + 1, truncated: 0, fullLength: w.input.length + 1, completionTokens: w.input.length + 1, promptTokens: 0, format: 'plain' }));
    tokens = tokenStats(examples, { maxSeqLen, lossOn: 'all', tokenizer });
    opts.onProgress?.({ phase: 'tokenize', loaded: records.length, total: records.length, fraction: 1 });
  }
  const text = textReport(split, tokenizer ? { tokenizer, seqLen: maxSeqLen } : {});
  const report: DataReport = {
    ...fileReport(parsed, records),
    tokens,
    stop,
    split: { train: split.train.length, val: split.val.length, source: valParsed ? 'file' : split.val.length ? 'split' : 'none', valFraction: valParsed ? 0 : valFraction, seed },
    validation: valParsed ? { ...fileReport(valParsed, valRecords), overlap: valParsed.container === 'text' ? checkOverlap(records, valRecords, valParsed.issues) : 0 } : null,
    text,
  };
  if (!split.val.length && records.length) parsed.issues.warn(0, 'structure', 'nothing is held out: the held-out perplexity cannot be measured (raise the validation share or add paragraphs)');
  return { report: { ...report, ...parsed.issues.summary() }, records, train: split.train, val: split.val, encoder };
}
