//! Command-line interface: parsing (clap derive) and the subcommands.
//!
//! Exit codes: 0 success; 2 an error (bad input, missing columns, bad
//! parameters; the message names the file, line, column or flag); 3 a CI
//! gate (`--min-recall`, `--max-fpr`) missed.

pub(crate) mod watch;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::allow::Allowlist;
use crate::detect::{self, DetectConfig, Detection};
use crate::model::detector::DetectorKind;
use crate::model::file::{InputFile, Model, TrainingInfo, sha256_file};
use crate::model::forest::{Contamination, IsolationForestParams};
use crate::output::report;
use crate::synth::{self, SynthConfig};
use crate::util::threads::spawn_or_run;

/// Finds hosts that move laterally (scanners, service sweeps, sudden
/// fan-out) in network flows: Zeek, NetFlow (nfdump), Argus, Suricata,
/// Parquet and CICFlowMeter records.
#[derive(Debug, Parser)]
#[command(name = "latmove", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    /// The subcommand.
    pub command: Command,
    /// No progress bar (it is shown only on a terminal, for reads longer
    /// than a second).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The inputs' format: 'auto' tells each file's by its content; or one
    /// of cic, zeek, zeek-json, nfdump, argus, suricata, parquet.
    #[arg(long, global = true, default_value = "auto", value_name = "FORMAT")]
    pub format: String,
}

#[derive(Debug, Subcommand)]
/// The subcommands.
pub enum Command {
    /// Profile every source host, score it with an Isolation Forest trained
    /// on benign hosts, and report the suspects.
    Detect(Box<DetectArgs>),
    /// Train on flows (e.g. a benign day) and save the model: the same
    /// options as `detect`, with the inputs as training data.
    Train(Box<TrainArgs>),
    /// Score flows with a saved model, without retraining and without
    /// labels; writes the same outputs as `detect`.
    Score(ScoreArgs),
    /// Score a stream of flows (stdin or a growing file) with a saved model,
    /// window by window, and emit alerts as windows close.
    Watch(WatchArgs),
    /// Write a seeded synthetic day in the exact CIC-IDS2017
    /// TrafficLabelling layout, with planted attackers.
    Synth(SynthArgs),
    /// Write the flows as profiling counts them (turned toward their
    /// initiator, inside/outside, answered, window keys) to a Parquet or
    /// CSV table: the input of sql/features.sql on Spark, DuckDB, Trino or
    /// ClickHouse.
    Flows(FlowsArgs),
    /// Write the feature table (a row per host and window, or per host
    /// without timestamps) to Parquet or CSV: what `train` and `score` read
    /// with --features-table.
    Features(FeaturesArgs),
    /// Print the SQL that turns the flow table into the feature table, for
    /// one engine.
    Sql(SqlArgs),
}

#[derive(Debug, Args)]
/// What `flows` and `features` read and where their table goes.
pub struct TableArgs {
    /// Flow files or directories, in any format `detect` reads.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// The table to write: a name ending in .parquet or .csv, or a
    /// directory (an existing one, or a path ending in /) to write
    /// part-00000.parquet into.
    #[arg(short, long, value_name = "FILE|DIR")]
    pub output: PathBuf,
    #[command(flatten)]
    /// How flows become profiles.
    pub profile: ProfileArgs,
    /// Threads (0 = every core); the table does not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
}

#[derive(Debug, Args)]
/// `latmove flows`'s options.
pub struct FlowsArgs {
    #[command(flatten)]
    /// Inputs, output, profiling.
    pub table: TableArgs,
}

#[derive(Debug, Args)]
/// `latmove features`'s options.
// The truth file's syntax `ip[,start,end][,label]` is help text, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct FeaturesArgs {
    #[command(flatten)]
    /// Inputs, output, profiling.
    pub table: TableArgs,
    /// Feature set: 'full' or 'seed'.
    #[arg(long, default_value = "full", value_name = "SET")]
    pub features: String,
    /// Ground truth per host, overriding the per-flow labels
    /// (lines: ip[,start,end][,label]).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
}

#[derive(Debug, Args)]
/// `latmove sql`'s options.
pub struct SqlArgs {
    /// The engine: spark, duckdb, trino or clickhouse.
    #[arg(long, default_value = "duckdb", value_name = "NAME")]
    pub dialect: String,
}

