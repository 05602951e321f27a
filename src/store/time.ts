// Elapsed times and ETAs of long worker requests (the held-out comparison, an export).

/** "12 s", "2 min 05 s" */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Time left, measured from progress fractions (in [0, 1]) reported at times `t`: the first point's rate
 * counts from `startedAt` (it includes the request's setup, so it errs on the long side), later points'
 * from the first point. null until something can be measured; 0 at the end.
 */
export function etaMeter(startedAt: number): (t: number, fraction: number) => number | null {
  let first: { t: number; f: number } | null = null;
  return (t, fraction) => {
    const f = Math.min(1, Math.max(0, fraction));
    if (f >= 1) return 0;
    if (!first) {
      first = { t, f };
      return f > 0 ? ((t - startedAt) * (1 - f)) / f : null;
    }
    return f > first.f ? ((t - first.t) * (1 - f)) / (f - first.f) : null;
  };
}
