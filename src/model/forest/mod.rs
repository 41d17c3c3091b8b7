//! Isolation Forest (Liu, Ting, Zhou, ICDM 2008), hand-written with
//! scikit-learn's semantics.
//!
//! * `n_trees` trees (default 100), each grown on a subsample of
//!   `psi = min(max_samples, n)` rows drawn without replacement.
//! * Depth limit `ceil(log2(psi))`.
//! * At each node: a random feature among those not constant in the node,
//!   and a split value drawn uniformly in `[min, max)` of that feature in the
//!   node; rows `<= split` go left. A node becomes a leaf at the depth limit,
//!   when it holds one row, or when every feature is constant in it.
//! * Path length `h(x) = depth + c(leaf size)`, with the average path length
//!   of an unsuccessful BST search `c(n) = 2 (ln(n-1) + γ) - 2 (n-1)/n`,
//!   `c(2) = 1`, `c(n <= 1) = 0`.
//! * Score `s(x) = 2^(-E[h(x)] / c(psi))`, in (0, 1); higher is more
//!   anomalous.
//! * Threshold: with a contamination fraction `c`, the `(k + 1)`-th highest
//!   training score with `k = floor(c n)`, so that at most `c n` of the `n`
//!   training rows are above it (scikit-learn's interpolated percentile
//!   flags `ceil(c n)`, one more whenever `c n` is not whole); `auto` uses
//!   0.5. A host is flagged when its score is strictly above the threshold.
//!
//! Randomness: tree `t` draws from ChaCha8 seeded with `seed` on stream `t`,
//! through latmove's own integer and float conversions, so results depend on
//! the seed alone: not on the thread count nor on `rand`'s version.
//! Trees are stored as flat node arrays.

use std::fmt;

use ndarray::{ArrayView1, ArrayView2};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use crate::util::prefetch;
use crate::util::threads::{default_threads, in_chunks};

/// Euler-Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// `c(n)`: average path length of an unsuccessful search in a binary search
/// tree of `n` nodes; normalises path lengths.
pub fn average_path_length(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        _ => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
        }
    }
}

/// Where the decision threshold sits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Contamination {
    /// Flag scores above 0.5 (the paper's rule of thumb).
    Auto,
    /// Flag scores above this quantile's complement of the training scores.
    Fraction(f64),
}

impl fmt::Display for Contamination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contamination::Auto => f.write_str("auto"),
            Contamination::Fraction(c) => write!(f, "{c}"),
        }
    }
}

impl std::str::FromStr for Contamination {
    type Err = ForestError;
    fn from_str(s: &str) -> Result<Self, ForestError> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Contamination::Auto);
        }
        let c: f64 = s
            .parse()
            .map_err(|_| ForestError::BadContamination(s.to_string()))?;
        let c = Contamination::Fraction(c);
        c.validate()?;
        Ok(c)
    }
}

impl Contamination {
    fn validate(&self) -> Result<(), ForestError> {
        match *self {
            Contamination::Fraction(c) if !(c > 0.0 && c <= 0.5) => {
                Err(ForestError::BadContamination(c.to_string()))
            }
            _ => Ok(()),
        }
    }
}

/// `c(n)` from a table for the leaf sizes scoring meets (n < 4096), so the
/// hot loop does not take a logarithm per tree; same values, bit for bit.
fn c_leaf(n: usize) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| (0..4096).map(average_path_length).collect());
    t.get(n).copied().unwrap_or_else(|| average_path_length(n))
}

/// Invalid parameters or data.
#[derive(Debug, Clone, PartialEq)]
pub enum ForestError {
    /// `n_trees` was zero.
    ZeroTrees,
    /// `max_samples` was zero.
    ZeroSamples,
    /// Contamination must be `auto` or a number in (0, 0.5].
    BadContamination(String),
    /// At least two training rows are needed to grow a tree.
    TooFewTrainingRows(usize),
    /// The training matrix has no columns.
    NoFeatures,
    /// A value was NaN or infinite.
    NonFinite { row: usize, column: usize },
    /// Rows to score have a different number of features than the model.
    FeatureCountMismatch { expected: usize, got: usize },
    /// A tree (from a model file) that cannot be walked.
    MalformedTree {
        tree: usize,
        node: usize,
        why: String,
    },
}