#[derive(Debug, Args)]
/// `latmove detect`'s options.
// The truth file's syntax `ip[,start,end][,label]` is help text, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct DetectArgs {
    /// Flow files (CICFlowMeter CSV, Zeek conn.log, nfdump or Argus CSV,
    /// Suricata eve.json, Parquet; plain or gzip) or directories of them.
    #[arg(required_unless_present = "features_table", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Read a feature table instead of flows (Parquet, a directory of
    /// Parquet parts, or CSV, as `latmove features` or sql/features.sql
    /// write it); repeat for more.
    #[arg(long, value_name = "TABLE", conflicts_with = "inputs")]
    pub features_table: Vec<PathBuf>,
    /// Directory for the CSV, JSON and PNG outputs [detect's default:
    /// latmove-out; train writes them only when given this, --alerts,
    /// --report or a gate].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Share of the training hosts' scores above the threshold (0 < c <=
    /// 0.5), or 'auto' to flag scores above 0.5.
    #[arg(long, default_value = "0.01", value_name = "C|auto")]
    pub contamination: String,
    /// The false-alarm budget per host and day instead of --contamination:
    /// the threshold leaves this share (0 < B <= 0.5) of the training
    /// hosts' days (each host's highest window of each day) above it, so
    /// on days like the training ones at most about B of the benign
    /// host-days raise an alert.
    #[arg(long, value_name = "B", conflicts_with = "contamination")]
    pub alert_budget: Option<f64>,
    /// Trees in the forest (each cross-fitting fold grows its own); fewer
    /// leave more to the seed (docs/method.md: with 100, the real
    /// CIC-IDS2017 rows lose a bot at 7 seeds in 100; with 200, at 2).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub trees: usize,
    /// Subsample size per tree (psi = min(this, training hosts)).
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_samples: usize,
    /// Random seed; the same seed and input give bit-identical results.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Score each training host with a forest grown without it (k-fold
    /// cross-fitting); 1 scores them with the model that saw them, which
    /// lets in-sample outliers outrank real attackers.
    #[arg(long, default_value_t = 5, value_name = "K")]
    pub folds: usize,
    /// Repeat the training windows of smaller peer groups (workstations,
    /// servers among many internet hosts) up to N times, so the forest
    /// learns what they ordinarily do; 1 trains on every window once.
    #[arg(long, default_value_t = crate::peers::DEFAULT_BALANCE, value_name = "N")]
    pub peer_balance: usize,
    /// Means per flow (duration, bytes, packets) of a host or window with n
    /// flows are pulled toward the benign median by the weight n/(n+K)
    /// before scoring, so one large download in a quiet window does not
    /// make it unique; 0 scores them raw.
    #[arg(long, default_value_t = crate::model::preprocess::DEFAULT_MEAN_PRIOR, value_name = "K")]
    pub prior_flows: f64,
    /// Score with scikit-learn's path lengths exactly, instead of the
    /// range-aware expected path length (which also isolates values beyond
    /// every training value).
    #[arg(long)]
    pub sklearn_paths: bool,
    /// How the forest picks a split feature: 'family' (a behaviour family
    /// uniformly, then one of its features) or 'uniform' (any feature, as
    /// scikit-learn does).
    #[arg(long, default_value = "family", value_name = "HOW")]
    pub feature_choice: String,
    /// Threads for reading and for the forest (0 = every core); results
    /// are bit-identical whatever the count. (A gzip input is also inflated
    /// on a thread of its own.)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Feature set: 'full' (behaviour features) or 'seed' (the four of the
    /// original recipe).
    #[arg(long, default_value = "full", value_name = "SET")]
    pub features: String,
    /// Which sources to score (and train on): 'all', or 'internal' for
    /// sources inside --internal only.
    #[arg(long, default_value = "all", value_name = "WHICH")]
    pub sources: String,
    /// Train on this file or directory (e.g. a benign day) instead of the
    /// scored files' benign hosts; repeat for more.
    #[arg(long, value_name = "FILE")]
    pub train: Vec<PathBuf>,
    /// Ground truth per host, overriding the per-flow labels
    /// (lines: ip[,start,end][,label]).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// 'forest' (the Isolation Forest) or 'rules': the Zeek-style baseline
    /// (25 hosts on one port or 15 ports on one host, failed connections,
    /// within 5 minutes), scored as max(hosts/25, ports/15).
    #[arg(long, default_value = "forest", value_name = "NAME")]
    pub detector: String,
    #[command(flatten)]
    /// How flows become profiles.
    pub profile: ProfileArgs,
    #[command(flatten)]
    /// Each host's own past.
    pub past: HistoryArgs,
    #[command(flatten)]
    /// Peer groups.
    pub peers: PeerArgs,
    #[command(flatten)]
    /// Where the results go and the gates.
    pub output: OutputArgs,
}

/// How flows become profiles: the options `detect`, `train`, `flows` and
/// `features` share.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The inside of the network, as CIDRs separated by commas.
    #[arg(
        long,
        default_value = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
        value_name = "CIDRS"
    )]
    pub internal: String,
    /// Keep every flow in the direction the file gives, instead of
    /// re-orienting reply-direction flows to their initiator.
    #[arg(long)]
    pub no_orient: bool,
    /// Also score each host in time windows of this length (e.g. 5m, 15m,
    /// 1h), so a host that scans for 20 minutes in a quiet day stands out;
    /// 'none' scores whole hosts only.
    #[arg(long, default_value = "15m", value_name = "LEN")]
    pub window: String,
    /// Allowlist: IPs or CIDRs, optionally with ports (known scanners,
    /// backup servers, pollers); allowed hosts are reported on their own.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
}

/// Each host's own past, kept across runs (`--history`).
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Judge each host against its own past as well as against the other
    /// hosts, and learn this run's windows into it: the state in DIR
    /// (created on first use). A host above the threshold whose windows
    /// above it are all within its own past is not flagged; a host without
    /// history is judged against the other hosts only.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// How long the history remembers a host, its usual levels and its
    /// admin peers (days of flow time).
    #[arg(long, default_value_t = crate::history::DEFAULT_DAYS, value_name = "DAYS")]
    pub history_days: f64,
    /// Hosts the history keeps at most (the least recently seen forgotten
    /// first).
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub history_max_hosts: usize,
    /// Judge against the history without learning this run into it (the
    /// file is left as it is): e.g. a report on a day `watch` has learnt.
    #[arg(long, requires = "history")]
    pub history_read_only: bool,
}

/// Peer groups (`--roles`, `--no-peer-groups`).
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Name each host's peer group (lines: NETWORK ROLE, e.g. '10.0.5.0/24
    /// server'; the longest prefix wins); other hosts' groups come from
    /// their traffic: external, server (receives more flows than it
    /// starts) or workstation.
    #[arg(long, value_name = "FILE")]
    pub roles: Option<PathBuf>,
    /// Judge every host against the whole population only, not also
    /// against its peer group.
    #[arg(long)]
    pub no_peer_groups: bool,
}

impl PeerArgs {
    /// The roles `--roles` names (none without it).
    fn roles(&self) -> Result<crate::peers::Roles> {
        match &self.roles {
            Some(f) => crate::peers::Roles::from_file(f).context("--roles"),
            None => Ok(crate::peers::Roles::default()),
        }
    }

    /// Applies the options to `cfg`.
    fn apply(&self, cfg: &mut DetectConfig) -> Result<()> {
        if self.roles.is_some() {
            cfg.roles = self.roles()?;
        }
        if self.no_peer_groups {
            cfg.peer_groups = false;
        }
        Ok(())
    }
}

