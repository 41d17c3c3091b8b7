//! The detection run, stage by stage: the hosts' profiles become scored
//! entities (one per host and window, or the whole host), the entities a
//! feature table, the table is preprocessed and scored by the detector
//! (fitted here, or a saved model's), the threshold flags hosts, and the
//! labels, when there are any, measure the result.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use ndarray::Array2;

use crate::allow::Allowlist;
use crate::flows::ReadStats;
use crate::metrics::{self, Metrics};
use crate::model::Fitted;
use crate::model::crossfit::{self, CrossFit, Folds};
use crate::model::detector::{DetectorKind, DetectorParams};
use crate::model::file::Model;
use crate::model::forest::{IsolationForest, IsolationForestParams};
use crate::model::preprocess::{Preprocessing, Preprocessor};
use crate::profile::features::{FULL_FEATURES, FeatureDef, FeatureTable};
use crate::profile::truth::Truth;
use crate::profile::{HostProfile, ProfileOptions, Profiles};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct DetectConfig {
    /// Files or directories, as given by the user.
    pub inputs: Vec<PathBuf>,
    /// Files to train on instead of the scored files' benign hosts.
    pub train_inputs: Vec<PathBuf>,
    /// Feature tables read instead of flows (`--features-table`).
    pub tables: Vec<PathBuf>,
    /// The features, in the table's order.
    pub features: Vec<FeatureDef>,
    /// Flow orientation, the network's inside and the windows.
    pub profile: ProfileOptions,
    /// Score (and train on) hosts outside the network too (the default);
    /// `false` keeps internal sources only.
    pub score_external: bool,
    /// Threads for reading, the features and the forest; results do not
    /// depend on it.
    pub threads: usize,
    /// Ground truth overriding the per-flow labels (`--truth`).
    pub truth: Option<Truth>,
    /// Allowlisted hosts and (host, port) pairs (`--allow`).
    pub allow: Allowlist,
    /// Roles named by `--roles` (the rest come from the traffic).
    pub roles: crate::peers::Roles,
    /// Judge each host against its peer group too (see `peers`); off with
    /// `--no-peer-groups`, or with a model saved without groups.
    pub peer_groups: bool,
    /// Flows each host started and received over a longer span than the
    /// run (`watch`: since it started, bounded): what its role is told
    /// from, when given, instead of the run's own counts.
    pub role_traffic: Option<std::sync::Arc<rustc_hash::FxHashMap<IpAddr, (u64, u64)>>>,
    /// Repeat the training rows of smaller peer groups up to this many
    /// times (`--peer-balance`; 1: not at all; see `peers::balance`).
    pub peer_balance: usize,
    /// The preprocessing stage to fit.
    pub preprocessing: Preprocessing,
    /// The detector to fit.
    pub detector: DetectorParams,
    /// How the training hosts are scored out of sample.
    pub cross_fit: CrossFit,
    /// A fitted pipeline (a saved model) to score with instead of fitting.
    pub fitted: Option<Fitted>,
    /// Each host's past (`--history`): a host above the threshold whose
    /// windows above it are all within its own past is not flagged.
    pub history: Option<std::sync::Arc<crate::history::History>>,
    /// Calibrate the threshold on training host-days, not hosts
    /// (`--alert-budget`): the share above it is a share of host-days.
    pub per_host_day: bool,
    /// `watch`: the start of the window every entity of the run is (its
    /// profiles are whole hosts of one window).
    pub run_window_start: Option<f64>,
    /// Collect every window to learn into the history: all of them
    /// (`train`: the baseline), or only those not flagged.
    pub learn: Learn,
    /// Free the host profiles when scoring is done (the default). A
    /// command that exits right after a detection sets it to false: the
    /// profiles' hundreds of thousands of small sets are then left to the
    /// operating system, which takes the whole heap back at once.
    pub free_profiles: bool,
}

impl DetectConfig {
    /// How many times a smaller peer group's training rows are repeated at
    /// most, when the forest is fitted here with peer groups on.
    pub(crate) fn balance(&self) -> Option<usize> {
        (self.peer_groups
            && self.peer_balance > 1
            && self.fitted.is_none()
            && self.detector.kind == DetectorKind::Forest)
            .then_some(self.peer_balance)
    }

    /// The detection configuration that scores `inputs` with `model`: its
    /// features, profiling, parameters and fitted stages.
    pub(crate) fn for_model(inputs: Vec<PathBuf>, model: &Model) -> Result<DetectConfig> {
        let mut cfg = DetectConfig::new(inputs);
        cfg.features = model.feature_defs()?;
        cfg.profile = model.profile_options()?;
        cfg.score_external = model.score_external;
        cfg.detector.forest = model.training.params.clone();
        cfg.preprocessing.mean_prior = model.mean_prior;
        cfg.fitted = Some(model.fitted());
        cfg.peer_groups = !model.peer_groups.is_empty();
        Ok(cfg)
    }

