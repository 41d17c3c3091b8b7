//! The two tables latmove shares with other engines (see
//! `docs/scale-out.md`): the normalised flow table (`latmove flows`), the
//! contract between latmove's readers and any SQL engine, and the feature
//! table (`latmove features`, or `sql/features.sql` run on that flow
//! table), which `train` and `score` take with `--features-table`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

pub(crate) mod read;
pub(crate) mod score;

use crate::flows::record::{FlowRecord, LabelTable};
use crate::flows::{self, ReadStats};
use crate::net;
pub(crate) use crate::output::tables::TableFormat;
use crate::output::tables::{Kind, TableWriter};
use crate::profile::features::{FeatureDef, FeatureTable};
use crate::profile::{FlowFacts, HostProfile, ProfileBuilder, ProfileOptions, Profiles};

/// The flow table's columns, in order.
pub(crate) const FLOW_COLUMNS: &[(&str, Kind)] = &[
    ("ts", Kind::Float),
    ("window_start", Kind::Int),
    ("minute_key", Kind::Int),
    ("slot_key", Kind::Int),
    ("src", Kind::Str),
    ("dst", Kind::Str),
    ("dport", Kind::Int),
    ("transport", Kind::Int),
    ("reoriented", Kind::Bool),
    ("answered", Kind::Bool),
    ("out_packets", Kind::Float),
    ("back_packets", Kind::Float),
    ("out_bytes", Kind::Float),
    ("back_bytes", Kind::Float),
    ("tiny", Kind::Bool),
    ("duration_us", Kind::Float),
    ("src_internal", Kind::Bool),
    ("dst_internal", Kind::Bool),
    ("dst_subnet", Kind::Str),
    ("sensitive_port", Kind::Bool),
    ("privileged_port", Kind::Bool),
    ("label", Kind::Str),
    ("attack", Kind::Bool),
];

/// What writing a flow table did.
pub(crate) struct FlowTableSummary {
    /// The reader's counts.
    pub(crate) stats: ReadStats,
    /// Rows written.
    pub(crate) rows: u64,
    /// Flows the allowlist dropped.
    pub(crate) allowed: u64,
}

