// Reads a dataset file into normalized records, streaming: detects the container (JSONL, JSON, CSV,
// TSV) from the first bytes and the record schema from the first records, then parses record by
// record. Every problem goes to an IssueLog with the physical line where its record starts; nothing
// aborts the file except an unreadable source.
import { CsvRecordReader, sniffDelimiter, type TableInfo } from './csv';
import { classify, formatName, normalize, parseFormatOverride, SCHEMA_KEYS, SCHEMA_LABELS, SILENT_KEYS } from './formats';
import { IssueLog, snippet } from './issues';
import { findArrayUnderKey, JsonScanner } from './json-scan';
import { LineSplitter } from './lines';
import { BomFilter, decodeLenient, decodeUtf8, firstInvalidUtf8, readChunks, readHead, startsWithBom, toSource, type DataInput, type ReadOptions } from './source';
import { DuplicateTracker, reportVerdict } from './validate';
import { isTextFileName, looksLikeTable, textRecords } from './text';
import type { ColumnMapping, Container, DataRecord, Schema } from './types';

export interface ParseOptions extends ReadOptions {
  /** Force the format: a container (jsonl, json, csv, tsv), a schema (alpaca, openai-chat, sharegpt, ...) or both (alpaca-json). */
  format?: string;
  /** CSV/TSV: which columns are the prompt and the completion. */
  columns?: ColumnMapping;
  /** Issues listed per severity (all are counted). Default 1000. */
  maxIssues?: number;
  /** Largest single line / record read (default 64 MiB). A JSON file that is one object is one record. */
  maxRecordBytes?: number;
  /** Records the schema is guessed from (default 32). */
  sniffRecords?: number;
}

export interface ParsedDataset {
  name: string;
  /** e.g. alpaca-json, openai-chat-jsonl, csv. */
  format: string;
  container: Container | null;
  schema: Schema | null;
  /** What detection found before any override. */
  detected: { container: Container | null; schema: Schema | null };
  /** Records seen in the file (valid or not; blank lines excluded). */
  total: number;
  /** Valid records, in file order. */
  records: DataRecord[];
  issues: IssueLog;
  table?: TableInfo;
  bytes: number;
}

/** Explains a JSON.parse error: trailing commas by name, the position as line/column of the file. */
export function describeJsonError(text: string, e: unknown, startLine: number): { code: 'invalid-json' | 'trailing-comma'; message: string } {
  const msg = e instanceof Error ? e.message : String(e);
  let pos = -1;
  const p = /position (\d+)/.exec(msg);
  const lc = /line (\d+) column (\d+)/.exec(msg);
  if (p) pos = Number(p[1]);
  else if (lc) {
    const lines = text.split('\n');
    pos = lines.slice(0, Number(lc[1]) - 1).reduce((a, l) => a + l.length + 1, 0) + Number(lc[2]) - 1;
  } else if (/end of JSON|unexpected end|Unterminated/i.test(msg)) pos = text.length;
  const where = (at: number) => {
    const before = text.slice(0, at);
    const nl = before.lastIndexOf('\n');
    const line = startLine + (before.match(/\n/g)?.length ?? 0);
    return line === startLine ? `column ${at - nl}` : `line ${line}, column ${at - nl}`;
  };
  if (pos >= 0) {
    const at = text[pos];
    let j = pos - 1;
    while (j >= 0 && /\s/.test(text[j]!)) j--;
    if ((at === '}' || at === ']') && text[j] === ',') return { code: 'trailing-comma', message: `invalid JSON: trailing comma before "${at}" (${where(j)})` };
  }
  const clean = msg
    .replace(/\s*\(line \d+ column \d+\)/, '')
    .replace(/\s*in JSON at position \d+/, '')
    .replace(/^JSON\.parse: /, '')
    .replace(/ at line \d+ column \d+ of the JSON data$/, '');
  if (pos >= text.length) return { code: 'invalid-json', message: `invalid JSON: the record ends early (${clean}; missing "}" or quote?)` };
  return { code: 'invalid-json', message: `invalid JSON: ${clean}${pos >= 0 ? ` (${where(pos)})` : ''}` };
}

