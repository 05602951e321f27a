// Grouped-query attention on WebGPU as one op with its own gradient, without a [B, H, T, S] tensor anywhere
// (the same math as attention() in src/model/ops.ts and its CPU twin src/model/cpu-attention.ts):
//   s = q kT / sqrt(hd) + mask;  p = softmax(s);  o = p v
// Forward (FlashAttention-style): one workgroup per query row visits the keys a block of WG at a time with an
// online softmax (running max m and sum l), writing o and the row's m and l. Backward recomputes p from them:
//   dP = dO vT;  dS = p (dP - rowsum(dO o));  dq = dS k / sqrt(hd);  dk = dS^T q / sqrt(hd);  dv = p^T dO
// dq: one workgroup per query row over the key blocks; dk and dv: one workgroup per key over the query rows
// (of every head sharing that key/value head) a block at a time. As in the CPU op, each query row visits keys
// only up to the last one its mask lets it see (all of them when it sees none: a padding row's softmax is
// uniform), so a causal mask halves the work; a first program finds that limit per row, and each key's
// workgroup starts at the first query row that can see it.
import * as tf from '@tensorflow/tfjs-core';
import { f32, gpuProgram, i32, runProgram, WG, WG_SUM } from './program';

/** The largest head size the programs take (their per-row vectors live in workgroup memory). */
export const MAX_GPU_ATTENTION_HEAD = 512;

// Uniforms shared by the three programs.
const FIELDS = 'rows : i32, T : i32, S : i32, H : i32, KV : i32, scale : f32,';

/** q [B, H, T, hd] row `row` = (b * H + h) * T + i: its coordinates and those of its key/value head. */
const ROW_COORDS = `
    let T = uniforms.T;
    let S = uniforms.S;
    let H = uniforms.H;
    let KV = uniforms.KV;
    let i = row % T;
    let b = row / (H * T);
    let h = (row / T) % H;
    let grp = h / (H / KV);
    let kbase = (b * KV + grp) * HD * S;
    let vbase = (b * KV + grp) * S * HD;
    let mbase = (b * T + i) * S;`;

const header = (hd: number) => `${WG_SUM}
  const HD = ${hd};
  const NPT = ${Math.ceil(hd / WG)};
  var<workgroup> qs : array<f32, HD>;
  var<workgroup> gs : array<f32, HD>;
  var<workgroup> ps : array<f32, ${WG}>;
  var<workgroup> ds : array<f32, ${WG}>;
  var<workgroup> limS : i32;`;

// Output [rows, HD + 2]: o, then m and l of the row's softmax.
const forward = (hd: number) => `${header(hd)}
  fn main(index : i32) {
    let row = min(index / ${WG}, uniforms.rows - 1);
    let tid = i32(localId.x);
    ${ROW_COORDS}
    for (var d = tid; d < HD; d += ${WG}) { qs[d] = q[row * HD + d]; }
    if (tid == 0) { limS = i32(lim[b * T + i]); }
    let L = workgroupUniformLoad(&limS);
    var m = -3.0e38;
    var l = 0.0;
    var acc : array<f32, NPT>;
    for (var j0 = 0; j0 < L; j0 += ${WG}) {
      let j = j0 + tid;
      var s = -3.0e38;
      if (j < L) {
        var dot = 0.0;
        for (var d = 0; d < HD; d++) { dot += qs[d] * kT[kbase + d * S + j]; }
        s = dot * uniforms.scale + mask[mbase + j];
      }
      let mNew = max(m, wgMax(s, tid));
      var p = 0.0;
      if (j < L) { p = exp(s - mNew); }
      ps[tid] = p;
      let corr = exp(m - mNew);
      l = l * corr + wgSum(p, tid);
      let nj = min(${WG}, L - j0);
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) {
          var a = acc[k] * corr;
          for (var jj = 0; jj < nj; jj++) { a += ps[jj] * v[vbase + (j0 + jj) * HD + d]; }
          acc[k] = a;
        }
      }
      m = mNew;
      workgroupBarrier();
    }
    if (index / ${WG} < uniforms.rows) {
      let o = row * (HD + 2);
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) { result[o + d] = acc[k] / l; }
      }
      if (tid == 0) {
        result[o + HD] = m;
        result[o + HD + 1] = l;
      }
    }
  }`;

