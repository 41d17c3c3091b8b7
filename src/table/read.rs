//! Reading a feature table (Parquet, a directory of Parquet parts such as
//! Spark writes, or CSV) in batches: columns found by name, every bad row
//! skipped, counted and the first ones reported with file, row, column and
//! value.

use std::borrow::Cow;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow_array::{Array, RecordBatch, RecordBatchReader};

use crate::flows::formats::parquet::{stored_num, string};
use crate::flows::{MAX_PROBLEMS_KEPT, ReadStats, RowProblem, SkipReason, parse_ip};
use crate::profile::features::FeatureDef;

use super::{FEATURE_ID_COLUMNS, FEATURE_SUPPORT_COLUMNS};

/// Rows handed on at a time.
pub(crate) const BATCH_ROWS: usize = 65_536;

/// One row of a feature table: an entity (a host in a window, or a whole
/// host) and who its host is.
#[derive(Debug, Clone)]
pub(crate) struct EntityRow {
    pub ip: IpAddr,
    /// The window's start (seconds); `None` for a whole host.
    pub window_start: Option<i64>,
    /// The host's flows (all windows).
    pub flows: u64,
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    /// `None` when the table has no `internal` column.
    pub internal: Option<bool>,
    /// Flows other hosts started to the host (0 when the table does not
    /// say: a table written before the column existed).
    pub inbound: u64,
    /// `Some(true)` attack, `Some(false)` benign, `None` unlabelled.
    pub label: Option<bool>,
    pub attack_label: Option<String>,
    /// The features, in the asked order.
    pub features: Vec<f64>,
    /// `durations_known`, `volumes_known`.
    pub support: [u64; 2],
}

