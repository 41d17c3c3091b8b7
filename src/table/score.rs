//! Training on and scoring a feature table (`--features-table`).
//!
//! Scoring streams: each batch of rows is shrunk, scaled and scored with the
//! saved model and folded into one small record per host (its peak row,
//! windows above the threshold, the first such window), so memory grows
//! with the hosts, never with the rows. Training reads the table whole, as
//! the forest and the threshold need every training row.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ndarray::Array2;
use rustc_hash::FxHashMap as HashMap;

use super::read::{EntityRow, read_rows, table_files};
use crate::detect::{DetectConfig, Detection, Entities, HostInfo, HostResult, RunScope};
use crate::flows::ReadStats;
use crate::model::detector::DetectorKind;
use crate::profile::features::{FeatureDef, FeatureTable};

/// The error of a table with no usable row: what was read and skipped,
/// and the first problem.
fn nothing_to(what: &str, stats: &ReadStats) -> anyhow::Error {
    anyhow::anyhow!(
        "no rows to {what} in the feature table: {} read, {} skipped{}",
        stats.rows,
        stats.skipped_total(),
        stats
            .problems
            .first()
            .map(|p| format!("\n  e.g. {p}"))
            .unwrap_or_default()
    )
}

/// Which support column (`durations_known`, `volumes_known`) backs a mean
/// per flow.
fn support_column(d: &FeatureDef) -> Result<usize> {
    match d.name {
        "mean_duration_us" => Ok(0),
        "bytes_per_flow" | "packets_per_flow" => Ok(1),
        other => anyhow::bail!("a feature table carries no support for the feature {other}"),
    }
}

/// The feature table of `rows`.
fn table_of(rows: &[EntityRow], defs: &[FeatureDef]) -> Result<FeatureTable> {
    let supported: Vec<usize> = defs
        .iter()
        .filter(|d| d.support.is_some())
        .map(support_column)
        .collect::<Result<_>>()?;
    let mut values = Array2::zeros((rows.len(), defs.len()));
    let mut support = Array2::zeros((rows.len(), supported.len()));
    for (i, r) in rows.iter().enumerate() {
        for (j, v) in r.features.iter().enumerate() {
            values[[i, j]] = *v;
        }
        for (j, c) in supported.iter().enumerate() {
            support[[i, j]] = r.support[*c];
        }
    }
    Ok(FeatureTable::from_parts(defs, values, support))
}

/// Whether the run scores the row's host (`--sources internal` keeps the
/// inside ones: the table's `internal` column, else the model's network).
fn in_scope(cfg: &DetectConfig, r: &EntityRow) -> bool {
    cfg.score_external
        || r.internal
            .unwrap_or_else(|| cfg.profile.network.is_internal(r.ip))
}

/// A row's window must be one of the run's: a multiple of its length, and
/// none without windows (a table made with another `--window` would be
/// scored as if it were this one's).
fn check_window(cfg: &DetectConfig, r: &EntityRow) -> Result<()> {
    match (r.window_start, cfg.profile.window_secs) {
        (None, _) => Ok(()),
        (Some(w), Some(secs)) if w.rem_euclid(i64::from(secs)) == 0 => Ok(()),
        (Some(w), secs) => anyhow::bail!(
            "the feature table's window starting at {w} s is not a window of {}: make the table \
             with the same --window as the model (or give `--window` to train on it)",
            secs.map_or(
                "a run without windows (--window none)".to_string(),
                |s| format!("{s} seconds")
            )
        ),
    }
}

/// A host's identity from one of its rows.
fn host_info(cfg: &DetectConfig, r: &EntityRow) -> HostInfo {
    HostInfo {
        ip: r.ip,
        flows: r.flows,
        first_seen: r.first_seen,
        last_seen: r.last_seen,
        internal: r
            .internal
            .unwrap_or_else(|| cfg.profile.network.is_internal(r.ip)),
        inbound: r.inbound,
        truth: r.label,
        attack_labels: r.attack_label.iter().cloned().collect(),
    }
}

