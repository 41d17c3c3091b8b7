//! The detection pipeline: read, profile, scale, fit, score, evaluate.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use linfa::DatasetBase;
use linfa::traits::{Fit, Transformer};
use linfa_preprocessing::linear_scaling::LinearScaler;
use ndarray::{Array2, Axis};

use crate::features::{FeatureDef, FeatureTable, SEED_FEATURES};
use crate::flows::{self, ReadStats};
use crate::forest::{IsolationForest, IsolationForestParams};
use crate::metrics::{self, Metrics};
use crate::profile::{ProfileBuilder, Profiles};

/// What to run.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Files or directories, as given by the user.
    pub inputs: Vec<PathBuf>,
    pub forest: IsolationForestParams,
    pub features: Vec<FeatureDef>,
    /// Cross-fitting folds over the training hosts (see [`detect_profiles`]);
    /// 0 or 1 scores the training hosts with the model that saw them.
    pub folds: usize,
    /// Threads for growing and scoring the forest; results do not depend
    /// on it.
    pub threads: usize,
}

impl DetectConfig {
    pub fn new(inputs: Vec<PathBuf>) -> DetectConfig {
        DetectConfig {
            inputs,
            forest: IsolationForestParams::default(),
            features: SEED_FEATURES.to_vec(),
            folds: 5,
            threads: crate::forest::default_threads(),
        }
    }
}

/// One scored host.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub ip: IpAddr,
    /// Raw (unscaled) feature values, in the table's column order.
    pub features: Vec<f64>,
    pub score: f64,
    pub flagged: bool,
    /// 1 = most anomalous.
    pub rank: usize,
    /// `Some(true)` attack, `Some(false)` benign, `None` unlabelled.
    pub is_attack: Option<bool>,
    pub attack_labels: Vec<String>,
    pub flows: u64,
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    /// Whether the host was in the forest's training set.
    pub trained_on: bool,
    /// Per feature: how early and often it cut this host off (see
    /// [`IsolationForest::feature_contributions`]).
    pub contributions: Vec<f64>,
    /// Per feature: distance from the benign training hosts' median in
    /// robust units (MAD scaled to sigma), signed.
    pub robust_z: Vec<f64>,
}

/// Everything one detection produced.
#[derive(Debug, Clone)]
pub struct Detection {
    pub stats: ReadStats,
    pub feature_names: Vec<&'static str>,
    pub feature_descriptions: Vec<&'static str>,
    /// Hosts sorted by rank.
    pub hosts: Vec<HostResult>,
    pub threshold: f64,
    pub training_hosts: usize,
    /// `Benign hosts` when labels exist, `all hosts` otherwise.
    pub training_set: &'static str,
    /// Folds used to score the training hosts out of sample (0 = in-sample).
    pub folds: usize,
    pub metrics: Option<Metrics>,
    pub forest: IsolationForest,
    pub params: IsolationForestParams,
}

impl Detection {
    pub fn flagged(&self) -> impl Iterator<Item = &HostResult> {
        self.hosts.iter().filter(|h| h.flagged)
    }
}

/// Reads the inputs and builds host profiles.
pub fn read_profiles(inputs: &[PathBuf]) -> Result<(Profiles, ReadStats)> {
    let files = flows::expand_inputs(inputs)?;
    let mut builder = ProfileBuilder::new();
    let stats = flows::read_flows(&files, |f| builder.add(f))?;
    Ok((builder.finish(), stats))
}

/// Runs the whole pipeline.
pub fn detect(cfg: &DetectConfig) -> Result<Detection> {
    cfg.forest.validate()?;
    let (profiles, stats) = read_profiles(&cfg.inputs)?;
    detect_profiles(cfg, profiles, stats)
}

