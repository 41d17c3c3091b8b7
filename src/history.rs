//! Each host's own past (`--history DIR`): what its ordinary windows look
//! like and which internal hosts it has reached on administration ports,
//! kept across runs and days, so a host is judged against itself as well
//! as against everyone else.
//!
//! Per host: when it was first and last seen, how many windows it has, for
//! a few reach and fan-out features the largest window values within the
//! retention period (its usual level is the second largest: one odd
//! window does not set it), and its admin peers (internal hosts reached on
//! a sensitive port) with when each was first and last reached. A window
//! is beyond the host's past when a tracked feature is more than twice its
//! usual level and `MARGIN` more, or when it reaches `NEW_PEERS` or more
//! admin peers the host had never reached. A window above the threshold
//! that is beyond its host's past is not learnt, so an attack does not
//! become the attacker's baseline; a host without history learns every
//! window (judged against the other hosts meanwhile).
//!
//! The state is one JSON file, written whole; it stays within
//! `max_hosts` hosts (the least recently seen forgotten first), `TOP`
//! values per feature and `max_peers` admin peers per host, and forgets
//! what was last seen more than the retention period before the newest
//! flow time it holds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The features whose usual level a host keeps.
pub const TRACKED: &[&str] = &[
    "unique_dst_ips",
    "unique_dst_ports",
    "internal_dst_ips",
    "internal_subnets",
    "max_hosts_one_port",
    "max_ports_one_host",
    "sensitive_ports",
    "peak_5min_dst_pairs",
    "peak_5min_flows_one_service",
];

/// The retention period by default (days).
pub const DEFAULT_DAYS: f64 = 30.0;

/// Largest values kept per feature and host.
const TOP: usize = 5;
/// Windows a host needs before its past is used.
pub const MIN_WINDOWS: u64 = 4;
/// A value must exceed twice the usual level by this much.
const MARGIN: f64 = 5.0;
/// An admin peer first reached this recently (seconds) still counts as new.
const RECENT: f64 = 12.0 * 3600.0;
/// New admin peers (reached so far in the run, up to the window) that are
/// beyond a host's past.
const NEW_PEERS: usize = 3;
/// The state file's version.
const VERSION: u32 = 1;
/// The file in the history directory.
const FILE: &str = "history.json";
/// The lock a run that will write the history holds, beside it.
const LOCK: &str = "history.lock";
/// How far (seconds) a window may start after the run's 99th percentile
/// of window starts and still be learnt: a day. Further, it is a clock
/// error (one flow dated 2099 would otherwise make every host's past
/// older than the retention period, and forget it).
const AHEAD: f64 = 86_400.0;

/// Every host's past.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    version: u32,
    /// How long a host, a value or a peer is remembered (seconds of flow
    /// time).
    pub retention_secs: f64,
    /// Hosts kept at most.
    pub max_hosts: usize,
    /// Admin peers kept per host at most.
    pub max_peers: usize,
    /// The newest flow time learnt (`f64::MIN` before any).
    newest: f64,
    hosts: BTreeMap<IpAddr, HostPast>,
    /// The directory's lock, held while a run that will write it lives.
    #[serde(skip)]
    lock: Option<std::sync::Arc<DirLock>>,
}

/// One host's past.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostPast {
    first_seen: f64,
    last_seen: f64,
    windows: u64,
    /// Per tracked feature: its largest window values, (value, window
    /// start), largest first.
    top: Vec<Vec<(f64, f64)>>,
    /// Admin peers: (peer, first reached, last reached).
    peers: Vec<(IpAddr, f64, f64)>,
}

/// Hosts a history forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgot {
    /// Last seen more than the retention period before the newest window.
    pub expired: usize,
    /// The least recently seen, past the bound on hosts.
    pub evicted: usize,
}

impl Forgot {
    /// Adds another's counts.
    pub fn add(&mut self, o: Forgot) {
        self.expired += o.expired;
        self.evicted += o.evicted;
    }

    /// "N hosts forgotten (...)" or nothing.
    pub fn describe(&self, retention_days: f64) -> Option<String> {
        let mut why = Vec::new();
        if self.expired > 0 {
            why.push(format!(
                "{} last seen over {retention_days} days before the newest window",
                self.expired
            ));
        }
        if self.evicted > 0 {
            why.push(format!(
                "{} least recently seen past --history-max-hosts",
                self.evicted
            ));
        }
        (!why.is_empty()).then(|| format!("hosts forgotten: {}", why.join(", ")))
    }
}

