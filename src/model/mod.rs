//! Learning what normal looks like and scoring against it, in stages with
//! a fit/score split in the style of linfa (parameters are fitted into a
//! model that scores):
//!
//! - [`preprocess`]: medians, robust spreads, the standard scaler and the
//!   shrinkage of means per flow ([`preprocess::Preprocessing`] fits a
//!   [`preprocess::Preprocessor`]);
//! - [`crossfit`]: which forest scores which training host;
//! - [`detector`]: the Isolation Forest or the rule baseline, and the
//!   threshold;
//! - [`forest`]: the hand-written Isolation Forest;
//! - [`file`](mod@file): a fitted pipeline saved to and loaded from JSON.

pub mod crossfit;
pub mod detector;
pub mod file;
pub mod forest;
pub mod preprocess;

use forest::IsolationForest;
use preprocess::Preprocessor;

/// A fitted pipeline brought from elsewhere (a saved model): scoring with
/// it fits nothing.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The feature names, in the table's order.
    pub features: Vec<String>,
    /// The fitted preprocessing.
    pub preprocessor: Preprocessor,
    /// The forest (its threshold set).
    pub forest: IsolationForest,
    /// The threshold a host's score must exceed.
    pub threshold: f64,
    /// Training hosts behind it.
    pub training_hosts: usize,
    /// The peer groups' own forests and thresholds (none: every host is
    /// judged against the whole population only).
    pub groups: Vec<PeerGroup>,
}

/// A peer group's own forest (see `peers`): grown on the group's training
/// hosts' windows, scaled as the whole model scales them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct PeerGroup {
    /// The group (a role).
    pub name: String,
    /// Its training hosts.
    pub training_hosts: usize,
    /// The threshold a window's score in the group must exceed.
    pub threshold: f64,
    /// The group's forest.
    pub forest: IsolationForest,
}