/// Scores already-built profiles.
pub fn detect_profiles(
    cfg: &DetectConfig,
    profiles: Profiles,
    stats: ReadStats,
) -> Result<Detection> {
    anyhow::ensure!(
        !profiles.hosts.is_empty(),
        "no flows could be read from the input ({} rows, {} skipped)",
        stats.rows,
        stats.skipped_total()
    );
    let table = FeatureTable::build(&profiles.hosts, &cfg.features);
    let truth: Vec<Option<bool>> = profiles.hosts.iter().map(|h| h.is_attack()).collect();
    let labelled = truth.iter().any(Option::is_some);
    // Train on benign hosts when labels exist; on every host otherwise.
    let train_idx: Vec<usize> = (0..truth.len())
        .filter(|&i| !labelled || truth[i] == Some(false))
        .collect();
    let train_raw = table.values.select(Axis(0), &train_idx);

    let scaler = LinearScaler::standard()
        .fit(&DatasetBase::from(train_raw.clone()))
        .context("fitting the standard scaler on the training hosts")?;
    let train = scaler.transform(train_raw.clone());
    let all = scaler.transform(table.values.clone());
    let forest = cfg
        .forest
        .fit_threads(train.view(), cfg.threads)
        .with_context(|| format!("training on {} hosts", train_idx.len()))?;
    let mut scores = forest.score_threads(all.view(), cfg.threads)?;
    let mut threshold = forest.threshold;
    // Cross-fitting: each training host is scored by a forest grown
    // without it (fold = its position in IP order modulo k), and the
    // threshold is the (1 - contamination) quantile of those out-of-fold
    // scores. Other hosts are scored by the forest grown on every
    // training host.
    let folds = cfg.folds.min(train_idx.len());
    let cross_fitted = folds >= 2;
    if cross_fitted {
        let mut oof = Vec::with_capacity(train_idx.len());
        for k in 0..folds {
            let fit_rows: Vec<usize> = (0..train_idx.len()).filter(|p| p % folds != k).collect();
            let held: Vec<usize> = (0..train_idx.len())
                .filter(|p| p % folds == k)
                .map(|p| train_idx[p])
                .collect();
            let fold_forest = cfg
                .forest
                .fit_threads(train.select(Axis(0), &fit_rows).view(), cfg.threads)
                .with_context(|| format!("training fold {} of {folds}", k + 1))?;
            let s = fold_forest.score_threads(all.select(Axis(0), &held).view(), cfg.threads)?;
            for (i, v) in held.iter().zip(s) {
                scores[*i] = v;
                oof.push(v);
            }
        }
        if let crate::forest::Contamination::Fraction(c) = cfg.forest.contamination {
            threshold = crate::forest::quantile(&oof, 1.0 - c);
        }
    }
    let (medians, mads) = robust_center(&train_raw);

    let mut trained = vec![false; truth.len()];
    train_idx.iter().for_each(|&i| trained[i] = true);
    let mut hosts: Vec<HostResult> = profiles
        .hosts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let features = table.values.row(i).to_vec();
            let robust_z = features
                .iter()
                .enumerate()
                .map(|(j, v)| robust_units(*v, medians[j], mads[j]))
                .collect();
            HostResult {
                ip: p.ip,
                score: scores[i],
                flagged: scores[i] > threshold,
                rank: 0,
                is_attack: truth[i],
                attack_labels: profiles.attack_labels_of(p),
                flows: p.flows,
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                trained_on: trained[i],
                contributions: forest.feature_contributions(all.row(i)),
                robust_z,
                features,
            }
        })
        .collect();
    // Rank: score descending; ties broken by IP so the order is stable.
    hosts.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ip.cmp(&b.ip)));
    hosts
        .iter_mut()
        .enumerate()
        .for_each(|(i, h)| h.rank = i + 1);

    let metrics = labelled.then(|| {
        let t: Vec<bool> = hosts.iter().map(|h| h.is_attack == Some(true)).collect();
        let f: Vec<bool> = hosts.iter().map(|h| h.flagged).collect();
        let s: Vec<f64> = hosts.iter().map(|h| h.score).collect();
        metrics::evaluate(&t, &f, &s)
    });
    Ok(Detection {
        stats,
        feature_names: table.names(),
        feature_descriptions: table.defs.iter().map(|d| d.description).collect(),
        threshold,
        training_hosts: train_idx.len(),
        folds: if cross_fitted { folds } else { 0 },
        training_set: if labelled {
            "benign hosts"
        } else {
            "hosts (no labels, so all of them)"
        },
        hosts,
        metrics,
        forest,
        params: cfg.forest.clone(),
    })
}

/// Per column: median and a robust spread: the MAD scaled by 1.4826 to
/// estimate sigma, or, when over half the values are equal (MAD = 0), the
/// mean absolute deviation from the median scaled by 1.2533, or 1 when the
/// column is constant.
fn robust_center(x: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
    let mut med = Vec::new();
    let mut spread = Vec::new();
    for col in x.columns() {
        let v: Vec<f64> = col.to_vec();
        let m = crate::forest::quantile(&v, 0.5);
        let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
        let mad = 1.4826 * crate::forest::quantile(&dev, 0.5);
        let mean_dev = 1.2533 * dev.iter().sum::<f64>() / dev.len().max(1) as f64;
        med.push(m);
        spread.push(if mad > 0.0 {
            mad
        } else if mean_dev > 0.0 {
            mean_dev
        } else {
            1.0
        });
    }
    (med, spread)
}

/// Signed distance from the benign median in robust units.
fn robust_units(v: f64, median: f64, spread: f64) -> f64 {
    (v - median) / spread
}
