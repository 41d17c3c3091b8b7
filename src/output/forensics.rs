//! Forensic report (`--report DIR`): one page per flagged host an analyst
//! can hand to incident response, an index, and a run manifest.
//!
//! A second pass over the inputs collects the flagged hosts' own flows
//! (re-oriented as profiling did, allowlisted ports left out), so memory
//! holds only those.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;
use serde_json::json;

use crate::detect::{DetectConfig, Detection, HostResult};
use crate::flows::timestamp::format_timestamp;
use crate::output::report::{explain, sentence};
use crate::output::write::write_file;
use crate::util::text::{csv_text, markdown_text, printable};

/// One contributing flow, oriented to the flagged host.
#[derive(Debug, Clone)]
struct Contrib {
    flow_id: String,
    dst: IpAddr,
    sport: Option<u16>,
    dport: u16,
    proto: Option<u8>,
    time: Option<f64>,
    label: String,
}

fn ip_file_name(ip: IpAddr) -> String {
    ip.to_string().replace([':', '.'], "-")
}

/// Whether `name` is one the report writes: the index, the manifest, or a
/// host's page, flows or timeline (`host-` and an address's digits, dots
/// and colons as dashes), so a user's own file in the directory stays.
fn is_report_file(name: &str) -> bool {
    if name == "index.md" || name == "manifest.json" {
        return true;
    }
    let Some(rest) = name.strip_prefix("host-") else {
        return false;
    };
    let stem = [".md", "-flows.csv", "-timeline.png"]
        .iter()
        .find_map(|end| rest.strip_suffix(end));
    stem.is_some_and(|ip| !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
}

/// Writes the report for every flagged host of `d` into `dir`.
pub(crate) fn write_report(
    cfg: &DetectConfig,
    d: &Detection,
    dir: &Path,
    command: &[String],
    raw: bool,
) -> Result<()> {
    let staged = super::write::Staged::begin(dir, "--report")?;
    let dir = staged.path();
    let flagged: Vec<&HostResult> = d.flagged().collect();
    let wanted: HashSet<IpAddr> = flagged.iter().map(|h| h.ip).collect();
    let files = crate::flows::expand_inputs(&cfg.inputs)?;
    let mut flows = flagged_flows(cfg, &files, &wanted)?;

    let mut index = String::new();
    let _ = writeln!(index, "# latmove forensic report\n");
    let _ = writeln!(
        index,
        "{} flagged host(s) of {}; threshold {:.4}. Inputs and parameters: [manifest.json](manifest.json).\n",
        flagged.len(),
        d.hosts.len(),
        d.threshold
    );
    let _ = writeln!(
        index,
        "| rank | host | score | label | what |\n|---|---|---|---|---|"
    );
    for h in &flagged {
        let name = ip_file_name(h.ip);
        let mut mine = flows.remove(&h.ip).unwrap_or_default();
        mine.sort_by(|a, b| {
            a.time
                .unwrap_or(f64::MIN)
                .total_cmp(&b.time.unwrap_or(f64::MIN))
        });
        host_page(d, h, (&mine, raw), dir, &name)?;
        let label = markdown_text(&h.attack_labels.join(", "));
        let _ = writeln!(
            index,
            "| {} | [{}](host-{name}.md) | {:.3} | {} | {} |",
            h.rank,
            h.ip,
            h.score,
            label,
            sentence(d, h).replace('|', "/")
        );
    }
    write_file(&dir.join("index.md"), index.as_bytes())?;

    write_manifest(cfg, d, dir, (command, &files))?;
    staged.commit(is_report_file)
}

/// The flows of the hosts in `wanted`, read again from `files`, oriented
/// and allowlisted as profiling did.
fn flagged_flows(
    cfg: &DetectConfig,
    files: &[std::path::PathBuf],
    wanted: &HashSet<IpAddr>,
) -> Result<HashMap<IpAddr, Vec<Contrib>>> {
    let mut flows: HashMap<IpAddr, Vec<Contrib>> = HashMap::new();
    crate::flows::read_flows(files, |f| {
        let reversed = cfg.profile.orient
            && f.src_port
                .is_some_and(|sp| crate::net::is_reply_direction(sp, f.dst_port));
        let (src, sport, dst, dport) = if reversed {
            (
                f.dst_ip,
                Some(f.dst_port),
                f.src_ip,
                f.src_port.unwrap_or(0),
            )
        } else {
            (f.src_ip, f.src_port, f.dst_ip, f.dst_port)
        };
        if !wanted.contains(&src) || cfg.allow.flow_allowed(src, dport) {
            return;
        }
        flows.entry(src).or_default().push(Contrib {
            flow_id: f
                .flow_id
                .map(|b| printable(&String::from_utf8_lossy(b)).into_owned())
                .unwrap_or_default(),
            dst,
            sport,
            dport,
            proto: f.protocol,
            time: f.timestamp,
            label: f
                .label
                .map(|b| printable(&String::from_utf8_lossy(b)).into_owned())
                .unwrap_or_default(),
        });
    })?;
    Ok(flows)
}

/// The run manifest: version, command, inputs with SHA-256, parameters.
fn write_manifest(
    cfg: &DetectConfig,
    d: &Detection,
    dir: &Path,
    (command, files): (&[String], &[std::path::PathBuf]),
) -> Result<()> {
    let flagged: Vec<&HostResult> = d.flagged().collect();
    let inputs: Vec<serde_json::Value> = files
        .iter()
        .map(|f| {
            let (sha, bytes) = crate::model::file::sha256_file(f)?;
            Ok(json!({"path": f.display().to_string(), "sha256": sha, "bytes": bytes}))
        })
        .collect::<Result<_>>()?;
    let manifest = json!({
        "latmove_version": env!("CARGO_PKG_VERSION"),
        "command": command,
        "inputs": inputs,
        "train_inputs": cfg.train_inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "parameters": d.params,
        "features": d.feature_names,
        "window_secs": d.window_secs,
        "orient": cfg.profile.orient,
        "internal": cfg.profile.network.internal.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "score_external": cfg.score_external,
        "cross_fit_folds": d.folds,
        "threshold": d.threshold,
        "flagged": flagged.iter().map(|h| h.ip.to_string()).collect::<Vec<_>>(),
    });
    let mut bytes = serde_json::to_vec_pretty(&manifest)?;
    bytes.push(b'\n');
    write_file(&dir.join("manifest.json"), &bytes)
}

fn top_counts<K: Ord + Clone + std::fmt::Display>(
    items: impl Iterator<Item = K>,
    n: usize,
) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<K, usize> = BTreeMap::new();
    for k in items {
        *counts.entry(k).or_default() += 1;
    }
    let mut v: Vec<(K, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter()
        .take(n)
        .map(|(k, c)| (k.to_string(), c))
        .collect()
}

fn host_page(
    d: &Detection,
    h: &HostResult,
    (flows, raw): (&[Contrib], bool),
    dir: &Path,
    name: &str,
) -> Result<()> {
    let mut md = String::new();
    let t = |x: Option<f64>| x.map(format_timestamp).unwrap_or_else(|| "unknown".into());
    let _ = writeln!(md, "# {} (rank {}, score {:.3})\n", h.ip, h.rank, h.score);
    let _ = writeln!(md, "**What:** {}.\n", sentence(d, h));
    let _ = writeln!(md, "**Why:** {}.\n", explain(d, h));
    let _ = writeln!(
        md,
        "- first seen: {}\n- last seen: {}",
        t(h.first_seen),
        t(h.last_seen)
    );
    if let Some(w) = h.peak_window_start {
        let _ = writeln!(
            md,
            "- peak window starts: {}; windows above the threshold: {}{}",
            format_timestamp(w),
            h.windows_flagged,
            h.first_flagged_window
                .map(|t| format!(", the first from {}", format_timestamp(t)))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        md,
        "- flows: {} (all exported in [host-{name}-flows.csv](host-{name}-flows.csv))",
        flows.len()
    );
    if let Some(g) = d.groups.iter().find(|g| g.name == h.peer_group) {
        let _ = writeln!(
            md,
            "- peer group: {}{}",
            markdown_text(&g.name),
            match (g.threshold, h.peer_score) {
                (Some(t), Some(s)) =>
                    format!(" (score among its peers {s:.3}, their threshold {t:.3})"),
                _ => " (judged against all hosts only: too few training hosts in the group)"
                    .to_string(),
            }
        );
    }
    if let Some(text) = h.own_past() {
        let _ = writeln!(md, "- its own past: {}", markdown_text(&text));
    }
    if !h.attack_labels.is_empty() {
        let _ = writeln!(
            md,
            "- labels in the data: {}",
            markdown_text(&h.attack_labels.join(", "))
        );
    }
    let _ = writeln!(md, "\n![timeline](host-{name}-timeline.png)\n");
    let _ = writeln!(
        md,
        "## Top destination hosts\n\n| host | flows |\n|---|---|"
    );
    for (k, c) in top_counts(flows.iter().map(|f| f.dst), 10) {
        let _ = writeln!(md, "| {k} | {c} |");
    }
    let _ = writeln!(
        md,
        "\n## Top destination ports\n\n| port | flows |\n|---|---|"
    );
    for (k, c) in top_counts(flows.iter().map(|f| f.dport), 10) {
        let _ = writeln!(md, "| {k} | {c} |");
    }
    let _ = writeln!(
        md,
        "\n## Feature values ({})\n\n| feature | value | robust units from the median |\n|---|---|---|",
        if h.peak_window_start.is_some() {
            "peak window"
        } else {
            "whole host"
        }
    );
    for (j, n) in d.feature_names.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {n} | {} | {:+.1} |",
            crate::output::report::fmt_value(h.features[j]),
            h.robust_z[j]
        );
    }
    write_file(&dir.join(format!("host-{name}.md")), md.as_bytes())?;

    write_file(
        &dir.join(format!("host-{name}-flows.csv")),
        &flows_csv(h, flows, raw)?,
    )?;
    timeline(h, flows, &dir.join(format!("host-{name}-timeline.png")))
}

