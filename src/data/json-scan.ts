// A streaming, byte-level scanner that cuts a JSON document into its records without parsing the
// whole file: the elements of a top-level array (`[ {...}, {...} ]`) or a sequence of top-level values
// (`{...} {...}`, e.g. pretty-printed objects back to back). Each record's bytes and the physical line
// where it starts go to a callback, which decodes and parses it alone, so one broken record (a trailing
// comma, Latin-1 bytes) is one reported error and the rest of the file still loads. JSON's structural
// characters are ASCII and never occur inside a UTF-8 multi-byte sequence, so scanning bytes is exact.
import type { IssueCode } from './types';
import { concatBytes } from './source';

export interface JsonScanHandlers {
  /** One record: its bytes (null when larger than maxRecordBytes) and the line where it starts. */
  element(bytes: Uint8Array | null, line: number, byteLength: number): void;
  /** A structural problem between records (trailing or missing comma, unclosed array, ...). */
  issue(line: number, code: IssueCode, message: string): void;
}

const WS = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const NL = 0x0a;

type State = 'top' | 'between' | 'element' | 'done';
type ElementKind = 'composite' | 'string' | 'bare';

export class JsonScanner {
  mode: 'unknown' | 'array' | 'sequence' = 'unknown';
  /** Current 1-based physical line. */
  line: number;
  /** Records seen. */
  elements = 0;
  closed = false;
  private state: State = 'top';
  // Between elements (array mode).
  private expectElement = true;
  private commaLine = 0;
  private afterComma = false;
  // Inside an element.
  private kind: ElementKind = 'composite';
  private depth = 0;
  private inString = false;
  private escape = false;
  private startLine = 0;
  private parts: Uint8Array[] = [];
  private size = 0;
  private overflow = false;
  private reportedTrailingGarbage = false;

  constructor(
    private readonly h: JsonScanHandlers,
    opts: { startLine?: number; maxRecordBytes?: number } = {},
  ) {
    this.line = opts.startLine ?? 1;
    this.maxRecordBytes = opts.maxRecordBytes ?? 64 * 1024 * 1024;
  }
  private readonly maxRecordBytes: number;

