// Text tokenizer: a thin, explicit wrapper over @huggingface/tokenizers (tokenizer.json) and
// @huggingface/jinja (chat templates). Plain TypeScript, no DOM: runs in a Web Worker and in Node.
//
// Conventions:
//  - encode() never lets the library's post_processor add special tokens; BOS is added here, explicitly,
//    when `addBos` (default: tokenizer_config `add_bos_token`, see defaultAddBos) and never EOS.
//  - decode() follows the tokenizer.json decoder; `clean_up_tokenization_spaces` comes from
//    tokenizer_config and defaults to false when absent (transformers' current default; the JS library
//    would default to true).

import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface StreamDecoder {
  /** Adds one token id; returns the text that became final (possibly ''). */
  push(id: number): string;
  /** Returns the rest of the text (incomplete UTF-8 shows as U+FFFD) and resets the decoder. */
  flush(): string;
}

type Json = Record<string, unknown>;

export class TokenizerLoadError extends Error {
  override name = 'TokenizerLoadError';
}

/** tokenizer_config's special-token fields are a string or an AddedToken dict ({content, ...}). */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

const SUPPORTED_MODELS = ['BPE', 'WordPiece', 'Unigram'];
const BOS_GUESSES = ['<s>', '<|begin_of_text|>', '<bos>', '<|startoftext|>'];
const EOS_GUESSES = ['</s>', '<|end_of_text|>', '<eos>', '<|endoftext|>', '<|im_end|>', '<|eot_id|>'];

export class TextTokenizer {
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  readonly unkId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly vocabSize: number;
  /** The default of encode()'s addBos. */
  readonly addBosDefault: boolean;
  /** Ids of the special added tokens (skipped by decode with skipSpecial). */
  readonly specialIds: ReadonlySet<number>;
  private readonly chatTemplateSource: string | null;
  private chatTemplate: Template | null = null;
  private readonly cleanUp: boolean;

  private constructor(
    private readonly tk: Tokenizer,
    tokenizerJson: Json,
    config: Json,
  ) {
    const vocab = tk.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    const added = (tokenizerJson.added_tokens as Json[] | undefined) ?? [];
    this.specialIds = new Set(added.filter((t) => t.special === true).map((t) => t.id as number));
    const specialContents = added.filter((t) => t.special === true).map((t) => t.content as string);

    const resolve = (key: string, guesses: string[] | null): [string | null, number | null] => {
      let tok = tokenContent(config[key]);
      if (tok === null && guesses && !(key in config)) tok = guesses.find((g) => specialContents.includes(g)) ?? null;
      if (tok === null) return [null, null];
      const id = tk.token_to_id(tok);
      return id === undefined ? [null, null] : [tok, id];
    };
    [this.bosToken, this.bosId] = resolve('bos_token', BOS_GUESSES);
    [this.eosToken, this.eosId] = resolve('eos_token', EOS_GUESSES);
    [this.padToken, this.padId] = resolve('pad_token', null);
    const model = tokenizerJson.model as Json;
    const unk = tokenContent(config.unk_token) ?? (typeof model.unk_token === 'string' ? model.unk_token : null);
    this.unkId = unk !== null ? (tk.token_to_id(unk) ?? null) : null;
    this.addBosDefault = TextTokenizer.defaultAddBos(tokenizerJson, config, this.bosToken) && this.bosId !== null;
    this.cleanUp = config.clean_up_tokenization_spaces === true;

    let tpl: unknown = config.chat_template;
    if (Array.isArray(tpl)) {
      // Several named templates: [{name, template}, ...]; use "default" (or the first).
      const list = tpl as { name?: string; template?: string }[];
      tpl = (list.find((t) => t.name === 'default') ?? list[0])?.template;
    }
    this.chatTemplateSource = typeof tpl === 'string' && tpl.length > 0 ? tpl : null;
  }

