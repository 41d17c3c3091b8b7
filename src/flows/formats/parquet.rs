//! Parquet flow tables (a file, or a directory of them), read in record
//! batches so memory stays flat in the table's size.
//!
//! Columns are found by name, nested ones by their dotted path
//! (`src_endpoint.ip`), through one alias list per field: latmove's
//! normalised names (`ts`, `src_ip`, `src_port`, `dst_ip`, `dst_port`,
//! `proto`, `duration`, `src_pkts`, `dst_pkts`, `src_bytes`, `dst_bytes`,
//! `answered`, `label`), Zeek's (`id.orig_h`, `orig_pkts`, `conn_state`,
//! ...), OCSF's (`src_endpoint.ip`, `dst_endpoint.port`,
//! `traffic.bytes_in`, `start_time` ...: Amazon Security Lake), and VPC
//! flow logs' (`srcaddr`, `dstaddr`, `srcport`, `dstport`, `packets`,
//! `bytes`, `start`, `end`, `action`, `tcp_flags`).
//!
//! What a table says about direction follows its layout: with Zeek's
//! `conn_state` the originator is the initiator and the state tells the
//! answer (as in conn.log); a table with both directions' counts has the
//! initiator as its source; VPC flow log records are one direction each
//! and are paired like NetFlow records (a `REJECT`ed one went
//! unanswered). Numeric times may be in seconds, milliseconds,
//! microseconds or nanoseconds (told by their size, or by the column's
//! timestamp type); OCSF durations are milliseconds, others seconds.
//! Addresses may be text, 4 or 16 bytes, or an IPv4 number.

use std::borrow::Cow;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Fields, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::nfdump::{Half, Pairing};
use super::{Emit, protocol, timed_flow};
use crate::flows::{Flow, FlowMeta, ReadError, ReadStats, Reply, SkipReason, parse_ip};

/// Rows per record batch.
const BATCH_ROWS: usize = 16_384;

/// The fields a table may give, with their names in each layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Time,
    End,
    Duration,
    SrcIp,
    SrcPort,
    DstIp,
    DstPort,
    Proto,
    FwdPkts,
    BwdPkts,
    FwdBytes,
    BwdBytes,
    Answered,
    ConnState,
    History,
    Action,
    TcpFlags,
    Label,
    Id,
}

impl Want {
    const ALL: [Want; 19] = [
        Want::Time,
        Want::End,
        Want::Duration,
        Want::SrcIp,
        Want::SrcPort,
        Want::DstIp,
        Want::DstPort,
        Want::Proto,
        Want::FwdPkts,
        Want::BwdPkts,
        Want::FwdBytes,
        Want::BwdBytes,
        Want::Answered,
        Want::ConnState,
        Want::History,
        Want::Action,
        Want::TcpFlags,
        Want::Label,
        Want::Id,
    ];

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Want::Time => TIME,
            Want::End => &["end_time", "end", "lastseen", "ltime", "te", "flow_end"],
            Want::Duration => &["duration", "dur", "td"],
            Want::SrcIp => SRC_IP,
            Want::SrcPort => SRC_PORT,
            Want::DstIp => DST_IP,
            Want::DstPort => DST_PORT,
            Want::Proto => PROTO,
            Want::FwdPkts => FWD_PKTS,
            Want::BwdPkts => BWD_PKTS,
            Want::FwdBytes => FWD_BYTES,
            Want::BwdBytes => BWD_BYTES,
            Want::Answered => &["answered"],
            Want::ConnState => &["conn_state"],
            Want::History => &["history"],
            Want::Action => &["action"],
            Want::TcpFlags => &["tcp_flags"],
            Want::Label => &["label"],
            Want::Id => &["uid", "flow_id"],
        }
    }
}