  push(chunk: Uint8Array): void {
    let i = 0;
    let elemStart = this.state === 'element' ? 0 : -1;
    const n = chunk.byteLength;
    while (i < n) {
      const b = chunk[i]!;
      if (this.state === 'element') {
        // Returns true when the element ended; `end` = index after its last byte.
        let ended = false;
        let end = i + 1;
        if (this.inString) {
          if (this.escape) this.escape = false;
          else if (b === BACKSLASH) this.escape = true;
          else if (b === QUOTE) {
            this.inString = false;
            if (this.kind === 'string') ended = true;
          } else if (b === NL) {
            // A raw newline cannot be inside a JSON string: the record is broken (it will fail to parse);
            // end the string here so one bad record does not swallow the rest of the file.
            this.inString = false;
            if (this.kind === 'string') {
              ended = true;
              end = i;
            }
          }
        } else if (this.kind === 'bare') {
          if (WS(b) || b === COMMA || b === CLOSE_BRACKET || b === CLOSE_BRACE || b === OPEN_BRACE || b === OPEN_BRACKET || b === QUOTE) {
            ended = true;
            end = i;
          }
        } else if (b === QUOTE) this.inString = true;
        else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
        else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
          this.depth--;
          if (this.depth === 0) ended = true;
        }
        if (ended) {
          this.take(chunk.subarray(elemStart, end));
          this.finishElement();
          elemStart = -1;
          if (end === i) continue; // re-read this byte between elements
          if (b === NL) this.line++;
          i++;
          continue;
        }
        if (b === NL) this.line++;
        i++;
        continue;
      }
      if (b === NL) {
        this.line++;
        i++;
        continue;
      }
      if (WS(b)) {
        i++;
        continue;
      }
      switch (this.state) {
        case 'top':
          if (b === OPEN_BRACKET) {
            this.mode = 'array';
            this.state = 'between';
            this.expectElement = true;
            i++;
          } else {
            this.mode = 'sequence';
            elemStart = this.begin(b, i);
            i++;
          }
          break;
        case 'between':
          if (this.mode === 'array' && b === CLOSE_BRACKET) {
            if (this.afterComma) this.h.issue(this.commaLine, 'trailing-comma', 'invalid JSON: trailing comma after the last record of the array (strict JSON parsers reject the whole file)');
            this.state = 'done';
            this.closed = true;
            this.afterComma = false;
          } else if (this.mode === 'array' && b === COMMA) {
            if (this.expectElement) this.h.issue(this.line, 'invalid-json', 'invalid JSON: extra comma between records');
            this.expectElement = true;
            this.afterComma = true;
            this.commaLine = this.line;
          } else {
            if (this.mode === 'array' && !this.expectElement) this.h.issue(this.line, 'invalid-json', 'invalid JSON: missing comma before this record');
            elemStart = this.begin(b, i);
          }
          i++;
          break;
        case 'done':
          if (!this.reportedTrailingGarbage) {
            this.h.issue(this.line, 'structure', 'invalid JSON: unexpected content after the closing "]" of the array (ignored)');
            this.reportedTrailingGarbage = true;
          }
          i++;
          break;
      }
    }
    if (this.state === 'element' && elemStart >= 0) this.take(chunk.subarray(elemStart));
  }

  /** Starts an element at chunk[i] (byte b); returns i (the element's first byte). */
  private begin(b: number, i: number): number {
    this.state = 'element';
    this.startLine = this.line;
    this.parts = [];
    this.size = 0;
    this.overflow = false;
    this.inString = false;
    this.escape = false;
    this.depth = 0;
    this.afterComma = false;
    if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      this.kind = 'composite';
      this.depth = 1;
    } else if (b === QUOTE) {
      this.kind = 'string';
      this.inString = true;
    } else this.kind = 'bare';
    return i;
  }

  private take(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    this.size += piece.byteLength;
    if (this.overflow) return;
    if (this.size > this.maxRecordBytes) {
      this.overflow = true;
      this.parts = [];
      return;
    }
    this.parts.push(piece.slice());
  }

  private finishElement(): void {
    this.elements++;
    const bytes = this.overflow ? null : concatBytes(this.parts, this.size);
    this.parts = [];
    this.state = 'between';
    this.expectElement = false;
    this.h.element(bytes, this.startLine, this.size);
  }

  end(): void {
    if (this.state === 'element') {
      // Unterminated record: hand over what we have (it fails to parse and is reported with its line).
      this.finishElement();
      if (this.mode === 'array') this.h.issue(this.line, 'structure', 'invalid JSON: the file ends inside a record (missing "}" or "]")');
    } else if (this.mode === 'array' && !this.closed) {
      this.h.issue(this.line, 'structure', 'invalid JSON: the array is not closed (missing "]" at the end of the file)');
    }
  }
}

/**
 * Finds the top-level array stored under `key` in the bytes of a JSON object, e.g. {"data": [...]}.
 * Returns its byte offset (at the "[") and the number of newlines before it, or null.
 */
export function findArrayUnderKey(bytes: Uint8Array, key: string): { offset: number; newlines: number } | null {
  const want = new TextEncoder().encode(JSON.stringify(key));
  let depth = 0;
  let inString = false;
  let escape = false;
  let strStart = -1;
  let lastKeyMatch = false;
  let pendingKey = false;
  let newlines = 0;
  for (let i = 0; i < bytes.byteLength; i++) {
    const b = bytes[i]!;
    if (b === NL) newlines++;
    if (inString) {
      if (escape) escape = false;
      else if (b === BACKSLASH) escape = true;
      else if (b === QUOTE) {
        inString = false;
        if (depth === 1) {
          const s = bytes.subarray(strStart, i + 1);
          lastKeyMatch = s.byteLength === want.byteLength && s.every((x, k) => x === want[k]);
        }
      }
      continue;
    }
    if (b === QUOTE) {
      inString = true;
      strStart = i;
    } else if (b === 0x3a /* : */ && depth === 1) pendingKey = lastKeyMatch;
    else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
      if (depth === 1 && b === OPEN_BRACKET && pendingKey) return { offset: i, newlines };
      depth++;
      pendingKey = false;
    } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) depth--;
    else if (b === COMMA && depth === 1) pendingKey = false;
  }
  return null;
}
