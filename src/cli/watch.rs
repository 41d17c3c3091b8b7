//! `latmove watch`: continuous scoring of a flow stream with a saved model.
//!
//! Flows are read as they arrive (stdin, or a file that keeps growing with
//! `--follow`), kept per host for the current time window only (by flow
//! timestamp, the model's window length), and when a flow of a later window
//! arrives the window closes: its hosts are scored with the model and the
//! alerts go out at once. End of input (or a signal with `--follow`) closes
//! the last window; with `--idle-close`, so does a quiet spell on the wall
//! clock.
//!
//! What it keeps is bounded by what is open: the open window's hosts (at
//! most `--max-hosts`; flows of further new hosts are counted as overflow),
//! the admin peers each host has reached so far (for
//! `admin_peers_to_date`; hosts without any keep nothing, and past
//! `--max-hosts` the least recently active are forgotten, counted), and
//! the open incidents (one small record per host, at most `--max-hosts`).
//!
//! One flow cannot move the clock: a flow more than `--max-jump` ahead of
//! the open window is held back, and only when enough of them agree (a real
//! gap, such as a quiet night) does the clock jump and are they replayed;
//! otherwise they are counted as future flows and dropped. Flows older than
//! the open window are counted as late. Malformed lines are counted and
//! skipped.
//!
//! Incidents, not a stream of windows: a host's first window above the
//! threshold opens an incident (one alert, with a stable incident id); later
//! windows above it update the same incident, and raise an alert only when
//! it escalates: a behaviour family not seen in it before (scanning ports,
//! reaching hosts, failures, repetition, admin peers ...) at a score as
//! high as its highest, or a score 0.05 higher than its highest. After `--suppress` (flow time) without a window
//! above the threshold the incident closes (a closing record); an incident
//! still open when a new day starts gets a daily summary record.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::detect::{DetectConfig, detect_with_training};
use crate::flows::{Flow, ReadStats};
use crate::model::file::Model;
use crate::output::write::stop_requested;
use crate::profile::ProfileBuilder;

/// Far-ahead flows that must agree before the clock jumps to them.
const CONFIRM_JUMP: usize = 64;

/// What `watch` does.
pub(super) struct WatchConfig {
    pub model: Model,
    /// `-` for stdin.
    pub input: PathBuf,
    pub follow: bool,
    pub suppress_secs: f64,
    pub alert_format: String,
    pub allow: crate::allow::Allowlist,
    /// Hosts profiled in one window, and hosts whose admin peers are kept.
    pub max_hosts: usize,
    /// Close the open window after this long without a flow (wall clock).
    pub idle_close: Option<Duration>,
    /// How far ahead of the open window a flow may be without being held
    /// back (seconds).
    pub max_jump_secs: f64,
    /// Each host's past and where it is kept (`--history`): judged against
    /// and learnt window by window, saved every `HISTORY_SAVE_EVERY`
    /// windows and at the end.
    pub history: Option<(PathBuf, crate::history::History)>,
    /// Roles named by `--roles`.
    pub roles: crate::peers::Roles,
    /// Peer groups on (and the model has them).
    pub peer_groups: bool,
    /// Learn into the history in memory only: its file is left as it is.
    pub history_read_only: bool,
}

/// Windows between two saves of the history.
const HISTORY_SAVE_EVERY: u64 = 96;

