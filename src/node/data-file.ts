// Dataset source over a local file (CLI, tests, scripts). src/node is the Node-only room: the lint rule
// keeps engine code from importing it; the page and the worker read dropped Files through blobSource
// (src/data/source.ts).
import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { DataReadError } from '../data/source';
import type { DataSource } from '../data/types';

/** A file on disk as a DataSource (streamed, never read whole). Throws DataReadError when it cannot be opened. */
export async function fileSource(path: string): Promise<DataSource> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new DataReadError(`cannot read ${path}: not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof DataReadError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataReadError(code === 'ENOENT' ? `cannot read ${path}: no such file` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const blob = await openAsBlob(path);
  return { name: basename(path), size, stream: () => blob.stream() as ReadableStream<Uint8Array> };
}
