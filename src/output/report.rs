//! What a run hands the analyst: the stdout summary and the CSV and JSON
//! files, all written whole (see [`super::write`]).

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use std::borrow::Cow;

use crate::detect::{Detection, HostResult};
use crate::flows::timestamp::{format_timestamp, write_timestamp};
use crate::metrics::Metrics;
use crate::util::text::csv_text;

fn label_text(h: &HostResult) -> &'static str {
    match h.is_attack {
        Some(true) => "attack",
        Some(false) => "benign",
        None => "unlabelled",
    }
}

fn time_text(t: Option<f64>) -> String {
    t.map(format_timestamp).unwrap_or_default()
}

/// Formats a feature value compactly (integers without decimals).
pub(crate) fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The features that set a host apart, as indices, strongest first.
pub(crate) fn top_reasons(h: &HostResult) -> Vec<usize> {
    // Features the forest actually cut on for this host, at least 3 robust
    // units from the median, farthest first (ties: earlier cuts first).
    let mut idx: Vec<usize> = (0..h.contributions.len())
        .filter(|&j| h.contributions[j] > 0.0 && h.robust_z[j].abs() >= 3.0)
        .collect();
    idx.sort_by(|&a, &b| {
        h.robust_z[b]
            .abs()
            .total_cmp(&h.robust_z[a].abs())
            .then(h.contributions[b].total_cmp(&h.contributions[a]))
            .then(a.cmp(&b))
    });
    idx
}

