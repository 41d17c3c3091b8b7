//! Zeek's `conn.log`, as its ASCII writer writes it (tab-separated, `#`
//! header lines) and as JSON lines.
//!
//! Columns are found by the `#fields` names, never by position, so extra
//! columns (`community_id`, `ip_proto`, Corelight's `resp_cc`) change
//! nothing; `#separator` is honoured with its `\x..` escapes;
//! `#unset_field` and `#empty_field` values are missing; `#close` may be
//! absent (a log still being written). A file may hold several headers
//! (logs concatenated): each `#fields` line applies to the rows after it.
//! JSON records may spell the connection's ends `id.orig_h` (Zeek's
//! default), `id_orig_h` (a scope separator of `_`) or nest them
//! (`"id": {"orig_h": ...}`); `ts` may be epoch seconds or an ISO-8601
//! string; unset fields are absent.
//!
//! The originator is the initiator. Whether the responder answered follows
//! Zeek's connection states: S0, REJ, RSTOS0 and SH (and OTH without
//! responder packets) are unanswered, as Zeek's own scan detection counts
//! them; RSTRH and SHR (the originator's SYN never seen: Zeek may have the
//! roles backwards) are counted neither way; otherwise a TCP connection
//! whose history shows the responder's SYN-ACK or data (`h`, `d`) or whose
//! responder sent packets was answered. ICMP's type and code (in the port
//! fields) are not ports. `local_orig`/`local_resp`, when the sensor set
//! them, say which ends are inside; `--internal` decides otherwise.

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Emit, bare_flow, is_icmp, number, parse_time, protocol};
use crate::flows::lines::LineReader;
use crate::flows::{Flow, FlowMeta, ReadError, Reply, SkipReason, parse_ip, parse_port};

/// The conn.log fields latmove reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Ts,
    Uid,
    OrigH,
    OrigP,
    RespH,
    RespP,
    Proto,
    Duration,
    OrigBytes,
    RespBytes,
    ConnState,
    LocalOrig,
    LocalResp,
    History,
    OrigPkts,
    RespPkts,
    Label,
}

impl Col {
    const ALL: [Col; 17] = [
        Col::Ts,
        Col::Uid,
        Col::OrigH,
        Col::OrigP,
        Col::RespH,
        Col::RespP,
        Col::Proto,
        Col::Duration,
        Col::OrigBytes,
        Col::RespBytes,
        Col::ConnState,
        Col::LocalOrig,
        Col::LocalResp,
        Col::History,
        Col::OrigPkts,
        Col::RespPkts,
        Col::Label,
    ];

    /// Zeek's name of the field.
    fn name(self) -> &'static str {
        match self {
            Col::Ts => "ts",
            Col::Uid => "uid",
            Col::OrigH => "id.orig_h",
            Col::OrigP => "id.orig_p",
            Col::RespH => "id.resp_h",
            Col::RespP => "id.resp_p",
            Col::Proto => "proto",
            Col::Duration => "duration",
            Col::OrigBytes => "orig_bytes",
            Col::RespBytes => "resp_bytes",
            Col::ConnState => "conn_state",
            Col::LocalOrig => "local_orig",
            Col::LocalResp => "local_resp",
            Col::History => "history",
            Col::OrigPkts => "orig_pkts",
            Col::RespPkts => "resp_pkts",
            Col::Label => "label",
        }
    }

    /// The fields without which no flow can be profiled.
    const REQUIRED: [Col; 3] = [Col::OrigH, Col::RespH, Col::RespP];
}

/// One record's fields, however the log spells them.
trait Fields {
    /// The field's text; `None` when absent, unset or empty.
    fn get(&self, c: Col) -> Option<Cow<'_, [u8]>>;

    /// The field's text when the record holds it as text (`uid`, `label`).
    fn text(&self, c: Col) -> Option<&[u8]> {
        match self.get(c)? {
            Cow::Borrowed(b) => Some(b),
            Cow::Owned(_) => None,
        }
    }
}

/// What the TSV header lines have said so far.
struct Header {
    separator: Vec<u8>,
    unset: Vec<u8>,
    empty: Vec<u8>,
    /// Position of each [`Col`] in the rows, by `Col as usize`.
    cols: [Option<usize>; Col::ALL.len()],
    width: usize,
    names: Vec<String>,
}