impl fmt::Display for ForestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForestError::ZeroTrees => write!(f, "--trees must be at least 1"),
            ForestError::ZeroSamples => write!(f, "--max-samples must be at least 1"),
            ForestError::BadContamination(v) => write!(
                f,
                "--contamination must be 'auto' or a number in (0, 0.5], got '{v}'"
            ),
            ForestError::TooFewTrainingRows(n) => write!(
                f,
                "the Isolation Forest needs at least 2 training hosts, got {n}"
            ),
            ForestError::NoFeatures => write!(f, "the feature table has no columns"),
            ForestError::NonFinite { row, column } => {
                write!(f, "non-finite value at row {row}, feature {column}")
            }
            ForestError::FeatureCountMismatch { expected, got } => {
                write!(f, "model has {expected} features but the data has {got}")
            }
            ForestError::MalformedTree { tree, node, why } => {
                write!(f, "malformed forest: tree {tree}, node {node}: {why}")
            }
        }
    }
}

impl std::error::Error for ForestError {}

/// Forest parameters (validated by [`IsolationForestParams::fit`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IsolationForestParams {
    pub n_trees: usize,
    pub max_samples: usize,
    pub contamination: Contamination,
    pub seed: u64,
    /// Range-aware scoring (see [`Tree::expected_path_length`]); `false`
    /// gives scikit-learn's scores exactly as its semantics define them.
    pub range_aware: bool,
    /// A family per feature (empty: every feature is its own family). At
    /// each node a family is drawn uniformly among those with a feature not
    /// constant in the node, then a feature within it, so that a family of
    /// seven related counts does not get seven times the splits of a family
    /// of one. With one feature per family this is scikit-learn's uniform
    /// choice, draw for draw.
    #[serde(default)]
    pub feature_families: Vec<u32>,
}

impl Default for IsolationForestParams {
    fn default() -> Self {
        IsolationForestParams {
            n_trees: 100,
            max_samples: 256,
            contamination: Contamination::Fraction(0.01),
            seed: 42,
            range_aware: true,
            feature_families: Vec::new(),
        }
    }
}

impl IsolationForestParams {
    /// Checks the parameters without data.
    pub fn validate(&self) -> Result<(), ForestError> {
        if self.n_trees == 0 {
            return Err(ForestError::ZeroTrees);
        }
        if self.max_samples == 0 {
            return Err(ForestError::ZeroSamples);
        }
        self.contamination.validate()
    }

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
    params: &'a IsolationForestParams,
    x: ArrayView2<'a, f64>,
    rows: Option<&'a [usize]>,
    n: usize,
    psi: usize,
    depth_limit: usize,
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

/// Every value of `x` (of its rows `rows`) is finite; else the first
/// that is not, its row counted in `rows`.
fn check_finite(x: ArrayView2<'_, f64>, rows: Option<&[usize]>) -> Result<(), ForestError> {
    // A plain pass first (indexed iteration is several times slower); the
    // position only when something is wrong.
    // Contiguous rows as slices (a plain loop), others through ndarray.
    let all_finite = |row: ArrayView1<'_, f64>| match row.as_slice() {
        Some(s) => s.iter().fold(true, |ok, v| ok & v.is_finite()),
        None => row.iter().all(|v| v.is_finite()),
    };
    let finite = match rows {
        None => x.rows().into_iter().all(all_finite),
        Some(rows) => rows.iter().all(|&r| all_finite(x.row(r))),
    };
    if finite {
        return Ok(());
    }
    let n = rows.map_or(x.nrows(), <[usize]>::len);
    for row in 0..n {
        let r = rows.map_or(row, |rows| rows[row]);
        if let Some(column) = x.row(r).iter().position(|v| !v.is_finite()) {
            return Err(ForestError::NonFinite { row, column });
        }
    }
    Ok(())
}

