// tabtune storage: runs, metrics, datasets and checkpoints that survive a reload (IndexedDB in the browser).
// The filesystem backend for Node lives in ./fs-backend and is deliberately not re-exported here.

export { IdbBackend, MemoryBackend, DEFAULT_DB_NAME, DEFAULT_STORE_NAME, type JsonValue, type KeyValueBackend, type StoredValue } from './backend';
export { crc32 } from './checksum';
export { CHECKPOINT_FORMAT, type CheckpointPayload, type CheckpointTensor } from './codec';
export { CheckpointCorruptError, StorageError, StorageFullError, formatBytes, isQuotaError, type FreeableItem, type StorageErrorCode } from './errors';
export { requestPersistence, storageEstimate, type PersistenceResult, type StorageManagerLike } from './quota';
export * from './store';
