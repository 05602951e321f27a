import { useMemo } from 'react';
import { wordDiff } from './diff';

/**
 * A model output with its word-level difference from the expected output: words the output has and
 * the expected text lacks in <ins>, expected words it lacks in <del>. Text nodes only, never HTML.
 */
export function DiffText({ actual, expected, exact }: { actual: string; expected: string; exact: boolean }) {
  const segments = useMemo(() => (exact ? null : wordDiff(actual, expected)), [actual, expected, exact]);
  if (!segments) return <span className="diff-text">{actual}</span>;
  return (
    <span className="diff-text">
      {!actual.trim() && <span className="diff-empty">(no output) </span>}
      {segments.map((s, i) =>
        s.kind === 'same' ? (
          <span key={i}>{s.text}</span>
        ) : s.kind === 'extra' ? (
          <ins key={i} title="Not in the expected output">
            {s.text}
          </ins>
        ) : (
          <del key={i} title="Expected, but missing from the output">
            {s.text}
          </del>
        ),
      )}
    </span>
  );
}