/** Container from the first bytes of a file (BOM included) and its name. */
export function sniffContainer(head: Uint8Array, name: string): { container: Container } | { error: string } {
  if (head[0] === 0x1f && head[1] === 0x8b) return { error: 'this is a gzip-compressed file: decompress it first' };
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return { error: 'this is a ZIP archive (or an .xlsx/.docx file): export the data as JSONL, JSON or CSV' };
  // A text file with a stray NUL is read line by line (the line is reported); mostly binary bytes are not text.
  const nuls = head.subarray(0, 4096).reduce((n, b) => n + (b === 0 ? 1 : 0), 0);
  if (nuls > 0 && nuls * 100 <= Math.min(head.byteLength, 4096) && isTextFileName(name)) return { container: 'text' };
  if (nuls > 0) return { error: 'this is a binary file (it contains NUL bytes), not JSONL, JSON or CSV text' };
  const text = decodeLenient(startsWithBom(head) ? head.subarray(3) : head).replace(/^\s+/, '');
  if (text === '') return { error: 'the file is empty' };
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? '';
  if (isTextFileName(name)) return { container: 'text' };
  if (text[0] === '[') return { container: 'json' };
  if (text[0] === '{') {
    const first = text.split('\n', 1)[0]!.trim();
    if (first.endsWith('}') || ext === 'jsonl' || ext === 'ndjson') return { container: 'jsonl' };
    return { container: 'json' };
  }
  if (ext === 'jsonl' || ext === 'ndjson') return { container: 'jsonl' };
  if (ext === 'json') return { container: 'json' };
  if (ext === 'tsv' || ext === 'tab') return { container: 'tsv' };
  const firstLine = text.split('\n', 1)[0]!;
  const d = sniffDelimiter(firstLine, name);
  if (ext === 'csv' || (firstLine.includes(d) && looksLikeTable(text, d))) return { container: d === '\t' ? 'tsv' : 'csv' };
  // Neither JSON nor a table: plain text (domain adaptation, src/data/text.ts).
  return { container: 'text' };
}

type Obj = Record<string, unknown>;

const NO_FINAL_NEWLINE = 'the last line has no newline at the end (harmless here; concatenating files would join two records)';

/** Arrays of objects under a key of a top-level object ({"data": [...]}), for files that wrap their records. */
function wrappedArrayKey(v: unknown): string | null {
  if (!v || typeof v !== 'object' || Array.isArray(v) || classify(v as Obj) !== null) return null;
  for (const [k, x] of Object.entries(v as Obj)) if (Array.isArray(x) && x.length > 0 && x[0] && typeof x[0] === 'object' && !Array.isArray(x[0])) return k;
  return null;
}

/** Turns parsed JSON values into records: schema guess, normalization, duplicates, ignored keys. */
class Collector {
  records: DataRecord[] = [];
  schema: Schema | null;
  private decided: boolean;
  private pending: { value: unknown; line: number; text: string }[] = [];
  private ignored = new Map<string, { count: number; line: number }>();
  private mixed = new Map<Schema, { count: number; line: number }>();
  private dups = new DuplicateTracker();

  constructor(
    private readonly log: IssueLog,
    forced: Schema | undefined,
    private readonly sniffN: number,
  ) {
    this.schema = forced ?? null;
    this.decided = forced !== undefined;
    this.forced = forced !== undefined;
  }
  private readonly forced: boolean;

  addJson(value: unknown, line: number, text: string): void {
    if (!this.decided) {
      this.pending.push({ value, line, text });
      if (this.pending.length >= this.sniffN) this.decide();
      return;
    }
    this.process(value, line, text);
  }

