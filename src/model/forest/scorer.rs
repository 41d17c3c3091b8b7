//! The compiled scorer: every tree laid out as a complete binary tree
//! ([`Heap`]) and walked block by block with the widest walk the CPU has
//! (see [`super::walk`]).

use ndarray::ArrayView2;

use super::fitted::IsolationForest;
use super::layout::{BLOCK, HEAP_MAX_DEPTH, LANES, PASS, PASS_TOP, Slot, TOP_LEVELS, Top};
use super::params::{ForestError, average_path_length, c_leaf, check_finite};
use super::tree::{Node, Tree, check_trees};
use super::walk::{Simd, Walk, walk_scalar};
#[cfg(target_arch = "x86_64")]
use super::walk::{walk_avx2, walk_avx512};
use crate::util::threads::{default_threads, in_chunks};

/// Every tree laid out for scoring as a complete binary tree of the depth
/// `D` of the forest's deepest leaf: the children of slot `s` are
/// `2s + 1` and `2s + 2`, so a walk computes where it goes next instead of
/// loading it. A leaf above depth `D` becomes a chain of [`PASS`] slots
/// down to the bottom, where its path length `depth + c(size)` waits: every
/// walk takes exactly `D` steps and never tests for a leaf. Only the
/// `2^D - 1` slots above the bottom are stored (a walk reads a slot at each
/// of its steps, none at the bottom, whose path lengths are in `leaf_len`).
/// The arithmetic
/// is [`Tree`]'s, so scores are bit-identical to
/// [`IsolationForest::mean_path_length`]'s.
pub(super) struct Heap {
    pub(super) depth: usize,
    /// Features a row has.
    pub(super) width: usize,
    /// `2^D - 1` slots a tree (levels 0 to `D - 1`), tree after tree.
    pub(super) slots: Vec<Slot>,
    /// `2^D` bottom path lengths a tree, tree after tree.
    pub(super) leaf_len: Vec<f64>,
    /// Two [`Top`] tables a tree (levels 0 to 3, then 4), copied from
    /// `slots`.
    pub(super) tops: Vec<Top>,
}

impl Heap {
    /// `None` when the deepest leaf is deeper than [`HEAP_MAX_DEPTH`] or
    /// the slots would take more than 64 MiB. The trees must have passed
    /// [`check_trees`].
    pub(super) fn new(trees: &[Tree], depth: usize, width: usize) -> Option<Heap> {
        let per_tree = (1usize << depth.min(HEAP_MAX_DEPTH)) - 1;
        if depth > HEAP_MAX_DEPTH || per_tree * trees.len() > (64 << 20) / 32 {
            return None;
        }
        let bottom = (1usize << depth) - 1;
        let mut heap = Heap {
            depth,
            width,
            slots: vec![PASS; per_tree * trees.len()],
            leaf_len: vec![0.0; (bottom + 1) * trees.len()],
            tops: vec![PASS_TOP; 2 * trees.len()],
        };
        for (t, tree) in trees.iter().enumerate() {
            let slots = &mut heap.slots[t * per_tree..(t + 1) * per_tree];
            let leaf_len = &mut heap.leaf_len[t * (bottom + 1)..(t + 1) * (bottom + 1)];
            // (node, slot)
            let mut stack = vec![(0usize, 0usize)];
            while let Some((node, slot)) = stack.pop() {
                match tree.nodes[node] {
                    Node::Split {
                        feature,
                        value,
                        left,
                        right,
                        lo,
                        hi,
                    } => {
                        assert!((feature as usize) < width, "checked by check_trees");
                        slots[slot] = Slot {
                            value,
                            lo,
                            hi,
                            column: u64::from(feature) * BLOCK as u64,
                        };
                        stack.push((left as usize, 2 * slot + 1));
                        stack.push((right as usize, 2 * slot + 2));
                    }
                    Node::Leaf { depth: d, size } => {
                        // Down the chain of PASS slots to the bottom.
                        let mut s = slot;
                        while s < bottom {
                            s = 2 * s + 1;
                        }
                        leaf_len[s - bottom] = d as f64 + c_leaf(size as usize);
                    }
                }
            }
            let top_slots = per_tree.min((1 << TOP_LEVELS) - 1);
            for (s, slot) in slots[..top_slots].iter().enumerate() {
                let top = &mut heap.tops[2 * t + usize::from(s >= 15)];
                top.value[s % 16] = slot.value;
                top.lo[s % 16] = slot.lo;
                top.hi[s % 16] = slot.hi;
                top.column[s % 16] = slot.column;
            }
        }
        Some(heap)
    }

