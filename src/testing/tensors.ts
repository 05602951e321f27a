// Comparing named tensors (adapters read back from safetensors) in tests, Node and Playwright alike.

/** Largest |a - b| over tensors of the same names; throws when the two sets of names differ. */
export function maxTensorMapDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  const names = (m: Map<string, Float32Array>) => [...m.keys()].sort().join('\n');
  if (names(a) !== names(b)) throw new Error(`different tensor names:\n${names(a)}\n--- vs ---\n${names(b)}`);
  let d = 0;
  for (const [k, x] of a) {
    const y = b.get(k)!;
    if (y.length !== x.length) throw new Error(`${k}: ${x.length} values vs ${y.length}`);
    for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  }
  return d;
}
