//! The walks down a tree laid out for scoring: the scalar reference and, where the CPU has
//! them, the AVX2 and AVX-512 walks tested against it.

use super::layout::{HEAP_MAX_DEPTH, LANES, Slot, TOP_LEVELS, Top};

/// The vector instructions a walk may use.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) enum Simd {
    None,
    Avx2,
    Avx512,
}

impl Simd {
    /// The best this CPU has.
    pub(super) fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::None
    }
}

/// Where `LANES` rows went in one tree of a [`Heap`].
pub(super) struct Walk {
    /// Each lane's bottom slot (its path: the slot of step `k` is
    /// `((at + 1) >> (depth - k)) - 1`).
    pub(super) at: [u64; LANES],
    /// Bit `lane` of `outside[step]`: the lane's value was outside the
    /// slot's training range at that step.
    pub(super) outside: [u32; HEAP_MAX_DEPTH],
}

/// Walks the rows `group..group + LANES` of `block` down `slots`, eight
/// lanes side by side (their loads overlap): each step loads a lane's slot
/// and value and computes its next slot.
///
/// # Safety
/// `slots` holds the levels above the bottom of a complete tree of depth
/// `depth <= HEAP_MAX_DEPTH` (`2^depth - 1` slots) whose columns are below
/// `block.len()`, and `group + LANES <= BLOCK <= block.len()`.
pub(super) unsafe fn walk_scalar<const RANGE: bool>(
    slots: &[Slot],
    depth: usize,
    block: &[f64],
    group: usize,
    walk: &mut Walk,
) {
    // Eight lanes at a time, their slots in locals (registers).
    for part in (0..LANES).step_by(8) {
        let mut at = [0usize; 8];
        for step in 0..depth {
            let mut outside = 0u32;
            for (l, at) in at.iter_mut().enumerate() {
                // SAFETY: before step `k` every lane is at a slot of depth
                // `k < depth`, below `2^(k+1) - 1 <= 2^depth - 1 =
                // slots.len()`. Columns and lanes: the caller's promise.
                let slot = unsafe { slots.get_unchecked(*at) };
                let v = unsafe { *block.get_unchecked(slot.column as usize + group + part + l) };
                if RANGE {
                    outside |= u32::from((v > slot.hi) | (v < slot.lo)) << l;
                }
                *at = 2 * *at + 1 + usize::from(v > slot.value);
            }
            walk.outside[step] |= outside << part;
        }
        for (w, a) in walk.at[part..part + 8].iter_mut().zip(at) {
            *w = a as u64;
        }
    }
}

