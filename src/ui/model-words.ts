// The loaded model in plain words for the model panel (issue 18: plain words first, internals on demand):
// "a small Llama model, 0.45 M parameters, reads up to 256 tokens". The exact counts (parameters,
// vocabulary, layers × width) go in the panel's "details" toggle. Plain TS, no DOM.

/** The family's name for people ("llama" → "Llama", "gpt2" → "GPT-2"); other ids as they are. */
const FAMILY: Record<string, string> = { llama: 'Llama', gpt2: 'GPT-2' };

/** A parameter count in millions or billions with two significant digits below 10: 447,040 → "0.45 M", 3,104,000 → "3.1 M", 124,439,808 → "124 M", 1.2e9 → "1.2 B". */
export function compactCount(n: number): string {
  // 999.6 M rounds to 1000: that is 1 B.
  const [v, unit] = n >= 999.5e6 ? [n / 1e9, 'B'] : [n / 1e6, 'M'];
  const s = v >= 10 ? String(Math.round(v)) : String(Number(v.toPrecision(2)));
  return `${s} ${unit}`;
}

/** "a small Llama model, 0.45 M parameters, reads up to 256 tokens" ("small" below a billion parameters). */
export function modelWords(m: { arch: string; numParams: number; contextLength: number }): string {
  const family = FAMILY[m.arch] ?? m.arch;
  const size = m.numParams < 1e9 ? 'small ' : '';
  return `a ${size}${family} model, ${compactCount(m.numParams)} parameters, reads up to ${new Intl.NumberFormat('en-US').format(m.contextLength)} tokens`;
}
