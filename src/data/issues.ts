// Collects the problems found in a dataset: every one is counted, the first `max` of each severity are
// kept with their line and a snippet. Problems never abort the file.
// COUNTING: one record is one issue. All the errors of one record (a line missing both "prompt" and
// "completion") are one Issue whose message lists every reason (Issue.reasons keeps them apart), so
// errorCount counts rejected records (plus file-level problems, line 0), never reasons; the same for warnings.
import type { Issue, IssueCode, IssueReason, Severity } from './types';

export const MAX_ISSUES = 1000;
const SNIPPET_CHARS = 100;

/** The start of a line or record, one line high, for display next to an error. */
export function snippet(text: string, max = SNIPPET_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

export interface IssueSummary {
  errors: Issue[];
  warnings: Issue[];
  errorCount: number;
  warningCount: number;
  /** Issues counted but not listed (beyond the first `max` of each severity). */
  errorsOmitted: number;
  warningsOmitted: number;
  /** How many issues (records, or file-level problems) have each code, listed or not. */
  byCode: Partial<Record<IssueCode, number>>;
}

export class IssueLog {
  readonly errors: Issue[] = [];
  readonly warnings: Issue[] = [];
  errorCount = 0;
  warningCount = 0;
  readonly byCode: Partial<Record<IssueCode, number>> = {};

  constructor(readonly max = MAX_ISSUES) {}

  add(issue: Issue): void {
    for (const code of issueCodes(issue)) this.byCode[code] = (this.byCode[code] ?? 0) + 1;
    if (issue.severity === 'error') {
      this.errorCount++;
      if (this.errors.length < this.max) this.errors.push(issue);
    } else {
      this.warningCount++;
      if (this.warnings.length < this.max) this.warnings.push(issue);
    }
  }

  error(line: number, code: IssueCode, message: string, extra: Partial<Issue> = {}): void {
    this.add({ line, severity: 'error', code, message, ...extra });
  }

  warn(line: number, code: IssueCode, message: string, extra: Partial<Issue> = {}): void {
    this.add({ line, severity: 'warning', code, message, ...extra });
  }

  /**
   * All the problems of one record: its errors become one error issue and its warnings one warning issue,
   * each with every reason in its message (and in `reasons` when there are several). Counted once each.
   */
  addRecord(line: number, problems: readonly RecordProblem[], extra: Partial<Issue> = {}): void {
    for (const severity of ['error', 'warning'] as const) {
      const reasons = problems.filter((p) => p.severity === severity).map(({ code, message }) => ({ code, message }));
      if (!reasons.length) continue;
      const issue: Issue = { line, severity, code: reasons[0]!.code, message: joinReasons(reasons), ...extra };
      if (reasons.length > 1) issue.reasons = reasons;
      this.add(issue);
    }
  }

  count(code: IssueCode): number {
    return this.byCode[code] ?? 0;
  }

  summary(): IssueSummary {
    const byLine = (a: Issue, b: Issue) => a.line - b.line;
    return {
      errors: [...this.errors].sort(byLine),
      warnings: [...this.warnings].sort(byLine),
      errorCount: this.errorCount,
      warningCount: this.warningCount,
      errorsOmitted: this.errorCount - this.errors.length,
      warningsOmitted: this.warningCount - this.warnings.length,
      byCode: { ...this.byCode },
    };
  }
}

/** A record-level problem found while normalizing one record (line and snippet added by the caller). */
export interface RecordProblem {
  severity: Severity;
  code: IssueCode;
  message: string;
}

/** The distinct codes of an issue (several when it holds several reasons of one record). */
export function issueCodes(issue: Pick<Issue, 'code' | 'reasons'>): IssueCode[] {
  return issue.reasons ? [...new Set(issue.reasons.map((r) => r.code))] : [issue.code];
}

const MISSING = /^missing field "([^"]+)"$/;

/**
 * The reasons of one record in one sentence: `missing field "prompt"` and `missing field "completion"`
 * read `missing fields "prompt" and "completion"`; other reasons follow, separated by "; ".
 */
export function joinReasons(reasons: readonly IssueReason[]): string {
  const missing = reasons.map((r) => MISSING.exec(r.message)?.[1]).filter((k): k is string => k !== undefined);
  const together = missing.length === 1 ? `missing field "${missing[0]}"` : `missing fields ${missing.slice(0, -1).map((k) => `"${k}"`).join(', ')} and "${missing.at(-1)}"`;
  const parts: string[] = [];
  let said = false;
  for (const r of reasons) {
    if (!MISSING.test(r.message)) parts.push(r.message);
    else if (!said) {
      parts.push(together); // where the first missing field was
      said = true;
    }
  }
  return parts.join('; ');
}