/// One line on why a host stands out, e.g.
/// `unique_dst_ports 1010 (+842 robust units vs benign median 12); ...`.
pub(crate) fn explain(d: &Detection, h: &HostResult) -> String {
    let reasons = top_reasons(h);
    if reasons.is_empty() {
        return "no single feature is far from the benign hosts; the combination is unusual"
            .to_string();
    }
    reasons
        .iter()
        .take(3)
        .map(|&j| {
            format!(
                "{} {} ({:+.0} robust units from the training hosts' median)",
                d.feature_names[j],
                fmt_value(h.features[j]),
                h.robust_z[j]
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn feature(d: &Detection, h: &HostResult, name: &str) -> Option<f64> {
    d.feature_names
        .iter()
        .position(|n| *n == name)
        .map(|j| h.features[j])
}

fn plural(n: f64, one: &str, many: &str) -> String {
    let n = n.round() as i64;
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One sentence an analyst can read, from the host's (peak window's)
/// behaviour, e.g. "reached 306 ports on 33 hosts (11 internal) within 15
/// min; 90% of attempts got no reply or a reset".
pub(crate) fn sentence(d: &Detection, h: &HostResult) -> String {
    let get = |n: &str| feature(d, h, n);
    let mut parts = Vec::new();
    if let (Some(ips), Some(ports)) = (get("unique_dst_ips"), get("unique_dst_ports")) {
        let inside =
            get("internal_dst_ips").map_or(String::new(), |i| format!(" ({} internal)", i.round()));
        let span = d
            .window_secs
            .filter(|_| h.peak_window_start.is_some())
            .map_or(String::new(), |w| format!(" within {} min", w / 60));
        parts.push(format!(
            "reached {} on {}{inside}{span}",
            plural(ports, "port", "ports"),
            plural(ips, "host", "hosts")
        ));
    }
    if let Some(u) = get("unanswered_share").filter(|u| *u >= 0.3) {
        parts.push(format!(
            "{:.0}% of attempts got no reply or a reset",
            u * 100.0
        ));
    }
    if let Some(n) = get("max_hosts_one_port").filter(|n| *n >= 10.0) {
        parts.push(format!("{} on one port", plural(n, "host", "hosts")));
    }
    if let Some(n) = get("max_ports_one_host").filter(|n| *n >= 15.0) {
        parts.push(format!("{} on one host", plural(n, "port", "ports")));
    }
    if let Some(n) = get("sensitive_ports").filter(|n| *n >= 3.0) {
        parts.push(format!(
            "{} (SMB/RDP/SSH/WinRM...)",
            plural(n, "sensitive service port", "sensitive service ports")
        ));
    }
    if let Some(n) = get("admin_peers_to_date").filter(|n| *n >= 5.0) {
        parts.push(format!(
            "{} reached on SMB/RDP/WinRM/SSH ports by then",
            plural(n, "internal host", "internal hosts")
        ));
    }
    if let Some(n) = get("peak_5min_flows_one_service").filter(|n| *n >= 20.0) {
        parts.push(format!(
            "up to {} to one service in 5 min",
            plural(n, "connection", "connections")
        ));
    }
    if parts.is_empty() {
        parts.push(format!("{} flows", h.flows));
    }
    parts.join("; ")
}

/// The human-readable summary printed on stdout.
pub(crate) fn summary(d: &Detection, top: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "latmove {}: host-level lateral-movement detection",
        env!("CARGO_PKG_VERSION")
    );
    input_section(&mut s, &d.stats);
    model_section(&mut s, d);
    hosts_section(&mut s, d);
    flagged_section(&mut s, d, top);
    allowed_section(&mut s, d);
    missed_section(&mut s, d, top);
    s
}

/// The summary's input: files, rows, what was skipped and why.
fn input_section(s: &mut String, st: &crate::flows::ReadStats) {
    let _ = writeln!(s, "\nInput");
    for f in &st.files {
        let _ = writeln!(s, "  {}", f.display());
    }
    let _ = writeln!(s, "  rows read          {:>12}", st.rows);
    if st.feature_table {
        let _ = writeln!(s, "  feature rows used  {:>12}", st.flows);
    } else {
        let _ = writeln!(s, "  flows used         {:>12}", st.flows);
    }
    if st.skipped.is_empty() {
        let _ = writeln!(s, "  rows skipped       {:>12}", 0);
    }
    for (reason, n) in &st.skipped {
        let _ = writeln!(s, "  skipped: {:<22} {:>6}", reason.describe(), n);
    }
    if st.non_finite_values > 0 {
        let _ = writeln!(
            s,
            "  Infinity/NaN cells kept as missing values: {}",
            st.non_finite_values
        );
    }
    if st.negative_durations > 0 {
        let _ = writeln!(s, "  negative durations ignored: {}", st.negative_durations);
    }
    if st.implausible_values > 0 {
        let _ = writeln!(
            s,
            "  negative or implausibly large counts kept as missing values: {}",
            st.implausible_values
        );
    }
    if st.bad_timestamps > 0 {
        let _ = writeln!(
            s,
            "  unrecognised timestamps (rows kept): {}",
            st.bad_timestamps
        );
    }
    for (what, n) in &st.notes {
        let _ = writeln!(s, "  {what}: {n}");
    }
    for p in &st.problems {
        let _ = writeln!(s, "  e.g. {p}");
    }
    let skipped_problems: u64 = st
        .skipped
        .iter()
        .filter(|(r, _)| r.detailed())
        .map(|(_, n)| n)
        .sum();
    if skipped_problems as usize > st.problems.len() {
        let _ = writeln!(
            s,
            "  ({} more skipped rows not shown)",
            skipped_problems as usize - st.problems.len()
        );
    }
}

/// The summary's model: detector, parameters, training, windows.
fn model_section(s: &mut String, d: &Detection) {
    let _ = writeln!(s, "\nModel");
    if d.rules() {
        let _ = writeln!(
            s,
            "  --detector rules: Zeek-style baseline, score = max(hosts on one port / 25, ports on one host / 15), failed connections within 5 minutes; flagged at 1"
        );
    }
    if d.per_host_day {
        let _ = writeln!(
            s,
            "  Isolation Forest: {} trees, subsample {}, seed {}, alert budget {} of the training hosts' days",
            d.params.n_trees, d.forest.psi, d.params.seed, d.params.contamination
        );
    } else {
        let _ = writeln!(
            s,
            "  Isolation Forest: {} trees, subsample {}, seed {}, contamination {}",
            d.params.n_trees, d.forest.psi, d.params.seed, d.params.contamination
        );
    }
    let _ = writeln!(s, "  features: {}", d.feature_names.join(", "));
    let _ = writeln!(
        s,
        "  trained on {} {}; threshold score {:.4}",
        d.training_hosts, d.training_set, d.threshold
    );
    if let crate::model::forest::Contamination::Fraction(c) = d.params.contamination
        && !d.rules()
        && !d.per_host_day
        && (c * d.training_hosts as f64 + 1e-9) < 1.0
    {
        let _ = writeln!(
            s,
            "  note: contamination {c} of {n} training hosts is under one host: the threshold is the \
             highest training score, so only a host scoring above every training host is flagged (when \
             every host trains, none is; --contamination {top:.3} then flags the top one)",
            n = d.training_hosts,
            top = (1.0 / d.training_hosts.max(1) as f64 * 1000.0).ceil() / 1000.0,
        );
    }
    match d.window_secs {
        Some(w) => {
            let _ = writeln!(
                s,
                "  scored per host and {}-minute window; a host's score is its highest window's, and the feature values shown are that window's",
                w / 60
            );
        }
        None => {
            let _ = writeln!(s, "  scored per whole host (no time windows)");
        }
    }
    if d.preprocessor.mean_prior > 0.0 && !d.rules() {
        let _ = writeln!(
            s,
            "  means per flow (duration, bytes, packets) over n flows pulled toward the benign median by n/(n+{})",
            d.preprocessor.mean_prior
        );
    }
    if d.folds >= 2 {
        let _ = writeln!(
            s,
            "  training hosts scored out of sample ({}-fold cross-fitting); threshold from those scores",
            d.folds
        );
    }
    peer_groups_lines(s, d);
}

/// The peer groups: each one's hosts, training, threshold, or that it is
/// judged against the whole population only.
fn peer_groups_lines(s: &mut String, d: &Detection) {
    if d.groups.is_empty() {
        return;
    }
    if let Some(k) = d.peer_balance {
        let _ = writeln!(
            s,
            "  training windows of smaller peer groups repeated up to {k} times (--peer-balance)"
        );
    }
    let _ = writeln!(
        s,
        "  peer groups: a window is above the threshold when it is also above its group's (a group under {} training hosts is judged against all hosts only)",
        crate::peers::min_group_hosts(match d.params.contamination {
            crate::model::forest::Contamination::Fraction(c) => Some(c),
            crate::model::forest::Contamination::Auto => None,
        })
    );
    for g in &d.groups {
        let own = match g.threshold {
            Some(t) => format!(
                "{} training hosts, threshold {t:.4}; {} above all hosts' threshold but usual among peers",
                g.training_hosts, g.usual_among_peers
            ),
            None => "judged against all hosts only (too few training hosts for a group of its own)"
                .to_string(),
        };
        let _ = writeln!(
            s,
            "    {:<12} {:>7} hosts: {own}",
            crate::util::text::printable(&g.name),
            g.hosts
        );
    }
}

/// The summary's host counts and metrics.
fn hosts_section(s: &mut String, d: &Detection) {
    let _ = writeln!(s, "\nHosts");
    let _ = writeln!(s, "  source hosts       {:>8}", d.hosts.len());
    if let Some(m) = &d.metrics {
        let _ = writeln!(s, "  attack hosts       {:>8}", m.attack_hosts);
    }
    let _ = writeln!(s, "  flagged hosts      {:>8}", d.flagged().count());
    let judged: Vec<&crate::history::Judgement> =
        d.hosts.iter().filter_map(|h| h.baseline.as_ref()).collect();
    if !judged.is_empty() {
        let count =
            |k: fn(&crate::history::Judgement) -> bool| judged.iter().filter(|j| k(j)).count();
        let _ = writeln!(
            s,
            "  above the threshold: {} beyond their own past (flagged), {} within it (not flagged), {} without history (judged against the other hosts, and their peer group where it has a forest)",
            count(|j| matches!(j, crate::history::Judgement::Beyond(_))),
            count(|j| *j == crate::history::Judgement::Usual),
            count(|j| *j == crate::history::Judgement::NoHistory),
        );
    }
    match &d.metrics {
        Some(m) => s.push_str(&metrics_block(m)),
        None => {
            let _ = writeln!(
                s,
                "\nNo Label column: hosts are ranked, but no metrics can be computed."
            );
        }
    }
}

/// The summary's top flagged hosts, each with what, why and windows.
fn flagged_section(s: &mut String, d: &Detection, top: usize) {
    let flagged: Vec<&HostResult> = d.flagged().collect();
    let _ = writeln!(s, "\nTop flagged hosts (of {})", flagged.len());
    if flagged.is_empty() {
        let _ = writeln!(s, "  none");
    }
    let _ = writeln!(
        s,
        "  {:>4}  {:<16} {:>6}  {:<8} {:>9}  {}",
        "rank",
        "host",
        "score",
        "label",
        "flows",
        if d.window_secs.is_some() {
            "peak window"
        } else {
            ""
        }
    );
    for h in flagged.iter().take(top) {
        let _ = writeln!(
            s,
            "  {:>4}  {:<16} {:>6.3}  {:<8} {:>9}  {}",
            h.rank,
            h.ip.to_string(),
            h.score,
            label_text(h),
            h.flows,
            time_text(h.peak_window_start)
        );
        let _ = writeln!(s, "        what: {}", sentence(d, h));
        let _ = writeln!(s, "        why: {}", explain(d, h));
        if h.peak_window_start.is_some() {
            let _ = writeln!(
                s,
                "        windows above the threshold: {}{}",
                h.windows_flagged,
                h.first_flagged_window
                    .map(|t| format!(", the first from {}", time_text(Some(t))))
                    .unwrap_or_default()
            );
        }
        if let Some(text) = h.own_past() {
            let _ = writeln!(s, "        baseline: {text}");
        }
        if !h.attack_labels.is_empty() {
            let _ = writeln!(s, "        labels: {}", h.attack_labels.join(", "));
        }
    }
    if flagged.len() > top {
        let _ = writeln!(s, "  ... {} more in flagged_hosts.csv", flagged.len() - top);
    }
}

/// The summary's allowlisted hosts (scored, never flagged).
fn allowed_section(s: &mut String, d: &Detection) {
    let allowed: Vec<&HostResult> = d.hosts.iter().filter(|h| h.allowed).collect();
    if !allowed.is_empty() || d.allowed_flows > 0 {
        let _ = writeln!(
            s,
            "\nAllowlisted (--allow): {} host(s) scored but never flagged; {} flow(s) to allowlisted ports not profiled",
            allowed.len(),
            d.allowed_flows
        );
        for h in &allowed {
            let over = if h.score > d.threshold {
                "above"
            } else {
                "below"
            };
            let _ = writeln!(
                s,
                "  {:>4}  {:<16} {:>6.3} ({over} the threshold)  {}",
                h.rank,
                h.ip.to_string(),
                h.score,
                sentence(d, h)
            );
        }
    }
}

/// The summary's missed attack hosts.
fn missed_section(s: &mut String, d: &Detection, top: usize) {
    if let Some(m) = &d.metrics {
        let missed: Vec<&HostResult> = d
            .hosts
            .iter()
            .filter(|h| h.is_attack == Some(true) && !h.flagged)
            .collect();
        if m.fn_ > 0 {
            let _ = writeln!(s, "\nMissed attack hosts ({})", m.fn_);
            for h in missed.iter().take(top) {
                let _ = writeln!(
                    s,
                    "  {:>4}  {:<16} {:>6.3}  {}",
                    h.rank,
                    h.ip.to_string(),
                    h.score,
                    h.attack_labels.join(", ")
                );
            }
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |v| format!("{:.1}%", v * 100.0))
}

fn num(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.4}"))
}

fn metrics_block(m: &Metrics) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nEvaluation against the labels (host is attack if any of its flows is not BENIGN)"
    );
    let _ = writeln!(s, "                     flagged   not flagged");
    let _ = writeln!(s, "  attack hosts     {:>9}   {:>11}", m.tp, m.fn_);
    let _ = writeln!(s, "  benign hosts     {:>9}   {:>11}", m.fp, m.tn);
    let _ = writeln!(s, "  TP {}  FP {}  FN {}  TN {}", m.tp, m.fp, m.fn_, m.tn);
    let _ = writeln!(
        s,
        "  false positives      {} of {} benign hosts",
        m.fp, m.benign_hosts
    );
    let _ = writeln!(s, "  recall               {}", pct(m.recall));
    let _ = writeln!(s, "  precision            {}", pct(m.precision));
    let _ = writeln!(s, "  false-positive rate  {}", pct(m.false_positive_rate));
    let _ = writeln!(s, "  ROC-AUC              {}", num(m.roc_auc));
    let _ = writeln!(s, "  average precision    {}", num(m.average_precision));
    let _ = writeln!(
        s,
        "  recall at 1% / 5% FPR  {} / {}",
        pct(m.recall_at_1pct_fpr),
        pct(m.recall_at_5pct_fpr)
    );
    if !m.families.is_empty() {
        let _ = writeln!(
            s,
            "  recall per attack family (a host's most frequent attack label):"
        );
        for f in &m.families {
            let _ = writeln!(
                s,
                "    {:<28} {} of {} flagged",
                f.family, f.flagged, f.hosts
            );
        }
    }
    s
}

fn host_row_header(d: &Detection, extra: &[&str]) -> Vec<String> {
    let mut h: Vec<String> = [
        "rank",
        "ip",
        "score",
        "flagged",
        "label",
        "attack_labels",
        "flows",
        "first_seen",
        "last_seen",
        "trained_on",
        "allowed",
        "internal",
        "peak_window_start",
        "windows_flagged",
        "first_flagged_window",
        "peer_group",
        "peer_score",
        "own_past",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    h.extend(d.feature_names.iter().map(|s| s.to_string()));
    h.extend(extra.iter().map(|s| s.to_string()));
    h
}

fn host_row(h: &HostResult, raw: bool) -> Vec<String> {
    let mut r = Vec::with_capacity(18 + h.features.len());
    host_fields(h, raw, &mut String::new(), |f| r.push(f.to_string()));
    r
}

/// A host's row, field by field: each rendered into `buf` and handed to
/// `field` (no allocation per field once `buf` has grown). Unless `raw`,
/// the labels' cell cannot start a spreadsheet formula.
fn host_fields(h: &HostResult, raw: bool, buf: &mut String, mut field: impl FnMut(&str)) {
    let mut put = |render: &dyn Fn(&mut String)| {
        buf.clear();
        render(buf);
        field(buf);
    };
    let time = |t: Option<f64>| {
        move |b: &mut String| {
            if let Some(t) = t {
                write_timestamp(b, t);
            }
        }
    };
    put(&|b| write!(b, "{}", h.rank).expect("to a String"));
    put(&|b| write!(b, "{}", h.ip).expect("to a String"));
    put(&|b| write!(b, "{:.6}", h.score).expect("to a String"));
    put(&|b| write!(b, "{}", h.flagged).expect("to a String"));
    put(&|b| b.push_str(label_text(h)));
    put(&|b| {
        for (i, l) in h.attack_labels.iter().enumerate() {
            if i > 0 {
                b.push(';');
            }
            b.push_str(l);
        }
        if !raw && let Cow::Owned(safe) = csv_text(b) {
            *b = safe;
        }
    });
    put(&|b| write!(b, "{}", h.flows).expect("to a String"));
    put(&time(h.first_seen));
    put(&time(h.last_seen));
    put(&|b| write!(b, "{}", h.trained_on).expect("to a String"));
    put(&|b| write!(b, "{}", h.allowed).expect("to a String"));
    put(&|b| write!(b, "{}", h.internal).expect("to a String"));
    put(&time(h.peak_window_start));
    put(&|b| write!(b, "{}", h.windows_flagged).expect("to a String"));
    put(&time(h.first_flagged_window));
    put(&|b| {
        b.push_str(&h.peer_group);
        if !raw && let Cow::Owned(safe) = csv_text(b) {
            *b = safe;
        }
    });
    put(&|b| {
        if let Some(p) = h.peer_score {
            write!(b, "{p:.6}").expect("to a String");
        }
    });
    put(&|b| {
        if let Some(text) = h.own_past() {
            b.push_str(&text);
            if !raw && let Cow::Owned(safe) = csv_text(b) {
                *b = safe;
            }
        }
    });
    for &v in &h.features {
        put(&|b| push_shortest(b, v));
    }
}

/// Appends `v` exactly as `format!("{v}")` renders it (the shortest
/// decimal that reads back as `v`, never an exponent). Whole numbers below
/// 10^15 are written as integers; other values from ryu's shortest digits,
/// several times faster to find. The two agree except at a tie (the exact
/// value halfway between two shortest decimals: ryu rounds to even, the
/// standard library up), which is written by the standard library.
fn push_shortest(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        if v == 0.0 && v.is_sign_negative() {
            out.push_str("-0");
        } else {
            write!(out, "{}", v as i64).expect("to a String");
        }
        return;
    }
    if !v.is_finite() {
        write!(out, "{v}").expect("to a String");
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(v);
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("ryu writes an integer exponent")),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The significant digits, and where the decimal point goes in them.
    let mut digits = [0u8; 32];
    let mut n = 0;
    for &d in int.as_bytes().iter().chain(frac.as_bytes()) {
        digits[n] = d;
        n += 1;
    }
    let mut point = int.len() as i32 + exponent;
    let lead = digits[..n].iter().take_while(|&&d| d == b'0').count();
    let digits = &digits[lead..n];
    point -= lead as i32;
    let digits = &digits[..digits.len() - digits.iter().rev().take_while(|&&d| d == b'0').count()];
    // `v` is m 2^-k (m odd): its exact decimal has k digits after the
    // point. A tie needs exactly one digit more than the shortest has.
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let m = bits & ((1 << 52) - 1) | if biased == 0 { 0 } else { 1 << 52 };
    let k = -(if biased == 0 { -1074 } else { biased - 1075 } + m.trailing_zeros() as i32);
    let fraction_digits = (digits.len() as i32 - point).max(0);
    if k == fraction_digits + 1 {
        write!(out, "{v}").expect("to a String");
        return;
    }
    if negative {
        out.push('-');
    }
    // (Zero is a whole number, written above: `digits` is not empty.)
    let text = |d| std::str::from_utf8(d).expect("ASCII digits");
    if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.push_str(text(digits));
    } else if point as usize >= digits.len() {
        out.push_str(text(digits));
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        let (a, b) = digits.split_at(point as usize);
        out.push_str(text(a));
        out.push('.');
        out.push_str(text(b));
    }
}

