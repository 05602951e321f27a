// Plain text for domain adaptation (unsupervised fine-tuning on notes, a manual, a book): how a .txt/.md
// file becomes records, how the held-out share is taken, and how the text is packed into training windows.
//
//   records   One TextRecord per paragraph (a block of non-blank lines), with the line it starts on and
//             the document it belongs to. A file is one document; a line that is only `<|endoftext|>` (or a
//             form feed) starts the next one (concatenated corpora).
//   split     A seeded held-out share of whole documents when at least one whole document fits in the share,
//             else of whole paragraphs: never the middle of one. Both sides keep the text's order.
//   packing   Each document is tokenized as the tokenizer does by default (BOS where it adds one), followed by
//             the end-of-document token (EOS); the documents are concatenated and cut into windows of seqLen
//             inputs (seqLen + 1 tokens, each window starting on the last token of the previous one, so every
//             token is predicted exactly once). Loss on every token: weight 1 everywhere.
// Plain TypeScript, no DOM: runs in a Web Worker and in Node.
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { shuffle } from '../util/random';
import type { TextRecord } from './types';

/** File extensions read as plain text whatever their content. */
export const TEXT_EXTENSIONS: readonly string[] = ['txt', 'md', 'markdown', 'text', 'rst'];

/** A line holding only this starts a new document (as in GPT-2-style concatenated corpora). */
export const DOCUMENT_SEPARATOR = '<|endoftext|>';

export function isTextFileName(name: string): boolean {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase() ?? '';
  return TEXT_EXTENSIONS.includes(ext);
}

const isSeparatorLine = (l: string) => l.trim() === DOCUMENT_SEPARATOR || (l.includes('\f') && l.replace(/\f/g, '').trim() === '');

/**
 * Paragraph records of decoded lines (`lines[i]` is physical line `firstLine + i`; null = a line that could
 * not be read, which ends a paragraph). `firstDoc` numbers the documents (several files: one after another).
 */
export function textRecords(lines: readonly (string | null)[], firstLine = 1, firstDoc = 0): { records: TextRecord[]; documents: number } {
  const records: TextRecord[] = [];
  let doc = firstDoc;
  let docHasText = false;
  let para: string[] = [];
  let start = 0;
  const flush = () => {
    if (para.length) records.push({ kind: 'text', text: para.join('\n'), line: start, doc });
    para = [];
  };
  lines.forEach((l, i) => {
    const line = firstLine + i;
    if (l !== null && isSeparatorLine(l)) {
      flush();
      if (docHasText) doc++;
      docHasText = false;
      return;
    }
    if (l === null || l.trim() === '') {
      flush();
      return;
    }
    if (!para.length) start = line;
    para.push(l.replace(/\s+$/, ''));
    docHasText = true;
  });
  flush();
  return { records, documents: records.length ? new Set(records.map((r) => r.doc)).size : 0 };
}

/** The documents of a list of paragraph records, in order: each document's paragraphs joined by a blank line. */
export function documentsOf(records: readonly TextRecord[]): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let doc: number | null = null;
  for (const r of records) {
    if (doc !== null && r.doc !== doc) {
      out.push(cur.join('\n\n'));
      cur = [];
    }
    doc = r.doc;
    cur.push(r.text);
  }
  if (cur.length) out.push(cur.join('\n\n'));
  return out;
}

export interface TextSplit {
  train: TextRecord[];
  val: TextRecord[];
  /** What was held out whole. */
  by: 'document' | 'paragraph';
}

/**
 * The held-out share: whole documents when `documents * valFraction >= 1`, else whole paragraphs;
 * round(n * valFraction) units (at least one when there are two or more and the share is above 0, never
 * all of them), chosen by a seeded shuffle. Both sides keep the order of the text.
 */
