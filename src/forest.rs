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
        let depth_limit = (psi as f64).log2().ceil() as usize;
        let grow = |t: usize| {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(t as u64);
            let mut sample = sample_without_replacement(&mut rng, n, psi);
            if let Some(rows) = rows {
                sample.iter_mut().for_each(|s| *s = rows[*s]);
            }
            Tree::grow(x, sample, depth_limit, &self.feature_families, &mut rng)
        };
        let trees = in_chunks(self.n_trees, threads, |range| range.map(grow).collect());
        let mut forest = IsolationForest {
            trees,
            psi,
            n_features: d,
            threshold: 0.5,
            range_aware: self.range_aware,
        };
        if let Contamination::Fraction(c) = self.contamination {
            let scores = forest.score_on(x, rows, threads)?;
            forest.threshold = contamination_threshold(&scores, c);
        }
        Ok(forest)
    }
}

/// Every value of `x` (of its rows `rows`) is finite; else the first
/// that is not, its row counted in `rows`.
fn check_finite(x: ArrayView2<'_, f64>, rows: Option<&[usize]>) -> Result<(), ForestError> {
    // A plain pass first (indexed iteration is several times slower); the
    // position only when something is wrong.
    let finite = match rows {
        None => x.iter().all(|v| v.is_finite()),
        Some(rows) => rows.iter().all(|&r| x.row(r).iter().all(|v| v.is_finite())),
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

/// The machine's core count (1 when unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Maps `0..n` in up to `threads` contiguous chunks on scoped threads and
/// concatenates the results in order.
fn in_chunks<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return f(0..n);
    }
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                let f = &f;
                scope.spawn(move || f(start..(start + chunk).min(n)))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("forest worker panicked"))
            .collect()
    })
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

/// The median as [`quantile`]`(values, 0.5)` gives it, bit for bit, by
/// selection instead of a full sort (reorders `values`).
pub fn median_in_place(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let pos = 0.5 * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, a, rest) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *a;
    let b = if pos.ceil() as usize == lo {
        a
    } else {
        rest.iter()
            .copied()
            .min_by(f64::total_cmp)
            .expect("an even count has a value above the lower middle")
    };
    // The same arithmetic as `quantile`, even when b == a (-0 + 0 is 0).
    a + (b - a) * (pos - lo as f64)
}

