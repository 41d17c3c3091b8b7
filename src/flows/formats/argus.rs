//! Argus records as `ra -c ,` (or `-c` with a tab) prints them, with its
//! header line (`ra -n -c , -s stime dur proto saddr sport dir daddr dport
//! spkts dpkts sbytes dbytes state`, or the default fields `StartTime,
//! Flgs, Proto, SrcAddr, Sport, Dir, DstAddr, Dport, TotPkts, TotBytes,
//! State`), columns found by name. CTU-13's `.binetflow` files are this
//! format with a `Label` column.
//!
//! Times may be epoch seconds (`ra -u`), a date and time (any
//! `RA_TIME_FORMAT` with the year first), or the default time of day
//! alone, read as seconds into an unknown day. Argus's source is the
//! host that sent the first packet: the initiator, unless `Dir` holds a
//! `?` (Argus was not sure) or points back. Bytes are the packets' bytes
//! (`SAppBytes`/`DAppBytes`, the payload, when given). Whether the
//! responder answered: packets back, except a lone reset; with only the
//! totals, the state (`REQ`/`INT`: no answer; `CON`, `ACC`, `FIN`, `CLO`:
//! answered). Management records (`man`) and non-IP records (ARP) are
//! counted, not read. A long flow's status records (one every few
//! seconds) are merged into one flow: records of the same five-tuple that
//! follow each other within two minutes, until a TCP one closes it.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use rustc_hash::FxHashMap as HashMap;

use super::{Columns, Emit, cell, is_icmp, parse_time, protocol, timed_flow};
use crate::flows::lines::LineReader;
use crate::flows::{Flow, FlowMeta, ReadError, Reply, SkipReason};

/// Records of one five-tuple this close (seconds) are one flow's.
const MERGE_GAP_SECS: f64 = 120.0;

/// Held flows are looked over for ended ones every this many records.
const SWEEP_EVERY: u64 = 1 << 16;

/// At most this many flows wait for more status records; past it (records
/// whose times do not move on) all are sent on.
const MAX_OPEN: usize = 1 << 20;

struct Layout {
    cols: Columns,
    start: Option<usize>,
    end: Option<usize>,
    dur: Option<usize>,
    proto: Option<usize>,
    src: usize,
    dst: usize,
    sport: Option<usize>,
    dport: Option<usize>,
    dir: Option<usize>,
    spkts: Option<usize>,
    dpkts: Option<usize>,
    sbytes: Option<usize>,
    dbytes: Option<usize>,
    tot_pkts: Option<usize>,
    state: Option<usize>,
    label: Option<usize>,
}

impl Layout {
    fn new(path: &Path, header: &[u8]) -> Result<Layout, ReadError> {
        let cols = Columns::of(header);
        let f = |a: &[&str]| cols.find(a);
        let (src, dst) = cols.ends(
            path,
            (&["srcaddr", "saddr"], &["dstaddr", "daddr"]),
            ["SrcAddr", "DstAddr"],
        )?;
        Ok(Layout {
            start: f(&["starttime", "stime"]),
            end: f(&["lasttime", "ltime"]),
            dur: f(&["dur"]),
            proto: f(&["proto"]),
            src,
            dst,
            sport: f(&["sport"]),
            dport: f(&["dport"]),
            dir: f(&["dir"]),
            spkts: f(&["srcpkts", "spkts"]),
            dpkts: f(&["dstpkts", "dpkts"]),
            sbytes: f(&["sappbytes", "srcappbytes", "srcbytes", "sbytes"]),
            dbytes: f(&["dappbytes", "dstappbytes", "dstbytes", "dbytes"]),
            tot_pkts: f(&["totpkts", "pkts"]),
            state: f(&["state"]),
            label: f(&["label"]),
            cols,
        })
    }
}

/// One record, or several merged.
#[derive(Debug, Clone)]
struct Rec {
    src: IpAddr,
    dst: IpAddr,
    sport: Option<u16>,
    dport: u16,
    proto: Option<u8>,
    start: Option<f64>,
    end: Option<f64>,
    spkts: Option<f64>,
    dpkts: Option<f64>,
    sbytes: Option<f64>,
    dbytes: Option<f64>,
    tot_pkts: Option<f64>,
    state: Vec<u8>,
    initiator_known: bool,
    label: Option<Vec<u8>>,
    seq: u64,
}

type Key = (Option<u8>, IpAddr, Option<u16>, IpAddr, u16);

impl Rec {
    fn key(&self) -> Key {
        (self.proto, self.src, self.sport, self.dst, self.dport)
    }