/// What learning a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Learnt {
    /// Windows learnt.
    pub windows: usize,
    /// Windows not learnt: they start more than a day after the run's
    /// 99th percentile of window starts (a clock error).
    pub ahead: usize,
    /// Hosts forgotten after learning.
    pub forgot: Forgot,
}

/// One window a run saw, to learn from.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The host.
    pub ip: IpAddr,
    /// The window's start (seconds).
    pub start: f64,
    /// The tracked features' values, in `TRACKED` order.
    pub values: Vec<f64>,
    /// Internal hosts it reached on a sensitive port in the window.
    pub admin_peers: Vec<IpAddr>,
}

/// How a window compares with its host's past.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// The host has too little past: judged against the population only.
    NoHistory,
    /// Like its past.
    Usual,
    /// Beyond its past, in words.
    Beyond(String),
}

impl Judgement {
    /// The sentence an analyst reads.
    pub fn describe(&self) -> String {
        match self {
            Judgement::NoHistory => {
                "no history of this host: judged against the other hosts only".to_string()
            }
            Judgement::Usual => "within its own past: not flagged".to_string(),
            Judgement::Beyond(why) => format!("beyond its own past: {why}"),
        }
    }
}

impl History {
    /// An empty history.
    pub fn new(retention_secs: f64, max_hosts: usize, max_peers: usize) -> History {
        History {
            version: VERSION,
            retention_secs,
            max_hosts,
            max_peers,
            newest: f64::MIN,
            hosts: BTreeMap::new(),
            lock: None,
        }
    }

    /// The history in `dir`, or an empty one when it has none yet; the
    /// bounds given replace the saved ones. To be written (`write`), the
    /// directory is created and locked for as long as the history (or a
    /// clone) lives: another run that would write it is refused, so two
    /// runs never overwrite each other's learning.
    pub fn load(
        dir: &Path,
        (retention_secs, max_hosts, max_peers): (f64, usize, usize),
        write: bool,
    ) -> Result<History> {
        let lock = if write { Some(lock(dir)?) } else { None };
        let mut h = History::read(dir, retention_secs, max_hosts, max_peers)?;
        h.lock = lock;
        Ok(h)
    }

    fn read(
        dir: &Path,
        retention_secs: f64,
        max_hosts: usize,
        max_peers: usize,
    ) -> Result<History> {
        let path = dir.join(FILE);
        if !path.exists() {
            eprintln!(
                "latmove: {}: no history yet; every host starts without a past",
                path.display()
            );
            return Ok(History::new(retention_secs, max_hosts, max_peers));
        }
        let bytes = crate::util::read_side_file(&path, "history", 1 << 30)?;
        let mut h: History = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a latmove history file", path.display()))?;
        anyhow::ensure!(
            h.version == VERSION,
            "{}: history version {} (this latmove reads {VERSION})",
            path.display(),
            h.version
        );
        for (ip, past) in &mut h.hosts {
            anyhow::ensure!(
                past.top.len() == TRACKED.len(),
                "{}: host {ip} keeps {} feature lists, not {}: a damaged history file",
                path.display(),
                past.top.len(),
                TRACKED.len()
            );
            for top in &mut past.top {
                top.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
                top.truncate(TOP);
            }
        }
        h.retention_secs = retention_secs;
        h.max_hosts = max_hosts;
        h.max_peers = max_peers;
        if let Some(what) = h.bound().describe(h.retention_days()) {
            eprintln!("latmove: {}: on loading, {what}", path.display());
        }
        Ok(h)
    }

