//! The detector stage: an Isolation Forest cross-fitted on the training
//! entities, or the Zeek-style rule baseline, fitted and scored the same
//! way, and the threshold that flags a host.

use anyhow::Result;
use ndarray::ArrayView2;
use rustc_hash::FxHashMap as HashMap;

use crate::model::crossfit::{self, Job};
use crate::model::forest::{
    Contamination, IsolationForest, IsolationForestParams, contamination_threshold,
};
use crate::profile::features::FeatureTable;
use crate::profile::{DstId, HostProfile};

/// The rule baseline flags a score of 1 (Zeek's thresholds) and above.
pub const RULE_THRESHOLD: f64 = 0.999_999;

/// Which scorer judges the entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// The Isolation Forest.
    Forest,
    /// The Zeek-style rule baseline (`--detector rules`), explained by a
    /// forest grown on the same training entities.
    Rules,
}

/// A detector to fit.
#[derive(Debug, Clone)]
pub struct DetectorParams {
    /// The scorer.
    pub kind: DetectorKind,
    /// The forest's parameters (the rule baseline's explainer uses them
    /// too).
    pub forest: IsolationForestParams,
    /// Give each feature family an equal share of the forest's splits
    /// (`--feature-choice family`, the default) instead of each feature.
    pub family_choice: bool,
}

impl Default for DetectorParams {
    fn default() -> Self {
        DetectorParams {
            kind: DetectorKind::Forest,
            forest: IsolationForestParams::default(),
            family_choice: true,
        }
    }
}

/// A fitted detector and every entity's score.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The forest grown on every training entity (or a saved model's):
    /// with the forest it scored the entities outside the training set,
    /// with the rules it explains the flagged hosts.
    pub forest: IsolationForest,
    /// The forest's parameters, the feature families filled in.
    pub params: IsolationForestParams,
    /// One score per entity (row of the table).
    pub scores: Vec<f64>,
}

impl DetectorParams {
    /// The forest's parameters for `table`: with family choice, its
    /// features' families.
    pub fn forest_params(&self, table: &FeatureTable) -> IsolationForestParams {
        let mut params = self.forest.clone();
        if self.family_choice {
            params.feature_families = FeatureTable::families(&table.defs);
        }
        params
    }

    /// Fits on `x` (the preprocessed table) and scores every entity: the
    /// forest by the cross-fitting `jobs` (the full forest first), the
    /// rules from each entity's profile (`profiles`, by row).
    pub fn fit_score(
        &self,
        table: &FeatureTable,
        x: ArrayView2<'_, f64>,
        jobs: &[Job],
        profiles: &[&HostProfile],
        threads: usize,
    ) -> Result<Scored> {
        let params = self.forest_params(table);
        let (forest, scores) = match self.kind {
            DetectorKind::Forest => crossfit::grow_and_score(&params, x, jobs, threads)?,
            DetectorKind::Rules => (
                crossfit::grow_first(&params, x, jobs, threads)?,
                profiles.iter().map(|p| zeek_rule_score(p)).collect(),
            ),
        };
        Ok(Scored {
            forest,
            params,
            scores,
        })
    }

    /// The threshold a host's score must exceed to be flagged: the rules'
    /// fixed one, or from the contamination over the training hosts'
    /// scores (`training_scores`, computed only when needed).
    pub fn threshold(&self, training_scores: impl FnOnce() -> Vec<f64>) -> f64 {
        match (self.kind, self.forest.contamination) {
            (DetectorKind::Rules, _) => RULE_THRESHOLD,
            (DetectorKind::Forest, Contamination::Auto) => 0.5,
            (DetectorKind::Forest, Contamination::Fraction(c)) => {
                contamination_threshold(&training_scores(), c)
            }
        }
    }
}

/// The Zeek-style rule score of a profile: the largest of (distinct hosts
/// reached on one port with failed connections in one 5-minute window) /
/// 25 and (distinct ports on one host, failed, same window) / 15. A score of
/// 1 or more is a scan by Zeek's scan policy thresholds.
pub fn zeek_rule_score(p: &HostProfile) -> f64 {
    let mut hosts_per_port: HashMap<(i32, u16), u32> = HashMap::default();
    let mut ports_per_host: HashMap<(i32, DstId), u32> = HashMap::default();
    for (w, ip, port) in p.failed_triples.iter() {
        *hosts_per_port.entry((*w, *port)).or_default() += 1;
        *ports_per_host.entry((*w, *ip)).or_default() += 1;
    }
    let h = hosts_per_port.values().copied().max().unwrap_or(0) as f64 / 25.0;
    let v = ports_per_host.values().copied().max().unwrap_or(0) as f64 / 15.0;
    h.max(v)
}
