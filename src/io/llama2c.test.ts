import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../util/random';
import { ensureReferenceHF, itReference, loadGolden, REFERENCE_ABSENT, REFERENCE_CHECKPOINT, REFERENCE_TOKENIZER, type Golden } from '../testing/reference';
import { TextTokenizer } from '../tokenizer/tokenizer';
import {
  convertLlama2c,
  convertLlama2cDetailed,
  Llama2cError,
  parseLlama2cCheckpoint,
  parseLlama2cTokenizer,
  permuteRopeRows,
  type Llama2cCheckpoint,
} from './llama2c';
import { SafetensorsFile } from './safetensors';

let ckBytes: Uint8Array;
let tokBytes: Uint8Array;
let ck: Llama2cCheckpoint;
let golden: Golden;

// The real stories260K checkpoint (../shared) for the checks against it; the synthetic ones need nothing.
beforeAll(async () => {
  if (REFERENCE_ABSENT) return;
  ckBytes = new Uint8Array(await readFile(REFERENCE_CHECKPOINT));
  tokBytes = new Uint8Array(await readFile(REFERENCE_TOKENIZER));
  ck = parseLlama2cCheckpoint(ckBytes);
  golden = loadGolden();
});

const json = (b: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(b!)) as Record<string, unknown>;

/** Uniform in [-0.5, 0.5). */
function rng(seed: number): () => number {
  const r = seededRandom(seed);
  return () => r() - 0.5;
}

/** y = W x, W row-major [rows][cols]. */
function matvec(w: Float32Array, x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c]! * x[c]!;
    y[r] = s;
  }
  return y;
}

/** llama2.c RoPE: interleaved pairs (2i, 2i+1) within each head. */
function ropeInterleaved(v: Float64Array, headDim: number, pos: number, theta = 10000): Float64Array {
  const out = Float64Array.from(v);
  for (let h = 0; h < v.length / headDim; h++) {
    for (let i = 0; i < headDim / 2; i++) {
      const ang = pos * theta ** (-(2 * i) / headDim);
      const a = v[h * headDim + 2 * i]!;
      const b = v[h * headDim + 2 * i + 1]!;
      out[h * headDim + 2 * i] = a * Math.cos(ang) - b * Math.sin(ang);
      out[h * headDim + 2 * i + 1] = a * Math.sin(ang) + b * Math.cos(ang);
    }
  }
  return out;
}

/** HF Llama RoPE: rotate_half, pairs (i, i + headDim/2) within each head. */
function ropeHalf(v: Float64Array, headDim: number, pos: number, theta = 10000): Float64Array {
  const out = Float64Array.from(v);
  const half = headDim / 2;
  for (let h = 0; h < v.length / headDim; h++) {
    for (let i = 0; i < half; i++) {
      const ang = pos * theta ** (-(2 * i) / headDim);
      const a = v[h * headDim + i]!;
      const b = v[h * headDim + i + half]!;
      out[h * headDim + i] = a * Math.cos(ang) - b * Math.sin(ang);
      out[h * headDim + i + half] = b * Math.cos(ang) + a * Math.sin(ang);
    }
  }
  return out;
}

function headDot(a: Float64Array, ha: number, b: Float64Array, hb: number, hd: number): number {
  let s = 0;
  for (let d = 0; d < hd; d++) s += a[ha * hd + d]! * b[hb * hd + d]!;
  return s;
}

