;; tabtune's own WebAssembly SIMD kernels, for batch-1 decoding (src/model/fast-decode.ts) and fused
;; attention on the CPU backends (src/model/cpu-attention.ts), where TF.js's per-op overhead, not
;; arithmetic, sets the pace. Assembled into src/kernels/simd-wasm.ts by `npm run build:wasm`
;; (scripts/build-wasm.ts); a unit test checks that the committed bytes are what this file assembles to.
;;
;; vecmat(x, w, y, n, m, ldw): y[j] = sum_k x[k] * w[k * ldw + j] for j < m, k < n
;;   x, w, y are byte offsets of float32 arrays in the module's memory; w holds n rows of m used floats,
;;   ldw floats apart: a Linear's weight in math layout [in, out], a cache of transposed keys [hd, S]
;;   (scores) or of values [S, hd] (attention output).
;; Sixteen outputs at a time stay in four f32x4 accumulators while k runs over the rows (each x[k] is
;; splatted once per block); then blocks of four; the last m % 4 outputs one float at a time. Each output
;; is summed over k in order, like a plain matMul.
(module
  (memory (export "memory") 1)
  (func (export "vecmat")
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
  ;; ger(a, x, y, n, m, ldy): y[j * ldy + k] += a[j] * x[k] for j < n, k < m (a rank-1 update)
  ;;   byte offsets as in vecmat; four outputs at a time, the last m % 4 one at a time.
  (func (export "ger")
    (param $a i32) (param $x i32) (param $y i32) (param $n i32) (param $m i32) (param $ldy i32)
    (local $j i32) (local $k i32) (local $row i32) (local $m4 i32) (local $mb i32) (local $av v128) (local $as f32)
    (local.set $m4 (i32.shl (i32.and (local.get $m) (i32.const -4)) (i32.const 2)))
    (local.set $mb (i32.shl (local.get $m) (i32.const 2)))
    (local.set $j (i32.const 0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_s (local.get $j) (local.get $n)))
        (local.set $as (f32.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $av (f32x4.splat (local.get $as)))
        (local.set $row (i32.add (local.get $y) (i32.shl (i32.mul (local.get $j) (local.get $ldy)) (i32.const 2))))
        (local.set $k (i32.const 0))
        (block $kdone
          (loop $kloop
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $m4)))
            (v128.store (i32.add (local.get $row) (local.get $k))
              (f32x4.add (v128.load (i32.add (local.get $row) (local.get $k)))
                (f32x4.mul (local.get $av) (v128.load (i32.add (local.get $x) (local.get $k))))))
            (local.set $k (i32.add (local.get $k) (i32.const 16)))
            (br $kloop)))
        (block $tdone
          (loop $tloop
            (br_if $tdone (i32.ge_u (local.get $k) (local.get $mb)))
            (f32.store (i32.add (local.get $row) (local.get $k))
              (f32.add (f32.load (i32.add (local.get $row) (local.get $k)))
                (f32.mul (local.get $as) (f32.load (i32.add (local.get $x) (local.get $k))))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $tloop)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $rows)))))

