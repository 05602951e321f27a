#!/usr/bin/env node
// A second origin for the URL-loading tests (the page runs on another port, so every request is
// cross-origin and needs CORS plus Cross-Origin-Resource-Policy, as a real model host would send).
//   /health                      200
//   /models/<name>/<file>        a bundled model folder, models/<name>/ (tabtune-tiny, …), or
//                                stories260K: the converted reference model from .cache/ when ../shared
//                                was there to make it (served, never copied), or smol-shaped: the
//                                SmolLM2-135M-shaped folder of `npm run model:smol-shaped` when it exists
//   /no-cors/<name>/<file>       the same files without CORS headers (the page must explain the failure)
//   /unsupported/<file>          a folder whose config.json names an architecture tabtune lacks
//                                (with a tiny weights file and tabtune-tiny's tokenizer.json)
//   anything else                404
import { createServer } from 'node:http';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bundledRoot = join(root, 'models');
/** The folders served under /models/<name>/: every bundled model, and the converted reference model. */
const folders = new Map(
  readdirSync(bundledRoot, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(bundledRoot, d.name, 'config.json')))
    .map((d) => [d.name, join(bundledRoot, d.name)]),
);
folders.set('stories260K', join(root, '.cache', 'reference', 'stories260K-hf'));
// SmolLM2-135M's shapes with random weights, when `npm run model:smol-shaped` wrote it (served, never copied).
folders.set('smol-shaped', join(root, '.cache', 'models', 'smol-shaped'));
const tokenizerDir = join(bundledRoot, 'tabtune-tiny');
const port = Number(process.argv[2] ?? 4318);

/** A valid one-tensor safetensors file, so loading gets as far as reading config.json's model_type. */
function tinySafetensors() {
  const header = Buffer.from(JSON.stringify({ 'model.embed_tokens.weight': { dtype: 'F32', shape: [1, 1], data_offsets: [0, 4] } }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([len, header, Buffer.alloc(4)]);
}

const unsupported = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'mamba', architectures: ['MambaForCausalLM'], hidden_size: 1, vocab_size: 1 })),
  'model.safetensors': tinySafetensors(),
};

function fileFrom(dir, rel) {
  const file = resolve(dir, rel);
  if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) return null;
  return readFileSync(file);
}

createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const cors = !path.startsWith('/no-cors/');
  if (cors) {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
  }
  res.setHeader('Cache-Control', 'no-store');
  let body = null;
  let m;
  if (path === '/health') body = Buffer.from('ok');
  else if ((m = /^\/(?:models|no-cors)\/([^/]+)\/(.+)$/.exec(path)) && folders.has(m[1])) body = fileFrom(folders.get(m[1]), decodeURIComponent(m[2]));
  else if ((m = /^\/unsupported\/(.+)$/.exec(path))) body = m[1] === 'tokenizer.json' ? fileFrom(tokenizerDir, m[1]) : (unsupported[m[1]] ?? null);
  if (!body) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
    return;
  }
  res.writeHead(200, { 'Content-Type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}).listen(port, 'localhost', () => console.log(`[fixture-server] http://localhost:${port}/`));
