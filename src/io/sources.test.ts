import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ModelLoadError } from '../model/types';
import { directorySource } from '../node/fs-source';
import { readHFModelFiles } from './hf-folder';
import { writeSafetensors } from './safetensors';
import { SourceError } from './source';
import { DEFAULT_CACHE_NAME, filesSource, hubSource, hubUrl, parseHubId, resolveModelLocation, urlSource, type DroppedFile } from './sources';

// ---------- a tiny model folder served over HTTP ----------

const enc = new TextEncoder();
const CONFIG = enc.encode(JSON.stringify({ model_type: 'llama', hidden_size: 4 }));
const WEIGHTS = writeSafetensors([{ name: 'w', dtype: 'F16', shape: [64, 1024], data: Float32Array.from({ length: 65536 }, (_, i) => (i % 7) - 3) }]); // ~128 KiB
const TOKENIZER = enc.encode('{"model":{"type":"BPE"}}');

interface TestServer {
  server: Server;
  base: string;
  requests: string[];
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    requests.push(`${req.method} ${path}`);
    const send = (body: Uint8Array, headers: Record<string, string> = {}) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.byteLength), ...headers });
      if (req.method === 'HEAD') return res.end();
      // Several writes so the client sees several chunks.
      for (let i = 0; i < body.byteLength; i += 16384) res.write(body.subarray(i, i + 16384));
      res.end();
    };
    switch (path) {
      case '/m/config.json':
        return send(CONFIG, { 'content-type': 'application/json' });
      case '/m/model.safetensors':
        return send(WEIGHTS);
      case '/m/tokenizer.json':
        return send(TOKENIZER);
      case '/chunked/model.safetensors': // no content-length: transfer-encoding chunked, size unknown
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < WEIGHTS.byteLength; i += 10000) res.write(WEIGHTS.subarray(i, i + 10000));
        return res.end();
      case '/broken/model.safetensors': // announces the full size, sends part, then drops the connection
        res.writeHead(200, { 'content-length': String(WEIGHTS.byteLength) });
        res.write(WEIGHTS.subarray(0, 20000));
        setTimeout(() => res.destroy(), 20);
        return;
      case '/error/config.json':
        res.writeHead(500, 'Internal Server Error', { 'content-type': 'text/plain' });
        return res.end('boom');
      case '/gated/config.json':
        res.writeHead(401, 'Unauthorized');
        return res.end();
      case '/slow/model.safetensors':
        res.writeHead(200, { 'content-length': String(WEIGHTS.byteLength) });
        res.write(WEIGHTS.subarray(0, 1000)); // ...and never finishes
        return;
      default:
        res.writeHead(404, 'Not Found');
        return res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    base: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------- an in-memory stand-in for the Cache API (globalThis.caches) ----------

class FakeCache {
  readonly entries = new Map<string, { body: ArrayBuffer; headers: [string, string][] }>();
  /** How many upcoming match() calls report a miss whatever is stored (simulates another tab filling it). */
  missesLeft = 0;
  async match(url: string): Promise<Response | undefined> {
    if (this.missesLeft > 0) {
      this.missesLeft--;
      return undefined;
    }
    const e = this.entries.get(url);
    return e ? new Response(e.body.slice(0), { status: 200, headers: e.headers }) : undefined;
  }
  async put(url: string, res: Response): Promise<void> {
    this.entries.set(url, { body: await res.arrayBuffer(), headers: [...res.headers] });
  }
  async delete(url: string): Promise<boolean> {
    return this.entries.delete(url);
  }
}

class FakeCacheStorage {
  readonly caches = new Map<string, FakeCache>();
  async open(name: string): Promise<FakeCache> {
    let c = this.caches.get(name);
    if (!c) this.caches.set(name, (c = new FakeCache()));
    return c;
  }
}

type WithCaches = { caches?: unknown };
function installCaches(): FakeCacheStorage {
  const storage = new FakeCacheStorage();
  (globalThis as WithCaches).caches = storage;
  return storage;
}

async function networkError(p: Promise<unknown>): Promise<ModelLoadError> {
  const e = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ModelLoadError);
  expect((e as ModelLoadError).code).toBe('NETWORK');
  return e as ModelLoadError;
}

// ---------- urlSource ----------

