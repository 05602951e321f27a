// `npm run bench -- --browser`: the same measurements in headless Chromium through Playwright. A Vite dev
// server (the project's vite.config.ts: COOP/COEP headers, so the page is cross-origin isolated and WASM
// can use threads) serves bench/browser/index.html and the models under /bench-models/<i>/; the page runs
// bench/measure.ts in a worker, once on WASM (2 threads, or --threads when more) and once on WebGPU
// (in this headless Chromium a software adapter, SwiftShader, unless a GPU is there: labelled, few steps).
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as netServer } from 'node:net';
import { resolve, sep } from 'node:path';
import { chromium } from '@playwright/test';
import { createServer, type Plugin } from 'vite';
import type { BenchArgs } from '../args';
import { parseMeasurement, type Measurement } from '../records';
import type { BrowserJob } from './protocol';

const CHROMIUM = process.env.TABTUNE_CHROMIUM || '/usr/bin/chromium';

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = netServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/** Serves model folders at /bench-models/<index>/<file> (same-origin resources, fine under COEP). */
function benchModels(dirs: string[]): Plugin {
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const m = /^\/bench-models\/(\d+)\/(.+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
    if (!m) return next();
    const dir = dirs[Number(m[1])];
    const file = dir ? resolve(dir, decodeURIComponent(m[2]!)) : '';
    if (!dir || !file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      return void res.end('not found');
    }
    res.statusCode = 200;
    res.setHeader('Content-Type', file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    createReadStream(file).pipe(res);
  };
  return { name: 'tabtune:bench-models', configureServer: (server) => void server.middlewares.use(handle) };
}

export interface BrowserResult {
  measurements: Measurement[];
  notes: string[];
}

export async function runBrowser(models: { name: string; dir: string }[], args: BenchArgs, log: (s: string) => void, emit: (m: Measurement) => void): Promise<BrowserResult> {
  const notes: string[] = [];
  const measurements: Measurement[] = [];
  const port = await freePort();
  const root = resolve(new URL('../..', import.meta.url).pathname);
  const server = await createServer({
    configFile: resolve(root, 'vite.config.ts'),
    root,
    logLevel: 'warn',
    clearScreen: false,
    server: { port, strictPort: true, host: '127.0.0.1', hmr: false },
    optimizeDeps: { entries: ['bench/browser/index.html', 'bench/browser/worker.ts'] },
    plugins: [benchModels(models.map((m) => m.dir))],
  });
  await server.listen();
  const origin = `http://127.0.0.1:${port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--enable-unsafe-webgpu', '--no-sandbox'] });
  try {
    const jobs: BrowserJob[] = [
      { backend: 'wasm', threads: Math.max(2, args.threads), models: [], steps: args.steps, leakSteps: args.leakSteps, quick: args.quick, gpuFused: true },
      // On a software adapter (SwiftShader, what headless Chromium offers without a GPU) the worker measures
      // the first model only, with few steps and tokens.
      { backend: 'webgpu', threads: 1, models: [], steps: args.steps, leakSteps: args.leakSteps, quick: args.quick, gpuFused: true },
    ];
    // --gpu-unfused: WebGPU again on TF.js's own ops, to measure what the fused kernels buy.
    if (args.gpuUnfused) jobs.push({ ...jobs[1]!, gpuFused: false });
    for (const job of jobs) {
      job.models = models.map((m, i) => ({ name: m.name, url: `${origin}/bench-models/${i}/` }));
      const page = await browser.newPage();
      page.on('console', (msg) => {
        if (msg.type() === 'log') log(`  page: ${msg.text()}`);
      });
      page.on('pageerror', (e) => log(`  page error: ${e.message}`));
      await page.goto(`${origin}/bench/browser/index.html`);
      await page.waitForFunction(() => 'tabtuneBench' in globalThis, undefined, { timeout: 120_000 });
      log(`[browser ${job.backend}] cross-origin isolated: ${String(await page.evaluate(() => globalThis.crossOriginIsolated))}`);
      try {
        const r = await page.evaluate((j) => (globalThis as unknown as { tabtuneBench: { run(j: unknown): Promise<{ measurements: unknown[]; backend: Record<string, unknown> }> } }).tabtuneBench.run(j), job);
        for (const raw of r.measurements) {
          const m = parseMeasurement(JSON.stringify(raw));
          measurements.push(m);
          emit(m);
        }
        const b = r.backend;
        const reasons = (b.reasons as string[]).filter((x) => !x.startsWith('WebGPU: not'));
        notes.push(`browser ${job.backend}${job.gpuFused ? '' : ' (TF.js ops)'}: ran on ${String(b.name)}${b.threads ? ` with ${String(b.threads)} thread(s)` : ''}${b.adapter ? `, adapter ${String(b.adapter)}${b.software ? ' (software)' : ''}` : ''}; cross-origin isolated ${String(b.crossOriginIsolated)}${reasons.length ? `; ${reasons.join('; ')}` : ''}`);
      } catch (e) {
        notes.push(`browser ${job.backend}${job.gpuFused ? '' : ' (TF.js ops)'}: failed: ${(e as Error).message.split('\n')[0]}`);
      } finally {
        await page.close();
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  return { measurements, notes };
}
