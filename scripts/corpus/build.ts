// `npm run corpus [-- --vocab 4096] [--heldout 0.02]`: tabtune's pretraining corpus, end to end and
// idempotent (every download and every product is skipped when it is already there).
//
//  1. download the pinned packages (npm pack / apt-get download) into .cache/corpus/dl/
//  2. unpack them (tar / dpkg-deb -x) into .cache/corpus/pkg/<source>/
//  3. extract documents, clean them (NFC, straight quotes, whitespace), drop repeated paragraphs
//     (hash of the lower-cased, space-collapsed paragraph; paragraphs of 40+ characters)
//  4. split by document: per source, documents ordered by a hash of their id go to held-out until
//     2% of that source's characters are there (at least one document)
//  5. .cache/corpus/text/{train,heldout}.jsonl ({source, id, text}), sources.json (source, version, license,
//     archive sha256, counts), spm_input.txt
//  6. tokenizer: SentencePiece BPE (spm_train) -> .cache/corpus/tokenizer-<V>/{spm.model,tokenizer.json,...}
//  7. token stream: .cache/corpus/tokens-<V>/{train,heldout}.bin (uint16 LE), every document as
//     <s> text </s>, plus index.json and sources.json with per-source token counts -- printed as a table.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TextTokenizer } from '../../src/tokenizer/tokenizer';
import { SOURCES, type Doc, type SourceDef } from './sources';
import { buildTokenizer } from './tokenizer';

const root = resolve(import.meta.dirname, '..', '..');
const cache = join(root, '.cache', 'corpus');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const VOCAB = Number(arg('vocab', '4096'));
const HELDOUT = Number(arg('heldout', '0.02'));
const log = (s: string) => process.stderr.write(s + '\n');
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

// ---------------------------------------------------------------------------------------------------
// 1-2. download and unpack

function archiveName(s: SourceDef): string {
  return s.registry === 'npm' ? `${s.pkg.replace(/^@/, '').replace('/', '-')}-${s.version}.tgz` : `${s.pkg}_${s.version.replace(/^\d+:/, '')}_all.deb`;
}

function fetchSource(s: SourceDef): { archive: string; dir: string } {
  const dl = join(cache, 'dl');
  mkdirSync(dl, { recursive: true });
  const archive = join(dl, archiveName(s));
  if (!existsSync(archive)) {
    log(`downloading ${s.registry} ${s.pkg}@${s.version}`);
    if (s.registry === 'npm') execFileSync('npm', ['pack', `${s.pkg}@${s.version}`, '--pack-destination', dl, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
    else {
      // apt-get download names the file itself; look it up afterwards (architecture may differ).
      execFileSync('apt-get', ['download', '-q', `${s.pkg}=${s.version}`], { cwd: dl, stdio: ['ignore', 'ignore', 'inherit'] });
      const got = readdirSync(dl).find((f) => f.startsWith(`${s.pkg}_`) && f.endsWith('.deb'));
      if (!got) throw new Error(`apt-get download ${s.pkg}=${s.version} produced no .deb`);
      if (join(dl, got) !== archive) renameSync(join(dl, got), archive);
    }
  }
  const dir = join(cache, 'pkg', s.name);
  const stamp = join(dir, '.unpacked');
  if (!existsSync(stamp)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    if (s.registry === 'npm') execFileSync('tar', ['xzf', archive, '-C', dir]);
    else execFileSync('dpkg-deb', ['-x', archive, dir]);
    writeFileSync(stamp, archiveName(s));
  }
  return { archive, dir };
}

// ---------------------------------------------------------------------------------------------------
// 3. cleaning and dedup

export function cleanText(t: string): string {
  return t
    .normalize('NFC')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2018\u2019\u201B\u2032]/g, "'")
    .replace(/[\u201C\u201D\u201F\u2033]/g, '"')
    .replace(/[\u00A0\u2000-\u200A\u202F\u205F\u3000]/g, ' ')
    .replace(/[\u200B-\u200D\uFEFF]/g, '')
    // eslint-disable-next-line no-control-regex -- control characters are what this line removes
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F]/g, ' ')
    .split('\n')
    .map((l) => l.replace(/[ \t]+/g, ' ').trim())
    .filter(Boolean)
    .join('\n');
}

const paraKey = (p: string) => sha(p.toLowerCase().replace(/\s+/g, ' '));

// ---------------------------------------------------------------------------------------------------

