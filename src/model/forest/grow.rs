//! Growing: subsamples drawn without replacement from a per-tree ChaCha8
//! stream, and trees grown on them (see the module above for the rules).

use ndarray::ArrayView2;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::fitted::IsolationForest;
use super::params::{
    Contamination, ForestError, IsolationForestParams, check_finite, contamination_threshold,
};
use super::tree::{Node, Tree};
use crate::util::prefetch;
use crate::util::threads::{default_threads, in_chunks};

impl IsolationForestParams {
    /// Grows the forest on `x` (rows = training samples), on every core.
    pub fn fit(&self, x: ArrayView2<'_, f64>) -> Result<IsolationForest, ForestError> {
        self.fit_threads(x, default_threads())
    }

    /// Grows the forest with `threads` threads. Each tree depends only on
    /// the seed and its index, so the forest is identical for any count.
    pub fn fit_threads(
        &self,
        x: ArrayView2<'_, f64>,
        threads: usize,
    ) -> Result<IsolationForest, ForestError> {
        self.fit_on(x, None, threads)
    }

    /// Grows the forest on the rows `rows` of `x` (in that order): the
    /// same forest as on `x.select(Axis(0), rows)`, without the copy.
    pub fn fit_rows(
        &self,
        x: ArrayView2<'_, f64>,
        rows: &[usize],
        threads: usize,
    ) -> Result<IsolationForest, ForestError> {
        self.fit_on(x, Some(rows), threads)
    }

    fn fit_on(
        &self,
        x: ArrayView2<'_, f64>,
        rows: Option<&[usize]>,
        threads: usize,
    ) -> Result<IsolationForest, ForestError> {
        let plan = self.plan(x.view(), rows)?;
        let trees = in_chunks(self.n_trees, threads, |range| plan.grow_trees(range));
        let mut forest = plan.forest(trees);
        if let Contamination::Fraction(c) = self.contamination {
            let scores = forest.score_on(x, rows, threads)?;
            forest.threshold = contamination_threshold(&scores, c);
        }
        Ok(forest)
    }

    /// A forest to grow on the rows `rows` of `x` in pieces (see
    /// [`ForestPlan`]), checked as [`Self::fit_rows`] checks it.
    pub fn plan_rows<'a>(
        &'a self,
        x: ArrayView2<'a, f64>,
        rows: &'a [usize],
    ) -> Result<ForestPlan<'a>, ForestError> {
        self.plan(x, Some(rows))
    }

    fn plan<'a>(
        &'a self,
        x: ArrayView2<'a, f64>,
        rows: Option<&'a [usize]>,
    ) -> Result<ForestPlan<'a>, ForestError> {
        self.validate()?;
        let d = x.ncols();
        let n = rows.map_or(x.nrows(), <[usize]>::len);
        if d == 0 {
            return Err(ForestError::NoFeatures);
        }
        if n < 2 {
            return Err(ForestError::TooFewTrainingRows(n));
        }
        check_finite(x, rows)?;
        if !self.feature_families.is_empty() && self.feature_families.len() != d {
            return Err(ForestError::FeatureCountMismatch {
                expected: self.feature_families.len(),
                got: d,
            });
        }
        let psi = self.max_samples.min(n);
        Ok(ForestPlan {
            params: self,
            x,
            rows,
            n,
            psi,
            depth_limit: (psi as f64).log2().ceil() as usize,
        })
    }
}

/// A forest grown piece by piece: [`ForestPlan::grow_trees`] for ranges
/// of tree numbers (on any threads, in any order), then
/// [`ForestPlan::forest`] with every tree in order. Each tree depends only
/// on the seed, its number and the rows, so the forest is the one
/// [`IsolationForestParams::fit_rows`] grows (with `auto` contamination:
/// its threshold is not computed here).
pub struct ForestPlan<'a> {
    pub(super) params: &'a IsolationForestParams,
    pub(super) x: ArrayView2<'a, f64>,
    pub(super) rows: Option<&'a [usize]>,
    pub(super) n: usize,
    pub(super) psi: usize,
    pub(super) depth_limit: usize,
}

impl ForestPlan<'_> {
    /// The trees numbered `trees`, in order.
    pub fn grow_trees(&self, trees: std::ops::Range<usize>) -> Vec<Tree> {
        let p = self.params;
        let mut pool = Pool::default();
        trees
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
                rng.set_stream(t as u64);
                let mut sample = pool.sample(&mut rng, self.n, self.psi);
                if let Some(rows) = self.rows {
                    sample.iter_mut().for_each(|s| *s = rows[*s]);
                }
                Tree::grow(
                    self.x,
                    sample,
                    self.depth_limit,
                    &p.feature_families,
                    &mut rng,
                )
            })
            .collect()
    }

    /// The forest of `trees` (every tree, in order), threshold 0.5.
    pub fn forest(&self, trees: Vec<Tree>) -> IsolationForest {
        assert_eq!(trees.len(), self.params.n_trees, "every tree, in order");
        IsolationForest {
            trees,
            psi: self.psi,
            n_features: self.x.ncols(),
            threshold: 0.5,
            range_aware: self.params.range_aware,
        }
    }
}