/// Uniform integer in `0..n` (n > 0) by Lemire's multiply-and-reject method.
fn uniform_index(rng: &mut ChaCha8Rng, n: usize) -> usize {
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
fn uniform_unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// `k` distinct indices out of `0..n`, by a partial Fisher-Yates shuffle:
/// over a vector of all n indices when n is small, else storing only the
/// positions it moved (the same draws and the same sample, in O(k) instead
/// of O(n)).
fn sample_without_replacement(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
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
struct Pool {
    identity: Vec<usize>,
    swaps: Vec<usize>,
}

impl Pool {
    /// Largest `n` kept as a buffer (8 bytes a row); above it, the sparse
    /// draw.
    const MAX: usize = 1 << 22;

    fn sample(&mut self, rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
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

fn sample_dense(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + uniform_index(rng, n - i);
        idx.swap(i, j);
    }
    idx.truncate(k);
    idx
}

fn sample_sparse(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
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

/// The threshold that at most `floor(c n)` of the `n` training scores are
/// strictly above: the `(floor(c n) + 1)`-th highest score (ties with it
/// are not above it, so fewer may be). `NaN` for no scores.
pub fn contamination_threshold(scores: &[f64], c: f64) -> f64 {
    let mut v = scores.to_vec();
    v.sort_unstable_by(|a, b| b.total_cmp(a));
    let k = ((c * v.len() as f64) + 1e-9).floor() as usize;
    v.get(k.min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// A node of a flat tree.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Node {
    Split {
        feature: u32,
        value: f64,
        left: u32,
        right: u32,
        /// The node's training range on `feature` (the split was drawn in
        /// `[lo, hi)`), kept for range-aware scoring.
        lo: f64,
        hi: f64,
    },
    Leaf {
        depth: u32,
        size: u32,
    },
}

/// One isolation tree, nodes in a flat vector (root at 0).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    fn grow(
        x: ArrayView2<'_, f64>,
        mut rows: Vec<usize>,
        depth_limit: usize,
        families: &[u32],
        rng: &mut ChaCha8Rng,
    ) -> Tree {
        let mut tree = Tree { nodes: Vec::new() };
        // The subsample's values, column by column (`col(f)[k]` is feature
        // f of the k-th sampled row), so the scans below read contiguous
        // memory; `rows` becomes positions in the subsample, in the same
        // order, so every partition (and so the tree) is the same.
        let d = x.ncols();
        let len = rows.len();
        let mut values = vec![0.0; d * len];
        // The sampled rows are scattered over the whole table (larger than
        // the cache on a full day): each is fetched a few rows ahead.
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
        let col = |f: usize| &values[f * len..(f + 1) * len];
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
            // Features not constant in the node: a scan that stops at the
            // first value differing from the node's first row (the range is
            // computed below for the chosen feature only).
            candidates.clear();
            let node_rows = &rows[start..end];
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
            let child_scan = if d <= 64 { found } else { all };
            if candidates.is_empty() {
                tree.nodes[node] = leaf;
                continue;
            }
            let feature = if families.is_empty() {
                candidates[uniform_index(rng, candidates.len())]
            } else {
                // A family among those present (in feature order), then a
                // feature of it.
                present.clear();
                for &c in &candidates {
                    if !present.contains(&families[c]) {
                        present.push(families[c]);
                    }
                }
                if present.len() == candidates.len() {
                    candidates[uniform_index(rng, candidates.len())]
                } else {
                    let fam = present[uniform_index(rng, present.len())];
                    let members = candidates.iter().filter(|&&c| families[c] == fam).count();
                    let k = uniform_index(rng, members);
                    *candidates
                        .iter()
                        .filter(|&&c| families[c] == fam)
                        .nth(k)
                        .expect("k < members")
                }
            };
            let c = col(feature);
            let (lo, hi) =
                node_rows
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                        let v = c[r];
                        (lo.min(v), hi.max(v))
                    });
            let mut value = lo + uniform_unit(rng) * (hi - lo);
            if value >= hi {
                value = lo;
            }
            // Partition rows[start..end] so rows <= value come first.
            let part = &mut rows[start..end];
            let mut i = 0;
            for j in 0..part.len() {
                if c[part[j]] <= value {
                    part.swap(i, j);
                    i += 1;
                }
            }
            let mid = start + i;
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

    /// `h(x)`: depth of the leaf `x` falls into plus `c(leaf size)`
    /// (scikit-learn's path length).
    pub fn path_length(&self, x: ArrayView1<'_, f64>) -> f64 {
        match x.as_slice() {
            Some(s) => self.path_length_slice(s),
            None => self.path_length_slice(&x.to_vec()),
        }
    }

    fn path_length_slice(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            match self.nodes[i] {
                Node::Split {
                    feature,
                    value,
                    left,
                    right,
                    ..
                } => {
                    i = if x[feature as usize] <= value {
                        left as usize
                    } else {
                        right as usize
                    };
                }
                Node::Leaf { depth, size } => {
                    return depth as f64 + c_leaf(size as usize);
                }
            }
        }
    }

    /// Range-aware expected path length. At a split node whose training
    /// range on the split feature is `[lo, hi]`, a value `v` outside it
    /// would, had it been in the training sample, have been cut off from
    /// every training row at this node with probability
    /// `(v - hi) / (v - lo)` (or `(lo - v) / (hi - v)` below the range): the
    /// chance that a uniform split in the widened range falls between the
    /// value and the training rows. This returns the expected path length
    /// under those chances, following the tree's real split otherwise. For
    /// a value inside every range it equals [`Tree::path_length`]; it only
    /// shortens the paths of values beyond what the training data spanned,
    /// which plain Isolation Forest scoring cannot tell from the most
    /// extreme training row.
    pub fn expected_path_length(&self, x: ArrayView1<'_, f64>) -> f64 {
        match x.as_slice() {
            Some(s) => self.expected_path_length_slice(s),
            None => self.expected_path_length_slice(&x.to_vec()),
        }
    }

    fn expected_path_length_slice(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        let mut depth = 0.0;
        let mut still = 1.0;
        let mut total = 0.0;
        loop {
            match self.nodes[i] {
                Node::Split {
                    feature,
                    value,
                    left,
                    right,
                    lo,
                    hi,
                } => {
                    let v = x[feature as usize];
                    let cut = if v > hi {
                        (v - hi) / (v - lo)
                    } else if v < lo {
                        (lo - v) / (hi - v)
                    } else {
                        0.0
                    };
                    total += still * cut * (depth + 1.0);
                    still *= 1.0 - cut;
                    depth += 1.0;
                    i = if v <= value {
                        left as usize
                    } else {
                        right as usize
                    };
                }
                Node::Leaf { depth: d, size } => {
                    return total + still * (d as f64 + c_leaf(size as usize));
                }
            }
        }
    }

    /// The splits `x` passes through on its way to a leaf: (feature, depth).
    pub fn path(&self, x: ArrayView1<'_, f64>) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0usize;
        while let Node::Split {
            feature,
            value,
            left,
            right,
            ..
        } = self.nodes[i]
        {
            out.push((feature as usize, out.len()));
            i = if x[feature as usize] <= value {
                left as usize
            } else {
                right as usize
            };
        }
        out
    }
}

/// Rows scored together: a block of this many rows walks one tree after the
/// other, so the tree's slots and the block's values stay in cache.
const BLOCK: usize = 128;
/// Rows of a block walked side by side, so their independent loads overlap.
const LANES: usize = 32;
/// Deepest trees scored through [`Heap`] (4,095 slots a tree); deeper trees
/// (`max_samples` above 4,096) are scored node by node.
const HEAP_MAX_DEPTH: usize = 12;

/// One slot of a [`Heap`]: 32 bytes.
#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    /// Split value (a row goes right when its value is above it).
    value: f64,
    /// The training range of the split feature at the node.
    lo: f64,
    hi: f64,
    /// The split feature's column in a block: `feature * BLOCK`.
    column: u64,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 32);