    /// The defaults for `inputs`: full features, 15-minute windows off,
    /// five folds, every core.
    pub(crate) fn new(inputs: Vec<PathBuf>) -> DetectConfig {
        DetectConfig {
            inputs,
            train_inputs: Vec::new(),
            tables: Vec::new(),
            features: FULL_FEATURES.to_vec(),
            profile: ProfileOptions::default(),
            score_external: true,
            threads: crate::util::threads::default_threads(),
            truth: None,
            allow: Allowlist::default(),
            roles: crate::peers::Roles::default(),
            peer_groups: true,
            role_traffic: None,
            peer_balance: crate::peers::DEFAULT_BALANCE,
            preprocessing: Preprocessing::default(),
            detector: DetectorParams::default(),
            cross_fit: CrossFit { folds: 5 },
            fitted: None,
            history: None,
            per_host_day: false,
            run_window_start: None,
            learn: Learn::Nothing,
            free_profiles: true,
        }
    }
}

/// Which windows a run hands to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learn {
    /// None (no `--history`).
    Nothing,
    /// Every window (a baseline: `train`).
    All,
    /// Every window but those above the threshold of a host beyond its
    /// own past: a host without history learns what it does (it was
    /// judged against the other hosts, and alerted if it stood out), an
    /// attack beyond a host's past never becomes its past.
    Unflagged,
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
    /// [`crate::model::forest::IsolationForest::feature_contributions`]); empty for a host at or
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
    /// With `--history`, a host above the threshold compared with its own
    /// past (`None` otherwise).
    pub baseline: Option<crate::history::Judgement>,
    /// Its peer group (its role, see `peers`).
    pub peer_group: String,
    /// Its score in its peer group's forest (of the window shown); `None`
    /// when it is judged against the whole population only.
    pub peer_score: Option<f64>,
}

impl HostResult {
    /// How the host compares with its own past, in words (`None` without
    /// `--history` or below the threshold): a host without history says
    /// what it was judged against instead, its peer group when it has one.
    pub fn own_past(&self) -> Option<String> {
        let j = self.baseline.as_ref()?;
        Some(match (j, self.peer_score) {
            (crate::history::Judgement::NoHistory, Some(_)) => format!(
                "no history of this host: judged against its peer group ({}) and all hosts only",
                self.peer_group
            ),
            _ => j.describe(),
        })
    }
}

/// A peer group as a run saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReport {
    /// The group (a role).
    pub name: String,
    /// Scored hosts in it.
    pub hosts: usize,
    /// Hosts its forest was trained on.
    pub training_hosts: usize,
    /// Its threshold; `None` when it has no forest of its own (too few
    /// training hosts, or none in the model) and its hosts are judged
    /// against the whole population only.
    pub threshold: Option<f64>,
    /// Hosts above the whole population's threshold but within their
    /// group's: not flagged.
    pub usual_among_peers: usize,
}

/// Everything one detection produced.
#[derive(Debug, Clone)]
pub struct Detection {
    /// What the reader read and skipped.
    pub stats: ReadStats,
    /// The feature names, in the table's order.
    pub feature_names: Vec<&'static str>,
    /// Hosts sorted by rank.
    pub hosts: Vec<HostResult>,
    /// A host is flagged when its score is above this.
    pub threshold: f64,
    /// Training hosts behind the model.
    pub training_hosts: usize,
    /// Which hosts were trained on, in words.
    pub training_set: &'static str,
    /// Folds used to score the training hosts out of sample (0 = in-sample).
    pub folds: usize,
    /// Window length in seconds, when host x window entities were scored.
    pub window_secs: Option<u32>,
    /// Flows dropped by allowlist entries with ports.
    pub allowed_flows: u64,
    /// The evaluation against the labels, when there are any.
    pub metrics: Option<Metrics>,
    /// Which scorer gave the scores.
    pub detector: DetectorKind,
    /// The forest grown on every training entity, or the saved model's; it
    /// carries the run's threshold.
    pub forest: IsolationForest,
    /// The forest's parameters.
    pub params: IsolationForestParams,
    /// The fitted preprocessing (scaling, medians, spreads, mean prior):
    /// with `forest` and `threshold`, everything a saved model needs.
    pub preprocessor: Preprocessor,
    /// The windows to learn into the history (see [`Learn`]).
    pub observations: Vec<crate::history::Observation>,
    /// Whether the threshold was calibrated on training host-days
    /// (`--alert-budget`).
    pub per_host_day: bool,
    /// The peer groups' forests (empty without peer groups).
    pub peer_groups: Vec<crate::model::PeerGroup>,
    /// Every peer group of the scored hosts (empty without peer groups).
    pub groups: Vec<GroupReport>,
    /// How many times smaller groups' training rows were repeated at most
    /// (`None`: the forest was not fitted here, or not balanced).
    pub peer_balance: Option<usize>,
}

impl Detection {
    /// The flagged hosts, by rank.
    pub fn flagged(&self) -> impl Iterator<Item = &HostResult> {
        self.hosts.iter().filter(|h| h.flagged)
    }