/// `cfg`'s truth file, applied to a table's hosts: the labels of the
/// hosts it names (a time range counts when it overlaps the host's first
/// to last flow), every other host benign when the table has no labels.
fn apply_truth(cfg: &DetectConfig, hosts: &mut [HostInfo]) {
    let Some(truth) = &cfg.truth else { return };
    if hosts.iter().all(|h| h.truth.is_none()) {
        for h in hosts.iter_mut() {
            h.truth = Some(false);
        }
    }
    for e in &truth.entries {
        for h in hosts.iter_mut().filter(|h| h.ip == e.ip) {
            if !e.covers(h.first_seen, h.last_seen) {
                continue;
            }
            if e.label.eq_ignore_ascii_case("benign") {
                h.truth = Some(false);
                h.attack_labels.clear();
            } else {
                h.truth = Some(true);
                h.attack_labels = vec![e.label.clone()];
            }
        }
    }
}

/// Trains (with `cfg`'s parameters) on the feature table in `paths`, read
/// whole: the same stages as `detect` from the feature table on.
pub(crate) fn detect_table(cfg: &DetectConfig, paths: &[PathBuf]) -> Result<Detection> {
    anyhow::ensure!(
        cfg.detector.kind == DetectorKind::Forest,
        "--features-table: the rule baseline needs flows, not features"
    );
    let files = table_files(paths)?;
    let mut stats = ReadStats::default();
    let mut rows: Vec<EntityRow> = Vec::new();
    read_rows(&files, &cfg.features, &mut stats, &mut |batch| {
        for r in batch.into_iter().filter(|r| in_scope(cfg, r)) {
            check_window(cfg, &r)?;
            rows.push(r);
        }
        Ok(())
    })?;
    if rows.is_empty() {
        return Err(nothing_to("train on", &stats));
    }
    // Entities in host order, each host's windows in time order (as the
    // profiles give them), whatever order the engine wrote.
    rows.sort_by(|a, b| {
        a.ip.cmp(&b.ip)
            .then(a.window_start.is_some().cmp(&b.window_start.is_some()))
            .then(a.window_start.cmp(&b.window_start))
    });
    let mut hosts: Vec<HostInfo> = Vec::new();
    let mut host_of = Vec::with_capacity(rows.len());
    for r in &rows {
        if hosts.last().is_none_or(|h| h.ip != r.ip) {
            hosts.push(host_info(cfg, r));
        }
        host_of.push(hosts.len() - 1);
    }
    apply_truth(cfg, &mut hosts);
    let entities = Entities {
        scored: hosts.len(),
        hosts,
        host_of,
        window_start: rows
            .iter()
            .map(|r| r.window_start.map(|w| w as f64))
            .collect(),
        profiles: Vec::new(),
    };
    let table = table_of(&rows, &cfg.features)?;
    drop(rows);
    let scope = RunScope {
        stats,
        window_secs: cfg.profile.window_secs,
        allowed_flows: 0,
        from_train_files: false,
    };
    crate::detect::score_entities(cfg, &entities, &table, scope)
}

/// What scoring keeps of one host.
struct HostState<'a> {
    info: HostInfo,
    score: f64,
    /// The peak row's window, features and support.
    window: Option<i64>,
    features: Vec<f64>,
    support: [u64; 2],
    windows_over: usize,
    first_over: Option<i64>,
    /// Its peer group, the peak row's score in it, whether the peak row is
    /// above the threshold, and whether any row was above the whole
    /// population's.
    role: &'a str,
    peer_score: Option<f64>,
    above: bool,
    over_all: bool,
}