describe('urlSource', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
  });
  afterAll(() => srv.close());
  afterEach(() => {
    delete (globalThis as WithCaches).caches;
  });

  it('reads a file with streaming progress that ends at the full size', async () => {
    const src = urlSource(`${srv.base}/m/`);
    expect(src.label).toBe(`${srv.base}/m`);
    const events: Array<{ file: string; loaded: number; total: number | null }> = [];
    const bytes = await src.read('model.safetensors', (p) => events.push(p));
    expect(bytes).toEqual(WEIGHTS);
    expect(events[0]).toEqual({ file: 'model.safetensors', loaded: 0, total: WEIGHTS.byteLength });
    expect(events.at(-1)).toEqual({ file: 'model.safetensors', loaded: WEIGHTS.byteLength, total: WEIGHTS.byteLength });
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e, i) => i === 0 || e.loaded >= events[i - 1]!.loaded)).toBe(true);
  });

  it('reads a body without content-length (total unknown until the end)', async () => {
    const events: Array<{ loaded: number; total: number | null }> = [];
    const bytes = await urlSource(`${srv.base}/chunked`).read('model.safetensors', (p) => events.push(p));
    expect(bytes).toEqual(WEIGHTS);
    expect(events.slice(0, -1).every((e) => e.total === null)).toBe(true);
    expect(events.at(-1)).toEqual({ file: 'model.safetensors', loaded: WEIGHTS.byteLength, total: WEIGHTS.byteLength });
  });

  it('returns null on 404', async () => {
    expect(await urlSource(`${srv.base}/m`).read('missing.json')).toBeNull();
  });

  it('throws NETWORK with the status and URL on 500', async () => {
    const e = await networkError(urlSource(`${srv.base}/error`).read('config.json'));
    expect(e.message).toBe(`HTTP 500 Internal Server Error for ${srv.base}/error/config.json`);
    expect(e.hint).toMatch(/server had a problem/);
  });

  it('hints at gated models on 401', async () => {
    const e = await networkError(urlSource(`${srv.base}/gated`).read('config.json'));
    expect(e.message).toMatch(/^HTTP 401 Unauthorized for /);
    expect(e.hint).toMatch(/gated or private/);
  });

  it('throws NETWORK when the connection drops mid-download', async () => {
    const e = await networkError(urlSource(`${srv.base}/broken`).read('model.safetensors'));
    expect(e.message).toMatch(new RegExp(`${srv.base}/broken/model\\.safetensors`));
    expect(e.message).toMatch(/interrupted|ended after/);
  });

  it('throws NETWORK naming the URL when nothing listens', async () => {
    const dead = await startServer();
    await dead.close();
    const e = await networkError(urlSource(dead.base).read('config.json'));
    expect(e.message).toMatch(new RegExp(`^Could not download ${dead.base}/config\\.json: `));
    expect(e.message).toMatch(/ECONNREFUSED|fetch failed/);
    expect(e.hint).toMatch(/CORS/);
  });

  it('stops a download when onProgress throws (e.g. a size limit), passing the error through', async () => {
    const limit = new Error('too big');
    await expect(
      urlSource(`${srv.base}/m`).read('model.safetensors', (p) => {
        if (p.loaded > 0) throw limit;
      }),
    ).rejects.toBe(limit);
  });

  it('can be aborted with a signal', async () => {
    const ctrl = new AbortController();
    const p = urlSource(`${srv.base}/slow`, { signal: ctrl.signal }).read('model.safetensors');
    setTimeout(() => ctrl.abort(), 50);
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('probes with HEAD', async () => {
    const src = urlSource(`${srv.base}/m`);
    const before = srv.requests.length;
    expect(await src.exists('model.safetensors')).toBe(true);
    expect(await src.exists('pytorch_model.bin')).toBe(false);
    expect(srv.requests.slice(before)).toEqual(['HEAD /m/model.safetensors', 'HEAD /m/pytorch_model.bin']);
  });

  it('encodes path segments', async () => {
    const seen: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response(null, { status: 404 });
    };
    await urlSource('https://example.com/a', { fetchImpl }).read('sub dir/x#1.json');
    expect(seen).toEqual(['https://example.com/a/sub%20dir/x%231.json']);
  });

  it('loads a whole model folder through readHFModelFiles', async () => {
    const m = await readHFModelFiles(urlSource(`${srv.base}/m`));
    expect(m.config).toEqual({ model_type: 'llama', hidden_size: 4 });
    expect(m.weights.get('w')!.data[8]).toBe((8 % 7) - 3);
    expect(m.tokenizerJson).toEqual({ model: { type: 'BPE' } });
    expect(m.tokenizerConfig).toBeNull();
  });

  describe('with the Cache API', () => {
    it('stores downloads and serves later reads from the cache, offline', async () => {
      const own = await startServer();
      const storage = installCaches();
      const first = urlSource(`${own.base}/m`);
      expect(await first.read('config.json')).toEqual(CONFIG);
      expect(await first.read('model.safetensors')).toEqual(WEIGHTS);
      expect(await first.read('tokenizer.json')).toEqual(TOKENIZER);
      const cache = storage.caches.get(DEFAULT_CACHE_NAME)!;
      expect([...cache.entries.keys()].sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => `${own.base}/m/${f}`));

      // Served from the cache: no second request.
      const again = urlSource(`${own.base}/m`);
      expect(await again.read('model.safetensors')).toEqual(WEIGHTS);
      expect(own.requests).toEqual(['GET /m/config.json', 'GET /m/model.safetensors', 'GET /m/tokenizer.json']);

      await own.close(); // "the second visit", offline
      const second = urlSource(`${own.base}/m`);
      const events: Array<{ loaded: number; total: number | null }> = [];
      expect(await second.read('model.safetensors', (p) => events.push(p))).toEqual(WEIGHTS);
      expect(events[0]!.total).toBe(WEIGHTS.byteLength);
      expect(events.at(-1)).toEqual({ file: 'model.safetensors', loaded: WEIGHTS.byteLength, total: WEIGHTS.byteLength });
      expect(await second.read('config.json')).toEqual(CONFIG);
      expect(await second.exists('model.safetensors')).toBe(true);
      // Never fetched and the server is gone: a network error, not a silent null.
      await networkError(second.read('generation_config.json'));
    });

    it('records 404s so a whole model folder loads again offline, without serving them while online', async () => {
      const own = await startServer();
      const storage = installCaches();
      const online = await readHFModelFiles(urlSource(`${own.base}/m`)); // tokenizer_config.json etc. are 404s
      const cache = storage.caches.get(DEFAULT_CACHE_NAME)!;
      const marker = cache.entries.get(`${own.base}/m/generation_config.json`)!;
      expect(marker.body.byteLength).toBe(0); // a marker, not content

      // Online, a recorded 404 is asked again (the file may have appeared); a cached file is not.
      own.requests.length = 0;
      await readHFModelFiles(urlSource(`${own.base}/m`));
      expect(own.requests).toEqual(['GET /m/tokenizer_config.json', 'GET /m/generation_config.json']);

      await own.close();
      const offline = await readHFModelFiles(urlSource(`${own.base}/m`));
      expect(offline.config).toEqual(online.config);
      expect(offline.weights.get('w')!.data).toEqual(online.weights.get('w')!.data);
      expect(offline.tokenizerJson).toEqual(online.tokenizerJson);
      expect(offline.generationConfig).toBeNull();
      expect(await urlSource(`${own.base}/m`).exists('tokenizer_config.json')).toBe(false);
    });

    it('falls back to the cache when the network fails after a cache miss', async () => {
      const own = await startServer();
      const storage = installCaches();
      const src = urlSource(`${own.base}/m`);
      await src.read('config.json');
      await own.close();
      const cache = storage.caches.get(DEFAULT_CACHE_NAME)!;
      cache.missesLeft = 1; // the first lookup misses (as if another tab wrote the entry meanwhile)
      expect(await src.read('config.json')).toEqual(CONFIG);
    });

    it('uses the cache name given, and none with cacheName: false', async () => {
      const storage = installCaches();
      await urlSource(`${srv.base}/m`, { cacheName: 'mine' }).read('config.json');
      expect(storage.caches.get('mine')!.entries.size).toBe(1);
      const before = srv.requests.length;
      await urlSource(`${srv.base}/m`, { cacheName: false }).read('config.json');
      await urlSource(`${srv.base}/m`, { cacheName: false }).read('config.json');
      expect(srv.requests.length - before).toBe(2);
      expect(storage.caches.has(DEFAULT_CACHE_NAME)).toBe(false);
    });

    it('still loads when the cache cannot be opened or written', async () => {
      (globalThis as WithCaches).caches = { open: () => Promise.reject(new Error('SecurityError')) };
      expect(await urlSource(`${srv.base}/m`).read('config.json')).toEqual(CONFIG);
      (globalThis as WithCaches).caches = {
        open: async () => ({ match: async () => undefined, put: () => Promise.reject(new Error('QuotaExceededError')) }),
      };
      expect(await urlSource(`${srv.base}/m`).read('config.json')).toEqual(CONFIG);
    });
  });
});