export function splitText(records: readonly TextRecord[], opts: { valFraction: number; seed: number }): TextSplit {
  const frac = opts.valFraction;
  if (!(frac >= 0 && frac < 1)) throw new Error(`valFraction must be in [0, 1), got ${frac}`);
  const docs = [...new Set(records.map((r) => r.doc))];
  const by: TextSplit['by'] = docs.length * frac >= 1 ? 'document' : 'paragraph';
  const units = by === 'document' ? docs : records.map((_, i) => i);
  const n = units.length;
  let want = Math.round(n * frac);
  if (n >= 2 && frac > 0) want = Math.max(1, want);
  want = Math.min(want, n - 1);
  const held = new Set(want > 0 ? shuffle(units, opts.seed).slice(0, want) : []);
  const inVal = (r: TextRecord, i: number) => held.has(by === 'document' ? r.doc : i);
  return { train: records.filter((r, i) => !inVal(r, i)), val: records.filter((r, i) => inVal(r, i)), by };
}

/** One training window: input, shifted target, weight 1 on every token. */
export interface TextWindow {
  input: number[];
  target: number[];
  weight: number[];
}

/** The token stream of documents: each one tokenized (BOS as the tokenizer adds it by default), then the end-of-document token. */
export function textTokenStream(tokenizer: Pick<TextTokenizer, 'encode' | 'eosId'>, documents: readonly string[]): number[] {
  const out: number[] = [];
  for (const d of documents) {
    for (const id of tokenizer.encode(d)) out.push(id);
    if (tokenizer.eosId !== null) out.push(tokenizer.eosId);
  }
  return out;
}

/** Cuts a token stream into windows of `seqLen` inputs (the last one may be shorter); every token after the first is a target exactly once. */
export function packWindows(stream: readonly number[], seqLen: number): TextWindow[] {
  if (!(seqLen >= 1)) throw new Error(`seqLen must be at least 1, got ${seqLen}`);
  const out: TextWindow[] = [];
  for (let s = 0; s + 1 < stream.length; s += seqLen) {
    const chunk = stream.slice(s, s + seqLen + 1);
    out.push({ input: chunk.slice(0, -1), target: chunk.slice(1), weight: new Array<number>(chunk.length - 1).fill(1) });
  }
  return out;
}

/** Paragraph records -> documents -> token stream -> windows. */
export function packText(tokenizer: Pick<TextTokenizer, 'encode' | 'eosId'>, records: readonly TextRecord[], seqLen: number): TextWindow[] {
  return packWindows(textTokenStream(tokenizer, documentsOf(records)), seqLen);
}

/** What the doctor says about a plain-text dataset (tokens and windows when a tokenizer was given). */
export interface TextReport {
  characters: number;
  documents: number;
  paragraphs: number;
  /** Tokens of the whole text as packed (BOS/EOS included); null without a tokenizer. */
  tokens: number | null;
  seqLen: number | null;
  windows: { train: number; val: number } | null;
  split: {
    by: 'document' | 'paragraph';
    train: { documents: number; paragraphs: number; characters: number; tokens: number | null };
    val: { documents: number; paragraphs: number; characters: number; tokens: number | null };
    /** Held-out share of the text's tokens (of its characters without a tokenizer). */
    share: number;
  };
}

/** The doctor's text section for a split (and, with a tokenizer, its token and window counts). */
export function textReport(split: TextSplit, o: { tokenizer?: Pick<TextTokenizer, 'encode' | 'eosId'>; seqLen?: number } = {}): TextReport {
  const side = (rs: TextRecord[]) => {
    const docs = documentsOf(rs);
    return {
      documents: docs.length,
      paragraphs: rs.length,
      characters: docs.reduce((a, d) => a + d.length, 0),
      stream: o.tokenizer ? textTokenStream(o.tokenizer, docs) : null,
    };
  };
  const t = side(split.train);
  const v = side(split.val);
  const seqLen = o.tokenizer && o.seqLen ? o.seqLen : null;
  const tokens = t.stream && v.stream ? t.stream.length + v.stream.length : null;
  const share = tokens !== null && tokens > 0 ? v.stream!.length / tokens : t.characters + v.characters > 0 ? v.characters / (t.characters + v.characters) : 0;
  return {
    characters: t.characters + v.characters,
    documents: new Set([...split.train, ...split.val].map((r) => r.doc)).size,
    paragraphs: split.train.length + split.val.length,
    tokens,
    seqLen,
    windows: seqLen && t.stream && v.stream ? { train: packWindows(t.stream, seqLen).length, val: packWindows(v.stream, seqLen).length } : null,
    split: {
      by: split.by,
      train: { documents: t.documents, paragraphs: t.paragraphs, characters: t.characters, tokens: t.stream?.length ?? null },
      val: { documents: v.documents, paragraphs: v.paragraphs, characters: v.characters, tokens: v.stream?.length ?? null },
      share,
    },
  };
}