impl Header {
    fn new() -> Header {
        Header {
            separator: b"\t".to_vec(),
            unset: b"-".to_vec(),
            empty: b"(empty)".to_vec(),
            cols: [None; Col::ALL.len()],
            width: 0,
            names: Vec::new(),
        }
    }

    /// Takes one `#` line. `Err` for a `#path` other than conn.
    fn line(&mut self, path: &Path, line: &[u8]) -> Result<(), ReadError> {
        if let Some(rest) = line.strip_prefix(b"#separator") {
            // "#separator \x09": the only header line split by a space.
            self.separator = unescape(rest.trim_ascii());
            if self.separator.is_empty() {
                self.separator = b"\t".to_vec();
            }
            return Ok(());
        }
        let mut parts = line.split_str(&self.separator);
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        match key {
            b"#unset_field" => self.unset = value.to_vec(),
            b"#empty_field" => self.empty = value.to_vec(),
            b"#path" if !value.starts_with(b"conn") => {
                return Err(ReadError::UnknownFormat {
                    path: path.to_path_buf(),
                    seen: format!(
                        "a Zeek {} log: latmove reads conn.log, which holds the connections",
                        String::from_utf8_lossy(value)
                    ),
                });
            }
            b"#fields" => {
                let names: Vec<String> = line
                    .split_str(&self.separator)
                    .skip(1)
                    .map(|n| String::from_utf8_lossy(n).trim().to_string())
                    .collect();
                self.cols = [None; Col::ALL.len()];
                for (i, c) in Col::ALL.iter().enumerate() {
                    self.cols[i] = names.iter().position(|n| n == c.name());
                }
                self.width = names.len();
                self.names = names;
                let missing: Vec<&'static str> = Col::REQUIRED
                    .iter()
                    .filter(|c| self.cols[**c as usize].is_none())
                    .map(|c| c.name())
                    .collect();
                if !missing.is_empty() {
                    return Err(ReadError::MissingColumns {
                        file: path.to_path_buf(),
                        missing,
                        machine_learning_cve: false,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Splitting a byte string at a separator of one or more bytes.
trait SplitStr {
    fn split_str<'a>(&'a self, sep: &'a [u8]) -> SplitIter<'a>;
}

impl SplitStr for [u8] {
    fn split_str<'a>(&'a self, sep: &'a [u8]) -> SplitIter<'a> {
        SplitIter {
            rest: Some(self),
            sep,
        }
    }
}

struct SplitIter<'a> {
    rest: Option<&'a [u8]>,
    sep: &'a [u8],
}

impl<'a> Iterator for SplitIter<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if self.sep.len() == 1 {
            return Some(match memchr::memchr(self.sep[0], rest) {
                Some(i) => {
                    self.rest = Some(&rest[i + 1..]);
                    &rest[..i]
                }
                None => {
                    self.rest = None;
                    rest
                }
            });
        }
        match memchr::memmem::find(rest, self.sep) {
            Some(i) => {
                self.rest = Some(&rest[i + self.sep.len()..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Zeek's `\x09`-style escapes decoded.
fn unescape(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\'
            && v.get(i + 1) == Some(&b'x')
            && let Some(h) = v.get(i + 2..i + 4)
            && let Ok(s) = std::str::from_utf8(h)
            && let Ok(b) = u8::from_str_radix(s, 16)
        {
            out.push(b);
            i += 4;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// One TSV row, split.
struct TsvRow<'a> {
    line: &'a [u8],
    spans: &'a [(usize, usize)],
    header: &'a Header,
}

impl Fields for TsvRow<'_> {
    fn get(&self, c: Col) -> Option<Cow<'_, [u8]>> {
        let (a, b) = *self.spans.get(self.header.cols[c as usize]?)?;
        let v = &self.line[a..b];
        if v.is_empty() || v == self.header.unset.as_slice() || v == self.header.empty.as_slice() {
            None
        } else {
            Some(Cow::Borrowed(v))
        }
    }
}

/// Reads a tab-separated conn.log.
pub(crate) fn read_tsv<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line): (&[u8], u64),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    let mut header = Header::new();
    // Each cell's (start, end) in its line, reused from line to line.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    header.line(path, first)?;
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        if bytes[0] == b'#' {
            header.line(path, bytes)?;
            return Ok(true);
        }
        out.stats.rows += 1;
        if header.width == 0 {
            return Err(ReadError::MissingColumns {
                file: path.to_path_buf(),
                missing: Col::REQUIRED.iter().map(|c| c.name()).collect(),
                machine_learning_cve: false,
            });
        }
        spans.clear();
        let base = bytes.as_ptr() as usize;
        spans.extend(bytes.split_str(&header.separator).map(|c| {
            let at = c.as_ptr() as usize - base;
            (at, at + c.len())
        }));
        if spans.len() < header.width {
            let value = format!("{} fields, #fields names {}", spans.len(), header.width);
            out.skip(
                SkipReason::ShortRow,
                line_no,
                "(whole line)",
                value.as_bytes(),
            );
            return Ok(true);
        }
        let row = TsvRow {
            line: bytes,
            spans: &spans,
            header: &header,
        };
        match conn_flow(&row, out) {
            Ok(f) => out.flow(&f),
            Err((reason, c)) => {
                let v = row.get(c).map(Cow::into_owned).unwrap_or_default();
                let column = &header.names[header.cols[c as usize].unwrap_or(0)];
                out.skip(reason, line_no, column, &v);
            }
        }
        Ok(true)
    })
}

/// One JSON record.
struct JsonRow<'a>(&'a Map<String, Value>);

impl Fields for JsonRow<'_> {
    fn get(&self, c: Col) -> Option<Cow<'_, [u8]>> {
        let name = c.name();
        let v = self.0.get(name).or_else(|| {
            // `id_orig_h`, or `"id": {"orig_h": ...}`.
            let (scope, field) = name.split_once('.')?;
            self.0
                .get(&format!("{scope}_{field}"))
                .or_else(|| self.0.get(scope)?.as_object()?.get(field))
        })?;
        match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(Cow::Borrowed(s.as_bytes())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { b"T" } else { b"F" })),
            Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
            other => Some(Cow::Owned(other.to_string().into_bytes())),
        }
    }
}