// dq [rows, HD]. gs holds the row of dO; ml is the forward's output (o, m, l).
const backwardQ = (hd: number) => `${header(hd)}
  fn main(index : i32) {
    let row = min(index / ${WG}, uniforms.rows - 1);
    let tid = i32(localId.x);
    ${ROW_COORDS}
    let ob = row * (HD + 2);
    var dd = 0.0;
    for (var d = tid; d < HD; d += ${WG}) {
      qs[d] = q[row * HD + d];
      gs[d] = dO[row * HD + d];
      dd += gs[d] * ml[ob + d];
    }
    let D = wgSum(dd, tid);
    let m = ml[ob + HD];
    let l = ml[ob + HD + 1];
    if (tid == 0) { limS = i32(lim[b * T + i]); }
    let L = workgroupUniformLoad(&limS);
    var acc : array<f32, NPT>;
    for (var j0 = 0; j0 < L; j0 += ${WG}) {
      let j = j0 + tid;
      var dsj = 0.0;
      if (j < L) {
        var dot = 0.0;
        var dp = 0.0;
        for (var d = 0; d < HD; d++) {
          dot += qs[d] * kT[kbase + d * S + j];
          dp += gs[d] * v[vbase + j * HD + d];
        }
        let p = exp(dot * uniforms.scale + mask[mbase + j] - m) / l;
        dsj = p * (dp - D);
      }
      ds[tid] = dsj;
      workgroupBarrier();
      let nj = min(${WG}, L - j0);
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) {
          var a = acc[k];
          for (var jj = 0; jj < nj; jj++) { a += ds[jj] * kT[kbase + d * S + j0 + jj]; }
          acc[k] = a;
        }
      }
      workgroupBarrier();
    }
    if (index / ${WG} < uniforms.rows) {
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) { result[row * HD + d] = acc[k] * uniforms.scale; }
      }
    }
  }`;

// [B, KV, S, 2 HD]: dk then dv for key j of key/value head (b, g). qs holds k_j, gs holds v_j; the query rows
// are those of the rep heads sharing the key/value head, from the first i that visits key j (later rows that
// do not see it add exact zeros: p = exp(-1e9 - m) / l).
const backwardKV = (hd: number) => `${header(hd)}
  fn main(index : i32) {
    let T = uniforms.T;
    let S = uniforms.S;
    let H = uniforms.H;
    let KV = uniforms.KV;
    let rep = H / KV;
    let keys = uniforms.rows;
    let key = min(index / ${WG}, keys - 1);
    let tid = i32(localId.x);
    let j = key % S;
    let bg = key / S;
    let b = bg / KV;
    let grp = bg % KV;
    let kbase = bg * HD * S;
    let vbase = bg * S * HD;
    for (var d = tid; d < HD; d += ${WG}) {
      qs[d] = kT[kbase + d * S + j];
      gs[d] = v[vbase + j * HD + d];
    }
    var first = -f32(T);
    for (var i = tid; i < T; i += ${WG}) {
      if (j < i32(lim[b * T + i])) { first = max(first, -f32(i)); }
    }
    let fm = wgMax(first, tid);
    if (tid == 0) { limS = i32(-fm); }
    let i0 = workgroupUniformLoad(&limS);
    let nT = T - i0;
    var dk : array<f32, NPT>;
    var dv : array<f32, NPT>;
    for (var hh = 0; hh < rep; hh++) {
     let hrow = (b * H + grp * rep + hh) * T + i0;
     for (var c0 = 0; c0 < nT; c0 += ${WG}) {
      var p = 0.0;
      var dsr = 0.0;
      if (c0 + tid < nT) {
        let i = i0 + c0 + tid;
        let qrow = hrow + c0 + tid;
        let ob = qrow * (HD + 2);
        var dot = 0.0;
        var dp = 0.0;
        var D = 0.0;
        for (var d = 0; d < HD; d++) {
          let g = dO[qrow * HD + d];
          dot += q[qrow * HD + d] * qs[d];
          dp += g * gs[d];
          D += g * ml[ob + d];
        }
        p = exp(dot * uniforms.scale + mask[(b * T + i) * S + j] - ml[ob + HD]) / ml[ob + HD + 1];
        dsr = p * (dp - D);
      }
      ps[tid] = p;
      ds[tid] = dsr;
      workgroupBarrier();
      let nr = min(${WG}, nT - c0);
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) {
          var ak = dk[k];
          var av = dv[k];
          for (var rr = 0; rr < nr; rr++) {
            let qrow = hrow + c0 + rr;
            ak += ds[rr] * q[qrow * HD + d];
            av += ps[rr] * dO[qrow * HD + d];
          }
          dk[k] = ak;
          dv[k] = av;
        }
      }
      workgroupBarrier();
     }
    }
    if (index / ${WG} < keys) {
      let o = key * 2 * HD;
      for (var k = 0; k < NPT; k++) {
        let d = tid + k * ${WG};
        if (d < HD) {
          result[o + d] = dk[k] * uniforms.scale;
          result[o + HD + d] = dv[k];
        }
      }
    }
  }`;

