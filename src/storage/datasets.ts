// Stored datasets, so a reload can resume a run without the file: chunks (dchunk/<id>/<index>) first, the
// record (dataset/<id>) last, which commits them. The same content (by fingerprint) is stored once.

import { bestEffort } from '../util/async';
import type { JsonValue } from './backend';
import { crc32 } from './checksum';
import type { BlobPlan } from './codec';
import { idTime, type ChunkInfo, type GcResult, type StoreContext } from './context';
import { StorageError, isQuotaError } from './errors';
import { asBytes, checkName, keyId, storageKeys } from './keys';

export interface DatasetRecord {
  id: string;
  name: string;
  fingerprint: string;
  kind: 'text' | 'bytes';
  mimeType: string | null;
  byteLength: number;
  maxChunkBytes: number;
  chunks: ChunkInfo[];
  createdAt: number;
}

export interface SaveDatasetInput {
  name: string;
  /** Text is stored UTF-8 encoded and given back as text. */
  content: string | Uint8Array;
  /** Defaults to "sha256:<hex of the bytes>". */
  fingerprint?: string;
  mimeType?: string;
}

export interface LoadedDataset {
  info: DatasetRecord;
  bytes: Uint8Array;
  /** The text for a text dataset, null for bytes. */
  text: string | null;
}

/** "sha256:<hex>" of the bytes (WebCrypto: page, worker and Node 20). */
export async function fingerprintBytes(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return 'sha256:' + [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class DatasetsRepository {
  constructor(private readonly ctx: StoreContext) {}

  /**
   * Stores a dataset so a reload does not need the file again. With the same fingerprint already stored, the
   * existing record is returned and nothing is written.
   */
  async save(input: SaveDatasetInput): Promise<DatasetRecord> {
    const { backend } = this.ctx;
    const kind = typeof input.content === 'string' ? 'text' : 'bytes';
    const bytes = typeof input.content === 'string' ? new TextEncoder().encode(input.content) : input.content;
    if (!(bytes instanceof Uint8Array)) throw new StorageError('INVALID_INPUT', 'dataset content must be a string or a Uint8Array');
    const fingerprint = input.fingerprint ?? (await fingerprintBytes(bytes));
    const existing = await this.findByFingerprint(fingerprint);
    if (existing) return existing;
    const id = this.ctx.newId();
    const name = checkName(input.name);
    const plan: BlobPlan = { parts: [bytes], totalBytes: bytes.byteLength };
    let committed = false;
    this.ctx.inflight.add(id);
    try {
      const chunks = await this.ctx.writeChunks(plan, (i) => storageKeys.datasetChunk(id, i));
      const rec: DatasetRecord = {
        id,
        name,
        fingerprint,
        kind,
        mimeType: input.mimeType ?? null,
        byteLength: bytes.byteLength,
        maxChunkBytes: this.ctx.maxChunkBytes,
        chunks,
        createdAt: this.ctx.now(),
      };
      await backend.set(storageKeys.dataset(id), rec as unknown as JsonValue);
      committed = true;
      return rec;
    } catch (e) {
      if (!committed) await bestEffort(async () => backend.delMany(await backend.keys(storageKeys.datasetChunkPrefix(id))));
      if (isQuotaError(e)) throw await this.ctx.storageFullError(`dataset "${name}"`, bytes.byteLength, null, e);
      throw e;
    } finally {
      this.ctx.inflight.delete(id);
    }
  }

  async get(datasetId: string): Promise<DatasetRecord | null> {
    return ((await this.ctx.backend.get(storageKeys.dataset(datasetId))) as unknown as DatasetRecord | undefined) ?? null;
  }

  /** Stored datasets, newest first. */
  async list(): Promise<DatasetRecord[]> {
    const { backend } = this.ctx;
    const ks = await backend.keys(storageKeys.datasetPrefix);
    const recs = (await backend.getMany(ks)).filter(Boolean) as unknown as DatasetRecord[];
    return recs.sort((a, b) => b.createdAt - a.createdAt);
  }

  async findByFingerprint(fingerprint: string): Promise<DatasetRecord | null> {
    return (await this.list()).find((d) => d.fingerprint === fingerprint) ?? null;
  }

  /** Reads and verifies a dataset. */
  async load(datasetId: string): Promise<LoadedDataset> {
    const info = await this.get(datasetId);
    if (!info) throw new StorageError('NOT_FOUND', `no stored dataset ${datasetId}`);
    const out = new Uint8Array(info.byteLength);
    let off = 0;
    const n = info.chunks.length;
    for (let i = 0; i < n; i++) {
      const bytes = asBytes(await this.ctx.backend.get(storageKeys.datasetChunk(datasetId, i)));
      const expect = info.chunks[i]!;
      const bad = (why: string) =>
        new StorageError('DATASET_CORRUPT', `stored dataset "${info.name}" is damaged: chunk ${i + 1} of ${n} ${why}`, 'Delete it and add the file again.');
      if (!bytes) throw bad('is missing');
      if (bytes.byteLength !== expect.bytes || off + bytes.byteLength > out.byteLength) throw bad(`is ${bytes.byteLength} bytes, expected ${expect.bytes}`);
      if (crc32(bytes) !== expect.crc32) throw bad('fails its CRC-32 check');
      out.set(bytes, off);
      off += bytes.byteLength;
    }
    if (off !== info.byteLength) throw new StorageError('DATASET_CORRUPT', `stored dataset "${info.name}" is damaged: ${off} of ${info.byteLength} bytes present`);
    return { info, bytes: out, text: info.kind === 'text' ? new TextDecoder().decode(out) : null };
  }

  async delete(datasetId: string): Promise<boolean> {
    const { backend } = this.ctx;
    const rec = await this.get(datasetId);
    await backend.del(storageKeys.dataset(datasetId));
    await backend.delMany(await backend.keys(storageKeys.datasetChunkPrefix(datasetId)));
    return !!rec;
  }

  /** Removes dataset chunks without a record (a save cut short), except this store's writes in flight and orphans younger than `graceMs`. */
  async collectGarbage(graceMs: number): Promise<GcResult> {
    const { backend } = this.ctx;
    const datasetIds = new Set((await backend.keys(storageKeys.datasetPrefix)).map(keyId));
    const orphans = (await backend.keys(storageKeys.allDatasetChunksPrefix)).filter((k) => {
      const id = keyId(k);
      return !datasetIds.has(id) && !this.ctx.inflight.has(id) && this.ctx.now() - idTime(id) >= graceMs;
    });
    if (orphans.length) await backend.delMany(orphans);
    return { removedKeys: orphans.length };
  }
}