// The names of each field in latmove's, Zeek's, OCSF's and VPC flow
// logs' tables (and nfdump's and Argus's, for tables made from them).
const TIME: &[&str] = &[
    "ts",
    "timestamp",
    "start_time",
    "start",
    "time",
    "firstseen",
    "stime",
    "starttime",
    "flow_start",
];
const SRC_IP: &[&str] = &[
    "src_ip",
    "id.orig_h",
    "id_orig_h",
    "src_endpoint.ip",
    "srcaddr",
    "saddr",
    "source_ip",
    "sa",
];
const SRC_PORT: &[&str] = &[
    "src_port",
    "id.orig_p",
    "id_orig_p",
    "src_endpoint.port",
    "srcport",
    "sport",
    "source_port",
    "sp",
];
const DST_IP: &[&str] = &[
    "dst_ip",
    "id.resp_h",
    "id_resp_h",
    "dst_endpoint.ip",
    "dstaddr",
    "daddr",
    "dest_ip",
    "destination_ip",
    "da",
];
const DST_PORT: &[&str] = &[
    "dst_port",
    "id.resp_p",
    "id_resp_p",
    "dst_endpoint.port",
    "dstport",
    "dport",
    "dest_port",
    "destination_port",
    "dp",
];
const PROTO: &[&str] = &[
    "proto",
    "protocol",
    "connection_info.protocol_num",
    "ip_proto",
    "pr",
];
const FWD_PKTS: &[&str] = &[
    "src_pkts",
    "orig_pkts",
    "traffic.packets_out",
    "spkts",
    "fwd_packets",
    "packets",
];
const BWD_PKTS: &[&str] = &[
    "dst_pkts",
    "resp_pkts",
    "traffic.packets_in",
    "dpkts",
    "bwd_packets",
];
const FWD_BYTES: &[&str] = &[
    "src_bytes",
    "orig_bytes",
    "traffic.bytes_out",
    "sbytes",
    "fwd_bytes",
    "bytes",
];
const BWD_BYTES: &[&str] = &[
    "dst_bytes",
    "resp_bytes",
    "traffic.bytes_in",
    "dbytes",
    "bwd_bytes",
];

/// Every leaf column's dotted path (lower case) and its route: the index
/// at each nesting level.
fn leaves(fields: &Fields, prefix: &str, route: &[usize], out: &mut Vec<(String, Vec<usize>)>) {
    for (i, f) in fields.iter().enumerate() {
        let name = format!("{prefix}{}", f.name().to_ascii_lowercase());
        let mut r = route.to_vec();
        r.push(i);
        match f.data_type() {
            DataType::Struct(children) => leaves(children, &format!("{name}."), &r, out),
            _ => out.push((name, r)),
        }
    }
}

/// How the table's rows are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Zeek's conn records.
    Zeek,
    /// One direction a record (VPC flow logs): paired.
    OneWay,
    /// Both directions a record, the source the initiator.
    BothWays,
}

struct Plan {
    routes: Vec<Option<Vec<usize>>>,
    names: Vec<String>,
    layout: Layout,
    duration_ms: bool,
}

impl Plan {
    fn new(path: &Path, fields: &Fields) -> Result<Plan, ReadError> {
        let mut all = Vec::new();
        leaves(fields, "", &[], &mut all);
        let find = |w: Want| {
            w.aliases()
                .iter()
                .find_map(|a| all.iter().find(|(n, _)| n == a))
                .cloned()
        };
        let found: Vec<Option<(String, Vec<usize>)>> = Want::ALL.iter().map(|w| find(*w)).collect();
        let has = |w: Want| found[w as usize].is_some();
        let missing: Vec<&'static str> = [Want::SrcIp, Want::DstIp]
            .iter()
            .filter(|w| !has(**w))
            .map(|w| w.aliases()[0])
            .collect();
        if !missing.is_empty() {
            return Err(ReadError::MissingColumns {
                file: path.to_path_buf(),
                missing,
                machine_learning_cve: false,
            });
        }
        let layout = if has(Want::ConnState) {
            Layout::Zeek
        } else if !has(Want::BwdPkts) && !has(Want::BwdBytes) {
            Layout::OneWay
        } else {
            Layout::BothWays
        };
        let duration_ms = all.iter().any(|(n, _)| n.starts_with("src_endpoint."));
        Ok(Plan {
            names: found
                .iter()
                .map(|f| f.as_ref().map(|(n, _)| n.clone()).unwrap_or_default())
                .collect(),
            routes: found.into_iter().map(|f| f.map(|(_, r)| r)).collect(),
            layout,
            duration_ms,
        })
    }
}

