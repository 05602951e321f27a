// Records -> training sequences: token ids, next-token targets and loss weights.
//
// CONVENTION (what the trainer consumes):
//   TrainingExample { input, target, weight }, all of the same length T <= maxSeqLen.
//   input[t]  = the t-th token fed to the model;
//   target[t] = the token to predict after input[0..t] (i.e. the full sequence shifted by one:
//               full = [...input, target[T-1]], target[t] = full[t+1]);
//   weight[t] = 1 when target[t] counts in the loss, 0 when it is masked (prompt, system, user turns).
//   The loss is sum_t weight[t] * CE(logits[t], target[t]) / sum_t weight[t]. No -100 sentinels, no shift
//   left to do in the trainer.
//
// FORMATS
//   Chat-shaped records on a model with a chat template: the template (tokenizer.applyChatTemplate),
//   rendered turn by turn so each assistant reply (with the template's end marker) is trained and the
//   rest is not. Everything else uses the plain format:
//     pair:  [BOS]{prompt}\nAnswer: {completion}[END]                  (PLAIN_SEPARATOR = "\nAnswer:")
//     chat:  [BOS]{system}\n\nUser: {user}\nAssistant: {reply}[END]User: ...
//   "\nAnswer:" is short (7 tokens on a 512-token vocabulary), reads naturally to a base model, and marks
//   the end of the prompt; the completion gets one leading space unless it already starts with
//   whitespace. At inference, promptIds()/promptText() give exactly the prompt tokens used in training.
//
// END OF TEXT
//   [END] is the stop token chosen by ./stop-token (the model's EOS when it learned it; stories260K's
//   BOS document separator otherwise), appended as an id to every trained reply, or, when no token
//   works, the newline stop string appended as text. A template's own end marker (e.g. </s>) inside a
//   reply is replaced by the stop token when they differ, and added when the template has none.
//
// TRUNCATION
//   A sequence longer than maxSeqLen + 1 tokens loses tokens from the LEFT of its prompt, right after
//   BOS (which is kept). The last reply is never cut: an example whose last reply does not fit fails
//   with code 'too-long'. Every truncation is counted in the example (truncated = tokens cut).
//
// Token boundaries: each text run is encoded once as a whole, and the boundary between two parts is the
// longest common prefix of the encodings of the prefix and of the whole, so training tokens are exactly
// what the tokenizer produces for the whole text and the prompt tokens match the inference prompt.
import type { TextTokenizer } from '../tokenizer/tokenizer';
import type { ChatRecord, DataRecord, Message, PairRecord, PreferenceRecord } from './types';

export const PLAIN_SEPARATOR = '\nAnswer:';
/** The plain pair format, for display and documentation ({prompt} / {completion} are placeholders). */
export const PLAIN_FORMAT = `{prompt}${PLAIN_SEPARATOR} {completion}`;
/** Plain chat format: role prefixes; the assistant's generation prompt is "Assistant:". */
export const PLAIN_CHAT_ROLES = { system: (c: string) => `${c}\n\n`, user: (c: string) => `User: ${c}\n`, tool: (c: string) => `Tool: ${c}\n`, assistantPrompt: 'Assistant:' } as const;

/** The prompt text a plain-format model continues from. */
export function plainPromptText(prompt: string): string {
  return prompt + PLAIN_SEPARATOR;
}

/** The completion as it follows the separator: one leading space unless it starts with whitespace. */
export function plainCompletionText(completion: string): string {
  return /^\s/.test(completion) ? completion : ' ' + completion;
}

export interface StopSpec {
  /** Token that ends a reply (appended to every target, stops generation); null = use stopStrings. */
  stopTokenId: number | null;
  /** Text that ends a reply when there is no stop token (also passed to generation). */
  stopStrings: string[];
}

export interface EncodeOptions {
  /** Longest input the model sees (its context length, or less). */
  maxSeqLen: number;
  /** Loss on completion/assistant tokens only (default) or on every token. */
  lossOn?: 'completion' | 'all';
  /** auto (default): the chat template for chat records when the tokenizer has one, else plain. */
  template?: 'auto' | 'chat-template' | 'plain';
  /** End of text. Default: the tokenizer's EOS, else a newline stop string. */
  stop?: StopSpec;
}

export interface TrainingExample {
  input: number[];
  target: number[];
  weight: number[];
  /** Line of the record in its file. */
  line: number;
  /** Tokens cut from the left of the prompt (0 = none). */
  truncated: number;
  /** Length of the whole sequence before truncation (= input.length + 1 + truncated). */
  fullLength: number;
  /** Tokens of replies/completions (end token included) and of everything else, before truncation. */
  completionTokens: number;
  promptTokens: number;
  format: 'chat-template' | 'plain';
}