/// Counters reported at the end (and on the status line).
#[derive(Debug, Default, Clone)]
pub(super) struct WatchStats {
    pub windows_closed: u64,
    pub flows: u64,
    pub late_flows: u64,
    pub untimed_flows: u64,
    pub alerts: u64,
    pub suppressed: u64,
    /// Flows of new hosts past `--max-hosts` in a window.
    pub overflow_flows: u64,
    /// Flows far ahead of the stream that no others confirmed.
    pub future_flows: u64,
    /// Times the clock jumped ahead, confirmed.
    pub clock_jumps: u64,
    /// Windows closed by `--idle-close`.
    pub idle_closes: u64,
    /// Hosts whose admin peers were forgotten to stay within the bound.
    pub admin_forgotten: u64,
    /// Hosts whose traffic counts (their role) were forgotten to stay
    /// within the bound.
    pub traffic_forgotten: u64,
    /// Hosts the history (`--history`) forgot.
    pub history_forgot: crate::history::Forgot,
    /// Incidents closed after a quiet period, and daily summaries written.
    pub incidents_closed: u64,
    pub summaries: u64,
    /// Hosts above the threshold not given an incident: `--max-hosts`
    /// incidents were open.
    pub incidents_over_cap: u64,
    /// Host-days seen (a host with a flow in a day's windows), and those
    /// with an alert: the feed's false-alarm rate per host and day, beside
    /// the model's budget. `host_days_capped` when a day had more hosts
    /// than could be counted one by one (then a lower bound).
    pub host_days: u64,
    pub alerted_host_days: u64,
    pub host_days_capped: bool,
}

/// A flow held back: its fields, owned.
struct HeldFlow {
    numbers: [Option<f64>; 7],
    ends: (IpAddr, Option<u16>, IpAddr, u16),
    protocol: Option<u8>,
    label: Option<Vec<u8>>,
    flow_id: Option<Vec<u8>>,
    meta: crate::flows::FlowMeta,
}

impl HeldFlow {
    fn of(f: &Flow<'_>) -> HeldFlow {
        HeldFlow {
            numbers: [
                f.timestamp,
                f.duration_us,
                f.fwd_packets,
                f.bwd_packets,
                f.fwd_bytes,
                f.bwd_bytes,
                f.rst_flags,
            ],
            ends: (f.src_ip, f.src_port, f.dst_ip, f.dst_port),
            protocol: f.protocol,
            label: f.label.map(<[u8]>::to_vec),
            flow_id: f.flow_id.map(<[u8]>::to_vec),
            meta: f.meta,
        }
    }

    fn flow(&self) -> Flow<'_> {
        let [
            timestamp,
            duration_us,
            fwd_packets,
            bwd_packets,
            fwd_bytes,
            bwd_bytes,
            rst_flags,
        ] = self.numbers;
        Flow {
            src_ip: self.ends.0,
            src_port: self.ends.1,
            dst_ip: self.ends.2,
            dst_port: self.ends.3,
            protocol: self.protocol,
            timestamp,
            duration_us,
            fwd_packets,
            bwd_packets,
            fwd_bytes,
            bwd_bytes,
            rst_flags,
            label: self.label.as_deref(),
            flow_id: self.flow_id.as_deref(),
            meta: self.meta,
        }
    }
}

/// Every host's admin peers so far (see `admin_peers_to_date`), the one
/// state that outlives a window: only hosts that have any, at most `cap`
/// of them (the least recently active forgotten first).
struct AdminHistory {
    hosts: HashMap<IpAddr, (HashSet<IpAddr>, i64)>,
    cap: usize,
}

impl AdminHistory {
    /// Adds `peers` reached by `ip` in `window`; the count to date.
    fn update(&mut self, ip: IpAddr, peers: &[IpAddr], window: i64) -> usize {
        if peers.is_empty() {
            return self.hosts.get(&ip).map_or(0, |(seen, _)| seen.len());
        }
        let (seen, last) = self.hosts.entry(ip).or_default();
        seen.extend(peers.iter().copied());
        *last = window;
        seen.len()
    }

    /// Keeps within the cap; how many hosts were forgotten.
    fn bound(&mut self) -> u64 {
        forget_oldest(&mut self.hosts, self.cap, |(_, last)| *last)
    }
}

/// Forgets the least recently active hosts (`last`: a host's last window)
/// past `cap`, down to 90% of it so this runs rarely; how many.
fn forget_oldest<V>(hosts: &mut HashMap<IpAddr, V>, cap: usize, last: impl Fn(&V) -> i64) -> u64 {
    if hosts.len() <= cap {
        return 0;
    }
    let mut by_age: Vec<(i64, IpAddr)> = hosts.iter().map(|(ip, v)| (last(v), *ip)).collect();
    by_age.sort_unstable();
    let excess = hosts.len() - cap * 9 / 10;
    for (_, ip) in &by_age[..excess] {
        hosts.remove(ip);
    }
    excess as u64
}