/// [`walk_scalar`] with AVX2 gathers, four lanes a vector and eight vectors
/// in flight: the same slots reached, the same steps marked outside.
///
/// # Safety
/// As [`walk_scalar`], and the CPU has AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn walk_avx2<const RANGE: bool>(
    slots: &[Slot],
    depth: usize,
    block: &[f64],
    group: usize,
    walk: &mut Walk,
) {
    use std::arch::x86_64::*;
    // Byte offsets into `slots`: a slot is 32 bytes, `value` at 0, `lo` at
    // 8, `hi` at 16, `column` at 24.
    let base = slots.as_ptr().cast::<u8>();
    let values = block.as_ptr();
    let one = _mm256_set1_epi64x(1);
    let eight = _mm256_set1_epi64x(8);
    // Eight vectors of four lanes in flight, so the gathers' latency
    // overlaps.
    let g = _mm256_set_epi64x(
        group as i64 + 3,
        group as i64 + 2,
        group as i64 + 1,
        group as i64,
    );
    let lanes: [__m256i; 8] =
        std::array::from_fn(|h| _mm256_add_epi64(g, _mm256_set1_epi64x(4 * h as i64)));
    let mut at = [_mm256_setzero_si256(); 8];
    for step in 0..depth {
        let mut outside = 0u32;
        for h in 0..8 {
            let off = _mm256_slli_epi64::<5>(at[h]);
            // SAFETY: the offsets are of slots inside `slots` and of values
            // inside `block`, as in `walk_scalar`.
            let column = unsafe { _mm256_i64gather_epi64::<1>(base.add(24).cast::<i64>(), off) };
            let v = unsafe { _mm256_i64gather_pd::<8>(values, _mm256_add_epi64(column, lanes[h])) };
            let value = unsafe { _mm256_i64gather_pd::<1>(base.cast::<f64>(), off) };
            let right = _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_GT_OQ>(v, value));
            if RANGE {
                // Right of the split the value can only be above `hi`, left
                // of it only below `lo`: one bound to load.
                let bound_off =
                    _mm256_add_epi64(_mm256_add_epi64(off, eight), _mm256_and_si256(right, eight));
                let bound = unsafe { _mm256_i64gather_pd::<1>(base.cast::<f64>(), bound_off) };
                let above = _mm256_cmp_pd::<_CMP_GT_OQ>(v, bound);
                let below = _mm256_cmp_pd::<_CMP_LT_OQ>(v, bound);
                let out = _mm256_blendv_pd(below, above, _mm256_castsi256_pd(right));
                outside |= (_mm256_movemask_pd(out) as u32) << (4 * h);
            }
            // `right` is all ones (-1) where the value went right.
            at[h] = _mm256_sub_epi64(_mm256_add_epi64(_mm256_add_epi64(at[h], at[h]), one), right);
        }
        walk.outside[step] = outside;
    }
    for (h, at) in at.iter().enumerate() {
        // SAFETY: lanes 4h..4h + 4 of `walk.at`.
        unsafe { _mm256_storeu_si256(walk.at.as_mut_ptr().add(4 * h).cast::<__m256i>(), *at) };
    }
}

