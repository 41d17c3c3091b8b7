//! The isolation tree: flat nodes, path lengths, and the checks a tree
//! from a model file must pass to be scored.

use ndarray::ArrayView1;

use super::params::{ForestError, c_leaf};

/// A node of a flat tree.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Node {
    /// An inner node.
    Split {
        /// The column it cuts.
        feature: u32,
        /// The cut: values at or below go left.
        value: f64,
        /// The left child's index.
        left: u32,
        /// The right child's index.
        right: u32,
        /// The node's training range on `feature` (the split was drawn in
        /// `[lo, hi)`), kept for range-aware scoring.
        lo: f64,
        /// The upper end of that range.
        hi: f64,
    },
    /// A leaf.
    Leaf {
        /// Its depth.
        depth: u32,
        /// Training rows that reached it.
        size: u32,
    },
}

/// One isolation tree, nodes in a flat vector (root at 0).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tree {
    /// The nodes, root first.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// `h(x)`: depth of the leaf `x` falls into plus `c(leaf size)`
    /// (scikit-learn's path length).
    pub fn path_length(&self, x: ArrayView1<'_, f64>) -> f64 {
        match x.as_slice() {
            Some(s) => self.path_length_slice(s),
            None => self.path_length_slice(&x.to_vec()),
        }
    }

    pub(super) fn path_length_slice(&self, x: &[f64]) -> f64 {
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

    pub(super) fn expected_path_length_slice(&self, x: &[f64]) -> f64 {
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

/// Checks what scoring relies on in trees that may come from a model file:
/// every split's feature is below `d`, its value inside its range
/// (`lo <= value < hi`, as grown), its children after it in the node array
/// (so walks end), and every leaf's recorded depth is its depth.
/// Returns the deepest leaf's depth.
pub(super) fn check_trees(trees: &[Tree], d: usize) -> Result<usize, ForestError> {
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