    /// Writes the history into `dir` (created if needed), whole.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the history directory {}", dir.display()))?;
        let path = dir.join(FILE);
        crate::output::write::write_file(&path, &serde_json::to_vec(self)?)?;
        Ok(path)
    }

    /// Hosts kept.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// How the window `values` (features by name) reaching `admin_peers`
    /// compares with `ip`'s past; the reason names the administration
    /// services (`SMB`, `RDP`...) the new peers were reached on, from the
    /// (peer, port) pairs the host used (`admin_pairs`).
    pub fn judge(
        &self,
        ip: IpAddr,
        value: impl Fn(&str) -> Option<f64>,
        (admin_peers, at): (&[IpAddr], f64),
        admin_pairs: &[(IpAddr, u16)],
    ) -> Judgement {
        let Some(h) = self.hosts.get(&ip).filter(|h| h.windows >= MIN_WINDOWS) else {
            return Judgement::NoHistory;
        };
        let mut why = Vec::new();
        // New: never reached, or first reached within `RECENT` of `at` (a
        // spread of one host a window is learnt window by window).
        let new: Vec<&IpAddr> = admin_peers
            .iter()
            .filter(|p| {
                h.peers
                    .iter()
                    .find(|(q, _, _)| q == *p)
                    .is_none_or(|(_, first, _)| *first > at - RECENT)
            })
            .collect();
        if new.len() >= NEW_PEERS {
            let services = services_of(&new, admin_pairs);
            let on = if services.is_empty() {
                "administration ports (SMB, RDP, SSH, WinRM...)".to_string()
            } else {
                services.join(", ")
            };
            let days = ((at - h.first_seen) / 86_400.0).floor();
            let when = if days >= 1.0 {
                format!(
                    "in the past {days} day{}",
                    if days == 1.0 { "" } else { "s" }
                )
            } else {
                format!(
                    "since {}",
                    crate::flows::timestamp::format_timestamp(h.first_seen)
                )
            };
            why.push(format!(
                "reached {} internal hosts on {on} it had never contacted {when}",
                new.len()
            ));
        }
        for (k, name) in TRACKED.iter().enumerate() {
            let Some(v) = value(name) else { continue };
            let usual = h.usual(k);
            if v > 2.0 * usual + MARGIN {
                why.push(format!("{name} {v} where its usual highest is {usual}"));
            }
        }
        if why.is_empty() {
            Judgement::Usual
        } else {
            Judgement::Beyond(why.join("; "))
        }
    }

    /// The retention period in days.
    pub fn retention_days(&self) -> f64 {
        self.retention_secs / 86_400.0
    }

    /// Learns the windows of a run, but those starting more than a day
    /// (`AHEAD`) after the run's 99th percentile of window starts (a clock
    /// error), then keeps within the bounds.
    pub fn learn(&mut self, seen: &[Observation]) -> Learnt {
        let mut starts: Vec<f64> = seen.iter().map(|o| o.start).collect();
        starts.sort_by(f64::total_cmp);
        let limit = starts
            .get((starts.len().saturating_sub(1)) * 99 / 100)
            .map_or(f64::INFINITY, |q| q + AHEAD);
        let mut learnt = Learnt::default();
        for o in seen {
            if o.start > limit {
                learnt.ahead += 1;
                continue;
            }
            learnt.windows += 1;
            self.newest = self.newest.max(o.start);
            let h = self.hosts.entry(o.ip).or_insert_with(|| HostPast {
                first_seen: o.start,
                last_seen: o.start,
                windows: 0,
                top: vec![Vec::new(); TRACKED.len()],
                peers: Vec::new(),
            });
            h.first_seen = h.first_seen.min(o.start);
            h.last_seen = h.last_seen.max(o.start);
            h.windows = h.windows.saturating_add(1);
            for (top, &v) in h.top.iter_mut().zip(&o.values) {
                top.push((v, o.start));
                top.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.total_cmp(&a.1)));
                top.truncate(TOP);
            }
            for &p in &o.admin_peers {
                match h.peers.iter_mut().find(|(q, _, _)| *q == p) {
                    Some(e) => {
                        e.1 = e.1.min(o.start);
                        e.2 = e.2.max(o.start);
                    }
                    None => h.peers.push((p, o.start, o.start)),
                }
            }
        }
        learnt.forgot = self.bound();
        learnt
    }

    /// Forgets what is past the retention period and what is past the
    /// bounds (least recently seen first); the hosts forgotten.
    pub fn bound(&mut self) -> Forgot {
        let oldest = self.newest - self.retention_secs;
        let before = self.hosts.len();
        self.hosts.retain(|_, h| h.last_seen >= oldest);
        let mut forgot = Forgot {
            expired: before - self.hosts.len(),
            evicted: 0,
        };
        for h in self.hosts.values_mut() {
            for top in &mut h.top {
                top.retain(|(_, t)| *t >= oldest);
            }
            h.peers.retain(|(_, _, last)| *last >= oldest);
            if h.peers.len() > self.max_peers {
                h.peers
                    .sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
                h.peers.truncate(self.max_peers);
            }
        }
        if self.hosts.len() > self.max_hosts {
            let mut by_age: Vec<(f64, IpAddr)> = self
                .hosts
                .iter()
                .map(|(ip, h)| (h.last_seen, *ip))
                .collect();
            by_age.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let excess = self.hosts.len() - self.max_hosts;
            for (_, ip) in &by_age[..excess] {
                self.hosts.remove(ip);
            }
            forgot.evicted = excess;
        }
        forgot
    }
}