    /// The fitted pipeline, to save as a model.
    pub fn fitted(&self) -> Fitted {
        Fitted {
            features: self.feature_names.iter().map(|s| s.to_string()).collect(),
            preprocessor: self.preprocessor.clone(),
            forest: self.forest.clone(),
            threshold: self.threshold,
            training_hosts: self.training_hosts,
            groups: self.peer_groups.clone(),
        }
    }

    /// Whether the scores are the rule baseline's.
    pub fn rules(&self) -> bool {
        self.detector == DetectorKind::Rules
    }
}

/// Runs the whole pipeline.
pub(crate) fn detect(cfg: &DetectConfig) -> Result<Detection> {
    cfg.detector.forest.validate()?;
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

/// Scores `profiles`; with `train`, the model is fitted on `train`'s
/// benign hosts (all of them when it has no labels) instead of on the
/// scored hosts' benign ones.
pub(crate) fn detect_with_training(
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
        // (Refused a thread, the closure is dropped here, freeing them.)
        let _ = std::thread::Builder::new().spawn(move || drop((profiles, train)));
    } else {
        std::mem::forget((profiles, train));
    }
    detection
}

/// The stages, in order.
fn score_profiles(
    cfg: &DetectConfig,
    profiles: &Profiles,
    train: Option<&Profiles>,
    stats: ReadStats,
) -> Result<Detection> {
    if profiles.hosts.is_empty() {
        let mut why = format!(
            "no source hosts to score: {} rows read, {} skipped, {} flows used",
            stats.rows,
            stats.skipped_total(),
            stats.flows
        );
        if !cfg.score_external && stats.flows > 0 {
            why.push_str("; with --sources internal, only sources inside --internal are scored");
        }
        for p in stats.problems.iter().take(3) {
            why.push_str(&format!("\n  e.g. {p}"));
        }
        anyhow::bail!(why);
    }
    let entities = Entities::of(profiles, train);
    let table = FeatureTable::build_threads(&entities.profiles, &cfg.features, cfg.threads);
    let scope = RunScope {
        stats,
        window_secs: profiles.window_secs,
        allowed_flows: profiles.allowed_flows,
        from_train_files: train.is_some(),
    };
    score_entities(cfg, &entities, &table, scope)
}

/// What a run's entities came from, for its report.
pub(crate) struct RunScope {
    /// What the reader read and skipped.
    pub stats: ReadStats,
    /// The window length, when entities are windows.
    pub window_secs: Option<u32>,
    /// Flows the allowlist dropped.
    pub allowed_flows: u64,
    /// Whether the training hosts came from `--train` files.
    pub from_train_files: bool,
}

/// The stages from the feature table on: training set, folds,
/// preprocessing, detector, threshold, host results and metrics.
pub(crate) fn score_entities(
    cfg: &DetectConfig,
    entities: &Entities<'_>,
    table: &FeatureTable,
    scope: RunScope,
) -> Result<Detection> {
    let hosts = HostFacts::of(&entities.hosts, entities.scored, &cfg.allow);
    let training = TrainingSet::choose(cfg, &hosts, entities.scored, scope.from_train_files);
    anyhow::ensure!(
        cfg.fitted.is_some() || training.hosts.len() >= 2,
        "{} host(s) to train on: every other host is allowlisted (--allow) or labelled as \
         an attack; train on more hosts (--train) or allow fewer",
        training.hosts.len()
    );
    let folds = cfg.cross_fit.assign(&training.hosts, entities.hosts.len());
    let roles = host_roles(cfg, entities);
    let mut fit = fit_and_score(cfg, table, (entities, &roles), &folds, training.hosts.len())?;
    let threshold = match &cfg.fitted {
        Some(f) if cfg.detector.kind == DetectorKind::Forest => f.threshold,
        _ => cfg
            .detector
            .threshold(|| calibration_scores(cfg, entities, &training.hosts, &fit.scores)),
    };
    // The forest carries the run's threshold (a saved model shows it).
    fit.forest.threshold = threshold;
    let peers = PeerFit::of(
        cfg,
        (entities, roles),
        (&fit, threshold),
        table,
        &training.hosts,
    )?;
    let above: Vec<bool> = (0..fit.scores.len())
        .map(|e| fit.scores[e] > threshold && peers.within(entities, e))
        .collect();
    let peaks = Peaks::of(entities, &fit.scores, &above);
    let mut results = host_results(
        (entities, &peaks),
        table,
        (&hosts, &folds),
        (&fit, &peers),
        &above,
    );
    if let Some(past) = &cfg.history {
        judge_by_history(
            (past, cfg.run_window_start),
            (entities, &above),
            table,
            &mut results,
        );
    }
    let groups = peers.report(entities, &fit.scores, threshold, &above);
    let observations = observations(cfg, entities, table, &above, &results);
    let metrics = hosts.labelled.then(|| evaluate(&results));
    Ok(Detection {
        stats: scope.stats,
        feature_names: table.names(),
        threshold,
        training_hosts: cfg
            .fitted
            .as_ref()
            .map_or(training.hosts.len(), |f| f.training_hosts),
        folds: folds.used(),
        window_secs: scope.window_secs,
        allowed_flows: scope.allowed_flows,
        training_set: training.describe(cfg, hosts.labelled),
        hosts: results,
        metrics,
        detector: cfg.detector.kind,
        forest: fit.forest,
        params: fit.params,
        preprocessor: fit.preprocessor,
        observations,
        per_host_day: cfg.per_host_day && cfg.fitted.is_none(),
        peer_groups: peers.groups,
        groups,
        peer_balance: cfg.balance(),
    })
}