/// The flows each host started and received since `watch` started, so its
/// role (a server receives more than it starts) does not change with a
/// quiet window; at most `cap` hosts (the least recently active forgotten
/// first).
struct TrafficHistory {
    hosts: HashMap<IpAddr, (u64, u64, i64)>,
    cap: usize,
}

impl TrafficHistory {
    /// Adds a window's started (`sources`) and received (`inbound`) flows,
    /// then keeps within the cap; how many hosts were forgotten.
    fn update(
        &mut self,
        sources: impl Iterator<Item = (IpAddr, u64)>,
        inbound: Vec<(IpAddr, u64)>,
        window: i64,
    ) -> u64 {
        let started = sources.map(|(ip, n)| (ip, (n, 0)));
        let received = inbound.into_iter().map(|(ip, n)| (ip, (0, n)));
        for (ip, (out, back)) in started.chain(received) {
            let e = self.hosts.entry(ip).or_default();
            e.0 += out;
            e.1 += back;
            e.2 = window;
        }
        forget_oldest(&mut self.hosts, self.cap, |e| e.2)
    }

    /// The (started, received) of `ips`, for their roles.
    fn counts(
        &self,
        ips: impl Iterator<Item = IpAddr>,
    ) -> rustc_hash::FxHashMap<IpAddr, (u64, u64)> {
        ips.filter_map(|ip| self.hosts.get(&ip).map(|e| (ip, (e.0, e.1))))
            .collect()
    }
}

struct State<'a, W: Write> {
    cfg: &'a WatchConfig,
    detect: DetectConfig,
    window_secs: f64,
    current: Option<i64>,
    /// Windows up to this one are closed (a later flow of them is late).
    closed_through: Option<i64>,
    builder: ProfileBuilder,
    incidents: HashMap<IpAddr, Incident>,
    /// The day being counted, its hosts seen and alerted.
    day: Option<i64>,
    day_hosts: HashSet<IpAddr>,
    day_alerted: HashSet<IpAddr>,
    admin: AdminHistory,
    traffic: TrafficHistory,
    /// Flows far ahead, waiting for others to confirm the jump.
    held: Vec<HeldFlow>,
    out: W,
    stats: WatchStats,
    error: Option<anyhow::Error>,
    status: bool,
}

