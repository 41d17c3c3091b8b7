//! `latmove watch`: continuous scoring of a flow stream with a saved model.
//!
//! Flows are read as they arrive (stdin, or a file that keeps growing with
//! `--follow`), kept per host for the current time window only (by flow
//! timestamp, the model's window length), and when a flow of a later window
//! arrives the window closes: its hosts are scored with the model and the
//! alerts go out at once. State is dropped as windows close, so memory stays
//! bounded on an endless stream. Malformed lines are counted and skipped;
//! flows older than the open window are counted as late and skipped. End of
//! input (or Ctrl-C with `--follow`) closes the last window.
//!
//! Suppression: a host already alerted on is alerted again only when its
//! score worsens (by more than 0.01) or the suppression period has passed
//! (flow time).

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::detect::{DetectConfig, detect_with_training};
use crate::flows::{Flow, ReadStats};
use crate::model::file::Model;
use crate::profile::ProfileBuilder;

/// What `watch` does.
pub(super) struct WatchConfig {
    pub model: Model,
    /// `-` for stdin.
    pub input: PathBuf,
    pub follow: bool,
    pub suppress_secs: f64,
    pub alert_format: String,
    pub allow: crate::allow::Allowlist,
}

/// Counters reported at the end (and on the status line).
#[derive(Debug, Default, Clone)]
pub(super) struct WatchStats {
    pub windows_closed: u64,
    pub flows: u64,
    pub late_flows: u64,
    pub untimed_flows: u64,
    pub alerts: u64,
    pub suppressed: u64,
}

/// A reader that, at end of file, waits for more data (like `tail -F`)
/// until a signal asks latmove to stop.
struct Follow<R> {
    inner: R,
}

impl<R: Read> Read for Follow<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n > 0 || crate::output::write::stop_requested() {
                return Ok(n);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

struct State<'a, W: Write> {
    cfg: &'a WatchConfig,
    detect: DetectConfig,
    window_secs: f64,
    current: Option<i64>,
    builder: ProfileBuilder,
    last_alert: HashMap<IpAddr, (f64, f64)>,
    /// Every host's admin peers so far (see `admin_peers_to_date`): the
    /// one state that outlives a window, one small set per host.
    admin_seen: HashMap<IpAddr, std::collections::HashSet<IpAddr>>,
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
        let Some(t) = f.timestamp else {
            self.stats.untimed_flows += 1;
            return;
        };
        let w = (t / self.window_secs).floor() as i64;
        match self.current {
            None => self.current = Some(w),
            Some(c) if w < c => {
                self.stats.late_flows += 1;
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
        self.builder.add(f);
    }

    /// Scores the open window and emits its alerts.
    fn close(&mut self) -> Result<()> {
        let Some(w) = self.current else { return Ok(()) };
        let mut options = self.detect.profile.clone();
        options.allow = self.cfg.allow.clone();
        let builder = std::mem::replace(&mut self.builder, ProfileBuilder::with_options(options));
        let mut profiles = builder.finish();
        if !self.detect.score_external {
            profiles.hosts.retain(|h| h.internal);
        }
        for h in &mut profiles.hosts {
            let seen = self.admin_seen.entry(h.ip).or_default();
            seen.extend(h.admin_peers.iter().copied());
            h.admin_peers_to_date = Some(seen.len());
        }
        self.stats.windows_closed += 1;
        if profiles.hosts.is_empty() {
            return Ok(());
        }
        let mut d = detect_with_training(&self.detect, profiles, None, ReadStats::default())?;
        let start = w as f64 * self.window_secs;
        d.window_secs = Some(self.window_secs as u32);
        for h in &mut d.hosts {
            h.peak_window_start = Some(start);
            h.first_flagged_window = h.flagged.then_some(start);
        }
        let end = start + self.window_secs;
        let flagged: Vec<usize> = (0..d.hosts.len()).filter(|&i| d.hosts[i].flagged).collect();
        for i in flagged {
            let h = &d.hosts[i];
            if let Some(&(when, score)) = self.last_alert.get(&h.ip)
                && end - when < self.cfg.suppress_secs
                && h.score <= score + 0.01
            {
                self.stats.suppressed += 1;
                continue;
            }
            self.last_alert.insert(h.ip, (end, h.score));
            let line = match self.cfg.alert_format.as_str() {
                "cef" => crate::output::alerts::cef_line(&d, h),
                _ => {
                    let mut v = serde_json::to_vec(&crate::output::alerts::ecs_alert(&d, h))?;
                    v.push(b'\n');
                    v
                }
            };
            self.out.write_all(&line).context("writing an alert")?;
            self.out.flush().context("writing an alert")?;
            self.stats.alerts += 1;
        }
        if self.status {
            let s = &self.stats;
            eprint!(
                "\rlatmove watch: {} flows, {} windows closed, {} alerts ({} suppressed), {} late   ",
                s.flows, s.windows_closed, s.alerts, s.suppressed, s.late_flows
            );
        }
        Ok(())
    }
}

/// Runs the watch loop until the input ends; returns the counters and the
/// reader's statistics (malformed lines and so on).
pub(super) fn watch<W: Write>(cfg: &WatchConfig, out: W) -> Result<(WatchStats, ReadStats)> {
    let mut detect = DetectConfig::for_model(Vec::new(), &cfg.model)?;
    detect.allow = cfg.allow.clone();
    let Some(window) = cfg.model.window_secs else {
        bail!(
            "watch needs a model trained with time windows (--window), this one scores whole hosts"
        );
    };
    // Per-window profiles are the windows themselves.
    detect.profile.window_secs = None;
    let mut options = detect.profile.clone();
    options.allow = cfg.allow.clone();
    if cfg.follow {
        // A signal stops the loop, which closes the last window.
        crate::output::write::stop_gracefully();
    }
    let mut state = State {
        cfg,
        detect,
        window_secs: f64::from(window),
        current: None,
        builder: ProfileBuilder::with_options(options),
        last_alert: HashMap::new(),
        admin_seen: HashMap::new(),
        out,
        stats: WatchStats::default(),
        error: None,
        status: std::io::stderr().is_terminal(),
    };
    let mut read_stats = ReadStats::default();
    let name = if cfg.input.as_os_str() == "-" {
        Path::new("<stdin>")
    } else {
        cfg.input.as_path()
    };
    let result = if cfg.input.as_os_str() == "-" {
        let stdin = std::io::stdin().lock();
        crate::flows::read_one(name, stdin, &mut read_stats, &mut |f| state.add(f))
    } else {
        let file = std::fs::File::open(&cfg.input)
            .with_context(|| format!("opening {}", cfg.input.display()))?;
        if cfg.follow {
            let r = Follow { inner: file };
            crate::flows::read_one(name, r, &mut read_stats, &mut |f| state.add(f))
        } else {
            crate::flows::read_one(name, file, &mut read_stats, &mut |f| state.add(f))
        }
    };
    result?;
    if let Some(e) = state.error.take() {
        return Err(e);
    }
    state.close()?;
    if state.status {
        eprintln!();
    }
    Ok((state.stats, read_stats))
}