/// The files of `paths`: each file as given; a directory's `.parquet`,
/// `.pq` and `.csv` files at any depth (Spark's `day=.../part-*`), in name
/// order, passing over names that start with `_` or `.` (`_SUCCESS`,
/// checksums).
pub(crate) fn table_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading the directory {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for p in entries {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_none_or(|n| n.starts_with('_') || n.starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                walk(&p, out)?;
            } else if super::TableFormat::of_path(&p).is_ok() {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            anyhow::ensure!(p.exists(), "{}: no such file", p.display());
            out.push(p.clone());
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no feature table (.parquet or .csv) in {}",
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

/// Where the columns are in one file.
struct Columns {
    ip: usize,
    window_start: usize,
    flows: Option<usize>,
    first_seen: Option<usize>,
    last_seen: Option<usize>,
    internal: Option<usize>,
    inbound: Option<usize>,
    label: Option<usize>,
    attack_label: Option<usize>,
    features: Vec<usize>,
    support: [usize; 2],
}

impl Columns {
    /// Finds the columns by name (ASCII case ignored); an error names the
    /// file and every column missing.
    fn find(path: &Path, names: &[String], defs: &[FeatureDef]) -> Result<Columns> {
        let at = |n: &str| names.iter().position(|h| h.trim().eq_ignore_ascii_case(n));
        let mut missing: Vec<&str> = Vec::new();
        let mut need = |n: &'static str| {
            at(n).unwrap_or_else(|| {
                missing.push(n);
                0
            })
        };
        let ip = need("ip");
        let window_start = need("window_start");
        let features: Vec<usize> = defs.iter().map(|d| need(d.name)).collect();
        let support = [
            need(FEATURE_SUPPORT_COLUMNS[0].0),
            need(FEATURE_SUPPORT_COLUMNS[1].0),
        ];
        if !missing.is_empty() {
            anyhow::bail!(
                "{}: not a feature table: no column {} (`latmove features` and sql/features.sql write \
                 {} and a column per feature)",
                path.display(),
                missing
                    .iter()
                    .map(|m| format!("'{m}'"))
                    .collect::<Vec<_>>()
                    .join(", "),
                FEATURE_ID_COLUMNS
                    .iter()
                    .map(|c| c.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(Columns {
            ip,
            window_start,
            flows: at("flows"),
            first_seen: at("first_seen"),
            last_seen: at("last_seen"),
            internal: at("internal"),
            inbound: at("inbound_flows"),
            label: at("label"),
            attack_label: at("attack_label"),
            features,
            support,
        })
    }
}

/// A cell, whatever the file stores it as.
enum Cell<'a> {
    Null,
    Num(f64),
    Text(Cow<'a, str>),
}

impl Cell<'_> {
    fn shown(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Num(v) => v.to_string(),
            Cell::Text(t) => crate::util::text::printable(t).chars().take(80).collect(),
        }
    }
}

/// Why a row is skipped: the reason, the column and the cell.
type Bad = (SkipReason, &'static str, String);

/// One row from its cells (`get` gives the cell of a column index).
fn parse_row<'a>(
    get: impl Fn(usize) -> Cell<'a>,
    c: &Columns,
    defs: &[FeatureDef],
) -> Result<EntityRow, Bad> {
    let num = |i: usize, name: &'static str| -> Result<Option<f64>, Bad> {
        match get(i) {
            Cell::Null => Ok(None),
            Cell::Num(v) if v.is_finite() => Ok(Some(v)),
            Cell::Text(t) if t.trim().is_empty() => Ok(None),
            Cell::Text(t) => match t.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err((SkipReason::BadNumber, name, t.into_owned())),
            },
            other => Err((SkipReason::BadNumber, name, other.shown())),
        }
    };
    let count = |i: usize, name: &'static str| -> Result<Option<u64>, Bad> {
        match num(i, name)? {
            None => Ok(None),
            Some(v) if v >= 0.0 && v.fract() == 0.0 && v < 9.007e15 => Ok(Some(v as u64)),
            Some(_) => Err((SkipReason::BadNumber, name, get(i).shown())),
        }
    };
    let text = |i: usize| -> Option<String> {
        match get(i) {
            Cell::Null => None,
            Cell::Num(v) => Some(v.to_string()),
            Cell::Text(t) => (!t.trim().is_empty()).then(|| t.trim().to_string()),
        }
    };
    let ip = match get(c.ip) {
        Cell::Text(t) => parse_ip(t.trim().as_bytes())
            .ok_or_else(|| (SkipReason::BadSourceIp, "ip", t.clone().into_owned()))?,
        other => return Err((SkipReason::BadSourceIp, "ip", other.shown())),
    };
    let window_start = match num(c.window_start, "window_start")? {
        None => None,
        Some(v) if v.fract() == 0.0 && v.abs() < 9.007e15 => Some(v as i64),
        Some(_) => {
            return Err((
                SkipReason::BadNumber,
                "window_start",
                get(c.window_start).shown(),
            ));
        }
    };
    let mut features = Vec::with_capacity(defs.len());
    for (d, &i) in defs.iter().zip(&c.features) {
        let v = num(i, d.name)?.ok_or((SkipReason::BadNumber, d.name, String::new()))?;
        features.push(v);
    }
    let support = [
        count(c.support[0], "durations_known")?.unwrap_or(0),
        count(c.support[1], "volumes_known")?.unwrap_or(0),
    ];
    let flag = |i: Option<usize>, name: &'static str, yes: &[&str], no: &[&str]| {
        let Some(i) = i else { return Ok(None) };
        match get(i) {
            Cell::Null => Ok(None),
            Cell::Num(1.0) => Ok(Some(true)),
            Cell::Num(0.0) => Ok(Some(false)),
            Cell::Text(t) if t.trim().is_empty() => Ok(None),
            Cell::Text(t) if yes.iter().any(|y| t.trim().eq_ignore_ascii_case(y)) => Ok(Some(true)),
            Cell::Text(t) if no.iter().any(|n| t.trim().eq_ignore_ascii_case(n)) => Ok(Some(false)),
            other => Err((SkipReason::BadValue, name, other.shown())),
        }
    };
    Ok(EntityRow {
        ip,
        window_start,
        flows: match c.flows {
            Some(i) => count(i, "flows")?.unwrap_or(0),
            None => 0,
        },
        first_seen: c
            .first_seen
            .map(|i| num(i, "first_seen"))
            .transpose()?
            .flatten(),
        last_seen: c
            .last_seen
            .map(|i| num(i, "last_seen"))
            .transpose()?
            .flatten(),
        inbound: match c.inbound {
            Some(i) => count(i, "inbound_flows")?.unwrap_or(0),
            None => 0,
        },
        internal: flag(
            c.internal,
            "internal",
            &["true", "t", "1"],
            &["false", "f", "0"],
        )?,
        label: flag(c.label, "label", &["attack"], &["benign"])?,
        // Shown in the summary and the pages: control characters escaped,
        // as a flow's label is.
        attack_label: c
            .attack_label
            .and_then(text)
            .map(|l| crate::util::text::printable(&l).into_owned()),
        features,
        support,
    })
}

/// Counts a skipped row and keeps its place when it is among the first.
fn skipped(stats: &mut ReadStats, file: &Path, row: u64, (reason, column, value): Bad) {
    *stats.skipped.entry(reason).or_default() += 1;
    if stats.problems.len() < MAX_PROBLEMS_KEPT {
        stats.problems.push(RowProblem {
            file: file.display().to_string(),
            line: row,
            column: column.to_string(),
            value,
            reason: reason.describe().to_string(),
        });
    }
}

