// Checkpoint <-> bytes. A checkpoint blob is a plain safetensors file (readable by SafetensorsFile and by
// the Python `safetensors` package): every tensor stored as F32, and `__metadata__` holding
// { format: "tabtune-checkpoint", version: "1", step, state: <JSON text> }.
// The blob is produced piece by piece and cut into chunks without ever materialising the whole file, so a
// large checkpoint costs one chunk of extra memory while it is written.

import { SafetensorsError, SafetensorsFile } from '../io/safetensors';
import { StorageError } from './errors';

export interface CheckpointTensor {
  shape: number[];
  data: Float32Array;
}

/** What the trainer hands to checkpoints.save and gets back from checkpoints.load. */
export interface CheckpointPayload {
  step: number;
  /** Adapter weights and optimizer moments, by name. Float bits are stored exactly (NaN payloads, -0 included). */
  tensors: Record<string, CheckpointTensor>;
  /** Any JSON: schedule position, RNG state, data-order cursor... (JSON rules: no undefined/NaN/Infinity/BigInt). */
  state: unknown;
  /** extra: the measurements of the evaluation at this step (exact_match, probe_nll_delta_pct…), when there was one. */
  /** valStep: the step valLoss was measured at, when it is known. */
  metrics: { trainLoss?: number; valLoss?: number; valStep?: number; extra?: Record<string, number> };
}

export const CHECKPOINT_FORMAT = 'tabtune-checkpoint';
const CHECKPOINT_VERSION = '1';

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A blob described as an ordered list of byte pieces (views, not copies). */
export interface BlobPlan {
  parts: Uint8Array[];
  totalBytes: number;
}

/** Lays out a checkpoint as a safetensors file; validates everything before any byte is written. */
export function planCheckpointBlob(payload: CheckpointPayload): BlobPlan {
  if (!LITTLE_ENDIAN) throw new StorageError('INVALID_INPUT', 'checkpoints need a little-endian platform');
  if (!Number.isSafeInteger(payload.step) || payload.step < 0) {
    throw new StorageError('INVALID_INPUT', `checkpoint step must be a non-negative integer, got ${payload.step}`);
  }
  let stateText: string | undefined;
  try {
    stateText = JSON.stringify(payload.state ?? null);
  } catch (e) {
    throw new StorageError('INVALID_INPUT', `checkpoint state is not JSON-serialisable: ${(e as Error).message}`);
  }
  const header: Record<string, unknown> = {
    __metadata__: { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, step: String(payload.step), state: stateText ?? 'null' },
  };
  const dataParts: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(payload.tensors)) {
    if (name === '__metadata__') throw new StorageError('INVALID_INPUT', 'a tensor may not be named "__metadata__"');
    if (!t || !(t.data instanceof Float32Array)) throw new StorageError('INVALID_INPUT', `tensor "${name}": data must be a Float32Array`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new StorageError('INVALID_INPUT', `tensor "${name}": invalid shape ${JSON.stringify(t.shape)}`);
    }
    const el = t.shape.reduce((a, c) => a * c, 1);
    if (el !== t.data.length) {
      throw new StorageError('INVALID_INPUT', `tensor "${name}": shape ${JSON.stringify(t.shape)} has ${el} elements but data has ${t.data.length}`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + bytes.byteLength] };
    dataParts.push(bytes);
    off += bytes.byteLength;
  }
  const enc = new TextEncoder();
  let json = JSON.stringify(header);
  let hb = enc.encode(json);
  const pad = (8 - ((8 + hb.byteLength) % 8)) % 8; // data starts 8-byte aligned, like the reference writer
  if (pad) {
    json += ' '.repeat(pad);
    hb = enc.encode(json);
  }
  const prefix = new Uint8Array(8);
  const dv = new DataView(prefix.buffer);
  dv.setUint32(0, hb.byteLength % 2 ** 32, true);
  dv.setUint32(4, Math.floor(hb.byteLength / 2 ** 32), true);
  return { parts: [prefix, hb, ...dataParts], totalBytes: 8 + hb.byteLength + off };
}

/** Cuts the pieces into fresh (owning, copied) chunks of `chunkBytes`, the last one shorter. */
export function* chunkPlan(plan: BlobPlan, chunkBytes: number): Generator<Uint8Array> {
  if (!(chunkBytes >= 1)) throw new StorageError('INVALID_INPUT', `chunk size must be at least 1 byte, got ${chunkBytes}`);
  let remaining = plan.totalBytes;
  let partIndex = 0;
  let partOffset = 0;
  while (remaining > 0) {
    const chunk = new Uint8Array(Math.min(chunkBytes, remaining));
    let filled = 0;
    while (filled < chunk.byteLength) {
      const part = plan.parts[partIndex]!;
      const take = Math.min(part.byteLength - partOffset, chunk.byteLength - filled);
      chunk.set(part.subarray(partOffset, partOffset + take), filled);
      filled += take;
      partOffset += take;
      if (partOffset === part.byteLength) {
        partIndex++;
        partOffset = 0;
      }
    }
    remaining -= chunk.byteLength;
    yield chunk;
  }
}

/** Number of chunks a blob of `totalBytes` is cut into (0 for an empty blob). */
export function chunkCount(totalBytes: number, chunkBytes: number): number {
  return Math.ceil(totalBytes / chunkBytes);
}

/** Parses a verified checkpoint blob back into tensors and state. */
export function decodeCheckpointBlob(bytes: Uint8Array, what: string): Omit<CheckpointPayload, 'metrics'> {
  let file: SafetensorsFile;
  try {
    file = new SafetensorsFile(bytes, what);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new StorageError('CHECKPOINT_CORRUPT', e.message);
    throw e;
  }
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new StorageError('CHECKPOINT_CORRUPT', `${what} is not a tabtune checkpoint (metadata format ${JSON.stringify(meta.format)})`);
  }
  let state: unknown;
  try {
    state = JSON.parse(meta.state ?? 'null');
  } catch (e) {
    throw new StorageError('CHECKPOINT_CORRUPT', `${what}: training state is not valid JSON (${(e as Error).message})`);
  }
  const tensors: Record<string, CheckpointTensor> = {};
  for (const name of file.names()) {
    const entry = file.entry(name);
    tensors[name] = { shape: [...entry.shape], data: file.getFloat32(name) };
  }
  return { step: Number(meta.step), tensors, state };
}