impl<W: Write> State<'_, W> {
    fn add(&mut self, f: &Flow<'_>) {
        if self.error.is_some() {
            return;
        }
        self.stats.flows += 1;
        self.add_timed(f);
    }

    fn add_timed(&mut self, f: &Flow<'_>) {
        let Some(t) = f.timestamp else {
            self.stats.untimed_flows += 1;
            return;
        };
        let w = (t / self.window_secs).floor() as i64;
        if self.closed_through.is_some_and(|c| w <= c) {
            self.stats.late_flows += 1;
            return;
        }
        let jump = (self.cfg.max_jump_secs / self.window_secs).ceil() as i64;
        let ahead = self
            .current
            .is_some_and(|c| w > c.saturating_add(jump.max(1)));
        if !ahead && !self.held.is_empty() && self.current.is_none_or(|c| w >= c) {
            // Far-ahead flows must come one after the other to move the
            // clock: an ordinary flow between them voids them.
            self.drop_held();
        }
        match self.current {
            None => self.current = Some(w),
            Some(c) if w < c => {
                self.stats.late_flows += 1;
                return;
            }
            Some(_) if ahead => {
                self.hold(f);
                return;
            }
            Some(c) if w > c => {
                if let Err(e) = self.close() {
                    self.error = Some(e);
                    return;
                }
                self.current = Some(w);
            }
            _ => {}
        }
        if !self.builder.add_bounded(f, self.cfg.max_hosts) {
            self.stats.overflow_flows += 1;
        }
    }

    /// Holds back a flow far ahead; when enough agree, the clock jumps to
    /// the first of them and they are replayed.
    fn hold(&mut self, f: &Flow<'_>) {
        self.held.push(HeldFlow::of(f));
        if self.held.len() < CONFIRM_JUMP {
            return;
        }
        self.stats.clock_jumps += 1;
        if let Err(e) = self.close() {
            self.error = Some(e);
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.current = None;
        for h in &held {
            self.add_timed(&h.flow());
        }
    }

    /// Far-ahead flows that no others confirmed: counted and dropped.
    fn drop_held(&mut self) {
        self.stats.future_flows += self.held.len() as u64;
        self.held.clear();
    }

    /// The wall clock says the stream has been quiet: closes the open
    /// window now.
    fn idle(&mut self) {
        if self.error.is_some() || self.current.is_none() {
            return;
        }
        self.stats.idle_closes += 1;
        if let Err(e) = self.close() {
            self.error = Some(e);
        }
    }

    /// Scores the open window and emits its alerts.
    fn close(&mut self) -> Result<()> {
        let Some(w) = self.current.take() else {
            return Ok(());
        };
        self.closed_through = Some(w);
        let mut options = self.detect.profile.clone();
        options.allow = self.cfg.allow.clone();
        let builder = std::mem::replace(&mut self.builder, ProfileBuilder::with_options(options));
        let inbound = builder.inbound_counts();
        let mut profiles = builder.finish();
        if self.detect.peer_groups {
            self.stats.traffic_forgotten +=
                self.traffic
                    .update(profiles.hosts.iter().map(|h| (h.ip, h.flows)), inbound, w);
            self.detect.role_traffic = Some(std::sync::Arc::new(
                self.traffic.counts(profiles.hosts.iter().map(|h| h.ip)),
            ));
        }
        if !self.detect.score_external {
            profiles.hosts.retain(|h| h.internal);
        }
        let judged = self.detect.history.is_some();
        for h in &mut profiles.hosts {
            let peers: Vec<IpAddr> = h.admin_peers.iter().copied().collect();
            h.admin_peers_to_date = Some(self.admin.update(h.ip, &peers, w));
            if judged {
                // The history judges every admin peer reached so far.
                if let Some((seen, _)) = self.admin.hosts.get(&h.ip) {
                    for p in seen {
                        h.admin_peers.insert(*p);
                    }
                }
            }
        }
        self.stats.admin_forgotten += self.admin.bound();
        self.stats.windows_closed += 1;
        let start = w as f64 * self.window_secs;
        let end = start + self.window_secs;
        self.count_day(start, profiles.hosts.iter().map(|h| h.ip));
        if profiles.hosts.is_empty() {
            return self.close_quiet(start, end);
        }
        self.detect.run_window_start = Some(start);
        let mut d = detect_with_training(&self.detect, profiles, None, ReadStats::default())?;
        if let Some(past) = self.detect.history.as_mut() {
            let learnt = std::sync::Arc::make_mut(past).learn(&d.observations);
            self.stats.history_forgot.add(learnt.forgot);
            if self.stats.windows_closed.is_multiple_of(HISTORY_SAVE_EVERY) {
                self.save_history()?;
            }
        }
        d.window_secs = Some(self.window_secs as u32);
        for h in &mut d.hosts {
            h.peak_window_start = Some(start);
            h.first_flagged_window = h.flagged.then_some(start);
        }
        self.alert(&d, start, end)?;
        self.close_quiet(start, end)?;
        if self.status {
            let s = &self.stats;
            eprint!(
                "\rlatmove watch: {} flows, {} windows closed, {} alerts ({} suppressed), {} late   ",
                s.flows, s.windows_closed, s.alerts, s.suppressed, s.late_flows
            );
        }
        Ok(())
    }

    /// Opens, updates or escalates the incidents of a scored window
    /// (`start` to `end`) and writes the alerts that raises.
    fn alert(&mut self, d: &crate::detect::Detection, start: f64, end: f64) -> Result<()> {
        let defs = self.detect.features.clone();
        for h in d.flagged() {
            let families: Vec<&'static str> = crate::output::report::top_reasons(h)
                .into_iter()
                .take(3)
                .map(|j| defs.get(j).map_or("", |f| f.family))
                .collect();
            let action = match self.incidents.get_mut(&h.ip) {
                None => {
                    if self.incidents.len() >= self.cfg.max_hosts {
                        self.stats.incidents_over_cap += 1;
                        continue;
                    }
                    let mut inc = Incident::open(h.ip, start, end, h.score);
                    inc.families = families;
                    inc.families.sort_unstable();
                    inc.families.dedup();
                    self.incidents.insert(h.ip, inc);
                    IncidentAction::Opened
                }
                Some(inc) => {
                    inc.last_above = end;
                    inc.windows += 1;
                    // A new family at the incident's highest score so far
                    // or above; or a clearly higher score.
                    let new_family =
                        families.iter().any(|f| !inc.families.contains(f)) && h.score >= inc.score;
                    let higher = h.score >= inc.score + ESCALATE_BY;
                    for f in families {
                        if !inc.families.contains(&f) {
                            inc.families.push(f);
                        }
                    }
                    if !(new_family || higher) {
                        inc.score = inc.score.max(h.score);
                        self.stats.suppressed += 1;
                        continue;
                    }
                    inc.score = inc.score.max(h.score);
                    IncidentAction::Escalated
                }
            };
            let inc = self.incidents.get_mut(&h.ip).expect("opened above");
            inc.alerts += 1;
            let view = inc.view(action);
            let line = match self.cfg.alert_format.as_str() {
                "cef" => crate::output::alerts::cef_incident_line(d, h, &view),
                _ => {
                    let mut v =
                        serde_json::to_vec(&crate::output::alerts::ecs_incident(d, h, &view))?;
                    v.push(b'\n');
                    v
                }
            };
            self.write(&line)?;
            self.stats.alerts += 1;
            self.day_alerted.insert(h.ip);
        }
        Ok(())
    }

    /// Counts the hosts of a window starting at `start` into its day's
    /// host-days (a new day closes the last one's count).
    fn count_day(&mut self, start: f64, hosts: impl Iterator<Item = IpAddr>) {
        let day = (start / 86_400.0).floor() as i64;
        if self.day != Some(day) {
            self.end_day();
            self.day = Some(day);
        }
        // At most a few windows' worth of hosts a day are told apart.
        let cap = self.cfg.max_hosts.saturating_mul(4);
        for ip in hosts {
            if self.day_hosts.len() < cap {
                self.day_hosts.insert(ip);
            } else if !self.day_hosts.contains(&ip) {
                self.stats.host_days_capped = true;
            }
        }
    }

    /// Adds the day being counted to the host-day totals.
    fn end_day(&mut self) {
        self.stats.host_days += self.day_hosts.len() as u64;
        self.stats.alerted_host_days += self.day_alerted.len() as u64;
        self.day_hosts.clear();
        self.day_alerted.clear();
    }

    /// Closes the incidents quiet for `--suppress` by `end`, and writes a
    /// daily summary of each one still open when a window of a new day
    /// (starting at `start`) closes.
    fn close_quiet(&mut self, start: f64, end: f64) -> Result<()> {
        let quiet = self.cfg.suppress_secs;
        let mut closed: Vec<IpAddr> = self
            .incidents
            .iter()
            .filter(|(_, inc)| end - inc.last_above >= quiet)
            .map(|(ip, _)| *ip)
            .collect();
        closed.sort_unstable();
        let day = (start / 86_400.0).floor() as i64;
        let mut open: Vec<IpAddr> = self
            .incidents
            .iter()
            .filter(|(ip, inc)| !closed.contains(ip) && inc.summary_day < day)
            .map(|(ip, _)| *ip)
            .collect();
        open.sort_unstable();
        for ip in closed {
            let inc = self.incidents.remove(&ip).expect("listed above");
            let line = crate::output::alerts::incident_notice(
                &inc.view(IncidentAction::Closed),
                end,
                &self.cfg.alert_format,
            );
            self.write(&line)?;
            self.stats.incidents_closed += 1;
        }
        for ip in open {
            let inc = self.incidents.get_mut(&ip).expect("listed above");
            inc.summary_day = day;
            let line = crate::output::alerts::incident_notice(
                &inc.view(IncidentAction::Summary),
                start,
                &self.cfg.alert_format,
            );
            self.write(&line)?;
            self.stats.summaries += 1;
        }
        Ok(())
    }

    /// Writes the history as it stands (with `--history`).
    fn save_history(&self) -> Result<()> {
        if self.cfg.history_read_only {
            return Ok(());
        }
        if let (Some((dir, _)), Some(past)) = (&self.cfg.history, &self.detect.history) {
            past.save(dir)?;
        }
        Ok(())
    }

    fn write(&mut self, line: &[u8]) -> Result<()> {
        self.out.write_all(line).context("writing an alert")?;
        self.out.flush().context("writing an alert")
    }
}