/// [`walk_scalar`] with AVX-512, eight lanes a vector and four vectors in
/// flight: the same slots reached, the same steps marked outside. The first
/// [`TOP_LEVELS`] levels' slots come from the tree's [`Top`] tables by
/// permutes; deeper ones are gathered. Only the rows' values are gathered at
/// every step.
///
/// # Safety
/// As [`walk_scalar`], `tops` are the tree's tables, and the CPU has
/// AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn walk_avx512<const RANGE: bool>(
    slots: &[Slot],
    tops: &[Top; 2],
    depth: usize,
    block: &[f64],
    group: usize,
    walk: &mut Walk,
) {
    use std::arch::x86_64::*;
    // Byte offsets into `slots`: a slot is 32 bytes, `value` at 0, `lo` at
    // 8, `hi` at 16, `column` at 24.
    let base = slots.as_ptr().cast::<u8>();
    let values = block.as_ptr();
    let one = _mm512_set1_epi64(1);
    let eight = _mm512_set1_epi64(8);
    // Four vectors of eight lanes in flight, so the gathers' latency
    // overlaps.
    let g = _mm512_add_epi64(
        _mm512_set1_epi64(group as i64),
        _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
    );
    let lanes: [__m512i; 4] =
        std::array::from_fn(|h| _mm512_add_epi64(g, _mm512_set1_epi64(8 * h as i64)));
    let mut at = [_mm512_setzero_si512(); 4];
    let top_steps = depth.min(TOP_LEVELS);
    for (step, outside_at) in walk.outside[..top_steps].iter_mut().enumerate() {
        let top = &tops[usize::from(step >= 4)];
        // A field's 16 entries as two vectors (the table is 64-byte
        // aligned, each field 128 bytes).
        let pair = |field: &[f64; 16]| unsafe {
            (
                _mm512_loadu_pd(field.as_ptr()),
                _mm512_loadu_pd(field.as_ptr().add(8)),
            )
        };
        let (value0, value1) = pair(&top.value);
        let (lo0, lo1) = pair(&top.lo);
        let (hi0, hi1) = pair(&top.hi);
        // SAFETY: 16 u64s.
        let (column0, column1) = unsafe {
            (
                _mm512_loadu_si512(top.column.as_ptr().cast()),
                _mm512_loadu_si512(top.column.as_ptr().add(8).cast()),
            )
        };
        let mut outside = 0u32;
        for h in 0..4 {
            let column = _mm512_permutex2var_epi64(column0, at[h], column1);
            // SAFETY: the columns are of slots of this tree, their values
            // inside `block`, as in `walk_scalar`.
            let v = unsafe { _mm512_i64gather_pd::<8>(_mm512_add_epi64(column, lanes[h]), values) };
            let value = _mm512_permutex2var_pd(value0, at[h], value1);
            let right = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, value);
            if RANGE {
                // Right of the split (above `value >= lo`) the value can
                // only be above `hi`, left of it only below `lo`.
                let lo = _mm512_permutex2var_pd(lo0, at[h], lo1);
                let hi = _mm512_permutex2var_pd(hi0, at[h], hi1);
                let out = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, hi)
                    | _mm512_cmp_pd_mask::<_CMP_LT_OQ>(v, lo);
                outside |= u32::from(out) << (8 * h);
            }
            let next = _mm512_add_epi64(_mm512_add_epi64(at[h], at[h]), one);
            at[h] = _mm512_mask_add_epi64(next, right, next, one);
        }
        *outside_at = outside;
    }
    for outside_at in &mut walk.outside[top_steps..depth] {
        let mut outside = 0u32;
        for h in 0..4 {
            let off = _mm512_slli_epi64::<5>(at[h]);
            // SAFETY: the offsets are of slots inside `slots` and of values
            // inside `block`, as in `walk_scalar`.
            let column = unsafe { _mm512_i64gather_epi64::<1>(off, base.add(24).cast::<i64>()) };
            let v = unsafe { _mm512_i64gather_pd::<8>(_mm512_add_epi64(column, lanes[h]), values) };
            let value = unsafe { _mm512_i64gather_pd::<1>(off, base.cast::<f64>()) };
            let right = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, value);
            if RANGE {
                // One bound to load, as above.
                let low = _mm512_add_epi64(off, eight);
                let bound_off = _mm512_mask_add_epi64(low, right, low, eight);
                let bound = unsafe { _mm512_i64gather_pd::<1>(bound_off, base.cast::<f64>()) };
                let above = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, bound);
                let below = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(v, bound);
                let out = (above & right) | (below & !right);
                outside |= u32::from(out) << (8 * h);
            }
            let next = _mm512_add_epi64(_mm512_add_epi64(at[h], at[h]), one);
            at[h] = _mm512_mask_add_epi64(next, right, next, one);
        }
        *outside_at = outside;
    }
    for (h, at) in at.iter().enumerate() {
        // SAFETY: lanes 8h..8h + 8 of `walk.at`.
        unsafe { _mm512_storeu_si512(walk.at.as_mut_ptr().add(8 * h).cast(), *at) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::forest::IsolationForestParams;
    use crate::model::forest::Node;
    use crate::model::forest::layout::BLOCK;
    use crate::model::forest::scorer::Heap;
    use crate::model::forest::tree::check_trees;
    use ndarray::Array2;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    /// The walks this CPU can run.
    fn walks() -> Vec<Simd> {
        let mut out = vec![Simd::None];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                out.push(Simd::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Simd::Avx512);
            }
        }
        out
    }

    #[test]
    #[expect(
        clippy::too_many_lines,
        reason = "every tree shape through every walk the CPU has, compared slot by slot in one place"
    )]
    fn every_walk_reaches_the_same_slots_and_scores_as_the_trees() {
        let have = walks();
        eprintln!("walks compared: {have:?}");
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for (n, d, psi) in [
            (50, 1, 2),
            (60, 3, 3),
            (400, 3, 16),
            (3000, 19, 256),
            (5000, 2, 4096),
        ] {
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-1.0..1.0f64).powi(3));
            for range_aware in [true, false] {
                let f = IsolationForestParams {
                    n_trees: 7,
                    max_samples: psi,
                    range_aware,
                    ..Default::default()
                }
                .fit(x.view())
                .unwrap();
                let depth = check_trees(&f.trees, d).unwrap();
                let heap = Heap::new(&f.trees, depth, d).unwrap();
                // Each tree's own split values and bounds, far values and
                // training values, so every comparison meets its edges.
                let edges: Vec<(usize, f64)> = f
                    .trees
                    .iter()
                    .flat_map(|t| &t.nodes)
                    .filter_map(|n| match *n {
                        Node::Split {
                            feature,
                            value,
                            lo,
                            hi,
                            ..
                        } => Some([(feature, value), (feature, lo), (feature, hi)]),
                        Node::Leaf { .. } => None,
                    })
                    .flatten()
                    .map(|(f, v)| (f as usize, v))
                    .collect();
                for round in 0..4 {
                    let mut block = vec![0.0; d * BLOCK];
                    for k in 0..BLOCK {
                        for j in 0..d {
                            block[j * BLOCK + k] = match rng.gen_range(0..4) {
                                0 => x[[rng.gen_range(0..n), j]],
                                1 => rng.gen_range(-3.0..3.0),
                                _ => {
                                    let same: Vec<f64> =
                                        edges.iter().filter(|e| e.0 == j).map(|e| e.1).collect();
                                    if same.is_empty() {
                                        0.5
                                    } else {
                                        same[rng.gen_range(0..same.len())]
                                    }
                                }
                            };
                        }
                    }
                    let per_tree = (1usize << depth) - 1;
                    for t in 0..f.trees.len() {
                        let slots = &heap.slots[t * per_tree..(t + 1) * per_tree];
                        let tops: &[super::Top; 2] =
                            heap.tops[2 * t..2 * t + 2].try_into().unwrap();
                        for group in (0..BLOCK).step_by(LANES) {
                            let run = |simd: Simd| {
                                let mut w = Walk {
                                    at: [0; LANES],
                                    outside: [0; super::HEAP_MAX_DEPTH],
                                };
                                // SAFETY: as in `Heap::add_tree`; vector
                                // walks only when the CPU has them.
                                unsafe {
                                    match simd {
                                        #[cfg(target_arch = "x86_64")]
                                        Simd::Avx2 => super::walk_avx2::<true>(
                                            slots, depth, &block, group, &mut w,
                                        ),
                                        #[cfg(target_arch = "x86_64")]
                                        Simd::Avx512 => super::walk_avx512::<true>(
                                            slots, tops, depth, &block, group, &mut w,
                                        ),
                                        _ => {
                                            walk_scalar::<true>(slots, depth, &block, group, &mut w)
                                        }
                                    }
                                }
                                (w.at, w.outside)
                            };
                            let reference = run(Simd::None);
                            for &simd in &have[1..] {
                                assert_eq!(
                                    run(simd),
                                    reference,
                                    "{simd:?} psi {psi} tree {t} group {group} round {round}"
                                );
                            }
                        }
                    }
                    for &simd in &have {
                        let mut totals = [-0.0; BLOCK];
                        for t in 0..f.trees.len() {
                            if range_aware {
                                heap.add_tree::<true>(t, &block, &mut totals, simd);
                            } else {
                                heap.add_tree::<false>(t, &block, &mut totals, simd);
                            }
                        }
                        for (k, total) in totals.iter().enumerate() {
                            let row: Vec<f64> = (0..d).map(|j| block[j * BLOCK + k]).collect();
                            let one: f64 = f
                                .trees
                                .iter()
                                .map(|t| {
                                    let r = ndarray::ArrayView1::from(&row);
                                    if range_aware {
                                        t.expected_path_length(r)
                                    } else {
                                        t.path_length(r)
                                    }
                                })
                                .sum();
                            assert_eq!(total.to_bits(), one.to_bits(), "{simd:?} row {k}");
                        }
                    }
                }
            }
        }
    }
}