/// What a threshold is calibrated on: each training host's highest score,
/// or with `--alert-budget` its highest in each day.
fn calibration_scores(
    cfg: &DetectConfig,
    entities: &Entities<'_>,
    training: &[usize],
    scores: &[f64],
) -> Vec<f64> {
    if cfg.per_host_day {
        host_day_peaks(entities, training, scores)
    } else {
        host_peaks(entities, training, scores)
    }
}

/// The training hosts' highest score in each day they were seen (a
/// whole-host entity, without a time, is one day): the units an alert
/// budget per host and day is calibrated on (`--alert-budget`).
fn host_day_peaks(entities: &Entities<'_>, training: &[usize], scores: &[f64]) -> Vec<f64> {
    let is_training: std::collections::HashSet<usize> = training.iter().copied().collect();
    let mut peaks: std::collections::BTreeMap<(usize, i64), f64> = Default::default();
    for (e, (&h, start)) in entities
        .host_of
        .iter()
        .zip(&entities.window_start)
        .enumerate()
    {
        if !is_training.contains(&h) {
            continue;
        }
        let day = start.map_or(i64::MIN, |s| (s / 86_400.0).floor() as i64);
        let peak = peaks.entry((h, day)).or_insert(f64::NEG_INFINITY);
        *peak = peak.max(scores[e]);
    }
    peaks.into_values().collect()
}

/// A tracked feature's column in `table`.
fn tracked_columns(table: &FeatureTable) -> Vec<Option<usize>> {
    crate::history::TRACKED
        .iter()
        .map(|t| table.defs.iter().position(|d| d.name == *t))
        .collect()
}

