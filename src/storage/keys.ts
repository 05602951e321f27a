// The key layout of tabtune's storage, and the checks on what goes into it. Every repository (runs.ts,
// checkpoints.ts, datasets.ts) writes through the one KeyValueBackend with these keys.
//
// Key layout (one object store / one folder; ids never contain "/"; numbers are zero-padded so keys sort).
// Browsers already hold data in this layout: changing it loses their runs.
//   run/<runId>                                  RunRecord (JSON)
//   metrics/<runId>/<page:8>                     JsonValue[]: metric points [page*P, page*P + P)
//   ckpt/<runId>/<step:12>                       CheckpointManifest (JSON): the commit point of a checkpoint
//   chunk/<runId>/<step:12>/<writeId>/<index:6>  Uint8Array: bytes of the checkpoint blob (safetensors)
//   dataset/<datasetId>                          DatasetRecord (JSON): the commit point of a dataset
//   dchunk/<datasetId>/<index:6>                 Uint8Array: the dataset's bytes
//   pref/<runId>/<preferenceId>                  PreferencePair (JSON): a preference collected in the compare view
//   btiming/<timingId>                           BackendTimingRecord (JSON): backend timings of a model on this device

import type { JsonValue } from './backend';
import { StorageError } from './errors';

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export const storageKeys = {
  run: (runId: string) => `run/${runId}`,
  runPrefix: 'run/',
  metricsPrefix: (runId: string) => `metrics/${runId}/`,
  metricsPage: (runId: string, page: number) => `metrics/${runId}/${pad(page, 8)}`,
  manifestPrefix: (runId: string) => `ckpt/${runId}/`,
  manifest: (runId: string, step: number) => `ckpt/${runId}/${pad(step, 12)}`,
  allManifestsPrefix: 'ckpt/',
  chunkRunPrefix: (runId: string) => `chunk/${runId}/`,
  chunkWritePrefix: (runId: string, step: number, writeId: string) => `chunk/${runId}/${pad(step, 12)}/${writeId}/`,
  chunk: (runId: string, step: number, writeId: string, index: number) => `chunk/${runId}/${pad(step, 12)}/${writeId}/${pad(index, 6)}`,
  allChunksPrefix: 'chunk/',
  dataset: (datasetId: string) => `dataset/${datasetId}`,
  datasetPrefix: 'dataset/',
  datasetChunkPrefix: (datasetId: string) => `dchunk/${datasetId}/`,
  datasetChunk: (datasetId: string, index: number) => `dchunk/${datasetId}/${pad(index, 6)}`,
  allDatasetChunksPrefix: 'dchunk/',
  allMetricsPrefix: 'metrics/',
  preference: (runId: string, id: string) => `pref/${runId}/${id}`,
  preferencePrefix: (runId: string) => `pref/${runId}/`,
  allPreferencesPrefix: 'pref/',
  backendTiming: (timingId: string) => `btiming/${timingId}`,
};

/** The id segment of a key (`run/<id>`, `ckpt/<id>/…`, `dchunk/<id>/…`). */
export function keyId(key: string): string {
  return key.split('/')[1]!;
}

const ID_RE = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/;

export function checkId(id: string, what: string): string {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new StorageError('INVALID_INPUT', `${what} id ${JSON.stringify(id)} is invalid (letters, digits, "_", "-", "."; at most 100 characters)`);
  }
  return id;
}

export function checkStep(step: number): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new StorageError('INVALID_INPUT', `checkpoint step must be a non-negative integer, got ${step}`);
  return step;
}

export function checkName(name: string): string {
  if (typeof name !== 'string' || !name.trim()) throw new StorageError('INVALID_INPUT', 'a name must be a non-empty string');
  return name.trim();
}

/** Round-trips through JSON so every backend stores the same thing (and non-JSON input fails early). */
export function toJson(value: unknown, what: string): JsonValue {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new StorageError('INVALID_INPUT', `${what} is not JSON-serialisable: ${(e as Error).message}`);
  }
  return text === undefined ? null : (JSON.parse(text) as JsonValue);
}

export function finiteOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function asBytes(v: unknown): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return null;
}