    /// Whether a TCP state ends the connection.
    fn closed(&self) -> bool {
        self.proto == Some(6) && matches!(self.state.as_slice(), b"FIN" | b"CLO" | b"RST")
    }

    fn merge(&mut self, later: Rec) {
        let add = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        };
        self.end = match (self.end, later.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.spkts = add(self.spkts, later.spkts);
        self.dpkts = add(self.dpkts, later.dpkts);
        self.sbytes = add(self.sbytes, later.sbytes);
        self.dbytes = add(self.dbytes, later.dbytes);
        self.tot_pkts = add(self.tot_pkts, later.tot_pkts);
        self.state = later.state;
    }

    fn reply(&self) -> Reply {
        let state = self.state.as_slice();
        if let Some(back) = self.dpkts {
            let rejected = self.proto == Some(6) && state == b"RST" && back <= 1.0;
            return if back == 0.0 || rejected {
                Reply::Unanswered
            } else {
                Reply::Answered
            };
        }
        match state {
            b"REQ" | b"INT" => Reply::Unanswered,
            b"RST" if self.tot_pkts.is_some_and(|p| p <= 2.0) => Reply::Unanswered,
            b"CON" | b"ACC" | b"EST" | b"FIN" | b"CLO" | b"ECR" => Reply::Answered,
            s if is_icmp(self.proto) && s.starts_with(b"UR") => Reply::Unanswered,
            _ => Reply::Unknown,
        }
    }

    fn emit<F: FnMut(&Flow<'_>)>(&self, out: &mut Emit<'_, F>) {
        let mut f = timed_flow(
            (self.src, self.sport),
            (self.dst, self.dport),
            self.proto,
            (self.start, self.end),
            FlowMeta {
                initiator_known: self.initiator_known,
                reply: self.reply(),
                ..FlowMeta::default()
            },
        );
        super::set_counts(&mut f, (self.spkts, self.dpkts), (self.sbytes, self.dbytes));
        f.label = self.label.as_deref();
        out.flow(&f);
    }
}

/// Flows whose status records may still come.
#[derive(Default)]
struct Open {
    held: HashMap<Key, Rec>,
    clock: f64,
    seen: u64,
    merged: u64,
}

impl Open {
    fn add<F: FnMut(&Flow<'_>)>(&mut self, mut r: Rec, out: &mut Emit<'_, F>) {
        r.seq = self.seen;
        self.seen += 1;
        if let Some(t) = r.end.or(r.start) {
            self.clock = self.clock.max(t);
        }
        let key = r.key();
        if let Some(h) = self.held.get_mut(&key) {
            let follows = match (h.end.or(h.start), r.start) {
                (Some(e), Some(s)) => s <= e + MERGE_GAP_SECS,
                _ => true,
            };
            if follows && !h.closed() {
                h.merge(r);
                self.merged += 1;
                if h.closed() {
                    let done = self.held.remove(&key).expect("held");
                    done.emit(out);
                }
                return;
            }
            let done = self.held.remove(&key).expect("held");
            done.emit(out);
        }
        if r.closed() {
            r.emit(out);
        } else {
            self.held.insert(key, r);
        }
        if self.held.len() > MAX_OPEN {
            self.sweep(true, out);
        } else if self.seen.is_multiple_of(SWEEP_EVERY) {
            self.sweep(false, out);
        }
    }

    /// Sends on the flows idle for longer than the gap (all at the end), in
    /// the order they began.
    fn sweep<F: FnMut(&Flow<'_>)>(&mut self, all: bool, out: &mut Emit<'_, F>) {
        let clock = self.clock;
        let idle = |r: &Rec| all || r.end.or(r.start).is_none_or(|t| t < clock - MERGE_GAP_SECS);
        let keys: Vec<Key> = self
            .held
            .iter()
            .filter(|(_, r)| idle(r))
            .map(|(k, _)| *k)
            .collect();
        let mut done: Vec<Rec> = keys.iter().filter_map(|k| self.held.remove(k)).collect();
        done.sort_by_key(|r| r.seq);
        for r in &done {
            r.emit(out);
        }
    }
}

