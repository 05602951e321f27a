// Command-line parsing: each command declares its options (name -> string or boolean flag), node:util's
// parseArgs reads them strictly (`--key value`, `--key=value`, bare `--flag`), and an unknown or
// misspelled option is an error naming the valid ones, never silently ignored.
import { parseArgs as parseNodeArgs } from 'node:util';

export type Args = Record<string, string | boolean> & { _: string[] };

/** A command's options: each name (without `--`) is a flag taking a value ('string') or none ('boolean'). */
export type OptionSpec = Readonly<Record<string, 'string' | 'boolean'>>;

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Levenshtein distance, for "did you mean" (short option names only). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** Parses `argv` against `spec`; `command` names the command in messages. */
export function parseArgs(argv: string[], spec: OptionSpec, command: string): Args {
  const options = Object.fromEntries(Object.entries(spec).map(([k, type]) => [k, { type }]));
  // There are no short flags: a value after a string option is its value even when it starts with "-"
  // (`--prompt "-5 apples"`, `--stop -`), which node:util would call ambiguous.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && spec[a.slice(2)] === 'string' && next !== undefined && next.startsWith('-') && !next.startsWith('--')) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  let parsed;
  try {
    parsed = parseNodeArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    const valid = Object.keys(spec)
      .sort()
      .map((k) => `--${k}`)
      .join(' ');
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const bad = /'(-[^']*)'/.exec(err.message)?.[1] ?? '';
      const name = bad.replace(/^-+/, '').split('=')[0]!;
      const near = Object.keys(spec)
        .map((k) => ({ k, d: distance(name, k) }))
        .sort((x, y) => x.d - y.d)[0];
      const hint = near && near.d <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean --${near.k}?)` : '';
      throw new UsageError(`${command}: unknown option ${bad}${hint}\nvalid options: ${valid}`);
    }
    throw new UsageError(`${command}: ${err.message}\nvalid options: ${valid}`);
  }
  return Object.assign({ _: parsed.positionals }, parsed.values) as Args;
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
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${key} needs a number, got ${JSON.stringify(v)}`);
  return n;
}