impl<'a> HostState<'a> {
    fn new(info: HostInfo, role: &'a str) -> HostState<'a> {
        HostState {
            info,
            score: f64::NEG_INFINITY,
            window: None,
            features: Vec::new(),
            support: [0; 2],
            windows_over: 0,
            first_over: None,
            role,
            peer_score: None,
            above: false,
            over_all: false,
        }
    }

    /// Adds one of the host's rows: its score against the threshold, and
    /// its group's score against the group's threshold (`None`: judged
    /// against all hosts only).
    fn add(&mut self, r: EntityRow, (s, threshold): (f64, f64), peer: Option<(f64, f64)>) {
        let above = s > threshold && peer.is_none_or(|(g, t)| g > t);
        self.over_all |= s > threshold;
        if above {
            self.windows_over += 1;
            if let Some(w) = r.window_start {
                self.first_over = Some(self.first_over.map_or(w, |f| f.min(w)));
            }
        }
        // The highest row above the threshold, else the highest; of equal
        // ones the earliest window, as the profiles' time order gives it.
        let earlier = r.window_start.map_or(i64::MIN, |w| w) < self.window.map_or(i64::MIN, |w| w);
        if (above, s) > (self.above, self.score)
            || (above == self.above && s == self.score && earlier)
        {
            self.above = above;
            self.peer_score = peer.map(|(g, _)| g);
            self.score = s;
            self.window = r.window_start;
            self.features = r.features;
            self.support = r.support;
        }
    }
}

/// A scored host's result (ranked later).
fn host_result(cfg: &DetectConfig, s: HostState<'_>, info: HostInfo) -> Result<HostResult> {
    let fitted = cfg.fitted.as_ref().context("a model")?;
    let allowed = cfg.allow.host_allowed(info.ip);
    let above = s.above;
    // Only a host above the threshold is explained: its peak row again,
    // scaled as the model says.
    let contributions = if above {
        let peak = EntityRow {
            ip: info.ip,
            window_start: s.window,
            flows: 0,
            first_seen: None,
            last_seen: None,
            internal: None,
            inbound: 0,
            label: None,
            attack_label: None,
            features: s.features.clone(),
            support: s.support,
        };
        let x = fitted
            .preprocessor
            .transform(&table_of(std::slice::from_ref(&peak), &cfg.features)?);
        fitted.forest.feature_contributions(x.row(0))
    } else {
        Vec::new()
    };
    Ok(HostResult {
        ip: info.ip,
        score: s.score,
        flagged: above && !allowed,
        allowed,
        rank: 0,
        is_attack: info.truth,
        attack_labels: info.attack_labels,
        flows: info.flows,
        first_seen: info.first_seen,
        last_seen: info.last_seen,
        trained_on: false,
        contributions,
        robust_z: fitted.preprocessor.robust_z(&s.features),
        features: s.features,
        peak_window_start: s.window.map(|w| w as f64),
        windows_flagged: s.windows_over,
        first_flagged_window: s.first_over.map(|w| w as f64),
        internal: info.internal,
        baseline: None,
        peer_group: s.role.to_string(),
        peer_score: s.peer_score,
    })
}

/// The model's peer groups, compiled for scoring a table's batches.
struct GroupScorers<'a> {
    groups: Vec<(&'a str, crate::model::forest::Scorer, f64)>,
}

impl<'a> GroupScorers<'a> {
    fn of(cfg: &'a DetectConfig) -> Result<GroupScorers<'a>> {
        let fitted = cfg.fitted.as_ref().context("a model")?;
        let groups = if cfg.peer_groups {
            fitted
                .groups
                .iter()
                .map(|g| Ok((g.name.as_str(), g.forest.scorer()?, g.threshold)))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(GroupScorers { groups })
    }

    /// Each row's score in its group's forest, with the group's threshold
    /// (`None`: judged against all hosts only). Only rows above the whole
    /// population's threshold (`scores`, `threshold`) are scored in their
    /// group: only there can it change the verdict.
    fn score(
        &self,
        cfg: &DetectConfig,
        batch: &[EntityRow],
        x: ndarray::ArrayView2<'_, f64>,
        (scores, threshold): (&[f64], f64),
    ) -> Result<Vec<Option<(f64, f64)>>> {
        let above: Vec<(usize, &str)> = if self.groups.is_empty() {
            Vec::new()
        } else {
            (0..batch.len())
                .filter(|&i| scores[i] > threshold)
                .map(|i| (i, row_role(cfg, &batch[i])))
                .collect()
        };
        let mut peer: Vec<Option<(f64, f64)>> = vec![None; batch.len()];
        for (name, group, t) in &self.groups {
            let rows: Vec<usize> = above
                .iter()
                .filter(|(_, role)| role == name)
                .map(|(i, _)| *i)
                .collect();
            if rows.is_empty() {
                continue;
            }
            let gs = crate::model::crossfit::score_some_with(group, x, &rows, cfg.threads)?;
            for i in rows {
                peer[i] = Some((gs[i], *t));
            }
        }
        Ok(peer)
    }
}

/// The peer group of a row's host (a table row carries its host's counts).
fn row_role<'a>(cfg: &'a DetectConfig, r: &EntityRow) -> &'a str {
    cfg.roles.role(crate::peers::RoleFacts {
        ip: r.ip,
        internal: r
            .internal
            .unwrap_or_else(|| cfg.profile.network.is_internal(r.ip)),
        flows: r.flows,
        inbound: r.inbound,
    })
}

/// Scores the feature table in `paths` with `cfg`'s saved model, in
/// batches (see the module).
pub(crate) fn score_table(cfg: &DetectConfig, paths: &[PathBuf]) -> Result<Detection> {
    let fitted = cfg
        .fitted
        .as_ref()
        .context("scoring a feature table needs a model")?;
    anyhow::ensure!(
        fitted.features
            == cfg
                .features
                .iter()
                .map(|d| d.name.to_string())
                .collect::<Vec<_>>(),
        "the model's features differ from this run's"
    );
    let files = table_files(paths)?;
    let scorer = fitted.forest.scorer()?;
    let threshold = fitted.threshold;
    let groups = GroupScorers::of(cfg)?;
    let mut stats = ReadStats::default();
    let mut hosts: HashMap<IpAddr, HostState<'_>> = HashMap::default();
    read_rows(&files, &cfg.features, &mut stats, &mut |mut batch| {
        batch.retain(|r| in_scope(cfg, r));
        batch.iter().try_for_each(|r| check_window(cfg, r))?;
        let table = table_of(&batch, &cfg.features)?;
        let x = fitted.preprocessor.transform(&table);
        let scores = crate::model::crossfit::score_rows_with(&scorer, x.view(), cfg.threads)?;
        let peer = groups.score(cfg, &batch, x.view(), (&scores, threshold))?;
        for ((r, s), peer) in batch.into_iter().zip(scores).zip(peer) {
            let h = hosts
                .entry(r.ip)
                .or_insert_with(|| HostState::new(host_info(cfg, &r), row_role(cfg, &r)));
            h.add(r, (s, threshold), peer);
        }
        Ok(())
    })?;
    if hosts.is_empty() {
        return Err(nothing_to("score", &stats));
    }
    let mut states: Vec<HostState<'_>> = hosts.into_values().collect();
    states.sort_by_key(|s| s.info.ip);
    let group_reports = if cfg.peer_groups {
        crate::detect::group_reports(
            &fitted.groups,
            states.iter().map(|s| (s.role, s.over_all && !s.above)),
        )
    } else {
        Vec::new()
    };
    let mut infos: Vec<HostInfo> = states.iter().map(|s| s.info.clone()).collect();
    apply_truth(cfg, &mut infos);
    let mut results = states
        .into_iter()
        .zip(infos)
        .map(|(s, info)| host_result(cfg, s, info))
        .collect::<Result<Vec<_>>>()?;
    crate::detect::rank(&mut results);
    let metrics = results
        .iter()
        .any(|h| h.is_attack.is_some())
        .then(|| crate::detect::evaluate(&results));
    stats.has_labels = metrics.is_some();
    Ok(Detection {
        stats,
        feature_names: cfg.features.iter().map(|d| d.name).collect(),
        hosts: results,
        threshold,
        training_hosts: fitted.training_hosts,
        training_set: "hosts of the saved model's training files",
        folds: 0,
        window_secs: cfg.profile.window_secs,
        allowed_flows: 0,
        metrics,
        detector: DetectorKind::Forest,
        forest: fitted.forest.clone(),
        params: cfg.detector.forest_params(&FeatureTable::from_parts(
            &cfg.features,
            Array2::zeros((0, cfg.features.len())),
            Array2::zeros((
                0,
                cfg.features.iter().filter(|d| d.support.is_some()).count(),
            )),
        )),
        preprocessor: fitted.preprocessor.clone(),
        observations: Vec::new(),
        per_host_day: false,
        peer_groups: fitted.groups.clone(),
        groups: group_reports,
        peer_balance: None,
    })
}