export type EncodeResult =
  | { ok: true; example: TrainingExample }
  | { ok: false; code: 'too-long' | 'template-error' | 'unsupported'; message: string; fullLength?: number };

/** A preference pair encoded: both sides as SFT would train them (same prompt tokens, the reply's weighted). */
export type PreferenceEncodeResult =
  | { ok: true; chosen: TrainingExample; rejected: TrainingExample }
  | { ok: false; code: 'too-long' | 'template-error' | 'unsupported'; message: string };

/**
 * The two sides of a preference pair as the records SFT trains: a single user turn becomes a pair (the
 * format SFT on pairs uses, so DPO after SFT sees the prompts it was tuned on), anything else a chat.
 */
export function preferenceSides(r: PreferenceRecord): [PairRecord | ChatRecord, PairRecord | ChatRecord] {
  const one = r.prompt.length === 1 && r.prompt[0]!.role === 'user';
  const side = (reply: string): PairRecord | ChatRecord =>
    one ? { kind: 'pair', prompt: r.prompt[0]!.content, completion: reply, line: r.line } : { kind: 'chat', messages: [...r.prompt, { role: 'assistant', content: reply }], line: r.line };
  return [side(r.chosen), side(r.rejected)];
}

/** One piece of a sequence: text, or a token id placed as is (the stop token). */
type Part = ({ text: string } | { id: number }) & {
  /** Part of a reply/completion (protected from truncation when it is in the last reply). */
  completion: boolean;
  /** Index of the assistant turn it belongs to (-1: none). */
  turn: number;
};

interface Tokenized {
  ids: number[];
  completion: boolean[];
  turn: number[];
}

