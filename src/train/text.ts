// Plain-text domain adaptation in the one training loop: what is measured for the user. The held-out
// perplexity is exp(mean negative log-likelihood per token) over the held-out windows (the evaluation's val
// loss is exactly that mean); the base model's is measured once, before training, with the adapter off, and
// reported beside every evaluation as `ppl_base` (a quality plugin of src/train/quality). Compare continues
// the opening words of each held-out paragraph with the base and the tuned model.
import { textOpening } from '../data/text';
import type { TextRecord } from '../data/types';
import type { CausalLM } from '../model/causal-lm';
import { causalLmObjective, evaluateLoss, type Example, type TrainableAdapter } from './loop';
import type { EvalMetric } from './run-loop';
import { withBaseModel } from './quality/probe';

/** Mean negative log-likelihood per token (nats) of windows (weight 1 on every token); NaN without tokens. */
export async function windowsNll(lm: CausalLM, windows: Example[], batchSize = 8): Promise<number> {
  if (!windows.length) return NaN;
  const { nll, tokens } = await evaluateLoss(lm, causalLmObjective, windows, batchSize, 25);
  return tokens ? nll / tokens : NaN;
}

/** Held-out perplexity of the base model (the adapter switched off) and of the model as it is (adapter on). */
export async function perplexityBaseTuned(lm: CausalLM, adapter: TrainableAdapter | null, windows: Example[], batchSize = 8): Promise<{ base: number; tuned: number; tokens: number }> {
  const base = adapter ? await withBaseModel(adapter, () => windowsNll(lm, windows, batchSize)) : NaN;
  const was = adapter?.enabled;
  if (adapter) adapter.enabled = true;
  try {
    const tuned = await windowsNll(lm, windows, batchSize);
    return { base: Math.exp(base), tuned: Math.exp(tuned), tokens: windows.reduce((a, w) => a + w.weight.reduce((x, y) => x + y, 0), 0) };
  } finally {
    if (adapter) adapter.enabled = was!;
  }
}

/**
 * The base model's held-out perplexity as a measurement of every evaluation: measured once, now (with
 * `adapter` off), and reported as `ppl_base` (and `val_loss_base`) beside the run's own `val_ppl`.
 */
export async function basePerplexityMetric(lm: CausalLM, adapter: TrainableAdapter | null, windows: Example[], batchSize = 8): Promise<EvalMetric> {
  const nll = await withBaseModel(adapter, () => windowsNll(lm, windows, batchSize));
  return {
    name: 'text',
    async measure() {
      const values: Record<string, number> = Number.isFinite(nll) ? { ppl_base: Math.exp(nll), val_loss_base: nll } : {};
      return { values };
    },
  };
}

/** A held-out paragraph as Compare prompts it: its opening words, continued; the rest is what the text says. */
export function textPromptAndAnswer(r: TextRecord, words = 8): { prompt: { text: string }; expected: string; shown: string } {
  const { opening, rest } = textOpening(r, words);
  return { prompt: { text: opening }, expected: rest.trim(), shown: opening };
}
