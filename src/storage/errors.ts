// Typed storage errors. Every error carries a stable `code` the UI can switch on and, where the user can do
// something about it, a `hint` sentence to show next to the message.

export type StorageErrorCode =
  /** The browser (or disk) refused a write: out of quota / out of space. See {@link StorageFullError}. */
  | 'QUOTA_EXCEEDED'
  /** A stored checkpoint's bytes are missing or fail their checksum. */
  | 'CHECKPOINT_CORRUPT'
  /** A stored dataset's bytes are missing or fail their checksum. */
  | 'DATASET_CORRUPT'
  /** No run / checkpoint / dataset with that id. */
  | 'NOT_FOUND'
  /** The caller passed something that cannot be stored (bad shape, non-JSON state, bad id...). */
  | 'INVALID_INPUT'
  /** Chunks written for a checkpoint disappeared before its manifest was committed (another tab collected them). */
  | 'WRITE_CONFLICT';

export class StorageError extends Error {
  override name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Something the user could delete to free space, as listed in a {@link StorageFullError}. */
export interface FreeableItem {
  kind: 'checkpoint' | 'run' | 'dataset';
  /** Human label, e.g. `checkpoint step 400 of run "tiny-stories"`. */
  label: string;
  bytes: number;
  runId?: string;
  step?: number;
  datasetId?: string;
}

/** A write failed because storage is full. Earlier data is intact; the partial write has been removed. */
export class StorageFullError extends StorageError {
  override name = 'StorageFullError';
  override readonly code = 'QUOTA_EXCEEDED' as const;
  constructor(
    message: string,
    hint: string,
    /** Bytes the failed operation was writing. */
    readonly bytesRequested: number,
    /** Largest unpinned checkpoints, runs and datasets, largest first. */
    readonly suggestions: FreeableItem[],
    options?: { cause?: unknown },
  ) {
    super('QUOTA_EXCEEDED', message, hint, options);
  }
}

/** A checkpoint failed verification on load. */
export class CheckpointCorruptError extends StorageError {
  override name = 'CheckpointCorruptError';
  constructor(
    readonly runId: string,
    readonly step: number,
    message: string,
    readonly chunkIndex?: number,
  ) {
    super(
      'CHECKPOINT_CORRUPT',
      message,
      'Delete this checkpoint and resume from an earlier one (checkpoints.loadLatest falls back automatically).',
    );
  }
}

/**
 * True when an error means "out of space": IndexedDB's DOMException QuotaExceededError (also surfaced as a
 * transaction abort), Firefox's NS_ERROR_DOM_QUOTA_REACHED, legacy code 22, anything naming "quota", and
 * Node's ENOSPC / EDQUOT for the filesystem backend.
 */
export function isQuotaError(e: unknown): boolean {
  if (e instanceof StorageFullError) return true;
  if (!e || typeof e !== 'object') return false;
  const err = e as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
  const name = typeof err.name === 'string' ? err.name : '';
  const message = typeof err.message === 'string' ? err.message : '';
  if (name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED') return true;
  if (err.code === 22 || err.code === 1014 || err.code === 'ENOSPC' || err.code === 'EDQUOT') return true;
  if (/quota/i.test(name) || /quota|no space left|disk (is )?full/i.test(message)) return true;
  if (err.cause && err.cause !== e) return isQuotaError(err.cause);
  return false;
}

/** "12.3 MB" (decimal units, like the browsers' storage settings pages). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return `${n} bytes`;
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do {
    v /= 1000;
    u++;
  } while (v >= 1000 && u < units.length - 1);
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}
