// Writes a model folder (file name -> bytes) to disk (CLI, tests). src/node is the Node-only room: the lint
// rule keeps engine code from importing it; the page downloads the same files as a zip (src/io/zip.ts).

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';

/** mkdir -p `dir`, then writes each file (names may contain '/' for subfolders, never '..'). */
export async function writeFolder(dir: string, files: Map<string, Uint8Array>): Promise<void> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  for (const [name, bytes] of files) {
    const path = resolve(join(root, name));
    if (path !== root && !path.startsWith(root + sep)) throw new Error(`writeFolder: file name "${name}" escapes ${root}`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, bytes);
  }
}
