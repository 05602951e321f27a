// Assembles tabtune's WebAssembly kernels (src/kernels/*.wat) into TypeScript modules holding their
// bytes (src/kernels/*-wasm.ts), so the worker, Node tests and the CLI load them without fetching a file.
// Usage: npm run build:wasm            (writes the .ts files)
//        npm run build:wasm -- --check (exit 1 when a committed .ts file differs from its .wat)
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { assembleWat, wasmModuleSource } from '../src/kernels/assemble';

const DIR = 'src/kernels';

async function main(): Promise<void> {
  let check = false;
  try {
    check = Boolean(parseArgs({ options: { check: { type: 'boolean' } } }).values.check);
  } catch (e) {
    console.error(`build:wasm: ${(e as Error).message}\nusage: npm run build:wasm [-- --check]`);
    process.exit(2);
  }
  let stale = 0;
  for (const f of readdirSync(DIR).filter((n) => n.endsWith('.wat'))) {
    const base = f.replace(/\.wat$/, '');
    const bytes = await assembleWat(readFileSync(join(DIR, f), 'utf8'), f);
    const out = join(DIR, `${base}-wasm.ts`);
    const src = wasmModuleSource(bytes, f);
    let old = '';
    try {
      old = readFileSync(out, 'utf8');
    } catch {
      /* not written yet */
    }
    if (old === src) continue;
    if (check) {
      console.error(`${out} is not what ${f} assembles to: run npm run build:wasm`);
      stale++;
    } else {
      writeFileSync(out, src);
      console.log(`wrote ${out} (${bytes.length} bytes of WebAssembly)`);
    }
  }
  if (stale) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
