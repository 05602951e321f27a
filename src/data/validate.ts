// Checks across records: exact duplicates, the same prompt with different answers, and overlap
// between a training and a validation file. Records are compared through 53-bit hashes of their
// content so a million-record file costs a few tens of MB, not a copy of the text.
import { promptKey, recordKey } from './formats';
import type { IssueLog } from './issues';
import type { DataRecord } from './types';

/** cyrb53: a fast 53-bit string hash (collisions ~ n^2 / 2^54: negligible for dataset sizes). */
export function hash53(str: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

export interface DuplicateVerdict {
  /** Line of an identical earlier record. */
  duplicateOf?: number;
  /** Line of an earlier record with the same prompt and a different answer. */
  samePromptAs?: number;
}

/** Remembers every record seen; tells whether a new one repeats an earlier one. */
export class DuplicateTracker {
  private records = new Map<number, number>();
  private prompts = new Map<number, number>();

  check(r: DataRecord): DuplicateVerdict {
    const k = hash53(r.kind + recordKey(r));
    const first = this.records.get(k);
    if (first !== undefined) return { duplicateOf: first };
    this.records.set(k, r.line);
    const p = hash53(r.kind + promptKey(r));
    const firstPrompt = this.prompts.get(p);
    if (firstPrompt !== undefined) return { samePromptAs: firstPrompt };
    this.prompts.set(p, r.line);
    return {};
  }
}

/** Reports duplicates in a list of records (already parsed); used when records come from elsewhere. */
export function reportDuplicates(records: DataRecord[], log: IssueLog): void {
  const t = new DuplicateTracker();
  for (const r of records) reportVerdict(t.check(r), r.line, log);
}

export function reportVerdict(v: DuplicateVerdict, line: number, log: IssueLog, snippetText?: string): void {
  const extra = snippetText !== undefined ? { snippet: snippetText } : {};
  if (v.duplicateOf !== undefined) log.warn(line, 'duplicate', `duplicate of the record on line ${v.duplicateOf}`, { firstLine: v.duplicateOf, ...extra });
  else if (v.samePromptAs !== undefined) log.warn(line, 'duplicate-prompt', `same prompt as line ${v.samePromptAs}, with a different answer`, { firstLine: v.samePromptAs, ...extra });
}

/**
 * Validation records whose prompt also appears in the training set: the validation loss would
 * measure memorization. Reported on the validation file's lines (warnings, into `log`).
 */
export function checkOverlap(train: DataRecord[], val: DataRecord[], log: IssueLog): number {
  const byPrompt = new Map<number, number>();
  for (const r of train) {
    const k = hash53(r.kind + promptKey(r));
    if (!byPrompt.has(k)) byPrompt.set(k, r.line);
  }
  let n = 0;
  for (const r of val) {
    const first = byPrompt.get(hash53(r.kind + promptKey(r)));
    if (first === undefined) continue;
    n++;
    log.warn(r.line, 'overlap', `this validation example's prompt is also in the training file (line ${first}): validation would measure memorization`, { firstLine: first });
  }
  return n;
}
