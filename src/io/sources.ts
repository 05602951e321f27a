// Model sources that work in a page, a Web Worker and Node 20 alike: files a user dropped, a plain URL
// (with an optional Cache API copy so a second visit works offline) and a Hugging Face Hub id.
// Only fetch, Response, ReadableStream, the Cache API and File-like objects are used: no DOM, no node:*.

import { ModelLoadError } from '../model/types';
import { SourceError, type ModelSource, type ProgressFn } from './source';

/**
 * A source that can also tell whether a file exists without downloading it (a HEAD request, a stat).
 * Loaders use it to probe for files they only want to mention in an error, such as `pytorch_model.bin`.
 */
export interface ProbingModelSource extends ModelSource {
  exists(path: string): Promise<boolean>;
}

/** Type guard for sources that implement {@link ProbingModelSource.exists}. */
export function canProbe(source: ModelSource): source is ProbingModelSource {
  return typeof (source as Partial<ProbingModelSource>).exists === 'function';
}

// ---------------------------------------------------------------------------------------------------
// Dropped files
// ---------------------------------------------------------------------------------------------------

/**
 * What filesSource needs from a dropped file. A DOM `File` fits as is: from `<input webkitdirectory>` its
 * `webkitRelativePath` is "folder/sub/file" (empty for single files); drag-and-drop code that walks
 * directory entries can pass the entry's path as `relativePath` instead.
 */
