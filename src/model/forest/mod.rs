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

mod grow;
mod layout;
mod scorer;
mod tree;
mod walk;

use std::fmt;

use ndarray::{ArrayView1, ArrayView2};

pub use grow::ForestPlan;
use scorer::Heap;
pub use scorer::Scorer;
use tree::check_trees;
pub use tree::{Node, Tree};
use walk::Simd;

use crate::util::threads::{default_threads, in_chunks};

/// Euler-Mascheroni constant.
pub(super) const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

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
pub(super) fn c_leaf(n: usize) -> f64 {
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
    NonFinite {
        /// The row, counted among the rows given.
        row: usize,
        /// The column.
        column: usize,
    },
    /// Rows to score have a different number of features than the model.
    FeatureCountMismatch {
        /// Families given.
        expected: usize,
        /// Columns in the data.
        got: usize,
    },
    /// A tree (from a model file) that cannot be walked.
    MalformedTree {
        /// The tree.
        tree: usize,
        /// The node.
        node: usize,
        /// What is wrong.
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
    /// Trees in the forest.
    pub n_trees: usize,
    /// Subsample size per tree (`psi = min(this, rows)`).
    pub max_samples: usize,
    /// How the threshold is set.
    pub contamination: Contamination,
    /// The random seed; each tree draws from its own stream of it.
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

/// Every value of `x` (of its rows `rows`) is finite; else the first
/// that is not, its row counted in `rows`.
pub(super) fn check_finite(
    x: ArrayView2<'_, f64>,
    rows: Option<&[usize]>,
) -> Result<(), ForestError> {
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

/// A fitted forest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IsolationForest {
    /// The trees, in order.
    pub trees: Vec<Tree>,
    /// The subsample size each tree was grown on.
    pub psi: usize,
    /// Columns the forest was grown on.
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