  private decide(): void {
    const counts = new Map<Schema, number>();
    for (const p of this.pending) {
      const s = p.value && typeof p.value === 'object' && !Array.isArray(p.value) ? classify(p.value as Obj) : null;
      if (s) counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    let best: Schema | null = null;
    for (const [s, n] of counts) if (best === null || n > counts.get(best)!) best = s;
    this.schema = best;
    this.decided = true;
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) this.process(p.value, p.line, p.text);
  }

  private process(value: unknown, line: number, text: string): void {
    let schema = this.schema;
    const isObj = !!value && typeof value === 'object' && !Array.isArray(value);
    if (!this.forced && isObj) {
      const own = classify(value as Obj);
      if (own && own !== schema) {
        if (schema) {
          const m = this.mixed.get(own) ?? { count: 0, line };
          m.count++;
          this.mixed.set(own, m);
        }
        schema = own;
      }
    }
    if (isObj && !schema) {
      const keys = Object.keys(value as Obj);
      this.log.error(line, 'unknown-shape', `unrecognized record with keys ${keys.length ? keys.map((k) => `"${k}"`).join(', ') : '(none)'}: expected ${Object.entries(SCHEMA_LABELS).filter(([k]) => k !== 'table').map(([, v]) => v).join(', or ')}`, { snippet: snippet(text) });
      return;
    }
    const n = normalize(value, schema ?? 'prompt-completion', line);
    this.log.addRecord(line, n.problems, { snippet: snippet(text) }); // all reasons of the record in one issue
    if (!n.record) return;
    const used = SCHEMA_KEYS[schema!];
    for (const k of Object.keys(value as Obj)) {
      if (used.includes(k) || SILENT_KEYS.has(k)) continue;
      const e = this.ignored.get(k) ?? { count: 0, line };
      e.count++;
      this.ignored.set(k, e);
    }
    this.add(n.record, text);
  }

  /** A record that is already normalized (CSV rows). */
  add(record: DataRecord, raw: string): void {
    reportVerdict(this.dups.check(record), record.line, this.log, snippet(raw));
    this.records.push(record);
  }

  finish(): void {
    if (!this.decided) this.decide();
    for (const [k, e] of this.ignored) this.log.warn(e.line, 'ignored-field', `field "${k}" is not used for training (${e.count} record${e.count > 1 ? 's' : ''}, first on line ${e.line})`);
    for (const [s, e] of this.mixed)
      this.log.warn(e.line, 'mixed-shape', `${e.count} record${e.count > 1 ? 's are' : ' is'} ${SCHEMA_LABELS[s]}, unlike the rest of the file (${this.schema ? SCHEMA_LABELS[this.schema] : '?'}): read as ${s}`);
  }
}

/**
 * Parses a dataset (a dropped File/Blob, a DataSource from ./node or in-memory text). Streams the file;
 * reports progress through opts.onProgress. Throws only when the source cannot be read at all.
 */
