// KeyValueBackend over a folder (CLI, scripts). src/node is the Node-only room: the lint rule keeps engine
// code from importing it; the page and the worker store through IdbBackend (src/storage/backend.ts).
//
// Layout: a key "a/b/c" is the file <root>/a/b/c.json (JSON values) or <root>/a/b/c.bin (Uint8Array).
// Every segment is escaped so it is safe on any filesystem, case-insensitive ones included: bytes outside
// [a-z0-9_-] become %XX (so "Run.1" is "%52un%2E1"), and an empty segment is "%". Escaped names never hold a
// ".", which keeps the .json/.bin suffixes and the ".tmp-*" scratch files unambiguous.
//
// Each set writes a scratch file, fsyncs it, then renames it over the target (rename is atomic), so a reader
// sees the old value or the new one. setMany applies entries in order; with fsync on, the folder is synced
// after each rename so "chunks, then manifest" also holds after a power cut.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import * as nodePath from 'node:path';
import { compareKeys, type KeyValueBackend, type StoredValue } from '../storage/backend';

export interface FsBackendOptions {
  /** fsync files and folders on write (default true). Tests may turn it off for speed. */
  fsync?: boolean;
}

const SAFE = /^[a-z0-9_-]$/;

export function encodeSegment(segment: string): string {
  if (segment === '') return '%';
  let out = '';
  for (const ch of segment) {
    if (SAFE.test(ch)) out += ch;
    else for (const b of new TextEncoder().encode(ch)) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function decodeSegment(name: string): string {
  return name === '%' ? '' : decodeURIComponent(name);
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function isMissing(e: unknown): boolean {
  const c = errCode(e);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

/** The entries of a folder; none when it does not exist. */
async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}

export class FsBackend implements KeyValueBackend {
  readonly root: string;
  private readonly fsync: boolean;

  constructor(root: string, options: FsBackendOptions = {}) {
    this.root = nodePath.resolve(root);
    this.fsync = options.fsync ?? true;
  }

  /** Base path of a key, without the .json / .bin suffix. */
  pathOf(key: string): string {
    return nodePath.join(this.root, ...key.split('/').map(encodeSegment));
  }

  async get<T = StoredValue>(key: string): Promise<T | undefined> {
    const base = this.pathOf(key);
    try {
      const buf = await readFile(base + '.bin');
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) as T;
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    try {
      return JSON.parse(await readFile(base + '.json', 'utf8')) as T;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  getMany<T = StoredValue>(keys: string[]): Promise<(T | undefined)[]> {
    return Promise.all(keys.map((k) => this.get<T>(k)));
  }

  async set(key: string, value: StoredValue): Promise<void> {
    const base = this.pathOf(key);
    const binary = value instanceof Uint8Array;
    const data = binary ? value : new TextEncoder().encode(JSON.stringify(value));
    const target = base + (binary ? '.bin' : '.json');
    const dir = nodePath.dirname(base);
    const tmp = nodePath.join(dir, `.tmp-${randomBytes(6).toString('hex')}`);
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(data);
          if (this.fsync) await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, target);
        break;
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => undefined);
        // A concurrent delete may have pruned the (then empty) folder between mkdir and open: try again once.
        if (errCode(e) === 'ENOENT' && attempt === 0) continue;
        throw e;
      }
    }
    // A key changing between JSON and binary must not leave its other form behind.
    await unlink(base + (binary ? '.json' : '.bin')).catch((e) => {
      if (!isMissing(e)) throw e;
    });
    if (this.fsync) await this.syncDir(dir);
  }

  async setMany(entries: [string, StoredValue][]): Promise<void> {
    for (const [k, v] of entries) await this.set(k, v);
  }

  async del(key: string): Promise<void> {
    const base = this.pathOf(key);
    await rm(base + '.bin', { force: true });
    await rm(base + '.json', { force: true });
    await this.prune(nodePath.dirname(base));
  }

  async delMany(keys: string[]): Promise<void> {
    for (const k of keys) await this.del(k);
  }

  async keys(prefix = ''): Promise<string[]> {
    const cut = prefix.lastIndexOf('/');
    const dirSegments = cut < 0 ? [] : prefix.slice(0, cut).split('/');
    const out: string[] = [];
    await this.walk(nodePath.join(this.root, ...dirSegments.map(encodeSegment)), dirSegments, out);
    return out.filter((k) => k.startsWith(prefix)).sort(compareKeys);
  }

  /** Removes scratch files older than `olderThanMs` that a crashed write left behind. Returns how many. */
  async sweepTempFiles(olderThanMs = 60_000): Promise<number> {
    let n = 0;
    const visit = async (dir: string): Promise<void> => {
      for (const ent of await readdirOrEmpty(dir)) {
        const full = nodePath.join(dir, ent.name);
        if (ent.isDirectory()) await visit(full);
        else if (ent.name.startsWith('.tmp-')) {
          const st = await stat(full).catch(() => null);
          if (st && Date.now() - st.mtimeMs >= olderThanMs) {
            await rm(full, { force: true });
            n++;
          }
        }
      }
    };
    await visit(this.root);
    return n;
  }

  private async walk(dir: string, segments: string[], out: string[]): Promise<void> {
    for (const ent of await readdirOrEmpty(dir)) {
      if (ent.name.startsWith('.')) continue; // scratch files
      if (ent.isDirectory()) {
        await this.walk(nodePath.join(dir, ent.name), [...segments, decodeSegment(ent.name)], out);
      } else {
        const m = /^(.*)\.(json|bin)$/.exec(ent.name);
        if (m) out.push([...segments, decodeSegment(m[1]!)].join('/'));
      }
    }
  }

  /** Removes now-empty folders from `dir` up to (not including) the root. */
  private async prune(dir: string): Promise<void> {
    while (dir.startsWith(this.root + nodePath.sep)) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty, already gone, or busy: stop
      }
      dir = nodePath.dirname(dir);
    }
  }

  private async syncDir(dir: string): Promise<void> {
    try {
      const fh = await open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch {
      // Some platforms (Windows) cannot fsync a folder; the file itself was synced.
    }
  }
}
