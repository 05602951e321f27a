// Dataset sources and the byte reader under every parser: chunks from a ReadableStream, with progress
// (bytes read / total), cancellation, and a yield to the event loop every few milliseconds so a worker
// stays responsive while it reads a 100 MB file. Node files: see src/node/data-file.ts (Node only).
import type { DataSource, ProgressCallback } from './types';

/** A dropped File or any Blob. */
export function blobSource(blob: Blob, name?: string): DataSource {
  return {
    name: name ?? (blob as Blob & { name?: string }).name ?? 'dataset',
    size: blob.size,
    stream: () => blob.stream() as ReadableStream<Uint8Array>,
  };
}

/** In-memory bytes (tests, generated data). Streams in 64 KiB chunks like a file would. */
export function bytesSource(bytes: Uint8Array, name = 'dataset'): DataSource {
  const CHUNK = 64 * 1024;
  return {
    name,
    size: bytes.byteLength,
    stream: () => {
      let off = 0;
      return new ReadableStream<Uint8Array>({
        pull(controller) {
          if (off >= bytes.byteLength) {
            controller.close();
            return;
          }
          controller.enqueue(bytes.subarray(off, Math.min(off + CHUNK, bytes.byteLength)));
          off += CHUNK;
        },
      });
    },
  };
}

/** In-memory text, encoded as UTF-8. */
export function textSource(text: string, name = 'dataset.jsonl'): DataSource {
  return bytesSource(new TextEncoder().encode(text), name);
}

/** Anything parseDataset accepts. */
export type DataInput = DataSource | Blob;

export function toSource(input: DataInput): DataSource {
  return input instanceof Blob ? blobSource(input) : input;
}

export class DataReadError extends Error {
  override name = 'DataReadError';
}

export interface ReadOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Milliseconds of work between yields to the event loop (default 25). */
  yieldEveryMs?: number;
}

import { yieldToEventLoop } from '../util/async';

/**
 * Calls onChunk for every chunk of the source, in order. onChunk may be async (it is awaited).
 * Reports progress after each chunk and yields to the event loop every `yieldEveryMs`.
 */
export async function readChunks(src: DataSource, onChunk: (chunk: Uint8Array) => void | Promise<void>, opts: ReadOptions = {}): Promise<number> {
  const every = opts.yieldEveryMs ?? 25;
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = src.stream().getReader();
  } catch (e) {
    throw new DataReadError(`cannot read ${src.name}: ${(e as Error).message}`, { cause: e });
  }
  let loaded = 0;
  let last = performance.now();
  const progress = () => opts.onProgress?.({ phase: 'read', loaded, total: src.size, fraction: src.size ? Math.min(1, loaded / src.size) : 0 });
  progress();
  try {
    for (;;) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (e) {
        throw new DataReadError(`cannot read ${src.name}: ${(e as Error).message}`, { cause: e });
      }
      if (r.done) break;
      loaded += r.value.byteLength;
      await onChunk(r.value);
      progress();
      if (performance.now() - last > every) {
        await yieldToEventLoop();
        last = performance.now();
      }
    }
  } finally {
    reader.releaseLock();
  }
  if (src.size === null || loaded !== src.size) opts.onProgress?.({ phase: 'read', loaded, total: loaded, fraction: 1 });
  return loaded;
}

/** The first `max` bytes of a source (for format sniffing); cancels the rest of the stream. */
export async function readHead(src: DataSource, max = 64 * 1024): Promise<Uint8Array> {
  const reader = src.stream().getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    while (n < max) {
      const r = await reader.read();
      if (r.done) break;
      parts.push(r.value);
      n += r.value.byteLength;
    }
  } catch (e) {
    throw new DataReadError(`cannot read ${src.name}: ${(e as Error).message}`, { cause: e });
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return concatBytes(parts, Math.min(n, max));
}

export function concatBytes(parts: Uint8Array[], total?: number): Uint8Array {
  if (parts.length === 1 && (total === undefined || total === parts[0]!.byteLength)) return parts[0]!;
  const n = total ?? parts.reduce((a, p) => a + p.byteLength, 0);
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    if (off >= n) break;
    const take = Math.min(p.byteLength, n - off);
    out.set(take === p.byteLength ? p : p.subarray(0, take), off);
    off += take;
  }
  return out;
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientDecoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** Strict UTF-8 decode: null when the bytes are not valid UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return fatalDecoder.decode(bytes);
  } catch {
    return null;
  }
}

/** UTF-8 decode with U+FFFD for invalid bytes (snippets of broken lines). */
export function decodeLenient(bytes: Uint8Array): string {
  return lenientDecoder.decode(bytes);
}

/** Byte offset and 1-based column of the first invalid UTF-8 sequence in bytes (bytes known to be invalid). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
    }
    // Overlongs and surrogates are rare enough that the decoder's verdict covers them.
    i += need + 1;
  }
  return Math.max(0, bytes.length - 1);
}

export const BOM = [0xef, 0xbb, 0xbf] as const;
export function startsWithBom(bytes: Uint8Array): boolean {
  return bytes[0] === BOM[0] && bytes[1] === BOM[1] && bytes[2] === BOM[2];
}

/** Drops a UTF-8 BOM at the start of a byte stream (split across chunks or not). */
export class BomFilter {
  bom = false;
  private head: Uint8Array | null = null;
  private started = false;
  constructor(private readonly next: (c: Uint8Array) => void) {}
  push(chunk: Uint8Array): void {
    if (this.started) return this.next(chunk);
    const buf = this.head ? concatBytes([this.head, chunk]) : chunk;
    if (buf.byteLength < 3 && buf.every((b, i) => b === BOM[i])) {
      this.head = buf.slice();
      return;
    }
    this.started = true;
    this.head = null;
    if (startsWithBom(buf)) {
      this.bom = true;
      if (buf.byteLength > 3) this.next(buf.subarray(3));
    } else this.next(buf);
  }
  end(): void {
    if (!this.started && this.head) this.next(this.head);
    this.started = true;
  }
}