  /**
   * Builds a tokenizer from the parsed JSON of `tokenizer.json` and (optionally) `tokenizer_config.json`.
   * Throws TokenizerLoadError with a clear message when the tokenizer.json cannot be loaded.
   */
  static fromHF(tokenizerJson: object, tokenizerConfig: object | null): TextTokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || Array.isArray(tokenizerJson)) {
      throw new TokenizerLoadError('tokenizer.json must be a JSON object');
    }
    const tj = tokenizerJson as Json;
    const model = tj.model as Json | undefined;
    if (!model || typeof model !== 'object' || (model.type === undefined && model.vocab === undefined)) {
      throw new TokenizerLoadError('tokenizer.json has no "model" section (is this a tokenizer.json from a Hugging Face model folder?)');
    }
    if (!model.vocab || typeof model.vocab !== 'object') {
      throw new TokenizerLoadError(`tokenizer.json model (${String(model.type)}) has no vocab`);
    }
    if (model.type !== undefined && !SUPPORTED_MODELS.includes(String(model.type))) {
      throw new TokenizerLoadError(`unsupported tokenizer.json model type "${String(model.type)}" (supported: ${SUPPORTED_MODELS.join(', ')})`);
    }
    // The library iterates added_tokens and reads the optional sections; give them safe defaults.
    const normalized: Json = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tj,
      added_tokens: Array.isArray(tj.added_tokens) ? tj.added_tokens : [],
    };
    const config: Json = tokenizerConfig && typeof tokenizerConfig === 'object' ? { ...(tokenizerConfig as Json) } : {};
    let tk: Tokenizer;
    try {
      tk = new Tokenizer(normalized, config);
    } catch (e) {
      throw new TokenizerLoadError(`cannot load tokenizer.json (model type ${String(model.type ?? 'unknown')}): ${(e as Error).message}`, { cause: e });
    }
    return new TextTokenizer(tk, normalized, config);
  }

  /**
   * Whether encode() adds BOS by default: tokenizer_config `add_bos_token` when it is set; otherwise
   * true for Llama-class tokenizers or when the tokenizer.json post_processor starts with the BOS token
   * (e.g. Llama 3); false otherwise (GPT-2, Qwen, ...).
   */
  private static defaultAddBos(tj: Json, config: Json, bosToken: string | null): boolean {
    if (typeof config.add_bos_token === 'boolean') return config.add_bos_token;
    if (bosToken === null) return false;
    const cls = typeof config.tokenizer_class === 'string' ? config.tokenizer_class : '';
    if (/^(Llama|CodeLlama)Tokenizer/.test(cls)) return true;
    const firstSpecial = (pp: unknown): string | null => {
      if (!pp || typeof pp !== 'object') return null;
      const p = pp as Json;
      if (p.type === 'Sequence' && Array.isArray(p.processors)) {
        for (const q of p.processors) {
          const r = firstSpecial(q);
          if (r !== null) return r;
        }
        return null;
      }
      if (p.type === 'TemplateProcessing' && Array.isArray(p.single) && p.single.length > 0) {
        const first = p.single[0] as Json;
        const st = first.SpecialToken as Json | undefined;
        return st && typeof st.id === 'string' ? st.id : null;
      }
      return null;
    };
    return firstSpecial(tj.post_processor) === bosToken;
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplateSource !== null;
  }

  /** Token ids of `text`. Adds BOS when addBos (default addBosDefault); never adds EOS. */
  encode(text: string, opts: { addBos?: boolean } = {}): number[] {
    const addBos = opts.addBos ?? this.addBosDefault;
    const ids = text.length > 0 ? this.tk.encode(text, { add_special_tokens: false }).ids : [];
    if (addBos) {
      if (this.bosId === null) throw new Error('encode: addBos requested but this tokenizer has no BOS token');
      return [this.bosId, ...ids];
    }
    return ids;
  }

  /** Text of `ids`. skipSpecial (default false, as in HF) drops special added tokens (BOS, EOS, pad, ...). */
  decode(ids: number[], opts: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0) throw new Error(`decode: bad token id ${id}`);
    }
    return this.tk.decode(ids, { skip_special_tokens: opts.skipSpecial ?? false, clean_up_tokenization_spaces: this.cleanUp });
  }

  idToToken(id: number): string | null {
    return this.tk.id_to_token(id) ?? null;
  }

  tokenToId(tok: string): number | null {
    return this.tk.token_to_id(tok) ?? null;
  }

  /**
   * Renders the chat template (HF convention: variables messages, bos_token, eos_token,
   * add_generation_prompt; raise_exception(msg) throws). The result usually starts with the BOS text
   * when the template writes `{{ bos_token }}`: encode it with addBos false (or use encodeChat).
   */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (this.chatTemplateSource === null) throw new Error('this tokenizer has no chat_template (tokenizer_config.json)');
    if (this.chatTemplate === null) {
      try {
        this.chatTemplate = new Template(this.chatTemplateSource);
      } catch (e) {
        throw new Error(`cannot parse the chat template: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      // raise_exception(msg) is a jinja global that throws Error(msg).
      return this.chatTemplate.render({
        messages: messages.map((m) => ({ ...m })),
        bos_token: this.bosToken ?? '',
        eos_token: this.eosToken ?? '',
        pad_token: this.padToken ?? '',
        unk_token: this.unkId !== null ? (this.idToToken(this.unkId) ?? '') : '',
        add_generation_prompt: opts.addGenerationPrompt ?? false,
      });
    } catch (e) {
      throw new Error(`chat template: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Renders the chat template and encodes it, adding BOS only when the template did not write it. */
  encodeChat(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): number[] {
    const text = this.applyChatTemplate(messages, opts);
    const startsWithBos = this.bosToken !== null && this.bosToken.length > 0 && text.startsWith(this.bosToken);
    return this.encode(text, { addBos: this.addBosDefault && !startsWithBos });
  }

  /**
   * Incremental decoder for token streaming. Concatenating every push() and the final flush() gives
   * exactly decode(allIds, { skipSpecial }). Text is held back while it ends in an incomplete UTF-8
   * sequence (byte-fallback / byte-level tokens of one character), and, when the tokenizer cleans up
   * tokenization spaces, for the last 3 characters (" n't" style rewrites). The leading-space Strip of
   * SentencePiece decoders is handled by decoding in a sliding window whose first token is already emitted.
   *
   * `context` (the prompt's ids) makes it a continuation decoder: the output is then
   * decode(context + ids) minus decode(context), so a continuation keeps the space its first token
   * starts with ("The President said that" + " the") instead of having it stripped as the start of a text.
   */
  createStreamDecoder(skipSpecial = true, context: readonly number[] = []): StreamDecoder {
    const WINDOW = 8; // ids kept as left context once their text is out
    const hold = this.cleanUp ? 3 : 0;
    const dec = (ids: number[]) => this.decode(ids, { skipSpecial });
    const start = (): [number[], string] => {
      const c = context.slice(-WINDOW);
      return [c, c.length ? dec(c) : ''];
    };
    let [win, doneText] = start(); // decoding window, and the prefix of decode(win) already out

    const safeLength = (avail: string): number => {
      let end = avail.length;
      while (end > 0 && avail.charCodeAt(end - 1) === 0xfffd) end--; // maybe an incomplete character
      if (end < avail.length) return end; // hold the replacement chars and what follows
      end = Math.max(0, end - hold);
      if (end > 0) {
        const c = avail.charCodeAt(end - 1);
        if (c >= 0xd800 && c <= 0xdbff) end--; // never split a surrogate pair
      }
      return end;
    };

    return {
      push: (id: number): string => {
        win.push(id);
        const text = dec(win);
        if (!text.startsWith(doneText)) return ''; // not stable yet (should not happen for prefix-stable decoders)
        const avail = text.slice(doneText.length);
        const n = safeLength(avail);
        const out = avail.slice(0, n);
        doneText += out;
        // Slide the window: keep the last WINDOW ids when their decoded text still ends with the pending
        // (not yet emitted) text and has some emitted text in front of it (so a leading-space Strip or
        // any other start-of-text rule falls on text that is already out).
        if (win.length > 2 * WINDOW) {
          const pending = text.slice(doneText.length);
          const cand = win.slice(-WINDOW);
          const candText = dec(cand);
          if (candText.length > pending.length && candText.endsWith(pending)) {
            win = cand;
            doneText = candText.slice(0, candText.length - pending.length);
          }
        }
        return out;
      },
      flush: (): string => {
        const text = dec(win);
        const out = text.startsWith(doneText) ? text.slice(doneText.length) : '';
        [win, doneText] = start();
        return out;
      },
    };
  }
}
