// Which token ends a reply. Training appends it to every target and generation stops on it, so it must
// be a token the model can actually learn to emit. Some pretrained models never saw their EOS id as a
// target: stories260K (llama2.c) was pretrained on [BOS] story [BOS] story ..., so its EOS (id 2) gets a
// probability around 1e-11 everywhere and a LoRA cannot make it win; its BOS, the document separator,
// is what it predicts where a text ends.
//
// Detection: run the base model on a few complete texts (NATURAL_PROBE_TEXTS, plus the dataset's own
// completions when given) and read the probability of each candidate right after the last token:
//   1. EOS            when its mean probability reaches LEARNED_PROBABILITY (the model learned it);
//   2. the separator  (BOS, when distinct from EOS and the tokenizer starts every text with it) when
//                     it reaches the threshold;
//   3. otherwise a newline stop string ("\n").
// A token the model was never trained to predict sits many orders of magnitude below 1/vocab; one used
// as a document boundary in pretraining sits within a few orders of it, so the threshold has wide margins.
// The order is by meaning, not by probability: on stories260K "\n" is often likelier than BOS after a
// sentence (mean 0.41 vs 0.24 on the probes) because it is TinyStories' paragraph break, i.e. it also
// occurs mid-text; BOS only follows a finished document. Measured on stories260K: EOS 1.4e-11, BOS 0.24.

import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../model/causal-lm';
import { contextLength } from '../model/config';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { tokensAfterText, type StopSpec } from './encode';

/** Short complete texts. Story-like on purpose: they are natural text for TinyStories models and any general model. */
export const NATURAL_PROBE_TEXTS: readonly string[] = [
  'Once upon a time, there was a little girl named Lily. She loved to play in the park with her red ball. One day, she shared her ball with a new friend, and they played all day. Lily was very happy. The end.',
  'Tom had a small dog named Max. Max liked to run and jump. One day, Max found a big bone in the garden. Tom laughed and gave Max a hug. They were best friends forever.',
  'Mia and her mom went to the beach. They built a big sandcastle and swam in the blue water. When the sun went down, they went home. Mia said, "This was the best day ever!"',
  'Ben wanted to fly his kite, but the wind was too weak. He waited and waited. At last, the wind blew and the kite went up high in the sky. Ben smiled and clapped his hands. The end.',
  'The little bird could not find its nest. A kind girl helped the bird and put it back in the tree. The bird sang a happy song to say thank you. From that day on, they were friends.',
  'Sam was sad because it was raining. His mom made him warm soup and read him a book. Soon Sam forgot about the rain and fell asleep with a smile.',
];

/** Mean probability at which a candidate counts as learned. */
export const LEARNED_PROBABILITY = 1e-4;

export interface StopTokenChoice extends StopSpec {
  kind: 'eos' | 'separator' | 'newline' | 'override' | 'default';
  reason: string;
  /** Mean base-model probability of each candidate right after the end of the probe texts (null: no such candidate). */
  probabilities: { eos: number | null; separator: number | null; newline: number | null };
  /** Candidate ids (newline: the first token of "\n" after text). */
  candidates: { eos: number | null; separator: number | null; newline: number | null };
  /** Probe texts used. */
  probes: number;
}

export interface StopModel {
  lm: CausalLM;
  tokenizer: TextTokenizer;
  eosIds: number[];
}

/** Token id of "\n" when it follows text (no dummy-prefix space), or null. */
export function newlineTokenId(tokenizer: TextTokenizer): number | null {
  return tokensAfterText(tokenizer, '\n')[0] ?? null;
}