export async function parseDataset(input: DataInput, opts: ParseOptions = {}): Promise<ParsedDataset> {
  const src = toSource(input);
  const log = new IssueLog(opts.maxIssues);
  const override = opts.format ? parseFormatOverride(opts.format) : {};
  const head = await readHead(src);
  const sniff = head.byteLength === 0 ? ({ error: 'the file is empty' } as const) : sniffContainer(head, src.name);
  const detectedContainer = 'container' in sniff ? sniff.container : null;
  const container = override.container ?? detectedContainer;
  const result: ParsedDataset = {
    name: src.name,
    format: container ?? 'unknown',
    container,
    schema: null,
    detected: { container: detectedContainer, schema: null },
    total: 0,
    records: [],
    issues: log,
    bytes: 0,
  };
  if (!container) {
    log.error(0, head.byteLength === 0 || ('error' in sniff && sniff.error === 'the file is empty') ? 'empty-file' : 'unreadable', 'error' in sniff ? sniff.error : 'unrecognized format');
    return result;
  }
  const maxRecordBytes = opts.maxRecordBytes ?? 64 * 1024 * 1024;
  const forcedSchema = override.schema && override.schema !== 'table' ? override.schema : undefined;
  const collector = new Collector(log, forcedSchema, opts.sniffRecords ?? 32);

  /** Streams the whole file (BOM removed) into a parser; returns the last byte read. */
  const readAll = async (sink: { push(c: Uint8Array): void; end(): void }): Promise<{ lastByte: number }> => {
    const bomFilter = new BomFilter((c) => sink.push(c));
    let lastByte = -1;
    result.bytes = await readChunks(
      src,
      (c) => {
        if (c.byteLength) lastByte = c[c.byteLength - 1]!;
        bomFilter.push(c);
      },
      opts,
    );
    bomFilter.end();
    sink.end();
    if (bomFilter.bom) log.warn(1, 'bom', `the file starts with a UTF-8 byte-order mark (BOM): ignored${container === 'csv' || container === 'tsv' ? ' (the first column name is read without it)' : ''}`);
    return { lastByte };
  };

  const handleText = (bytes: Uint8Array | null, line: number, byteLength: number): { value: unknown; text: string } | undefined => {
    result.total++;
    if (bytes === null) {
      log.error(line, 'too-large', `record is ${(byteLength / 2 ** 20).toFixed(1)} MiB, more than the ${(maxRecordBytes / 2 ** 20).toFixed(0)} MiB limit per record (for JSON, use a top-level array or JSONL)`);
      return undefined;
    }
    const text = decodeUtf8(bytes);
    if (text === null) {
      const at = firstInvalidUtf8(bytes);
      const bad = bytes[at]!;
      log.error(line, 'invalid-utf8', `invalid UTF-8 (byte 0x${bad.toString(16).toUpperCase().padStart(2, '0')} at byte ${at + 1} of the record; is the file Latin-1/Windows-1252? save it as UTF-8)`, { snippet: snippet(decodeLenient(bytes)) });
      return undefined;
    }
    try {
      return { value: JSON.parse(text) as unknown, text };
    } catch (e) {
      const d = describeJsonError(text, e, line);
      log.error(line, d.code, d.message, { snippet: snippet(text) });
      return undefined;
    }
  };

  if (container === 'jsonl') {
    const splitter = new LineSplitter((bytes, line, len) => {
      if (bytes !== null && bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) {
        log.warn(line, 'blank-line', 'blank line (skipped)');
        return;
      }
      const r = handleText(bytes, line, len);
      if (r) collector.addJson(r.value, line, r.text);
    }, maxRecordBytes);
    const { lastByte } = await readAll(splitter);
    if (splitter.crlf > 0) log.warn(1, 'crlf', `Windows line endings (CRLF) on ${splitter.crlf} line${splitter.crlf > 1 ? 's' : ''}: handled`);
    if (lastByte !== 0x0a) log.warn(splitter.line, 'no-final-newline', NO_FINAL_NEWLINE);
  } else if (container === 'json') {
    let stash: { bytes: Uint8Array; line: number; value: unknown; text: string } | null = null;
    let first = true;
    const onElement = (scanner: () => JsonScanner, mayUnwrap: boolean) => (bytes: Uint8Array | null, line: number, len: number) => {
      if (stash) {
        collector.addJson(stash.value, stash.line, stash.text);
        stash = null;
      }
      const r = handleText(bytes, line, len);
      const wasFirst = first;
      first = false;
      if (!r) return;
      if (mayUnwrap && wasFirst && scanner().mode === 'sequence' && wrappedArrayKey(r.value)) {
        stash = { bytes: bytes!, line, value: r.value, text: r.text };
        return;
      }
      collector.addJson(r.value, line, r.text);
    };
    const issue = (line: number, code: Parameters<IssueLog['error']>[1], message: string) => log.error(line, code, message);
    const scanner: JsonScanner = new JsonScanner({ element: onElement(() => scanner, true), issue }, { maxRecordBytes });
    await readAll(scanner);
    const wrapped = stash as { bytes: Uint8Array; line: number; value: unknown; text: string } | null;
    if (wrapped) {
      // The file is one object that wraps the records: {"data": [...]}. Read the array's elements.
      const key = wrappedArrayKey(wrapped.value)!;
      const at = findArrayUnderKey(wrapped.bytes, key)!;
      log.warn(wrapped.line, 'structure', `the file is one JSON object: records read from its "${key}" array`);
      result.total--; // the wrapper is not a record
      stash = null;
      const inner: JsonScanner = new JsonScanner({ element: onElement(() => inner, false), issue }, { maxRecordBytes, startLine: wrapped.line + at.newlines });
      inner.push(wrapped.bytes.subarray(at.offset));
      inner.end();
    }
  } else if (container === 'text') {
    // Plain text: lines decoded one by one (a bad line is reported with its number), then paragraphs.
    const lines: (string | null)[] = [];
    let binary = 0;
    const splitter = new LineSplitter((bytes, line, len) => {
      if (bytes === null) {
        log.error(line, 'too-large', `line ${line} is ${(len / 2 ** 20).toFixed(1)} MiB, more than the ${(maxRecordBytes / 2 ** 20).toFixed(0)} MiB limit per line: skipped`);
        lines.push(null);
        return;
      }
      if (bytes.includes(0)) {
        if (binary++ === 0) log.error(line, 'unreadable', 'binary data (NUL bytes) in a text file: this line is skipped (is it really plain text?)', { snippet: snippet(decodeLenient(bytes).replace(/\0/g, '')) });
        lines.push(null);
        return;
      }
      const text = decodeUtf8(bytes);
      if (text === null) {
        const at = firstInvalidUtf8(bytes);
        log.error(line, 'invalid-utf8', `invalid UTF-8 (byte 0x${bytes[at]!.toString(16).toUpperCase().padStart(2, '0')} at byte ${at + 1} of the line; is the file Latin-1/Windows-1252? save it as UTF-8): line skipped`, { snippet: snippet(decodeLenient(bytes)) });
        lines.push(null);
        return;
      }
      lines.push(text);
    }, maxRecordBytes);
    await readAll(splitter);
    if (binary > 1) log.error(0, 'unreadable', `binary data (NUL bytes) on ${binary} lines: they are skipped`);
    if (splitter.crlf > 0) log.warn(1, 'crlf', `Windows line endings (CRLF) on ${splitter.crlf} line${splitter.crlf > 1 ? 's' : ''}: handled`);
    const t = textRecords(lines);
    result.total = t.records.length;
    for (const r of t.records) collector.add(r, r.text);
    if (!t.records.length && !log.summary().errorCount) log.error(0, 'empty-file', 'the file is empty (no text, only blank lines)');
  } else {
    const headText = decodeLenient(startsWithBom(head) ? head.subarray(3) : head);
    const delimiter = container === 'tsv' ? '\t' : override.container === 'csv' ? ',' : sniffDelimiter(headText.split('\n', 1)[0]!, src.name);
    const reader = new CsvRecordReader(delimiter, log, opts.columns, (r, raw) => collector.add(r, raw));
    const { lastByte } = await readAll(reader);
    result.total = reader.rows;
    result.table = reader.info ?? undefined;
    if (reader.crlf) log.warn(1, 'crlf', 'Windows line endings (CRLF): handled');
    if (lastByte !== 0x0a) log.warn(reader.line, 'no-final-newline', NO_FINAL_NEWLINE);
  }
  collector.finish();
  result.records = collector.records;
  result.schema = container === 'csv' || container === 'tsv' ? 'table' : collector.schema;
  result.detected.schema = override.schema && override.schema !== 'table' ? null : result.schema;
  result.format = formatName(container, result.schema);
  return result;
}