/// The columns of one batch, by [`Want`].
struct Batch {
    cols: Vec<Option<ArrayRef>>,
}

impl Batch {
    fn of(batch: &RecordBatch, plan: &Plan) -> Batch {
        let cols = plan
            .routes
            .iter()
            .map(|r| {
                let r = r.as_ref()?;
                let mut a: ArrayRef = batch.column(r[0]).clone();
                for i in &r[1..] {
                    let s = a.as_struct_opt()?;
                    a = s.column(*i).clone();
                }
                Some(a)
            })
            .collect();
        Batch { cols }
    }

    fn col(&self, w: Want) -> Option<&ArrayRef> {
        self.cols[w as usize].as_ref()
    }

    /// A number: a numeric column's (a timestamp column's in seconds), or
    /// a text column's parsed; `None` for other types.
    fn num(&self, w: Want, i: usize) -> Option<f64> {
        self.stored_num(w, i)
            .or_else(|| self.string(w, i)?.trim().parse().ok())
    }

    /// The value of a numeric, boolean or timestamp column (see
    /// [`stored_num`]).
    fn stored_num(&self, w: Want, i: usize) -> Option<f64> {
        stored_num(self.col(w)?, i)
    }

    /// The text of a string, binary or boolean column (see [`string`]).
    fn string(&self, w: Want, i: usize) -> Option<Cow<'_, str>> {
        string(self.col(w)?, i)
    }

    /// A cell as text: a text column's, or a number's digits.
    fn text(&self, w: Want, i: usize) -> Option<Cow<'_, str>> {
        self.string(w, i)
            .or_else(|| Some(Cow::Owned(self.stored_num(w, i)?.to_string())))
    }

    /// A port: `Ok(None)` when absent, an error unless 0 to 65535.
    fn port(&self, w: Want, i: usize) -> Result<Option<u16>, (SkipReason, Want)> {
        if self.col(w).is_none_or(|a| a.is_null(i)) {
            return Ok(None);
        }
        let n = self.num(w, i).ok_or((SkipReason::BadPort, w))?;
        if (0.0..=65535.0).contains(&n) && n.fract() == 0.0 {
            Ok(Some(n as u16))
        } else {
            Err((SkipReason::BadPort, w))
        }
    }

    /// An address: text, 4 or 16 bytes, or an IPv4 number.
    fn ip(&self, w: Want, i: usize) -> Option<IpAddr> {
        let a = self.col(w)?;
        if a.is_null(i) {
            return None;
        }
        match a.data_type() {
            DataType::FixedSizeBinary(4) => {
                let b: [u8; 4] = a.as_fixed_size_binary().value(i).try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            }
            DataType::FixedSizeBinary(16) => {
                let b: [u8; 16] = a.as_fixed_size_binary().value(i).try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            }
            DataType::UInt32 | DataType::Int64 | DataType::UInt64 => {
                let n = self.num(w, i)?;
                (0.0..=f64::from(u32::MAX))
                    .contains(&n)
                    .then(|| IpAddr::V4(Ipv4Addr::from(n as u32)))
            }
            _ => parse_ip(self.text(w, i)?.trim().as_bytes()),
        }
    }
}

