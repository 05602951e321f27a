// Storage persistence and quota, through navigator.storage where it exists. In a Web Worker only
// estimate() and persisted() exist (persist() is page-only); in Node there is no navigator.storage at all.
// Every function takes the StorageManager as an optional argument so tests (and odd hosts) can pass one.

export interface StorageManagerLike {
  persist?: () => Promise<boolean>;
  persisted?: () => Promise<boolean>;
  estimate?: () => Promise<{ usage?: number; quota?: number }>;
}

export interface PersistenceResult {
  /** False where the host has no persistence API (Node, a worker for persist(), old browsers). */
  supported: boolean;
  /** True when the origin's storage will not be evicted under storage pressure. */
  persisted: boolean;
}

export function defaultStorageManager(): StorageManagerLike | undefined {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator;
  return nav?.storage ?? undefined;
}

/**
 * Asks the browser to keep tabtune's data when it runs short of disk (navigator.storage.persist()).
 * Chrome grants it silently based on engagement, Firefox asks the user; call it from a user gesture in the
 * page. Already-persisted storage returns at once without prompting. Never throws.
 */
export async function requestPersistence(storage: StorageManagerLike | undefined = defaultStorageManager()): Promise<PersistenceResult> {
  if (!storage) return { supported: false, persisted: false };
  try {
    if (typeof storage.persisted === 'function' && (await storage.persisted())) return { supported: true, persisted: true };
    if (typeof storage.persist !== 'function') return { supported: false, persisted: false };
    return { supported: true, persisted: await storage.persist() };
  } catch {
    return { supported: true, persisted: false };
  }
}

/** Bytes used and the origin's quota, or null where the host cannot tell. Never throws. */
export async function storageEstimate(
  storage: StorageManagerLike | undefined = defaultStorageManager(),
): Promise<{ usage: number; quota: number } | null> {
  if (!storage || typeof storage.estimate !== 'function') return null;
  try {
    const e = await storage.estimate();
    if (typeof e?.usage !== 'number' || typeof e.quota !== 'number') return null;
    return { usage: e.usage, quota: e.quota };
  } catch {
    return null;
  }
}
