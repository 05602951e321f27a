// Test helpers (Node only): the worker handler and a protocol client joined by a MessageChannel
// (structured clone, as between a page and a Web Worker), and a folder served over HTTP.
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { WorkerClient } from '../protocol/client';
import type { MessageEndpoint } from '../protocol/messages';
import { createWorkerHandler, type HandlerOptions } from '../worker/handler';
import { TabtuneStore, type KeyValueBackend } from '../storage/index';

export interface InProcessWorker {
  client: WorkerClient;
  /** The page's end of the channel, for sending raw messages. */
  port: MessageChannel['port1'];
  close(): void;
}

export function connectInProcess(options: HandlerOptions = {}): InProcessWorker {
  const channel = new MessageChannel();
  const handler = createWorkerHandler(channel.port2 as unknown as MessageEndpoint, options);
  const client = new WorkerClient(channel.port1 as unknown as MessageEndpoint);
  channel.port1.start();
  channel.port2.start();
  return {
    client,
    port: channel.port1,
    close() {
      client.dispose();
      handler.dispose();
      channel.port1.close();
    },
  };
}

/** Serves the files of `dir` at <base>/model/<file>; everything else is a 404. */
export async function serveFolder(dir: string): Promise<{ base: string; close(): void }> {
  const server: Server = createServer(async (req, res) => {
    const m = /^\/model\/([\w.-]+)$/.exec(req.url ?? '');
    try {
      if (!m) throw new Error('no route');
      const body = await readFile(join(dir, m[1]!));
      res.writeHead(200, { 'Content-Length': body.length }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { base: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/**
 * "Page loads" for a worker test file: `start()` serves a model folder over HTTP (beforeAll), `boot(backend)`
 * connects a new handler on that storage with the WASM backend and the model loaded, `close()` ends them
 * all and the server (afterAll).
 */
export function modelWorkers(dir: string): { start(): Promise<void>; boot(backend: KeyValueBackend, options?: HandlerOptions): Promise<WorkerClient>; close(): void } {
  let http: { base: string; close(): void } | null = null;
  const open: InProcessWorker[] = [];
  return {
    async start() {
      http = await serveFolder(dir);
    },
    async boot(backend, options = {}) {
      if (!http) throw new Error('modelWorkers: call start() first');
      const w = connectInProcess({ store: () => new TabtuneStore(backend), ...options });
      open.push(w);
      await w.client.request('init-backend', { preference: 'wasm' });
      await w.client.request('load-model', { location: { kind: 'url', url: `${http.base}/model/` } });
      return w.client;
    },
    close() {
      for (const w of open) w.close();
      http?.close();
    },
  };
}