/// A score this much above an incident's highest escalates it.
const ESCALATE_BY: f64 = 0.05;

/// What an incident record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncidentAction {
    /// The host's first window above the threshold.
    Opened,
    /// A new behaviour family, or a clearly higher score.
    Escalated,
    /// Quiet for `--suppress`.
    Closed,
    /// Still open when a new day began.
    Summary,
}

impl IncidentAction {
    /// The word in the records.
    pub(crate) fn word(self) -> &'static str {
        match self {
            IncidentAction::Opened => "opened",
            IncidentAction::Escalated => "escalated",
            IncidentAction::Closed => "closed",
            IncidentAction::Summary => "open",
        }
    }
}

/// One host's open incident.
struct Incident {
    ip: IpAddr,
    id: String,
    /// Start of the first window above the threshold.
    opened: f64,
    /// End of the last window above it.
    last_above: f64,
    /// The highest score so far.
    score: f64,
    /// Behaviour families its windows showed.
    families: Vec<&'static str>,
    /// Windows above the threshold, and records raised as alerts.
    windows: u64,
    alerts: u64,
    /// The last day a summary was written for (the opening day at first).
    summary_day: i64,
}

impl Incident {
    fn open(ip: IpAddr, start: f64, end: f64, score: f64) -> Incident {
        // Stable: the same stream gives the same ids.
        let mut key = ip.to_string();
        key.push_str(&format!("@{}", start as i64));
        let digest = crate::model::file::sha256_hex(key.as_bytes());
        Incident {
            ip,
            id: format!("latmove-{}", &digest[..16]),
            opened: start,
            last_above: end,
            score,
            families: Vec::new(),
            windows: 1,
            alerts: 0,
            summary_day: (start / 86_400.0).floor() as i64,
        }
    }