/// Uniform integer in `0..n` (n > 0) by Lemire's multiply-and-reject method.
pub(super) fn uniform_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
    let n = n as u64;
    let threshold = n.wrapping_neg() % n;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(n);
        if (m as u64) >= threshold {
            return (m >> 64) as usize;
        }
    }
}

/// Uniform float in `[0, 1)` with 53 random bits.
pub(super) fn uniform_unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `k` distinct indices out of `0..n`, by a partial Fisher-Yates shuffle:
/// over a vector of all n indices when n is small, else storing only the
/// positions it moved (the same draws and the same sample, in O(k) instead
/// of O(n)).
pub(super) fn sample_without_replacement(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    if n <= 16 * k {
        sample_dense(rng, n, k)
    } else {
        sample_sparse(rng, n, k)
    }
}

/// A thread's reusable buffer for subsampling: `0..n`, partly shuffled for
/// a draw and put back after it, so each tree's draw costs `O(k)` instead
/// of [`sample_dense`]'s `O(n)` or [`sample_sparse`]'s hashing. The draws
/// are [`sample_without_replacement`]'s, swap for swap.
#[derive(Default)]
pub(super) struct Pool {
    identity: Vec<usize>,
    swaps: Vec<usize>,
}

impl Pool {
    /// Largest `n` kept as a buffer (8 bytes a row); above it, the sparse
    /// draw.
    const MAX: usize = 1 << 22;

    pub(super) fn sample(&mut self, rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
        if n > Pool::MAX {
            return sample_without_replacement(rng, n, k);
        }
        if self.identity.len() != n {
            self.identity = (0..n).collect();
        }
        let idx = &mut self.identity;
        self.swaps.clear();
        for i in 0..k {
            let j = i + uniform_index(rng, n - i);
            idx.swap(i, j);
            self.swaps.push(j);
        }
        let out = idx[..k].to_vec();
        for (i, &j) in self.swaps.iter().enumerate().rev() {
            idx.swap(i, j);
        }
        out
    }
}