/// A flagged host's flows as CSV; unless `raw`, no text cell can start a
/// spreadsheet formula.
fn flows_csv(h: &HostResult, flows: &[Contrib], raw: bool) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "flow_id",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "protocol",
        "timestamp",
        "label",
    ])?;
    let cell = |s: &str| {
        if raw {
            s.to_string()
        } else {
            csv_text(s).into_owned()
        }
    };
    for f in flows {
        w.write_record([
            cell(&f.flow_id),
            h.ip.to_string(),
            f.sport.map_or(String::new(), |p| p.to_string()),
            f.dst.to_string(),
            f.dport.to_string(),
            f.proto.map_or(String::new(), |p| p.to_string()),
            f.time.map(format_timestamp).unwrap_or_default(),
            cell(&f.label),
        ])?;
    }
    Ok(w.into_inner()?)
}

/// The timeline's bucket in seconds and its unit: a minute, unless the
/// host was active for under 20 minutes (10 seconds) or 2 minutes (a
/// second), so a short burst is not one bar.
fn timeline_bucket(span_secs: f64) -> (f64, &'static str) {
    if span_secs < 120.0 {
        (1.0, "second")
    } else if span_secs < 1200.0 {
        (10.0, "10 seconds")
    } else {
        (60.0, "minute")
    }
}