/// Loads `data` as a history file (for fuzzing): it must be refused or
/// loaded, and a loaded history must judge, learn, bound and save without
/// panicking.
pub fn check_load(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join(FILE), data).expect("writing the history");
    let Ok(mut h) = History::load(dir.path(), (30.0 * 86_400.0, 50, 8), false) else {
        return;
    };
    let ips: Vec<IpAddr> = h.hosts.keys().take(20).copied().collect();
    let pairs: Vec<(IpAddr, u16)> = ips.iter().map(|ip| (*ip, 445)).collect();
    for (i, &ip) in ips.iter().enumerate() {
        for at in [f64::MIN, 0.0, h.newest, h.newest + 1e9, f64::MAX] {
            let _ = h.judge(ip, |_| Some(i as f64 * 1e3), (&ips, at), &pairs);
        }
    }
    let seen: Vec<Observation> = ips
        .iter()
        .enumerate()
        .map(|(i, &ip)| Observation {
            ip,
            start: h.newest + i as f64,
            values: vec![i as f64; TRACKED.len()],
            admin_peers: ips.clone(),
        })
        .collect();
    let _ = h.learn(&seen);
    let _ = h.bound();
    h.save(dir.path()).expect("saving the history");
    History::load(dir.path(), (30.0 * 86_400.0, 50, 8), false).expect("reloading what was saved");
}