    fn view(&self, action: IncidentAction) -> IncidentView {
        IncidentView {
            ip: self.ip,
            id: self.id.clone(),
            action,
            opened: self.opened,
            last_above: self.last_above,
            score: self.score,
            families: self.families.iter().map(|f| f.to_string()).collect(),
            windows: self.windows,
            alerts: self.alerts,
        }
    }
}

/// An incident as its records show it.
pub(crate) struct IncidentView {
    pub ip: IpAddr,
    pub id: String,
    pub action: IncidentAction,
    pub opened: f64,
    pub last_above: f64,
    pub score: f64,
    pub families: Vec<String>,
    pub windows: u64,
    pub alerts: u64,
}

/// A file read like `tail -F`: at its end, waits for more; when the file
/// is truncated, reads it again from its start; when it is replaced (a
/// rotation), reads the new file from its start; until a signal asks
/// latmove to stop.
struct Follow {
    path: PathBuf,
    file: File,
    pos: u64,
    /// The last bytes read (up to 64, ending at `pos`): if the file no
    /// longer holds them there, it was truncated and written again.
    tail: Vec<u8>,
}

impl Follow {
    fn open(path: &Path) -> std::io::Result<Follow> {
        Ok(Follow {
            path: path.to_path_buf(),
            file: File::open(path)?,
            pos: 0,
            tail: Vec::new(),
        })
    }