/// Reads an Argus CSV whose header is `first`.
pub(crate) fn read<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line): (&[u8], u64),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    let layout = Layout::new(path, first)?;
    let mut spans = Vec::new();
    let mut open = Open::default();
    let mut days_unknown = 0u64;
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        out.stats.rows += 1;
        layout.cols.split(bytes, &mut spans);
        if cell(bytes, &spans, Some(layout.src)) == Some(layout.cols.name(layout.src).as_bytes()) {
            out.skip_quietly(SkipReason::RepeatedHeader);
            return Ok(true);
        }
        match record(&layout, bytes, &spans, out, &mut days_unknown) {
            Ok(Some(r)) => open.add(r, out),
            Ok(None) => out.skip_quietly(SkipReason::NotAFlow),
            Err((reason, col)) => {
                let v = cell(bytes, &spans, Some(col)).unwrap_or_default().to_vec();
                out.skip(reason, line_no, layout.cols.name(col), &v);
            }
        }
        Ok(true)
    })?;
    open.sweep(true, out);
    out.note("Argus status records merged into their flows", open.merged);
    out.note(
        "Argus times without a date (read as seconds into a day)",
        days_unknown,
    );
    Ok(())
}

/// A port as Argus prints it: decimal, or hex (`0x0008`) for ICMP.
fn port(v: &[u8]) -> Option<u16> {
    match v.strip_prefix(b"0x") {
        Some(h) => u16::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok(),
        None => crate::flows::parse_port(v),
    }
}

/// Seconds into the day of a bare `hh:mm:ss[.f]`.
fn time_of_day(v: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(v).ok()?;
    let mut it = s.split(':');
    let h: f64 = it.next()?.parse().ok()?;
    let m: f64 = it.next()?.parse().ok()?;
    let sec: f64 = it.next()?.parse().ok()?;
    (it.next().is_none() && h < 24.0 && m < 60.0 && sec < 61.0)
        .then_some(h * 3600.0 + m * 60.0 + sec)
}

/// A row as a record; `Ok(None)` for a management or non-IP record.
fn record<F: FnMut(&Flow<'_>)>(
    l: &Layout,
    line: &[u8],
    spans: &[(usize, usize)],
    out: &mut Emit<'_, F>,
    days_unknown: &mut u64,
) -> Result<Option<Rec>, (SkipReason, usize)> {
    let c = |i: Option<usize>| cell(line, spans, i);
    let proto_text = c(l.proto).unwrap_or_default();
    if matches!(
        proto_text.to_ascii_lowercase().as_slice(),
        b"man" | b"arp" | b"rarp" | b"llc" | b"stp" | b"lldp"
    ) {
        return Ok(None);
    }
    let proto = protocol(proto_text);
    let cells = super::RowCells { line, spans };
    let (src, dst) = cells.ips(l.src, l.dst)?;
    let (sport, dport) = (cells.port(l.sport, port)?, cells.port(l.dport, port)?);
    let (sport, dport) = super::flow_ports(proto, sport, dport);
    let num = |i: Option<usize>| cells.num(i);
    let mut time = |i: Option<usize>| {
        let v = c(i)?;
        let t = parse_time(v).or_else(|| {
            let t = time_of_day(v);
            *days_unknown += u64::from(t.is_some());
            t
        });
        if t.is_none() {
            out.bad_time();
        }
        t
    };
    let start = time(l.start);
    let end = time(l.end).or_else(|| Some(start? + num(l.dur).ok()??));
    let dir = c(l.dir).unwrap_or(b"->");
    let initiator_known = !dir.contains(&b'?') && dir.contains(&b'>');
    let label = c(l.label).map(|v| {
        // CTU-13: flow=From-Botnet-..., flow=...Normal..., flow=Background...
        if v.windows(6).any(|w| w == b"Botnet") {
            Some(v.to_vec())
        } else if v.windows(6).any(|w| w == b"Normal") {
            Some(b"BENIGN".to_vec())
        } else if v.windows(10).any(|w| w == b"Background") {
            None
        } else {
            Some(v.to_vec())
        }
    });
    Ok(Some(Rec {
        src,
        dst,
        sport,
        dport,
        proto,
        start,
        end,
        spkts: out.count(num(l.spkts)?),
        dpkts: out.count(num(l.dpkts)?),
        sbytes: out.count(num(l.sbytes)?),
        dbytes: out.count(num(l.dbytes)?),
        tot_pkts: out.count(num(l.tot_pkts)?),
        state: c(l.state).unwrap_or_default().to_vec(),
        initiator_known,
        label: label.flatten(),
        seq: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_clock_times() {
        assert_eq!(port(b"0x0008"), Some(8));
        assert_eq!(port(b"443"), Some(443));
        assert_eq!(port(b"0xZZ"), None);
        assert_eq!(time_of_day(b"22:43:35.5"), Some(81815.5));
        assert_eq!(time_of_day(b"25:00:00"), None);
    }
}