/// Each host above the threshold compared with its own past: each of its
/// windows above the threshold in time order (its values, and the admin
/// peers it reached up to that window), the first beyond its past
/// flagging it with the reason; a host all of whose such windows are within
/// its past is not flagged.
fn judge_by_history(
    (past, run_start): (&crate::history::History, Option<f64>),
    (entities, above): (&Entities<'_>, &[bool]),
    table: &FeatureTable,
    results: &mut [HostResult],
) {
    use crate::history::Judgement;
    let index: std::collections::HashMap<IpAddr, usize> = entities.hosts[..entities.scored]
        .iter()
        .enumerate()
        .map(|(i, h)| (h.ip, i))
        .collect();
    let judged: std::collections::HashSet<usize> = results
        .iter()
        .filter(|r| !r.contributions.is_empty())
        .filter_map(|r| index.get(&r.ip).copied())
        .collect();
    // The judged hosts' entities, in the table's (time) order.
    let mut of_host: std::collections::HashMap<usize, Vec<usize>> = Default::default();
    for (k, h) in entities.host_of.iter().enumerate() {
        if judged.contains(h) {
            of_host.entry(*h).or_default().push(k);
        }
    }
    for r in results.iter_mut().filter(|r| !r.contributions.is_empty()) {
        let Some(own) = index.get(&r.ip).and_then(|i| of_host.get(i)) else {
            continue;
        };
        let mut peers: Vec<IpAddr> = Vec::new();
        let mut pairs: Vec<(IpAddr, u16)> = Vec::new();
        let mut verdict: Option<Judgement> = None;
        for &k in own {
            if let Some(p) = entities.profiles.get(k) {
                peers.extend(p.admin_peers.iter().copied());
                peers.sort_unstable();
                peers.dedup();
                pairs.extend(p.admin_pairs.iter());
                pairs.sort_unstable();
                pairs.dedup();
            }
            if !above[k] {
                continue;
            }
            let value = |name: &str| {
                table
                    .defs
                    .iter()
                    .position(|d| d.name == name)
                    .map(|j| table.values[[k, j]])
            };
            let at = entities.window_start[k].or(run_start).unwrap_or(f64::MAX);
            let mut j = past.judge(r.ip, value, (&peers, at), &pairs);
            // Which window: the one shown may be another (the peak).
            if let (Judgement::Beyond(why), Some(start)) = (&mut j, entities.window_start[k]) {
                why.push_str(&format!(
                    " (the window from {})",
                    crate::flows::timestamp::format_timestamp(start)
                ));
            }
            let done = matches!(j, Judgement::Beyond(_) | Judgement::NoHistory);
            verdict = Some(j);
            if done {
                break;
            }
        }
        let Some(j) = verdict else { continue };
        if j == Judgement::Usual {
            r.flagged = false;
        }
        r.baseline = Some(j);
    }
}

/// The windows to learn into the history (see [`Learn`]).
fn observations(
    cfg: &DetectConfig,
    entities: &Entities<'_>,
    table: &FeatureTable,
    above: &[bool],
    results: &[HostResult],
) -> Vec<crate::history::Observation> {
    let learn = cfg.learn;
    if learn == Learn::Nothing {
        return Vec::new();
    }
    let beyond: std::collections::HashSet<IpAddr> = results
        .iter()
        .filter(|r| matches!(r.baseline, Some(crate::history::Judgement::Beyond(_))))
        .map(|r| r.ip)
        .collect();
    let columns = tracked_columns(table);
    let mut out = Vec::new();
    for (e, (&h, start)) in entities
        .host_of
        .iter()
        .zip(&entities.window_start)
        .enumerate()
    {
        let (Some(start), true) = (start.or(cfg.run_window_start), h < entities.scored) else {
            continue;
        };
        let ip = entities.hosts[h].ip;
        if learn == Learn::Unflagged && above[e] && beyond.contains(&ip) {
            continue;
        }
        out.push(crate::history::Observation {
            ip,
            start,
            values: columns
                .iter()
                .map(|c| c.map_or(0.0, |j| table.values[[e, j]]))
                .collect(),
            admin_peers: {
                let mut peers: Vec<IpAddr> = entities
                    .profiles
                    .get(e)
                    .map(|p| p.admin_peers.iter().copied().collect())
                    .unwrap_or_default();
                peers.sort_unstable();
                peers
            },
        });
    }
    out
}

/// A host as the outputs describe it.
#[derive(Debug, Clone)]
pub(crate) struct HostInfo {
    pub ip: IpAddr,
    pub flows: u64,
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    pub internal: bool,
    /// Flows other hosts started to it (0 when unknown).
    pub inbound: u64,
    /// `Some(true)` attack, `Some(false)` benign, `None` unlabelled.
    pub truth: Option<bool>,
    /// Its attack labels, most frequent first.
    pub attack_labels: Vec<String>,
}

impl HostInfo {
    fn of(profiles: &Profiles, h: &HostProfile) -> HostInfo {
        HostInfo {
            ip: h.ip,
            flows: h.flows,
            first_seen: h.first_seen,
            last_seen: h.last_seen,
            internal: h.internal,
            inbound: h.inbound_flows,
            truth: h.is_attack(),
            attack_labels: profiles.attack_labels_of(h),
        }
    }
}

/// The scored entities: one per host and window, or the whole host when it
/// has no timestamped flow. Host indices count the scored hosts
/// (`0..scored`), then the training file's.
pub(crate) struct Entities<'a> {
    /// Every host: the scored ones, then the training file's.
    pub hosts: Vec<HostInfo>,
    /// How many of `hosts` are scored.
    pub scored: usize,
    /// Per entity: its host, its window's start, its profile (no profiles
    /// for entities read from a feature table).
    pub host_of: Vec<usize>,
    pub window_start: Vec<Option<f64>>,
    pub profiles: Vec<&'a HostProfile>,
}

impl<'a> Entities<'a> {
    fn of(profiles: &'a Profiles, train: Option<&'a Profiles>) -> Entities<'a> {
        let mut list: Vec<(usize, Option<f64>, &HostProfile)> = Vec::new();
        add_entities(profiles, 0, &mut list);
        let mut hosts: Vec<HostInfo> = profiles
            .hosts
            .iter()
            .map(|h| HostInfo::of(profiles, h))
            .collect();
        if let Some(t) = train {
            add_entities(t, hosts.len(), &mut list);
            hosts.extend(t.hosts.iter().map(|h| HostInfo::of(t, h)));
        }
        Entities {
            scored: profiles.hosts.len(),
            hosts,
            host_of: list.iter().map(|e| e.0).collect(),
            window_start: list.iter().map(|e| e.1).collect(),
            profiles: list.iter().map(|e| e.2).collect(),
        }
    }
}

/// Per host: its label and whether the allowlist names it.
struct HostFacts {
    /// `Some(true)` attack, `Some(false)` benign, `None` unlabelled.
    truth: Vec<Option<bool>>,
    allowed: Vec<bool>,
    /// Whether any scored host has a label.
    labelled: bool,
}

impl HostFacts {
    /// The facts of `hosts`, of which the first `scored` are scored.
    fn of(hosts: &[HostInfo], scored: usize, allow: &Allowlist) -> HostFacts {
        let truth: Vec<Option<bool>> = hosts.iter().map(|h| h.truth).collect();
        HostFacts {
            labelled: truth[..scored].iter().any(Option::is_some),
            allowed: hosts.iter().map(|h| allow.host_allowed(h.ip)).collect(),
            truth,
        }
    }
}

/// The hosts the model is fitted on.
struct TrainingSet {
    hosts: Vec<usize>,
    /// Whether the pool it was chosen from has labels.
    pool_labelled: bool,
    /// Whether it came from `--train` files.
    from_train_files: bool,
}