/** Mean probability of each id right after each text (one forward pass per text; tensors disposed). */
export async function endProbabilities(model: StopModel, texts: readonly string[], ids: number[]): Promise<number[]> {
  const ctx = contextLength(model.lm.config);
  const sums = ids.map(() => 0);
  let n = 0;
  for (const text of texts) {
    let tokens = model.tokenizer.encode(text);
    if (tokens.length === 0) continue;
    if (tokens.length > ctx) tokens = [...tokens.slice(0, model.tokenizer.addBosDefault ? 1 : 0), ...tokens.slice(tokens.length - ctx + (model.tokenizer.addBosDefault ? 1 : 0))];
    const picked = tf.tidy(() => {
      const logits = model.lm.forward([tokens], { lastOnly: true }); // [1, 1, V]
      const probs = tf.softmax(tf.reshape(logits, [-1])); // [V]
      return tf.gather(probs, tf.tensor1d(ids, 'int32')); // [ids]
    });
    const vals = await picked.data();
    picked.dispose();
    vals.forEach((v, k) => (sums[k] += v));
    n++;
  }
  return sums.map((s) => (n ? s / n : 0));
}

const fmt = (p: number | null) => (p === null ? 'n/a' : p >= 1e-3 ? p.toFixed(4) : p.toExponential(1));

/**
 * Picks the stop token for a model (see the top of this file). `texts` are added to the built-in probe
 * texts (e.g. the dataset's completions in the training format); `override` forces a choice (the
 * probabilities are still measured, for display).
 */
export async function detectStopToken(model: StopModel, opts: { texts?: string[]; override?: Partial<StopSpec> } = {}): Promise<StopTokenChoice> {
  const tk = model.tokenizer;
  const eos = model.eosIds[0] ?? tk.eosId;
  const sep = tk.bosId !== null && tk.bosId !== eos && tk.addBosDefault ? tk.bosId : null;
  const nl = newlineTokenId(tk);
  const texts = [...NATURAL_PROBE_TEXTS, ...(opts.texts ?? []).filter((t) => t.trim().length > 0)];
  const cands = [eos, sep, nl];
  const present = cands.filter((c): c is number => c !== null && c !== undefined);
  const probs = present.length ? await endProbabilities(model, texts, present) : [];
  const probOf = (c: number | null | undefined) => (c === null || c === undefined ? null : probs[present.indexOf(c)]!);
  const p = { eos: probOf(eos), separator: probOf(sep), newline: probOf(nl) };
  const base = { probabilities: p, candidates: { eos: eos ?? null, separator: sep, newline: nl }, probes: texts.length };
  const name = (id: number) => JSON.stringify(tk.idToToken(id) ?? String(id));

  if (opts.override && (opts.override.stopTokenId !== undefined || opts.override.stopStrings !== undefined)) {
    const stopTokenId = opts.override.stopTokenId ?? null;
    const stopStrings = opts.override.stopStrings ?? [];
    return { ...base, stopTokenId, stopStrings, kind: 'override', reason: `set by the user (${stopTokenId !== null ? `token ${stopTokenId} ${name(stopTokenId)}` : `stop string ${JSON.stringify(stopStrings)}`})` };
  }
  if (eos !== null && eos !== undefined && p.eos! >= LEARNED_PROBABILITY) {
    return { ...base, stopTokenId: eos, stopStrings: [], kind: 'eos', reason: `the model predicts its EOS token ${name(eos)} (id ${eos}) at the end of text (mean p = ${fmt(p.eos)}): replies end with EOS` };
  }
  const eosText = eos !== null && eos !== undefined ? `its EOS token ${name(eos)} (id ${eos}) has mean p = ${fmt(p.eos)} at the end of text: never learned` : 'it has no EOS token';
  if (sep !== null && p.separator! >= LEARNED_PROBABILITY) {
    return {
      ...base,
      stopTokenId: sep,
      stopStrings: [],
      kind: 'separator',
      reason: `${eosText}, but it predicts the document separator ${name(sep)} (BOS, id ${sep}) there (mean p = ${fmt(p.separator)}): it was pretrained with BOS between documents, so replies end with BOS`,
    };
  }
  return {
    ...base,
    stopTokenId: null,
    stopStrings: ['\n'],
    kind: 'newline',
    reason: `${eosText}${sep !== null ? ` and its separator ${name(sep)} only ${fmt(p.separator)}` : ''}: replies end with a newline (stop string "\\n"; completions must be one line)`,
  };
}
