// Minimal --flag value parsing for the CLI: `--key value`, `--key=value`, bare `--flag` = true.
export type Args = Record<string, string | boolean> & { _: string[] };

export function parseArgs(argv: string[]): Args {
  const out: Args = { _: [] } as unknown as Args;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      out._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      out[a.slice(2, eq)] = a.slice(eq + 1);
      continue;
    }
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      out[key] = next;
      i++;
    } else out[key] = true;
  }
  return out;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

export function str(args: Args, key: string, usage: string): string {
  const v = args[key];
  if (typeof v !== 'string' || !v) throw new UsageError(`missing --${key}\n${usage}`);
  return v;
}

export function optNum(args: Args, key: string, fallback?: number): number | undefined {
  const v = args[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n)) throw new UsageError(`--${key} needs a number, got ${JSON.stringify(v)}`);
  return n;
}
