//! Saved models: train once (`latmove train`), score many times
//! (`latmove score`).
//!
//! A model is one JSON file holding everything scoring needs (feature
//! names, profiling options, the scaling, the forest's flat trees, the
//! threshold, the training entities' medians and spreads for explanations)
//! and where it came from (inputs with SHA-256, rows, hosts, parameters,
//! latmove version). Floats are written in shortest round-trip form and read
//! back exactly, so a loaded model scores bit for bit as the run that saved
//! it.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::Fitted;
use crate::model::forest::{IsolationForest, IsolationForestParams};
use crate::model::preprocess::Preprocessor;
use crate::profile::ProfileOptions;
use crate::profile::features::{FULL_FEATURES, FeatureDef};

/// The largest model file read (256 MiB; 100 trees take about 1 MB).
const MAX_MODEL_BYTES: u64 = 256 << 20;

/// What `format` must say.
pub const FORMAT: &str = "latmove-model";
/// Bumped whenever a model's meaning changes; other versions are refused.
/// Version 2 adds peer groups; a model without them is written, and read,
/// as version 1 (its meaning is unchanged).
pub const MODEL_VERSION: u32 = 2;
/// The version of a model without peer groups.
const MODEL_VERSION_WITHOUT_GROUPS: u32 = 1;

/// One training input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputFile {
    /// The path as given.
    pub path: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// How the model was trained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingInfo {
    /// The training files.
    pub inputs: Vec<InputFile>,
    /// Rows read.
    pub rows: u64,
    /// Flows used.
    pub flows: u64,
    /// Source hosts profiled.
    pub hosts: usize,
    /// Hosts trained on.
    pub training_hosts: usize,
    /// Which hosts were trained on, in words.
    pub training_set: String,
    /// Cross-fitting folds (0 = in-sample).
    pub cross_fit_folds: usize,
    /// The forest's parameters.
    pub params: IsolationForestParams,
    /// Whether the threshold leaves the contamination share of training
    /// host-days above it (`--alert-budget`) rather than of hosts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub budget_per_host_day: bool,
    /// How many times smaller peer groups' training windows were repeated
    /// at most (`--peer-balance`; absent: not balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_balance: Option<usize>,
}

/// A trained model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Model {
    /// Always `latmove-model`.
    pub format: String,
    /// The model format's version (see `MODEL_VERSION`).
    pub model_version: u32,
    /// The latmove that wrote it.
    pub latmove_version: String,
    /// Feature names, in the table's order.
    pub features: Vec<String>,
    /// Profiling options the features depend on.
    pub window_secs: Option<u32>,
    /// Whether reply-direction flows were re-oriented.
    pub orient: bool,
    /// The network's inside (`--internal`), as CIDRs.
    pub internal: Vec<String>,
    /// Whether external sources were scored and trained on.
    pub score_external: bool,
    /// The scaler's means.
    pub offsets: Vec<f64>,
    /// The scaler's 1 / standard deviations.
    pub scales: Vec<f64>,
    /// The training entities' medians.
    pub medians: Vec<f64>,
    /// Their robust spreads.
    pub spreads: Vec<f64>,
    /// `--prior-flows` of the training run (0 in models written before the
    /// option existed, which scored the means raw).
    #[serde(default)]
    pub mean_prior: f64,
    /// The forest.
    pub forest: IsolationForest,
    /// The threshold a host's score must exceed.
    pub threshold: f64,
    /// Peer groups with a forest of their own (version 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_groups: Vec<crate::model::PeerGroup>,
    /// Where the training came from.
    pub training: TrainingInfo,
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    let hex = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((hex, n))
}

