;; tabtune's own WebAssembly SIMD kernels, for batch-1 decoding (src/model/fast-decode.ts) and the fused
;; ops of the CPU backends (attention in src/model/cpu-attention.ts; SwiGLU and RoPE in cpu-fused.ts;
;; RMSNorm and the LoRA weight gradients in ops.ts; the cross-entropy in src/train/loss.ts), where TF.js's
;; per-op overhead, not arithmetic, sets the pace. Assembled into src/kernels/simd-wasm.ts by `npm run build:wasm`
;; (scripts/build-wasm.ts); a unit test checks that the committed bytes are what this file assembles to.
;;
;; vecmat(x, w, y, n, m, ldw): y[j] = sum_k x[k] * w[k * ldw + j] for j < m, k < n
;;   x, w, y are byte offsets of float32 arrays in the module's memory; w holds n rows of m used floats,
;;   ldw floats apart: a Linear's weight in math layout [in, out], a cache of transposed keys [hd, S]
;;   (scores) or of values [S, hd] (attention output).
;; Sixteen outputs at a time stay in four f32x4 accumulators while k runs over the rows (each x[k] is
;; splatted once per block); then a block of eight, blocks of four; the last m % 4 outputs one float at a time. Each output
;; is summed over k in order, like a plain matMul.
(module
  (memory (export "memory") 1)
  (func $vecmat (export "vecmat")
    (param $x i32) (param $w i32) (param $y i32) (param $n i32) (param $m i32) (param $ldw i32)
    (local $j i32) (local $k i32) (local $stride i32) (local $p i32) (local $xend i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $xv v128)
    (local $s f32)
    (local.set $stride (i32.shl (local.get $ldw) (i32.const 2)))
    (local.set $xend (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $j (i32.const 0))
    ;; sixteen outputs at a time
    (block $done16
      (loop $blocks16
        (br_if $done16 (i32.gt_s (i32.add (local.get $j) (i32.const 16)) (local.get $m)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0))
        (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $x))
        (block $kdone
          (loop $kloop
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $xend)))
            (local.set $xv (v128.load32_splat (local.get $k)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (v128.load offset=0 (local.get $p)))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $p)))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (v128.load offset=32 (local.get $p)))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (v128.load offset=48 (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kloop)))
        (local.set $p (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store offset=0 (local.get $p) (local.get $a0))
        (v128.store offset=16 (local.get $p) (local.get $a1))
        (v128.store offset=32 (local.get $p) (local.get $a2))
        (v128.store offset=48 (local.get $p) (local.get $a3))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $blocks16)))
    ;; eight (a head of 8 floats: attention's output row, p v)
    (if (i32.le_s (i32.add (local.get $j) (i32.const 8)) (local.get $m))
      (then
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $x))
        (block $kdone8
          (loop $kloop8
            (br_if $kdone8 (i32.ge_u (local.get $k) (local.get $xend)))
            (local.set $xv (v128.load32_splat (local.get $k)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (v128.load offset=0 (local.get $p)))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (v128.load offset=16 (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kloop8)))
        (local.set $p (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store offset=0 (local.get $p) (local.get $a0))
        (v128.store offset=16 (local.get $p) (local.get $a1))
        (local.set $j (i32.add (local.get $j) (i32.const 8)))))
    ;; four at a time
    (block $done4
      (loop $blocks4
        (br_if $done4 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $m)))
        (local.set $a0 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $x))
        (block $kdone4
          (loop $kloop4
            (br_if $kdone4 (i32.ge_u (local.get $k) (local.get $xend)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load32_splat (local.get $k)) (v128.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kloop4)))
        (v128.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))) (local.get $a0))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $blocks4)))
    ;; the rest, one output at a time
    (block $done1
      (loop $blocks1
        (br_if $done1 (i32.ge_s (local.get $j) (local.get $m)))
        (local.set $s (f32.const 0))
        (local.set $p (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $k (local.get $x))
        (block $kdone1
          (loop $kloop1
            (br_if $kdone1 (i32.ge_u (local.get $k) (local.get $xend)))
            (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $k)) (f32.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $stride)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kloop1)))
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $blocks1))))
  ;; exp of four floats (Cephes expf: x = n ln2 + r, |r| <= ln2/2, a degree-6 polynomial in r, times 2^n built
  ;; in the exponent bits); inputs clamped to [-87.33, 88.37], where float32 exp stays normal and finite.
  ;; n = round(x log2 e) comes from adding 1.5 2^23: the sum's low mantissa bits are n, so (bits + 127) << 23
  ;; is 2^n (the exponent field) without a float-to-int conversion. pmin/pmax (one instruction each; NaN still
  ;; comes out NaN) instead of min/max (several, for their NaN and signed-zero rules). For the tails of rows;
  ;; exp_pass writes the same steps out with its constants kept in locals, for the rows' bodies.
  (func $exp4 (param $x v128) (result v128)
    (local $t v128) (local $n v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.pmin (f32x4.pmax (local.get $x) (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654)) (v128.const f32x4 88.37626 88.37626 88.37626 88.37626)))
    (local.set $t (f32x4.add (f32x4.mul (local.get $x) (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341)) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $n (f32x4.sub (local.get $t) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $r (f32x4.sub (local.get $x) (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r) (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p) (i32x4.shl (i32x4.add (local.get $t) (v128.const i32x4 127 127 127 127)) (i32.const 23))))

  ;; exp_pass(x, mask, y, n, a, shift, c) -> s: e[j] = exp(x[j] a + mask[j] - shift) (no mask term when mask is -1),
  ;; y[j] = c e[j] for j < n (byte offsets; y may be x); returns s = sum of e (four running sums, then the tail).
  ;; The exp of every softmax here (cross-entropy rows, attention's rows forward and backward) runs in this loop:
  ;; exp4's steps with its thirteen constants held in locals (written inside the loop, V8 rebuilds each one at
  ;; every iteration: this loop ran at a third of the speed).
  (func $exp_pass (param $x i32) (param $mask i32) (param $y i32) (param $n i32) (param $a f32) (param $shift f32) (param $c f32) (result f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $av v128) (local $sv v128) (local $cv v128) (local $s4 v128) (local $s f32)
    (local $e v128) (local $t v128) (local $nn v128) (local $r v128) (local $pp v128)
    (local $lo v128) (local $hi v128) (local $log2e v128) (local $round v128) (local $ln2hi v128) (local $ln2lo v128)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128) (local $p4 v128) (local $p5 v128) (local $one v128) (local $bias v128)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $av (f32x4.splat (local.get $a)))
    (local.set $sv (f32x4.splat (local.get $shift)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $lo (v128.const f32x4 -87.33654 -87.33654 -87.33654 -87.33654))
    (local.set $hi (v128.const f32x4 88.37626 88.37626 88.37626 88.37626))
    (local.set $log2e (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))
    (local.set $round (v128.const f32x4 12582912 12582912 12582912 12582912))
    (local.set $ln2hi (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))
    (local.set $ln2lo (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))
    (local.set $p0 (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p1 (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3))
    (local.set $p2 (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3))
    (local.set $p3 (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2))
    (local.set $p4 (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1))
    (local.set $p5 (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1))
    (local.set $one (v128.const f32x4 1 1 1 1))
    (local.set $bias (v128.const i32x4 127 127 127 127))
    (local.set $s4 (v128.const i32x4 0 0 0 0))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $e (f32x4.sub (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $av)) (local.get $sv)))
      (if (i32.ne (local.get $mask) (i32.const -1))
        (then (local.set $e (f32x4.add (local.get $e) (v128.load (i32.add (local.get $mask) (local.get $k)))))))
      (local.set $e (f32x4.pmin (f32x4.pmax (local.get $e) (local.get $lo)) (local.get $hi)))
      (local.set $t (f32x4.add (f32x4.mul (local.get $e) (local.get $log2e)) (local.get $round)))
      (local.set $nn (f32x4.sub (local.get $t) (local.get $round)))
      (local.set $r (f32x4.sub (f32x4.sub (local.get $e) (f32x4.mul (local.get $nn) (local.get $ln2hi))) (f32x4.mul (local.get $nn) (local.get $ln2lo))))
      (local.set $pp (f32x4.add (f32x4.mul (local.get $p0) (local.get $r)) (local.get $p1)))
      (local.set $pp (f32x4.add (f32x4.mul (local.get $pp) (local.get $r)) (local.get $p2)))
      (local.set $pp (f32x4.add (f32x4.mul (local.get $pp) (local.get $r)) (local.get $p3)))
      (local.set $pp (f32x4.add (f32x4.mul (local.get $pp) (local.get $r)) (local.get $p4)))
      (local.set $pp (f32x4.add (f32x4.mul (local.get $pp) (local.get $r)) (local.get $p5)))
      (local.set $pp (f32x4.add (f32x4.add (f32x4.mul (local.get $pp) (f32x4.mul (local.get $r) (local.get $r))) (local.get $r)) (local.get $one)))
      (local.set $e (f32x4.mul (local.get $pp) (i32x4.shl (i32x4.add (local.get $t) (local.get $bias)) (i32.const 23))))
      (local.set $s4 (f32x4.add (local.get $s4) (local.get $e)))
      (v128.store (i32.add (local.get $y) (local.get $k)) (f32x4.mul (local.get $e) (local.get $cv)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (local.set $s (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $s4)) (f32x4.extract_lane 1 (local.get $s4)))
      (f32.add (f32x4.extract_lane 2 (local.get $s4)) (f32x4.extract_lane 3 (local.get $s4)))))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $e (f32x4.sub (f32x4.mul (v128.load32_splat (i32.add (local.get $x) (local.get $k))) (local.get $av)) (local.get $sv)))
      (if (i32.ne (local.get $mask) (i32.const -1))
        (then (local.set $e (f32x4.add (local.get $e) (v128.load32_splat (i32.add (local.get $mask) (local.get $k)))))))
      (local.set $e (call $exp4 (local.get $e)))
      (local.set $s (f32.add (local.get $s) (f32x4.extract_lane 0 (local.get $e))))
      (f32.store (i32.add (local.get $y) (local.get $k)) (f32x4.extract_lane 0 (f32x4.mul (local.get $e) (local.get $cv))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2)))
    (local.get $s))

  ;; lse_row(x, n, out): m = max(x[0..n)), s = sum exp(x - m); stores m at out and s at out + 4 (byte offsets).
  ;; Overwrites x with exp(x - m).
  (func $lse_row (export "lse_row") (param $x i32) (param $n i32) (param $out i32)
    (local $m f32)
    (local.set $m (call $row_max (local.get $x) (local.get $n)))
    (f32.store (local.get $out) (local.get $m))
    (f32.store offset=4 (local.get $out)
      (call $exp_pass (local.get $x) (i32.const -1) (local.get $x) (local.get $n) (f32.const 1) (local.get $m) (f32.const 1))))

  ;; row_max(x, n) -> max(x[0..n)) (byte offset; n >= 1).
  (func $row_max (param $x i32) (param $n i32) (result f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $m4 v128) (local $m f32)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $m4 (v128.const f32x4 -inf -inf -inf -inf))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $m4 (f32x4.pmax (local.get $m4) (v128.load (i32.add (local.get $x) (local.get $k)))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (local.set $m (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $m4)) (f32x4.extract_lane 1 (local.get $m4)))
      (f32.max (f32x4.extract_lane 2 (local.get $m4)) (f32x4.extract_lane 3 (local.get $m4)))))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $m (f32.max (local.get $m) (f32.load (i32.add (local.get $x) (local.get $k)))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2)))
    (local.get $m))

  ;; exp_scale(x, y, n, shift, c): y[j] = c * exp(x[j] - shift), j < n (byte offsets; y may be x).
  (func $exp_scale (export "exp_scale") (param $x i32) (param $y i32) (param $n i32) (param $shift f32) (param $c f32)
    (drop (call $exp_pass (local.get $x) (i32.const -1) (local.get $y) (local.get $n) (f32.const 1) (local.get $shift) (local.get $c))))
  ;; dot(a, b, n): sum_k a[k] b[k], k < n, in order (byte offsets).
  (func $dot (param $a i32) (param $b i32) (param $n i32) (result f32)
    (local $k i32) (local $nb i32) (local $s f32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $k (i32.const 0))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $s (f32.add (local.get $s)
        (f32.mul (f32.load (i32.add (local.get $a) (local.get $k))) (f32.load (i32.add (local.get $b) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l)))
    (local.get $s))

  ;; softmax_grad(p, dp, n, d, c): dp[j] = p[j] * (dp[j] - d) * c, j < n (dS of a softmax row, times c).
  (func $softmax_grad (param $p i32) (param $dp i32) (param $n i32) (param $d f32) (param $c f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $dv v128) (local $cv v128)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $dv (f32x4.splat (local.get $d)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $k (i32.const 0))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (v128.store (i32.add (local.get $dp) (local.get $k))
        (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $p) (local.get $k)))
          (f32x4.sub (v128.load (i32.add (local.get $dp) (local.get $k))) (local.get $dv))) (local.get $cv)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (f32.store (i32.add (local.get $dp) (local.get $k))
        (f32.mul (f32.mul (f32.load (i32.add (local.get $p) (local.get $k)))
          (f32.sub (f32.load (i32.add (local.get $dp) (local.get $k))) (local.get $d))) (local.get $c)))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2))))

  ;; softmax_row(x, mask, n, stat, c): x[j] = exp(x[j] c + mask[j] - m) for j < n, m = the row's max of x c + mask;
  ;; stores m at stat and 1 / sum at stat + 4 (byte offsets). The rows still need the 1 / sum factor: attn_fwd folds
  ;; it into the output. x c + mask is formed twice (for the max, then inside exp_pass) rather than stored.
  (func $softmax_row (param $x i32) (param $mask i32) (param $n i32) (param $stat i32) (param $c f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $m4 v128) (local $cv v128) (local $m f32)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $m4 (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $cv (f32x4.splat (local.get $c)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $m4 (f32x4.pmax (local.get $m4)
        (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $cv)) (v128.load (i32.add (local.get $mask) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (local.set $m (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $m4)) (f32x4.extract_lane 1 (local.get $m4)))
      (f32.max (f32x4.extract_lane 2 (local.get $m4)) (f32x4.extract_lane 3 (local.get $m4)))))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $m (f32.max (local.get $m)
        (f32.add (f32.mul (f32.load (i32.add (local.get $x) (local.get $k))) (local.get $c)) (f32.load (i32.add (local.get $mask) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2)))
    (f32.store (local.get $stat) (local.get $m))
    (f32.store offset=4 (local.get $stat) (f32.div (f32.const 1)
      (call $exp_pass (local.get $x) (local.get $mask) (local.get $x) (local.get $n) (local.get $c) (local.get $m) (f32.const 1)))))

  ;; scale(x, n, c): x[j] *= c, j < n (byte offsets).
  (func $scale (export "scale") (param $x i32) (param $n i32) (param $c f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $cv v128)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (v128.store (i32.add (local.get $x) (local.get $k)) (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $cv)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (f32.store (i32.add (local.get $x) (local.get $k)) (f32.mul (f32.load (i32.add (local.get $x) (local.get $k))) (local.get $c)))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2))))

  ;; attn_bwd_row(dp, p, q, dout, k, dq, dk, dv, n, hd): the last three products of one query row's backward in
  ;; one pass over its n keys per four columns (byte offsets): dq = sum_j dp[j] k_j (written), dk_j += dp[j] q,
  ;; dv_j += p[j] dout (k, dk, dv: rows of hd floats). Columns outside, keys inside: dq's four sums stay in a
  ;; register (a sum kept in memory would wait on its own store at every key).
  (func $attn_bwd_row (param $dp i32) (param $p i32) (param $q i32) (param $dout i32) (param $k i32) (param $dq i32) (param $dk i32) (param $dv i32) (param $n i32) (param $hd i32)
    (local $j i32) (local $c i32) (local $hb i32) (local $h4 i32) (local $at i32) (local $nb i32)
    (local $acc v128) (local $qc v128) (local $oc v128) (local $a v128) (local $acc1 v128) (local $qc1 v128) (local $oc1 v128) (local $pv v128) (local $sacc f32) (local $sq f32) (local $so f32) (local $as f32)
    (local.set $hb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $h4 (i32.shl (i32.and (local.get $hd) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    ;; eight columns in one pass over the keys while they last (a head of 8: all of it)
    (block $d8 (loop $l8
      (br_if $d8 (i32.gt_u (i32.add (local.get $c) (i32.const 32)) (local.get $hb)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $acc1 (v128.const i32x4 0 0 0 0))
      (local.set $qc (v128.load (i32.add (local.get $q) (local.get $c))))
      (local.set $qc1 (v128.load offset=16 (i32.add (local.get $q) (local.get $c))))
      (local.set $oc (v128.load (i32.add (local.get $dout) (local.get $c))))
      (local.set $oc1 (v128.load offset=16 (i32.add (local.get $dout) (local.get $c))))
      (local.set $at (local.get $c))
      (local.set $j (i32.const 0))
      (block $dj8 (loop $lj8
        (br_if $dj8 (i32.ge_u (local.get $j) (local.get $nb)))
        (local.set $a (v128.load32_splat (i32.add (local.get $dp) (local.get $j))))
        (local.set $pv (v128.load32_splat (i32.add (local.get $p) (local.get $j))))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $k) (local.get $at))))))
        (local.set $acc1 (f32x4.add (local.get $acc1) (f32x4.mul (local.get $a) (v128.load offset=16 (i32.add (local.get $k) (local.get $at))))))
        (v128.store (i32.add (local.get $dk) (local.get $at))
          (f32x4.add (v128.load (i32.add (local.get $dk) (local.get $at))) (f32x4.mul (local.get $a) (local.get $qc))))
        (v128.store offset=16 (i32.add (local.get $dk) (local.get $at))
          (f32x4.add (v128.load offset=16 (i32.add (local.get $dk) (local.get $at))) (f32x4.mul (local.get $a) (local.get $qc1))))
        (v128.store (i32.add (local.get $dv) (local.get $at))
          (f32x4.add (v128.load (i32.add (local.get $dv) (local.get $at))) (f32x4.mul (local.get $pv) (local.get $oc))))
        (v128.store offset=16 (i32.add (local.get $dv) (local.get $at))
          (f32x4.add (v128.load offset=16 (i32.add (local.get $dv) (local.get $at))) (f32x4.mul (local.get $pv) (local.get $oc1))))
        (local.set $at (i32.add (local.get $at) (local.get $hb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $lj8)))
      (v128.store (i32.add (local.get $dq) (local.get $c)) (local.get $acc))
      (v128.store offset=16 (i32.add (local.get $dq) (local.get $c)) (local.get $acc1))
      (local.set $c (i32.add (local.get $c) (i32.const 32)))
      (br $l8)))
    (block $d4 (loop $l4
      (br_if $d4 (i32.ge_u (local.get $c) (local.get $h4)))
      (local.set $acc (v128.const i32x4 0 0 0 0))
      (local.set $qc (v128.load (i32.add (local.get $q) (local.get $c))))
      (local.set $oc (v128.load (i32.add (local.get $dout) (local.get $c))))
      (local.set $at (local.get $c)) ;; byte offset of (row j, column c) in k, dk, dv
      (local.set $j (i32.const 0))
      (block $dj (loop $lj
        (br_if $dj (i32.ge_u (local.get $j) (local.get $nb)))
        (local.set $a (v128.load32_splat (i32.add (local.get $dp) (local.get $j))))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $a) (v128.load (i32.add (local.get $k) (local.get $at))))))
        (v128.store (i32.add (local.get $dk) (local.get $at))
          (f32x4.add (v128.load (i32.add (local.get $dk) (local.get $at))) (f32x4.mul (local.get $a) (local.get $qc))))
        (v128.store (i32.add (local.get $dv) (local.get $at))
          (f32x4.add (v128.load (i32.add (local.get $dv) (local.get $at)))
            (f32x4.mul (v128.load32_splat (i32.add (local.get $p) (local.get $j))) (local.get $oc))))
        (local.set $at (i32.add (local.get $at) (local.get $hb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $lj)))
      (v128.store (i32.add (local.get $dq) (local.get $c)) (local.get $acc))
      (local.set $c (i32.add (local.get $c) (i32.const 16)))
      (br $l4)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $c) (local.get $hb)))
      (local.set $sacc (f32.const 0))
      (local.set $sq (f32.load (i32.add (local.get $q) (local.get $c))))
      (local.set $so (f32.load (i32.add (local.get $dout) (local.get $c))))
      (local.set $at (local.get $c))
      (local.set $j (i32.const 0))
      (block $dj1 (loop $lj1
        (br_if $dj1 (i32.ge_u (local.get $j) (local.get $nb)))
        (local.set $as (f32.load (i32.add (local.get $dp) (local.get $j))))
        (local.set $sacc (f32.add (local.get $sacc) (f32.mul (local.get $as) (f32.load (i32.add (local.get $k) (local.get $at))))))
        (f32.store (i32.add (local.get $dk) (local.get $at))
          (f32.add (f32.load (i32.add (local.get $dk) (local.get $at))) (f32.mul (local.get $as) (local.get $sq))))
        (f32.store (i32.add (local.get $dv) (local.get $at))
          (f32.add (f32.load (i32.add (local.get $dv) (local.get $at)))
            (f32.mul (f32.load (i32.add (local.get $p) (local.get $j))) (local.get $so))))
        (local.set $at (i32.add (local.get $at) (local.get $hb)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $lj1)))
      (f32.store (i32.add (local.get $dq) (local.get $c)) (local.get $sacc))
      (local.set $c (i32.add (local.get $c) (i32.const 4)))
      (br $l1))))

  ;; score_exp(x, mask, n, c, m, r): x[j] = r exp(x[j] c + mask[j] - m), j < n (byte offsets): attention's
  ;; probabilities again in the backward, from the raw scores and the row's saved max m and 1 / sum r.
  (func $score_exp (param $x i32) (param $mask i32) (param $n i32) (param $c f32) (param $m f32) (param $rs f32)
    (drop (call $exp_pass (local.get $x) (local.get $mask) (local.get $x) (local.get $n) (local.get $c) (local.get $m) (local.get $rs))))

  ;; attn_fwd: one (sequence, query head) of attention, all its query rows i < T (byte offsets; ld* in floats):
  ;;   q [T, hd] rows; kt [hd, S] (keys transposed, rows S floats apart); v [S, hd]; o: row i at o + i * ldo;
  ;;   mask [T, S] additive; lim [T] (i32): keys visited by row i; s: scratch [S];
  ;;   stat [T, 2]: per row the max score m and 1 / sum exp(s - m), for the backward.
  ;;   s = q_i kt * scale + mask_i;  p = exp(s - m) / sum;  o_i = p v (as (exp(s - m) v) / sum)
  (func (export "attn_fwd")
    (param $q i32) (param $kt i32) (param $v i32) (param $o i32) (param $mask i32) (param $lim i32) (param $s i32)
    (param $stat i32) (param $T i32) (param $S i32) (param $hd i32) (param $ldo i32) (param $scale f32)
    (local $i i32) (local $n i32) (local $st i32) (local $oi i32)
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $i) (local.get $T)))
      (local.set $n (i32.load (i32.add (local.get $lim) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $st (i32.add (local.get $stat) (i32.shl (local.get $i) (i32.const 3))))
      (call $vecmat (i32.add (local.get $q) (i32.shl (i32.mul (local.get $i) (local.get $hd)) (i32.const 2)))
        (local.get $kt) (local.get $s) (local.get $hd) (local.get $n) (local.get $S))
      (call $softmax_row (local.get $s) (i32.add (local.get $mask) (i32.shl (i32.mul (local.get $i) (local.get $S)) (i32.const 2)))
        (local.get $n) (local.get $st) (local.get $scale)) ;; s = exp(s scale + mask - m), stat = m, 1 / sum
      (local.set $oi (i32.add (local.get $o) (i32.shl (i32.mul (local.get $i) (local.get $ldo)) (i32.const 2))))
      (call $vecmat (local.get $s) (local.get $v) (local.get $oi) (local.get $n) (local.get $hd) (local.get $hd))
      (call $scale (local.get $oi) (local.get $hd) (f32.load offset=4 (local.get $st)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))

  ;; attn_bwd: the gradient of attn_fwd for one (sequence, query head); p recomputed from stat. Adds into dk and dv
  ;; (shared by the query heads of a key/value head); writes dq.
  ;;   k [S, hd] (keys as rows); vt [hd, S] (values transposed); dout, o: row i at + i * ldo; p, dp: scratch [S].
  ;;   dP = dO_i vt;  dS = p (dP - dO_i . o_i) * scale;  dq_i = dS k;  dk += dS^T q_i;  dv += p^T dO_i
  (func (export "attn_bwd")
    (param $q i32) (param $kt i32) (param $k i32) (param $vt i32) (param $dout i32) (param $o i32) (param $mask i32)
    (param $lim i32) (param $stat i32) (param $p i32) (param $dp i32) (param $dq i32) (param $dk i32) (param $dv i32)
    (param $T i32) (param $S i32) (param $hd i32) (param $ldo i32) (param $scale f32)
    (local $i i32) (local $n i32) (local $st i32) (local $qi i32) (local $doi i32)
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $i) (local.get $T)))
      (local.set $n (i32.load (i32.add (local.get $lim) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $st (i32.add (local.get $stat) (i32.shl (local.get $i) (i32.const 3))))
      (local.set $qi (i32.add (local.get $q) (i32.shl (i32.mul (local.get $i) (local.get $hd)) (i32.const 2))))
      (local.set $doi (i32.shl (i32.mul (local.get $i) (local.get $ldo)) (i32.const 2)))
      (call $vecmat (local.get $qi) (local.get $kt) (local.get $p) (local.get $hd) (local.get $n) (local.get $S))
      (call $score_exp (local.get $p) (i32.add (local.get $mask) (i32.shl (i32.mul (local.get $i) (local.get $S)) (i32.const 2)))
        (local.get $n) (local.get $scale) (f32.load (local.get $st)) (f32.load offset=4 (local.get $st)))
      (call $vecmat (i32.add (local.get $dout) (local.get $doi)) (local.get $vt) (local.get $dp) (local.get $hd) (local.get $n) (local.get $S))
      (call $softmax_grad (local.get $p) (local.get $dp) (local.get $n)
        (call $dot (i32.add (local.get $dout) (local.get $doi)) (i32.add (local.get $o) (local.get $doi)) (local.get $hd))
        (local.get $scale))
      (call $attn_bwd_row (local.get $dp) (local.get $p) (local.get $qi) (i32.add (local.get $dout) (local.get $doi)) (local.get $k)
        (i32.add (local.get $dq) (i32.shl (i32.mul (local.get $i) (local.get $hd)) (i32.const 2))) (local.get $dk) (local.get $dv) (local.get $n) (local.get $hd))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows))))
  ;; swiglu_fwd(g, u, y, n): y = silu(g) u = g u / (1 + exp(-g)), n floats (byte offsets, y apart from g and u; the
  ;; Llama MLP's gate). exp(-g) goes to y first (exp_pass).
  (func (export "swiglu_fwd") (param $g i32) (param $u i32) (param $y i32) (param $n i32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $one v128)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $one (v128.const f32x4 1 1 1 1))
    (drop (call $exp_pass (local.get $g) (i32.const -1) (local.get $y) (local.get $n) (f32.const -1) (f32.const 0) (f32.const 1)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (v128.store (i32.add (local.get $y) (local.get $k))
        (f32x4.div (f32x4.mul (v128.load (i32.add (local.get $g) (local.get $k))) (v128.load (i32.add (local.get $u) (local.get $k))))
          (f32x4.add (local.get $one) (v128.load (i32.add (local.get $y) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (f32.store (i32.add (local.get $y) (local.get $k))
        (f32.div (f32.mul (f32.load (i32.add (local.get $g) (local.get $k))) (f32.load (i32.add (local.get $u) (local.get $k))))
          (f32.add (f32.const 1) (f32.load (i32.add (local.get $y) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2))))

  ;; swiglu_bwd(g, u, dy, dg, du, n): with s = sigmoid(g) = 1 / (1 + exp(-g)): du = dy g s; dg = dy u s (1 + g (1 - s))
  ;; (byte offsets; dg, du apart from the inputs). exp(-g) goes to dg first (exp_pass).
  (func (export "swiglu_bwd") (param $g i32) (param $u i32) (param $dy i32) (param $dg i32) (param $du i32) (param $n i32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $gv v128) (local $sg v128) (local $d v128) (local $one v128)
    (local $gs f32) (local $ss f32) (local $ds f32)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $one (v128.const f32x4 1 1 1 1))
    (drop (call $exp_pass (local.get $g) (i32.const -1) (local.get $dg) (local.get $n) (f32.const -1) (f32.const 0) (f32.const 1)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $k))))
      (local.set $d (v128.load (i32.add (local.get $dy) (local.get $k))))
      (local.set $sg (f32x4.div (local.get $one) (f32x4.add (local.get $one) (v128.load (i32.add (local.get $dg) (local.get $k))))))
      (v128.store (i32.add (local.get $du) (local.get $k)) (f32x4.mul (local.get $d) (f32x4.mul (local.get $gv) (local.get $sg))))
      (v128.store (i32.add (local.get $dg) (local.get $k))
        (f32x4.mul (f32x4.mul (local.get $d) (v128.load (i32.add (local.get $u) (local.get $k))))
          (f32x4.mul (local.get $sg) (f32x4.add (local.get $one) (f32x4.mul (local.get $gv) (f32x4.sub (local.get $one) (local.get $sg)))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $gs (f32.load (i32.add (local.get $g) (local.get $k))))
      (local.set $ds (f32.load (i32.add (local.get $dy) (local.get $k))))
      (local.set $ss (f32.div (f32.const 1) (f32.add (f32.const 1) (f32.load (i32.add (local.get $dg) (local.get $k))))))
      (f32.store (i32.add (local.get $du) (local.get $k)) (f32.mul (local.get $ds) (f32.mul (local.get $gs) (local.get $ss))))
      (f32.store (i32.add (local.get $dg) (local.get $k))
        (f32.mul (f32.mul (local.get $ds) (f32.load (i32.add (local.get $u) (local.get $k))))
          (f32.mul (local.get $ss) (f32.add (f32.const 1) (f32.mul (local.get $gs) (f32.sub (f32.const 1) (local.get $ss)))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2))))
  ;; rmsnorm_fwd(x, g, y, r, rows, d, eps): per row of d floats, rn = 1 / sqrt(mean(x^2) + eps) (stored at r + 4 n),
  ;; y = x rn g (byte offsets).
  (func (export "rmsnorm_fwd") (param $x i32) (param $g i32) (param $y i32) (param $r i32) (param $rows i32) (param $d i32) (param $eps f32)
    (local $n i32) (local $k i32) (local $d4 i32) (local $db i32) (local $row i32) (local $s4 v128) (local $v v128) (local $s f32) (local $rn f32) (local $rv v128)
    (local.set $db (i32.shl (local.get $d) (i32.const 2)))
    (local.set $d4 (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2)))
    (block $done (loop $rowsl
      (br_if $done (i32.ge_s (local.get $n) (local.get $rows)))
      (local.set $row (i32.add (local.get $x) (i32.mul (local.get $n) (local.get $db))))
      (local.set $s4 (v128.const i32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $k) (local.get $d4)))
        (local.set $v (v128.load (i32.add (local.get $row) (local.get $k))))
        (local.set $s4 (f32x4.add (local.get $s4) (f32x4.mul (local.get $v) (local.get $v))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l1)))
      (local.set $s (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $s4)) (f32x4.extract_lane 1 (local.get $s4)))
        (f32.add (f32x4.extract_lane 2 (local.get $s4)) (f32x4.extract_lane 3 (local.get $s4)))))
      (block $d2 (loop $l2
        (br_if $d2 (i32.ge_u (local.get $k) (local.get $db)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (i32.add (local.get $row) (local.get $k))) (f32.load (i32.add (local.get $row) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l2)))
      (local.set $rn (f32.div (f32.const 1) (f32.sqrt (f32.add (f32.div (local.get $s) (f32.convert_i32_s (local.get $d))) (local.get $eps)))))
      (f32.store (i32.add (local.get $r) (i32.shl (local.get $n) (i32.const 2))) (local.get $rn))
      (local.set $rv (f32x4.splat (local.get $rn)))
      (local.set $k (i32.const 0))
      (block $d3 (loop $l3
        (br_if $d3 (i32.ge_u (local.get $k) (local.get $d4)))
        (v128.store (i32.add (i32.add (local.get $y) (i32.mul (local.get $n) (local.get $db))) (local.get $k))
          (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $row) (local.get $k))) (local.get $rv)) (v128.load (i32.add (local.get $g) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l3)))
      (block $d4b (loop $l4
        (br_if $d4b (i32.ge_u (local.get $k) (local.get $db)))
        (f32.store (i32.add (i32.add (local.get $y) (i32.mul (local.get $n) (local.get $db))) (local.get $k))
          (f32.mul (f32.mul (f32.load (i32.add (local.get $row) (local.get $k))) (local.get $rn)) (f32.load (i32.add (local.get $g) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l4)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $rowsl))))

  ;; rmsnorm_bwd(x, g, dy, r, dx, dg, rows, d): with rn from the forward, per row:
  ;;   dx = rn dy g - x rn^3 / d sum_j(dy_j g_j x_j);  dg += dy x rn (dg is added to: zero it first)
  (func (export "rmsnorm_bwd") (param $x i32) (param $g i32) (param $dy i32) (param $r i32) (param $dx i32) (param $dg i32) (param $rows i32) (param $d i32)
    (local $n i32) (local $k i32) (local $d4 i32) (local $db i32) (local $off i32) (local $s4 v128) (local $xv v128) (local $dv v128) (local $gv v128)
    (local $s f32) (local $rn f32) (local $c f32) (local $rv v128) (local $cv v128)
    (local.set $db (i32.shl (local.get $d) (i32.const 2)))
    (local.set $d4 (i32.shl (i32.and (local.get $d) (i32.const -4)) (i32.const 2)))
    (block $done (loop $rowsl
      (br_if $done (i32.ge_s (local.get $n) (local.get $rows)))
      (local.set $off (i32.mul (local.get $n) (local.get $db)))
      (local.set $rn (f32.load (i32.add (local.get $r) (i32.shl (local.get $n) (i32.const 2)))))
      (local.set $rv (f32x4.splat (local.get $rn)))
      (local.set $s4 (v128.const i32x4 0 0 0 0))
      (local.set $k (i32.const 0))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $k) (local.get $d4)))
        (local.set $xv (v128.load (i32.add (i32.add (local.get $x) (local.get $off)) (local.get $k))))
        (local.set $dv (v128.load (i32.add (i32.add (local.get $dy) (local.get $off)) (local.get $k))))
        (local.set $s4 (f32x4.add (local.get $s4) (f32x4.mul (f32x4.mul (local.get $dv) (v128.load (i32.add (local.get $g) (local.get $k)))) (local.get $xv))))
        (v128.store (i32.add (local.get $dg) (local.get $k))
          (f32x4.add (v128.load (i32.add (local.get $dg) (local.get $k))) (f32x4.mul (f32x4.mul (local.get $dv) (local.get $xv)) (local.get $rv))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l1)))
      (local.set $s (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $s4)) (f32x4.extract_lane 1 (local.get $s4)))
        (f32.add (f32x4.extract_lane 2 (local.get $s4)) (f32x4.extract_lane 3 (local.get $s4)))))
      (block $d2 (loop $l2
        (br_if $d2 (i32.ge_u (local.get $k) (local.get $db)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.mul
          (f32.load (i32.add (i32.add (local.get $dy) (local.get $off)) (local.get $k))) (f32.load (i32.add (local.get $g) (local.get $k))))
          (f32.load (i32.add (i32.add (local.get $x) (local.get $off)) (local.get $k))))))
        (f32.store (i32.add (local.get $dg) (local.get $k))
          (f32.add (f32.load (i32.add (local.get $dg) (local.get $k))) (f32.mul (f32.mul
            (f32.load (i32.add (i32.add (local.get $dy) (local.get $off)) (local.get $k)))
            (f32.load (i32.add (i32.add (local.get $x) (local.get $off)) (local.get $k)))) (local.get $rn))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l2)))
      (local.set $c (f32.div (f32.mul (f32.mul (f32.mul (local.get $rn) (local.get $rn)) (local.get $rn)) (local.get $s)) (f32.convert_i32_s (local.get $d))))
      (local.set $cv (f32x4.splat (local.get $c)))
      (local.set $k (i32.const 0))
      (block $d3 (loop $l3
        (br_if $d3 (i32.ge_u (local.get $k) (local.get $d4)))
        (v128.store (i32.add (i32.add (local.get $dx) (local.get $off)) (local.get $k))
          (f32x4.sub
            (f32x4.mul (f32x4.mul (local.get $rv) (v128.load (i32.add (i32.add (local.get $dy) (local.get $off)) (local.get $k)))) (v128.load (i32.add (local.get $g) (local.get $k))))
            (f32x4.mul (v128.load (i32.add (i32.add (local.get $x) (local.get $off)) (local.get $k))) (local.get $cv))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (br $l3)))
      (block $d4b (loop $l4
        (br_if $d4b (i32.ge_u (local.get $k) (local.get $db)))
        (f32.store (i32.add (i32.add (local.get $dx) (local.get $off)) (local.get $k))
          (f32.sub
            (f32.mul (f32.mul (local.get $rn) (f32.load (i32.add (i32.add (local.get $dy) (local.get $off)) (local.get $k)))) (f32.load (i32.add (local.get $g) (local.get $k))))
            (f32.mul (f32.load (i32.add (i32.add (local.get $x) (local.get $off)) (local.get $k))) (local.get $c))))
        (local.set $k (i32.add (local.get $k) (i32.const 4)))
        (br $l4)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $rowsl))))
  ;; rope(x, cos, sin, y, rows, t, hd, back): RoPE in the rotate-half convention over rows of hd floats (byte offsets).
  ;; Row n of x is position n % t of its sequence; cos and sin hold t rows of hd per sequence, the sequence being
  ;; n / (heads t), the caller passing rows of one sequence at a time (heads x t rows). With h = hd / 2:
  ;;   forward:  y[i] = x[i] cos[i] - x[i+h] sin[i];      y[i+h] = x[i+h] cos[i+h] + x[i] sin[i+h]
  ;;   backward: y[i] = x[i] cos[i] + x[i+h] sin[i+h];    y[i+h] = x[i+h] cos[i+h] - x[i] sin[i]
  (func (export "rope") (param $x i32) (param $cos i32) (param $sin i32) (param $y i32) (param $rows i32) (param $t i32) (param $hd i32) (param $back i32)
    (local $n i32) (local $i i32) (local $hb i32) (local $h4 i32) (local $rb i32) (local $o i32) (local $c i32)
    (local $lo v128) (local $hi v128) (local $slo v128) (local $shi v128) (local $l f32) (local $u f32)
    (local.set $rb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $hb (i32.shl (local.get $hd) (i32.const 1))) ;; h floats in bytes
    (local.set $h4 (i32.shl (i32.and (i32.shr_u (local.get $hd) (i32.const 1)) (i32.const -4)) (i32.const 2)))
    (block $done (loop $rowsl
      (br_if $done (i32.ge_s (local.get $n) (local.get $rows)))
      (local.set $o (i32.mul (local.get $n) (local.get $rb)))
      (local.set $c (i32.mul (i32.rem_u (local.get $n) (local.get $t)) (local.get $rb)))
      (local.set $i (i32.const 0))
      (block $d4 (loop $l4
        (br_if $d4 (i32.ge_u (local.get $i) (local.get $h4)))
        (local.set $lo (v128.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $i)))))
        (local.set $hi (v128.load (i32.add (local.get $x) (i32.add (local.get $o) (i32.add (local.get $i) (local.get $hb))))))
        (local.set $slo (v128.load (i32.add (local.get $sin) (i32.add (local.get $c) (local.get $i)))))
        (local.set $shi (v128.load (i32.add (local.get $sin) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb))))))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $o) (local.get $i)))
          (if (result v128) (local.get $back)
            (then (f32x4.add (f32x4.mul (local.get $lo) (v128.load (i32.add (local.get $cos) (i32.add (local.get $c) (local.get $i))))) (f32x4.mul (local.get $hi) (local.get $shi))))
            (else (f32x4.sub (f32x4.mul (local.get $lo) (v128.load (i32.add (local.get $cos) (i32.add (local.get $c) (local.get $i))))) (f32x4.mul (local.get $hi) (local.get $slo))))))
        (v128.store (i32.add (local.get $y) (i32.add (local.get $o) (i32.add (local.get $i) (local.get $hb))))
          (if (result v128) (local.get $back)
            (then (f32x4.sub (f32x4.mul (local.get $hi) (v128.load (i32.add (local.get $cos) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb)))))) (f32x4.mul (local.get $lo) (local.get $slo))))
            (else (f32x4.add (f32x4.mul (local.get $hi) (v128.load (i32.add (local.get $cos) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb)))))) (f32x4.mul (local.get $lo) (local.get $shi))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l4)))
      (block $d1 (loop $l1
        (br_if $d1 (i32.ge_u (local.get $i) (local.get $hb)))
        (local.set $l (f32.load (i32.add (local.get $x) (i32.add (local.get $o) (local.get $i)))))
        (local.set $u (f32.load (i32.add (local.get $x) (i32.add (local.get $o) (i32.add (local.get $i) (local.get $hb))))))
        (f32.store (i32.add (local.get $y) (i32.add (local.get $o) (local.get $i)))
          (if (result f32) (local.get $back)
            (then (f32.add (f32.mul (local.get $l) (f32.load (i32.add (local.get $cos) (i32.add (local.get $c) (local.get $i)))))
              (f32.mul (local.get $u) (f32.load (i32.add (local.get $sin) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb))))))))
            (else (f32.sub (f32.mul (local.get $l) (f32.load (i32.add (local.get $cos) (i32.add (local.get $c) (local.get $i)))))
              (f32.mul (local.get $u) (f32.load (i32.add (local.get $sin) (i32.add (local.get $c) (local.get $i)))))))))
        (f32.store (i32.add (local.get $y) (i32.add (local.get $o) (i32.add (local.get $i) (local.get $hb))))
          (if (result f32) (local.get $back)
            (then (f32.sub (f32.mul (local.get $u) (f32.load (i32.add (local.get $cos) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb))))))
              (f32.mul (local.get $l) (f32.load (i32.add (local.get $sin) (i32.add (local.get $c) (local.get $i)))))))
            (else (f32.add (f32.mul (local.get $u) (f32.load (i32.add (local.get $cos) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb))))))
              (f32.mul (local.get $l) (f32.load (i32.add (local.get $sin) (i32.add (local.get $c) (i32.add (local.get $i) (local.get $hb))))))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l1)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $rowsl))))
  ;; dropout(x, y, n, seed, thr, c): inverted dropout over n floats (byte offsets): y[i] = x[i] c where
  ;; hash(i, seed) >= thr (unsigned), else 0. The hash is counter-based (lowbias32 of i * 0x9E3779B1 plus the
  ;; mixed seed), so a mask is a function of (seed, i) alone: the backward makes the same one again.
  (func (export "dropout") (param $x i32) (param $y i32) (param $n i32) (param $seed i32) (param $thr i32) (param $c f32)
    (local $k i32) (local $n4 i32) (local $nb i32) (local $idx v128) (local $h v128) (local $sm v128) (local $tv v128) (local $cv v128)
    (local $i i32) (local $hs i32) (local $sms i32)
    (local.set $n4 (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $sms (i32.mul (local.get $seed) (i32.const 0x85EBCA77)))
    (local.set $sm (i32x4.splat (local.get $sms)))
    (local.set $tv (i32x4.splat (local.get $thr)))
    (local.set $cv (f32x4.splat (local.get $c)))
    (local.set $idx (v128.const i32x4 0 1 2 3))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $h (i32x4.add (i32x4.mul (local.get $idx) (v128.const i32x4 0x9E3779B1 0x9E3779B1 0x9E3779B1 0x9E3779B1)) (local.get $sm)))
      (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
      (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x7feb352d 0x7feb352d 0x7feb352d 0x7feb352d)))
      (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 15))))
      (local.set $h (i32x4.mul (local.get $h) (v128.const i32x4 0x846ca68b 0x846ca68b 0x846ca68b 0x846ca68b)))
      (local.set $h (v128.xor (local.get $h) (i32x4.shr_u (local.get $h) (i32.const 16))))
      (v128.store (i32.add (local.get $y) (local.get $k))
        (v128.and (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $cv)) (i32x4.ge_u (local.get $h) (local.get $tv))))
      (local.set $idx (i32x4.add (local.get $idx) (v128.const i32x4 4 4 4 4)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $l1)))
    (local.set $i (i32.shr_u (local.get $k) (i32.const 2)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $k) (local.get $nb)))
      (local.set $hs (i32.add (i32.mul (local.get $i) (i32.const 0x9E3779B1)) (local.get $sms)))
      (local.set $hs (i32.xor (local.get $hs) (i32.shr_u (local.get $hs) (i32.const 16))))
      (local.set $hs (i32.mul (local.get $hs) (i32.const 0x7feb352d)))
      (local.set $hs (i32.xor (local.get $hs) (i32.shr_u (local.get $hs) (i32.const 15))))
      (local.set $hs (i32.mul (local.get $hs) (i32.const 0x846ca68b)))
      (local.set $hs (i32.xor (local.get $hs) (i32.shr_u (local.get $hs) (i32.const 16))))
      (f32.store (i32.add (local.get $y) (local.get $k))
        (select (f32.mul (f32.load (i32.add (local.get $x) (local.get $k))) (local.get $c)) (f32.const 0)
          (i32.ge_u (local.get $hs) (local.get $thr))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $l2))))
)
