// The shapes shared by the dataset pipeline: normalized records, issues, formats and progress.
// Plain TypeScript, no DOM: runs in a Web Worker and in Node.

/** Roles after normalization. ShareGPT human/gpt, OpenAI developer/function, LLaMA-Factory function_call/observation map onto these. */
export type Role = 'system' | 'user' | 'assistant' | 'tool';

export interface Message {
  role: Role;
  content: string;
  /** false: never trained, even when role is assistant (OpenAI's `weight: 0`). Absent = default. */
  train?: boolean;
}

/** Every record, whatever its file format, becomes one of these. `line` = 1-based physical line where it starts. */
export interface ChatRecord {
  kind: 'chat';
  messages: Message[];
  line: number;
}

export interface PairRecord {
  kind: 'pair';
  prompt: string;
  completion: string;
  line: number;
}

/** A preference (DPO) example: the context turns, then the preferred and the rejected final assistant reply. */
export interface PreferenceRecord {
  kind: 'preference';
  prompt: Message[];
  chosen: string;
  rejected: string;
  line: number;
}

/** Plain text (domain adaptation): one paragraph of document `doc`; the loss is on every token (src/data/text.ts packs them). */
export interface TextRecord {
  kind: 'text';
  text: string;
  line: number;
  doc: number;
}

export type DataRecord = ChatRecord | PairRecord | PreferenceRecord | TextRecord;

/** How the bytes are laid out. */
export type Container = 'jsonl' | 'json' | 'csv' | 'tsv' | 'text';

/** What each record looks like. `table` = CSV/TSV rows mapped through a column mapping. */
export type Schema = 'prompt-completion' | 'input-output' | 'alpaca' | 'openai-chat' | 'sharegpt' | 'preference' | 'table';

export const CONTAINERS: readonly Container[] = ['jsonl', 'json', 'csv', 'tsv', 'text'];
export const SCHEMAS: readonly Schema[] = ['prompt-completion', 'input-output', 'alpaca', 'openai-chat', 'sharegpt', 'preference', 'table'];

export type Severity = 'error' | 'warning';

export type IssueCode =
  | 'empty-file'
  | 'unreadable'
  | 'invalid-utf8'
  | 'invalid-json'
  | 'trailing-comma'
  | 'not-object'
  | 'unknown-shape'
  | 'mixed-shape'
  | 'missing-field'
  | 'empty-field'
  | 'wrong-type'
  | 'unknown-role'
  | 'no-user'
  | 'no-assistant'
  | 'ends-on-user'
  | 'unsupported-content'
  | 'identical-preference'
  | 'duplicate'
  | 'duplicate-prompt'
  | 'overlap'
  | 'too-long'
  | 'truncated'
  | 'template-error'
  | 'blank-line'
  | 'bom'
  | 'crlf'
  | 'no-final-newline'
  | 'csv-field-count'
  | 'csv-quotes'
  | 'csv-mapping'
  | 'ignored-field'
  | 'too-large'
  | 'structure';

export interface Issue {
  /** 1-based physical line where the record (or the problem) starts; 0 = the whole file. */
  line: number;
  severity: Severity;
  code: IssueCode;
  message: string;
  /** The start of the offending line or record, for display. */
  snippet?: string;
  /** For duplicates and overlaps: the line of the first occurrence. */
  firstLine?: number;
  /** Every reason, when one record has several (`message` says them all in one sentence; `code` is the first). */
  reasons?: IssueReason[];
}

/** One reason a record is rejected or warned about. */
export interface IssueReason {
  code: IssueCode;
  message: string;
}

export interface ReadProgress {
  phase: 'read' | 'tokenize';
  /** Bytes read (phase read) or records tokenized (phase tokenize). */
  loaded: number;
  total: number | null;
  /** 0..1 (0 when the total is unknown). */
  fraction: number;
}

export type ProgressCallback = (p: ReadProgress) => void;

/** A readable dataset: a dropped File/Blob, a Node file, or in-memory text. stream() may be called more than once. */
export interface DataSource {
  name: string;
  /** Bytes, when known. */
  size: number | null;
  stream(): ReadableStream<Uint8Array>;
}

/** Which CSV columns make the prompt (joined with a newline when several) and which the completion. */
export interface ColumnMapping {
  prompt: string[];
  completion: string;
  /** Optional column with a system prompt: the record becomes a chat. */
  system?: string;
}
