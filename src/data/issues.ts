// Collects the problems found in a dataset: every one is counted, the first `max` of each severity are
// kept with their line and a snippet. Problems never abort the file.
import type { Issue, IssueCode, Severity } from './types';

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
  /** How many of each code, listed or not. */
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
    this.byCode[issue.code] = (this.byCode[issue.code] ?? 0) + 1;
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
