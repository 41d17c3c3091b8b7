//! The fitted forest: its trees, path lengths and per-feature
//! contributions (scoring many rows goes through [`super::Scorer`]).

use ndarray::ArrayView1;

use super::tree::Tree;

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
