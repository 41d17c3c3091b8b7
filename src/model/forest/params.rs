//! The forest's parameters and errors, the path-length constants, and the
//! checks and threshold shared by growing and scoring.

use std::fmt;

use ndarray::{ArrayView1, ArrayView2};

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
    /// Range-aware scoring (see [`super::Tree::expected_path_length`]); `false`
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
}