impl HistoryArgs {
    /// The history to judge and learn with, when `--history` is given.
    fn load(
        &self,
        features: &[crate::profile::features::FeatureDef],
    ) -> Result<Option<crate::history::History>> {
        let Some(dir) = &self.history else {
            return Ok(None);
        };
        anyhow::ensure!(
            !dir.exists() || dir.is_dir(),
            "--history {}: not a directory (the history is kept in DIR/history.json)",
            dir.display()
        );
        anyhow::ensure!(
            self.history_days.is_finite() && (1.0..=3660.0).contains(&self.history_days),
            "--history-days must be from 1 to 3660, got {}",
            self.history_days
        );
        anyhow::ensure!(
            (1..=10_000_000).contains(&self.history_max_hosts),
            "--history-max-hosts must be from 1 to 10000000, got {}",
            self.history_max_hosts
        );
        let missing: Vec<&str> = crate::history::TRACKED
            .iter()
            .filter(|t| !features.iter().any(|f| f.name == **t))
            .copied()
            .collect();
        anyhow::ensure!(
            missing.is_empty(),
            "--history needs the full feature set (the model lacks {})",
            missing.join(", ")
        );
        Ok(Some(crate::history::History::load(
            dir,
            (self.history_days * 86_400.0, self.history_max_hosts, 4096),
            !self.history_read_only,
        )?))
    }
}

/// Learns a run's windows into the history and saves it; says so.
fn learn_and_save(
    a: &HistoryArgs,
    past: Option<crate::history::History>,
    d: &Detection,
) -> Result<()> {
    let (Some(dir), Some(mut past)) = (&a.history, past) else {
        return Ok(());
    };
    if a.history_read_only {
        eprintln!("History: read only, {} left as it was", dir.display());
        return Ok(());
    }
    let learnt = past.learn(&d.observations);
    let path = past.save(dir)?;
    eprintln!(
        "History: {} windows learnt; {} hosts in {}",
        learnt.windows,
        past.hosts(),
        path.display()
    );
    if learnt.ahead > 0 {
        eprintln!(
            "  {} windows not learnt: they start over a day after the rest of the input (a clock error?)",
            learnt.ahead
        );
    }
    if let Some(what) = learnt.forgot.describe(past.retention_days()) {
        eprintln!("  {what}");
    }
    Ok(())
}

/// What `detect` and `score` write besides the outputs directory.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Flagged hosts shown in the summary.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// Exit with code 3 when recall is below R (needs labels).
    #[arg(long, value_name = "R")]
    pub min_recall: Option<f64>,
    /// Exit with code 3 when the false-positive rate is above F (needs labels).
    #[arg(long, value_name = "F")]
    pub max_fpr: Option<f64>,
    /// Write one alert per flagged host to FILE ('-' for stdout, the
    /// summary then goes to stderr).
    #[arg(long, value_name = "FILE|-")]
    pub alerts: Option<PathBuf>,
    /// Alert format: 'ecs' (NDJSON, Elastic Common Schema) or 'cef'
    /// (ArcSight Common Event Format).
    #[arg(long, default_value = "ecs", value_name = "FORMAT")]
    pub alert_format: String,
    /// Write a forensic report (a page per flagged host, its flows as CSV,
    /// a timeline chart, an index and a run manifest) into DIR.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Do not draw the PNG charts.
    #[arg(long)]
    pub no_charts: bool,
    /// Write CSV text cells exactly as read. By default a cell from the
    /// input (a label, a Flow ID) that starts with = + - @, a tab or a
    /// carriage return gets a leading ' so a spreadsheet shows it instead
    /// of running it as a formula.
    #[arg(long)]
    pub raw_csv: bool,
}

#[derive(Debug, Args)]
/// `latmove train`'s options.
pub struct TrainArgs {
    /// Where to save the model (JSON).
    #[arg(short = 'o', long = "model-out", value_name = "FILE")]
    pub model_out: PathBuf,
    #[command(flatten)]
    /// The detection options (the inputs are the training data).
    pub detect: DetectArgs,
}

#[derive(Debug, Args)]
/// `latmove score`'s options.
// The truth file's syntax `ip[,start,end][,label]` is help text, not a link.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct ScoreArgs {
    /// A model saved by `latmove train`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Flow files (CICFlowMeter CSV, Zeek conn.log, nfdump or Argus CSV,
    /// Suricata eve.json, Parquet; plain or gzip) or directories of them.
    #[arg(required_unless_present = "features_table", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Score a feature table instead of flows (Parquet, a directory of
    /// Parquet parts, or CSV), streamed in batches; repeat for more.
    #[arg(long, value_name = "TABLE", conflicts_with = "inputs")]
    pub features_table: Vec<PathBuf>,
    /// Directory for the CSV, JSON and PNG outputs.
    #[arg(long, default_value = "latmove-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Ground truth per host (lines: ip[,start,end][,label]).
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Allowlist: IPs or CIDRs, optionally with ports.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Threads (0 = every core); results do not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    #[command(flatten)]
    /// Each host's own past.
    pub past: HistoryArgs,
    #[command(flatten)]
    /// Peer groups.
    pub peers: PeerArgs,
    #[command(flatten)]
    /// Where the results go and the gates.
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
/// `latmove watch`'s options.
pub struct WatchArgs {
    /// A model saved by `latmove train` (trained with time windows).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The flow stream: a file (any text format `detect` reads), or '-'
    /// for stdin.
    #[arg(default_value = "-", value_name = "FILE|-")]
    pub input: PathBuf,
    /// Keep reading a file that grows (like tail -F) until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Where alerts go ('-' for stdout).
    #[arg(long, default_value = "-", value_name = "FILE|-")]
    pub alerts: PathBuf,
    /// Alert format: 'ecs' (NDJSON) or 'cef'.
    #[arg(long, default_value = "ecs", value_name = "FORMAT")]
    pub alert_format: String,
    /// Close a host's incident after this long (flow time) without a window
    /// above the threshold, e.g. 1h, 30m; until then its windows update the
    /// incident and alert only when it escalates.
    #[arg(long, default_value = "1h", value_name = "LEN")]
    pub suppress: String,
    /// Allowlist: IPs or CIDRs, optionally with ports.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// Hosts profiled in one window (flows of further new hosts are
    /// counted as overflow), and hosts whose admin peers are remembered
    /// (the least recently active forgotten first).
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    pub max_hosts: usize,
    /// Close the open window when no flow has arrived for this long (wall
    /// clock), e.g. 5m; 'none' waits for the next window's flows.
    #[arg(long, default_value = "none", value_name = "LEN")]
    pub idle_close: String,
    /// A flow this far ahead of the open window (flow time) moves the clock
    /// only when 64 such flows in a row confirm it; until then it is held
    /// back, and dropped and counted if they do not.
    #[arg(long, default_value = "6h", value_name = "LEN")]
    pub max_jump: String,
    #[command(flatten)]
    /// Each host's own past.
    pub past: HistoryArgs,
    #[command(flatten)]
    /// Peer groups.
    pub peers: PeerArgs,
}