/// A history directory's lock. A directory the run created is removed
/// again when the lock is let go without a history saved in it (a run
/// that failed leaves nothing behind).
#[derive(Debug)]
struct DirLock {
    _file: std::fs::File,
    dir: PathBuf,
    created: bool,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if self.created && !self.dir.join(FILE).exists() {
            let _ = std::fs::remove_file(self.dir.join(LOCK));
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// `dir` (created if needed) locked for writing its history.
fn lock(dir: &Path) -> Result<std::sync::Arc<DirLock>> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the history directory {}", dir.display()))?;
    let path = dir.join(LOCK);
    let held = |file| {
        std::sync::Arc::new(DirLock {
            _file: file,
            dir: dir.to_path_buf(),
            created,
        })
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(held(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "--history {}: another latmove run is writing this history ({} is locked); wait for it \
             to end, or judge against the history without learning with --history-read-only",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            eprintln!(
                "latmove: {}: this file system cannot lock; do not run two latmove on this history at once",
                path.display()
            );
            Ok(held(file))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// The services `new` peers were reached on, most peers first (ties in
/// the order of `net::SENSITIVE_PORTS`), at most three.
fn services_of(new: &[&IpAddr], pairs: &[(IpAddr, u16)]) -> Vec<&'static str> {
    let mut peers: Vec<(&'static str, Vec<IpAddr>)> = Vec::new();
    for (peer, port) in pairs {
        let Some(name) = crate::net::sensitive_service(*port) else {
            continue;
        };
        if !new.contains(&peer) {
            continue;
        }
        match peers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) if !list.contains(peer) => list.push(*peer),
            Some(_) => {}
            None => peers.push((name, vec![*peer])),
        }
    }
    let rank = |n: &str| {
        crate::net::SENSITIVE_PORTS
            .iter()
            .position(|p| crate::net::sensitive_service(*p) == Some(n))
    };
    peers.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(rank(a.0).cmp(&rank(b.0))));
    peers.into_iter().take(3).map(|(n, _)| n).collect()
}

impl HostPast {
    /// The usual level of tracked feature `k`: its second largest window
    /// value within the retention period (the largest when only one).
    fn usual(&self, k: usize) -> f64 {
        let top = &self.top[k];
        top.get(1).or(top.first()).map_or(0.0, |v| v.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(ip: &str, start: f64, dsts: f64, peers: &[&str]) -> Observation {
        let mut values = vec![1.0; TRACKED.len()];
        values[0] = dsts;
        Observation {
            ip: ip.parse().unwrap(),
            start,
            values,
            admin_peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    /// A host judged against its own windows: usual, beyond by fan-out,
    /// beyond by new admin peers; no history below MIN_WINDOWS.
    #[test]
    fn judges_a_host_against_its_own_past() {
        let mut h = History::new(30.0 * 86_400.0, 100, 100);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let seen: Vec<Observation> = (0..10)
            .map(|i| {
                obs(
                    "10.0.0.5",
                    f64::from(i) * 900.0,
                    10.0 + f64::from(i),
                    &["10.0.0.9"],
                )
            })
            .collect();
        h.learn(&seen[..3]);
        let value = |d: f64| move |n: &str| (n == "unique_dst_ips").then_some(d);
        assert_eq!(
            h.judge(ip, value(500.0), (&[], 1e9), &[]),
            Judgement::NoHistory
        );
        h.learn(&seen[3..]);
        // Usual: 18 (the second largest of 10..19).
        assert_eq!(h.judge(ip, value(41.0), (&[], 1e9), &[]), Judgement::Usual);
        assert!(matches!(
            h.judge(ip, value(42.0), (&[], 1e9), &[]),
            Judgement::Beyond(_)
        ));
        let peers: Vec<IpAddr> = ["10.0.0.9", "10.0.0.10", "10.0.0.11"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(
            h.judge(ip, value(1.0), (&peers, 1e9), &[]),
            Judgement::Usual
        );
        let more: Vec<IpAddr> = ["10.0.0.10", "10.0.0.11", "10.0.0.12"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        match h.judge(ip, value(1.0), (&more, 1e9), &[]) {
            Judgement::Beyond(why) => assert!(why.contains("reached 3 internal hosts"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Named by the services the new peers were reached on (most peers
        // first; an older peer's service does not count), over the days
        // the history holds.
        let pairs: Vec<(IpAddr, u16)> = [
            ("10.0.0.10", 3389),
            ("10.0.0.11", 445),
            ("10.0.0.12", 445),
            ("10.0.0.9", 22),
        ]
        .iter()
        .map(|(p, port)| (p.parse().unwrap(), *port))
        .collect();
        match h.judge(ip, value(1.0), (&more, 1e9), &pairs) {
            Judgement::Beyond(why) => assert!(
                why.starts_with(
                    "reached 3 internal hosts on SMB, RDP it had never contacted in the past "
                ),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A spread of one host a window adds up: peers first reached in the
    /// last 12 hours count as new, older ones do not.
    #[test]
    fn a_slow_spread_adds_up() {
        let mut h = History::new(30.0 * 86_400.0, 100, 100);
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let day = 86_400.0;
        let mut seen: Vec<Observation> = (0..6)
            .map(|i| obs("10.0.0.5", f64::from(i) * 900.0, 10.0, &["10.0.0.9"]))
            .collect();
        // Today, one new peer a window.
        for (i, p) in ["10.0.0.20", "10.0.0.21"].iter().enumerate() {
            seen.push(obs("10.0.0.5", day + i as f64 * 900.0, 10.0, &[p]));
        }
        h.learn(&seen);
        let value = |n: &str| Some(if n == "unique_dst_ips" { 10.0 } else { 1.0 });
        let peers: Vec<IpAddr> = ["10.0.0.9", "10.0.0.20", "10.0.0.21", "10.0.0.22"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        // 10.0.0.20 and .21 (this morning) and .22 (never): three new.
        assert!(matches!(
            h.judge(ip, value, (&peers, day + 1800.0), &[]),
            Judgement::Beyond(_)
        ));
        // A day later the morning's peers are known.
        assert_eq!(
            h.judge(ip, value, (&peers[..3], 2.0 * day + 1800.0), &[]),
            Judgement::Usual
        );
    }

    /// Bounded: hosts past the cap and past the retention period are
    /// forgotten (the least recently seen first), peers too.
    #[test]
    fn stays_within_its_bounds() {
        let mut h = History::new(86_400.0, 10, 4);
        let mut seen = Vec::new();
        for i in 0..50u32 {
            let ip = format!("10.0.{}.{}", i / 200, i % 200);
            let peers: Vec<String> = (0..9).map(|p| format!("10.9.0.{p}")).collect();
            let peers: Vec<&str> = peers.iter().map(String::as_str).collect();
            seen.push(obs(&ip, f64::from(i) * 60.0, 3.0, &peers));
        }
        let learnt = h.learn(&seen);
        assert_eq!(h.hosts(), 10);
        assert_eq!(
            learnt.forgot,
            Forgot {
                expired: 0,
                evicted: 40
            }
        );
        // The ten seen last: 10.0.0.40 to 10.0.0.49.
        assert!(h.hosts.keys().all(|ip| match ip {
            IpAddr::V4(v) => v.octets()[3] >= 40,
            IpAddr::V6(_) => false,
        }));
        assert!(h.hosts.values().all(|p| p.peers.len() <= 4));
        // A day later, only the new host remains.
        let learnt = h.learn(&[obs("10.1.1.1", 49.0 * 60.0 + 86_401.0, 1.0, &[])]);
        assert_eq!(h.hosts(), 1);
        assert_eq!(learnt.forgot.expired, 10);
        assert!(
            learnt
                .forgot
                .describe(h.retention_days())
                .unwrap()
                .contains("10 last seen over 1 days")
        );
    }

    /// A saved history and 300 mutations of it (bytes changed, cut,
    /// digits replaced by extreme numbers) go through the fuzz target's
    /// check: refused or loaded, and a loaded one judges, learns and saves.
    #[test]
    fn damaged_histories_are_refused_or_used_never_panic() {
        let mut h = History::new(30.0 * 86_400.0, 100, 100);
        let seen: Vec<Observation> = (0..40)
            .map(|i| {
                let ip = format!("10.0.0.{}", i % 8);
                obs(
                    &ip,
                    900.0 * f64::from(i),
                    f64::from(i),
                    &["10.0.0.9", "10.0.0.10"],
                )
            })
            .collect();
        h.learn(&seen);
        let bytes = serde_json::to_vec(&h).unwrap();
        check_load(&bytes);
        let mut state: u64 = 7;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as usize
        };
        for k in 0..300 {
            let mut m = bytes.clone();
            match k % 3 {
                0 => {
                    let i = next() % m.len();
                    m[i] = b"0123456789-.e,:[]{}\"x"[next() % 21];
                }
                1 => m.truncate(next() % m.len()),
                _ => {
                    let text = String::from_utf8(m).unwrap();
                    let big = ["1e308", "-1e308", "18446744073709551615", "0", "-0.0"][next() % 5];
                    let at = next() % text.len();
                    let end = text[at..]
                        .find([',', ']', '}'])
                        .map_or(text.len(), |e| at + e);
                    m = format!("{}{big}{}", &text[..at], &text[end..]).into_bytes();
                }
            }
            check_load(&m);
        }
    }

    /// A window dated far after the rest of a run (a clock error) is not
    /// learnt, so it cannot age every other host's past out; a whole run
    /// that late is learnt, and forgets what the retention period says.
    #[test]
    fn a_clock_error_does_not_forget_the_past() {
        let mut h = History::new(30.0 * 86_400.0, 1000, 100);
        let day: Vec<Observation> = (0..200)
            .map(|i| {
                obs(
                    &format!("10.0.{}.{}", i / 100, i % 100),
                    900.0 * f64::from(i % 30),
                    3.0,
                    &[],
                )
            })
            .collect();
        assert_eq!(h.learn(&day).windows, 200);
        let mut next = day.clone();
        for o in &mut next {
            o.start += 86_400.0;
        }
        next.push(obs("10.0.0.1", 86_400.0 * 365.0 * 80.0, 3.0, &[]));
        let learnt = h.learn(&next);
        assert_eq!((learnt.windows, learnt.ahead), (200, 1));
        assert_eq!(learnt.forgot, Forgot::default());
        assert_eq!(h.hosts(), 200);
        // Two months later, every window of the run: the past expires.
        let later: Vec<Observation> = (0..3)
            .map(|i| obs("10.5.0.1", 61.0 * 86_400.0 + 900.0 * f64::from(i), 3.0, &[]))
            .collect();
        let learnt = h.learn(&later);
        assert_eq!((learnt.windows, learnt.ahead), (3, 0));
        assert_eq!(learnt.forgot.expired, 200);
        assert_eq!(h.hosts(), 1);
    }
}
