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
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::detect::{DetectConfig, Detection};
use crate::model::forest::{IsolationForest, IsolationForestParams};
use crate::profile::features::{FULL_FEATURES, FeatureDef};

/// What `format` must say.
pub const FORMAT: &str = "latmove-model";
/// Bumped whenever a model's meaning changes; other versions are refused.
pub const MODEL_VERSION: u32 = 1;

/// One training input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// How the model was trained.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingInfo {
    pub inputs: Vec<InputFile>,
    pub rows: u64,
    pub flows: u64,
    pub hosts: usize,
    pub training_hosts: usize,
    pub training_set: String,
    pub cross_fit_folds: usize,
    pub params: IsolationForestParams,
}

/// A trained model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Model {
    pub format: String,
    pub model_version: u32,
    pub latmove_version: String,
    pub features: Vec<String>,
    /// Profiling options the features depend on.
    pub window_secs: Option<u32>,
    pub orient: bool,
    pub internal: Vec<String>,
    pub score_external: bool,
    pub offsets: Vec<f64>,
    pub scales: Vec<f64>,
    pub medians: Vec<f64>,
    pub spreads: Vec<f64>,
    /// `--prior-flows` of the training run (0 in models written before the
    /// option existed, which scored the means raw).
    #[serde(default)]
    pub mean_prior: f64,
    pub forest: IsolationForest,
    pub threshold: f64,
    pub training: TrainingInfo,
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
    /// The model a detection (run on the training files) fitted.
    pub fn from_detection(cfg: &DetectConfig, d: &Detection, files: &[PathBuf]) -> Result<Model> {
        if d.rules {
            bail!("the rule baseline has no model to save");
        }
        let inputs = files
            .iter()
            .map(|f| {
                let (sha256, bytes) = sha256_file(f)?;
                Ok(InputFile {
                    path: f.display().to_string(),
                    sha256,
                    bytes,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Model {
            format: FORMAT.to_string(),
            model_version: MODEL_VERSION,
            latmove_version: env!("CARGO_PKG_VERSION").to_string(),
            features: d.feature_names.iter().map(|s| s.to_string()).collect(),
            window_secs: cfg.profile.window_secs,
            orient: cfg.profile.orient,
            internal: cfg
                .profile
                .network
                .internal
                .iter()
                .map(|c| c.to_string())
                .collect(),
            score_external: cfg.score_external,
            offsets: d.offsets.clone(),
            scales: d.scales.clone(),
            medians: d.medians.clone(),
            spreads: d.spreads.clone(),
            mean_prior: d.mean_prior,
            forest: d.forest.clone(),
            threshold: d.threshold,
            training: TrainingInfo {
                inputs,
                rows: d.stats.rows,
                flows: d.stats.flows,
                hosts: d.hosts.len(),
                training_hosts: d.training_hosts,
                training_set: d.training_set.to_string(),
                cross_fit_folds: d.folds,
                params: d.params.clone(),
            },
        })
    }

    pub fn to_json(&self) -> Result<Vec<u8>> {
        let mut v = serde_json::to_vec(self)?;
        v.push(b'\n');
        Ok(v)
    }

    /// Loads and checks a model file.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes =
            std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
        let probe: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a JSON model file", path.display()))?;
        if probe["format"] != FORMAT {
            bail!(
                "{}: not a latmove model (format is {})",
                path.display(),
                probe["format"]
            );
        }
        if probe["model_version"] != MODEL_VERSION {
            bail!(
                "{}: model version {} was written by latmove {}; this latmove {} reads version {MODEL_VERSION} only: train the model again",
                path.display(),
                probe["model_version"],
                probe["latmove_version"],
                env!("CARGO_PKG_VERSION")
            );
        }
        let m: Model = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: malformed model", path.display()))?;
        m.feature_defs()
            .with_context(|| format!("{}", path.display()))?;
        let d = m.features.len();
        if m.offsets.len() != d || m.scales.len() != d || m.forest.n_features != d {
            bail!(
                "{}: the model's scaling or forest does not match its {d} features",
                path.display()
            );
        }
        Ok(m)
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

    /// A detection configuration that reproduces the model's profiling.
    pub fn apply_to(&self, cfg: &mut DetectConfig) -> Result<()> {
        cfg.features = self.feature_defs()?;
        cfg.profile.window_secs = self.window_secs;
        cfg.profile.orient = self.orient;
        cfg.profile.network.internal = crate::net::parse_cidrs(&self.internal.join(","))
            .map_err(|e| anyhow::anyhow!("model's internal networks: {e}"))?;
        cfg.score_external = self.score_external;
        cfg.forest = self.training.params.clone();
        cfg.mean_prior = self.mean_prior;
        cfg.model = Some(self.clone());
        Ok(())
    }
}