#[derive(Debug, Args)]
/// `latmove synth`'s options.
pub struct SynthArgs {
    /// Output file; a name ending in .gz is gzip-compressed.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Data rows (445909 is the real Tuesday file's size).
    #[arg(long, default_value_t = synth::TUESDAY_ROWS, value_name = "N")]
    pub rows: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// 'standard' (brute force and an internal scan) or 'hard' (adds a slow
    /// scan, a 445/3389 sweep, a modest lateral mover, and benign heavy
    /// hitters: backup server, SNMP poller, vulnerability scanner, NAT).
    #[arg(long, default_value = "standard", value_name = "NAME")]
    pub scenario: String,
    /// Leave the attackers out: a benign baseline day for `detect --train`.
    #[arg(long)]
    pub benign_only: bool,
    /// Write N days (2 to 27) of the same network into the directory -o
    /// names (day-01.csv.gz ...): stable hosts and roles, a new employee
    /// from day 5, the backup server moving and a patch Tuesday on day 8,
    /// and the standard day's attacks on --attack-day alone.
    #[arg(long, value_name = "N")]
    pub days: Option<usize>,
    /// With --days: the day of the attacks (1 = the first).
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub attack_day: usize,
    /// Workstations (10 to 10000): the CIC-IDS2017 network's ten, then
    /// more in 10.20.0.0/16, sharing the benign rows (raise --rows with
    /// them to keep each one as busy). Not with --days.
    #[arg(long, default_value_t = 10, value_name = "N", conflicts_with = "days")]
    pub workstations: usize,
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<ExitCode> {
    use std::io::IsTerminal;
    crate::flows::progress::enable(!cli.quiet && std::io::stderr().is_terminal());
    let format = crate::flows::formats::Format::parse(&cli.format)
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    crate::flows::formats::force(format);
    crate::output::write::install_signal_handler()?;
    match cli.command {
        Command::Detect(a) => run_detect(*a),
        Command::Train(a) => run_train(*a),
        Command::Score(a) => run_score(a),
        Command::Watch(a) => run_watch(a),
        Command::Synth(a) => run_synth(a),
        Command::Flows(a) => run_flows(a),
        Command::Features(a) => run_features(a),
        Command::Sql(a) => run_sql(a),
    }
}

/// The longest `--window` or `--suppress`: one week.
const MAX_PERIOD_SECS: u32 = 7 * 24 * 3600;
/// The most threads `--threads` asks for.
const MAX_THREADS: usize = 1024;
/// The most trees `--trees` asks for.
const MAX_TREES: usize = 10_000;
/// The most rows `synth --rows` writes (the generator keeps a day in
/// memory, 72 bytes a row).
const MAX_SYNTH_ROWS: usize = 50_000_000;

/// `5m`, `15m`, `1h`, `90s` or `none`, for the option `flag`: from one
/// second to one week.
pub fn parse_period(flag: &str, s: &str) -> Result<Option<u32>> {
    let t = s.trim().to_ascii_lowercase();
    if t == "none" || t == "off" {
        return Ok(None);
    }
    let shape = || anyhow::anyhow!("{flag} must look like 5m, 15m, 1h or none, got '{s}'");
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| shape())?;
    let secs = match unit {
        "s" => n,
        "m" | "" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(shape()),
    };
    if secs == 0 {
        bail!("{flag} must be longer than zero, got '{s}'");
    }
    if secs > u64::from(MAX_PERIOD_SECS) {
        bail!("{flag} must be at most a week (168h), got '{s}'");
    }
    Ok(Some(secs as u32))
}

/// `--threads`: 0 (every core) up to [`MAX_THREADS`].
fn check_threads(n: usize) -> Result<()> {
    anyhow::ensure!(
        n <= MAX_THREADS,
        "--threads must be at most {MAX_THREADS} (0 = every core), got {n}"
    );
    Ok(())
}

/// `--alert-format`: `ecs` or `cef`.
fn check_alert_format(f: &str) -> Result<()> {
    anyhow::ensure!(
        f == "ecs" || f == "cef",
        "--alert-format must be 'ecs' or 'cef', got '{f}'"
    );
    Ok(())
}

fn check_fraction(name: &str, v: Option<f64>) -> Result<()> {
    if let Some(v) = v
        && !(0.0..=1.0).contains(&v)
    {
        bail!("{name} must be between 0 and 1, got {v}");
    }
    Ok(())
}

/// The detection configuration `detect` (and `train`) options describe.
fn detect_config(a: &DetectArgs) -> Result<DetectConfig> {
    let contamination: Contamination = match a.alert_budget {
        Some(b) => {
            anyhow::ensure!(
                b > 0.0 && b <= 0.5,
                "--alert-budget must be above 0 and at most 0.5, got {b}"
            );
            Contamination::Fraction(b)
        }
        None => a.contamination.parse()?,
    };
    check_fraction("--min-recall", a.output.min_recall)?;
    check_fraction("--max-fpr", a.output.max_fpr)?;
    check_threads(a.threads)?;
    check_alert_format(&a.output.alert_format)?;
    anyhow::ensure!(
        a.trees <= MAX_TREES,
        "--trees must be at most {MAX_TREES}, got {}",
        a.trees
    );
    let mut cfg = DetectConfig::new(a.inputs.clone());
    // The command exits once the outputs are written.
    cfg.free_profiles = false;
    cfg.detector.forest = IsolationForestParams {
        n_trees: a.trees,
        max_samples: a.max_samples,
        contamination,
        seed: a.seed,
        range_aware: !a.sklearn_paths,
        feature_families: Vec::new(),
    };
    cfg.detector.family_choice = match a.feature_choice.as_str() {
        "family" => true,
        "uniform" => false,
        other => bail!("--feature-choice must be 'family' or 'uniform', got '{other}'"),
    };
    cfg.cross_fit.folds = a.folds;
    cfg.per_host_day = a.alert_budget.is_some();
    anyhow::ensure!(
        a.prior_flows.is_finite() && a.prior_flows >= 0.0,
        "--prior-flows must be a number of flows, 0 or more, got {}",
        a.prior_flows
    );
    cfg.preprocessing.mean_prior = a.prior_flows;
    cfg.features = crate::profile::features::feature_set(&a.features)
        .ok_or_else(|| {
            anyhow::anyhow!("--features must be 'full' or 'seed', got '{}'", a.features)
        })?
        .to_vec();
    (cfg.profile, cfg.allow) = profile_options(&a.profile)?;
    cfg.score_external = match a.sources.as_str() {
        "all" => true,
        "internal" => false,
        other => bail!("--sources must be 'all' or 'internal', got '{other}'"),
    };
    cfg.train_inputs = a.train.clone();
    cfg.tables = a.features_table.clone();
    cfg.detector.kind = match a.detector.as_str() {
        "forest" => DetectorKind::Forest,
        "rules" => DetectorKind::Rules,
        other => bail!("--detector must be 'forest' or 'rules', got '{other}'"),
    };
    if let Some(t) = &a.truth {
        cfg.truth = Some(crate::profile::truth::Truth::from_file(t).context("--truth")?);
    }
    if a.threads > 0 {
        cfg.threads = a.threads;
    }
    a.peers.apply(&mut cfg)?;
    anyhow::ensure!(
        (1..=100).contains(&a.peer_balance),
        "--peer-balance must be from 1 to 100, got {}",
        a.peer_balance
    );
    cfg.peer_balance = a.peer_balance;
    cfg.detector.forest.validate()?;
    Ok(cfg)
}