// ---------- Hugging Face Hub ----------

describe('Hub ids', () => {
  it('maps ids to resolve URLs', () => {
    expect(hubUrl('HuggingFaceTB/SmolLM2-135M')).toBe('https://huggingface.co/HuggingFaceTB/SmolLM2-135M/resolve/main');
    expect(hubUrl('org/name', 'config.json')).toBe('https://huggingface.co/org/name/resolve/main/config.json');
    expect(hubUrl('org/name@v1.0', 'tokenizer.json')).toBe('https://huggingface.co/org/name/resolve/v1.0/tokenizer.json');
    expect(hubUrl('org/name@refs/pr/3')).toBe('https://huggingface.co/org/name/resolve/refs%2Fpr%2F3');
    expect(hubUrl(' hf:org/my_model.v2 ')).toBe('https://huggingface.co/org/my_model.v2/resolve/main');
  });

  it('rejects what is not an org/name id', () => {
    for (const bad of ['', 'gpt2', 'org/name/extra', '-org/name', 'org/name-', 'org/na--me', 'org/na..me', 'org/na me', 'org/name@', 'org/name@a b', 'org/name@../x', 'https://x.y/z']) {
      expect(parseHubId(bad)).toBeNull();
      expect(() => hubUrl(bad)).toThrow(SourceError);
    }
    expect(() => hubSource('gpt2')).toThrow(/"gpt2" is not a Hugging Face model id: expected org\/name/);
    expect(parseHubId('org/name@abc123')).toEqual({ org: 'org', name: 'name', revision: 'abc123' });
  });

  it('hubSource reads through the resolve URL', async () => {
    const seen: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response('{"ok":true}', { status: 200, headers: { 'content-length': '11' } });
    };
    const src = hubSource('org/name@dev', { fetchImpl, cacheName: false });
    expect(src.label).toBe('hub:org/name@dev');
    expect(new TextDecoder().decode((await src.read('config.json'))!)).toBe('{"ok":true}');
    expect(seen).toEqual(['https://huggingface.co/org/name/resolve/dev/config.json']);
  });
});