impl TrainingSet {
    /// Benign hosts when labels exist, every host otherwise; from the
    /// `--train` files' hosts when given, else the scored ones; never an
    /// allowlisted host (a vulnerability scanner in the baseline would
    /// teach the forest that scanning is normal); none with a saved model,
    /// which brings its own training.
    fn choose(
        cfg: &DetectConfig,
        facts: &HostFacts,
        scored: usize,
        from_train_files: bool,
    ) -> TrainingSet {
        let pool = if from_train_files {
            scored..facts.truth.len()
        } else {
            0..scored
        };
        let pool_labelled = facts.truth[pool.clone()].iter().any(Option::is_some);
        let hosts = if cfg.fitted.is_some() {
            Vec::new()
        } else {
            pool.filter(|&i| (!pool_labelled || facts.truth[i] == Some(false)) && !facts.allowed[i])
                .collect()
        };
        TrainingSet {
            hosts,
            pool_labelled,
            from_train_files,
        }
    }

    fn describe(&self, cfg: &DetectConfig, labelled: bool) -> &'static str {
        if cfg.fitted.is_some() {
            "hosts of the saved model's training files"
        } else if self.from_train_files {
            if self.pool_labelled {
                "benign hosts of the --train files"
            } else {
                "hosts of the --train files"
            }
        } else if labelled {
            "benign hosts"
        } else {
            "hosts (no labels, so all of them)"
        }
    }
}

/// The fitted stages and every entity's score.
struct Fit {
    preprocessor: Preprocessor,
    /// The preprocessed table.
    x: Array2<f64>,
    forest: IsolationForest,
    params: IsolationForestParams,
    scores: Vec<f64>,
}