/** A tiny HF-layout Llama forward (float64 accumulation) over a converted folder's tensors. */
class HFLlama {
  private readonly kc: Float64Array[][] = [];
  private readonly vc: Float64Array[][] = [];
  constructor(
    private readonly st: SafetensorsFile,
    private readonly cfg: Record<string, number>,
  ) {
    for (let l = 0; l < cfg.num_hidden_layers!; l++) {
      this.kc.push([]);
      this.vc.push([]);
    }
  }
  private w = new Map<string, Float32Array>();
  private get(name: string): Float32Array {
    let t = this.w.get(name);
    if (!t) this.w.set(name, (t = this.st.getFloat32(name)));
    return t;
  }
  private rms(x: Float64Array, g: Float32Array): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const k = 1 / Math.sqrt(ss / x.length + this.cfg.rms_norm_eps!);
    return x.map((v, i) => v * k * g[i]!);
  }
  forward(token: number, pos: number): Float64Array {
    const c = this.cfg;
    const D = c.hidden_size!, H = c.num_attention_heads!, KV = c.num_key_value_heads!, F = c.intermediate_size!, V = c.vocab_size!;
    const hd = D / H;
    const emb = this.get('model.embed_tokens.weight');
    let x = Float64Array.from(emb.subarray(token * D, (token + 1) * D));
    for (let l = 0; l < c.num_hidden_layers!; l++) {
      const p = `model.layers.${l}.`;
      const xb = this.rms(x, this.get(p + 'input_layernorm.weight'));
      const q = ropeHalf(matvec(this.get(p + 'self_attn.q_proj.weight'), xb, D, D), hd, pos, c.rope_theta);
      const k = ropeHalf(matvec(this.get(p + 'self_attn.k_proj.weight'), xb, KV * hd, D), hd, pos, c.rope_theta);
      const v = matvec(this.get(p + 'self_attn.v_proj.weight'), xb, KV * hd, D);
      this.kc[l]![pos] = k;
      this.vc[l]![pos] = v;
      const att = new Float64Array(D);
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / (H / KV));
        const s = Array.from({ length: pos + 1 }, (_, t) => headDot(q, h, this.kc[l]![t]!, kh, hd) / Math.sqrt(hd));
        const m = Math.max(...s);
        const e = s.map((z) => Math.exp(z - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let t = 0; t <= pos; t++) {
          for (let d = 0; d < hd; d++) att[h * hd + d]! += (e[t]! / sum) * this.vc[l]![t]![kh * hd + d]!;
        }
      }
      const o = matvec(this.get(p + 'self_attn.o_proj.weight'), att, D, D);
      x = x.map((v0, i) => v0 + o[i]!);
      const xb2 = this.rms(x, this.get(p + 'post_attention_layernorm.weight'));
      const g = matvec(this.get(p + 'mlp.gate_proj.weight'), xb2, F, D);
      const u = matvec(this.get(p + 'mlp.up_proj.weight'), xb2, F, D);
      const hmid = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]!);
      const dn = matvec(this.get(p + 'mlp.down_proj.weight'), hmid, D, F);
      x = x.map((v0, i) => v0 + dn[i]!);
    }
    const xf = this.rms(x, this.get('model.norm.weight'));
    const head = this.st.has('lm_head.weight') ? this.get('lm_head.weight') : emb;
    return matvec(head, xf, V, D);
  }
}

/** Builds a small synthetic llama2.c checkpoint (legacy version 0, or version 1). */
function synthCheckpoint(opts: { version: 0 | 1; shared: boolean; seed: number }) {
  const dim = 16, hidden = 24, L = 2, H = 4, KV = 2, V = 300, S = 32;
  const hd = dim / H, kvd = KV * hd;
  const r = rng(opts.seed);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r());
  const w = {
    emb: arr(V * dim),
    rmsAtt: arr(L * dim), wq: arr(L * dim * dim), wk: arr(L * kvd * dim), wv: arr(L * kvd * dim), wo: arr(L * dim * dim),
    rmsFfn: arr(L * dim), w1: arr(L * hidden * dim), w2: arr(L * dim * hidden), w3: arr(L * hidden * dim),
    rmsFinal: arr(dim), freq: arr(S * hd), wcls: arr(V * dim),
  };
  const ints = [dim, hidden, L, H, KV, opts.shared ? V : -V, S];
  const parts: Float32Array[] =
    opts.version === 0
      ? [w.emb, w.rmsAtt, w.wq, w.wk, w.wv, w.wo, w.rmsFfn, w.w1, w.w2, w.w3, w.rmsFinal, w.freq]
      : [w.rmsAtt, w.rmsFfn, w.rmsFinal, w.emb, w.wq, w.wk, w.wv, w.wo, w.w1, w.w2, w.w3];
  if (!opts.shared) parts.push(w.wcls);
  const headerBytes = opts.version === 0 ? 28 : 256;
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(headerBytes + 4 * n);
  const dv = new DataView(out.buffer);
  let off = 0;
  if (opts.version === 1) {
    dv.setUint32(0, 0x616b3432, true);
    dv.setInt32(4, 1, true);
    off = 8;
  }
  ints.forEach((v, i) => dv.setInt32(off + 4 * i, opts.version === 1 ? Math.abs(v) : v, true));
  if (opts.version === 1) out[8 + 28] = opts.shared ? 1 : 0;
  off = headerBytes;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer), off);
    off += p.byteLength;
  }
  return { bytes: out, w, dims: { dim, hidden, L, H, KV, V, S } };
}

