// CSV/TSV with a header row, streamed: the byte stream is cut into ~1 MiB batches at record boundaries
// (a small RFC 4180 state machine, so quoted commas and newlines stay inside their record), each batch
// is decoded (strictly, line by line when it holds bad UTF-8) and parsed with papaparse. Every row gets
// the physical line where it starts, counting the newlines inside quoted fields before it.
import Papa from 'papaparse';
import { snippet, type IssueLog } from './issues';
import { concatBytes, decodeLenient, decodeUtf8 } from './source';
import type { ColumnMapping, DataRecord } from './types';

export interface TableInfo {
  delimiter: string;
  columns: string[];
  /** The mapping used to build records (null: none chosen yet, no records). */
  mapping: ColumnMapping | null;
  mappingSource: 'user' | 'auto' | null;
  /** Best guess for the user to confirm when nothing was applied. */
  suggested: ColumnMapping | null;
  /** Columns whose names look like a prompt / a completion, best first. */
  candidates: { prompt: string[]; completion: string[] };
}

const norm = (s: string) => s.trim().toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();

/** Header pairs that need no confirmation: exact (case-insensitive) names. */
const AUTO_PAIRS: [string[], string][] = [
  [['prompt'], 'completion'],
  [['prompt'], 'response'],
  [['instruction', 'input'], 'output'],
  [['instruction'], 'output'],
  [['instruction'], 'response'],
  [['input'], 'output'],
  [['question'], 'answer'],
  [['query'], 'response'],
  [['source'], 'target'],
  [['text'], 'label'],
  [['context'], 'response'],
  [['user'], 'assistant'],
];
const PROMPT_WORDS = ['question', 'prompt', 'instruction', 'input', 'query', 'context', 'text', 'user', 'source'];
const COMPLETION_WORDS = ['answer', 'completion', 'output', 'response', 'target', 'label', 'reply', 'assistant'];

function ranked(columns: string[], words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) for (const c of columns) if (norm(c).split(' ').includes(w) && !out.includes(c)) out.push(c);
  return out;
}

/** Column suggestions for a header; `auto` is set when the names leave no doubt. */
export function suggestColumns(columns: string[]): { auto: ColumnMapping | null; suggested: ColumnMapping | null; candidates: TableInfo['candidates'] } {
  const byNorm = new Map(columns.map((c) => [norm(c), c] as const));
  const system = byNorm.get('system');
  let auto: ColumnMapping | null = null;
  for (const [p, c] of AUTO_PAIRS) {
    if (p.every((x) => byNorm.has(x)) && byNorm.has(c)) {
      auto = { prompt: p.map((x) => byNorm.get(x)!), completion: byNorm.get(c)!, ...(system ? { system } : {}) };
      break;
    }
  }
  const candidates = { prompt: ranked(columns, PROMPT_WORDS), completion: ranked(columns, COMPLETION_WORDS) };
  const cp = candidates.prompt[0];
  const cc = candidates.completion.find((c) => c !== cp);
  const suggested = auto ?? (cp && cc ? { prompt: [cp], completion: cc } : null);
  return { auto, suggested, candidates };
}