/**
 * The opening of a held-out paragraph that Compare continues: its first `words` words (at most half of it),
 * and the rest as the text it actually goes on with.
 */
export function textOpening(r: TextRecord, words = 8): { opening: string; rest: string } {
  const parts = r.text.split(/(\s+)/);
  const wordCount = parts.filter((p) => p.trim() !== '').length;
  const take = Math.max(1, Math.min(words, Math.floor(wordCount / 2)));
  let seen = 0;
  let cut = parts.length;
  for (let i = 0; i < parts.length; i++) {
    if (parts[i]!.trim() !== '' && ++seen === take) {
      cut = i + 1;
      break;
    }
  }
  return { opening: parts.slice(0, cut).join(''), rest: parts.slice(cut).join('') };
}

/**
 * A cheap content check for a file with no telling extension: plain text when it does not look like a
 * delimited table (the first lines do not share the same number of a delimiter, at least one).
 */
export function looksLikeTable(headText: string, delimiter: string): boolean {
  const lines = headText.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '').slice(0, 6);
  if (!lines.length) return false;
  const count = (l: string) => {
    let n = 0;
    let q = false;
    for (const ch of l) {
      if (ch === '"') q = !q;
      else if (!q && ch === delimiter) n++;
    }
    return n;
  };
  const first = count(lines[0]!);
  if (first === 0) return false;
  // The last line of the head may be cut: compare the complete ones.
  const complete = lines.length > 2 ? lines.slice(0, -1) : lines;
  return complete.every((l) => count(l) === first) || lines.some((l) => l.includes('"'));
}

/**
 * Several plain-text files dropped at once as one dataset: each file one document (a DOCUMENT_SEPARATOR line
 * between them), named after them. Null unless there are two or more files and every one is plain text by its name.
 */
export function joinTextFiles(files: readonly File[]): File | null {
  if (files.length < 2 || !files.every((f) => isTextFileName(f.name))) return null;
  const parts: BlobPart[] = [];
  files.forEach((f, i) => parts.push(...(i ? [`\n\n${DOCUMENT_SEPARATOR}\n\n`] : []), f));
  const names = files.map((f) => f.name);
  const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')}, …` : names.join(', ');
  return new File(parts, `${files.length} text files (${shown}).txt`, { type: 'text/plain' });
}

/**
 * The doctor's plain-text report in one sentence: size in characters and tokens, documents and paragraphs, the
 * windows training packs it into, and what is held out (whole documents or paragraphs, share of the tokens).
 */
export function textSummary(t: TextReport): string {
  const n = new Intl.NumberFormat('en-US');
  const plural = (k: number, w: string) => `${n.format(k)} ${w}${k === 1 ? '' : 's'}`;
  const size = `${plural(t.characters, 'character')}${t.tokens !== null ? `, ${plural(t.tokens, 'token')}` : ''}`;
  const parts = `${plural(t.documents, 'document')}, ${plural(t.paragraphs, 'paragraph')}`;
  const windows = t.windows && t.seqLen ? `; ${plural(t.windows.train, 'training window')} of ${t.seqLen} tokens, ${n.format(t.windows.val)} held out` : '';
  const v = t.split.val;
  const held =
    v.paragraphs === 0
      ? 'nothing held out'
      : `held out: ${t.split.by === 'document' ? `${plural(v.documents, 'whole document')} (${plural(v.paragraphs, 'paragraph')})` : plural(v.paragraphs, 'whole paragraph')}, ${(t.split.share * 100).toFixed(1)}% of the ${t.tokens !== null ? 'tokens' : 'characters'}`;
  return `${size} in ${parts}${windows}; ${held}.`;
}