/// One JSON record, its fields borrowed from the line as raw JSON (no
/// value tree is built: a record is read at about three times the speed).
#[derive(serde::Deserialize)]
struct ZeekJson<'a> {
    #[serde(borrow, default)]
    ts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    uid: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "id.orig_h", alias = "id_orig_h")]
    orig_h: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "id.orig_p", alias = "id_orig_p")]
    orig_p: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "id.resp_h", alias = "id_resp_h")]
    resp_h: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "id.resp_p", alias = "id_resp_p")]
    resp_p: Option<&'a RawValue>,
    /// `"id": {"orig_h": ...}`.
    #[serde(borrow, default)]
    id: Option<ZeekJsonId<'a>>,
    #[serde(borrow, default)]
    proto: Option<&'a RawValue>,
    #[serde(borrow, default)]
    duration: Option<&'a RawValue>,
    #[serde(borrow, default)]
    orig_bytes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resp_bytes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conn_state: Option<&'a RawValue>,
    #[serde(borrow, default)]
    local_orig: Option<&'a RawValue>,
    #[serde(borrow, default)]
    local_resp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    history: Option<&'a RawValue>,
    #[serde(borrow, default)]
    orig_pkts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resp_pkts: Option<&'a RawValue>,
    #[serde(borrow, default)]
    label: Option<&'a RawValue>,
    #[serde(borrow, default)]
    _path: Option<&'a RawValue>,
}

/// The nested spelling of a connection's ends.
#[derive(serde::Deserialize)]
struct ZeekJsonId<'a> {
    #[serde(borrow, default)]
    orig_h: Option<&'a RawValue>,
    #[serde(borrow, default)]
    orig_p: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resp_h: Option<&'a RawValue>,
    #[serde(borrow, default)]
    resp_p: Option<&'a RawValue>,
}