/** Delimiter of a header line: tab, comma, semicolon or pipe, whichever occurs most outside quotes. */
export function sniffDelimiter(headerLine: string, fileName: string): string {
  if (/\.tsv$/i.test(fileName)) return '\t';
  const counts = new Map<string, number>([[',', 0], ['\t', 0], [';', 0], ['|', 0]]);
  let inQ = false;
  for (const ch of headerLine) {
    if (ch === '"') inQ = !inQ;
    else if (!inQ && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  let best = ',';
  for (const [d, n] of counts) if (n > counts.get(best)!) best = d;
  return best;
}

const QUOTE = 0x22;
const NL = 0x0a;
const CR = 0x0d;

/** Cuts bytes into batches that end on a record boundary (a newline outside quotes). */
class RecordBatcher {
  private state: 'start' | 'unquoted' | 'quoted' | 'quote-in-quoted' = 'start';
  private parts: Uint8Array[] = [];
  private size = 0;
  /** Offset (in the pending bytes) just after the last record boundary. */
  private boundary = 0;

  constructor(
    private readonly delim: number,
    private readonly onBatch: (bytes: Uint8Array) => void,
    private readonly batchBytes = 1 << 20,
  ) {}

  push(chunk: Uint8Array): void {
    const base = this.size;
    for (let i = 0; i < chunk.byteLength; i++) {
      const b = chunk[i]!;
      switch (this.state) {
        case 'start':
          if (b === QUOTE) this.state = 'quoted';
          else if (b === NL) this.boundary = base + i + 1;
          else if (b !== this.delim) this.state = 'unquoted';
          break;
        case 'unquoted':
          if (b === this.delim) this.state = 'start';
          else if (b === NL) {
            this.state = 'start';
            this.boundary = base + i + 1;
          }
          break;
        case 'quoted':
          if (b === QUOTE) this.state = 'quote-in-quoted';
          break;
        case 'quote-in-quoted':
          if (b === QUOTE) this.state = 'quoted'; // "" = an escaped quote
          else if (b === this.delim) this.state = 'start';
          else if (b === NL) {
            this.state = 'start';
            this.boundary = base + i + 1;
          } else if (b !== CR) this.state = 'unquoted'; // stray text after a closing quote
          break;
      }
    }
    this.parts.push(chunk.slice());
    this.size += chunk.byteLength;
    if (this.size >= this.batchBytes && this.boundary > 0) {
      const all = concatBytes(this.parts, this.size);
      this.onBatch(all.subarray(0, this.boundary));
      const rest = all.slice(this.boundary);
      this.parts = rest.byteLength ? [rest] : [];
      this.size = rest.byteLength;
      this.boundary = 0;
    }
  }

  end(): void {
    if (this.size > 0) this.onBatch(concatBytes(this.parts, this.size));
    this.parts = [];
    this.size = 0;
  }
}

export interface CsvRow {
  fields: string[];
  line: number;
  text: string;
}

/**
 * Streams CSV/TSV rows: push() bytes (BOM already removed), end() at EOF. The first row is the header.
 * Rows with invalid UTF-8, unterminated quotes or a field count that differs from the header's are
 * reported to `log` and skipped; blank lines are reported as warnings and skipped.
 */
export class CsvRecordReader {
  header: string[] | null = null;
  info: TableInfo | null = null;
  /** Data rows seen (blank lines excluded). */
  rows = 0;
  /** Physical lines consumed so far. */
  line = 0;
  crlf = false;
  private batcher: RecordBatcher;
  private colIndex = new Map<string, number>();

  constructor(
    readonly delimiter: string,
    private readonly log: IssueLog,
    private readonly userMapping: ColumnMapping | undefined,
    private readonly onRecord: (r: DataRecord, raw: string) => void,
  ) {
    this.batcher = new RecordBatcher(delimiter.charCodeAt(0), (b) => this.batch(b));
  }

  push(chunk: Uint8Array): void {
    this.batcher.push(chunk);
  }

  end(): void {
    this.batcher.end();
    if (!this.header) this.log.error(1, 'empty-file', 'the CSV file has no header row');
  }

  private batch(bytes: Uint8Array): void {
    const startLine = this.line + 1;
    let text = decodeUtf8(bytes);
    const badLines = new Set<number>();
    if (text === null) {
      // Find the lines with invalid bytes; decode them leniently so the rest of the batch parses.
      const pieces: string[] = [];
      let s = 0;
      let ln = startLine;
      for (;;) {
        const nl = bytes.indexOf(NL, s);
        const lineBytes = bytes.subarray(s, nl < 0 ? bytes.byteLength : nl + 1);
        let t = decodeUtf8(lineBytes);
        if (t === null) {
          badLines.add(ln);
          t = decodeLenient(lineBytes);
        }
        pieces.push(t);
        if (nl < 0) break;
        s = nl + 1;
        ln++;
      }
      text = pieces.join('');
    }
    if (this.line === 0) this.crlf = /^[^\n]*\r\n/.test(text);
    let prevCursor = 0;
    let counted = 0;
    let lineAt = startLine;
    const countTo = (idx: number) => {
      for (let i = text!.indexOf('\n', counted); i >= 0 && i < idx; i = text!.indexOf('\n', i + 1)) lineAt++;
      counted = idx;
    };
    Papa.parse<string[]>(text, {
      delimiter: this.delimiter,
      newline: this.crlf ? '\r\n' : '\n',
      skipEmptyLines: false,
      step: (res) => {
        const start = prevCursor;
        const end = res.meta.cursor;
        prevCursor = end;
        if (start >= text!.length) return; // the empty "row" after a final newline
        countTo(start);
        const line = lineAt;
        const rowText = text!.slice(start, end);
        const nlInside = (rowText.replace(/\r?\n$/, '').match(/\n/g) ?? []).length;
        this.row(res.data, res.errors, line, line + nlInside, rowText, badLines);
      },
    });
    countTo(text.length);
    this.line = text.endsWith('\n') ? lineAt - 1 : lineAt;
  }

  private row(fields: string[], errors: Papa.ParseError[], line: number, lastLine: number, raw: string, badLines: Set<number>): void {
    const blank = fields.length <= 1 && (fields[0] ?? '').trim() === '';
    if (blank) {
      if (this.header) this.log.warn(line, 'blank-line', 'blank line (skipped)');
      return;
    }
    if (!this.header) {
      for (let l = line; l <= lastLine; l++) if (badLines.has(l)) this.log.error(l, 'invalid-utf8', 'the header row is not valid UTF-8', { snippet: snippet(raw) });
      this.setHeader(fields.map((f) => f.trim()), line);
      return;
    }
    this.rows++;
    for (let l = line; l <= lastLine; l++) {
      if (badLines.has(l)) {
        this.log.error(line, 'invalid-utf8', `invalid UTF-8 on line ${l} (is the file Latin-1/Windows-1252? save it as UTF-8)`, { snippet: snippet(raw) });
        return;
      }
    }
    const quoteErr = errors.find((e) => e.type === 'Quotes');
    if (quoteErr) {
      this.log.error(line, 'csv-quotes', `unterminated quoted field (${quoteErr.message})`, { snippet: snippet(raw) });
      return;
    }
    if (fields.length !== this.header.length) {
      this.log.error(line, 'csv-field-count', `row has ${fields.length} field${fields.length === 1 ? '' : 's'}, the header has ${this.header.length}`, { snippet: snippet(raw) });
      return;
    }
    const m = this.info!.mapping;
    if (!m) return;
    const get = (c: string) => fields[this.colIndex.get(c)!]!;
    const prompt = m.prompt
      .map(get)
      .filter((v) => v.trim() !== '')
      .join('\n');
    const completion = get(m.completion);
    if (completion.trim() === '') {
      this.log.error(line, 'empty-field', `column "${m.completion}" (the completion) is empty`, { snippet: snippet(raw) });
      return;
    }
    if (prompt === '') {
      this.log.error(line, 'empty-field', `column${m.prompt.length > 1 ? 's' : ''} ${m.prompt.map((c) => `"${c}"`).join(', ')} (the prompt) ${m.prompt.length > 1 ? 'are' : 'is'} empty`, { snippet: snippet(raw) });
      return;
    }
    const system = m.system ? get(m.system) : '';
    const record: DataRecord = system.trim()
      ? { kind: 'chat', messages: [{ role: 'system', content: system }, { role: 'user', content: prompt }, { role: 'assistant', content: completion }], line }
      : { kind: 'pair', prompt, completion, line };
    this.onRecord(record, raw);
  }

  private setHeader(columns: string[], line: number): void {
    this.header = columns;
    columns.forEach((c, i) => {
      if (this.colIndex.has(c)) this.log.warn(line, 'csv-mapping', `column name "${c}" appears twice: the first one is used`);
      else this.colIndex.set(c, i);
    });
    const s = suggestColumns(columns);
    let mapping: ColumnMapping | null = null;
    let source: TableInfo['mappingSource'] = null;
    if (this.userMapping) {
      const wanted = [...this.userMapping.prompt, this.userMapping.completion, ...(this.userMapping.system ? [this.userMapping.system] : [])];
      const missing = wanted.filter((c) => !this.colIndex.has(c));
      if (missing.length) {
        this.log.error(0, 'csv-mapping', `no column named ${missing.map((c) => `"${c}"`).join(', ')} (columns: ${columns.map((c) => `"${c}"`).join(', ')})`);
      } else {
        mapping = this.userMapping;
        source = 'user';
      }
    } else if (s.auto) {
      mapping = s.auto;
      source = 'auto';
    } else {
      const hint = s.suggested ? ` (suggested: prompt "${s.suggested.prompt.join('", "')}", completion "${s.suggested.completion}")` : '';
      this.log.error(0, 'csv-mapping', `choose which columns are the prompt and the completion${hint}; columns: ${columns.map((c) => `"${c}"`).join(', ')}`);
    }
    this.info = { delimiter: this.delimiter, columns, mapping, mappingSource: source, suggested: s.suggested, candidates: s.candidates };
  }
}