/// Levels of a tree whose slots a walk can pick from [`Top`] tables
/// (registers) instead of gathering them: 0 to 3 (slots 0 to 14) in one
/// table, 4 (slots 15 to 30) in the other.
const TOP_LEVELS: usize = 5;

/// Up to 16 slots of one tree field by field, slot `s` at entry `s % 16`,
/// so a vector of slot numbers picks its lanes' fields with one permute
/// each (a permute reads only an index's lowest four bits).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Top {
    value: [f64; 16],
    lo: [f64; 16],
    hi: [f64; 16],
    column: [u64; 16],
}

const PASS_TOP: Top = Top {
    value: [PASS.value; 16],
    lo: [PASS.lo; 16],
    hi: [PASS.hi; 16],
    column: [PASS.column; 16],
};

/// A slot that never cuts and always leads left.
const PASS: Slot = Slot {
    value: f64::INFINITY,
    lo: f64::NEG_INFINITY,
    hi: f64::INFINITY,
    column: 0,
};

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
struct Heap {
    depth: usize,
    /// Features a row has.
    width: usize,
    /// `2^D - 1` slots a tree (levels 0 to `D - 1`), tree after tree.
    slots: Vec<Slot>,
    /// `2^D` bottom path lengths a tree, tree after tree.
    leaf_len: Vec<f64>,
    /// Two [`Top`] tables a tree (levels 0 to 3, then 4), copied from
    /// `slots`.
    tops: Vec<Top>,
}

