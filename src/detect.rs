//! The detection pipeline: read, profile, scale, fit, score, evaluate.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_preprocessing::linear_scaling::LinearScaler;
use ndarray::Array2;

use crate::flows::ReadStats;
use crate::metrics::{self, Metrics};
use crate::model::forest::{IsolationForest, IsolationForestParams, Scorer};
use crate::profile::features::{FULL_FEATURES, FeatureDef, FeatureTable};
use crate::profile::{ProfileOptions, Profiles};
use crate::util::threads::{in_tasks, task_ranges};

/// The default `--prior-flows`: a mean per flow counts half when it rests
/// on this many flows.
pub const DEFAULT_MEAN_PRIOR: f64 = 100.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    /// Files or directories, as given by the user.
    pub inputs: Vec<PathBuf>,
    pub forest: IsolationForestParams,
    pub features: Vec<FeatureDef>,
    /// Flow orientation and the network's inside.
    pub profile: ProfileOptions,
    /// Score (and train on) hosts outside the network too (the default);
    /// `false` keeps internal sources only.
    pub score_external: bool,
    /// Cross-fitting folds over the training hosts (see [`detect_profiles`]);
    /// 0 or 1 scores the training hosts with the model that saw them.
    pub folds: usize,
    /// Threads for growing and scoring the forest; results do not depend
    /// on it.
    pub threads: usize,
    /// Files to train on instead of the scored files' benign hosts.
    pub train_inputs: Vec<PathBuf>,
    /// Ground truth overriding the per-flow labels (`--truth`).
    pub truth: Option<crate::profile::truth::Truth>,
    /// Allowlisted hosts and (host, port) pairs (`--allow`).
    pub allow: crate::allow::Allowlist,
    /// Score with the Zeek-style rule baseline instead of the forest.
    pub rules: bool,
    /// Score with a saved model instead of training (`latmove score`).
    pub model: Option<crate::model::file::Model>,
    /// Give each feature family an equal share of the forest's splits
    /// (`--feature-choice family`, the default) instead of each feature.
    pub family_choice: bool,
    /// Flows of prior weight for the means per flow (`--prior-flows`, see
    /// [`FeatureTable::shrunk_means`]); 0 scores them raw.
    pub mean_prior: f64,
    /// Free the host profiles when scoring is done (the default). A
    /// command that exits right after a detection sets it to false: the
    /// profiles' hundreds of thousands of small sets are then left to the
    /// operating system, which takes the whole heap back at once.
    pub free_profiles: bool,
}