/// `host_scores.csv`: every host, ranked.
///
/// Formatting a full day's rows takes milliseconds, so contiguous runs of
/// hosts are rendered on every core and joined in order (the csv writer
/// keeps no state between records: the bytes are one writer's).
pub(crate) fn host_scores_csv(d: &Detection, raw: bool) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(host_row_header(d, &[]))?;
    let mut out = w.into_inner()?;
    let per = d
        .hosts
        .len()
        .div_ceil(crate::util::threads::default_threads())
        .max(256);
    let render = |hosts: &[HostResult]| -> Result<Vec<u8>> {
        let mut w = csv::Writer::from_writer(Vec::with_capacity(hosts.len() * 256));
        let mut buf = String::new();
        let mut failed = None;
        for h in hosts {
            host_fields(h, raw, &mut buf, |f| {
                if let Err(e) = w.write_field(f) {
                    failed.get_or_insert(e);
                }
            });
            // An empty record ends the one written field by field.
            w.write_record(None::<&[u8]>)?;
        }
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(w.into_inner()?)
    };
    let parts: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = d
            .hosts
            .chunks(per)
            .map(|c| crate::util::threads::spawn_or_run(s, move || render(c)))
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    for p in parts {
        out.extend_from_slice(&p?);
    }
    Ok(out)
}