/// Reads every table file in `files`, handing rows on in batches of at
/// most [`BATCH_ROWS`]; bad rows are counted in `stats` (for a CSV their
/// line, for Parquet their row number, 1 the first row).
pub(crate) fn read_rows(
    files: &[PathBuf],
    defs: &[FeatureDef],
    stats: &mut ReadStats,
    sink: &mut dyn FnMut(Vec<EntityRow>) -> Result<()>,
) -> Result<()> {
    stats.feature_table = true;
    for file in files {
        stats.files.push(file.clone());
        match super::TableFormat::of_path(file)? {
            super::TableFormat::Csv => read_csv(file, defs, stats, sink)?,
            super::TableFormat::Parquet => read_parquet(file, defs, stats, sink)?,
        }
    }
    Ok(())
}

/// `cell` without the CR of a CRLF line end.
fn strip_cr(cell: &[u8]) -> &[u8] {
    cell.strip_suffix(b"\r").unwrap_or(cell)
}

fn read_csv(
    file: &Path,
    defs: &[FeatureDef],
    stats: &mut ReadStats,
    sink: &mut dyn FnMut(Vec<EntityRow>) -> Result<()>,
) -> Result<()> {
    let f =
        crate::flows::open_maybe_gz(file).with_context(|| format!("opening {}", file.display()))?;
    // Records end at LF only, so the reader's line numbers are the file's
    // physical lines whatever the line ends (with CRLF ends the csv crate
    // counts one line less); a CR before the LF is taken off the last cell.
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(f);
    let names: Vec<String> = r
        .byte_headers()
        .with_context(|| format!("{}: reading the header", file.display()))?
        .iter()
        .map(|h| String::from_utf8_lossy(strip_cr(h)).into_owned())
        .collect();
    let cols = Columns::find(file, &names, defs)?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut record = csv::ByteRecord::new();
    loop {
        match r.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => anyhow::bail!("{}:{}: {e}", file.display(), r.position().line()),
        }
        // Where the record starts (the reader's own position lags a line
        // behind after a CRLF line end).
        let line = record
            .position()
            .map_or_else(|| r.position().line(), csv::Position::line);
        if record.len() == 1 && strip_cr(&record[0]).is_empty() {
            // A blank line (LF or CRLF), as the csv crate passes over.
            continue;
        }
        stats.rows += 1;
        if record.len() != names.len() {
            skipped(
                stats,
                file,
                line,
                (
                    SkipReason::FieldCount,
                    "",
                    format!("{} fields", record.len()),
                ),
            );
            continue;
        }
        // A cell that is not UTF-8 is read lossily: as a number or an
        // address it is then refused with the row, as a label kept.
        let last = record.len() - 1;
        let get = |i: usize| match record
            .get(i)
            .map(|t| if i == last { strip_cr(t) } else { t })
        {
            Some(t) if !t.is_empty() => Cell::Text(String::from_utf8_lossy(t)),
            _ => Cell::Null,
        };
        match parse_row(get, &cols, defs) {
            Ok(row) => batch.push(row),
            Err(bad) => skipped(stats, file, line, bad),
        }
        if batch.len() == BATCH_ROWS {
            stats.flows += batch.len() as u64;
            sink(std::mem::replace(
                &mut batch,
                Vec::with_capacity(BATCH_ROWS),
            ))?;
        }
    }
    stats.flows += batch.len() as u64;
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(())
}

fn read_parquet(
    file: &Path,
    defs: &[FeatureDef],
    stats: &mut ReadStats,
    sink: &mut dyn FnMut(Vec<EntityRow>) -> Result<()>,
) -> Result<()> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!("{}: not a readable Parquet file: {e}", file.display())
    };
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| bad(&e))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| bad(&e))?;
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let cols = Columns::find(file, &names, defs)?;
    let mut row_number = 0u64;
    for b in reader {
        let b: RecordBatch = b.map_err(|e| bad(&e))?;
        let mut batch = Vec::with_capacity(b.num_rows());
        for i in 0..b.num_rows() {
            row_number += 1;
            stats.rows += 1;
            let get = |c: usize| {
                let a = b.column(c);
                if a.is_null(i) {
                    Cell::Null
                } else if let Some(v) = stored_num(a, i) {
                    Cell::Num(v)
                } else if let Some(t) = string(a, i) {
                    Cell::Text(t)
                } else {
                    Cell::Text(Cow::Owned(format!("a {} value", a.data_type())))
                }
            };
            match parse_row(get, &cols, defs) {
                Ok(row) => batch.push(row),
                Err(bad) => skipped(stats, file, row_number, bad),
            }
        }
        stats.flows += batch.len() as u64;
        if !batch.is_empty() {
            sink(batch)?;
        }
    }
    Ok(())
}
