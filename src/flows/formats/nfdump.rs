//! `nfdump -o csv`: NetFlow/IPFIX records as nfdump prints them.
//!
//! Two layouts, both read by their header names: the one of nfdump 1.6
//! and 1.7.0-1.7.4 (`ts,te,td,sa,da,sp,dp,pr,flg,...,ipkt,ibyt,opkt,obyt,
//! ...`, local time without a zone, and a `Summary` block after the
//! records), and the named one of 1.7.5 and later (`firstSeen,duration,
//! proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,...`), which any
//! `-o "csv:%..."` column set and `-o csv-fast` (times in epoch
//! milliseconds) also use. Times without a zone are read as written, like
//! every naive time latmove reads.
//!
//! NetFlow records are one direction each. A record whose reverse (the
//! same protocol, addresses and ports swapped) overlaps it in time is its
//! other half: the pair is one flow, started by the earlier record (at
//! the same time: the one that carries a SYN without ACK, else the one to
//! the service port), and it was answered unless the reply is a lone RST.
//! A record left without its other half when its time is well past is
//! one flow of its own: a TCP record whose flags show no ACK asked and
//! got no answer; any other is counted as unknown either way. Records
//! that carry both directions (IPFIX biflows: `opkt` > 0) are flows as
//! they are.

use std::collections::VecDeque;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use rustc_hash::FxHashMap as HashMap;

use super::{Columns, Emit, cell, parse_time, protocol, timed_flow};
use crate::flows::lines::LineReader;
use crate::flows::{Flow, FlowMeta, ReadError, Reply, SkipReason, parse_port};

/// How long (seconds past a record's end, on the records' own clock) a
/// record waits for its other half.
const HOLD_SECS: f64 = 300.0;

/// At most this many records wait at once; past it the oldest goes alone.
const MAX_HELD: usize = 1 << 20;

/// The columns, by position.
struct Layout {
    cols: Columns,
    start: Option<usize>,
    end: Option<usize>,
    duration: Option<usize>,
    src: usize,
    dst: usize,
    sport: Option<usize>,
    dport: Option<usize>,
    proto: Option<usize>,
    flags: Option<usize>,
    pkts: Option<usize>,
    bytes: Option<usize>,
    out_pkts: Option<usize>,
    out_bytes: Option<usize>,
}

impl Layout {
    fn new(path: &Path, header: &[u8]) -> Result<Layout, ReadError> {
        let cols = Columns::of(header);
        let f = |a: &[&str]| cols.find(a);
        let (src, dst) = cols.ends(
            path,
            (&["sa", "srcaddr"], &["da", "dstaddr"]),
            ["sa / srcAddr", "da / dstAddr"],
        )?;
        Ok(Layout {
            start: f(&["ts", "firstseen"]),
            end: f(&["te", "lastseen"]),
            duration: f(&["td", "duration"]),
            src,
            dst,
            sport: f(&["sp", "srcport"]),
            dport: f(&["dp", "dstport"]),
            proto: f(&["pr", "proto"]),
            flags: f(&["flg", "flags"]),
            pkts: f(&["ipkt", "packets", "inpackets", "pkt"]),
            bytes: f(&["ibyt", "bytes", "inbytes", "byt"]),
            out_pkts: f(&["opkt", "outpackets"]),
            out_bytes: f(&["obyt", "outbytes"]),
            cols,
        })
    }
}

/// TCP flags of a record, from nfdump's string (`...AP.SF`, `CEUAPRSF`
/// positions or letters anywhere) or a number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Flags(u8);

impl Flags {
    const FIN: u8 = 1;
    const SYN: u8 = 2;
    const RST: u8 = 4;
    const PSH: u8 = 8;
    const ACK: u8 = 16;

    fn parse(v: &[u8]) -> Option<Flags> {
        if let Some(n) = crate::flows::whole_number(v) {
            return u8::try_from(n & 0xff).ok().map(Flags);
        }
        let mut f = 0;
        for b in v {
            f |= match b {
                b'F' => Flags::FIN,
                b'S' => Flags::SYN,
                b'R' => Flags::RST,
                b'P' => Flags::PSH,
                b'A' => Flags::ACK,
                b'U' | b'E' | b'C' | b'.' | b' ' => 0,
                _ => return None,
            };
        }
        Some(Flags(f))
    }