function lcp(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Tokens of `text` when it follows other text (no BOS, no dummy-prefix space), e.g. "\n" -> [13]. */
export function tokensAfterText(tokenizer: TextTokenizer, text: string): number[] {
  const base = tokenizer.encode('a', { addBos: false });
  const withText = tokenizer.encode('a' + text, { addBos: false });
  return withText.slice(lcp(base, withText));
}

export function defaultStop(tokenizer: TextTokenizer, eosIds: number[] = []): StopSpec {
  const eos = eosIds[0] ?? tokenizer.eosId;
  return eos !== null && eos !== undefined ? { stopTokenId: eos, stopStrings: [] } : { stopTokenId: null, stopStrings: ['\n'] };
}

export class RecordEncoder {
  readonly maxSeqLen: number;
  readonly lossOn: 'completion' | 'all';
  readonly template: 'auto' | 'chat-template' | 'plain';
  readonly stop: StopSpec;

  constructor(
    readonly tokenizer: TextTokenizer,
    opts: EncodeOptions,
  ) {
    if (!(opts.maxSeqLen >= 2)) throw new Error(`maxSeqLen must be at least 2, got ${opts.maxSeqLen}`);
    this.maxSeqLen = opts.maxSeqLen;
    this.lossOn = opts.lossOn ?? 'completion';
    this.template = opts.template ?? 'auto';
    this.stop = opts.stop ?? defaultStop(tokenizer);
    if (this.template === 'chat-template' && !tokenizer.hasChatTemplate) throw new Error('this model has no chat template: use the plain format');
    if (this.stop.stopTokenId === null && !this.stop.stopStrings.some((s) => s.length > 0)) throw new Error('the stop spec needs a stop token or a non-empty stop string');
  }

  /** Which format a record is encoded with. */
  formatOf(r: DataRecord): 'chat-template' | 'plain' {
    if (this.template === 'plain') return 'plain';
    if (this.template === 'chat-template') return 'chat-template';
    return r.kind === 'chat' && this.tokenizer.hasChatTemplate ? 'chat-template' : 'plain';
  }

  /** The text that ends a reply when there is no stop token. */
  private get endText(): string {
    return this.stop.stopStrings.find((s) => s.length > 0) ?? '\n';
  }

  private endPart(turn: number): Part {
    return this.stop.stopTokenId !== null ? { id: this.stop.stopTokenId, completion: true, turn } : { text: this.endText, completion: true, turn };
  }

  /** Plain-format parts of a record (its last assistant turn is the one protected from truncation). */
  private plainParts(r: DataRecord): Part[] {
    if (r.kind === 'pair') {
      return [
        { text: plainPromptText(r.prompt), completion: false, turn: -1 },
        { text: plainCompletionText(r.completion), completion: true, turn: 0 },
        this.endPart(0),
      ];
    }
    if (r.kind === 'preference' || r.kind === 'text') throw new Error('unreachable');
    const parts: Part[] = [];
    let turn = 0;
    for (const m of r.messages) {
      if (m.role === 'assistant') {
        parts.push({ text: PLAIN_CHAT_ROLES.assistantPrompt, completion: false, turn: -1 });
        parts.push({ text: plainCompletionText(m.content), completion: m.train !== false, turn });
        parts.push({ ...this.endPart(turn), completion: m.train !== false });
        turn++;
      } else parts.push({ text: PLAIN_CHAT_ROLES[m.role](m.content), completion: false, turn: -1 });
    }
    return parts;
  }

  /** Chat-template parts: the template rendered turn by turn; each assistant reply after its generation prompt. */
  private templateParts(messages: Message[]): Part[] {
    const tk = this.tokenizer;
    const render = (ms: Message[], gen: boolean) => (ms.length ? tk.applyChatTemplate(ms.map(({ role, content }) => ({ role, content })), { addGenerationPrompt: gen }) : '');
    const parts: Part[] = [];
    let done = '';
    let turn = 0;
    messages.forEach((m, i) => {
      const upto = render(messages.slice(0, i + 1), false);
      if (m.role === 'assistant') {
        const gen = render(messages.slice(0, i), true);
        if (!gen.startsWith(done) || !upto.startsWith(gen)) throw new TemplateError('the chat template does not render conversations turn by turn (a later turn changes earlier text): use the plain format');
        if (gen.length > done.length) parts.push({ text: gen.slice(done.length), completion: false, turn: -1 });
        parts.push({ text: upto.slice(gen.length), completion: m.train !== false, turn });
        turn++;
      } else {
        if (!upto.startsWith(done)) throw new TemplateError('the chat template does not render conversations turn by turn (a later turn changes earlier text): use the plain format');
        parts.push({ text: upto.slice(done.length), completion: false, turn: -1 });
      }
      done = upto;
    });
    return parts.filter((p) => !('text' in p) || p.text.length > 0);
  }

  /** Encodes text the way the chat template expects (BOS only when the template did not write it). */
  private encodeTemplateText(text: string): number[] {
    const tk = this.tokenizer;
    const startsWithBos = tk.bosToken !== null && tk.bosToken.length > 0 && text.startsWith(tk.bosToken);
    return tk.encode(text, { addBos: tk.addBosDefault && !startsWithBos });
  }

  /** Token ids of parts; text runs between id parts are encoded whole, boundaries by common prefix. */
  private tokenize(parts: Part[], chatTemplate: boolean): Tokenized {
    const out: Tokenized = { ids: [], completion: [], turn: [] };
    let i = 0;
    let firstRun = true;
    while (i < parts.length) {
      const p = parts[i]!;
      if ('id' in p) {
        out.ids.push(p.id);
        out.completion.push(p.completion);
        out.turn.push(p.turn);
        i++;
        continue;
      }
      const run: (Part & { text: string })[] = [];
      while (i < parts.length && 'text' in parts[i]!) run.push(parts[i++] as Part & { text: string });
      const enc = (t: string) => (chatTemplate ? this.encodeTemplateText(t) : this.tokenizer.encode(t, { addBos: firstRun ? undefined : false }));
      let text = '';
      const ends: string[] = [];
      for (const r of run) {
        text += r.text;
        ends.push(text);
      }
      const ids = enc(text);
      let start = 0;
      run.forEach((r, k) => {
        const end = k === run.length - 1 ? ids.length : Math.max(start, lcp(enc(ends[k]!), ids));
        for (let t = start; t < end; t++) {
          out.ids.push(ids[t]!);
          out.completion.push(r.completion);
          out.turn.push(r.turn);
        }
        start = end;
      });
      firstRun = false;
    }
    return out;
  }

  /** Makes every trained reply end with the stop token (chat templates bring their own end marker). */
  private fixTemplateEnds(t: Tokenized): Tokenized {
    const stopId = this.stop.stopTokenId;
    const eos = this.tokenizer.eosId;
    const out: Tokenized = { ids: [], completion: [], turn: [] };
    for (let i = 0; i < t.ids.length; ) {
      const turn = t.turn[i]!;
      let j = i;
      while (j < t.ids.length && t.turn[j] === turn) j++;
      let ids = t.ids.slice(i, j);
      if (turn >= 0) {
        let end: number[] = [];
        if (stopId !== null) {
          if (eos !== null && eos !== stopId) ids = ids.map((id) => (id === eos ? stopId : id));
          if (!ids.includes(stopId)) end = [stopId];
        } else {
          const tail = this.textTail(this.endText);
          if (!tail.every((x, k) => ids[ids.length - tail.length + k] === x)) end = tail;
        }
        ids = [...ids, ...end];
      }
      for (const id of ids) {
        out.ids.push(id);
        out.completion.push(t.completion[i]!);
        out.turn.push(turn);
      }
      i = j;
    }
    return out;
  }

  private textTail(text: string): number[] {
    return tokensAfterText(this.tokenizer, text);
  }

  /** Full token sequence of a record with its flags (before truncation). */
  private sequence(r: DataRecord): { tok: Tokenized; format: 'chat-template' | 'plain' } {
    const format = this.formatOf(r);
    if (format === 'chat-template' && r.kind === 'chat') return { tok: this.fixTemplateEnds(this.tokenize(this.templateParts(r.messages), true)), format };
    if (format === 'chat-template' && r.kind === 'pair') {
      const msgs: Message[] = [
        { role: 'user', content: r.prompt },
        { role: 'assistant', content: r.completion },
      ];
      return { tok: this.fixTemplateEnds(this.tokenize(this.templateParts(msgs), true)), format };
    }
    return { tok: this.tokenize(this.plainParts(r), false), format: 'plain' };
  }

  /** Both sides of a preference pair; fails when either side cannot be encoded (named in the message). */
  encodePreference(r: PreferenceRecord): PreferenceEncodeResult {
    // Only the final reply counts (whatever lossOn says): DPO's log-probabilities are those of the reply.
    const [c, j] = preferenceSides(r).map((x) => this.encode(x, { lastReplyOnly: true }));
    if (!c!.ok) return { ok: false, code: c!.code, message: `chosen reply: ${c!.message}` };
    if (!j!.ok) return { ok: false, code: j!.code, message: `rejected reply: ${j!.message}` };
    return { ok: true, chosen: c!.example, rejected: j!.example };
  }

  /** One record as a training sequence; `lastReplyOnly` weights only its final reply (DPO's sides), whatever lossOn says. */
  encode(r: DataRecord, o: { lastReplyOnly?: boolean } = {}): EncodeResult {
    if (r.kind === 'preference') return { ok: false, code: 'unsupported', message: 'a preference pair trains with DPO (encodePreference), not as one sequence' };
    if (r.kind === 'text') return { ok: false, code: 'unsupported', message: 'plain text is packed into windows (src/data/text.ts), not encoded record by record' };
    let seq: { tok: Tokenized; format: 'chat-template' | 'plain' };
    try {
      seq = this.sequence(r);
    } catch (e) {
      const msg = (e as Error).message;
      return { ok: false, code: 'template-error', message: e instanceof TemplateError || msg.startsWith('chat template') ? msg : `chat template: ${msg}` };
    }
    const { ids, completion, turn } = seq.tok;
    const L = ids.length;
    const completionTokens = completion.filter(Boolean).length;
    // The last trained reply is protected from truncation.
    let lastTurn = -1;
    for (let i = 0; i < L; i++) if (completion[i] && turn[i]! > lastTurn) lastTurn = turn[i]!;
    const trained = o.lastReplyOnly ? completion.map((c, i) => c && turn[i] === lastTurn) : this.lossOn === 'all' ? completion.map(() => true) : completion;
    const firstProtected = lastTurn >= 0 ? turn.indexOf(lastTurn) : L;
    let cut = 0;
    let keepHead = 0;
    const limit = this.maxSeqLen + 1;
    if (L > limit) {
      cut = L - limit;
      keepHead = ids[0] === this.tokenizer.bosId ? 1 : 0;
      if (keepHead + cut > firstProtected) {
        const reply = L - firstProtected;
        return {
          ok: false,
          code: 'too-long',
          fullLength: L,
          message: `the example is ${L} tokens and its last reply alone is ${reply} (with the end token): more than the max sequence length ${this.maxSeqLen} allows, even with the whole prompt cut`,
        };
      }
    }
    const keep = (a: number[] | boolean[]) => (cut ? [...a.slice(0, keepHead), ...a.slice(keepHead + cut)] : a.slice());
    const fullIds = keep(ids) as number[];
    const fullTrained = keep(trained) as boolean[];
    if (fullIds.length < 2) return { ok: false, code: 'too-long', message: 'the example has fewer than 2 tokens' };
    const example: TrainingExample = {
      input: fullIds.slice(0, -1),
      target: fullIds.slice(1),
      weight: fullTrained.slice(1).map((t) => (t ? 1 : 0)),
      line: r.line,
      truncated: cut,
      fullLength: L,
      completionTokens,
      promptTokens: L - completionTokens,
      format: seq.format,
    };
    return { ok: true, example };
  }

  /** The prompt text the model continues at inference for a pair/chat (for generation and evaluation). */
  promptText(r: Pick<DataRecord & { kind: 'pair' }, 'prompt'> | { messages: Message[] }): string {
    if ('prompt' in r) {
      if (this.template === 'chat-template') return this.tokenizer.applyChatTemplate([{ role: 'user', content: r.prompt }], { addGenerationPrompt: true });
      return plainPromptText(r.prompt);
    }
    if (this.template !== 'plain' && this.tokenizer.hasChatTemplate) return this.tokenizer.applyChatTemplate(r.messages.map(({ role, content }) => ({ role, content })), { addGenerationPrompt: true });
    return r.messages.map((m) => (m.role === 'assistant' ? `${PLAIN_CHAT_ROLES.assistantPrompt}${plainCompletionText(m.content)}` : PLAIN_CHAT_ROLES[m.role](m.content))).join('') + PLAIN_CHAT_ROLES.assistantPrompt;
  }

  /**
   * Prompt token ids for generation: exactly the tokens that precede the reply in training. For a plain
   * chat history, earlier replies end with the stop token as in training.
   */
  promptIds(r: Pick<DataRecord & { kind: 'pair' }, 'prompt'> | { messages: Message[] }): number[] {
    const chatTpl = 'messages' in r ? this.template !== 'plain' && this.tokenizer.hasChatTemplate : this.template === 'chat-template';
    if (chatTpl) {
      // Earlier replies are encoded as in training (their end marker replaced by the stop token).
      const messages: Message[] = 'messages' in r ? r.messages : [{ role: 'user', content: r.prompt }];
      const parts = this.templateParts(messages);
      const done = parts.map((p) => ('text' in p ? p.text : '')).join('');
      const gen = this.promptText(r);
      if (!gen.startsWith(done)) return this.encodeTemplateText(gen);
      parts.push({ text: gen.slice(done.length), completion: false, turn: -1 });
      return this.fixTemplateEnds(this.tokenize(parts, true)).ids;
    }
    if ('prompt' in r) return this.tokenizer.encode(plainPromptText(r.prompt));
    const parts = this.plainParts({ kind: 'chat', messages: r.messages, line: 0 });
    parts.push({ text: PLAIN_CHAT_ROLES.assistantPrompt, completion: false, turn: -1 });
    return this.tokenize(parts, false).ids;
  }

  /** The whole text of a record as encoded (stop tokens not included). */
  renderedText(r: DataRecord): string {
    if (r.kind === 'text') return r.text;
    const messages: Message[] =
      r.kind === 'chat' ? r.messages : r.kind === 'pair' ? [{ role: 'user', content: r.prompt }, { role: 'assistant', content: r.completion }] : [...r.prompt, { role: 'assistant', content: r.chosen.length > r.rejected.length ? r.chosen : r.rejected }];
    if (r.kind !== 'preference' && this.formatOf(r) === 'chat-template') return this.tokenizer.applyChatTemplate(messages.map(({ role, content }) => ({ role, content })));
    if (r.kind === 'pair') return plainPromptText(r.prompt) + plainCompletionText(r.completion) + (this.stop.stopTokenId === null ? this.endText : '');
    return this.plainParts({ kind: 'chat', messages, line: r.line })
      .map((p) => ('text' in p ? p.text : ''))
      .join('');
  }

  /**
   * Upper bound on a record's token count without tokenizing: every token covers at least one byte,
   * except special tokens, stop ids and one dummy-prefix space per encoded run (at most 2 per part).
   */
  lengthBound(r: DataRecord): number {
    let text: string;
    try {
      text = this.renderedText(r);
    } catch {
      return Infinity;
    }
    const parts = r.kind === 'pair' || r.kind === 'text' ? 3 : (r.kind === 'chat' ? r.messages.length : r.prompt.length + 1) * 3;
    return new TextEncoder().encode(text).byteLength + 2 * parts + 2;
  }
}

class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Encodes a list of records; failures are returned with their lines (nothing is dropped silently). */
export function encodeRecords(encoder: RecordEncoder, records: DataRecord[]): { examples: TrainingExample[]; failures: { line: number; code: string; message: string }[] } {
  const examples: TrainingExample[] = [];
  const failures: { line: number; code: string; message: string }[] = [];
  for (const r of records) {
    const e = encoder.encode(r);
    if (e.ok) examples.push(e.example);
    else failures.push({ line: r.line, code: e.code, message: e.message });
  }
  return { examples, failures };
}
