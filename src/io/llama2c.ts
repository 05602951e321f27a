// Converter from Karpathy's llama2.c files (model .bin + tokenizer .bin) to a standard Hugging Face
// Llama folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// generation_config.json). Pure TypeScript (no fs, no DOM): runs in a Web Worker and in Node.
//
// Checkpoint formats read:
//  - legacy "version 0": 7 x int32 header `dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len`
//    (vocab_size < 0 means an untied classifier), then float32 arrays token_embedding, rms_att, wq, wk, wv,
//    wo, rms_ffn, w1, w2, w3, rms_final, freq_cis_real, freq_cis_imag (legacy RoPE tables, skipped), [wcls].
//  - "version 1" (export.py --version 1): 256-byte header (magic "ak42", version 1, the same 7 ints,
//    uint8 shared_classifier), then float32 rms_att, rms_ffn, rms_final, token_embedding, wq, wk, wv, wo,
//    w1, w2, w3, [wcls]. (Version 2 is int8-quantized and is rejected with a clear message.)
// Matrices are row-major [out][in] (y = W x), which is also Hugging Face's nn.Linear layout.
//
// RoPE: llama2.c rotates interleaved pairs (x[2i], x[2i+1]) inside each head; HF Llama rotates halves
// (x[i], x[i + head_dim/2]). As in HF's convert_llama_weights_to_hf.py, the q/k projection rows are
// permuted per head so that the HF model computes the same attention scores.
//
// Tokenizer (llama2.c tokenizer.bin): int32 max_token_length, then per token float32 score, int32 byte
// length, raw bytes. It becomes a SentencePiece-style BPE tokenizer.json (byte_fallback, "▁" for space,
// merges derived from vocab + scores; see buildTokenizerJson).

import { writeSafetensors, type TensorToWrite } from './safetensors';

/** Bump when the converter's output changes (test caches key on it). */
export const LLAMA2C_CONVERTER_VERSION = 1;

export class Llama2cError extends Error {
  override name = 'Llama2cError';
}

export interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  headDim: number;
  /** true when the classifier is tied to the token embedding (header vocab_size > 0). */
  sharedClassifier: boolean;
  /** 0 = legacy header, 1 = "ak42" fp32 header. */
  version: 0 | 1;
}

export interface Llama2cLayer {
  rmsAtt: Float32Array; // [dim]
  wq: Float32Array; // [dim][dim]  (interleaved RoPE layout, as stored)
  wk: Float32Array; // [kvDim][dim]
  wv: Float32Array; // [kvDim][dim]
  wo: Float32Array; // [dim][dim]
  rmsFfn: Float32Array; // [dim]
  w1: Float32Array; // [hidden][dim]  gate
  w2: Float32Array; // [dim][hidden]  down
  w3: Float32Array; // [hidden][dim]  up
}

export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  tokEmb: Float32Array; // [vocab][dim]
  layers: Llama2cLayer[];
  rmsFinal: Float32Array; // [dim]
  /** The untied classifier [vocab][dim], or null when tied to tokEmb. */
  wcls: Float32Array | null;
  /** Trainable parameters (legacy RoPE tables and the tied classifier not counted). */
  nParams: number;
}

export interface Llama2cTokenizer {
  maxTokenLength: number;
  /** Raw bytes of each piece (space is a real 0x20 byte here). */
  pieces: Uint8Array[];
  scores: Float32Array;
}

const MAGIC_AK42 = 0x616b3432;
const V1_HEADER_BYTES = 256;

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