/// The profiling options and the allowlist the options describe.
fn profile_options(a: &ProfileArgs) -> Result<(crate::profile::ProfileOptions, Allowlist)> {
    anyhow::ensure!(
        a.internal.split(',').any(|p| !p.trim().is_empty()),
        "--internal needs at least one CIDR, got '{}'",
        a.internal
    );
    let mut o = crate::profile::ProfileOptions::default();
    o.network.internal =
        crate::net::parse_cidrs(&a.internal).map_err(|e| anyhow::anyhow!("--internal: {e}"))?;
    o.orient = !a.no_orient;
    o.window_secs = parse_period("--window", &a.window)?;
    let allow = match &a.allow {
        Some(f) => Allowlist::from_file(f).context("--allow")?,
        None => Allowlist::default(),
    };
    Ok((o, allow))
}

/// Refuses, before any work, outputs that would replace an input: the
/// files `--out` holds, `--alerts`, and `extra` (a model's path).
fn check_outputs(
    cfg: &DetectConfig,
    out: &Path,
    o: &OutputArgs,
    extra: &[(&str, PathBuf)],
) -> Result<()> {
    let mut inputs = crate::flows::expand_inputs(&cfg.inputs)?;
    inputs.extend(crate::flows::expand_inputs(&cfg.train_inputs)?);
    if !cfg.tables.is_empty() {
        inputs.extend(crate::table::read::table_files(&cfg.tables)?);
    }
    let mut outputs: Vec<(&str, PathBuf)> =
        ["host_scores.csv", "flagged_hosts.csv", "metrics.json"]
            .iter()
            .map(|n| ("--out", out.join(n)))
            .collect();
    outputs.push(("--out", out.to_path_buf()));
    if let Some(p) = &o.alerts
        && p.as_os_str() != "-"
    {
        outputs.push(("--alerts", p.clone()));
    }
    outputs.extend(extra.iter().cloned());
    crate::output::write::refuse_outputs_over_inputs(&outputs, &inputs)
}

impl DetectArgs {
    /// Where the outputs go: `--out`, else `latmove-out`.
    fn out_dir(&self) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from("latmove-out"))
    }

    /// Whether `train` was asked for a detection's outputs too.
    fn wants_outputs(&self) -> bool {
        let o = &self.output;
        self.out.is_some()
            || o.alerts.is_some()
            || o.report.is_some()
            || o.min_recall.is_some()
            || o.max_fpr.is_some()
    }
}

fn run_detect(a: DetectArgs) -> Result<ExitCode> {
    let mut cfg = detect_config(&a)?;
    check_outputs(&cfg, &a.out_dir(), &a.output, &[])?;
    let past = a.past.load(&cfg.features)?;
    if let Some(p) = &past {
        cfg.history = Some(std::sync::Arc::new(p.clone()));
        cfg.learn = detect::Learn::Unflagged;
    }
    let d = detect_any(&cfg, &a)?;
    let code = finish(&cfg, &d, &a.out_dir(), &a.output, String::new())?;
    learn_and_save(&a.past, past, &d)?;
    Ok(code)
}

/// A detection on the flows, or on `--features-table`.
fn detect_any(cfg: &DetectConfig, a: &DetectArgs) -> Result<Detection> {
    if a.features_table.is_empty() {
        return detect::detect(cfg);
    }
    check_table_options(a.output.report.is_some(), !a.train.is_empty())?;
    crate::table::score::detect_table(cfg, &cfg.tables)
}

/// What a feature table cannot do: a forensic report (it needs the
/// flows) and `--train` flow files.
fn check_table_options(report: bool, train: bool) -> Result<()> {
    anyhow::ensure!(
        !report,
        "--report needs the flows; a feature table has none (score the flows for a forensic report)"
    );
    anyhow::ensure!(
        !train,
        "--train takes flow files; with --features-table, train a model on a table with `latmove train --features-table`"
    );
    Ok(())
}

