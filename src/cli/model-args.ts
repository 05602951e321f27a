// Shared CLI plumbing: the backend flag and opening a model from a folder or a URL.
import { directorySource } from '../node/fs-source';
import { urlSource, hubSource } from '../io/sources';
import type { ModelSource } from '../io/source';
import { setupBackend, type BackendName } from '../model/backend';
import { loadModel } from '../io/load-model';
import type { LanguageModel } from '../model/load';
import { loadPeftAdapter } from '../io/peft';
import { readTabtuneRecord } from '../io/export';
import { optNum, UsageError, type Args } from './args';

export async function initBackend(args: Args): Promise<BackendName> {
  const b = (args.backend ?? 'wasm') as string;
  if (b !== 'wasm' && b !== 'cpu') throw new UsageError(`--backend must be wasm or cpu in Node, got ${JSON.stringify(b)}`);
  const report = await setupBackend(b);
  return report.name;
}

export function sourceFor(location: string): ModelSource {
  if (/^https?:\/\//.test(location)) return urlSource(location, { cacheName: false });
  if (location.startsWith('hub:')) return hubSource(location.slice(4), { cacheName: false });
  return directorySource(location);
}

export async function openModel(args: Args, usage: string): Promise<LanguageModel> {
  const loc = args.model;
  if (typeof loc !== 'string' || !loc) throw new UsageError(`missing --model DIR_OR_URL\n${usage}`);
  await initBackend(args);
  return loadModel(sourceFor(loc));
}

/** --adapter DIR (a PEFT folder) attaches an adapter; --adapter-scale S sets its strength. With `required`, a missing --adapter is a usage error. */
export async function attachAdapter(m: LanguageModel, args: Args, usage: string, required = false) {
  const dir = args.adapter;
  if (typeof dir !== 'string') {
    if (required) throw new UsageError(`missing --adapter DIR\n${usage}`);
    return null;
  }
  const src = directorySource(dir);
  const adapter = await loadPeftAdapter(m.lm, src, { onWarning: (w) => process.stderr.write(`warning: ${w}\n`) });
  adapter.strength = optNum(args, 'adapter-scale', 1)!;
  // A tabtune-trained adapter records the token its replies end with (e.g. BOS for stories260K).
  return Object.assign(adapter, { stop: await readTabtuneRecord(src) });
}