impl Model {
    /// A model of a fitted pipeline, the profiling it was fitted with and
    /// where it came from.
    pub fn new(
        fitted: Fitted,
        profile: &ProfileOptions,
        score_external: bool,
        training: TrainingInfo,
    ) -> Model {
        let Fitted {
            features,
            preprocessor,
            forest,
            threshold,
            training_hosts: _,
            groups,
        } = fitted;
        Model {
            format: FORMAT.to_string(),
            model_version: if groups.is_empty() {
                MODEL_VERSION_WITHOUT_GROUPS
            } else {
                MODEL_VERSION
            },
            latmove_version: env!("CARGO_PKG_VERSION").to_string(),
            features,
            window_secs: profile.window_secs,
            orient: profile.orient,
            internal: profile
                .network
                .internal
                .iter()
                .map(|c| c.to_string())
                .collect(),
            score_external,
            offsets: preprocessor.offsets,
            scales: preprocessor.scales,
            medians: preprocessor.medians,
            spreads: preprocessor.spreads,
            mean_prior: preprocessor.mean_prior,
            forest,
            threshold,
            peer_groups: groups,
            training,
        }
    }

    /// The model as one line of JSON.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec(self)?;
        v.push(b'\n');
        Ok(v)
    }

    /// Loads and checks a model file.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = crate::util::read_side_file(path, "model", MAX_MODEL_BYTES)?;
        // What the file claims to be, read without keeping the rest.
        #[derive(Deserialize)]
        struct Probe {
            format: Option<serde_json::Value>,
            model_version: Option<serde_json::Value>,
            latmove_version: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a JSON model file", path.display()))?;
        let shown = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map_or_else(|| "absent".to_string(), ToString::to_string)
        };
        if probe.format.as_ref().and_then(|v| v.as_str()) != Some(FORMAT) {
            bail!(
                "{}: not a latmove model (format is {})",
                path.display(),
                shown(&probe.format)
            );
        }
        let version = probe
            .model_version
            .as_ref()
            .and_then(serde_json::Value::as_u64);
        if !matches!(version, Some(v) if (u64::from(MODEL_VERSION_WITHOUT_GROUPS)..=u64::from(MODEL_VERSION)).contains(&v))
        {
            bail!(
                "{}: model version {} was written by latmove {}; this latmove {} reads versions {MODEL_VERSION_WITHOUT_GROUPS} to {MODEL_VERSION} only: train the model again",
                path.display(),
                shown(&probe.model_version),
                shown(&probe.latmove_version),
                env!("CARGO_PKG_VERSION")
            );
        }
        let m: Model = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: malformed model", path.display()))?;
        if version == Some(u64::from(MODEL_VERSION_WITHOUT_GROUPS)) && !m.peer_groups.is_empty() {
            bail!(
                "{}: a version {MODEL_VERSION_WITHOUT_GROUPS} model cannot hold peer groups",
                path.display()
            );
        }
        m.validate()
            .with_context(|| format!("{}: not a usable model", path.display()))?;
        Ok(m)
    }

    /// Checks every field scoring relies on: lengths, finite values,
    /// ranges, a non-empty forest whose trees were grown on `psi` rows, a
    /// positive window.
    fn validate(&self) -> Result<()> {
        self.feature_defs()?;
        let d = self.features.len();
        for (name, v) in [
            ("offsets", &self.offsets),
            ("scales", &self.scales),
            ("medians", &self.medians),
            ("spreads", &self.spreads),
        ] {
            anyhow::ensure!(
                v.len() == d,
                "'{name}' has {} values for {d} features",
                v.len()
            );
            anyhow::ensure!(
                v.iter().all(|x| x.is_finite()),
                "'{name}' holds a value that is not a finite number"
            );
        }
        anyhow::ensure!(
            self.scales.iter().chain(&self.spreads).all(|x| *x > 0.0),
            "'scales' and 'spreads' must be above zero"
        );
        anyhow::ensure!(
            self.mean_prior.is_finite() && self.mean_prior >= 0.0,
            "'mean_prior' must be a number of flows, 0 or more, got {}",
            self.mean_prior
        );
        anyhow::ensure!(
            self.window_secs.is_none_or(|w| w > 0),
            "'window_secs' must be above zero"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.threshold),
            "'threshold' must be a score from 0 to 1, got {}",
            self.threshold
        );
        self.training.params.validate()?;
        check_forest(&self.forest, d)?;
        for g in &self.peer_groups {
            anyhow::ensure!(
                crate::peers::valid_name(&g.name),
                "peer group name '{}' is not a role name",
                crate::util::text::printable(&g.name)
            );
            anyhow::ensure!(
                (0.0..=1.0).contains(&g.threshold),
                "peer group '{}': 'threshold' must be a score from 0 to 1, got {}",
                g.name,
                g.threshold
            );
            check_forest(&g.forest, d).with_context(|| format!("peer group '{}'", g.name))?;
        }
        Ok(())
    }

    /// The feature definitions the model was trained with, in its order.
    pub fn feature_defs(&self) -> Result<Vec<FeatureDef>> {
        self.features
            .iter()
            .map(|n| {
                FULL_FEATURES
                    .iter()
                    .find(|f| f.name == n)
                    .copied()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "the model uses a feature this latmove does not know: '{n}'"
                        )
                    })
            })
            .collect()
    }

    /// The profiling the model was trained with (no allowlist).
    pub fn profile_options(&self) -> Result<ProfileOptions> {
        let internal = crate::net::parse_cidrs(&self.internal.join(","))
            .map_err(|e| anyhow::anyhow!("model's internal networks: {e}"))?;
        Ok(ProfileOptions {
            orient: self.orient,
            network: crate::net::Network { internal },
            window_secs: self.window_secs,
            ..ProfileOptions::default()
        })
    }

    /// The fitted pipeline the model holds.
    pub fn fitted(&self) -> Fitted {
        Fitted {
            features: self.features.clone(),
            preprocessor: Preprocessor {
                offsets: self.offsets.clone(),
                scales: self.scales.clone(),
                medians: self.medians.clone(),
                spreads: self.spreads.clone(),
                mean_prior: self.mean_prior,
            },
            forest: self.forest.clone(),
            threshold: self.threshold,
            training_hosts: self.training.training_hosts,
            groups: self.peer_groups.clone(),
        }
    }
}