    fn has(self, f: u8) -> bool {
        self.0 & f != 0
    }
}

/// One direction's record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Half {
    src: IpAddr,
    dst: IpAddr,
    sport: Option<u16>,
    dport: u16,
    proto: Option<u8>,
    start: Option<f64>,
    end: Option<f64>,
    pkts: Option<f64>,
    bytes: Option<f64>,
    flags: Option<Flags>,
    seq: u64,
}

impl Half {
    /// A record from its ends, protocol, (start, end) times, (packets,
    /// bytes) and TCP flags.
    pub(crate) fn new(
        (src, sport): (IpAddr, Option<u16>),
        (dst, dport): (IpAddr, u16),
        proto: Option<u8>,
        (start, end): (Option<f64>, Option<f64>),
        (pkts, bytes): (Option<f64>, Option<f64>),
        flags: Option<u8>,
    ) -> Half {
        Half {
            src,
            dst,
            sport,
            dport,
            proto,
            start,
            end,
            pkts,
            bytes,
            flags: flags.filter(|_| proto == Some(6)).map(Flags),
            seq: 0,
        }
    }

    /// This record as a flow of its own, its counts still unknown.
    fn flow<'a>(&self, meta: FlowMeta) -> Flow<'a> {
        timed_flow(
            (self.src, self.sport),
            (self.dst, self.dport),
            self.proto,
            (self.start, self.end),
            meta,
        )
    }

    fn key(&self) -> Key {
        (
            self.proto,
            self.src,
            self.sport.unwrap_or(0),
            self.dst,
            self.dport,
        )
    }

    fn reverse_key(&self) -> Key {
        (
            self.proto,
            self.dst,
            self.dport,
            self.src,
            self.sport.unwrap_or(0),
        )
    }

    /// A request a filter rejected (a VPC flow log's `REJECT`): asked, not
    /// answered.
    pub(crate) fn emit_rejected<F: FnMut(&Flow<'_>)>(&self, out: &mut Emit<'_, F>) {
        emit_alone(self, true, out);
    }

    /// Whether `other` overlaps this record in time (a second's slack:
    /// nfdump 1.6 prints whole seconds).
    fn overlaps(&self, other: &Half) -> bool {
        match (self.start, self.end, other.start, other.end) {
            (Some(a0), Some(a1), Some(b0), Some(b1)) => a0 <= b1 + 1.0 && b0 <= a1 + 1.0,
            (Some(a0), _, Some(b0), _) => (a0 - b0).abs() <= 1.0,
            _ => true,
        }
    }

    /// Whether this record, not `other`, opened their flow.
    fn opened_before(&self, other: &Half) -> bool {
        match (self.start, other.start) {
            (Some(a), Some(b)) if a != b => return a < b,
            _ => {}
        }
        let syn_only = |h: &Half| {
            h.flags
                .is_some_and(|f| f.has(Flags::SYN) && !f.has(Flags::ACK))
        };
        if syn_only(self) != syn_only(other) {
            return syn_only(self);
        }
        // The one sent to the service port opened it.
        !crate::net::is_reply_direction(self.sport.unwrap_or(0), self.dport)
    }
}

type Key = (Option<u8>, IpAddr, u16, IpAddr, u16);

/// Records waiting for their other half, in arrival order.
#[derive(Default)]
pub(crate) struct Pairing {
    held: HashMap<Key, Vec<Half>>,
    order: VecDeque<(f64, u64, Key)>,
    /// The latest time seen.
    clock: f64,
    next_seq: u64,
    pairs: u64,
    alone: u64,
}

impl Pairing {
    /// Records paired so far (pairs).
    pub(crate) fn pairs(&self) -> u64 {
        self.pairs
    }

    /// Records sent on alone so far.
    pub(crate) fn alone(&self) -> u64 {
        self.alone
    }

    /// Sends on every waiting record: the input ended.
    pub(crate) fn flush_all<F: FnMut(&Flow<'_>)>(&mut self, out: &mut Emit<'_, F>) {
        self.flush(true, out);
    }

