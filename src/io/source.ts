// Where a model's files come from. Every loader reads through this one interface, so a bundled
// folder, files a user dropped, a URL and a Hugging Face Hub id are served by the same code.

export type ProgressFn = (p: { file: string; loaded: number; total: number | null }) => void;

export interface ModelSource {
  /** Shown to the user: "models/tabtune-base", "3 dropped files", "https://…", "hub:org/name". */
  readonly label: string;
  /** The file's bytes, or null when the source has no such file (a 404, a file not dropped). */
  read(path: string, onProgress?: ProgressFn): Promise<Uint8Array | null>;
}

export class SourceError extends Error {
  override name = 'SourceError';
}