interface OutDoc extends Doc {
  source: string;
}

function splitSentences(para: string): string[] {
  const out: string[] = [];
  for (const s of para.split(/(?<=[.!?]["')\]]?)\s+(?=["'([]?[A-Z0-9])/)) {
    // Very long "sentences" are cut at spaces so spm_train does not skip them.
    for (let i = 0; i < s.length; ) {
      let end = Math.min(s.length, i + 2000);
      if (end < s.length) end = s.lastIndexOf(' ', end) > i ? s.lastIndexOf(' ', end) : end;
      out.push(s.slice(i, end).trim());
      i = end;
    }
  }
  return out.filter(Boolean);
}

function main(): void {
  const textDir = join(cache, 'text');
  mkdirSync(textDir, { recursive: true });
  const seen = new Set<string>();
  const train: OutDoc[] = [];
  const held: OutDoc[] = [];
  const meta: Record<string, unknown>[] = [];
  for (const s of SOURCES) {
    const { archive, dir } = fetchSource(s);
    const raw = s.extract(dir);
    let dropped = 0;
    let kept = 0;
    const docs: Doc[] = [];
    for (const d of raw) {
      const paras = cleanText(d.text)
        .split('\n')
        .filter((p) => {
          if (p.length < 40) return true;
          const k = paraKey(p);
          if (seen.has(k)) {
            dropped++;
            return false;
          }
          seen.add(k);
          kept++;
          return true;
        });
      const text = paras.join('\n');
      if (text.replace(/\s/g, '').length >= 20) docs.push({ id: d.id, text });
    }
    const chars = docs.reduce((a, d) => a + d.text.length, 0);
    const order = [...docs].sort((a, b) => (sha(`${s.name}:${a.id}`) < sha(`${s.name}:${b.id}`) ? -1 : 1));
    const heldIds = new Set<string>();
    let heldChars = 0;
    for (const d of order) {
      if (heldIds.size > 0 && heldChars >= HELDOUT * chars) break;
      heldIds.add(d.id);
      heldChars += d.text.length;
    }
    for (const d of docs) (heldIds.has(d.id) ? held : train).push({ source: s.name, ...d });
    const words = docs.reduce((a, d) => a + d.text.split(/\s+/).length, 0);
    meta.push({
      name: s.name,
      title: s.title,
      registry: s.registry,
      package: s.pkg,
      version: s.version,
      archive: archiveName(s),
      archive_sha256: sha(readFileSync(archive)),
      license: s.license,
      ...(s.notice ? { notice: s.notice } : {}),
      documents: docs.length,
      heldout_documents: heldIds.size,
      chars,
      heldout_chars: heldChars,
      words,
      duplicate_paragraphs_dropped: dropped,
      paragraphs_kept: kept,
    });
    log(`${s.name}: ${docs.length} docs, ${(chars / 1e6).toFixed(2)} M chars, ${dropped} repeated paragraphs dropped, held-out ${heldIds.size} docs`);
  }
  const jsonl = (docs: OutDoc[]) => docs.map((d) => JSON.stringify(d)).join('\n') + '\n';
  const trainText = jsonl(train);
  const heldText = jsonl(held);
  writeIfChanged(join(textDir, 'train.jsonl'), trainText);
  writeIfChanged(join(textDir, 'heldout.jsonl'), heldText);
  writeIfChanged(join(textDir, 'spm_input.txt'), train.flatMap((d) => d.text.split('\n').flatMap(splitSentences)).join('\n') + '\n');
  const corpusHash = sha(trainText + heldText).slice(0, 16);

  // 6. tokenizer (retrained only when the corpus changed)
  const tokDir = join(cache, `tokenizer-${VOCAB}`);
  const stampPath = join(tokDir, 'corpus.sha');
  if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') !== corpusHash) rmSync(tokDir, { recursive: true, force: true });
  log(`tokenizer: SentencePiece BPE, vocab ${VOCAB}`);
  const t0 = Date.now();
  const tk = buildTokenizer(join(textDir, 'spm_input.txt'), tokDir, VOCAB);
  writeFileSync(stampPath, corpusHash);
  if (tk.trained) log(`  spm_train took ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // 7. token streams
  const tokOut = join(cache, `tokens-${VOCAB}`);
  mkdirSync(tokOut, { recursive: true });
  const indexPath = join(tokOut, 'index.json');
  let index = existsSync(indexPath) ? (JSON.parse(readFileSync(indexPath, 'utf8')) as TokenIndex) : null;
  if (!index || index.corpus !== corpusHash) {
    const tok = TextTokenizer.fromHF(tk.tokenizerJson, tk.tokenizerConfig);
    const t1 = Date.now();
    index = { corpus: corpusHash, vocab: VOCAB, bos: tk.ids.bos, eos: tk.ids.eos, format: 'uint16le; each document is <s> tokens </s>', splits: {} };
    for (const [split, docs] of [['train', train], ['heldout', held]] as const) {
      const parts: Uint16Array[] = [];
      const perSource: Record<string, { docs: number; tokens: number; chars: number }> = {};
      let total = 0;
      for (const d of docs) {
        const ids = tok.encode(d.text, { addBos: false });
        const a = new Uint16Array(ids.length + 2);
        a[0] = tk.ids.bos;
        a.set(ids, 1);
        a[ids.length + 1] = tk.ids.eos;
        parts.push(a);
        total += a.length;
        const ps = (perSource[d.source] ??= { docs: 0, tokens: 0, chars: 0 });
        ps.docs++;
        ps.tokens += a.length;
        ps.chars += d.text.length;
      }
      const all = new Uint16Array(total);
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      writeFileSync(join(tokOut, `${split}.bin`), Buffer.from(all.buffer, all.byteOffset, all.byteLength));
      index.splits[split] = { tokens: total, sources: perSource };
    }
    writeFileSync(indexPath, JSON.stringify(index, null, 2) + '\n');
    log(`  encoded in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  }
  // sources.json: the vocabulary-independent record in text/, and with this tokenizer's counts in tokens-<V>/.
  writeFileSync(join(textDir, 'sources.json'), JSON.stringify({ corpus_sha256_16: corpusHash, heldout_fraction_target: HELDOUT, sources: meta }, null, 2) + '\n');
  for (const m of meta) {
    const tr = index.splits.train!.sources[m.name as string];
    const he = index.splits.heldout!.sources[m.name as string];
    Object.assign(m, { train_tokens: tr?.tokens ?? 0, heldout_tokens: he?.tokens ?? 0 });
  }
  writeFileSync(
    join(tokOut, 'sources.json'),
    JSON.stringify({ corpus_sha256_16: corpusHash, heldout_fraction_target: HELDOUT, tokenizer: { kind: 'sentencepiece-bpe', vocab_size: VOCAB, dir: `.cache/corpus/tokenizer-${VOCAB}` }, sources: meta }, null, 2) + '\n',
  );

  // The table.
  const pad = (s: string | number, n: number) => String(s).padStart(n);
  console.log(`${'source'.padEnd(8)} ${pad('docs', 7)} ${pad('chars', 11)} ${pad('words', 10)} ${pad('train tok', 11)} ${pad('heldout tok', 11)} ${pad('chars/tok', 9)}  license`);
  let sum = { docs: 0, chars: 0, words: 0, tr: 0, he: 0 };
  for (const m of meta) {
    const tr = m.train_tokens as number;
    const he = m.heldout_tokens as number;
    sum = { docs: sum.docs + (m.documents as number), chars: sum.chars + (m.chars as number), words: sum.words + (m.words as number), tr: sum.tr + tr, he: sum.he + he };
    console.log(`${String(m.name).padEnd(8)} ${pad(m.documents as number, 7)} ${pad(m.chars as number, 11)} ${pad(m.words as number, 10)} ${pad(tr, 11)} ${pad(he, 11)} ${pad(((m.chars as number) / (tr + he)).toFixed(2), 9)}  ${m.license}`);
  }
  console.log(`${'total'.padEnd(8)} ${pad(sum.docs, 7)} ${pad(sum.chars, 11)} ${pad(sum.words, 10)} ${pad(sum.tr, 11)} ${pad(sum.he, 11)} ${pad((sum.chars / (sum.tr + sum.he)).toFixed(2), 9)}`);
  console.log(`held-out: ${((100 * sum.he) / (sum.tr + sum.he)).toFixed(2)}% of tokens. Files in ${cache}`);
}

interface TokenIndex {
  corpus: string;
  vocab: number;
  bos: number;
  eos: number;
  format: string;
  splits: Record<string, { tokens: number; sources: Record<string, { docs: number; tokens: number; chars: number }> }>;
}

function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  writeFileSync(path, text);
}

main();