    /// Takes one record: pairs it with a waiting reverse, or holds it.
    pub(crate) fn add<F: FnMut(&Flow<'_>)>(&mut self, mut h: Half, out: &mut Emit<'_, F>) {
        h.seq = self.next_seq;
        self.next_seq += 1;
        let t = h.end.or(h.start).unwrap_or(self.clock);
        self.clock = self.clock.max(t);
        let reverse = h.reverse_key();
        if let Some(waiting) = self.held.get_mut(&reverse)
            && let Some(i) = waiting.iter().position(|w| w.overlaps(&h))
        {
            let other = waiting.remove(i);
            if waiting.is_empty() {
                self.held.remove(&reverse);
            }
            self.pairs += 1;
            let (req, rep) = if other.opened_before(&h) {
                (other, h)
            } else {
                (h, other)
            };
            emit_pair(&req, &rep, out);
        } else {
            self.order.push_back((t, h.seq, h.key()));
            self.held.entry(h.key()).or_default().push(h);
        }
        self.flush(false, out);
    }

    /// Sends on alone the records whose time is past (all at the end).
    fn flush<F: FnMut(&Flow<'_>)>(&mut self, all: bool, out: &mut Emit<'_, F>) {
        while let Some(&(t, seq, key)) = self.order.front() {
            // The queue also holds the entries of records since paired
            // (passed over here): bounding it bounds both.
            if !(all || self.order.len() > MAX_HELD || t < self.clock - HOLD_SECS) {
                break;
            }
            self.order.pop_front();
            let Some(waiting) = self.held.get_mut(&key) else {
                continue;
            };
            let Some(i) = waiting.iter().position(|w| w.seq == seq) else {
                continue;
            };
            let h = waiting.remove(i);
            if waiting.is_empty() {
                self.held.remove(&key);
            }
            self.alone += 1;
            emit_alone(&h, false, out);
        }
    }
}

fn emit_pair<F: FnMut(&Flow<'_>)>(req: &Half, rep: &Half, out: &mut Emit<'_, F>) {
    let reply = match (req.proto, rep.flags) {
        (Some(6), Some(f)) if f.has(Flags::SYN) || f.has(Flags::PSH) => Reply::Answered,
        (Some(6), Some(f)) if f.has(Flags::RST) && rep.pkts.is_some_and(|p| p <= 1.0) => {
            Reply::Unanswered
        }
        (Some(6), Some(_)) => Reply::Answered,
        (Some(6), None) => Reply::FromCounts,
        _ => Reply::Answered,
    };
    let start = match (req.start, rep.start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let end = match (req.end, rep.end) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut f = timed_flow(
        (req.src, req.sport),
        (req.dst, req.dport),
        req.proto,
        (start, end),
        FlowMeta {
            initiator_known: true,
            reply,
            ..FlowMeta::default()
        },
    );
    super::set_counts(&mut f, (req.pkts, rep.pkts), (req.bytes, rep.bytes));
    out.flow(&f);
}

/// A record as a flow of its own; `rejected` when a filter said so.
fn emit_alone<F: FnMut(&Flow<'_>)>(h: &Half, rejected: bool, out: &mut Emit<'_, F>) {
    let asked_unanswered =
        rejected || (h.proto == Some(6) && h.flags.is_some_and(|f| !f.has(Flags::ACK) && f.0 != 0));
    let meta = if asked_unanswered {
        FlowMeta {
            initiator_known: true,
            reply: Reply::Unanswered,
            ..FlowMeta::default()
        }
    } else {
        FlowMeta {
            reply: Reply::Unknown,
            ..FlowMeta::default()
        }
    };
    let mut f = h.flow(meta);
    f.fwd_packets = h.pkts;
    f.fwd_bytes = h.bytes;
    out.flow(&f);
}

/// Reads an nfdump CSV whose header is `first`.
pub(crate) fn read<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line): (&[u8], u64),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    let layout = Layout::new(path, first)?;
    let mut spans = Vec::new();
    let mut pairing = Pairing::default();
    // After a `Summary` line come nfdump's totals (and, from 1.6, lines
    // on the time window and the files read): not flows. A stream may hold
    // several runs (`nfdump -r` in a loop piped to `watch`): the next run's
    // header ends the trailer.
    let mut trailer = false;
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        if bytes.trim_ascii() == b"Summary" {
            trailer = true;
            pairing.flush_all(out);
            return Ok(true);
        }
        if trailer {
            trailer = bytes.trim_ascii_end() != first.trim_ascii_end();
            return Ok(true);
        }
        out.stats.rows += 1;
        layout.cols.split(bytes, &mut spans);
        if spans.len() < layout.cols.names.len() {
            let v = format!(
                "{} fields, header has {}",
                spans.len(),
                layout.cols.names.len()
            );
            out.skip(SkipReason::ShortRow, line_no, "(whole line)", v.as_bytes());
            return Ok(true);
        }
        if cell(bytes, &spans, Some(layout.src)) == Some(layout.cols.name(layout.src).as_bytes()) {
            out.skip_quietly(SkipReason::RepeatedHeader);
            return Ok(true);
        }
        match record(&layout, bytes, &spans, out) {
            Ok((h, both)) if both.is_some() => {
                let (opkts, obytes) = both.unwrap_or_default();
                let mut f = h.flow(FlowMeta::default());
                super::set_counts(&mut f, (h.pkts, Some(opkts)), (h.bytes, Some(obytes)));
                out.flow(&f);
            }
            Ok((h, _)) => pairing.add(h, out),
            Err((reason, col)) => {
                let v = cell(bytes, &spans, Some(col)).unwrap_or_default().to_vec();
                out.skip(reason, line_no, layout.cols.name(col), &v);
            }
        }
        Ok(true)
    })?;
    pairing.flush(true, out);
    out.note("NetFlow records paired request/reply", pairing.pairs * 2);
    out.note("NetFlow records without their other half", pairing.alone);
    Ok(())
}