describe('resolveModelLocation', () => {
  it('turns URLs, Hub pages and ids into sources', () => {
    const url = resolveModelLocation('https://example.com/models/tiny/');
    expect(url).toMatchObject({ ok: true, kind: 'url' });
    expect(url.ok && url.source.label).toBe('https://example.com/models/tiny');

    const local = resolveModelLocation('/models/tabtune-base');
    expect(local).toMatchObject({ ok: true, kind: 'url' });

    const id = resolveModelLocation('HuggingFaceTB/SmolLM2-135M');
    expect(id).toMatchObject({ ok: true, kind: 'hub' });
    expect(id.ok && id.source.label).toBe('hub:HuggingFaceTB/SmolLM2-135M');

    const page = resolveModelLocation('https://huggingface.co/HuggingFaceTB/SmolLM2-135M');
    expect(page.ok && page.source.label).toBe('hub:HuggingFaceTB/SmolLM2-135M');
    const tree = resolveModelLocation('https://huggingface.co/org/name/tree/v2');
    expect(tree.ok && tree.source.label).toBe('hub:org/name@v2');
    const ds = resolveModelLocation('https://huggingface.co/datasets/org/name');
    expect(ds).toMatchObject({ ok: true, kind: 'url' });
  });

  it('explains what it could not understand', () => {
    const empty = resolveModelLocation('  ');
    expect(empty.ok).toBe(false);
    expect(!empty.ok && empty.error).toMatch(/Enter a model URL or a Hugging Face model id/);
    const junk = resolveModelLocation('not a model');
    expect(!junk.ok && junk.error).toMatch(/"not a model" is neither an http\(s\) URL nor a Hugging Face model id/);
    const badUrl = resolveModelLocation('http://');
    expect(badUrl.ok).toBe(false);
  });
});

// ---------- dropped files ----------

function dropped(path: string, text: string, useWebkit = true): DroppedFile {
  const bytes = enc.encode(text);
  const name = path.split('/').pop()!;
  return {
    name,
    ...(useWebkit ? { webkitRelativePath: path.includes('/') ? path : '' } : { relativePath: path }),
    size: bytes.byteLength,
    arrayBuffer: async () => bytes.slice().buffer,
  };
}