impl<'a> ZeekJson<'a> {
    fn raw(&self, c: Col) -> Option<&'a RawValue> {
        let nested = |f: fn(&ZeekJsonId<'a>) -> Option<&'a RawValue>| self.id.as_ref().and_then(f);
        match c {
            Col::Ts => self.ts,
            Col::Uid => self.uid,
            Col::OrigH => self.orig_h.or_else(|| nested(|i| i.orig_h)),
            Col::OrigP => self.orig_p.or_else(|| nested(|i| i.orig_p)),
            Col::RespH => self.resp_h.or_else(|| nested(|i| i.resp_h)),
            Col::RespP => self.resp_p.or_else(|| nested(|i| i.resp_p)),
            Col::Proto => self.proto,
            Col::Duration => self.duration,
            Col::OrigBytes => self.orig_bytes,
            Col::RespBytes => self.resp_bytes,
            Col::ConnState => self.conn_state,
            Col::LocalOrig => self.local_orig,
            Col::LocalResp => self.local_resp,
            Col::History => self.history,
            Col::OrigPkts => self.orig_pkts,
            Col::RespPkts => self.resp_pkts,
            Col::Label => self.label,
        }
    }
}

impl Fields for ZeekJson<'_> {
    fn get(&self, c: Col) -> Option<Cow<'_, [u8]>> {
        super::json_text(self.raw(c)?)
    }
}

/// Whether a JSON object is a Zeek conn record: its ends (however
/// spelt) and one of the fields only conn.log has.
pub(crate) fn json_looks_like_conn(o: &Map<String, Value>) -> bool {
    if let Some(Value::String(p)) = o.get("_path") {
        return p.starts_with("conn");
    }
    let row = JsonRow(o);
    row.0.contains_key("ts")
        && row.get(Col::OrigH).is_some()
        && [
            "conn_state",
            "history",
            "orig_pkts",
            "orig_bytes",
            "duration",
        ]
        .iter()
        .any(|k| o.contains_key(*k))
}

/// Reads conn.log JSON lines.
pub(crate) fn read_json<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line, terminated): (&[u8], u64, bool),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    json_line(first, first_line, terminated, out);
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        json_line(bytes, line_no, true, out);
        Ok(true)
    })
}

fn json_line<F: FnMut(&Flow<'_>)>(
    bytes: &[u8],
    line: u64,
    terminated: bool,
    out: &mut Emit<'_, F>,
) {
    out.stats.rows += 1;
    if !terminated {
        out.skip(SkipReason::UnterminatedLine, line, "(whole line)", bytes);
        return;
    }
    let Ok(row) = serde_json::from_slice::<ZeekJson<'_>>(bytes) else {
        out.skip(SkipReason::BadRecord, line, "(whole line)", bytes);
        return;
    };
    if let Some(p) = row._path.and_then(super::json_text)
        && !p.starts_with(b"conn")
    {
        out.skip_quietly(SkipReason::OtherEvent);
        return;
    }
    match conn_flow(&row, out) {
        Ok(f) => out.flow(&f),
        Err((reason, c)) => {
            let v = row.get(c).map(Cow::into_owned).unwrap_or_default();
            out.skip(reason, line, c.name(), &v);
        }
    }
}

/// A conn record as a flow, or why not (and which field).
fn conn_flow<'r, R: Fields, F: FnMut(&Flow<'_>)>(
    row: &'r R,
    out: &mut Emit<'_, F>,
) -> Result<Flow<'r>, (SkipReason, Col)> {
    let ip = |c: Col, reason: SkipReason| {
        row.get(c)
            .and_then(|v| parse_ip(v.trim_ascii()))
            .ok_or((reason, c))
    };
    let src = ip(Col::OrigH, SkipReason::BadSourceIp)?;
    let dst = ip(Col::RespH, SkipReason::BadDestinationIp)?;
    let proto = row.get(Col::Proto).and_then(|p| protocol(&p));
    let port = |c: Col| -> Result<Option<u16>, (SkipReason, Col)> {
        match row.get(c) {
            None => Ok(None),
            Some(v) => parse_port(v.trim_ascii())
                .map(Some)
                .ok_or((SkipReason::BadPort, c)),
        }
    };
    let (sport, dport) = (port(Col::OrigP)?, port(Col::RespP)?);
    if dport.is_none() && !is_icmp(proto) {
        return Err((SkipReason::BadPort, Col::RespP));
    }
    let (sport, dport) = super::flow_ports(proto, sport, dport);
    let num = |c: Col| -> Result<Option<f64>, (SkipReason, Col)> {
        match row.get(c) {
            None => Ok(None),
            Some(v) => number(&v).map_err(|()| (SkipReason::BadNumber, c)),
        }
    };
    let duration = num(Col::Duration)?.map(|s| s * 1e6);
    let (orig_pkts, resp_pkts) = (num(Col::OrigPkts)?, num(Col::RespPkts)?);
    let (orig_bytes, resp_bytes) = (num(Col::OrigBytes)?, num(Col::RespBytes)?);
    let timestamp = match row.get(Col::Ts) {
        None => None,
        Some(v) => {
            let t = parse_time(&v);
            if t.is_none() {
                out.bad_time();
            }
            t
        }
    };
    let state = row.get(Col::ConnState);
    let history = row.get(Col::History);
    let local = |c: Col| match row.get(c).as_deref() {
        Some(b"T" | b"true") => Some(true),
        Some(b"F" | b"false") => Some(false),
        _ => None,
    };
    let reply = reply(
        proto,
        state.as_deref(),
        history.as_deref(),
        resp_pkts.filter(|p| p.is_finite()),
    );
    let mut f = bare_flow(
        (src, sport),
        (dst, dport),
        FlowMeta {
            initiator_known: true,
            reply,
            src_local: local(Col::LocalOrig),
            dst_local: local(Col::LocalResp),
        },
    );
    f.protocol = proto;
    f.timestamp = timestamp;
    f.duration_us = out.count(duration);
    let packets = (out.count(orig_pkts), out.count(resp_pkts));
    super::set_counts(
        &mut f,
        packets,
        (out.count(orig_bytes), out.count(resp_bytes)),
    );
    f.flow_id = row.text(Col::Uid);
    f.label = row.text(Col::Label);
    Ok(f)
}