/// A forest's shape: grown on `d` features, trees that hold the subsample
/// and compile for scoring.
fn check_forest(forest: &IsolationForest, d: usize) -> Result<()> {
    anyhow::ensure!(
        forest.n_features == d,
        "the forest was grown on {} features, the model has {d}",
        forest.n_features
    );
    anyhow::ensure!(!forest.trees.is_empty(), "the forest has no trees");
    anyhow::ensure!(
        forest.psi >= 2,
        "'psi' (the subsample size) must be 2 or more, got {}",
        forest.psi
    );
    for (t, tree) in forest.trees.iter().enumerate() {
        let rows: u64 = tree
            .nodes
            .iter()
            .map(|n| match n {
                crate::model::forest::Node::Leaf { size, .. } => u64::from(*size),
                crate::model::forest::Node::Split { .. } => 0,
            })
            .sum();
        anyhow::ensure!(
            rows == forest.psi as u64,
            "tree {t} holds {rows} rows in its leaves, not the subsample's {}",
            forest.psi
        );
    }
    // The trees' shape, as scoring checks it.
    forest.scorer()?;
    Ok(())
}

/// Loads `data` as a model file (for fuzzing): it must be refused or
/// loaded, and a loaded model must score rows, never panic.
pub fn check_load(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("model.json");
    std::fs::write(&path, data).expect("writing the model");
    if let Ok(m) = Model::load(&path) {
        let scorer = m.forest.scorer().expect("a loaded model compiles");
        for v in [0.0, 1.0, -1e300, 1e300] {
            let rows = ndarray::Array2::from_elem((3, m.features.len()), v);
            let _ = scorer.score_rows(rows.view(), None, 1);
        }
        let _ = m.fitted();
        let _ = m.profile_options();
    }
}