    /// Adds every row's path length in tree `t` to `totals`: a block of
    /// `BLOCK` rows stored column by column (`block[f * BLOCK + k]` is
    /// feature `f` of row `k`). With `RANGE`, [`Tree::expected_path_length`]
    /// (each lane doing exactly its arithmetic), else [`Tree::path_length`].
    /// `simd` must be one [`Simd::detect`] allows.
    pub(super) fn add_tree<const RANGE: bool>(
        &self,
        t: usize,
        block: &[f64],
        totals: &mut [f64; BLOCK],
        simd: Simd,
    ) {
        let per_tree = (1usize << self.depth) - 1;
        let bottom = (1usize << self.depth) - 1;
        let slots = &self.slots[t * per_tree..(t + 1) * per_tree];
        let leaf_len = &self.leaf_len[t * (bottom + 1)..(t + 1) * (bottom + 1)];
        let tops: &[Top; 2] = self.tops[2 * t..2 * t + 2]
            .try_into()
            .expect("two tables a tree");
        assert_eq!(block.len(), self.width * BLOCK);
        for group in (0..BLOCK).step_by(LANES) {
            let mut walk = Walk {
                at: [0; LANES],
                outside: [0; HEAP_MAX_DEPTH],
            };
            // SAFETY: `slots` is one tree of depth `self.depth` whose columns
            // are below `block.len()` (`Heap::new`, and the assert above);
            // `group + LANES <= BLOCK`; vector instructions only when the
            // CPU has them (the caller's promise).
            match simd {
                #[cfg(target_arch = "x86_64")]
                Simd::Avx512 => unsafe {
                    walk_avx512::<RANGE>(slots, tops, self.depth, block, group, &mut walk)
                },
                #[cfg(target_arch = "x86_64")]
                Simd::Avx2 => unsafe {
                    walk_avx2::<RANGE>(slots, self.depth, block, group, &mut walk)
                },
                _ => unsafe { walk_scalar::<RANGE>(slots, self.depth, block, group, &mut walk) },
            }
            // Each lane's cuts in step order: the scalar walk's arithmetic.
            let mut still = [1.0f64; LANES];
            let mut total = [0.0f64; LANES];
            for step in 0..if RANGE { self.depth } else { 0 } {
                let mut outside = walk.outside[step];
                while outside != 0 {
                    let l = outside.trailing_zeros() as usize;
                    outside &= outside - 1;
                    let slot = slots[((walk.at[l] as usize + 1) >> (self.depth - step)) - 1];
                    let v = block[slot.column as usize + group + l];
                    // Both quotients' terms computed, one kept: no branch.
                    let above = v > slot.hi;
                    let (a, b, c, d) = (v - slot.hi, v - slot.lo, slot.lo - v, slot.hi - v);
                    let cut = if above { a } else { c } / if above { b } else { d };
                    total[l] += still[l] * cut * (step + 1) as f64;
                    still[l] *= 1.0 - cut;
                }
            }
            for l in 0..LANES {
                let len = leaf_len[walk.at[l] as usize - bottom];
                totals[group + l] += if RANGE {
                    total[l] + still[l] * len
                } else {
                    len
                };
            }
        }
    }
}

/// A forest compiled for scoring ([`IsolationForest::scorer`]): scores
/// are bit-identical to [`IsolationForest::score_rows`]'s.
pub struct Scorer {
    pub(super) heap: Option<Heap>,
    /// The forest itself when its trees are too deep for a [`Heap`]
    /// (scored node by node).
    pub(super) deep: Option<IsolationForest>,
    pub(super) n_features: usize,
    /// `c(psi)`.
    pub(super) c: f64,
    pub(super) n_trees: usize,
    pub(super) range_aware: bool,
    pub(super) simd: Simd,
}