fn run_train(a: TrainArgs) -> Result<ExitCode> {
    if !a.detect.train.is_empty() {
        bail!("train: give the training files as inputs, not with --train");
    }
    let mut cfg = detect_config(&a.detect)?;
    if cfg.detector.kind == DetectorKind::Rules {
        bail!("train: the rule baseline (--detector rules) has no model to save");
    }
    check_outputs(
        &cfg,
        &a.detect.out_dir(),
        &a.detect.output,
        &[("-o", a.model_out.clone())],
    )?;
    let past = a.detect.past.load(&cfg.features)?;
    if past.is_some() {
        // A baseline: every window is learnt, none judged.
        cfg.learn = detect::Learn::All;
    }
    let d = detect_any(&cfg, &a.detect)?;
    let files = if a.detect.features_table.is_empty() {
        crate::flows::expand_inputs(&cfg.inputs)?
    } else {
        crate::table::read::table_files(&a.detect.features_table)?
    };
    let model = Model::new(
        d.fitted(),
        &cfg.profile,
        cfg.score_external,
        training_info(&d, &files)?,
    );
    crate::output::write::write_file(&a.model_out, &model.to_json()?)?;
    learn_and_save(&a.detect.past, past, &d)?;
    if a.detect.wants_outputs() {
        let note = format!("\nModel saved to {}.", a.model_out.display());
        return finish(&cfg, &d, &a.detect.out_dir(), &a.detect.output, note);
    }
    // Everything is written: a closed stdout loses only this line.
    let _ = writeln!(
        std::io::stdout().lock(),
        "trained on {} {} ({} rows from {} file(s)); threshold {:.4}; {} features; model saved to {}",
        d.training_hosts,
        d.training_set,
        d.stats.rows,
        files.len(),
        d.threshold,
        d.feature_names.len(),
        a.model_out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_score(a: ScoreArgs) -> Result<ExitCode> {
    check_fraction("--min-recall", a.output.min_recall)?;
    check_fraction("--max-fpr", a.output.max_fpr)?;
    check_threads(a.threads)?;
    check_alert_format(&a.output.alert_format)?;
    let model = Model::load(&a.model)?;
    let mut cfg = DetectConfig::for_model(a.inputs.clone(), &model)?;
    cfg.free_profiles = false;
    cfg.tables = a.features_table.clone();
    if let Some(t) = &a.truth {
        cfg.truth = Some(crate::profile::truth::Truth::from_file(t).context("--truth")?);
    }
    if let Some(f) = &a.allow {
        cfg.allow = crate::allow::Allowlist::from_file(f).context("--allow")?;
    }
    if a.threads > 0 {
        cfg.threads = a.threads;
    }
    a.peers.apply(&mut cfg)?;
    check_outputs(&cfg, &a.out, &a.output, &[])?;
    let past = a.past.load(&cfg.features)?;
    if let Some(p) = &past {
        anyhow::ensure!(
            a.features_table.is_empty(),
            "--history learns windows from flows; a feature table is scored without it"
        );
        cfg.history = Some(std::sync::Arc::new(p.clone()));
        cfg.learn = detect::Learn::Unflagged;
    }
    let d = if a.features_table.is_empty() {
        detect::detect(&cfg)?
    } else {
        check_table_options(a.output.report.is_some(), false)?;
        crate::table::score::score_table(&cfg, &cfg.tables)?
    };
    let note = format!("\nScored with model {}.", a.model.display());
    let code = finish(&cfg, &d, &a.out, &a.output, note)?;
    learn_and_save(&a.past, past, &d)?;
    Ok(code)
}

/// Where a model's training came from: the files (with SHA-256), rows,
/// hosts and parameters.
fn training_info(d: &Detection, files: &[PathBuf]) -> Result<TrainingInfo> {
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
    Ok(TrainingInfo {
        inputs,
        rows: d.stats.rows,
        flows: d.stats.flows,
        hosts: d.hosts.len(),
        training_hosts: d.training_hosts,
        training_set: d.training_set.to_string(),
        cross_fit_folds: d.folds,
        params: d.params.clone(),
        budget_per_host_day: d.per_host_day,
        peer_balance: d.peer_balance,
    })
}

/// Writes the outputs, alerts and report of a detection, prints the
/// summary, and applies the gates.
fn finish(
    cfg: &DetectConfig,
    d: &Detection,
    out_dir: &std::path::Path,
    o: &OutputArgs,
    note: String,
) -> Result<ExitCode> {
    let alerts = render_alerts(d, o.alerts.as_deref(), &o.alert_format)?;
    write_outputs(d, out_dir, !o.no_charts, o.raw_csv)?;
    let mut tail = format!("{note}\nOutputs in {}/\n", out_dir.display());
    if let Some(r) = &o.report {
        crate::output::forensics::write_report(
            cfg,
            d,
            r,
            &std::env::args().collect::<Vec<_>>(),
            o.raw_csv,
        )?;
        tail.push_str(&format!(
            "Forensic report in {}\n",
            r.join("index.md").display()
        ));
    }
    print_results(d, o.top, &tail, alerts, o.alerts.as_deref())?;
    gate(d, o.min_recall, o.max_fpr)
}

fn run_watch(a: WatchArgs) -> Result<ExitCode> {
    check_alert_format(&a.alert_format)?;
    let suppress = parse_period("--suppress", &a.suppress)?.map_or(0.0, f64::from);
    let cfg = crate::cli::watch::WatchConfig {
        model: Model::load(&a.model)?,
        input: a.input.clone(),
        follow: a.follow,
        suppress_secs: suppress,
        alert_format: a.alert_format.clone(),
        max_hosts: {
            anyhow::ensure!(
                (1..=100_000_000).contains(&a.max_hosts),
                "--max-hosts must be from 1 to 100000000, got {}",
                a.max_hosts
            );
            a.max_hosts
        },
        idle_close: parse_period("--idle-close", &a.idle_close)?
            .map(|s| std::time::Duration::from_secs(u64::from(s))),
        max_jump_secs: parse_period("--max-jump", &a.max_jump)?.map_or(f64::INFINITY, f64::from),
        allow: match &a.allow {
            Some(f) => crate::allow::Allowlist::from_file(f).context("--allow")?,
            None => crate::allow::Allowlist::default(),
        },
        history: None,
        roles: a.peers.roles()?,
        peer_groups: !a.peers.no_peer_groups,
        history_read_only: a.past.history_read_only,
    };
    let mut cfg = cfg;
    if let Some(past) = a.past.load(&cfg.model.feature_defs()?)? {
        let dir = a.past.history.clone().expect("loaded from it");
        cfg.history = Some((dir, past));
    }
    let (stats, read) = if a.alerts.as_os_str() == "-" {
        crate::cli::watch::watch(&cfg, std::io::stdout().lock())?
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&a.alerts)
            .with_context(|| format!("opening {}", a.alerts.display()))?;
        crate::cli::watch::watch(&cfg, std::io::LineWriter::new(file))?
    };
    report_watch(&stats, &read, &cfg.model);
    Ok(ExitCode::SUCCESS)
}

/// What `watch` did, on stderr once its input ends.
fn report_watch(
    stats: &crate::cli::watch::WatchStats,
    read: &crate::flows::ReadStats,
    model: &Model,
) {
    eprintln!(
        "latmove watch: {} flows ({} rows skipped as malformed or empty), {} windows closed, {} alerts, {} windows above the threshold in open incidents, {} late and {} untimed flows skipped",
        stats.flows,
        read.skipped_total(),
        stats.windows_closed,
        stats.alerts,
        stats.suppressed,
        stats.late_flows,
        stats.untimed_flows
    );
    let extra = [
        (
            stats.future_flows,
            "flows far ahead of the stream dropped (unconfirmed clock jumps)",
        ),
        (stats.clock_jumps, "confirmed clock jumps"),
        (
            stats.overflow_flows,
            "flows of hosts past --max-hosts in a window dropped",
        ),
        (
            stats.admin_forgotten,
            "hosts' admin-peer history forgotten past --max-hosts",
        ),
        (
            stats.traffic_forgotten,
            "hosts' traffic counts (their roles) forgotten past --max-hosts",
        ),
        (
            stats.history_forgot.expired as u64,
            "hosts' own past forgotten, last seen over the retention period before the newest window",
        ),
        (
            stats.history_forgot.evicted as u64,
            "hosts' own past forgotten past --history-max-hosts",
        ),
        (stats.idle_closes, "windows closed by --idle-close"),
        (
            stats.incidents_closed,
            "incidents closed after a quiet period",
        ),
        (stats.summaries, "daily summaries of open incidents"),
        (
            stats.incidents_over_cap,
            "windows above the threshold of hosts past --max-hosts open incidents",
        ),
    ];
    for (n, what) in extra {
        if n > 0 {
            eprintln!("  {n} {what}");
        }
    }
    if stats.host_days > 0 {
        eprintln!(
            "  host-days alerted: {} of {}{} ({:.2}%); the model's threshold leaves {} of its training {} above it",
            stats.alerted_host_days,
            if stats.host_days_capped {
                "at least "
            } else {
                ""
            },
            stats.host_days,
            100.0 * stats.alerted_host_days as f64 / stats.host_days as f64,
            match model.training.params.contamination {
                crate::model::forest::Contamination::Fraction(c) => format!("{:.2}%", 100.0 * c),
                crate::model::forest::Contamination::Auto => "those scoring above 0.5".to_string(),
            },
            if model.training.budget_per_host_day {
                "host-days"
            } else {
                "hosts"
            }
        );
    }
    for p in &read.problems {
        eprintln!("  e.g. {p}");
    }
}

/// Renders the alerts (`None` without `--alerts`).
fn render_alerts(
    d: &Detection,
    target: Option<&std::path::Path>,
    format: &str,
) -> Result<Option<Vec<u8>>> {
    let bytes = match format {
        "ecs" => crate::output::alerts::ecs_ndjson(d),
        "cef" => crate::output::alerts::cef_lines(d),
        other => bail!("--alert-format must be 'ecs' or 'cef', got '{other}'"),
    };
    Ok(target.map(|_| bytes))
}

/// Prints the summary and writes the alerts: to a file (atomically), or to
/// stdout with the summary moved to stderr.
fn print_results(
    d: &Detection,
    top: usize,
    tail: &str,
    alerts: Option<Vec<u8>>,
    target: Option<&std::path::Path>,
) -> Result<()> {
    let text = report::summary(d, top) + tail;
    match (alerts, target) {
        (Some(bytes), Some(p)) if p.as_os_str() == "-" => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes).context("writing alerts to stdout")?;
            out.flush()?;
            eprint!("{text}");
        }
        (Some(bytes), Some(p)) => {
            crate::output::write::write_file(p, &bytes)?;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = writeln!(out, "Alerts ({}) in {}", d.flagged().count(), p.display());
        }
        _ => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

/// The files `write_outputs` writes (and removes when a run does not).
fn is_output_name(name: &str) -> bool {
    matches!(
        name,
        "host_scores.csv"
            | "flagged_hosts.csv"
            | "metrics.json"
            | "score_distribution.png"
            | "fanout.png"
            | "flagged_features.png"
    )
}

/// Writes every output file into `dir`, as one set.
pub fn write_outputs(
    d: &Detection,
    dir: &std::path::Path,
    charts: bool,
    raw_csv: bool,
) -> Result<()> {
    let staged = crate::output::write::Staged::begin(dir, "--out")?;
    let dir = staged.path();
    // The CSVs rendered while the charts are drawn; everything goes to the
    // staging directory and is moved into place only when all is written.
    let (scores, others, drawn) = std::thread::scope(|s| {
        let drawn = spawn_or_run(s, || {
            if charts {
                crate::output::charts::draw_all(d, dir).map(drop)
            } else {
                Ok(())
            }
        });
        let others = spawn_or_run(s, || -> Result<(Vec<u8>, Vec<u8>)> {
            Ok((
                report::flagged_hosts_csv(d, raw_csv)?,
                report::metrics_json(d)?,
            ))
        });
        let scores = report::host_scores_csv(d, raw_csv);
        (scores, others.join(), drawn.join())
    });
    let (scores, (flagged, metrics)) = (scores?, others?);
    // The three files written (and synced) side by side; the first error
    // in this order is reported.
    let files = [
        ("host_scores.csv", &scores),
        ("flagged_hosts.csv", &flagged),
        ("metrics.json", &metrics),
    ];
    std::thread::scope(|s| {
        let writes: Vec<_> = files
            .iter()
            .map(|(name, bytes)| {
                spawn_or_run(s, move || {
                    crate::output::write::write_file(&dir.join(name), bytes)
                })
            })
            .collect();
        writes.into_iter().try_for_each(|w| w.join())
    })?;
    drawn?;
    staged.commit(is_output_name)
}

fn gate(d: &Detection, min_recall: Option<f64>, max_fpr: Option<f64>) -> Result<ExitCode> {
    if min_recall.is_none() && max_fpr.is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    let Some(m) = &d.metrics else {
        bail!("--min-recall / --max-fpr need a Label column in the input to measure against");
    };
    let mut failures = Vec::new();
    if let Some(r) = min_recall {
        let got = m.recall.unwrap_or(0.0);
        if got < r {
            failures.push(format!("recall {got:.4} is below --min-recall {r}"));
        }
    }
    if let Some(f) = max_fpr {
        let got = m.false_positive_rate.unwrap_or(0.0);
        if got > f {
            failures.push(format!(
                "false-positive rate {got:.4} is above --max-fpr {f}"
            ));
        }
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("latmove: gate failed: {}", failures.join("; "));
        Ok(ExitCode::from(3))
    }
}

/// A table's path: `out` itself, or `part-00000.<ext>` in it when it names
/// a directory (an existing one, or a path ending in `/`), as engines
/// write a table's parts.
fn table_path(out: &Path, ext: &str) -> Result<PathBuf> {
    let dir_like = out.is_dir() || out.as_os_str().to_string_lossy().ends_with('/');
    if !dir_like {
        return Ok(out.to_path_buf());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    Ok(out.join(format!("part-00000.{ext}")))
}

impl TableArgs {
    /// The options checked, the output path settled (see [`table_path`]),
    /// refused over an input: the profiling options and the threads.
    fn prepare(&mut self) -> Result<(crate::profile::ProfileOptions, usize)> {
        self.output = table_path(&self.output, "parquet")?;
        check_threads(self.threads)?;
        let (mut options, allow) = profile_options(&self.profile)?;
        options.allow = allow;
        let inputs = crate::flows::expand_inputs(&self.inputs)?;
        crate::output::write::refuse_outputs_over_inputs(&[("-o", self.output.clone())], &inputs)?;
        Ok((options, threads_or_all(self.threads)))
    }
}

fn run_flows(mut a: FlowsArgs) -> Result<ExitCode> {
    let (options, threads) = a.table.prepare()?;
    let t = &a.table;
    let s = crate::table::write_flow_table(&t.inputs, &options, threads, &t.output)?;
    println!(
        "wrote {} ({} flows from {} rows; {} skipped; {} dropped by --allow)",
        t.output.display(),
        s.rows,
        s.stats.rows,
        s.stats.skipped_total(),
        s.allowed
    );
    for p in s.stats.problems.iter().take(10) {
        println!("  e.g. {p}");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_features(mut a: FeaturesArgs) -> Result<ExitCode> {
    let defs = crate::profile::features::feature_set(&a.features).ok_or_else(|| {
        anyhow::anyhow!("--features must be 'full' or 'seed', got '{}'", a.features)
    })?;
    let truth = match &a.truth {
        Some(t) => Some(crate::profile::truth::Truth::from_file(t).context("--truth")?),
        None => None,
    };
    let (options, threads) = a.table.prepare()?;
    let t = &a.table;
    let (mut profiles, stats) =
        crate::profile::read::read_profiles_threads(&t.inputs, &options, threads)?;
    if let Some(truth) = &truth {
        truth.apply(&mut profiles);
    }
    let rows = crate::table::write_feature_table(&profiles, defs, threads, &t.output)?;
    println!(
        "wrote {} ({} rows: {} hosts; {} flows from {} rows, {} skipped)",
        t.output.display(),
        rows,
        profiles.hosts.len(),
        stats.flows,
        stats.rows,
        stats.skipped_total()
    );
    for p in stats.problems.iter().take(10) {
        println!("  e.g. {p}");
    }
    std::mem::forget(profiles);
    Ok(ExitCode::SUCCESS)
}

fn run_sql(a: SqlArgs) -> Result<ExitCode> {
    let text = crate::table::features_sql(&a.dialect)?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `--threads`' value: 0 is every core.
fn threads_or_all(n: usize) -> usize {
    if n == 0 {
        crate::util::threads::default_threads()
    } else {
        n
    }
}

/// `synth --days N`: a run of days into the directory `-o` names.
fn synth_days(a: &SynthArgs, cfg: SynthConfig, days: usize) -> Result<ExitCode> {
    anyhow::ensure!(
        (2..=synth::MAX_DAYS).contains(&days),
        "--days must be from 2 to {}, got {days}",
        synth::MAX_DAYS
    );
    anyhow::ensure!(
        (1..=days).contains(&a.attack_day),
        "--attack-day must be from 1 to --days ({days}), got {}",
        a.attack_day
    );
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("creating the directory {}", a.output.display()))?;
    for index in 0..days {
        let day = SynthConfig {
            run: Some(synth::RunDay {
                index,
                attack: Some(a.attack_day - 1),
            }),
            ..cfg.clone()
        };
        let path = a.output.join(format!("day-{:02}.csv.gz", index + 1));
        let summary = crate::output::write::write_with(&path, |w| {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            let s = synth::write_day(&day, &mut enc)?;
            enc.finish()?;
            Ok(s)
        })?;
        let attacks: usize = summary
            .per_label
            .iter()
            .filter(|(l, _)| l != "BENIGN")
            .map(|(_, n)| n)
            .sum();
        println!(
            "wrote {} ({} rows{})",
            path.display(),
            summary.rows,
            if attacks > 0 {
                format!(", {attacks} of them attacks")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_synth(a: SynthArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        (200..=MAX_SYNTH_ROWS).contains(&a.rows),
        "--rows must be from 200 to {MAX_SYNTH_ROWS}, got {}",
        a.rows
    );
    let cfg = SynthConfig {
        rows: a.rows,
        seed: a.seed,
        scenario: match a.scenario.as_str() {
            "standard" => synth::Scenario::Standard,
            "hard" => synth::Scenario::Hard,
            other => bail!("--scenario must be 'standard' or 'hard', got '{other}'"),
        },
        benign_only: a.benign_only,
        run: None,
        workstations: {
            anyhow::ensure!(
                (10..=synth::MAX_WORKSTATIONS).contains(&a.workstations),
                "--workstations must be from 10 to {}, got {}",
                synth::MAX_WORKSTATIONS,
                a.workstations
            );
            a.workstations
        },
    };
    if let Some(days) = a.days {
        return synth_days(&a, cfg, days);
    }
    let gz = a
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let summary = crate::output::write::write_with(&a.output, |w| {
        if gz {
            let mut enc = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            let s = synth::write_day(&cfg, &mut enc)?;
            enc.finish()?;
            Ok(s)
        } else {
            Ok(synth::write_day(&cfg, w)?)
        }
    })?;
    println!(
        "wrote {} ({} rows, {} of them empty trap rows; seed {})",
        a.output.display(),
        summary.rows,
        summary.empty_rows,
        a.seed
    );
    for (label, n) in &summary.per_label {
        println!("  {label:<12} {n:>8}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