/// Flows and new destinations per bucket (see [`timeline_bucket`]) over
/// the host's activity.
fn timeline(h: &HostResult, flows: &[Contrib], path: &Path) -> Result<()> {
    let times = flows.iter().filter_map(|f| f.time);
    let (lo, hi) = times.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
        (a.min(t), b.max(t))
    });
    let (bucket, unit) = timeline_bucket(hi - lo);
    let mut per_min: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    let mut seen: HashSet<(IpAddr, u16)> = HashSet::new();
    for f in flows {
        let Some(t) = f.time else { continue };
        let m = (t / bucket).floor() as i64;
        let e = per_min.entry(m).or_default();
        e.0 += 1;
        if seen.insert((f.dst, f.dport)) {
            e.1 += 1;
        }
    }
    let (Some((&m0, _)), Some((&m1, _))) = (per_min.first_key_value(), per_min.last_key_value())
    else {
        return Ok(());
    };
    let ymax = per_min.values().map(|v| v.0.max(v.1)).max().unwrap_or(1) as f64 * 1.15 + 1.0;
    crate::output::charts::draw_png_pub(path, (1100, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: flows and new (host, port) destinations per {unit}",
                    h.ip
                ),
                (crate::output::charts::FAMILY, 20),
            )
            .margin(14)
            .margin_right(40)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(m0 as f64..(m1 + 1) as f64, 0f64..ymax)
            .map_err(crate::output::charts::err)?;
        chart
            .configure_mesh()
            .x_desc("time (flow files' clock)")
            .y_desc(format!("per {unit}"))
            .y_label_formatter(&|v| crate::output::report::fmt_value(v.round()))
            .x_labels(8)
            .x_label_formatter(&|m| {
                let t = format_timestamp(m * bucket);
                // hh:mm, or hh:mm:ss for buckets under a minute.
                t[11..if bucket < 60.0 { 19 } else { 16 }].to_string()
            })
            .label_style((crate::output::charts::FAMILY, 13))
            .draw()
            .map_err(crate::output::charts::err)?;
        let grey = RGBColor(150, 150, 150);
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(per_min.iter().map(|(m, v)| {
                Rectangle::new(
                    [(*m as f64, 0.0), (*m as f64 + 0.9, v.0 as f64)],
                    grey.mix(0.7).filled(),
                )
            }))
            .map_err(crate::output::charts::err)?
            .label("flows")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], grey.filled()));
        chart
            .draw_series(LineSeries::new(
                per_min.iter().map(|(m, v)| (*m as f64 + 0.45, v.1 as f64)),
                red.stroke_width(2),
            ))
            .map_err(crate::output::charts::err)?
            .label("new destinations")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], red.stroke_width(2)));
        if per_min.len() == 1 {
            // One bucket: a line of one point draws nothing; mark it.
            chart
                .draw_series(
                    per_min
                        .iter()
                        .map(|(m, v)| Circle::new((*m as f64 + 0.45, v.1 as f64), 4, red.filled())),
                )
                .map_err(crate::output::charts::err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((crate::output::charts::FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(crate::output::charts::err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_activity_gets_short_timeline_buckets() {
        assert_eq!(super::timeline_bucket(3.0), (1.0, "second"));
        assert_eq!(super::timeline_bucket(600.0), (10.0, "10 seconds"));
        assert_eq!(super::timeline_bucket(8.0 * 3600.0), (60.0, "minute"));
    }

    #[test]
    fn only_the_reports_own_files_are_replaced() {
        for ours in [
            "index.md",
            "manifest.json",
            "host-192-168-10-8.md",
            "host-192-168-10-8-flows.csv",
            "host-fd00--99-timeline.png",
        ] {
            assert!(super::is_report_file(ours), "{ours}");
        }
        for theirs in [
            "host-notes.md",
            "notes.md",
            "host-.md",
            "host-10-0-0-1.txt",
            "hosts.csv",
        ] {
            assert!(!super::is_report_file(theirs), "{theirs}");
        }
    }
}