pub(super) fn sample_dense(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + uniform_index(rng, n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

pub(super) fn sample_sparse(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    let mut moved: rustc_hash::FxHashMap<usize, usize> = rustc_hash::FxHashMap::default();
    moved.reserve(2 * k);
    let mut out = Vec::with_capacity(k);
    for i in 0..k {
        let j = i + uniform_index(rng, n - i);
        let at_j = moved.get(&j).copied().unwrap_or(j);
        let at_i = moved.get(&i).copied().unwrap_or(i);
        moved.insert(j, at_i);
        out.push(at_j);
    }
    out
}

impl Tree {
    pub(super) fn grow(
        x: ArrayView2<'_, f64>,
        mut rows: Vec<usize>,
        depth_limit: usize,
        families: &[u32],
        rng: &mut ChaCha8Rng,
    ) -> Tree {
        let mut tree = Tree { nodes: Vec::new() };
        let d = x.ncols();
        let len = rows.len();
        let values = column_major(x, &rows);
        let col = |f: usize| &values[f * len..(f + 1) * len];
        // `rows` becomes positions in the subsample, in the same order, so
        // every partition (and so the tree) is the same.
        rows.iter_mut().enumerate().for_each(|(k, r)| *r = k);
        // A feature constant in a node is constant in its children: each
        // node scans only its parent's non-constant features (a bit set
        // when there are at most 64 features, else every feature).
        let all: u64 = if d >= 64 { u64::MAX } else { (1u64 << d) - 1 };
        // Depth-first with an explicit stack: (node index, row range, depth,
        // features to scan).
        tree.nodes.push(Node::Leaf { depth: 0, size: 0 });
        let mut stack = vec![(0usize, 0usize, len, 0usize, all)];
        let mut candidates: Vec<usize> = Vec::with_capacity(d);
        let mut present: Vec<u32> = Vec::with_capacity(d);
        while let Some((node, start, end, depth, scan)) = stack.pop() {
            let size = end - start;
            let leaf = Node::Leaf {
                depth: depth as u32,
                size: size as u32,
            };
            if depth >= depth_limit || size <= 1 {
                tree.nodes[node] = leaf;
                continue;
            }
            let found = varying_features(&col, d, &rows[start..end], scan, &mut candidates);
            let child_scan = if d <= 64 { found } else { all };
            if candidates.is_empty() {
                tree.nodes[node] = leaf;
                continue;
            }
            let feature = pick_feature(&candidates, families, &mut present, rng);
            let c = col(feature);
            let (value, lo, hi) = split_value(c, &rows[start..end], rng);
            let mid = start + partition(c, &mut rows[start..end], value);
            let left = tree.nodes.len();
            tree.nodes.push(leaf);
            tree.nodes.push(leaf);
            tree.nodes[node] = Node::Split {
                feature: feature as u32,
                value,
                lo,
                hi,
                left: left as u32,
                right: (left + 1) as u32,
            };
            stack.push((left + 1, mid, end, depth + 1, child_scan));
            stack.push((left, start, mid, depth + 1, child_scan));
        }
        tree
    }
}

/// The subsample's values, column by column (`[f * len + k]` is feature f
/// of the k-th sampled row), so the scans of tree growth read contiguous
/// memory.
fn column_major(x: ArrayView2<'_, f64>, rows: &[usize]) -> Vec<f64> {
    let len = rows.len();
    let mut values = vec![0.0; x.ncols() * len];
    // The sampled rows are scattered over the whole table (larger than the
    // cache on a full day): each is fetched a few rows ahead.
    const AHEAD: usize = 8;
    for (k, &r) in rows.iter().enumerate() {
        if let Some(&next) = rows.get(k + AHEAD)
            && let Some(row) = x.row(next).to_slice()
        {
            prefetch(row);
        }
        for (f, v) in x.row(r).iter().enumerate() {
            values[f * len + k] = *v;
        }
    }
    values
}

/// The features (among `scan`'s bits when there are at most 64) not
/// constant over `node_rows`, into `candidates`: a scan that stops at the
/// first value differing from the node's first row. Returns them as bits.
fn varying_features<'v>(
    col: &impl Fn(usize) -> &'v [f64],
    d: usize,
    node_rows: &[usize],
    scan: u64,
    candidates: &mut Vec<usize>,
) -> u64 {
    candidates.clear();
    let mut found = 0u64;
    for f in 0..d {
        if d <= 64 && scan & (1u64 << f) == 0 {
            continue;
        }
        let c = col(f);
        let first = c[node_rows[0]];
        if node_rows[1..].iter().any(|&r| c[r] != first) {
            candidates.push(f);
            if d <= 64 {
                found |= 1u64 << f;
            }
        }
    }
    found
}

/// The split feature: uniformly among `candidates`, or with `families`, a
/// family among those present (in feature order), then a feature of it.
fn pick_feature(
    candidates: &[usize],
    families: &[u32],
    present: &mut Vec<u32>,
    rng: &mut ChaCha8Rng,
) -> usize {
    if families.is_empty() {
        return candidates[uniform_index(rng, candidates.len())];
    }
    present.clear();
    for &c in candidates {
        if !present.contains(&families[c]) {
            present.push(families[c]);
        }
    }
    if present.len() == candidates.len() {
        return candidates[uniform_index(rng, candidates.len())];
    }
    let fam = present[uniform_index(rng, present.len())];
    let members = candidates.iter().filter(|&&c| families[c] == fam).count();
    let k = uniform_index(rng, members);
    *candidates
        .iter()
        .filter(|&&c| families[c] == fam)
        .nth(k)
        .expect("k < members")
}

/// A split value drawn uniformly in `[lo, hi)` of the column `c` over
/// `node_rows`, with the range: `(value, lo, hi)`.
fn split_value(c: &[f64], node_rows: &[usize], rng: &mut ChaCha8Rng) -> (f64, f64, f64) {
    let (lo, hi) = node_rows
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
            let v = c[r];
            (lo.min(v), hi.max(v))
        });
    let mut value = lo + uniform_unit(rng) * (hi - lo);
    if value >= hi {
        value = lo;
    }
    (value, lo, hi)
}

/// Reorders `rows` so those whose value in `c` is at most `value` come
/// first (in the order of the original swap partition); returns their
/// count.
fn partition(c: &[f64], rows: &mut [usize], value: f64) -> usize {
    let mut i = 0;
    for j in 0..rows.len() {
        if c[rows[j]] <= value {
            rows.swap(i, j);
            i += 1;
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::{Pool, sample_dense, sample_sparse};
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn sparse_and_dense_subsampling_draw_the_same_sample() {
        let mut pool = Pool::default();
        for (n, k) in [
            (1, 1),
            (5, 5),
            (10, 3),
            (300, 256),
            (5000, 256),
            (100_000, 256),
        ] {
            for seed in 0..5 {
                let dense = sample_dense(&mut ChaCha8Rng::seed_from_u64(seed), n, k);
                let sparse = sample_sparse(&mut ChaCha8Rng::seed_from_u64(seed), n, k);
                assert_eq!(dense, sparse, "n {n} k {k} seed {seed}");
                // The pool twice in a row: the second draw finds the buffer
                // as the first found it.
                for _ in 0..2 {
                    let pooled = pool.sample(&mut ChaCha8Rng::seed_from_u64(seed), n, k);
                    assert_eq!(pooled, dense, "pool: n {n} k {k} seed {seed}");
                }
                let mut distinct = dense.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), k);
            }
        }
    }
}