describe('filesSource', () => {
  const read = async (src: ReturnType<typeof filesSource>, p: string) => {
    const b = await src.read(p);
    return b && new TextDecoder().decode(b);
  };

  it('matches a dropped folder by path with the top folder stripped', async () => {
    const src = filesSource([
      dropped('my-model/config.json', 'top'),
      dropped('my-model/1_Pooling/config.json', 'nested'),
      dropped('my-model/onnx/model.onnx', 'onnx'),
    ]);
    expect(src.label).toBe('3 dropped files');
    expect(await read(src, 'config.json')).toBe('top');
    expect(await read(src, '1_Pooling/config.json')).toBe('nested');
    expect(await read(src, 'my-model/onnx/model.onnx')).toBe('onnx'); // the full relative path works too
    expect(await read(src, 'tokenizer.json')).toBeNull();
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('model.safetensors')).toBe(false);
  });

  it('falls back to the base name, preferring the shallowest file', async () => {
    const src = filesSource([dropped('/a/b/deep/tokenizer.json', 'deep', false), dropped('a/b/tokenizer.json', 'shallow', false)]);
    expect(await read(src, 'tokenizer.json')).toBe('shallow');
    expect(await read(src, 'other/dir/tokenizer.json')).toBe('shallow');
  });

  it('matches single dropped files by name and reports progress with the size first', async () => {
    const src = filesSource([dropped('config.json', '{}'), dropped('model.safetensors', 'weights!')]);
    expect(src.label).toBe('2 dropped files');
    const events: Array<{ loaded: number; total: number | null }> = [];
    expect(await read(src, 'model.safetensors')).toBe('weights!');
    await src.read('model.safetensors', (p) => events.push(p));
    expect(events).toEqual([
      { file: 'model.safetensors', loaded: 0, total: 8 },
      { file: 'model.safetensors', loaded: 8, total: 8 },
    ]);
    expect(filesSource([dropped('x', '')]).label).toBe('1 dropped file');
  });

  it('turns a read failure into a SourceError naming the file', async () => {
    const src = filesSource([{ name: 'config.json', arrayBuffer: () => Promise.reject(new Error('NotReadableError')) }]);
    await expect(src.read('config.json')).rejects.toThrow(/Could not read the dropped file config\.json: NotReadableError/);
  });

  it('feeds readHFModelFiles', async () => {
    const weights = writeSafetensors([{ name: 'w', dtype: 'BF16', shape: [2], data: Float32Array.of(1.5, -3) }]);
    const src = filesSource([
      dropped('tiny/config.json', '{"model_type":"llama"}'),
      { name: 'model.safetensors', webkitRelativePath: 'tiny/model.safetensors', size: weights.byteLength, arrayBuffer: async () => weights.slice().buffer },
    ]);
    const m = await readHFModelFiles(src);
    expect(Array.from(m.weights.get('w')!.data)).toEqual([1.5, -3]);
  });
});

// ---------- local folders (Node) ----------

describe('directorySource', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tabtune-dir-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads files, returns null for missing ones, and labels itself with the folder', async () => {
    writeFileSync(join(dir, 'config.json'), CONFIG);
    writeFileSync(join(dir, 'model.safetensors'), WEIGHTS);
    mkdirSync(join(dir, 'sub'));
    const src = directorySource(dir);
    expect(src.label).toBe(dir);
    const events: Array<{ loaded: number; total: number | null }> = [];
    expect(await src.read('model.safetensors', (p) => events.push(p))).toEqual(WEIGHTS);
    expect(events).toEqual([
      { file: 'model.safetensors', loaded: 0, total: WEIGHTS.byteLength },
      { file: 'model.safetensors', loaded: WEIGHTS.byteLength, total: WEIGHTS.byteLength },
    ]);
    expect(await src.read('tokenizer.json')).toBeNull();
    expect(await src.read('sub')).toBeNull(); // a folder is not a file
    expect(await src.read('config.json/x')).toBeNull(); // ENOTDIR
    expect(await src.exists('config.json')).toBe(true);
    expect(await src.exists('nope.bin')).toBe(false);
    await expect(src.read('../outside.json')).rejects.toThrow(/outside the model folder/);
    const m = await readHFModelFiles(src);
    expect(m.weights.get('w')!.shape).toEqual([64, 1024]);
  });
});