/// `q`-quantile with linear interpolation (numpy's default).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
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
        for (k, &r) in rows.iter().enumerate() {
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

/// Every tree's nodes in one array laid out for scoring: 32 bytes a node,
/// the two children of a split side by side (right = left + 1), a leaf's
/// path length `depth + c(size)` precomputed. Built per scoring call (a
/// few microseconds); the arithmetic is the same as [`Tree`]'s, so scores
/// are bit-identical to [`IsolationForest::mean_path_length`]'s.
struct Compiled {
    nodes: Vec<CompiledNode>,
    roots: Vec<u32>,
    /// `nodes` with every leaf turned into a node that never cuts and leads
    /// to itself (its path length in `leaf_len`), so side-by-side walks
    /// can all take `max_depth` steps without checking for leaves.
    walk: Vec<CompiledNode>,
    leaf_len: Vec<f64>,
    max_depth: usize,
}

#[derive(Clone, Copy)]
struct CompiledNode {
    /// `LEAF` for a leaf.
    feature: u32,
    left: u32,
    /// Split value, or a leaf's path length.
    value: f64,
    lo: f64,
    hi: f64,
}

const LEAF: u32 = u32::MAX;

impl Compiled {
    fn new(trees: &[Tree]) -> Compiled {
        let mut c = Compiled {
            nodes: Vec::with_capacity(trees.iter().map(|t| t.nodes.len()).sum()),
            roots: Vec::with_capacity(trees.len()),
            walk: Vec::new(),
            leaf_len: Vec::new(),
            max_depth: 0,
        };
        for t in trees {
            c.roots.push(c.nodes.len() as u32);
            c.nodes.push(CompiledNode {
                feature: LEAF,
                left: 0,
                value: 0.0,
                lo: 0.0,
                hi: 0.0,
            });
            // (source node, slot in `nodes`)
            let mut stack = vec![(0usize, c.nodes.len() - 1)];
            while let Some((src, slot)) = stack.pop() {
                c.nodes[slot] = match t.nodes[src] {
                    Node::Leaf { depth, size } => CompiledNode {
                        feature: LEAF,
                        left: 0,
                        value: depth as f64 + c_leaf(size as usize),
                        lo: 0.0,
                        hi: 0.0,
                    },
                    Node::Split {
                        feature,
                        value,
                        left,
                        right,
                        lo,
                        hi,
                    } => {
                        let l = c.nodes.len();
                        let blank = c.nodes[slot];
                        c.nodes.push(blank);
                        c.nodes.push(blank);
                        stack.push((right as usize, l + 1));
                        stack.push((left as usize, l));
                        CompiledNode {
                            feature,
                            left: l as u32,
                            value,
                            lo,
                            hi,
                        }
                    }
                };
            }
        }
        c.walk = c.nodes.clone();
        c.leaf_len = vec![0.0; c.nodes.len()];
        for (i, n) in c.walk.iter_mut().enumerate() {
            if n.feature == LEAF {
                c.leaf_len[i] = n.value;
                *n = CompiledNode {
                    feature: 0,
                    left: i as u32,
                    value: f64::INFINITY,
                    lo: f64::NEG_INFINITY,
                    hi: f64::INFINITY,
                };
            }
        }
        c.max_depth = trees
            .iter()
            .flat_map(|t| t.nodes.iter())
            .map(|n| match n {
                Node::Leaf { depth, .. } => *depth as usize,
                Node::Split { .. } => 0,
            })
            .max()
            .unwrap_or(0);
        c
    }

    /// [`Tree::path_length`].
    #[inline]
    fn path_length(&self, root: u32, x: &[f64]) -> f64 {
        let mut i = root as usize;
        loop {
            let n = self.nodes[i];
            if n.feature == LEAF {
                return n.value;
            }
            i = n.left as usize + usize::from(x[n.feature as usize] > n.value);
        }
    }

    /// Adds [`Tree::expected_path_length`] of every row of `rows` (`d`
    /// values each) to `totals`, walking `LANES` rows side by side so their
    /// independent node loads overlap; each lane does exactly the scalar
    /// walk's arithmetic.
    fn add_expected_path_lengths(&self, root: u32, rows: &[f64], d: usize, totals: &mut [f64]) {
        const LANES: usize = 8;
        let n = totals.len();
        let mut base = 0;
        while base + LANES <= n {
            let mut at = [root as usize; LANES];
            let mut still = [1.0f64; LANES];
            let mut total = [0.0f64; LANES];
            // The lanes' rows, one after the other (`d` values each).
            let block = &rows[base * d..(base + LANES) * d];
            for step in 0..self.max_depth {
                // Every lane is at this depth (leaves loop on themselves).
                let next_depth = (step + 1) as f64;
                for l in 0..LANES {
                    debug_assert!(at[l] < self.walk.len());
                    // SAFETY: `at[l]` is a node index: the root, or a
                    // split's child (`left` or `left + 1`), or a leaf's own
                    // index (compiled that way in `Compiled::new`), all
                    // inside `walk`.
                    let node = unsafe { self.walk.get_unchecked(at[l]) };
                    let v = block[l * d + node.feature as usize];
                    if v > node.hi || v < node.lo {
                        let cut = if v > node.hi {
                            (v - node.hi) / (v - node.lo)
                        } else {
                            (node.lo - v) / (node.hi - v)
                        };
                        total[l] += still[l] * cut * next_depth;
                        still[l] *= 1.0 - cut;
                    }
                    at[l] = node.left as usize + usize::from(v > node.value);
                }
            }
            for l in 0..LANES {
                totals[base + l] += total[l] + still[l] * self.leaf_len[at[l]];
            }
            base += LANES;
        }
        for k in base..n {
            totals[k] += self.expected_path_length(root, &rows[k * d..(k + 1) * d]);
        }
    }

    /// [`Tree::expected_path_length`].
    #[inline]
    fn expected_path_length(&self, root: u32, x: &[f64]) -> f64 {
        let mut i = root as usize;
        let mut depth = 0.0;
        let mut still = 1.0;
        let mut total = 0.0;
        loop {
            let n = self.nodes[i];
            if n.feature == LEAF {
                return total + still * n.value;
            }
            let v = x[n.feature as usize];
            if v > n.hi || v < n.lo {
                let cut = if v > n.hi {
                    (v - n.hi) / (v - n.lo)
                } else {
                    (n.lo - v) / (n.hi - v)
                };
                total += still * cut * (depth + 1.0);
                still *= 1.0 - cut;
            }
            depth += 1.0;
            i = n.left as usize + usize::from(v > n.value);
        }
    }
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
        if x.ncols() != self.n_features {
            return Err(ForestError::FeatureCountMismatch {
                expected: self.n_features,
                got: x.ncols(),
            });
        }
        check_finite(x, rows)?;
        let c = average_path_length(self.psi);
        let compiled = Compiled::new(&self.trees);
        let n_trees = self.trees.len() as f64;
        let range_aware = self.range_aware;
        let d = x.ncols();
        let n = rows.map_or(x.nrows(), <[usize]>::len);
        Ok(in_chunks(n, threads, |range| {
            // Blocks of rows walk one tree after the other, so a tree's nodes
            // stay in cache; each row still adds its trees in tree order.
            const BLOCK: usize = 128;
            let mut out = Vec::with_capacity(range.len());
            let mut block = vec![0.0; BLOCK * d];
            let mut totals = [0.0f64; BLOCK];
            let mut start = range.start;
            while start < range.end {
                let end = (start + BLOCK).min(range.end);
                let n = end - start;
                for (k, i) in (start..end).enumerate() {
                    let r = rows.map_or(i, |rows| rows[i]);
                    block[k * d..(k + 1) * d]
                        .iter_mut()
                        .zip(x.row(r))
                        .for_each(|(b, v)| *b = *v);
                }
                totals[..n].fill(-0.0);
                for &root in &compiled.roots {
                    if range_aware {
                        compiled.add_expected_path_lengths(
                            root,
                            &block[..n * d],
                            d,
                            &mut totals[..n],
                        );
                    } else {
                        for (k, t) in totals[..n].iter_mut().enumerate() {
                            *t += compiled.path_length(root, &block[k * d..(k + 1) * d]);
                        }
                    }
                }
                out.extend(totals[..n].iter().map(|t| 2f64.powf(-(t / n_trees) / c)));
                start = end;
            }
            out
        }))
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
    use super::{sample_dense, sample_sparse};
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn sparse_and_dense_subsampling_draw_the_same_sample() {
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
                let mut distinct = dense.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), k);
            }
        }
    }
}
