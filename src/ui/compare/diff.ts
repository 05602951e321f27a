// Word-level difference between a model's output and the expected output, for the held-out table.
// The result is a list of text segments the UI renders as text (never as HTML).

export type DiffKind = 'same' | 'extra' | 'missing';

export interface DiffSegment {
  kind: DiffKind;
  /** The words of the segment with the whitespace between them, as they appear in their source. */
  text: string;
}

/** Words with the whitespace that precedes each (so segments re-join into the original text). */
function words(s: string): { word: string; raw: string }[] {
  const out: { word: string; raw: string }[] = [];
  const re = /(\s*)(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push({ word: m[2]!, raw: m[1]! + m[2]! });
  return out;
}

/** Longest sequences compared exactly; beyond this many words on each side the tail is one block. */
const MAX_WORDS = 2000;

/**
 * Segments of `actual` against `expected`: 'same' words are in both (in order, longest common
 * subsequence), 'extra' words are only in `actual`, 'missing' words only in `expected`. Joining the
 * 'same' and 'extra' segments gives `actual` back (without trailing whitespace); 'same' and 'missing'
 * give the words of `expected` (the whitespace of 'same' words is `actual`'s).
 */
export function wordDiff(actual: string, expected: string): DiffSegment[] {
  const a = words(actual).slice(0, MAX_WORDS);
  const b = words(expected).slice(0, MAX_WORDS);
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = LCS length of a[i..] and b[j..], in one flat array.
  const w = m + 1;
  const lcs = new Uint16Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[i]!.word === b[j]!.word ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  const out: DiffSegment[] = [];
  const push = (kind: DiffKind, raw: string) => {
    const last = out.at(-1);
    if (last && last.kind === kind) last.text += raw;
    else out.push({ kind, text: raw });
  };
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i]!.word === b[j]!.word) {
      push('same', a[i]!.raw);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i * w + j + 1]! >= lcs[(i + 1) * w + j]!)) {
      push('missing', b[j]!.raw);
      j++;
    } else {
      push('extra', a[i]!.raw);
      i++;
    }
  }
  return out;
}
