#!/usr/bin/env node
// A second origin for the URL-loading tests (the page runs on another port, so every request is
// cross-origin and needs CORS plus Cross-Origin-Resource-Policy, as a real model host would send).
//   /health                      200
//   /models/stories260K/<file>   the converted reference model from .cache/ (served, never copied)
//   /no-cors/stories260K/<file>  the same files without CORS headers (the page must explain the failure)
//   /unsupported/<file>          a folder whose config.json names an architecture tabtune lacks
//                                (with a tiny weights file and the reference tokenizer.json)
//   anything else                404
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const reference = join(root, '.cache', 'reference', 'stories260K-hf');
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
  else if ((m = /^\/(?:models|no-cors)\/stories260K\/(.+)$/.exec(path))) body = fileFrom(reference, decodeURIComponent(m[1]));
  else if ((m = /^\/unsupported\/(.+)$/.exec(path))) body = m[1] === 'tokenizer.json' ? fileFrom(reference, m[1]) : (unsupported[m[1]] ?? null);
  if (!body) {
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
    return;
  }
  res.writeHead(200, { 'Content-Type': path.endsWith('.json') ? 'application/json' : 'application/octet-stream', 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}).listen(port, 'localhost', () => console.log(`[fixture-server] http://localhost:${port}/`));