impl DetectConfig {
    pub fn new(inputs: Vec<PathBuf>) -> DetectConfig {
        DetectConfig {
            inputs,
            forest: IsolationForestParams::default(),
            features: FULL_FEATURES.to_vec(),
            profile: ProfileOptions::default(),
            score_external: true,
            folds: 5,
            threads: crate::util::threads::default_threads(),
            train_inputs: Vec::new(),
            truth: None,
            allow: crate::allow::Allowlist::default(),
            family_choice: true,
            mean_prior: DEFAULT_MEAN_PRIOR,
            rules: false,
            model: None,
            free_profiles: true,
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
    /// [`IsolationForest::feature_contributions`]); empty for a host at or
    /// below the threshold, which is not explained.
    pub contributions: Vec<f64>,
    /// Per feature: distance from the benign training hosts' median in
    /// robust units (MAD scaled to sigma), signed.
    pub robust_z: Vec<f64>,
    /// With windows: the start (seconds, file time) of the window that gave
    /// the host its score; `features` are that window's.
    pub peak_window_start: Option<f64>,
    /// With windows: how many of the host's windows scored above the
    /// threshold.
    pub windows_flagged: usize,
    /// With windows: the start of the earliest window above the threshold
    /// (when the host first looked like this; the peak may come later, as
    /// `admin_peers_to_date` carries a spread into every later window).
    pub first_flagged_window: Option<f64>,
    /// Whether the host is inside `--internal`.
    pub internal: bool,
    /// Whether `--allow` lists the host: scored and reported, never flagged.
    pub allowed: bool,
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
    /// Window length in seconds, when host x window entities were scored.
    pub window_secs: Option<u32>,
    /// Flows dropped by allowlist entries with ports.
    pub allowed_flows: u64,
    pub metrics: Option<Metrics>,
    pub forest: IsolationForest,
    pub params: IsolationForestParams,
    /// Scores are the Zeek-style rule's (flagged at 1 and above), not the
    /// forest's.
    pub rules: bool,
    /// The fitted scaling (means, 1 / standard deviations) and the training
    /// entities' medians and robust spreads: with `forest` and
    /// `threshold`, everything a saved model needs.
    pub offsets: Vec<f64>,
    pub scales: Vec<f64>,
    pub medians: Vec<f64>,
    pub spreads: Vec<f64>,
    /// The prior weight (flows) the means per flow were shrunk with.
    pub mean_prior: f64,
}

impl Detection {
    pub fn flagged(&self) -> impl Iterator<Item = &HostResult> {
        self.hosts.iter().filter(|h| h.flagged)
    }
}

/// Runs the whole pipeline.
pub fn detect(cfg: &DetectConfig) -> Result<Detection> {
    cfg.forest.validate()?;
    let mut options = cfg.profile.clone();
    options.allow = cfg.allow.clone();
    let (mut profiles, stats) =
        crate::profile::read::read_profiles_threads(&cfg.inputs, &options, cfg.threads)?;
    let mut train = if cfg.train_inputs.is_empty() {
        None
    } else {
        let (t, _) =
            crate::profile::read::read_profiles_threads(&cfg.train_inputs, &options, cfg.threads)
                .context("reading --train files")?;
        Some(t)
    };
    for p in std::iter::once(&mut profiles).chain(train.as_mut()) {
        if let Some(truth) = &cfg.truth {
            truth.apply(p);
        }
        if !cfg.score_external {
            p.hosts.retain(|h| h.internal);
        }
    }
    detect_with_training(cfg, profiles, train, stats)
}

/// Scores already-built profiles.
///
/// The scored entities are the hosts, or with windows the host x window
/// profiles (plus, for a host without timestamps, its whole profile). A
/// host's score is its highest entity score.
pub fn detect_profiles(
    cfg: &DetectConfig,
    profiles: Profiles,
    stats: ReadStats,
) -> Result<Detection> {
    detect_with_training(cfg, profiles, None, stats)
}

/// Scores `profiles`; with `train`, the forest is grown on `train`'s
/// benign hosts (all of them when it has no labels) instead of on the
/// scored hosts' benign ones.
pub fn detect_with_training(
    cfg: &DetectConfig,
    profiles: Profiles,
    train: Option<Profiles>,
    stats: ReadStats,
) -> Result<Detection> {
    let detection = score_profiles(cfg, &profiles, train.as_ref(), stats);
    if cfg.free_profiles {
        // Freeing every profile's sets (hundreds of thousands of small
        // allocations on a full day) is left to another thread: nothing
        // below waits for it.
        std::thread::spawn(move || drop((profiles, train)));
    } else {
        std::mem::forget((profiles, train));
    }
    detection
}

fn score_profiles(
    cfg: &DetectConfig,
    profiles: &Profiles,
    train: Option<&Profiles>,
    stats: ReadStats,
) -> Result<Detection> {
    anyhow::ensure!(
        !profiles.hosts.is_empty(),
        "no source hosts to score: {} rows read, {} skipped, {} flows used; \
         with --sources internal, only sources inside --internal are scored",
        stats.rows,
        stats.skipped_total(),
        stats.flows
    );
    let n_test = profiles.hosts.len();
    // Hosts: the scored ones (0..n_test), then the training file's.
    let mut all_hosts: Vec<&crate::profile::HostProfile> = profiles.hosts.iter().collect();
    let mut entities: Vec<(usize, Option<f64>, &crate::profile::HostProfile)> = Vec::new();
    add_entities(profiles, 0, &mut entities);
    if let Some(t) = train {
        add_entities(t, n_test, &mut entities);
        all_hosts.extend(t.hosts.iter());
    }
    let refs: Vec<&crate::profile::HostProfile> = entities.iter().map(|e| e.2).collect();
    let table = FeatureTable::build_threads(&refs, &cfg.features, cfg.threads);
    let truth: Vec<Option<bool>> = all_hosts.iter().map(|h| h.is_attack()).collect();
    let labelled = truth[..n_test].iter().any(Option::is_some);
    let allowed: Vec<bool> = all_hosts
        .iter()
        .map(|h| cfg.allow.host_allowed(h.ip))
        .collect();
    // Train on benign hosts when labels exist, on every host otherwise;
    // never on allowlisted hosts (a vulnerability scanner in the baseline
    // would teach the forest that scanning is normal).
    let pool = if train.is_some() {
        n_test..truth.len()
    } else {
        0..n_test
    };
    let pool_labelled = truth[pool.clone()].iter().any(Option::is_some);
    // A saved model (`latmove score`) brings its own training.
    let train_hosts: Vec<usize> = if cfg.model.is_some() {
        Vec::new()
    } else {
        pool.filter(|&i| (!pool_labelled || truth[i] == Some(false)) && !allowed[i])
            .collect()
    };
    let mut fold_of = vec![usize::MAX; truth.len()];
    let folds = cfg.folds.min(train_hosts.len());
    let cross_fitted = folds >= 2;
    for (pos, &h) in train_hosts.iter().enumerate() {
        fold_of[h] = if cross_fitted { pos % folds } else { 0 };
    }
    let train_idx: Vec<usize> = (0..entities.len())
        .filter(|&e| fold_of[entities[e].0] != usize::MAX)
        .collect();
    // The values the model sees (before scaling): means over few flows
    // pulled toward the benign median (the scaler is fitted on the raw
    // values: the forest does not depend on the scaling).
    type Fitted = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Array2<f64>);
    let (offsets, scales, medians, spreads, mut all): Fitted = match &cfg.model {
        Some(m) => {
            anyhow::ensure!(
                m.features == table.names(),
                "the model's features differ from this run's"
            );
            (
                m.offsets.clone(),
                m.scales.clone(),
                m.medians.clone(),
                m.spreads.clone(),
                table.shrunk_means(&m.medians, cfg.mean_prior),
            )
        }
        None => std::thread::scope(|s| -> Result<Fitted> {
            // The scaler on its own thread, the medians split by column over
            // two more; the means are shrunk here as soon as the medians are
            // in, while the scaler may still be fitting.
            let scaler = s.spawn(|| {
                LinearScaler::standard()
                    .fit(&DatasetBase::from(gather_rows(&table.values, &train_idx)))
                    .context("fitting the standard scaler on the training hosts")
            });
            let d = table.values.ncols();
            let robust: Vec<_> = [0..d / 2, d / 2..d]
                .into_iter()
                .map(|cols| s.spawn(|| robust_center(&table.values, &train_idx, cols)))
                .collect();
            let (mut medians, mut spreads) = (Vec::new(), Vec::new());
            for part in robust {
                let (m, sp) = part.join().expect("medians thread");
                medians.extend(m);
                spreads.extend(sp);
            }
            let all = table.shrunk_means(&medians, cfg.mean_prior);
            let scaler = scaler.join().expect("scaler thread")?;
            Ok((
                scaler.offsets().to_vec(),
                scaler.scales().to_vec(),
                medians,
                spreads,
                all,
            ))
        })?,
    };
    standardize(&mut all, &offsets, &scales);
    let mut params = cfg.forest.clone();
    if cfg.family_choice {
        params.feature_families = FeatureTable::families(&table.defs);
    }
    // The forests' own thresholds (their training rows' quantile) are not
    // used here: the threshold comes from the host scores below. Growing
    // them with `auto` skips scoring every training row once per forest.
    let fit_params = IsolationForestParams {
        contamination: crate::model::forest::Contamination::Auto,
        ..params.clone()
    };
    // The full forest (grown on every training entity, or the saved
    // model's) scores the entities outside the training set; with
    // cross-fitting, each training host is scored by a forest grown without
    // any of its entities (fold = its position in IP order modulo k). These
    // are independent jobs, run side by side, one thread each when there are
    // enough of them; every entity is scored by exactly one job, with the
    // trees summed in order, so the scores do not depend on the threads.
    let mut in_training = vec![false; entities.len()];
    for &e in &train_idx {
        in_training[e] = true;
    }
    let jobs = if cross_fitted { folds + 1 } else { 1 };
    let threads = cfg.threads.max(1);
    // First every job's forest, grown (the threads shared among the jobs)
    // and compiled for scoring, with the entities it scores.
    // Each job's rows to grow on (none: the saved model's forest) and the
    // entities it scores.
    let job_rows: Vec<(Option<Vec<usize>>, Vec<usize>)> = (0..jobs)
        .map(|j| {
            if j == 0 {
                let fit = cfg.model.is_none().then(|| train_idx.clone());
                let rows: Vec<usize> = if cross_fitted {
                    (0..entities.len()).filter(|&e| !in_training[e]).collect()
                } else {
                    (0..entities.len()).collect()
                };
                return (fit, rows);
            }
            let (held, fit_rows): (Vec<usize>, Vec<usize>) = train_idx
                .iter()
                .copied()
                .partition(|&e| fold_of[entities[e].0] == j - 1);
            (Some(fit_rows), held)
        })
        .collect();
    // Checked (every value finite) side by side.
    let plans = in_tasks(jobs, threads, |j| {
        job_rows[j]
            .0
            .as_ref()
            .map(|rows| {
                fit_params.plan_rows(all.view(), rows).with_context(|| {
                    if j == 0 {
                        format!("training on {} hosts", train_hosts.len())
                    } else {
                        format!("training fold {j} of {folds}")
                    }
                })
            })
            .transpose()
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    // Every job's trees grown in tasks of `TREE_TASK` trees, so the threads
    // finish together (a tree depends only on its number, not on the
    // task that grows it).
    const TREE_TASK: usize = 10;
    let tree_tasks = task_ranges(
        plans
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(j, _)| (j, fit_params.n_trees)),
        TREE_TASK,
    );
    let grown_trees = in_tasks(tree_tasks.len(), threads, |t| {
        let (j, range) = &tree_tasks[t];
        plans[*j]
            .as_ref()
            .expect("tasks only for grown forests")
            .grow_trees(range.clone())
    });
    let mut trees_of: Vec<Vec<crate::model::forest::Tree>> = vec![Vec::new(); jobs];
    for ((j, _), trees) in tree_tasks.iter().zip(grown_trees) {
        trees_of[*j].extend(trees);
    }
    let forests: Vec<IsolationForest> = plans
        .iter()
        .zip(&mut trees_of)
        .map(|(plan, trees)| match plan {
            Some(plan) => plan.forest(std::mem::take(trees)),
            None => cfg
                .model
                .as_ref()
                .expect("a job grows its forest or loads the model's")
                .forest
                .clone(),
        })
        .collect();
    // Compiled for scoring, side by side.
    let scorers = in_tasks(jobs, threads, |j| forests[j].scorer());
    let mut grown: Vec<(Option<IsolationForest>, Scorer, Vec<usize>)> = Vec::with_capacity(jobs);
    for ((j, (forest, scorer)), (_, rows)) in
        forests.into_iter().zip(scorers).enumerate().zip(job_rows)
    {
        grown.push(((j == 0).then_some(forest), scorer?, rows));
    }
    // Then the scoring, in tasks of at most `SCORE_TASK` entities, so the
    // threads finish together however unequal the jobs are.
    const SCORE_TASK: usize = 1024;
    let tasks = task_ranges(
        grown.iter().enumerate().map(|(j, g)| (j, g.2.len())),
        SCORE_TASK,
    );
    let scored = in_tasks(tasks.len(), threads, |t| {
        let (j, range) = &tasks[t];
        let (_, scorer, rows) = &grown[*j];
        scorer
            .score_rows(all.view(), Some(&rows[range.clone()]), 1)
            .map_err(|e| match e {
                // The position among the job's rows.
                crate::model::forest::ForestError::NonFinite { row, column } => {
                    crate::model::forest::ForestError::NonFinite {
                        row: row + range.start,
                        column,
                    }
                }
                e => e,
            })
    });
    let mut scores = vec![f64::NAN; entities.len()];
    for ((j, range), s) in tasks.iter().zip(scored) {
        for (e, v) in grown[*j].2[range.clone()].iter().zip(s?) {
            scores[*e] = v;
        }
    }
    let full = grown.into_iter().next().and_then(|g| g.0);
    let mut forest = full.expect("job 0 grows or loads the full forest");
    if cfg.rules {
        for (e, (_, _, p)) in entities.iter().enumerate() {
            scores[e] = crate::profile::zeek_rule_score(p);
        }
    }
    // Host score: the highest score among its entities.
    let mut peak: Vec<Option<usize>> = vec![None; truth.len()];
    for (e, (h, _, _)) in entities.iter().enumerate() {
        if peak[*h].is_none_or(|p| scores[e] > scores[p]) {
            peak[*h] = Some(e);
        }
    }
    let host_score = |h: usize| peak[h].map_or(0.0, |e| scores[e]);
    let threshold = match cfg.forest.contamination {
        _ if cfg.rules => 0.999_999,
        _ if cfg.model.is_some() => cfg.model.as_ref().map_or(0.5, |m| m.threshold),
        crate::model::forest::Contamination::Auto => 0.5,
        crate::model::forest::Contamination::Fraction(c) => {
            let s: Vec<f64> = train_hosts.iter().map(|&h| host_score(h)).collect();
            crate::model::forest::contamination_threshold(&s, c)
        }
    };
    // The forest carries the run's threshold (a saved model shows it).
    forest.threshold = threshold;
    let mut windows_over = vec![0usize; truth.len()];
    let mut first_over: Vec<Option<f64>> = vec![None; truth.len()];
    for (e, (h, start, _)) in entities.iter().enumerate() {
        if scores[e] > threshold {
            windows_over[*h] += 1;
            if let Some(s) = start {
                first_over[*h] = Some(first_over[*h].map_or(*s, |f: f64| f.min(*s)));
            }
        }
    }

    let mut hosts: Vec<HostResult> = profiles
        .hosts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let e = peak[i].expect("every host has an entity");
            let flagged = scores[e] > threshold && !allowed[i];
            let features = table.values.row(e).to_vec();
            let robust_z = features
                .iter()
                .enumerate()
                .map(|(j, v)| robust_units(*v, medians[j], spreads[j]))
                .collect();
            HostResult {
                ip: p.ip,
                score: scores[e],
                flagged,
                allowed: allowed[i],
                rank: 0,
                is_attack: truth[i],
                attack_labels: profiles.attack_labels_of(p),
                flows: p.flows,
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                trained_on: fold_of[i] != usize::MAX,
                // Only a host above the threshold is explained.
                contributions: if scores[e] > threshold {
                    forest.feature_contributions(all.row(e))
                } else {
                    Vec::new()
                },
                robust_z,
                features,
                peak_window_start: entities[e].1,
                windows_flagged: windows_over[i],
                first_flagged_window: first_over[i],
                internal: p.internal,
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
        // Allowlisted hosts are reported on their own, not evaluated.
        let judged: Vec<&HostResult> = hosts.iter().filter(|h| !h.allowed).collect();
        let t: Vec<bool> = judged.iter().map(|h| h.is_attack == Some(true)).collect();
        let f: Vec<bool> = judged.iter().map(|h| h.flagged).collect();
        let s: Vec<f64> = judged.iter().map(|h| h.score).collect();
        let fam: Vec<Option<String>> = judged
            .iter()
            .map(|h| {
                (h.is_attack == Some(true))
                    .then(|| h.attack_labels.first().cloned().unwrap_or_default())
            })
            .collect();
        metrics::with_families(metrics::evaluate(&t, &f, &s), &fam, &f)
    });
    Ok(Detection {
        stats,
        feature_names: table.names(),
        feature_descriptions: table.defs.iter().map(|d| d.description).collect(),
        threshold,
        training_hosts: cfg
            .model
            .as_ref()
            .map_or(train_hosts.len(), |m| m.training.training_hosts),
        folds: if cross_fitted { folds } else { 0 },
        window_secs: profiles.window_secs,
        allowed_flows: profiles.allowed_flows,
        training_set: if cfg.model.is_some() {
            "hosts of the saved model's training files"
        } else if train.is_some() {
            if pool_labelled {
                "benign hosts of the --train files"
            } else {
                "hosts of the --train files"
            }
        } else if labelled {
            "benign hosts"
        } else {
            "hosts (no labels, so all of them)"
        },
        hosts,
        metrics,
        forest,
        params,
        rules: cfg.rules,
        offsets,
        scales,
        medians,
        spreads,
        mean_prior: cfg.mean_prior,
    })
}

/// Appends `p`'s entities with host indices offset by `offset`: one per
/// host and window, or the whole host when it has no timestamped flow.
fn add_entities<'a>(
    p: &'a Profiles,
    offset: usize,
    out: &mut Vec<(usize, Option<f64>, &'a crate::profile::HostProfile)>,
) {
    let mut has_window = vec![false; p.hosts.len()];
    if let Some(secs) = p.window_secs.map(f64::from) {
        // Hosts are sorted by IP, windows by IP then time: one walk along
        // both finds each window's host.
        debug_assert!(p.hosts.windows(2).all(|pair| pair[0].ip < pair[1].ip));
        let mut h = 0;
        for (i, w) in p.windows.iter().enumerate() {
            // The boxed windows are scattered: each is fetched a few ahead.
            if let Some(ahead) = p.windows.get(i + 8) {
                crate::util::prefetch(&ahead.ip);
            }
            while h < p.hosts.len() && p.hosts[h].ip < w.ip {
                h += 1;
            }
            if h < p.hosts.len() && p.hosts[h].ip == w.ip {
                has_window[h] = true;
                out.push((offset + h, Some(w.index as f64 * secs), &w.profile));
            }
        }
    }
    for (h, prof) in p.hosts.iter().enumerate() {
        if !has_window[h] {
            out.push((offset + h, None, prof));
        }
    }
}

/// Standard scaling with fitted offsets (means) and scales (1 / standard
/// deviation, 1 for a constant column): `(x - offset) * scale`, the formula
/// of linfa-preprocessing's `LinearScaler::standard`, applied here so a
/// saved model scales exactly as the run that fitted it; in place.
pub fn standardize(x: &mut Array2<f64>, offsets: &[f64], scales: &[f64]) {
    for mut row in x.rows_mut() {
        for (v, (o, s)) in row.iter_mut().zip(offsets.iter().zip(scales)) {
            *v = (*v - o) * s;
        }
    }
}

/// Per column, over the rows `rows`: median and a robust spread: the MAD
/// scaled by 1.4826 to estimate sigma, or, when over half the values are
/// equal (MAD = 0), the mean absolute deviation from the median scaled by
/// 1.2533, or 1 when the column is constant.
fn robust_center(
    x: &Array2<f64>,
    rows: &[usize],
    columns: std::ops::Range<usize>,
) -> (Vec<f64>, Vec<f64>) {
    // The chosen columns of the rows, column by column in row order, read
    // row by row (one pass over the matrix instead of a strided one per
    // column).
    let n = rows.len();
    let width = columns.len();
    let mut by_column = vec![0.0; width * n];
    for (k, &r) in rows.iter().enumerate() {
        let row = x.row(r);
        for (c, j) in columns.clone().enumerate() {
            by_column[c * n + k] = row[j];
        }
    }
    let mut med = Vec::with_capacity(width);
    let mut spread = Vec::with_capacity(width);
    let mut scratch = Vec::with_capacity(n);
    for c in 0..width {
        let column = &by_column[c * n..(c + 1) * n];
        scratch.clear();
        scratch.extend_from_slice(column);
        let m = crate::util::stats::median_in_place(&mut scratch);
        scratch.clear();
        scratch.extend(column.iter().map(|v| (v - m).abs()));
        let mean_dev = 1.2533 * scratch.iter().sum::<f64>() / n.max(1) as f64;
        let mad = 1.4826 * crate::util::stats::median_in_place(&mut scratch);
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

/// The rows `rows` of `x`, in that order (`x.select(Axis(0), rows)`, one
/// row copy each).
fn gather_rows(x: &Array2<f64>, rows: &[usize]) -> Array2<f64> {
    let mut values = Vec::with_capacity(rows.len() * x.ncols());
    for &r in rows {
        let row = x.row(r);
        // A contiguous row is one copy; ndarray's iterator goes value by
        // value.
        match row.as_slice() {
            Some(row) => values.extend_from_slice(row),
            None => values.extend(row.iter()),
        }
    }
    Array2::from_shape_vec((rows.len(), x.ncols()), values).expect("rows x columns values")
}

/// Signed distance from the benign median in robust units.
fn robust_units(v: f64, median: f64, spread: f64) -> f64 {
    (v - median) / spread
}