/// The value of a numeric, boolean or timestamp column (a timestamp in
/// seconds); `None` for a null and for any other type.
pub(crate) fn stored_num(a: &ArrayRef, i: usize) -> Option<f64> {
    if a.is_null(i) {
        return None;
    }
    Some(match a.data_type() {
        DataType::Int8 => f64::from(a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => f64::from(a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => f64::from(a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i) as f64,
        DataType::UInt8 => f64::from(a.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => f64::from(a.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => f64::from(a.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(i) as f64,
        DataType::Float32 => f64::from(a.as_primitive::<Float32Type>().value(i)),
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i),
        DataType::Boolean => f64::from(u8::from(a.as_boolean().value(i))),
        DataType::Timestamp(unit, _) => {
            let (v, scale) = match unit {
                TimeUnit::Second => (a.as_primitive::<TimestampSecondType>().value(i), 1.0),
                TimeUnit::Millisecond => {
                    (a.as_primitive::<TimestampMillisecondType>().value(i), 1e3)
                }
                TimeUnit::Microsecond => {
                    (a.as_primitive::<TimestampMicrosecondType>().value(i), 1e6)
                }
                TimeUnit::Nanosecond => (a.as_primitive::<TimestampNanosecondType>().value(i), 1e9),
            };
            v as f64 / scale
        }
        _ => return None,
    })
}

/// The text of a string, binary or boolean column (`T`/`F`); `None`
/// for a null and for any other type.
pub(crate) fn string(a: &ArrayRef, i: usize) -> Option<Cow<'_, str>> {
    if a.is_null(i) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(Cow::Borrowed(a.as_string::<i32>().value(i))),
        DataType::LargeUtf8 => Some(Cow::Borrowed(a.as_string::<i64>().value(i))),
        DataType::Utf8View => Some(Cow::Borrowed(a.as_string_view().value(i))),
        DataType::Binary => Some(String::from_utf8_lossy(a.as_binary::<i32>().value(i))),
        DataType::LargeBinary => Some(String::from_utf8_lossy(a.as_binary::<i64>().value(i))),
        DataType::Boolean => Some(Cow::Borrowed(if a.as_boolean().value(i) {
            "T"
        } else {
            "F"
        })),
        _ => None,
    }
}

/// A time in seconds from a number of seconds, ms, µs or ns (by size).
fn seconds(t: f64) -> f64 {
    let a = t.abs();
    if a >= 1e17 {
        t / 1e9
    } else if a >= 1e14 {
        t / 1e6
    } else if a >= 1e11 {
        t / 1e3
    } else {
        t
    }
}

/// Reads one Parquet file into flows for `sink`, its row groups decoded
/// on up to `threads` threads at a time (so at most that many row groups
/// are held decoded) and their rows taken in file order here.
pub fn read_file<F: FnMut(&Flow<'_>)>(
    path: &Path,
    threads: usize,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    let bad = |e: parquet::errors::ParquetError| ReadError::UnknownFormat {
        path: path.to_path_buf(),
        seen: format!("a Parquet file latmove cannot read: {e}"),
    };
    let open = || {
        let file = File::open(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)
    };
    let builder = open()?;
    let schema: Arc<arrow_schema::Schema> = builder.schema().clone();
    let plan = Plan::new(path, schema.fields())?;
    let groups = builder.metadata().num_row_groups();
    drop(builder);
    // One row group's batches, decoded.
    let decode = |g: usize| -> Result<Vec<RecordBatch>, ReadError> {
        let reader = open()?
            .with_row_groups(vec![g])
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(bad)?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReadError::UnknownFormat {
                path: path.to_path_buf(),
                seen: format!("row group {g} cannot be read: {e}"),
            })
    };
    let mut out = Emit::new(path, stats, sink);
    let mut pairing = Pairing::default();
    let mut row_no = 0u64;
    let wave = threads.max(1);
    for start in (0..groups).step_by(wave) {
        let n = wave.min(groups - start);
        let decoded = crate::util::threads::in_tasks(n, wave, |i| decode(start + i));
        for batches in decoded {
            for batch in batches? {
                let b = Batch::of(&batch, &plan);
                for i in 0..batch.num_rows() {
                    row_no += 1;
                    out.stats.rows += 1;
                    if let Err((reason, w)) = row(&b, i, &plan, &mut out, &mut pairing) {
                        let v = b.text(w, i).map(Cow::into_owned).unwrap_or_default();
                        out.skip(reason, row_no, &plan.names[w as usize], v.as_bytes());
                    }
                }
            }
        }
    }
    pairing.flush_all(&mut out);
    out.note("one-way records paired request/reply", pairing.pairs() * 2);
    out.note("one-way records without their other half", pairing.alone());
    Ok(())
}

/// Whether a two-way row's responder answered: by Zeek's state, an
/// `answered` column, or the counts.
fn reply(b: &Batch, i: usize, layout: Layout, proto: Option<u8>, bwd_p: Option<f64>) -> Reply {
    if layout == Layout::Zeek {
        let state = b.text(Want::ConnState, i);
        let history = b.text(Want::History, i);
        return super::zeek::reply(
            proto,
            state.as_deref().map(str::as_bytes),
            history.as_deref().map(str::as_bytes),
            bwd_p,
        );
    }
    match b.text(Want::Answered, i).as_deref() {
        Some("T" | "true" | "1") => Reply::Answered,
        Some("F" | "false" | "0") => Reply::Unanswered,
        _ => Reply::FromCounts,
    }
}

/// One row to `out` (or to `pairing`), or why not and which field.
fn row<F: FnMut(&Flow<'_>)>(
    b: &Batch,
    i: usize,
    plan: &Plan,
    out: &mut Emit<'_, F>,
    pairing: &mut Pairing,
) -> Result<(), (SkipReason, Want)> {
    let src = b
        .ip(Want::SrcIp, i)
        .ok_or((SkipReason::BadSourceIp, Want::SrcIp))?;
    let dst = b
        .ip(Want::DstIp, i)
        .ok_or((SkipReason::BadDestinationIp, Want::DstIp))?;
    let proto = match b.stored_num(Want::Proto, i) {
        Some(n) => u8::try_from(n as i64).ok(),
        None => b.text(Want::Proto, i).and_then(|t| protocol(t.as_bytes())),
    };
    let (sport, dport) = (b.port(Want::SrcPort, i)?, b.port(Want::DstPort, i)?);
    let (sport, dport) = super::flow_ports(proto, sport, dport);
    let time = |w: Want| b.num(w, i).map(seconds);
    let start = time(Want::Time);
    let end = time(Want::End).or_else(|| {
        let d = b.num(Want::Duration, i)?;
        Some(start? + if plan.duration_ms { d / 1e3 } else { d })
    });
    let mut count = |w: Want| {
        let v = b.num(w, i);
        out.count(v)
    };
    let (fwd_p, bwd_p) = (count(Want::FwdPkts), count(Want::BwdPkts));
    let (fwd_b, bwd_b) = (count(Want::FwdBytes), count(Want::BwdBytes));
    if plan.layout == Layout::OneWay {
        let rejected = b
            .text(Want::Action, i)
            .is_some_and(|a| a.eq_ignore_ascii_case("REJECT"));
        let flags = b.num(Want::TcpFlags, i).map(|f| f as u8);
        let h = Half::new(
            (src, sport),
            (dst, dport),
            proto,
            (start, end),
            (fwd_p, fwd_b),
            flags,
        );
        if rejected {
            h.emit_rejected(out);
        } else {
            pairing.add(h, out);
        }
        return Ok(());
    }
    let reply = reply(b, i, plan.layout, proto, bwd_p);
    let id = b.text(Want::Id, i);
    let label = b.text(Want::Label, i);
    let mut f = timed_flow(
        (src, sport),
        (dst, dport),
        proto,
        (start, end),
        FlowMeta {
            initiator_known: true,
            reply,
            ..FlowMeta::default()
        },
    );
    super::set_counts(&mut f, (fwd_p, bwd_p), (fwd_b, bwd_b));
    f.flow_id = id.as_deref().map(str::as_bytes);
    f.label = label
        .as_deref()
        .map(str::as_bytes)
        .filter(|l| !l.is_empty());
    out.flow(&f);
    Ok(())
}