export interface DroppedFile {
  name: string;
  relativePath?: string;
  webkitRelativePath?: string;
  /** Byte size when known (File.size); lets readers refuse a huge file before reading it. */
  size?: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

/** "a\\b/./c" -> "a/b/c", without leading "/" or "./". */
function normalizePath(p: string): string {
  return p
    .replace(/\\/g, '/')
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');
}

function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/**
 * A source over files the user dropped or picked: single files or a whole folder. A requested path such as
 * "tokenizer.json" matches, in this order: the file's relative path with its top folder stripped
 * ("my-model/tokenizer.json"), its full relative path, then any file with that base name (the shallowest
 * one wins, so "tokenizer.json" beats "sub/tokenizer.json").
 */
export function filesSource(files: ReadonlyArray<DroppedFile>): ProbingModelSource {
  const entries = files.map((file) => {
    const full = normalizePath(file.relativePath || file.webkitRelativePath || file.name);
    const segments = full.split('/');
    return {
      file,
      full,
      stripped: segments.length > 1 ? segments.slice(1).join('/') : full,
      base: baseName(full),
      depth: segments.length,
    };
  });

  const find = (path: string) => {
    const want = normalizePath(path);
    const exact = entries.find((e) => e.stripped === want) ?? entries.find((e) => e.full === want);
    if (exact) return exact;
    const base = baseName(want);
    let best: (typeof entries)[number] | undefined;
    for (const e of entries) if (e.base === base && (!best || e.depth < best.depth)) best = e;
    return best;
  };

  return {
    label: `${files.length} dropped file${files.length === 1 ? '' : 's'}`,
    async exists(path) {
      return find(path) !== undefined;
    },
    async read(path: string, onProgress?: ProgressFn) {
      const e = find(path);
      if (!e) return null;
      const size = typeof e.file.size === 'number' ? e.file.size : null;
      // Reported before reading so a size check in onProgress can stop a huge file being loaded at all.
      onProgress?.({ file: path, loaded: 0, total: size });
      let buf: ArrayBuffer;
      try {
        buf = await e.file.arrayBuffer();
      } catch (err) {
        throw new SourceError(`Could not read the dropped file ${e.full}: ${(err as Error).message ?? err}`);
      }
      onProgress?.({ file: path, loaded: buf.byteLength, total: buf.byteLength });
      return new Uint8Array(buf);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------------

export const DEFAULT_CACHE_NAME = 'tabtune-models-v1';

export interface UrlSourceOptions {
  /** Cache API cache to keep downloaded files in; false disables caching. Default 'tabtune-models-v1'. */
  cacheName?: string | false;
  /** fetch to use (tests, custom headers). Default: the global fetch. */
  fetchImpl?: typeof fetch;
  /** Aborts downloads in flight; the abort error is rethrown as is (not as a NETWORK error). */
  signal?: AbortSignal;
  /** Label shown to the user; default the base URL. */
  label?: string;
}

/** The parts of the Cache API urlSource uses (so tests can pass a small fake as globalThis.caches). */
interface CacheLike {
  match(request: string): Promise<Response | undefined>;
  put(request: string, response: Response): Promise<void>;
  delete?(request: string): Promise<boolean>;
}
interface CacheStorageLike {
  open(name: string): Promise<CacheLike>;
}

function isAbort(e: unknown): boolean {
  return (e as { name?: string } | null)?.name === 'AbortError';
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    // Node's fetch reports "fetch failed" and hides the useful part ("ECONNREFUSED …") in `cause`.
    const cause = (e as Error & { cause?: unknown }).cause;
    const causeText = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
    return causeText && !e.message.includes(causeText) ? `${e.message}: ${causeText}` : e.message;
  }
  return String(e);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Hint for an HTTP error status, in words a user can act on. */
function statusHint(status: number): string {
  if (status === 401 || status === 403)
    // The Hub answers 401 both for a repository that does not exist and for a gated or private one.
    return 'Check the model id or address. If the model is gated or private, tabtune cannot download it: download the files yourself and drop them instead.';
  if (status === 429) return 'The server is rate-limiting downloads. Wait a minute and try again.';
  if (status >= 500) return 'The server had a problem. Try again later.';
  return 'Check the address.';
}

const NETWORK_HINT =
  'Check the address and your connection. A server other than Hugging Face must allow cross-origin requests (CORS).';

/**
 * Reads a response body to the end, reporting progress per chunk. The buffer is allocated once when the
 * length is known (no 2x peak for a 1 GB file), else grown by doubling. An exception thrown by onProgress
 * (e.g. a size limit) cancels the download and propagates unchanged; a failure of the stream itself
 * becomes a NETWORK error.
 */
async function readBody(res: Response, url: string, file: string, onProgress?: ProgressFn): Promise<Uint8Array<ArrayBuffer>> {
  const lengthHeader = res.headers.get('content-length');
  const encoding = (res.headers.get('content-encoding') ?? 'identity').toLowerCase();
  // With a compressed transfer, content-length counts compressed bytes while the stream yields decoded ones.
  let total = encoding === 'identity' && lengthHeader && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  onProgress?.({ file, loaded: 0, total });

  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    onProgress?.({ file, loaded: bytes.byteLength, total: bytes.byteLength });
    return bytes;
  }

  const reader = res.body.getReader();
  let buf = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (isAbort(e)) throw e;
        throw new ModelLoadError('NETWORK', `Download of ${url} was interrupted after ${mb(loaded)}: ${errorText(e)}`, NETWORK_HINT);
      }
      if (chunk.done) break;
      const value = chunk.value;
      if (loaded + value.byteLength > buf.byteLength) {
        const grown = new Uint8Array(Math.max(buf.byteLength * 2, loaded + value.byteLength));
        grown.set(buf.subarray(0, loaded));
        buf = grown;
      }
      buf.set(value, loaded);
      loaded += value.byteLength;
      if (total !== null && loaded > total) total = null; // the header lied; the size is unknown after all
      onProgress?.({ file, loaded, total });
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  }
  if (total !== null && loaded < total) {
    throw new ModelLoadError('NETWORK', `Download of ${url} ended after ${loaded} of ${total} bytes`, NETWORK_HINT);
  }
  onProgress?.({ file, loaded, total: loaded });
  // Trim the over-allocation of a grown buffer (a copy, but only when the length was not known up front).
  return loaded === buf.byteLength ? buf : buf.slice(0, loaded);
}

/** Header of the small cache entry that records "this URL was a 404" (see urlSource). */
const MISSING_MARKER = 'x-tabtune-missing';

/** What the cache knows about a URL: its file, that it was a 404 when last fetched, or nothing. */
type CacheState = { kind: 'file'; response: Response } | { kind: 'missing' } | { kind: 'unknown' };

/**
 * Reads `${baseUrl}/${path}` with fetch. 404 -> null; other HTTP errors and network failures ->
 * ModelLoadError('NETWORK') naming the status and URL.
 *
 * When the Cache API exists (pages and workers in a secure context) and cacheName is not false:
 * - files that were found are stored, and later reads are served from the cache first, without a request,
 *   so a model loaded once loads again offline;
 * - a 404 is recorded as an empty marker entry that is never served while online (the next read asks the
 *   server again) but lets an offline read answer null instead of failing. Without it a second visit could
 *   not work offline: the loader asks for files that may not exist (model.safetensors of a sharded
 *   checkpoint, an optional generation_config.json) and would get a network error for them;
 * - if a request fails and the cache has the file after all (another tab stored it meanwhile), it is used.
 */
export function urlSource(baseUrl: string, opts: UrlSourceOptions = {}): ProbingModelSource {
  const base = baseUrl.replace(/\/+$/, '');
  const cacheName = opts.cacheName === undefined ? DEFAULT_CACHE_NAME : opts.cacheName;
  // Wrapped so a browser's fetch is not called with `this` set to something other than the global object.
  const doFetch: typeof fetch = opts.fetchImpl ?? ((input, init) => fetch(input, init));
  const fileUrl = (path: string) => `${base}/${normalizePath(path).split('/').map(encodeURIComponent).join('/')}`;

  let cachePromise: Promise<CacheLike | null> | undefined;
  const getCache = (): Promise<CacheLike | null> => {
    if (cacheName === false) return Promise.resolve(null);
    const storage = (globalThis as { caches?: CacheStorageLike }).caches;
    if (!storage) return Promise.resolve(null);
    // caches.open throws in some contexts (opaque origins, some private modes): then simply don't cache.
    cachePromise ??= storage.open(cacheName).catch(() => null);
    return cachePromise;
  };
  const lookup = async (url: string): Promise<CacheState> => {
    const cache = await getCache();
    if (!cache) return { kind: 'unknown' };
    try {
      const hit = await cache.match(url);
      if (!hit?.ok) return { kind: 'unknown' };
      if (hit.headers.get(MISSING_MARKER)) {
        await hit.body?.cancel().catch(() => {});
        return { kind: 'missing' };
      }
      return { kind: 'file', response: hit };
    } catch {
      return { kind: 'unknown' };
    }
  };
  /** Cache writes never fail a load: a full quota only costs the offline copy. */
  const store = async (url: string, response: Response) => {
    await (await getCache())?.put(url, response).catch(() => {});
  };

  const networkError = (url: string, e: unknown) =>
    new ModelLoadError('NETWORK', `Could not download ${url}: ${errorText(e)}`, NETWORK_HINT);
  const httpError = (url: string, res: Response) =>
    new ModelLoadError('NETWORK', `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} for ${url}`, statusHint(res.status));

  /** fetch, turning a failure into the cached answer when there is one, else into a NETWORK error. */
  const request = async (
    url: string,
    init: RequestInit,
    known: CacheState,
  ): Promise<{ kind: 'network'; response: Response } | Exclude<CacheState, { kind: 'unknown' }>> => {
    try {
      return { kind: 'network', response: await doFetch(url, { ...init, signal: opts.signal }) };
    } catch (e) {
      if (isAbort(e)) throw e;
      // Known to be missing, or cached by another tab since the lookup: answer from the cache.
      const now = known.kind === 'unknown' ? await lookup(url) : known;
      if (now.kind === 'unknown') throw networkError(url, e);
      return now;
    }
  };

  return {
    label: opts.label ?? base,

    async exists(path) {
      const url = fileUrl(path);
      const known = await lookup(url);
      if (known.kind === 'file') {
        await known.response.body?.cancel().catch(() => {});
        return true;
      }
      const got = await request(url, { method: 'HEAD' }, known);
      if (got.kind !== 'network') {
        // Offline: answer from the cache.
        if (got.kind === 'file') await got.response.body?.cancel().catch(() => {});
        return got.kind === 'file';
      }
      const res = got.response;
      await res.body?.cancel().catch(() => {});
      if (res.status === 404) return false;
      if (!res.ok) throw httpError(url, res);
      return true;
    },

    async read(path: string, onProgress?: ProgressFn) {
      const url = fileUrl(path);

      let known = await lookup(url);
      if (known.kind === 'file') {
        try {
          return await readBody(known.response, url, path, onProgress);
        } catch (e) {
          // A cache entry that can't be read (storage evicted mid-read) is dropped and fetched again;
          // anything else (a size limit thrown by onProgress) propagates.
          if (!(e instanceof ModelLoadError && e.code === 'NETWORK')) throw e;
          await (await getCache())?.delete?.(url).catch(() => false);
          known = { kind: 'unknown' };
        }
      }

      const got = await request(url, {}, known);
      if (got.kind !== 'network') {
        // Offline: answer from the cache.
        return got.kind === 'file' ? readBody(got.response, url, path, onProgress) : null;
      }
      const res = got.response;
      if (res.status === 404) {
        await res.body?.cancel().catch(() => {});
        if (known.kind !== 'missing') await store(url, new Response(null, { status: 200, headers: { [MISSING_MARKER]: '1' } }));
        return null;
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        throw httpError(url, res);
      }

      const bytes = await readBody(res, url, path, onProgress);
      const headers = {
        'content-length': String(bytes.byteLength),
        'content-type': res.headers.get('content-type') ?? 'application/octet-stream',
      };
      await store(url, new Response(bytes, { status: 200, headers }));
      return bytes;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Hugging Face Hub
// ---------------------------------------------------------------------------------------------------

export interface HubId {
  org: string;
  name: string;
  /** Branch, tag or commit; undefined means 'main'. */
  revision?: string;
}

// Hub rules (huggingface_hub's validate_repo_id): letters, digits, '-', '_', '.'; no '--' or '..';
// '-' and '.' neither start nor end a part; at most 96 characters.
const HUB_PART = /^(?![.-])(?!.*(?:--|\.\.))[A-Za-z0-9_.-]{1,96}(?<![.-])$/;
const HUB_REVISION = /^[A-Za-z0-9_.\-/]+$/;

/** Parses "org/name" or "org/name@revision"; null when the text is not a Hub model id. */
export function parseHubId(id: string): HubId | null {
  const text = id.trim().replace(/^(?:hf|hub):/i, '');
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? undefined : text.slice(at + 1);
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => HUB_PART.test(p))) return null;
  if (revision !== undefined && (!HUB_REVISION.test(revision) || revision.includes('..'))) return null;
  return { org: parts[0]!, name: parts[1]!, revision };
}

function requireHubId(id: string): HubId {
  const parsed = parseHubId(id);
  if (!parsed) {
    throw new SourceError(`"${id}" is not a Hugging Face model id: expected org/name or org/name@revision, e.g. "HuggingFaceTB/SmolLM2-135M"`);
  }
  return parsed;
}

/**
 * The download URL of a Hub model: without `file` the folder URL that urlSource appends paths to,
 * `https://huggingface.co/org/name/resolve/main`; with it, that file's URL. Throws SourceError for a bad id.
 */
export function hubUrl(id: string, file?: string): string {
  const { org, name, revision } = requireHubId(id);
  // The Hub wants a revision such as "refs/pr/1" URL-encoded into one path segment.
  const base = `https://huggingface.co/${org}/${name}/resolve/${encodeURIComponent(revision ?? 'main')}`;
  return file === undefined ? base : `${base}/${normalizePath(file).split('/').map(encodeURIComponent).join('/')}`;
}

/** A Hugging Face Hub model, read through urlSource (so it is cached the same way). Label "hub:org/name". */
export function hubSource(id: string, opts: Omit<UrlSourceOptions, 'label'> = {}): ProbingModelSource {
  const { org, name, revision } = requireHubId(id);
  const label = `hub:${org}/${name}${revision ? `@${revision}` : ''}`;
  return urlSource(hubUrl(id), { ...opts, label });
}

export type ResolvedLocation =
  | { ok: true; kind: 'url' | 'hub'; source: ProbingModelSource }
  | { ok: false; error: string };

/**
 * Turns what a user typed into a source: an http(s) URL (or a same-origin path starting with "/", "./",
 * "../") -> urlSource; a Hub page URL such as https://huggingface.co/org/name or …/tree/<rev> -> hubSource;
 * "org/name[@revision]" -> hubSource. Anything else gives an error message to show next to the input.
 */
export function resolveModelLocation(input: string, opts: Omit<UrlSourceOptions, 'label'> = {}): ResolvedLocation {
  const text = input.trim();
  if (!text) return { ok: false, error: 'Enter a model URL or a Hugging Face model id such as HuggingFaceTB/SmolLM2-135M.' };

  if (/^https?:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return { ok: false, error: `"${text}" is not a valid URL.` };
    }
    // A pasted Hub page (…/org/name, …/org/name/tree/rev, …/org/name/resolve/rev) means the Hub model.
    if (/^(?:www\.)?(?:huggingface\.co|hf\.co)$/i.test(url.hostname)) {
      const m = /^\/([^/]+)\/([^/]+)(?:\/(?:tree|resolve|blob)\/([^/]+))?\/?$/.exec(url.pathname);
      if (m && !['datasets', 'spaces', 'api', 'docs'].includes(m[1]!)) {
        const rev = m[3] ? decodeURIComponent(m[3]) : undefined;
        const id = `${m[1]}/${m[2]}${rev && rev !== 'main' ? `@${rev}` : ''}`;
        if (parseHubId(id)) return { ok: true, kind: 'hub', source: hubSource(id, opts) };
      }
    }
    return { ok: true, kind: 'url', source: urlSource(text, opts) };
  }

  if (/^\.{0,2}\//.test(text)) return { ok: true, kind: 'url', source: urlSource(text, opts) };

  if (parseHubId(text)) return { ok: true, kind: 'hub', source: hubSource(text, opts) };

  return {
    ok: false,
    error: `"${text}" is neither an http(s) URL nor a Hugging Face model id (org/name, e.g. HuggingFaceTB/SmolLM2-135M).`,
  };
}
