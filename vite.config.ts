// Vite config for the tabtune page. Three things here are not stock:
//  1. COOP/COEP headers on the dev and preview servers, so the page is cross-origin isolated and the
//     threaded WASM backend can use SharedArrayBuffer.
//  2. A fix that keeps tfjs-backend-wasm's threaded build working after minification (see
//     keepWasmThreadedFactorySource below).
//  3. A /models/ route: bundled models from models/<name>/ and, when it has been prepared, the
//     reference checkpoint from .cache/reference/stories260K-hf/ (served, never copied into dist/).
import { createReadStream, existsSync, readdirSync, statSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const root = fileURLToPath(new URL('.', import.meta.url));

/** Headers that make the page cross-origin isolated (crossOriginIsolated === true). */
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/**
 * tfjs-backend-wasm starts its pthread workers from a Blob built from
 * `wasmFactoryThreadedSimd.toString()`: the source text of the Emscripten factory function, cut out
 * of the closure it was written in. A minifier is entitled to rewrite that function using facts
 * about its closure; oxc (Vite 8's minifier) turns `typeof _scriptDir !== "undefined"` into
 * `e !== void 0`, because `_scriptDir` (now `e`) is declared in the enclosing scope. Inside the
 * Blob there is no enclosing scope, so every pthread worker dies with "e is not defined" and the
 * backend never finishes initialising.
 *
 * Rather than switching minification off for the whole chunk, give the factory a `toString` that
 * returns its original, unminified source (the IIFE exactly as Emscripten emitted it). The blob
 * then evaluates the code Emscripten intended, whatever the minifier did to the copy the page runs.
 * If a tfjs upgrade changes the file's layout, the build fails here instead of shipping a broken
 * backend.
 */
function keepWasmThreadedFactorySource(): Plugin {
  const target = /[\\/]@tensorflow[\\/]tfjs-backend-wasm[\\/]wasm-out[\\/]tfjs-backend-wasm-threaded-simd\.js$/;
  const head = 'var WasmBackendModuleThreadedSimd = ';
  const tail = '\n})();\n';
  return {
    name: 'tabtune:keep-wasm-threaded-factory-source',
    enforce: 'pre',
    transform(code, id) {
      if (!target.test(id.split('?')[0])) return null;
      const start = code.indexOf(head);
      const end = start < 0 ? -1 : code.indexOf(tail, start);
      if (start < 0 || end < 0) {
        this.error(`tfjs-backend-wasm's threaded factory no longer has the expected layout (${id}); update keepWasmThreadedFactorySource in vite.config.ts`);
      }
      const cut = end + tail.length;
      const iife = code.slice(start + head.length, cut - 1);
      const patch = `WasmBackendModuleThreadedSimd.toString = function () { return ${JSON.stringify(iife)}; };\n`;
      return { code: code.slice(0, cut) + patch + code.slice(cut), map: null };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Models

interface ModelDir {
  name: string;
  dir: string;
  origin: 'bundled' | 'reference';
}

const bundledRoot = join(root, 'models');
const referenceName = 'stories260K';
const referenceDir = join(root, '.cache', 'reference', 'stories260K-hf');
const safeName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function isModelDir(dir: string): boolean {
  return existsSync(join(dir, 'config.json'));
}

function bundledModels(): ModelDir[] {
  if (!existsSync(bundledRoot)) return [];
  return readdirSync(bundledRoot, { withFileTypes: true })
    .filter((d) => d.isDirectory() && safeName.test(d.name) && isModelDir(join(bundledRoot, d.name)))
    .map((d) => ({ name: d.name, dir: join(bundledRoot, d.name), origin: 'bundled' as const }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Bundled models first, then the reference checkpoint when it has been converted. */
function availableModels(): ModelDir[] {
  const list = bundledModels();
  if (isModelDir(referenceDir) && !list.some((m) => m.name === referenceName)) {
    list.push({ name: referenceName, dir: referenceDir, origin: 'reference' });
  }
  return list;
}

function modelIndex(models: ModelDir[]) {
  return {
    models: models.map((m) => ({ name: m.name, url: `/models/${m.name}/`, origin: m.origin })),
    hint: models.length
      ? undefined
      : 'nothing is served under /models/. Put a Hugging Face model folder (config.json, tokenizer.json, model.safetensors) under models/<name>/, or place the shared folder beside the repository (../shared/reference-models) and run `npm start` again to convert the stories260K reference model. You can also load a model from a URL below.',
  };
}

const contentTypes: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.model': 'application/octet-stream',
};

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.end(body);
}

function modelsMiddleware(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith('/models/')) return next();
  if (req.method !== 'GET' && req.method !== 'HEAD') return next();
  const models = availableModels();
  if (url.pathname === '/models/index.json' || url.pathname === '/models/') {
    return send(res, 200, contentTypes['.json'], JSON.stringify(modelIndex(models), null, 2));
  }
  const [, , name, ...rest] = url.pathname.split('/');
  const model = models.find((m) => m.name === decodeURIComponent(name));
  const relPath = rest.map(decodeURIComponent).join('/');
  if (!model || !relPath) return send(res, 404, 'text/plain; charset=utf-8', `No such model file: ${url.pathname}\n`);
  const file = resolve(model.dir, relPath);
  if (!file.startsWith(model.dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
    return send(res, 404, 'text/plain; charset=utf-8', `No such model file: ${url.pathname}\n`);
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', contentTypes[extname(file)] ?? 'application/octet-stream');
  res.setHeader('Content-Length', String(statSync(file).size));
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file).pipe(res);
}

/**
 * Serves /models/ on the dev and preview servers. A production build copies only the bundled
 * models (the project's own) into dist/models/ with an index of them; the reference checkpoint
 * came from outside the project and is never copied.
 */
function modelsRoute(): Plugin[] {
  let outDir = join(root, 'dist');
  return [
    {
      name: 'tabtune:models-route',
      configureServer(server) {
        server.middlewares.use(modelsMiddleware);
      },
      configurePreviewServer(server) {
        server.middlewares.use(modelsMiddleware);
      },
    },
    {
      name: 'tabtune:models-copy',
      // Only a real `vite build` (vitest, for one, resolves a dummy outDir and closes bundles too).
      apply: (_config, env) => env.command === 'build' && !env.isSsrBuild && env.mode !== 'test',
      configResolved(config) {
        outDir = resolve(config.root, config.build.outDir);
      },
      closeBundle() {
        const bundled = bundledModels();
        const target = join(outDir, 'models');
        mkdirSync(target, { recursive: true });
        for (const m of bundled) cpSync(m.dir, join(target, m.name), { recursive: true });
        writeFileSync(join(target, 'index.json'), JSON.stringify(modelIndex(bundled), null, 2));
      },
    },
  ];
}

export default defineConfig({
  plugins: [react(), keepWasmThreadedFactorySource(), modelsRoute()],
  worker: {
    format: 'es',
    plugins: () => [keepWasmThreadedFactorySource()],
  },
  // Crawl the worker too, so the dev server pre-bundles TF.js up front instead of discovering it
  // when the worker starts (which reloads the page on a first run).
  optimizeDeps: { entries: ['index.html', 'src/worker/worker.ts'] },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 2048,
  },
});
