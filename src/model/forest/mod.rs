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

mod fitted;
mod grow;
mod layout;
mod params;
mod scorer;
mod tree;
mod walk;

pub use fitted::IsolationForest;
pub use grow::ForestPlan;
pub use params::{
    Contamination, ForestError, IsolationForestParams, average_path_length, contamination_threshold,
};
pub use scorer::Scorer;
pub use tree::{Node, Tree};