    /// Whether the bytes before `pos` are no longer the ones read (the
    /// file was truncated and rewritten past `pos` between two looks).
    #[cfg(unix)]
    fn rewritten(&self) -> bool {
        use std::os::unix::fs::FileExt;
        let mut now = vec![0; self.tail.len()];
        let at = self.pos - self.tail.len() as u64;
        self.file
            .read_exact_at(&mut now, at)
            .map_or(true, |()| now != self.tail)
    }

    #[cfg(not(unix))]
    fn rewritten(&self) -> bool {
        false
    }

    /// Starts again at the file's beginning, saying why.
    fn restart(&mut self, why: &str) -> std::io::Result<()> {
        eprintln!(
            "latmove watch: {} {why}; reading it again from its start",
            self.path.display()
        );
        self.file.seek(SeekFrom::Start(0))?;
        self.pos = 0;
        self.tail.clear();
        Ok(())
    }

    /// Whether the path now names another file than the one open.
    #[cfg(unix)]
    fn replaced(&self, now: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .is_ok_and(|open| open.ino() != now.ino() || open.dev() != now.dev())
    }

    #[cfg(not(unix))]
    fn replaced(&self, _: &std::fs::Metadata) -> bool {
        false
    }
}

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                self.pos += n as u64;
                let keep = n.min(64);
                let drop = (self.tail.len() + keep).saturating_sub(64);
                self.tail.drain(..drop);
                self.tail.extend_from_slice(&buf[n - keep..n]);
                return Ok(n);
            }
            if stop_requested() {
                return Ok(0);
            }
            // After a pause, before reading on: was it replaced, cut, or
            // cut and written again meanwhile?
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(now) = std::fs::metadata(&self.path) {
                if self.replaced(&now) {
                    eprintln!(
                        "latmove watch: {} was replaced (rotated); reading the new file from its start",
                        self.path.display()
                    );
                    self.file = File::open(&self.path)?;
                    self.pos = 0;
                    self.tail.clear();
                    continue;
                }
                if now.len() < self.pos {
                    self.restart("was truncated")?;
                    continue;
                }
                if !self.tail.is_empty() && self.rewritten() {
                    self.restart("was truncated and written again")?;
                    continue;
                }
            }
        }
    }
}

/// A reader fed by a thread reading the input, so that when nothing
/// arrives for `idle`, `on_idle` runs meanwhile.
struct IdleReader<F: FnMut()> {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
    idle: Duration,
    on_idle: F,
}

impl<F: FnMut()> IdleReader<F> {
    fn spawn(mut inner: Box<dyn Read + Send>, idle: Duration, on_idle: F) -> Result<IdleReader<F>> {
        let (tx, rx) = std::sync::mpsc::sync_channel(16);
        std::thread::Builder::new()
            .name("watch-input".into())
            .spawn(move || {
                loop {
                    let mut buf = vec![0; 1 << 16];
                    let sent = match inner.read(&mut buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            let end = n == 0;
                            tx.send(Ok(buf)).is_ok() && !end
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            false
                        }
                    };
                    if !sent {
                        return;
                    }
                }
            })
            .context("starting the input thread")?;
        Ok(IdleReader {
            rx,
            block: Vec::new(),
            pos: 0,
            idle,
            on_idle,
        })
    }
}

