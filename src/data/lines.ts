// Splits a byte stream into physical lines without decoding it: LF ends a line, a CR before it is
// dropped (CRLF files). Lines are decoded one by one by the caller, so one line of Latin-1 bytes is one
// reported line, not a failed file. (A BOM is removed before, by source.BomFilter.)
import { concatBytes } from './source';

export type LineHandler = (bytes: Uint8Array | null, line: number, byteLength: number) => void;

export class LineSplitter {
  /** Physical lines emitted so far (= the number of the last line). */
  line = 0;
  /** Lines that ended in CRLF. */
  crlf = 0;
  private parts: Uint8Array[] = [];
  private partLen = 0;
  private overflow = false;

  /** onLine gets null bytes for a line longer than maxLineBytes (its length is still reported). */
  constructor(
    private readonly onLine: LineHandler,
    private readonly maxLineBytes = 64 * 1024 * 1024,
  ) {}

  push(chunk: Uint8Array): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl < 0) break;
      this.append(chunk.subarray(start, nl));
      this.emit();
      start = nl + 1;
    }
    if (start < chunk.byteLength) this.append(chunk.subarray(start));
  }

  private append(piece: Uint8Array): void {
    if (piece.byteLength === 0) return;
    this.partLen += piece.byteLength;
    if (this.overflow) return;
    if (this.partLen > this.maxLineBytes) {
      this.overflow = true;
      this.parts = [];
      return;
    }
    this.parts.push(piece.slice()); // copy: the reader may reuse its buffer
  }

  private emit(): void {
    this.line++;
    const len = this.partLen;
    if (this.overflow) {
      this.onLine(null, this.line, len);
    } else {
      let bytes = concatBytes(this.parts, len);
      if (bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0d) {
        bytes = bytes.subarray(0, bytes.byteLength - 1);
        this.crlf++;
      }
      this.onLine(bytes, this.line, bytes.byteLength);
    }
    this.parts = [];
    this.partLen = 0;
    this.overflow = false;
  }

  end(): void {
    if (this.partLen > 0) this.emit();
  }
}