// [B * T]: per query row, 1 + the last key its mask lets it see (> -1e8), or S when it sees none.
const LIMITS = `${WG_SUM}
  fn main(index : i32) {
    let rows = uniforms.rows;
    let S = uniforms.S;
    let row = min(index / ${WG}, rows - 1);
    let tid = i32(localId.x);
    var last = 0.0;
    for (var j = tid; j < S; j += ${WG}) {
      if (mask[row * S + j] > -1.0e8) { last = f32(j + 1); }
    }
    let L = wgMax(last, tid);
    if (index / ${WG} < rows && tid == 0) { result[row] = select(L, f32(S), L == 0.0); }
  }`;

/** Whether the fused op takes these shapes (the head size fits its workgroup memory). */
export function gpuAttentionAvailable(q: tf.Tensor): boolean {
  return q.rank === 4 && q.shape[3]! <= MAX_GPU_ATTENTION_HEAD;
}

/**
 * q: [B, H, T, hd], kT: [B, KV, hd, S], v: [B, KV, S, hd], mask: [B, 1, 1, T, S] (additive: 0 or -1e9, a
 * constant of the op). Returns [B, T, H * hd]. Query head h reads key/value head floor(h / (H / KV)).
 */
export function gpuAttention(q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  const [B, H, T, hd] = q.shape as [number, number, number, number];
  const [, KV, , S] = kT.shape as [number, number, number, number];
  if (H % KV || !tf.util.arraysEqual(v.shape, [B, KV, S, hd]) || !tf.util.arraysEqual(kT.shape, [B, KV, hd, S]) || mask.size !== B * T * S) {
    throw new Error(`attention: q ${q.shape.join('x')}, kT ${kT.shape.join('x')}, v ${v.shape.join('x')} and mask ${mask.shape.join('x')} do not fit together`);
  }
  const rows = B * H * T;
  const uniforms = (n: number) => [i32(n), i32(T), i32(S), i32(H), i32(KV), f32(1 / Math.sqrt(hd))];
  const key = `${hd}`;
  const op = tf.customGrad(((qi: tf.Tensor, kTi: tf.Tensor, vi: tf.Tensor, save: tf.GradSaveFunc) => {
    const m = tf.reshape(mask, [B, T, S]); // saved: the caller may free the mask before backprop
    const lim = runProgram(gpuProgram('attn_lim', '', ['mask'], [B * T], B * T * WG, FIELDS, LIMITS), [m], uniforms(B * T));
    const ml = runProgram(gpuProgram('attn_fwd', key, ['q', 'kT', 'v', 'mask', 'lim'], [rows, hd + 2], rows * WG, FIELDS, forward(hd)), [qi, kTi, vi, m, lim], uniforms(rows));
    save([qi, kTi, vi, ml, m, lim]);
    const o = tf.reshape(tf.slice(ml, [0, 0], [rows, hd]), [B, H, T, hd]);
    return {
      value: tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [B, T, H * hd]),
      gradFunc: (dy: tf.Tensor, [sq, skT, sv, sml, sm, slim]: tf.Tensor[]) => {
        const dO = tf.transpose(tf.reshape(dy, [B, T, H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
        const dq = runProgram(gpuProgram('attn_dq', key, ['q', 'kT', 'v', 'mask', 'dO', 'ml', 'lim'], [B, H, T, hd], rows * WG, FIELDS, backwardQ(hd)), [sq!, skT!, sv!, sm!, dO, sml!, slim!], uniforms(rows));
        const keys = B * KV * S;
        const dkv = runProgram(gpuProgram('attn_dkv', key, ['q', 'kT', 'v', 'mask', 'dO', 'ml', 'lim'], [B, KV, S, 2 * hd], keys * WG, FIELDS, backwardKV(hd)), [sq!, skT!, sv!, sm!, dO, sml!, slim!], uniforms(keys));
        const dkT = tf.transpose(tf.slice(dkv, [0, 0, 0, 0], [B, KV, S, hd]), [0, 1, 3, 2]);
        return [dq, dkT, tf.slice(dkv, [0, 0, 0, hd], [B, KV, S, hd])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (q: tf.Tensor, kT: tf.Tensor, v: tf.Tensor) => tf.Tensor;
  return op(q, kT, v);
}
