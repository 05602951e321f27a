// The run report's files and the small readers that turn stored records into a CardInput's parts (the
// worker's src/worker/report.ts and the CLI's src/cli/report.ts build the input from them).
import { CARD_FILE, LOSS_CURVE_PNG, modelCard, type CardInput } from './card';
import { lossCurvePng } from './png';

export * from './card';
export { lossCurvePng, lossCurveRaster, encodePng } from './png';

/** The forgetting probe's base measurement from a stored probe (run.probe, probe.json), or null. */
export function probeSummary(probe: unknown): CardInput['probe'] {
  const p = probe as { samples?: unknown; tokens?: unknown; baseNll?: unknown } | null | undefined;
  if (!p || !Array.isArray(p.samples) || typeof p.baseNll !== 'number' || typeof p.tokens !== 'number') return null;
  return { samples: p.samples.length, tokens: p.tokens, baseNll: p.baseNll };
}

/** The stored baseline (run.baseline, baseline.json) as the card reads it, or null. */
export function baselineSummary(b: unknown): CardInput['baseline'] {
  const x = b as { of?: unknown; valLoss?: unknown; extra?: unknown } | null | undefined;
  if (!x || typeof x.valLoss !== 'number' || !x.extra || typeof x.extra !== 'object') return null;
  const extra = Object.fromEntries(Object.entries(x.extra as Record<string, unknown>).filter(([, v]) => typeof v === 'number')) as Record<string, number>;
  return { of: typeof x.of === 'string' ? x.of : 'base model', valLoss: x.valLoss, extra };
}

/** The card's checkpoint from a checkpoint listing (CheckpointInfo) or manifest. */
export function cardCheckpoint(c: { step: number; trainLoss: number | null; valLoss: number | null; extra?: Record<string, number> | null; pinned: boolean } | null): CardInput['checkpoint'] {
  return c ? { step: c.step, trainLoss: c.trainLoss, valLoss: c.valLoss, extra: c.extra ?? null, pinned: c.pinned } : null;
}

/** Metric points without their per-evaluation detail (tables, sample answers): what a card reads, smaller. */
export function cardPoints(points: readonly unknown[]): CardInput['points'] {
  const out: CardInput['points'] = [];
  for (const p of points) {
    const m = p as CardInput['points'][number] | null;
    if (!m || typeof m !== 'object' || typeof m.step !== 'number') continue;
    if (m.type === 'eval') {
      const { details: _details, ...rest } = m;
      out.push(rest);
    } else if (m.type === 'step') out.push(m);
  }
  return out;
}

/** README.md (the card) and loss_curve.png (when the run has a loss to draw), for an export folder or zip. */
export function cardFiles(input: CardInput): Map<string, Uint8Array> {
  const png = lossCurvePng(input.points);
  const card = modelCard({ ...input, lossCurve: png ? LOSS_CURVE_PNG : null });
  const files = new Map<string, Uint8Array>([[CARD_FILE, new TextEncoder().encode(card)]]);
  if (png) files.set(LOSS_CURVE_PNG, png);
  return files;
}