/// A row's record, and `Some((out packets, out bytes))` when it carries
/// both directions.
type Parsed = (Half, Option<(f64, f64)>);

/// One row as a record; `Some((out packets, out bytes))` when it carries
/// both directions.
fn record<F: FnMut(&Flow<'_>)>(
    l: &Layout,
    line: &[u8],
    spans: &[(usize, usize)],
    out: &mut Emit<'_, F>,
) -> Result<Parsed, (SkipReason, usize)> {
    let c = |i: Option<usize>| cell(line, spans, i);
    let cells = super::RowCells { line, spans };
    let (src, dst) = cells.ips(l.src, l.dst)?;
    let proto = c(l.proto).and_then(protocol);
    let (sport, dport) = (
        cells.port(l.sport, parse_port)?,
        cells.port(l.dport, parse_port)?,
    );
    let (sport, dport) = super::flow_ports(proto, sport, dport);
    let num = |i: Option<usize>| cells.num(i);
    let mut time = |i: Option<usize>| match c(i) {
        // nfdump's "no time".
        None | Some(b"0000-00-00 00:00:00.000" | b"0") => None,
        Some(v) => {
            let t = parse_time(v);
            if t.is_none() {
                out.bad_time();
            }
            t
        }
    };
    let start = time(l.start);
    let mut end = time(l.end);
    if end.is_none()
        && let (Some(s), Ok(Some(d))) = (start, num(l.duration))
    {
        end = Some(s + d);
    }
    let (pkts, bytes) = (num(l.pkts)?, num(l.bytes)?);
    let (opkts, obytes) = (num(l.out_pkts)?, num(l.out_bytes)?);
    let flags = c(l.flags).and_then(Flags::parse);
    let both = match (out.count(opkts), out.count(obytes)) {
        (Some(p), Some(b)) if p > 0.0 => Some((p, b)),
        _ => None,
    };
    let mut h = Half::new(
        (src, sport),
        (dst, dport),
        proto,
        (start, end),
        (out.count(pkts), out.count(bytes)),
        None,
    );
    h.flags = flags.filter(|_| proto == Some(6));
    Ok((h, both))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_from_strings_and_numbers() {
        assert_eq!(Flags::parse(b"......S."), Some(Flags(Flags::SYN)));
        assert_eq!(
            Flags::parse(b"...A.R.."),
            Some(Flags(Flags::ACK | Flags::RST))
        );
        assert_eq!(Flags::parse(b"18"), Some(Flags(Flags::ACK | Flags::SYN)));
        assert_eq!(Flags::parse(b"xyz"), None);
    }
}