/** A synthetic llama2.c tokenizer.bin with `V` pieces: specials, 256 bytes, then a few letters/merges. */
function synthTokenizer(V: number): Uint8Array {
  const enc = new TextEncoder();
  const pieces: [string, number][] = [['<unk>', 0], ['\n<s>\n', 0], ['\n</s>\n', 0]];
  for (let b = 0; b < 256; b++) pieces.push([`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, 0]);
  const letters = ' abcdefghijklmnopqrstuvwxyz'.split('');
  const merged = [' a', 'ab', ' ab', 'cd', 'abcd'];
  merged.forEach((m, i) => pieces.push([m, -i]));
  letters.forEach((c, i) => pieces.push([c, -100 - i]));
  let k = 0;
  while (pieces.length < V) pieces.push([`X${k++}`, -1000 - k]);
  const chunks = pieces.map(([s, sc]) => {
    const b = enc.encode(s);
    const c = new Uint8Array(8 + b.length);
    new DataView(c.buffer).setFloat32(0, sc, true);
    new DataView(c.buffer).setInt32(4, b.length, true);
    c.set(b, 8);
    return c;
  });
  const total = 4 + chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setInt32(0, 16, true);
  let off = 4;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

describe('llama2.c checkpoint parsing', () => {
  itReference('reads the stories260K header and weights', () => {
    expect(ck.config).toEqual({
      dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, headDim: 8, sharedClassifier: true, version: 0,
    });
    expect(ck.nParams).toBe(260032);
    expect(ck.layers).toHaveLength(5);
    expect(ck.layers[0]!.wk.length).toBe(32 * 64);
    expect(ck.layers[4]!.w2.length).toBe(64 * 172);
    expect(ck.wcls).toBeNull();
    // First float after the header is token_embedding[0][0]; rms_final is just before the RoPE tables.
    const dv = new DataView(ckBytes.buffer, ckBytes.byteOffset);
    expect(ck.tokEmb[0]).toBe(dv.getFloat32(28, true));
    const rmsFinalOff = 28 + 4 * (264128 - 4096 - 64);
    expect(ck.rmsFinal[0]).toBe(dv.getFloat32(rmsFinalOff, true));
  });

  itReference('rejects a cut stories260K checkpoint, with expected vs actual size', () => {
    expect(() => parseLlama2cCheckpoint(ckBytes.subarray(0, ckBytes.length - 4))).toThrow(
      /implies 1,056,540 bytes but the file has 1,056,536 bytes/,
    );
    expect(() => parseLlama2cCheckpoint(ckBytes.subarray(0, 10))).toThrow(Llama2cError);
  });

  it('rejects files that are not llama2.c checkpoints and versions it does not know', () => {
    const junk = new TextEncoder().encode('{"this is": "a json file, not a checkpoint"}');
    expect(() => parseLlama2cCheckpoint(junk)).toThrow(/not a llama2.c checkpoint/);
    const v2 = new Uint8Array(300);
    new DataView(v2.buffer).setUint32(0, 0x616b3432, true);
    new DataView(v2.buffer).setInt32(4, 2, true);
    expect(() => parseLlama2cCheckpoint(v2)).toThrow(/version 2/);
  });

  itReference('reads the tokenizer and rejects a wrong vocab size', () => {
    const t = parseLlama2cTokenizer(tokBytes, 512);
    expect(t.maxTokenLength).toBe(7);
    expect(new TextDecoder().decode(t.pieces[403])).toBe(' Once');
    expect(t.scores[403]).toBe(-144);
    expect(() => parseLlama2cTokenizer(tokBytes, 500)).toThrow(/bytes left after 500 tokens/);
    expect(() => parseLlama2cTokenizer(tokBytes, 600)).toThrow(/file ends at token 512/);
  });

  it('reads version 1 checkpoints like legacy ones', () => {
    for (const shared of [true, false]) {
      const a = synthCheckpoint({ version: 0, shared, seed: 3 });
      const b = synthCheckpoint({ version: 1, shared, seed: 3 });
      const pa = parseLlama2cCheckpoint(a.bytes);
      const pb = parseLlama2cCheckpoint(b.bytes);
      expect(pb.config.version).toBe(1);
      expect({ ...pb.config, version: 0 }).toEqual(pa.config);
      expect(pb.layers).toEqual(pa.layers);
      expect(pb.tokEmb).toEqual(pa.tokEmb);
      expect(pb.rmsFinal).toEqual(pa.rmsFinal);
      expect(pb.wcls).toEqual(pa.wcls);
      expect(pb.nParams).toBe(pa.nParams);
    }
  });
});

describe('q/k row permutation (interleaved RoPE -> rotate_half)', () => {
  it('matches HF permute: w.view(nh, hd/2, 2, dim).transpose(1, 2)', () => {
    // 2 heads of head_dim 4, 1 column: rows [h0: 0 1 2 3, h1: 4 5 6 7] -> [0 2 1 3, 4 6 5 7]
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(permuteRopeRows(w, 2, 1))).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
    const w8 = Float32Array.from({ length: 8 }, (_, i) => i);
    expect(Array.from(permuteRopeRows(w8, 1, 1))).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
  });

  itReference('gives the same rotated q/k (up to the head-dim permutation) and the same scores', () => {
    const r = rng(11);
    const { dim, nHeads: H, nKvHeads: KV, headDim: hd } = ck.config;
    const half = hd / 2;
    for (const l of [0, 4]) {
      const { wq, wk } = ck.layers[l]!;
      const wqP = permuteRopeRows(wq, H, dim);
      const wkP = permuteRopeRows(wk, KV, dim);
      const x1 = Array.from({ length: dim }, () => r());
      const x2 = Array.from({ length: dim }, () => r());
      for (const [pq, pk] of [[0, 0], [7, 3], [300, 299], [511, 0]] as const) {
        const qI = ropeInterleaved(matvec(wq, x1, dim, dim), hd, pq);
        const kI = ropeInterleaved(matvec(wk, x2, KV * hd, dim), hd, pk);
        const qH = ropeHalf(matvec(wqP, x1, dim, dim), hd, pq);
        const kH = ropeHalf(matvec(wkP, x2, KV * hd, dim), hd, pk);
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < half; i++) {
            for (let j = 0; j < 2; j++) expect(qH[h * hd + j * half + i]).toBeCloseTo(qI[h * hd + 2 * i + j]!, 10);
          }
          const kh = Math.floor(h / (H / KV));
          expect(headDot(qH, h, kH, kh, hd)).toBeCloseTo(headDot(qI, h, kI, kh, hd), 10);
        }
        // Without the permutation the scores differ (the check is not vacuous).
        const kBad = ropeHalf(matvec(wk, x2, KV * hd, dim), hd, pk);
        const qBad = ropeHalf(matvec(wq, x1, dim, dim), hd, pq);
        if (pq !== 0 || pk !== 0) expect(Math.abs(headDot(qBad, 0, kBad, 0, hd) - headDot(qI, 0, kI, 0, hd))).toBeGreaterThan(1e-6);
      }
    }
  });
});

describe('convertLlama2c', () => {
  itReference('writes a standard HF Llama folder', () => {
    const { files, nMerges } = convertLlama2cDetailed(ckBytes, tokBytes, { name: 'stories260K' });
    expect([...files.keys()].sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(nMerges).toBe(165);
    const cfg = json(files.get('config.json'));
    expect(cfg).toMatchObject({
      model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_size: 64, intermediate_size: 172, num_hidden_layers: 5,
      num_attention_heads: 8, num_key_value_heads: 4, head_dim: 8, vocab_size: 512, max_position_embeddings: 512, rms_norm_eps: 1e-5,
      rope_theta: 10000, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32', hidden_act: 'silu',
    });
    expect(json(files.get('generation_config.json'))).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    const tc = json(files.get('tokenizer_config.json'));
    expect(tc).toMatchObject({ add_bos_token: true, add_eos_token: false, bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', model_max_length: 512 });
    expect(typeof tc.chat_template).toBe('string');

    const st = new SafetensorsFile(files.get('model.safetensors')!);
    expect(st.has('lm_head.weight')).toBe(false); // tied
    expect(st.names()).toHaveLength(1 + 5 * 9 + 1);
    expect(st.entry('model.embed_tokens.weight').shape).toEqual([512, 64]);
    expect(st.entry('model.layers.0.self_attn.k_proj.weight').shape).toEqual([32, 64]);
    expect(st.entry('model.layers.4.mlp.down_proj.weight').shape).toEqual([64, 172]);
    expect(st.entry('model.layers.4.mlp.gate_proj.weight').shape).toEqual([172, 64]);
    expect(st.getFloat32('model.layers.2.mlp.up_proj.weight')).toEqual(ck.layers[2]!.w3);
    expect(st.getFloat32('model.layers.2.mlp.gate_proj.weight')).toEqual(ck.layers[2]!.w1);
    expect(st.getFloat32('model.layers.3.self_attn.v_proj.weight')).toEqual(ck.layers[3]!.wv);
    expect(st.getFloat32('model.layers.3.self_attn.q_proj.weight')).toEqual(permuteRopeRows(ck.layers[3]!.wq, 8, 64));
    expect(st.getFloat32('model.layers.3.self_attn.k_proj.weight')).toEqual(permuteRopeRows(ck.layers[3]!.wk, 4, 64));
    const total = st.names().reduce((a, n) => a + st.entry(n).shape.reduce((x, y) => x * y, 1), 0);
    expect(total).toBe(260032);
  });

  it('keeps an untied classifier as lm_head', () => {
    const { bytes, w, dims } = synthCheckpoint({ version: 0, shared: false, seed: 5 });
    const files = convertLlama2c(bytes, synthTokenizer(dims.V));
    expect(json(files.get('config.json')).tie_word_embeddings).toBe(false);
    const st = new SafetensorsFile(files.get('model.safetensors')!);
    expect(st.getFloat32('lm_head.weight')).toEqual(w.wcls);
    expect(st.getFloat32('model.embed_tokens.weight')).toEqual(w.emb);
    const tied = convertLlama2c(synthCheckpoint({ version: 0, shared: true, seed: 5 }).bytes, synthTokenizer(dims.V));
    expect(new SafetensorsFile(tied.get('model.safetensors')!).has('lm_head.weight')).toBe(false);
    const t = TextTokenizer.fromHF(json(files.get('tokenizer.json')), json(files.get('tokenizer_config.json')));
    expect(t.encode('abcd ab', { addBos: false }).map((id) => t.idToToken(id))).toEqual(['▁ab', 'cd', '▁ab']) // ▁a, then ▁ab, then cd; "▁abcd" is no piece;
  });

  itReference('reproduces the golden logits, NLL and greedy tokens through the HF layout', async () => {
    const dir = await ensureReferenceHF();
    const st = new SafetensorsFile(new Uint8Array(await readFile(join(dir, 'model.safetensors'))));
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, number>;
    // Teacher-forced over the first 64 tokens of the BOS greedy sequence.
    const toks = golden.bos_greedy.tokens;
    const m = new HFLlama(st, cfg);
    const nll: number[] = [];
    for (let pos = 0; pos < 64; pos++) {
      const logits = m.forward(toks[pos]!, pos);
      if (pos === 0) {
        const want = golden.logits_pos0_after_bos.all;
        for (let i = 0; i < 512; i++) expect(Math.abs(logits[i]! - want[i]!)).toBeLessThan(1e-4);
      }
      let mx = -Infinity;
      let arg = -1;
      logits.forEach((v, i) => {
        if (v > mx) [mx, arg] = [v, i];
      });
      expect(arg).toBe(toks[pos + 1]); // greedy
      const lse = mx + Math.log(logits.reduce((a, v) => a + Math.exp(v - mx), 0));
      nll.push(lse - logits[toks[pos + 1]!]!);
    }
    const mean = nll.reduce((a, b) => a + b, 0) / nll.length;
    expect(Math.abs(mean - golden.teacher_forced_first64_of_bos_greedy.mean_nll_nats)).toBeLessThan(1e-4);
    golden.teacher_forced_first64_of_bos_greedy.nll_first8.forEach((v, i) => expect(Math.abs(nll[i]! - v)).toBeLessThan(1e-4));
  });
});
