// Model source over a local folder (CLI, tests, scripts). src/node is the Node-only room: the lint rule
// keeps engine code from importing it; the page and the worker read models through src/io/sources.ts.

import { readFile, stat } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { SourceError, type ProgressFn } from '../io/source';
import type { ProbingModelSource } from '../io/sources';

/** Errors that mean "no such file here" rather than "something is wrong". */
function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/** Reads files relative to `dir`; a missing file reads as null. Label = dir. */
export function directorySource(dir: string): ProbingModelSource {
  const root = nodePath.resolve(dir);

  const resolve = (path: string): string => {
    const full = nodePath.resolve(root, path);
    // Model files live inside the folder; an index naming "../../etc/passwd" is refused.
    if (full !== root && !full.startsWith(root + nodePath.sep)) {
      throw new SourceError(`${path} points outside the model folder ${dir}`);
    }
    return full;
  };

  return {
    label: dir,
    async exists(path) {
      try {
        return (await stat(resolve(path))).isFile();
      } catch (e) {
        if (isMissing(e)) return false;
        throw e;
      }
    },
    async read(path: string, onProgress?: ProgressFn) {
      const full = resolve(path);
      let size: number;
      try {
        const st = await stat(full);
        if (!st.isFile()) return null;
        size = st.size;
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
      // Reported before reading so a size check in onProgress can refuse a huge file up front.
      onProgress?.({ file: path, loaded: 0, total: size });
      let buf: Buffer;
      try {
        buf = await readFile(full);
      } catch (e) {
        if (isMissing(e)) return null; // deleted between stat and read
        throw e;
      }
      onProgress?.({ file: path, loaded: buf.byteLength, total: buf.byteLength });
      // A plain Uint8Array view (Buffer's slice() shares memory unlike Uint8Array's; avoid surprises).
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },
  };
}