/// `flagged_hosts.csv`: flagged hosts with the reasons.
pub(crate) fn flagged_hosts_csv(d: &Detection, raw: bool) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(host_row_header(d, &["what", "top_features", "why"]))?;
    for h in d.flagged() {
        let mut r = host_row(h, raw);
        r.push(sentence(d, h));
        r.push(
            top_reasons(h)
                .iter()
                .map(|&j| d.feature_names[j])
                .collect::<Vec<_>>()
                .join(";"),
        );
        r.push(explain(d, h));
        w.write_record(r)?;
    }
    Ok(w.into_inner()?)
}

#[derive(Serialize)]
struct MetricsJson<'a> {
    latmove_version: &'static str,
    inputs: Vec<String>,
    rows_read: u64,
    flows_used: u64,
    rows_skipped: std::collections::BTreeMap<&'static str, u64>,
    first_problems: &'a [crate::flows::RowProblem],
    non_finite_values: u64,
    negative_durations: u64,
    implausible_values: u64,
    unrecognised_timestamps: u64,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    input_notes: &'a std::collections::BTreeMap<String, u64>,
    features: &'a [&'static str],
    params: &'a crate::model::forest::IsolationForestParams,
    subsample: usize,
    detector: &'static str,
    window_secs: Option<u32>,
    allowed_hosts: Vec<String>,
    allowed_flows: u64,
    training_set: &'static str,
    training_hosts: usize,
    cross_fit_folds: usize,
    mean_prior_flows: f64,
    threshold: f64,
    hosts: usize,
    flagged_hosts: usize,
    flagged: Vec<String>,
    metrics: Option<&'a Metrics>,
}

