;; Dot products of one query with every fingerprint of a scope, with WebAssembly SIMD.
;;
;; Fingerprints are stored by column: coordinate d of case i is the int8 at columns + d * stride + i, so the
;; query's non-zero coordinates ("terms") each add one weighted column to the running sums. Sixteen cases are
;; handled per step (one 128-bit load, widened to 16-bit, multiplied into four 32-bit lanes, which cannot
;; overflow: 128 * 127 * 127 < 2^31). Cases are taken in blocks of 2,048 so that the 8 KiB of sums being
;; added to stay in the first-level cache while every term passes over them.
(module
  (import "env" "memory" (memory 1))

  ;; sums[i] = Σ over terms t of weight(t) * columns[dimension(t) * stride + i], for i < count rounded up to 16.
  ;; A term is two i32: the dimension and the weight. `columns`, `stride` and `sums` are multiples of 16.
  (func (export "dotProducts")
    (param $columns i32) (param $stride i32) (param $count i32)
    (param $terms i32) (param $termCount i32) (param $sums i32)
    (local $end i32) (local $block i32) (local $blockEnd i32) (local $term i32)
    (local $column i32) (local $weight v128) (local $case i32) (local $sum i32)
    (local $low v128) (local $high v128)

    (local.set $end (i32.and (i32.add (local.get $count) (i32.const 15)) (i32.const -16)))
    (memory.fill (local.get $sums) (i32.const 0) (i32.shl (local.get $end) (i32.const 2)))

    (block $blocksDone
      (loop $blocks
        (br_if $blocksDone (i32.ge_u (local.get $block) (local.get $end)))
        (local.set $blockEnd (i32.add (local.get $block) (i32.const 2048)))
        (if (i32.gt_u (local.get $blockEnd) (local.get $end))
          (then (local.set $blockEnd (local.get $end))))

        (local.set $term (i32.const 0))
        (block $termsDone
          (loop $terms
            (br_if $termsDone (i32.ge_u (local.get $term) (local.get $termCount)))
            (local.set $column
              (i32.add (local.get $columns)
                (i32.mul
                  (i32.load (i32.add (local.get $terms) (i32.shl (local.get $term) (i32.const 3))))
                  (local.get $stride))))
            (local.set $weight
              (i16x8.splat
                (i32.load offset=4 (i32.add (local.get $terms) (i32.shl (local.get $term) (i32.const 3))))))

            (local.set $case (local.get $block))
            (block $casesDone
              (loop $cases
                (br_if $casesDone (i32.ge_u (local.get $case) (local.get $blockEnd)))
                (local.set $low (v128.load (i32.add (local.get $column) (local.get $case))))
                (local.set $high (i16x8.extend_high_i8x16_s (local.get $low)))
                (local.set $low (i16x8.extend_low_i8x16_s (local.get $low)))
                (local.set $sum (i32.add (local.get $sums) (i32.shl (local.get $case) (i32.const 2))))
                (v128.store offset=0 (local.get $sum)
                  (i32x4.add (v128.load offset=0 (local.get $sum))
                    (i32x4.extmul_low_i16x8_s (local.get $low) (local.get $weight))))
                (v128.store offset=16 (local.get $sum)
                  (i32x4.add (v128.load offset=16 (local.get $sum))
                    (i32x4.extmul_high_i16x8_s (local.get $low) (local.get $weight))))
                (v128.store offset=32 (local.get $sum)
                  (i32x4.add (v128.load offset=32 (local.get $sum))
                    (i32x4.extmul_low_i16x8_s (local.get $high) (local.get $weight))))
                (v128.store offset=48 (local.get $sum)
                  (i32x4.add (v128.load offset=48 (local.get $sum))
                    (i32x4.extmul_high_i16x8_s (local.get $high) (local.get $weight))))
                (local.set $case (i32.add (local.get $case) (i32.const 16)))
                (br $cases)))

            (local.set $term (i32.add (local.get $term) (i32.const 1)))
            (br $terms)))

        (local.set $block (local.get $blockEnd))
        (br $blocks)))))
