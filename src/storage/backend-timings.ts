// Backend timings (which backend trains a model faster on this device, measured once: src/model/backend-timing.ts),
// one JSON record per model and device: btiming/<hash of the key>. The record holds its full key, so a hash
// collision reads as "not measured" instead of another model's figures. Small and rebuilt on demand: not in
// the storage report, and garbage collection leaves them alone.
import type { BackendName } from '../model/backend';
import type { BackendTiming } from '../model/backend-timing';
import type { KeyValueBackend } from './backend';
import { crc32 } from './checksum';
import { storageKeys, toJson } from './keys';

export interface BackendTimingRecord {
  /** timingKey(model, device): the model's fingerprint and the device's. */
  key: string;
  /** ms since the epoch. */
  measuredAt: number;
  /** The model's name as the page shows it. */
  model: string;
  /** The fixed batch every backend was timed on. */
  batch: { windows: number; seq: number };
  budgetMs: number;
  rows: BackendTiming[];
  /** The faster backend by the measured rows (null: none was measured). */
  picked: BackendName | null;
}

/** The storage id of a key: its CRC-32 and length, in hex (ids never contain "/"). */
export function timingId(key: string): string {
  const bytes = new TextEncoder().encode(key);
  return `${crc32(bytes).toString(16).padStart(8, '0')}-${bytes.length.toString(16)}`;
}

export class BackendTimingsRepository {
  constructor(private readonly backend: KeyValueBackend) {}

  /** The stored timing for this key, or null (never measured, or unreadable). */
  async get(key: string): Promise<BackendTimingRecord | null> {
    const r = await this.backend.get<BackendTimingRecord>(storageKeys.backendTiming(timingId(key)));
    if (!r || typeof r !== 'object' || r.key !== key || !Array.isArray(r.rows) || typeof r.measuredAt !== 'number') return null;
    return r;
  }

  async put(record: BackendTimingRecord): Promise<void> {
    await this.backend.set(storageKeys.backendTiming(timingId(record.key)), toJson(record, 'backend timing'));
  }

  async delete(key: string): Promise<void> {
    await this.backend.del(storageKeys.backendTiming(timingId(key)));
  }
}
