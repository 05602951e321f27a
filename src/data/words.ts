// The doctor's findings in plain words, for the page and `tabtune data inspect`: what a first-time user
// reads first. The measured details (token ids, probabilities, format ids) stay in the report and are
// shown on demand (stopDetails, the format id); nothing here measures anything.
//
//   skipped       records that will not be trained: total - records (one per record, however many
//                 reasons it has; src/data/issues.ts keeps one issue per record)
//   stopWords     which token ends a reply, and why that is fine (or what it costs), in one sentence
//   promptFormatNote  the words tabtune's own format adds around the user's text in the token preview
//                 ("Answer:", "User:"/"Assistant:"): where they come from (PLAIN_FORMAT in ./encode)
// Plain TypeScript, no DOM.
import { PLAIN_CHAT_ROLES, PLAIN_FORMAT, PLAIN_SEPARATOR } from './encode';
import type { StopTokenChoice } from './stop-token';
import type { Container } from './types';

/** Records read but not trained (rejected for any number of reasons, or too long): one per record. */
export function skippedRecords(r: { total: number; records: number }): number {
  return Math.max(0, r.total - r.records);
}

/** "2 lines" (JSON Lines, tables, text) or "2 records" (a JSON array, where one line can hold several). */
export function recordNoun(container: Container | null, n: number): string {
  const noun = container === 'json' ? 'record' : 'line';
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * Which token ends a reply, in plain words. `plainText`: the dataset is plain text (documents end with the
 * token, there are no replies).
 */
export function stopWords(stop: StopTokenChoice, opts: { plainText?: boolean } = {}): string {
  const byString = stop.stopTokenId === null;
  const lineBreak = byString && stop.stopStrings.length === 1 && stop.stopStrings[0] === '\n';
  if (opts.plainText) {
    if (stop.kind === 'override') return byString ? 'Each document ends with the text you chose.' : 'Each document ends with the token you chose.';
    return byString ? 'Documents are joined with no end-of-text token between them (this tokenizer has none).' : "Each document ends with the model's end-of-text token, so the model learns where a text ends.";
  }
  switch (stop.kind) {
    case 'eos':
      return "Replies will end with the model's end-of-text token, which it already uses to end text.";
    case 'separator':
      return 'Replies will end with the token this model puts between documents: it never learned to use its own end-of-text token, but it already ends texts with this one.';
    case 'newline':
      return 'Replies will end at the first line break: this model never learned a token that ends text, so each completion must fit on one line.';
    case 'override':
      if (lineBreak) return 'Replies will end at the first line break, as you chose.';
      return byString ? 'Replies will end with the text you chose.' : 'Replies will end with the token you chose.';
    case 'default':
      if (byString) return lineBreak ? 'Replies will end at the first line break (the tokenizer has no end-of-text token).' : 'Replies will end with the text set as the end.';
      return "Replies will end with the tokenizer's end-of-text token (not yet checked against the model: it is checked once a model is loaded).";
  }
}

const pFmt = (p: number) => (p >= 0.001 ? p.toFixed(4) : p.toExponential(1));

/** The figures behind stopWords, one line each: the token or text, the measured probabilities, the doctor's reason. */
export function stopDetails(stop: StopTokenChoice): string[] {
  const out: string[] = [];
  out.push(stop.stopTokenId !== null ? `Stop token: id ${stop.stopTokenId}.` : `Stop text: ${stop.stopStrings.map((s) => JSON.stringify(s)).join(', ')}.`);
  const p = stop.probabilities;
  const c = stop.candidates;
  const parts: string[] = [];
  if (p.eos !== null) parts.push(`end-of-text token${c.eos !== null ? ` (id ${c.eos})` : ''} ${pFmt(p.eos)}`);
  if (p.separator !== null) parts.push(`document separator${c.separator !== null ? ` (id ${c.separator})` : ''} ${pFmt(p.separator)}`);
  if (p.newline !== null) parts.push(`line break${c.newline !== null ? ` (id ${c.newline})` : ''} ${pFmt(p.newline)}`);
  if (parts.length) out.push(`Mean probability the base model gives each right after ${stop.probes} finished text${stop.probes === 1 ? '' : 's'}: ${parts.join(', ')}.`);
  out.push(`Why: ${stop.reason}.`);
  return out;
}

/**
 * Where the words around the user's text in the token preview come from, or null when there are none:
 * tabtune's plain prompt format ({prompt}\nAnswer: {completion}, PLAIN_FORMAT) for prompt/completion pairs,
 * and its plain chat format ("User:" / "Assistant:") for conversations on a model without a chat template.
 */
export function promptFormatNote(example: readonly { text: string }[] | null): string | null {
  if (!example?.length) return null;
  const text = example.map((t) => t.text).join('');
  const separator = PLAIN_SEPARATOR.trim();
  if (text.includes(PLAIN_SEPARATOR)) {
    return `"${separator}" is not in your file: tabtune's plain prompt format (${PLAIN_FORMAT.replace(/\n/g, '⏎')}) puts it between each prompt and its completion, so the model learns where its reply starts; prompts for the tuned model end with it too. Conversations use the model's own chat template when it has one.`;
  }
  const assistant = PLAIN_CHAT_ROLES.assistantPrompt;
  if (text.includes(`\n${assistant}`) && text.includes('User: ')) {
    return `"User:" and "${assistant}" are not in your file: this model has no chat template, so tabtune's plain chat format marks each turn with them.`;
  }
  return null;
}