/// Preprocesses the table and scores every entity: with a saved model's
/// fitted stages, or by fitting them on the training hosts' entities.
fn fit_and_score(
    cfg: &DetectConfig,
    table: &FeatureTable,
    (entities, roles): (&Entities<'_>, &[String]),
    folds: &Folds,
    training_hosts: usize,
) -> Result<Fit> {
    if let Some(f) = &cfg.fitted {
        anyhow::ensure!(
            f.features == table.names(),
            "the model's features differ from this run's"
        );
        let x = f.preprocessor.transform(table);
        let rows: Vec<usize> = (0..x.nrows()).collect();
        let scores = crossfit::score_with(&f.forest, x.view(), &rows, cfg.threads)
            .context("scoring with the model's scaling and forest")?;
        return Ok(Fit {
            preprocessor: f.preprocessor.clone(),
            x,
            forest: f.forest.clone(),
            params: cfg.detector.forest_params(table),
            scores,
        });
    }
    let train_rows = folds.training_rows(&entities.host_of);
    let (preprocessor, x) = cfg.preprocessing.fit_transform(table, &train_rows)?;
    let mut jobs = folds.jobs(&entities.host_of, training_hosts);
    if let Some(cap) = cfg.balance() {
        for j in &mut jobs {
            j.fit = crate::peers::balance(&j.fit, |e| &roles[entities.host_of[e]], cap);
        }
    }
    let scored = cfg
        .detector
        .fit_score(table, x.view(), &jobs, &entities.profiles, cfg.threads)?;
    Ok(Fit {
        preprocessor,
        x,
        forest: scored.forest,
        params: scored.params,
        scores: scored.scores,
    })
}

/// The peer groups of a run (see `peers`): each host's group, each
/// entity's score in its group's forest, each group's threshold.
pub(crate) struct PeerFit {
    /// Per host (every host, scored then training): its group.
    role: Vec<String>,
    /// Per entity: its score in its group's forest (`None`: the group has
    /// none).
    score: Vec<Option<f64>>,
    /// The groups with a forest of their own.
    groups: Vec<crate::model::PeerGroup>,
    /// Whether peer groups are on.
    on: bool,
}

/// Every host's peer group (scored hosts, then training files' hosts).
fn host_roles(cfg: &DetectConfig, entities: &Entities<'_>) -> Vec<String> {
    entities
        .hosts
        .iter()
        .map(|h| {
            let (flows, inbound) = cfg
                .role_traffic
                .as_ref()
                .and_then(|t| t.get(&h.ip).copied())
                .unwrap_or((h.flows, h.inbound));
            cfg.roles.role_of(crate::peers::RoleFacts {
                ip: h.ip,
                internal: h.internal,
                flows,
                inbound,
            })
        })
        .collect()
}

impl PeerFit {
    /// With peer groups on, the forests of the groups with enough training
    /// hosts (fitted on `fit`'s scaled table, cross-fitted as the whole
    /// model is, thresholds from the same budget), or a saved model's. An
    /// entity's group score is kept only when it is above the whole
    /// population's `threshold` (where the group can change the verdict):
    /// a saved model's groups score those entities only.
    fn of(
        cfg: &DetectConfig,
        (entities, role): (&Entities<'_>, Vec<String>),
        (fit, threshold): (&Fit, f64),
        table: &FeatureTable,
        training: &[usize],
    ) -> Result<PeerFit> {
        let mut out = PeerFit {
            score: vec![None; entities.host_of.len()],
            role,
            groups: Vec::new(),
            on: cfg.peer_groups && cfg.detector.kind == DetectorKind::Forest,
        };
        if !out.on {
            return Ok(out);
        }
        let in_group = |name: &str| -> Vec<usize> {
            (0..entities.host_of.len())
                .filter(|&e| fit.scores[e] > threshold && out.role[entities.host_of[e]] == name)
                .collect()
        };
        if let Some(f) = &cfg.fitted {
            let mut groups = Vec::new();
            for g in &f.groups {
                let rows = in_group(&g.name);
                if rows.is_empty() {
                    continue;
                }
                let s = crossfit::score_with(&g.forest, fit.x.view(), &rows, cfg.threads)
                    .with_context(|| format!("scoring with peer group '{}'", g.name))?;
                groups.push((rows, s));
            }
            for (rows, s) in groups {
                for e in rows {
                    out.score[e] = Some(s[e]);
                }
            }
            out.groups = f.groups.clone();
            return Ok(out);
        }
        let mut names: Vec<&str> = training.iter().map(|&h| out.role[h].as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let params = cfg.detector.forest_params(table);
        let budget = match params.contamination {
            crate::model::forest::Contamination::Fraction(c) => Some(c),
            crate::model::forest::Contamination::Auto => None,
        };
        let mut fitted = Vec::new();
        for name in names {
            let hosts: Vec<usize> = training
                .iter()
                .copied()
                .filter(|&h| out.role[h] == name)
                .collect();
            if hosts.len() < crate::peers::min_group_hosts(budget) {
                continue;
            }
            let folds = cfg.cross_fit.assign(&hosts, entities.hosts.len());
            let mut jobs = folds.jobs(&entities.host_of, hosts.len());
            jobs[0]
                .score
                .retain(|&e| out.role[entities.host_of[e]] == name);
            let (mut forest, scores) =
                crossfit::grow_and_score(&params, fit.x.view(), &jobs, cfg.threads)
                    .with_context(|| format!("peer group '{name}'"))?;
            let threshold = cfg
                .detector
                .threshold(|| calibration_scores(cfg, entities, &hosts, &scores));
            forest.threshold = threshold;
            fitted.push((in_group(name), scores));
            out.groups.push(crate::model::PeerGroup {
                name: name.to_string(),
                training_hosts: hosts.len(),
                threshold,
                forest,
            });
        }
        for (rows, s) in fitted {
            for e in rows {
                out.score[e] = Some(s[e]);
            }
        }
        Ok(out)
    }

    /// Whether entity `e` is above its group's threshold (true when its
    /// group has no forest: it is judged against the whole population).
    fn within(&self, entities: &Entities<'_>, e: usize) -> bool {
        let name = &self.role[entities.host_of[e]];
        match (self.score[e], self.groups.iter().find(|g| &g.name == name)) {
            (Some(s), Some(g)) => s > g.threshold,
            _ => true,
        }
    }

    /// Every group of the scored hosts: its size, training, threshold and
    /// the hosts above the whole population's threshold it kept from
    /// being flagged.
    fn report(
        &self,
        entities: &Entities<'_>,
        scores: &[f64],
        threshold: f64,
        above: &[bool],
    ) -> Vec<GroupReport> {
        if !self.on {
            return Vec::new();
        }
        let mut over = vec![(false, false); entities.scored];
        for (e, &h) in entities.host_of.iter().enumerate() {
            if h < entities.scored {
                over[h].0 |= scores[e] > threshold;
                over[h].1 |= above[e];
            }
        }
        group_reports(
            &self.groups,
            over.iter()
                .enumerate()
                .map(|(h, &(all, own))| (self.role[h].as_str(), all && !own)),
        )
    }
}

/// A report for every group of `members` (each scored host's group, and
/// whether it was above the whole population's threshold but within its
/// group's), with `groups`' training and thresholds.
pub(crate) fn group_reports<'a>(
    groups: &[crate::model::PeerGroup],
    members: impl Iterator<Item = (&'a str, bool)>,
) -> Vec<GroupReport> {
    let mut by_name: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for (name, usual) in members {
        let n = by_name.entry(name).or_default();
        n.0 += 1;
        n.1 += usize::from(usual);
    }
    by_name
        .into_iter()
        .map(|(name, (hosts, usual))| {
            let group = groups.iter().find(|g| g.name == name);
            GroupReport {
                name: name.to_string(),
                hosts,
                training_hosts: group.map_or(0, |g| g.training_hosts),
                threshold: group.map(|g| g.threshold),
                usual_among_peers: usual,
            }
        })
        .collect()
}

/// Each of `hosts`' highest score over its entities.
fn host_peaks(entities: &Entities<'_>, hosts: &[usize], scores: &[f64]) -> Vec<f64> {
    let mut peak: std::collections::HashMap<usize, f64> =
        hosts.iter().map(|&h| (h, f64::NEG_INFINITY)).collect();
    for (e, h) in entities.host_of.iter().enumerate() {
        if let Some(p) = peak.get_mut(h) {
            *p = p.max(scores[e]);
        }
    }
    hosts.iter().map(|h| peak[h]).collect()
}

/// Per host: the entity that gives its score: its highest entity above
/// the threshold (`above`, by entity; empty: none is), else its highest.
struct Peaks {
    peak: Vec<Option<usize>>,
}

impl Peaks {
    fn of(entities: &Entities<'_>, scores: &[f64], above: &[bool]) -> Peaks {
        let is_above = |e: usize| above.get(e).copied().unwrap_or(false);
        let mut peak: Vec<Option<usize>> = vec![None; entities.hosts.len()];
        for (e, h) in entities.host_of.iter().enumerate() {
            let better = |p: usize| (is_above(e), scores[e]) > (is_above(p), scores[p]);
            if peak[*h].is_none_or(better) {
                peak[*h] = Some(e);
            }
        }
        Peaks { peak }
    }
}

/// Each scored host's result, ranked: score descending, ties by IP.
fn host_results(
    (entities, peaks): (&Entities<'_>, &Peaks),
    table: &FeatureTable,
    (facts, folds): (&HostFacts, &Folds),
    (fit, peers): (&Fit, &PeerFit),
    above: &[bool],
) -> Vec<HostResult> {
    let scores = &fit.scores;
    let n = entities.hosts.len();
    let mut windows_over = vec![0usize; n];
    let mut first_over: Vec<Option<f64>> = vec![None; n];
    for (e, (h, start)) in entities
        .host_of
        .iter()
        .zip(&entities.window_start)
        .enumerate()
    {
        if above[e] {
            windows_over[*h] += 1;
            if let Some(s) = start {
                first_over[*h] = Some(first_over[*h].map_or(*s, |f: f64| f.min(*s)));
            }
        }
    }
    let mut hosts: Vec<HostResult> = entities.hosts[..entities.scored]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let e = peaks.peak[i].expect("every host has an entity");
            let above = above[e];
            let features = table.values.row(e).to_vec();
            HostResult {
                ip: p.ip,
                score: scores[e],
                flagged: above && !facts.allowed[i],
                allowed: facts.allowed[i],
                rank: 0,
                is_attack: facts.truth[i],
                attack_labels: p.attack_labels.clone(),
                flows: p.flows,
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                trained_on: folds.is_training(i),
                // Only a host above the threshold is explained.
                contributions: if above {
                    fit.forest.feature_contributions(fit.x.row(e))
                } else {
                    Vec::new()
                },
                robust_z: fit.preprocessor.robust_z(&features),
                features,
                peak_window_start: entities.window_start[e],
                windows_flagged: windows_over[i],
                first_flagged_window: first_over[i],
                internal: p.internal,
                baseline: None,
                peer_group: peers.role[i].clone(),
                peer_score: peers.score[e],
            }
        })
        .collect();
    rank(&mut hosts);
    hosts
}

/// Ranks hosts: score descending, ties by IP; 1 the most anomalous.
pub(crate) fn rank(hosts: &mut [HostResult]) {
    hosts.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.ip.cmp(&b.ip)));
    hosts
        .iter_mut()
        .enumerate()
        .for_each(|(i, h)| h.rank = i + 1);
}