/// Reads `inputs` and writes their flows, as profiling counts them, to
/// `out` (Parquet or CSV by its name), whole or not at all.
pub(crate) fn write_flow_table(
    inputs: &[PathBuf],
    options: &ProfileOptions,
    threads: usize,
    out: &Path,
) -> Result<FlowTableSummary> {
    let format = TableFormat::of_path(out)?;
    let files = flows::expand_inputs(inputs)?;
    crate::output::write::write_with(out, |w| {
        let mut table = TableWriter::new(w, format, FLOW_COLUMNS)?;
        let mut builder = ProfileBuilder::with_options(options.clone());
        let mut labels = LabelTable::default();
        let mut failed: Option<anyhow::Error> = None;
        let stats = flows::read_flows_threads(&files, threads, |f| {
            if failed.is_some() {
                return;
            }
            let r = FlowRecord::new(f, &mut labels);
            if let Some(facts) = builder.facts(&r)
                && let Err(e) = flow_row(&mut table, &facts, f.protocol, options, &labels)
            {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(FlowTableSummary {
            stats,
            rows: table.finish()?,
            allowed: builder.allowed_flows(),
        })
    })
}

/// One flow table row.
fn flow_row(
    t: &mut TableWriter<'_>,
    f: &FlowFacts,
    protocol: Option<u8>,
    options: &ProfileOptions,
    labels: &LabelTable,
) -> Result<()> {
    t.float(f.ts);
    t.int(
        options
            .window_secs
            .and_then(|s| Some(f.window(s)? * i64::from(s))),
    );
    t.int(f.minute());
    t.int(f.peak_slot());
    t.str(Some(&f.src.to_string()));
    t.str(Some(&f.dst.to_string()));
    t.int(Some(i64::from(f.dport)));
    t.int(protocol.map(i64::from));
    t.bool(Some(f.reoriented));
    t.bool(f.answered);
    t.float(f.out_packets);
    t.float(f.back_packets);
    t.float(f.out_bytes);
    t.float(f.back_bytes);
    t.bool(f.tiny);
    t.float(f.duration_us);
    t.bool(Some(f.src_internal));
    t.bool(Some(f.dst_internal));
    t.str(f.dst_internal.then(|| subnet_text(f.dst)).as_deref());
    t.bool(Some(net::is_sensitive_port(f.dport)));
    t.bool(Some(f.dport < 1024));
    match f.label {
        None => {
            t.str(None);
            t.bool(None);
        }
        Some(None) => {
            t.str(Some("BENIGN"));
            t.bool(Some(false));
        }
        Some(Some(id)) => {
            t.str(Some(&String::from_utf8_lossy(labels.raw(id))));
            t.bool(Some(true));
        }
    }
    t.end_row()
}

/// The /24 (IPv4) or /64 (IPv6) an address is in, as a CIDR: the
/// `internal_subnets` unit.
fn subnet_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => format!("{}/24", std::net::Ipv4Addr::from(u32::from(v) & !0xff)),
        IpAddr::V6(v) => format!(
            "{}/64",
            std::net::Ipv6Addr::from(u128::from(v) & !((1u128 << 64) - 1))
        ),
    }
}

/// The feature table's columns before the features.
pub(crate) const FEATURE_ID_COLUMNS: &[(&str, Kind)] = &[
    ("ip", Kind::Str),
    ("window_start", Kind::Int),
    ("flows", Kind::Int),
    ("first_seen", Kind::Float),
    ("last_seen", Kind::Float),
    ("internal", Kind::Bool),
    ("inbound_flows", Kind::Int),
    ("label", Kind::Str),
    ("attack_label", Kind::Str),
];

/// The feature table's columns after the features: the flows behind the
/// means per flow (see [`FeatureTable::shrunk_means`]).
pub(crate) const FEATURE_SUPPORT_COLUMNS: &[(&str, Kind)] =
    &[("durations_known", Kind::Int), ("volumes_known", Kind::Int)];

/// Every column of a feature table with `defs`.
pub(crate) fn feature_columns(defs: &[FeatureDef]) -> Vec<(&'static str, Kind)> {
    FEATURE_ID_COLUMNS
        .iter()
        .copied()
        .chain(defs.iter().map(|d| (d.name, Kind::Float)))
        .chain(FEATURE_SUPPORT_COLUMNS.iter().copied())
        .collect()
}

/// The scored entities of `profiles`, in order: each host's windows in
/// time order, or the whole host when it has none; with the host's index
/// and the window's start (seconds).
pub(crate) fn entity_rows(profiles: &Profiles) -> Vec<(usize, Option<i64>, &HostProfile)> {
    let mut out = Vec::with_capacity(profiles.windows.len() + profiles.hosts.len());
    let secs = profiles.window_secs.map_or(0, i64::from);
    let mut w = 0;
    for (h, host) in profiles.hosts.iter().enumerate() {
        while w < profiles.windows.len() && profiles.windows[w].ip < host.ip {
            w += 1;
        }
        let first = w;
        while w < profiles.windows.len() && profiles.windows[w].ip == host.ip {
            let win = &profiles.windows[w];
            out.push((h, Some(win.index * secs), &win.profile));
            w += 1;
        }
        if w == first {
            out.push((h, None, host));
        }
    }
    out
}

/// A host's most frequent attack label (ties by text), as the SQL picks
/// it.
fn top_attack_label(profiles: &Profiles, host: &HostProfile) -> Option<String> {
    host.attack_labels
        .iter()
        .map(|&(id, n)| (n, &profiles.labels[id as usize]))
        .min_by(|a, b| b.0.cmp(&a.0).then(a.1.as_bytes().cmp(b.1.as_bytes())))
        .map(|(_, l)| l.clone())
}

/// Writes the feature table of `profiles` (every scored entity) to `out`,
/// whole or not at all; returns the rows written.
pub(crate) fn write_feature_table(
    profiles: &Profiles,
    defs: &[FeatureDef],
    threads: usize,
    out: &Path,
) -> Result<u64> {
    let format = TableFormat::of_path(out)?;
    let rows = entity_rows(profiles);
    let entity_profiles: Vec<&HostProfile> = rows.iter().map(|r| r.2).collect();
    let table = FeatureTable::build_threads(&entity_profiles, defs, threads);
    let columns = feature_columns(defs);
    crate::output::write::write_with(out, |w| {
        let mut t = TableWriter::new(w, format, &columns)?;
        let mut top: Option<(usize, Option<String>)> = None;
        for (i, (h, start, p)) in rows.iter().enumerate() {
            let host = &profiles.hosts[*h];
            if top.as_ref().is_none_or(|t| t.0 != *h) {
                top = Some((*h, top_attack_label(profiles, host)));
            }
            t.str(Some(&host.ip.to_string()));
            t.int(*start);
            t.int(Some(host.flows as i64));
            t.float(host.first_seen);
            t.float(host.last_seen);
            t.bool(Some(host.internal));
            t.int(Some(host.inbound_flows as i64));
            t.str(
                host.is_attack()
                    .map(|a| if a { "attack" } else { "benign" }),
            );
            t.str(top.as_ref().and_then(|t| t.1.as_deref()));
            for v in table.values.row(i) {
                t.float(Some(*v));
            }
            t.int(Some(p.duration_count as i64));
            t.int(Some(p.volume_known as i64));
            t.end_row()?;
        }
        t.finish()
    })
}

/// `sql/features.sql`, as shipped.
const FEATURES_SQL: &str = include_str!("../../sql/features.sql");

/// The engines `latmove sql` prints for.
pub(crate) const DIALECTS: &[&str] = &["spark", "duckdb", "trino", "clickhouse"];

/// `sql/features.sql` for `dialect`: the lines marked for another engine
/// left out.
pub(crate) fn features_sql(dialect: &str) -> Result<String> {
    anyhow::ensure!(
        DIALECTS.contains(&dialect),
        "--dialect must be one of {}, got '{dialect}'",
        DIALECTS.join(", ")
    );
    let mut out = String::with_capacity(FEATURES_SQL.len());
    for line in FEATURES_SQL.lines() {
        if let Some((_, marked)) = line.split_once("-- dialect: ")
            && marked.trim() != dialect
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}
