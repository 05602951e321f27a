// tabtune storage: runs, metrics, datasets and checkpoints that survive a reload (IndexedDB in the browser).
// The filesystem backend for Node lives in the Node-only room, src/node/fs-backend.ts.

export { IdbBackend, MemoryBackend, DEFAULT_DB_NAME, DEFAULT_STORE_NAME, type JsonValue, type KeyValueBackend, type StoredValue } from './backend';
export { crc32 } from './checksum';
export { CHECKPOINT_FORMAT, type CheckpointPayload, type CheckpointTensor } from './codec';
export { CheckpointCorruptError, StorageError, StorageFullError, formatBytes, isQuotaError, type FreeableItem, type StorageErrorCode } from './errors';
export { requestPersistence, storageEstimate, type PersistenceResult, type StorageManagerLike } from './quota';
export { storageKeys } from './keys';
export {
  DEFAULT_KEEP_LAST,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_METRICS_PAGE_SIZE,
  DEFAULT_ORPHAN_GRACE_MS,
  DEFAULT_STALE_AFTER_MS,
  type ChunkInfo,
  type GcResult,
  type TabtuneStoreOptions,
} from './context';
export { RUN_STATUSES, runLabel, type CreateRunInput, type RunDatasetRef, type RunPatch, type RunQuality, type RunRecord, type RunStatus, type RunsRepository } from './runs';
export {
  type CheckpointInfo,
  type CheckpointManifest,
  type CheckpointsRepository,
  type LoadedCheckpoint,
  type SaveCheckpointOptions,
  type SaveCheckpointResult,
} from './checkpoints';
export { fingerprintBytes, type DatasetRecord, type DatasetsRepository, type LoadedDataset, type SaveDatasetInput } from './datasets';
export {
  PREFERENCE_SOURCES,
  preferenceJsonLine,
  preferencesToJsonl,
  type NewPreference,
  type PreferencePair,
  type PreferencePatch,
  type PreferencePrompt,
  type PreferenceSource,
  type PreferencesRepository,
} from './preferences';
export { TabtuneStore, type StorageReport } from './store';
export { BackendTimingsRepository, timingId, type BackendTimingRecord } from './backend-timings';