/// The metrics over the hosts not allowlisted (those are reported on
/// their own, not evaluated).
pub(crate) fn evaluate(hosts: &[HostResult]) -> Metrics {
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
}

/// Appends `p`'s entities with host indices offset by `offset`: one per
/// host and window, or the whole host when it has no timestamped flow.
fn add_entities<'a>(
    p: &'a Profiles,
    offset: usize,
    out: &mut Vec<(usize, Option<f64>, &'a HostProfile)>,
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

#[cfg(test)]
mod tests {
    use super::{Entities, HostInfo, host_day_peaks};

    /// The budget's units: each training host's highest score in each day
    /// (a whole-host entity one day of its own); other hosts left out.
    #[test]
    fn host_day_peaks_are_one_per_training_host_and_day() {
        let host = |ip: &str| HostInfo {
            ip: ip.parse().unwrap(),
            flows: 1,
            first_seen: None,
            last_seen: None,
            internal: true,
            inbound: 0,
            truth: Some(false),
            attack_labels: Vec::new(),
        };
        let day = 86_400.0;
        let entities = Entities {
            hosts: vec![host("10.0.0.1"), host("10.0.0.2"), host("10.0.0.3")],
            scored: 3,
            host_of: vec![0, 0, 0, 1, 1, 2],
            window_start: vec![
                Some(100.0),
                Some(900.0),
                Some(day + 100.0),
                Some(100.0),
                None,
                Some(100.0),
            ],
            profiles: Vec::new(),
        };
        let scores = [0.5, 0.7, 0.6, 0.4, 0.9, 0.99];
        let mut peaks = host_day_peaks(&entities, &[0, 1], &scores);
        peaks.sort_by(f64::total_cmp);
        assert_eq!(peaks, vec![0.4, 0.6, 0.7, 0.9]);
    }
}