impl Scorer {
    /// [`IsolationForest::score_rows`] (`None`: every row of `x`).
    pub fn score_rows(
        &self,
        x: ArrayView2<'_, f64>,
        rows: Option<&[usize]>,
        threads: usize,
    ) -> Result<Vec<f64>, ForestError> {
        if x.ncols() != self.n_features {
            return Err(ForestError::FeatureCountMismatch {
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        check_finite(x, rows)?;
        Ok(self.score_checked(x, rows, threads))
    }

    /// Scores rows already checked to have the forest's width and finite
    /// values.
    pub(super) fn score_checked(
        &self,
        x: ArrayView2<'_, f64>,
        rows: Option<&[usize]>,
        threads: usize,
    ) -> Vec<f64> {
        let (c, d) = (self.c, self.n_features);
        let n_trees = self.n_trees as f64;
        let score = |total: f64| 2f64.powf(-(total / n_trees) / c);
        let n = rows.map_or(x.nrows(), <[usize]>::len);
        let row = |i: usize| x.row(rows.map_or(i, |rows| rows[i]));
        let Some(heap) = &self.heap else {
            let forest = self.deep.as_ref().expect("a forest too deep for the heap");
            return in_chunks(n, threads, |range| {
                range
                    .map(|i| 2f64.powf(-forest.mean_path_length(row(i)) / c))
                    .collect()
            });
        };
        in_chunks(n, threads, |range| {
            // Blocks of rows, stored column by column, walk one tree after
            // the other; each row still adds its trees in tree order. The
            // last block's unused rows are zeros, walked and ignored.
            let mut out = Vec::with_capacity(range.len());
            let mut block = vec![0.0; BLOCK * d];
            let mut totals = [0.0f64; BLOCK];
            let mut start = range.start;
            while start < range.end {
                let end = (start + BLOCK).min(range.end);
                let n = end - start;
                if n < BLOCK {
                    block.fill(0.0);
                }
                for (k, i) in (start..end).enumerate() {
                    for (f, v) in row(i).iter().enumerate() {
                        block[f * BLOCK + k] = *v;
                    }
                }
                totals.fill(-0.0);
                for t in 0..self.n_trees {
                    if self.range_aware {
                        heap.add_tree::<true>(t, &block, &mut totals, self.simd);
                    } else {
                        heap.add_tree::<false>(t, &block, &mut totals, self.simd);
                    }
                }
                out.extend(totals[..n].iter().map(|&t| score(t)));
                start = end;
            }
            out
        })
    }
}

impl IsolationForest {
    /// Anomaly score of every row, in (0, 1), on every core.
    pub fn score(&self, x: ArrayView2<'_, f64>) -> Result<Vec<f64>, ForestError> {
        self.score_threads(x, default_threads())
    }

    /// Scores with `threads` threads. Each row's path lengths are summed in
    /// tree order by one thread, so scores are bit-identical for any count.
    pub fn score_threads(
        &self,
        x: ArrayView2<'_, f64>,
        threads: usize,
    ) -> Result<Vec<f64>, ForestError> {
        self.score_on(x, None, threads)
    }

    /// Scores the rows `rows` of `x` (in that order): the scores of
    /// `x.select(Axis(0), rows)`, without the copy.
    pub fn score_rows(
        &self,
        x: ArrayView2<'_, f64>,
        rows: &[usize],
        threads: usize,
    ) -> Result<Vec<f64>, ForestError> {
        self.score_on(x, Some(rows), threads)
    }

    pub(super) fn score_on(
        &self,
        x: ArrayView2<'_, f64>,
        rows: Option<&[usize]>,
        threads: usize,
    ) -> Result<Vec<f64>, ForestError> {
        self.scorer()?.score_rows(x, rows, threads)
    }

    /// The forest compiled for scoring, to score several sets of rows
    /// without compiling it again for each (the trees are checked here).
    pub fn scorer(&self) -> Result<Scorer, ForestError> {
        let depth = check_trees(&self.trees, self.n_features)?;
        let heap = Heap::new(&self.trees, depth, self.n_features);
        Ok(Scorer {
            deep: if heap.is_none() {
                Some(self.clone())
            } else {
                None
            },
            heap,
            n_features: self.n_features,
            c: average_path_length(self.psi),
            n_trees: self.trees.len(),
            range_aware: self.range_aware,
            simd: Simd::detect(),
        })
    }
}