impl Heap {
    /// `None` when the deepest leaf is deeper than [`HEAP_MAX_DEPTH`] or
    /// the slots would take more than 64 MiB. The trees must have passed
    /// [`check_trees`].
    fn new(trees: &[Tree], depth: usize, width: usize) -> Option<Heap> {
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
    fn add_tree<const RANGE: bool>(
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

/// The vector instructions a walk may use.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Simd {
    None,
    Avx2,
    Avx512,
}

impl Simd {
    /// The best this CPU has.
    fn detect() -> Simd {
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
struct Walk {
    /// Each lane's bottom slot (its path: the slot of step `k` is
    /// `((at + 1) >> (depth - k)) - 1`).
    at: [u64; LANES],
    /// Bit `lane` of `outside[step]`: the lane's value was outside the
    /// slot's training range at that step.
    outside: [u32; HEAP_MAX_DEPTH],
}

/// Walks the rows `group..group + LANES` of `block` down `slots`, eight
/// lanes side by side (their loads overlap): each step loads a lane's slot
/// and value and computes its next slot.
///
/// # Safety
/// `slots` holds the levels above the bottom of a complete tree of depth
/// `depth <= HEAP_MAX_DEPTH` (`2^depth - 1` slots) whose columns are below
/// `block.len()`, and `group + LANES <= BLOCK <= block.len()`.
unsafe fn walk_scalar<const RANGE: bool>(
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
unsafe fn walk_avx2<const RANGE: bool>(
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
unsafe fn walk_avx512<const RANGE: bool>(
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

/// A forest compiled for scoring ([`IsolationForest::scorer`]): scores
/// are bit-identical to [`IsolationForest::score_rows`]'s.
pub struct Scorer {
    heap: Option<Heap>,
    /// The forest itself when its trees are too deep for a [`Heap`]
    /// (scored node by node).
    deep: Option<IsolationForest>,
    n_features: usize,
    /// `c(psi)`.
    c: f64,
    n_trees: usize,
    range_aware: bool,
    simd: Simd,
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
    fn score_checked(
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

/// Checks what scoring relies on in trees that may come from a model file:
/// every split's feature is below `d`, its value inside its range
/// (`lo <= value < hi`, as grown), its children after it in the node array
/// (so walks end), and every leaf's recorded depth is its depth.
/// Returns the deepest leaf's depth.
fn check_trees(trees: &[Tree], d: usize) -> Result<usize, ForestError> {
    let mut deepest = 0;
    for (t, tree) in trees.iter().enumerate() {
        let bad = |node: usize, why: &str| ForestError::MalformedTree {
            tree: t,
            node,
            why: why.to_string(),
        };
        if tree.nodes.is_empty() {
            return Err(bad(0, "the tree has no nodes"));
        }
        let mut depth = vec![u32::MAX; tree.nodes.len()];
        depth[0] = 0;
        for (i, n) in tree.nodes.iter().enumerate() {
            if depth[i] == u32::MAX {
                continue; // unreachable: never walked
            }
            match *n {
                Node::Split {
                    feature,
                    value,
                    lo,
                    hi,
                    left,
                    right,
                } => {
                    if feature as usize >= d {
                        return Err(bad(i, &format!("feature {feature} of {d}")));
                    }
                    // Negated so NaN fails too.
                    if !(lo <= value && value < hi) {
                        return Err(bad(
                            i,
                            &format!("split value {value} outside its range [{lo}, {hi})"),
                        ));
                    }
                    for child in [left as usize, right as usize] {
                        if child <= i || child >= tree.nodes.len() || depth[child] != u32::MAX {
                            return Err(bad(i, &format!("child {child}")));
                        }
                        depth[child] = depth[i] + 1;
                    }
                }
                Node::Leaf {
                    depth: recorded, ..
                } => {
                    if recorded != depth[i] {
                        return Err(bad(
                            i,
                            &format!("leaf depth {recorded} at depth {}", depth[i]),
                        ));
                    }
                    deepest = deepest.max(depth[i] as usize);
                }
            }
        }
    }
    Ok(deepest)
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IsolationForest {
    pub trees: Vec<Tree>,
    /// The subsample size each tree was grown on.
    pub psi: usize,
    pub n_features: usize,
    /// Scores strictly above this are flagged.
    pub threshold: f64,
    /// Score with [`Tree::expected_path_length`] instead of scikit-learn's
    /// [`Tree::path_length`].
    pub range_aware: bool,
}

impl IsolationForest {
    /// Mean path length `E[h(x)]` over the trees.
    pub fn mean_path_length(&self, x: ArrayView1<'_, f64>) -> f64 {
        match x.as_slice() {
            Some(s) => self.mean_path_length_slice(s),
            None => self.mean_path_length_slice(&x.to_vec()),
        }
    }

    fn mean_path_length_slice(&self, x: &[f64]) -> f64 {
        let total: f64 = if self.range_aware {
            self.trees
                .iter()
                .map(|t| t.expected_path_length_slice(x))
                .sum()
        } else {
            self.trees.iter().map(|t| t.path_length_slice(x)).sum()
        };
        total / self.trees.len() as f64
    }

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

    fn score_on(
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
    /// For one row: per feature, how often (share of trees) and how early
    /// it was used to cut the row off. Returns, per feature, the sum over
    /// trees of `1 / (1 + depth)` for every split on that feature along the
    /// row's path, divided by the number of trees: a larger value means the
    /// feature isolated the row sooner and more often.
    pub fn feature_contributions(&self, x: ArrayView1<'_, f64>) -> Vec<f64> {
        let mut out = vec![0.0; self.n_features];
        for t in &self.trees {
            for (f, depth) in t.path(x) {
                out[f] += 1.0 / (1.0 + depth as f64);
            }
        }
        let n = self.trees.len() as f64;
        out.iter_mut().for_each(|v| *v /= n);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{
        BLOCK, Heap, IsolationForestParams, LANES, Node, Pool, Simd, Walk, check_trees,
        sample_dense, sample_sparse, walk_scalar,
    };
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
