// Zip archives of exported folders (PEFT adapter, merged model) for one-click browser downloads, and
// reading such archives back (importing an adapter zip). Synchronous fflate: call it from a Web Worker
// for big models so the page stays responsive.
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { filesSource, type ProbingModelSource } from './sources';

export class ZipError extends Error {
  override name = 'ZipError';
}

/** fflate writes classic zip (no Zip64): every entry and the archive must stay under 4 GiB. */
const ZIP32_LIMIT = 0xffffffff;

export interface ZipOptions {
  /** Put every file under this folder inside the archive ("my-adapter/adapter_config.json"). */
  folder?: string;
  /** Modification time stored for every entry (default: now). Fix it for byte-identical archives. */
  mtime?: Date;
}

/** "a\\b/./c" -> "a/b/c"; refuses names that would leave the archive's folder ("..", absolute paths). */
function cleanName(name: string): string {
  const parts = name.replace(/\\/g, '/').split('/').filter((s) => s !== '' && s !== '.');
  if (!parts.length || parts.includes('..') || /^[a-zA-Z]:$/.test(parts[0]!)) throw new ZipError(`unsafe file name in zip: "${name}"`);
  return parts.join('/');
}

/** Already-compressed or incompressible files are stored; JSON and text are deflated. */
function levelFor(name: string): 0 | 6 {
  return /\.(safetensors|bin|pt|pth|gguf|zip|model)$/i.test(name) ? 0 : 6;
}

/** Zips name -> bytes (names may contain "/" for subfolders). */
export function zipFiles(files: Map<string, Uint8Array>, opts: ZipOptions = {}): Uint8Array {
  const prefix = opts.folder ? `${cleanName(opts.folder)}/` : '';
  const tree: Zippable = {};
  let total = 0;
  for (const [name, bytes] of files) {
    const path = prefix + cleanName(name);
    if (path in tree) throw new ZipError(`two files named "${path}"`);
    if (bytes.byteLength > ZIP32_LIMIT) throw new ZipError(`${name} is ${bytes.byteLength} bytes: zip files cannot hold files over 4 GiB (save the folder's files one by one instead)`);
    total += bytes.byteLength;
    tree[path] = [bytes, { level: levelFor(path), mtime: opts.mtime }];
  }
  if (total > ZIP32_LIMIT) throw new ZipError(`the files add up to ${total} bytes: zip archives over 4 GiB are not supported (save the files one by one instead)`);
  return zipSync(tree);
}

/** Junk that archivers add and no model folder needs. */
const isJunk = (name: string) => name.endsWith('/') || name.startsWith('__MACOSX/') || /(^|\/)\.DS_Store$/.test(name);

/** Unzips to name -> bytes (directories and macOS metadata skipped; names as stored, cleaned). */
export function unzipFiles(bytes: Uint8Array): Map<string, Uint8Array> {
  let raw: Record<string, Uint8Array>;
  try {
    raw = unzipSync(bytes, { filter: (f) => !isJunk(f.name) });
  } catch (e) {
    throw new ZipError(`not a readable zip archive (${(e as Error).message})`);
  }
  const out = new Map<string, Uint8Array>();
  for (const [name, data] of Object.entries(raw)) {
    if (isJunk(name)) continue;
    out.set(cleanName(name), data);
  }
  return out;
}

/**
 * A model source over in-memory files, resolved like dropped files: "adapter_config.json" finds
 * "my-adapter/adapter_config.json" (a single top folder is looked through).
 */
export function memorySource(files: Map<string, Uint8Array>, label = `${files.size} files`): ProbingModelSource {
  const src = filesSource(
    [...files].map(([name, data]) => ({
      name: name.split('/').pop()!,
      relativePath: name,
      size: data.byteLength,
      arrayBuffer: async () => data.slice().buffer as ArrayBuffer,
    })),
  );
  return { label, exists: (p) => src.exists(p), read: (p, onProgress) => src.read(p, onProgress) };
}

/** A model source over a zip archive's files (e.g. an adapter zip to import with loadPeftAdapter). */
export function zipSource(bytes: Uint8Array, label = 'zip archive'): ProbingModelSource {
  return memorySource(unzipFiles(bytes), label);
}