/// `metrics.json`: the run's figures, machine-readable.
pub(crate) fn metrics_json(d: &Detection) -> Result<Vec<u8>> {
    let m = MetricsJson {
        latmove_version: env!("CARGO_PKG_VERSION"),
        inputs: d
            .stats
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        rows_read: d.stats.rows,
        flows_used: d.stats.flows,
        rows_skipped: d
            .stats
            .skipped
            .iter()
            .map(|(k, v)| (k.describe(), *v))
            .collect(),
        first_problems: &d.stats.problems,
        non_finite_values: d.stats.non_finite_values,
        negative_durations: d.stats.negative_durations,
        implausible_values: d.stats.implausible_values,
        unrecognised_timestamps: d.stats.bad_timestamps,
        input_notes: &d.stats.notes,
        features: &d.feature_names,
        params: &d.params,
        subsample: d.forest.psi,
        detector: if d.rules() {
            "zeek-style rules"
        } else {
            "isolation forest"
        },
        window_secs: d.window_secs,
        allowed_hosts: d
            .hosts
            .iter()
            .filter(|h| h.allowed)
            .map(|h| h.ip.to_string())
            .collect(),
        allowed_flows: d.allowed_flows,
        training_set: d.training_set,
        training_hosts: d.training_hosts,
        cross_fit_folds: d.folds,
        mean_prior_flows: d.preprocessor.mean_prior,
        threshold: d.threshold,
        hosts: d.hosts.len(),
        flagged_hosts: d.flagged().count(),
        flagged: d.flagged().map(|h| h.ip.to_string()).collect(),
        metrics: d.metrics.as_ref(),
    };
    let mut v = serde_json::to_vec_pretty(&m)?;
    v.push(b'\n');
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::push_shortest;
    use rand::Rng;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn shortest_floats_are_written_as_format_writes_them() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            1e17,
            1e22,
            1e-5,
            1e-7,
            123456789012345680.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
            16.6,
            540185.5168041859,
            // -94781654794270.625, a tie at two decimals.
            f64::from_bits(0xc2d5_8d04_b760_07a8),
            0.125,
            2.5,
            0.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..300_000 {
            // Any bit pattern, counts, ratios and decimal fractions.
            values.push(f64::from_bits(rng.r#gen()));
            values.push(rng.gen_range(0..10_000_000u64) as f64);
            values.push(rng.gen_range(0..100_000u64) as f64 / rng.gen_range(1..10_000u64) as f64);
            values.push(
                rng.gen_range(-1_000_000i64..1_000_000) as f64 / 10f64.powi(rng.gen_range(0..12)),
            );
            values.push(rng.gen_range(-1.0..1.0f64) * 10f64.powi(rng.gen_range(-30..30)));
            // Short binary fractions (ties between shortest decimals).
            values.push(
                rng.gen_range(-1i64 << 50..1 << 50) as f64 / (1u64 << rng.gen_range(1..12)) as f64,
            );
        }
        let mut out = String::new();
        for v in values {
            out.clear();
            push_shortest(&mut out, v);
            assert_eq!(out, format!("{v}"), "bits {:#x}", v.to_bits());
        }
    }
}