/// Whether the responder answered, by Zeek's connection state and
/// history (see the module's notes).
pub(crate) fn reply(
    proto: Option<u8>,
    state: Option<&[u8]>,
    history: Option<&[u8]>,
    resp_pkts: Option<f64>,
) -> Reply {
    match state {
        Some(b"S0" | b"REJ" | b"RSTOS0" | b"SH") => return Reply::Unanswered,
        Some(b"RSTRH" | b"SHR") => return Reply::Unknown,
        Some(b"OTH") if resp_pkts.is_none_or(|p| p == 0.0) => return Reply::Unanswered,
        _ => {}
    }
    let responder_spoke = history.is_some_and(|h| h.iter().any(|b| matches!(b, b'h' | b'd')));
    if responder_spoke || resp_pkts.is_some_and(|p| p > 0.0) {
        return Reply::Answered;
    }
    match (proto, resp_pkts, state) {
        (_, Some(_), _) => Reply::Unanswered,
        // Without packet counts, UDP's and ICMP's states still tell.
        (_, None, Some(b"SF" | b"S1" | b"S2" | b"S3" | b"RSTO" | b"RSTR")) => Reply::Answered,
        _ => Reply::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_unescape() {
        assert_eq!(unescape(br"\x09"), b"\t");
        assert_eq!(unescape(br"\x2c\x20"), b", ");
        assert_eq!(unescape(b"|"), b"|");
        assert_eq!(unescape(br"\xZZ"), br"\xZZ");
    }

    #[test]
    fn replies_follow_zeek_states() {
        let r = |s: &str, h: &str, p: Option<f64>| {
            reply(
                Some(6),
                Some(s.as_bytes()).filter(|s| !s.is_empty()),
                Some(h.as_bytes()).filter(|h| !h.is_empty()),
                p,
            )
        };
        assert_eq!(r("S0", "S", Some(0.0)), Reply::Unanswered);
        assert_eq!(r("REJ", "Sr", Some(1.0)), Reply::Unanswered);
        assert_eq!(r("RSTOS0", "SR", Some(0.0)), Reply::Unanswered);
        assert_eq!(r("SH", "SF", Some(0.0)), Reply::Unanswered);
        assert_eq!(r("OTH", "", Some(0.0)), Reply::Unanswered);
        assert_eq!(r("OTH", "D", Some(3.0)), Reply::Answered);
        assert_eq!(r("RSTRH", "hR", Some(1.0)), Reply::Unknown);
        assert_eq!(r("SHR", "hf", Some(2.0)), Reply::Unknown);
        assert_eq!(r("SF", "ShADadFf", Some(5.0)), Reply::Answered);
        assert_eq!(r("S1", "Sh", None), Reply::Answered);
        assert_eq!(r("", "", None), Reply::Unknown);
    }
}