/** Parses a llama2.c checkpoint (legacy version 0, or version 1 fp32). Copies the weights out of `bytes`. */
export function parseLlama2cCheckpoint(bytes: Uint8Array): Llama2cCheckpoint {
  if (bytes.byteLength < 28) {
    throw new Llama2cError(`not a llama2.c checkpoint: file is ${bytes.byteLength} bytes, shorter than the 28-byte header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let version: 0 | 1 = 0;
  let hdrOff = 0;
  let dataOff = 28;
  let shared: boolean | null = null;
  if (dv.getUint32(0, true) === MAGIC_AK42) {
    const v = bytes.byteLength >= 8 ? dv.getInt32(4, true) : -1;
    if (v === 2) {
      throw new Llama2cError('llama2.c version 2 checkpoints (int8 quantized, runq.c) are not supported: export with --version 0 or 1 (float32)');
    }
    if (v !== 1) throw new Llama2cError(`llama2.c checkpoint with magic "ak42" has unsupported version ${v} (supported: legacy version 0 and version 1)`);
    if (bytes.byteLength < V1_HEADER_BYTES) throw new Llama2cError(`llama2.c version 1 checkpoint is ${bytes.byteLength} bytes, shorter than its 256-byte header`);
    version = 1;
    hdrOff = 8;
    dataOff = V1_HEADER_BYTES;
    shared = bytes[8 + 28] !== 0;
  }
  const h = Array.from({ length: 7 }, (_, i) => dv.getInt32(hdrOff + 4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = h as [number, number, number, number, number, number, number];
  const vocabSize = Math.abs(rawVocab);
  if (shared === null) shared = rawVocab > 0;
  const headerText = `dim=${dim}, hidden_dim=${hiddenDim}, n_layers=${nLayers}, n_heads=${nHeads}, n_kv_heads=${nKvHeads}, vocab_size=${rawVocab}, seq_len=${seqLen}`;
  const sane =
    dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0 && vocabSize > 0 && seqLen > 0 &&
    dim <= 1 << 16 && hiddenDim <= 1 << 18 && nLayers <= 1024 && nHeads <= dim && vocabSize <= 1 << 22 && seqLen <= 1 << 22 &&
    dim % nHeads === 0 && nHeads % nKvHeads === 0 && (dim / nHeads) % 2 === 0;
  if (!sane) {
    throw new Llama2cError(`not a llama2.c checkpoint: implausible header (${headerText}) in a ${fmt(bytes.byteLength)}-byte file`);
  }
  const headDim = dim / nHeads;
  const kvDim = nKvHeads * headDim;
  const perLayer = 2 * dim + dim * dim * 2 + kvDim * dim * 2 + hiddenDim * dim * 3;
  const ropeTables = version === 0 ? seqLen * headDim : 0; // freq_cis_real + freq_cis_imag, (seq_len, head_dim/2) each
  const nFloats = vocabSize * dim + nLayers * perLayer + dim + ropeTables + (shared ? 0 : vocabSize * dim);
  const expected = dataOff + 4 * nFloats;
  if (bytes.byteLength !== expected) {
    throw new Llama2cError(
      `not a llama2.c checkpoint (or truncated / wrong format): header (${headerText}${version === 1 ? `, shared_classifier=${shared}` : ''}) ` +
        `implies ${fmt(expected)} bytes but the file has ${fmt(bytes.byteLength)} bytes`,
    );
  }
  let off = dataOff;
  const take = (n: number): Float32Array => {
    const out = new Float32Array(n);
    if ((bytes.byteOffset + off) % 4 === 0) {
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset + off, n));
    } else {
      new Uint8Array(out.buffer).set(bytes.subarray(off, off + 4 * n));
    }
    off += 4 * n;
    return out;
  };
  const perLayerArrays = (n: number): Float32Array[] => Array.from({ length: nLayers }, () => take(n));
  const config: Llama2cConfig = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen, headDim, sharedClassifier: shared, version };
  let tokEmb: Float32Array;
  let rmsAtt: Float32Array[];
  let rmsFfn: Float32Array[];
  let rmsFinal: Float32Array;
  if (version === 0) {
    tokEmb = take(vocabSize * dim);
    rmsAtt = perLayerArrays(dim);
  } else {
    rmsAtt = perLayerArrays(dim);
    rmsFfn = perLayerArrays(dim);
    rmsFinal = take(dim);
    tokEmb = take(vocabSize * dim);
  }
  const wq = perLayerArrays(dim * dim);
  const wk = perLayerArrays(kvDim * dim);
  const wv = perLayerArrays(kvDim * dim);
  const wo = perLayerArrays(dim * dim);
  if (version === 0) rmsFfn = perLayerArrays(dim);
  const w1 = perLayerArrays(hiddenDim * dim);
  const w2 = perLayerArrays(dim * hiddenDim);
  const w3 = perLayerArrays(hiddenDim * dim);
  if (version === 0) {
    rmsFinal = take(dim);
    off += 4 * ropeTables; // legacy freq_cis_real / freq_cis_imag: recomputed, not stored
  }
  const wcls = shared ? null : take(vocabSize * dim);
  if (off !== bytes.byteLength) throw new Llama2cError(`internal error: read ${off} of ${bytes.byteLength} bytes`);
  const layers: Llama2cLayer[] = [];
  for (let l = 0; l < nLayers; l++) {
    layers.push({ rmsAtt: rmsAtt[l]!, wq: wq[l]!, wk: wk[l]!, wv: wv[l]!, wo: wo[l]!, rmsFfn: rmsFfn![l]!, w1: w1[l]!, w2: w2[l]!, w3: w3[l]! });
  }
  const nParams = nFloats - ropeTables;
  return { config, tokEmb, layers, rmsFinal: rmsFinal!, wcls, nParams };
}

/** Parses a llama2.c tokenizer.bin for a model with `vocabSize` tokens. */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number): Llama2cTokenizer {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string) =>
    new Llama2cError(`not a llama2.c tokenizer for a ${vocabSize}-token model (${bytes.byteLength} bytes): ${why}`);
  if (bytes.byteLength < 4) throw bad('too short');
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) throw bad(`implausible max_token_length ${maxTokenLength}`);
  let off = 4;
  const pieces: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    if (off + 8 > bytes.byteLength) throw bad(`file ends at token ${i}`);
    scores[i] = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    off += 8;
    if (len < 0 || len > maxTokenLength || off + len > bytes.byteLength) throw bad(`token ${i} has bad length ${len} (max_token_length ${maxTokenLength})`);
    pieces.push(bytes.slice(off, off + len));
    off += len;
  }
  if (off !== bytes.byteLength) {
    throw bad(`${bytes.byteLength - off} bytes left after ${vocabSize} tokens (tokenizer made for a different vocab size?)`);
  }
  return { maxTokenLength, pieces, scores };
}

/**
 * HF `permute` of convert_llama_weights_to_hf.py: for each head, row 2i+j (interleaved RoPE pair i,
 * member j) moves to row j*(headDim/2)+i (rotate-half layout). `w` is [nHeads*headDim][cols].
 */
export function permuteRopeRows(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new Llama2cError(`cannot permute a ${w.length}-element matrix with ${cols} columns into ${nHeads} heads`);
  }
  const headDim = rows / nHeads;
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const src = (h * headDim + 2 * i + j) * cols;
        const dst = (h * headDim + j * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Tokenizer conversion

const SPACE_MARK = '\u2581'; // ▁
const RAW_BOS = '\n<s>\n';
const RAW_EOS = '\n</s>\n';

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

export interface TokenizerJsonInfo {
  tokenizerJson: Record<string, unknown>;
  bosId: number;
  eosId: number;
  unkId: number;
  nMerges: number;
}

/**
 * Builds a SentencePiece-style BPE tokenizer.json that encodes exactly like llama2.c's `encode`
 * (dummy-prefix space, per-character lookup with byte fallback, then repeatedly merge the adjacent
 * pair whose concatenation is in the vocab with the highest score).
 *
 * Merges: every split of a vocab piece into two vocab pieces is a merge (all splits are listed, as HF's
 * SentencePieceExtractor does, because greedy merging can reach a piece through more than one pair);
 * merges are ranked by the merged piece's score, highest first (ties: lower id first), and the splits of
 * one piece by the length of their left part, longest first.
 */
export function buildTokenizerJson(tok: Llama2cTokenizer): TokenizerJsonInfo {
  const dec = new TextDecoder('utf-8', { fatal: true });
  const n = tok.pieces.length;
  const names: string[] = new Array(n);
  const special: boolean[] = new Array(n).fill(false);
  let bosId = -1;
  let eosId = -1;
  let unkId = -1;
  for (let i = 0; i < n; i++) {
    let s: string;
    try {
      s = dec.decode(tok.pieces[i]!);
    } catch {
      throw new Llama2cError(`tokenizer piece ${i} is not valid UTF-8 (bytes ${Array.from(tok.pieces[i]!, (b) => b.toString(16)).join(' ')})`);
    }
    if (s === RAW_BOS || (s === '<s>' && bosId < 0)) {
      s = '<s>';
      bosId = i;
      special[i] = true;
    } else if (s === RAW_EOS || (s === '</s>' && eosId < 0)) {
      s = '</s>';
      eosId = i;
      special[i] = true;
    } else if (s === '<unk>') {
      unkId = i;
      special[i] = true;
    } else {
      s = s.replaceAll(' ', SPACE_MARK);
    }
    if (s.length === 0) throw new Llama2cError(`tokenizer piece ${i} is empty`);
    names[i] = s;
  }
  if (bosId < 0 || eosId < 0 || unkId < 0) {
    throw new Llama2cError(`tokenizer lacks ${[bosId < 0 && 'BOS ("\\n<s>\\n")', eosId < 0 && 'EOS ("\\n</s>\\n")', unkId < 0 && '<unk>'].filter(Boolean).join(', ')}`);
  }
  for (let b = 0; b < 256; b++) {
    const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (!names.includes(want)) throw new Llama2cError(`tokenizer lacks the byte-fallback piece ${want}`);
  }
  const vocab: Record<string, number> = {};
  const idOf = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (idOf.has(names[i]!)) throw new Llama2cError(`tokenizer piece ${i} ${JSON.stringify(names[i])} duplicates piece ${idOf.get(names[i]!)}`);
    idOf.set(names[i]!, i);
    vocab[names[i]!] = i;
  }
  // Only ordinary pieces take part in merges (not <unk>/<s>/</s>, not <0xXX> byte pieces).
  const mergeable = (i: number) => !special[i] && !BYTE_PIECE.test(names[i]!);
  const merges: { l: string; r: string; score: number; id: number }[] = [];
  for (let i = 0; i < n; i++) {
    if (!mergeable(i)) continue;
    const cps = Array.from(names[i]!);
    // Left part longest first.
    for (let k = cps.length - 1; k >= 1; k--) {
      const l = cps.slice(0, k).join('');
      const r = cps.slice(k).join('');
      const li = idOf.get(l);
      const ri = idOf.get(r);
      if (li !== undefined && ri !== undefined && mergeable(li) && mergeable(ri)) merges.push({ l, r, score: tok.scores[i]!, id: i });
    }
  }
  // Array.prototype.sort is stable: within one piece the split order above is kept.
  merges.sort((a, b) => b.score - a.score || a.id - b.id);
  const anySpace = merges.some((m) => m.l.includes(' ') || m.r.includes(' '));
  const mergeList: (string | [string, string])[] = merges.map((m) => (anySpace ? [m.l, m.r] : `${m.l} ${m.r}`));

  const added = [unkId, bosId, eosId]
    .sort((a, b) => a - b)
    .map((id) => ({ id, content: names[id]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const bos = names[bosId]!;
  const tokenizerJson: Record<string, unknown> = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE_MARK },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE_MARK },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE_MARK }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: names[unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: mergeList,
    },
  };
  return { tokenizerJson, bosId, eosId, unkId, nMerges: merges.length };
}

/** A simple user/assistant chat template (Jinja, HF convention). Assistant turns end with EOS. */
export const LLAMA2C_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] == 'system' %}{{ message['content'] + '\\n\\n' }}" +
  "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n' }}" +
  "{% elif message['role'] == 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}" +
  "{% else %}{{ raise_exception('Unsupported chat role: ' + message['role'] + ' (use system, user or assistant)') }}" +
  '{% endif %}{% endfor %}' +
  "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

// ---------------------------------------------------------------------------------------------------
// Folder conversion

export interface ConvertResult {
  files: Map<string, Uint8Array>;
  checkpoint: Llama2cCheckpoint;
  nMerges: number;
}

function jsonBytes(o: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');
}

/** Like convertLlama2c but also returns the parsed checkpoint and merge count. */
export function convertLlama2cDetailed(checkpoint: Uint8Array, tokenizer: Uint8Array, opts: { name?: string } = {}): ConvertResult {
  const ck = parseLlama2cCheckpoint(checkpoint);
  const c = ck.config;
  const tok = parseLlama2cTokenizer(tokenizer, c.vocabSize);
  const { tokenizerJson, bosId, eosId, unkId, nMerges } = buildTokenizerJson(tok);
  const names = tokenizerJson.model as { vocab: Record<string, number> };
  const nameOf = (id: number) => Object.keys(names.vocab).find((k) => names.vocab[k] === id)!;

  const config: Record<string, unknown> = {
    ...(opts.name ? { _name_or_path: opts.name } : {}),
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.seqLen,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    initializer_range: 0.02,
    pretraining_tp: 1,
    tie_word_embeddings: c.sharedClassifier,
    bos_token_id: bosId,
    eos_token_id: eosId,
    torch_dtype: 'float32',
    use_cache: true,
  };

  const t = (name: string, shape: number[], data: Float32Array): TensorToWrite => ({ name, dtype: 'F32', shape, data });
  const kvDim = c.nKvHeads * c.headDim;
  const tensors: TensorToWrite[] = [t('model.embed_tokens.weight', [c.vocabSize, c.dim], ck.tokEmb)];
  ck.layers.forEach((L, i) => {
    const p = `model.layers.${i}.`;
    tensors.push(
      t(p + 'input_layernorm.weight', [c.dim], L.rmsAtt),
      t(p + 'self_attn.q_proj.weight', [c.dim, c.dim], permuteRopeRows(L.wq, c.nHeads, c.dim)),
      t(p + 'self_attn.k_proj.weight', [kvDim, c.dim], permuteRopeRows(L.wk, c.nKvHeads, c.dim)),
      t(p + 'self_attn.v_proj.weight', [kvDim, c.dim], L.wv),
      t(p + 'self_attn.o_proj.weight', [c.dim, c.dim], L.wo),
      t(p + 'post_attention_layernorm.weight', [c.dim], L.rmsFfn),
      t(p + 'mlp.gate_proj.weight', [c.hiddenDim, c.dim], L.w1),
      t(p + 'mlp.up_proj.weight', [c.hiddenDim, c.dim], L.w3),
      t(p + 'mlp.down_proj.weight', [c.dim, c.hiddenDim], L.w2),
    );
  });
  tensors.push(t('model.norm.weight', [c.dim], ck.rmsFinal));
  if (ck.wcls) tensors.push(t('lm_head.weight', [c.vocabSize, c.dim], ck.wcls));

  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: nameOf(bosId),
    eos_token: nameOf(eosId),
    unk_token: nameOf(unkId),
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: c.seqLen,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: Object.fromEntries(
      [unkId, bosId, eosId]
        .sort((a, b) => a - b)
        .map((id) => [String(id), { content: nameOf(id), lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }]),
    ),
    chat_template: LLAMA2C_CHAT_TEMPLATE,
  };
  const generationConfig = { bos_token_id: bosId, eos_token_id: eosId };

  const files = new Map<string, Uint8Array>();
  files.set('config.json', jsonBytes(config));
  files.set('generation_config.json', jsonBytes(generationConfig));
  files.set('model.safetensors', writeSafetensors(tensors, { format: 'pt' }));
  files.set('tokenizer.json', jsonBytes(tokenizerJson));
  files.set('tokenizer_config.json', jsonBytes(tokenizerConfig));
  return { files, checkpoint: ck, nMerges };
}

/** Converts llama2.c checkpoint + tokenizer bytes into the files of a Hugging Face Llama folder. */
export function convertLlama2c(checkpoint: Uint8Array, tokenizer: Uint8Array, opts: { name?: string } = {}): Map<string, Uint8Array> {
  return convertLlama2cDetailed(checkpoint, tokenizer, opts).files;
}