impl<F: FnMut()> Read for IdleReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.block.len() {
            match self.rx.recv_timeout(self.idle) {
                Ok(Ok(b)) if b.is_empty() => return Ok(0),
                Ok(Ok(b)) => {
                    self.block = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => (self.on_idle)(),
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Runs the watch loop until the input ends; returns the counters and the
/// reader's statistics (malformed lines and so on).
pub(super) fn watch<W: Write>(cfg: &WatchConfig, out: W) -> Result<(WatchStats, ReadStats)> {
    let mut detect = DetectConfig::for_model(Vec::new(), &cfg.model)?;
    detect.allow = cfg.allow.clone();
    detect.roles = cfg.roles.clone();
    detect.peer_groups &= cfg.peer_groups;
    let Some(window) = cfg.model.window_secs else {
        bail!(
            "watch needs a model trained with time windows (--window), this one scores whole hosts"
        );
    };
    // Per-window profiles are the windows themselves.
    detect.profile.window_secs = None;
    if let Some((_, past)) = &cfg.history {
        detect.history = Some(std::sync::Arc::new(past.clone()));
        detect.learn = crate::detect::Learn::Unflagged;
    }
    let mut options = detect.profile.clone();
    options.allow = cfg.allow.clone();
    if cfg.follow {
        // A signal stops the loop, which closes the last window.
        crate::output::write::stop_gracefully();
    }
    let state = RefCell::new(State {
        cfg,
        detect,
        window_secs: f64::from(window),
        current: None,
        closed_through: None,
        builder: ProfileBuilder::with_options(options),
        incidents: HashMap::new(),
        day: None,
        day_hosts: HashSet::new(),
        day_alerted: HashSet::new(),
        admin: AdminHistory {
            hosts: HashMap::new(),
            cap: cfg.max_hosts,
        },
        traffic: TrafficHistory {
            hosts: HashMap::new(),
            cap: cfg.max_hosts,
        },
        held: Vec::new(),
        out,
        stats: WatchStats::default(),
        error: None,
        status: std::io::stderr().is_terminal(),
    });
    let mut read_stats = ReadStats::default();
    let stdin = cfg.input.as_os_str() == "-";
    let name = if stdin {
        Path::new("<stdin>")
    } else {
        cfg.input.as_path()
    };
    let input: Box<dyn Read + Send> = if stdin {
        Box::new(std::io::stdin())
    } else if cfg.follow {
        Box::new(
            Follow::open(&cfg.input).with_context(|| format!("opening {}", cfg.input.display()))?,
        )
    } else {
        // A finished file may be gzipped (a rotated log, a daily archive).
        crate::flows::open_maybe_gz(&cfg.input)
            .with_context(|| format!("opening {}", cfg.input.display()))?
    };
    let mut sink = |f: &Flow<'_>| state.borrow_mut().add(f);
    match cfg.idle_close {
        Some(idle) => {
            let reader = IdleReader::spawn(input, idle, || state.borrow_mut().idle())?;
            crate::flows::read_stream(name, reader, &mut read_stats, &mut sink)?;
        }
        None => crate::flows::read_stream(name, input, &mut read_stats, &mut sink)?,
    }
    let mut state = state.into_inner();
    if let Some(e) = state.error.take() {
        return Err(e);
    }
    state.drop_held();
    state.close()?;
    state.end_day();
    state.save_history()?;
    if state.status {
        eprintln!();
    }
    Ok((state.stats, read_stats))
}

#[cfg(test)]
mod tests {
    use super::TrafficHistory;
    use std::net::IpAddr;

    /// A server that is quiet in a window keeps the counts of the windows
    /// before (its role does not flip); past the cap the least recently
    /// active hosts are forgotten, and counted.
    #[test]
    fn traffic_counts_add_up_and_stay_bounded() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut t = TrafficHistory {
            hosts: Default::default(),
            cap: 10,
        };
        let server = ip("10.0.0.2");
        t.update([(server, 5)].into_iter(), vec![(server, 900)], 1);
        t.update([(server, 7)].into_iter(), Vec::new(), 2);
        let c = t.counts([server, ip("10.0.0.3")].into_iter());
        assert_eq!(c.get(&server), Some(&(12, 900)));
        assert_eq!(c.len(), 1);
        let many: Vec<(IpAddr, u64)> = (0..20u8)
            .map(|i| (IpAddr::from([10, 1, 0, i]), 1))
            .collect();
        let forgotten = t.update(many.into_iter(), Vec::new(), 3);
        assert_eq!(forgotten, 21 - 9);
        assert_eq!(t.hosts.len(), 9);
        assert!(!t.hosts.contains_key(&server), "the oldest goes first");
    }
}
