//! The flow formats beside CICFlowMeter's CSV: Zeek's `conn.log` (TSV
//! and JSON lines), nfdump's CSV, Argus `ra` CSV, Suricata's `eve.json`
//! flow events and Parquet flow tables. Each reader turns its records into
//! the same [`Flow`] the CSV reader gives, stating in [`FlowMeta`] what its
//! format knows about direction, answers and locality; profiling does the
//! rest.
//!
//! Every reader keeps the CSV reader's rules: a record that cannot be used
//! is skipped and counted by reason, the first few reported with file,
//! line, field and value; counts that are negative or implausibly large
//! are kept as missing values; a missing field is missing, never 0.

pub mod argus;
pub mod nfdump;
pub mod parquet;
pub mod suricata;
pub mod zeek;

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use super::lines::LineReader;
use super::{Flow, FlowMeta, MAX_PLAUSIBLE, ReadError, ReadStats, RowProblem, SkipReason, shown};

/// A flow format latmove reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// CICFlowMeter's CSV (CIC-IDS2017 and its relatives).
    Cic,
    /// Zeek's `conn.log`, tab-separated with `#` header lines.
    Zeek,
    /// Zeek's `conn.log` as JSON lines.
    ZeekJson,
    /// `nfdump -o csv` (any release) or `-o csv:...`.
    Nfdump,
    /// Argus `ra -c` (comma or tab) with a header line.
    Argus,
    /// Suricata's `eve.json` (its `flow` events).
    Suricata,
    /// A Parquet flow table.
    Parquet,
}

impl Format {
    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 7] = [
        Format::Cic,
        Format::Zeek,
        Format::ZeekJson,
        Format::Nfdump,
        Format::Argus,
        Format::Suricata,
        Format::Parquet,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Cic => "cic",
            Format::Zeek => "zeek",
            Format::ZeekJson => "zeek-json",
            Format::Nfdump => "nfdump",
            Format::Argus => "argus",
            Format::Suricata => "suricata",
            Format::Parquet => "parquet",
        }
    }

    /// The format in words, as the summary prints it.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Cic => "CICFlowMeter CSV",
            Format::Zeek => "Zeek conn.log (TSV)",
            Format::ZeekJson => "Zeek conn.log (JSON)",
            Format::Nfdump => "nfdump CSV",
            Format::Argus => "Argus ra CSV",
            Format::Suricata => "Suricata eve.json",
            Format::Parquet => "Parquet flow table",
        }
    }

    /// The format of a `--format` name; `Ok(None)` for `auto`.
    pub fn parse(s: &str) -> Result<Option<Format>, String> {
        if s == "auto" {
            return Ok(None);
        }
        Format::ALL
            .iter()
            .find(|f| f.name() == s)
            .map(|f| Some(*f))
            .ok_or_else(|| {
                format!(
                    "unknown format '{s}': one of auto, {}",
                    Format::ALL.map(Format::name).join(", ")
                )
            })
    }

    fn code(self) -> u8 {
        Format::ALL.iter().position(|f| *f == self).expect("in ALL") as u8 + 1
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The format `--format` forces (0: detect each input by its content).
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Forces one format for every later read (`--format`), or goes back to
/// detecting each input's (`None`).
pub fn force(format: Option<Format>) {
    FORCED.store(format.map_or(0, Format::code), Ordering::Relaxed);
}

/// The format `--format` forces, if any.
pub fn forced() -> Option<Format> {
    match FORCED.load(Ordering::Relaxed) {
        0 => None,
        c => Format::ALL.get(usize::from(c) - 1).copied(),
    }
}

/// The magic bytes at both ends of a Parquet file.
pub const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// Whether `path` is a Parquet file (its magic bytes), or `--format`
/// says so.
pub fn is_parquet(path: &Path) -> bool {
    if let Some(f) = forced() {
        return f == Format::Parquet;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == PARQUET_MAGIC)
}

/// Which of latmove's own JSON files starts with `head` (its first bytes,
/// gunzipped), if any: a model, a history or ECS alerts. Told from the
/// order latmove writes their first fields in, since a model or a history
/// is one line of megabytes.
pub fn latmove_json(head: &[u8]) -> Option<&'static str> {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    let has = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
    if line.starts_with(br#"{"format":"latmove-model""#) {
        Some("model")
    } else if line.starts_with(br#"{"version":"#) && has(br#","retention_secs":"#) {
        Some("history")
    } else if line.starts_with(br#"{"@timestamp":"#) && has(br#""module":"latmove""#) {
        Some("alerts")
    } else {
        None
    }
}

/// The first `n` bytes of a file (at most), gunzipped when it is gzip.
pub fn head_of(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path)?);
    let gz = std::io::BufRead::fill_buf(&mut file)?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut head = Vec::with_capacity(n);
    reader.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// How many first bytes [`latmove_json`] looks at.
pub const HEAD_BYTES: usize = 4096;

/// Which of latmove's own JSON files `path` is, if any (none when
/// `--format` says what it is).
pub fn own_json(path: &Path) -> Option<&'static str> {
    if forced().is_some() {
        return None;
    }
    head_of(path, HEAD_BYTES)
        .ok()
        .and_then(|head| latmove_json(&head))
}

/// The format of a file, from its first line (after gunzipping).
pub fn sniff_file(path: &Path) -> Result<Format, ReadError> {
    if is_parquet(path) {
        return Ok(Format::Parquet);
    }
    // The first line only: a gzip file is inflated here, on this thread,
    // as far as the line reader asks.
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let head = std::io::BufRead::fill_buf(&mut file).map_err(io)?;
    let reader: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut lines = LineReader::new(reader);
    match first_line(path, &mut lines)? {
        Some((first, _, _)) => detect(path, &first),
        None => Ok(Format::Cic),
    }
}

/// The format of a text input, told from its first non-empty line (a
/// `#separator` or `#fields` line, a JSON object with Zeek's `id.orig_h`
/// or Suricata's `event_type`, or a CSV header), or `--format`'s.
pub fn detect(path: &Path, first: &[u8]) -> Result<Format, ReadError> {
    if let Some(f) = forced() {
        return Ok(f);
    }
    let unknown = |why: &str| ReadError::UnknownFormat {
        path: path.to_path_buf(),
        seen: format!("{why}: {:?}", shown(first)),
    };
    if first.starts_with(PARQUET_MAGIC) {
        return Ok(Format::Parquet);
    }
    if first.starts_with(b"#separator") || first.starts_with(b"#fields") {
        return Ok(Format::Zeek);
    }
    if let Some(kind) = latmove_json(first) {
        return Err(unknown(&format!("latmove's own {kind} file, not flows")));
    }
    if first.starts_with(b"{") {
        let Ok(serde_json::Value::Object(o)) = serde_json::from_slice::<serde_json::Value>(first)
        else {
            return Err(unknown(
                "the first line opens a JSON object it does not close",
            ));
        };
        if o.contains_key("event_type") {
            return Ok(Format::Suricata);
        }
        if zeek::json_looks_like_conn(&o) {
            return Ok(Format::ZeekJson);
        }
        return Err(unknown(
            "a JSON object with neither Zeek's id.orig_h nor Suricata's event_type",
        ));
    }
    let names = header_names(first);
    let has = |n: &str| names.iter().any(|h| h == n);
    if (has("ts") && has("sa") && has("da")) || (has("srcaddr") && has("firstseen")) {
        return Ok(Format::Nfdump);
    }
    if has("srcaddr") && has("dstaddr") {
        return Ok(Format::Argus);
    }
    let map = super::columns::ColumnMap::from_header(names.iter().map(|n| n.as_bytes()));
    if map.missing_required().is_empty() {
        return Ok(Format::Cic);
    }
    if names.len() > 1 {
        // A CSV header, but not one we know: the CSV reader names what it
        // misses (and spots the MachineLearningCVE files).
        return Ok(Format::Cic);
    }
    Err(unknown(
        "the first line is none of the formats latmove reads",
    ))
}

/// A header line's names, lower case and trimmed, split at tabs when it
/// has any and no comma, else at commas.
pub(crate) fn header_names(line: &[u8]) -> Vec<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let sep = separator(line);
    line.split(|b| *b == sep)
        .map(|c| {
            String::from_utf8_lossy(c)
                .trim()
                .trim_matches('"')
                .to_ascii_lowercase()
        })
        .collect()
}

/// A delimited line's separator: a tab when it has tabs and no comma, else
/// a comma.
fn separator(line: &[u8]) -> u8 {
    if memchr::memchr(b'\t', line).is_some() && memchr::memchr(b',', line).is_none() {
        b'\t'
    } else {
        b','
    }
}

/// Reads one text input of a format other than [`Format::Cic`] (whose
/// first non-empty line, on line `first_line`, is `first`, `terminated`
/// when a line end followed it) into flows for `sink`.
pub(crate) fn read_text<R: Read, F: FnMut(&Flow<'_>)>(
    format: Format,
    path: &Path,
    (first, first_line, terminated): (&[u8], u64, bool),
    lines: &mut LineReader<R>,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    let mut out = Emit::new(path, stats, sink);
    match format {
        Format::Zeek => zeek::read_tsv(path, (first, first_line), lines, &mut out),
        Format::ZeekJson => zeek::read_json(path, (first, first_line, terminated), lines, &mut out),
        Format::Nfdump => nfdump::read(path, (first, first_line), lines, &mut out),
        Format::Argus => argus::read(path, (first, first_line), lines, &mut out),
        Format::Suricata => suricata::read(path, (first, first_line, terminated), lines, &mut out),
        Format::Cic | Format::Parquet => unreachable!("read elsewhere"),
    }
}

/// Where a reader's records go: counts, problems, the unicast check and
/// the sink, shared by every reader.
pub(crate) struct Emit<'a, F> {
    pub(crate) name: String,
    pub(crate) stats: &'a mut ReadStats,
    sink: &'a mut F,
}

impl<'a, F: FnMut(&Flow<'_>)> Emit<'a, F> {
    pub(crate) fn new(path: &Path, stats: &'a mut ReadStats, sink: &'a mut F) -> Emit<'a, F> {
        Emit {
            name: path.display().to_string(),
            stats,
            sink,
        }
    }

    /// A record that became a flow. Flows to multicast or broadcast
    /// addresses reach no host and are counted, not profiled.
    pub(crate) fn flow(&mut self, flow: &Flow<'_>) {
        if is_multicast_or_broadcast(flow.dst_ip) {
            self.stats.skip(SkipReason::NotUnicast, None);
            return;
        }
        self.stats.flows += 1;
        self.stats.has_labels |= flow.label.is_some();
        (self.sink)(flow);
    }

    /// A record skipped for `reason`, at `line`, its field `column`
    /// holding `value`.
    pub(crate) fn skip(&mut self, reason: SkipReason, line: u64, column: &str, value: &[u8]) {
        let p = RowProblem {
            file: self.name.clone(),
            line,
            column: column.to_string(),
            value: shown(value),
            reason: reason.describe().to_string(),
        };
        self.stats.skip(reason, Some(p));
    }

    /// A record skipped without detail (empty, another event type).
    pub(crate) fn skip_quietly(&mut self, reason: SkipReason) {
        self.stats.skip(reason, None);
    }

    /// A count or duration as the profile may use it: `None` for missing,
    /// non-finite (counted), negative or implausibly large (counted).
    pub(crate) fn count(&mut self, v: Option<f64>) -> Option<f64> {
        match v {
            Some(x) if !x.is_finite() => {
                self.stats.non_finite_values += 1;
                None
            }
            Some(x) if !(0.0..MAX_PLAUSIBLE).contains(&x) => {
                self.stats.implausible_values += 1;
                None
            }
            v => v,
        }
    }

    /// A time that did not parse: counted, the record kept untimed.
    pub(crate) fn bad_time(&mut self) {
        self.stats.bad_timestamps += 1;
    }

    /// Adds `n` to the note `what`.
    pub(crate) fn note(&mut self, what: &str, n: u64) {
        self.stats.note(what, n);
    }
}

/// Whether `ip` is a multicast or broadcast address (IPv4 224.0.0.0/4 or
/// 255.255.255.255; IPv6 ff00::/8): a flow to it reaches no one host.
pub fn is_multicast_or_broadcast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

/// A record's number: `Ok(None)` for an empty or unset cell.
pub(crate) fn number(v: &[u8]) -> Result<Option<f64>, ()> {
    super::parse_number(v).map_err(|_| ())
}

/// The IANA protocol number of a name or number (`tcp`, `TCP`, `6`,
/// `ipv6-icmp`).
pub(crate) fn protocol(v: &[u8]) -> Option<u8> {
    let v = v.trim_ascii();
    if let Some(n) = super::whole_number(v) {
        return u8::try_from(n).ok();
    }
    let lower = v.to_ascii_lowercase();
    Some(match lower.as_slice() {
        b"tcp" => 6,
        b"udp" => 17,
        b"icmp" => 1,
        b"icmp6" | b"ipv6-icmp" | b"icmpv6" => 58,
        b"sctp" => 132,
        b"gre" => 47,
        b"esp" => 50,
        b"igmp" => 2,
        _ => return None,
    })
}

/// Whether a protocol number is ICMP (v4 or v6): its "ports" are a type
/// and a code, read as no port at all.
pub(crate) fn is_icmp(p: Option<u8>) -> bool {
    matches!(p, Some(1 | 58))
}

/// A time in any shape the formats write: epoch seconds (`1391765555.37`),
/// epoch milliseconds (13 digits or more), ISO-8601 with `T` or a space
/// and an optional `Z` or `+hh:mm` offset (converted to UTC), `yyyy/mm/dd
/// hh:mm:ss.f` (Argus), and the CICFlowMeter shapes. Seconds since the
/// epoch.
pub fn parse_time(raw: &[u8]) -> Option<f64> {
    let v = raw.trim_ascii();
    if v.is_empty() {
        return None;
    }
    if v.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        let x: f64 = std::str::from_utf8(v).ok()?.parse().ok()?;
        let int_digits = v.iter().take_while(|b| **b != b'.').count();
        return Some(if int_digits >= 13 { x / 1000.0 } else { x });
    }
    let s = std::str::from_utf8(v).ok()?;
    // yyyy/mm/dd: as yyyy-mm-dd.
    let owned;
    let s = if s.len() > 10 && s.as_bytes()[4] == b'/' && s.as_bytes()[7] == b'/' {
        owned = format!("{}-{}-{}", &s[..4], &s[5..7], &s[8..]);
        owned.as_str()
    } else {
        s
    };
    let (body, offset) = split_offset(s);
    let t = super::timestamp::parse_timestamp(body.as_bytes())?;
    Some(t - offset)
}

/// Splits a trailing `Z`, `+hh:mm`, `+hhmm` or `-hh:mm` off an ISO time:
/// (the rest, the offset in seconds).
fn split_offset(s: &str) -> (&str, f64) {
    if let Some(body) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        return (body, 0.0);
    }
    let b = s.as_bytes();
    // The offset's sign comes after the clock (past "yyyy-mm-ddThh:mm").
    if b.len() > 16 {
        let tail = &s[16..];
        if let Some(i) = tail.rfind(['+', '-']) {
            let (body, off) = s.split_at(16 + i);
            let sign = if off.starts_with('-') { -1.0 } else { 1.0 };
            let digits: String = off[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() == 4 {
                let h: f64 = digits[..2].parse().unwrap_or(0.0);
                let m: f64 = digits[2..].parse().unwrap_or(0.0);
                return (body, sign * (h * 3600.0 + m * 60.0));
            }
        }
    }
    (s, 0.0)
}

/// Reads the first non-empty line of `lines` (a byte order mark dropped):
/// (its bytes, its line number, whether a line end followed it), or `None`
/// for an input without one.
pub(crate) fn first_line<R: Read>(
    path: &Path,
    lines: &mut LineReader<R>,
) -> Result<Option<(Vec<u8>, u64, bool)>, ReadError> {
    let mut n = 0;
    loop {
        n += 1;
        let Some(line) = lines
            .next_line()
            .map_err(|e| super::line_error(path, e, n))?
        else {
            return Ok(None);
        };
        if line.bytes.is_empty() {
            continue;
        }
        let bytes = line
            .bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(line.bytes);
        return Ok(Some((bytes.to_vec(), n, line.terminated)));
    }
}

/// Calls `row` with every non-empty line after line `line_no` (its bytes
/// and number), until it says stop (`Ok(false)`). Lines over
/// [`crate::flows::lines::MAX_LINE`] in a stream and a last line without
/// a line end are counted as skipped rows here.
pub(crate) fn each_line<R: Read, F, G>(
    path: &Path,
    lines: &mut LineReader<R>,
    mut line_no: u64,
    out: &mut Emit<'_, F>,
    mut row: G,
) -> Result<(), ReadError>
where
    F: FnMut(&Flow<'_>),
    G: FnMut(&[u8], u64, &mut Emit<'_, F>) -> Result<bool, ReadError>,
{
    loop {
        let next = lines
            .next_line()
            .map_err(|e| super::line_error(path, e, line_no + 1))?;
        let Some(l) = next else { break };
        line_no += 1;
        if l.overlong {
            out.stats.rows += 1;
            out.skip_quietly(SkipReason::LongLine);
            continue;
        }
        if l.bytes.trim_ascii().is_empty() {
            continue;
        }
        if !l.terminated {
            out.stats.rows += 1;
            out.skip(
                SkipReason::UnterminatedLine,
                line_no,
                "(whole line)",
                l.bytes,
            );
            break;
        }
        if !row(l.bytes, line_no, out)? {
            break;
        }
    }
    Ok(())
}

/// A delimited header's columns, found by name.
pub(crate) struct Columns {
    pub(crate) names: Vec<String>,
    pub(crate) sep: u8,
}

impl Columns {
    pub(crate) fn of(line: &[u8]) -> Columns {
        Columns {
            names: header_names(line),
            sep: separator(line),
        }
    }

    /// The first column with one of these names (lower case).
    pub(crate) fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases
            .iter()
            .find_map(|a| self.names.iter().position(|n| n == a))
    }

    /// The source and destination address columns (the first of each
    /// alias list), or an error naming what is missing by `names`.
    pub(crate) fn ends(
        &self,
        path: &Path,
        (src, dst): (&[&str], &[&str]),
        names: [&'static str; 2],
    ) -> Result<(usize, usize), ReadError> {
        match (self.find(src), self.find(dst)) {
            (Some(s), Some(d)) => Ok((s, d)),
            (s, d) => Err(ReadError::MissingColumns {
                file: path.to_path_buf(),
                missing: [(names[0], s), (names[1], d)]
                    .iter()
                    .filter(|(_, i)| i.is_none())
                    .map(|(n, _)| *n)
                    .collect(),
                machine_learning_cve: false,
            }),
        }
    }

    /// The column's name as the header wrote it (lower-cased).
    pub(crate) fn name(&self, i: usize) -> &str {
        self.names.get(i).map_or("?", String::as_str)
    }

    /// Splits a row into `spans` ((start, end) of each cell).
    pub(crate) fn split(&self, line: &[u8], spans: &mut Vec<(usize, usize)>) {
        spans.clear();
        let mut at = 0;
        for i in memchr::memchr_iter(self.sep, line) {
            spans.push((at, i));
            at = i + 1;
        }
        spans.push((at, line.len()));
    }
}

/// A row's cell `i`, trimmed (`None` past its end or when empty).
pub(crate) fn cell<'a>(
    line: &'a [u8],
    spans: &[(usize, usize)],
    i: Option<usize>,
) -> Option<&'a [u8]> {
    let (a, b) = *spans.get(i?)?;
    Some(line[a..b].trim_ascii()).filter(|v| !v.is_empty())
}

/// A JSON value's text as the readers take it: a string's content
/// (unescaped when it holds escapes), a number's digits, `T`/`F` for a
/// boolean; `None` for null and for an empty string.
pub(crate) fn json_text(v: &serde_json::value::RawValue) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    let raw = v.get().as_bytes();
    match raw {
        b"null" | b"\"\"" => None,
        b"true" => Some(Cow::Borrowed(b"T")),
        b"false" => Some(Cow::Borrowed(b"F")),
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => Some(Cow::Borrowed(inner)),
        [b'"', ..] => serde_json::from_str::<String>(v.get())
            .ok()
            .map(|s| Cow::Owned(s.into_bytes())),
        _ => Some(Cow::Borrowed(raw)),
    }
}

/// A record's ports as a flow's: ICMP's type and code (in the port
/// fields of most formats) are no ports, so an ICMP flow has port 0; any
/// other flow without a destination port has 0 too.
pub(crate) fn flow_ports(
    proto: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
) -> (Option<u16>, u16) {
    if is_icmp(proto) {
        (None, 0)
    } else {
        (sport, dport.unwrap_or(0))
    }
}

/// Sets a flow's packets (out, back) and bytes (out, back).
pub(crate) fn set_counts(
    f: &mut Flow<'_>,
    (out_pkts, back_pkts): (Option<f64>, Option<f64>),
    (out_bytes, back_bytes): (Option<f64>, Option<f64>),
) {
    f.fwd_packets = out_pkts;
    f.bwd_packets = back_pkts;
    f.fwd_bytes = out_bytes;
    f.bwd_bytes = back_bytes;
}

/// The cells of one delimited row (nfdump's and Argus's CSVs), read with
/// the error each kind of cell gives: (reason, column).
pub(crate) struct RowCells<'a> {
    pub(crate) line: &'a [u8],
    pub(crate) spans: &'a [(usize, usize)],
}

/// Why a delimited row was skipped, and in which column.
pub(crate) type CellError = (SkipReason, usize);

impl<'a> RowCells<'a> {
    /// Cell `i`, trimmed (`None` when there is no such column or it is
    /// empty).
    pub(crate) fn get(&self, i: Option<usize>) -> Option<&'a [u8]> {
        cell(self.line, self.spans, i)
    }

    /// The source and destination addresses in columns `src` and `dst`.
    pub(crate) fn ips(&self, src: usize, dst: usize) -> Result<(IpAddr, IpAddr), CellError> {
        let ip = |i: usize, reason| {
            self.get(Some(i))
                .and_then(super::parse_ip)
                .ok_or((reason, i))
        };
        Ok((
            ip(src, SkipReason::BadSourceIp)?,
            ip(dst, SkipReason::BadDestinationIp)?,
        ))
    }

    /// A port read by `parse`; `Ok(None)` for no cell.
    pub(crate) fn port(
        &self,
        i: Option<usize>,
        parse: fn(&[u8]) -> Option<u16>,
    ) -> Result<Option<u16>, CellError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => parse(v)
                .map(Some)
                .ok_or((SkipReason::BadPort, i.unwrap_or(0))),
        }
    }

    /// A number; `Ok(None)` for no cell.
    pub(crate) fn num(&self, i: Option<usize>) -> Result<Option<f64>, CellError> {
        match self.get(i) {
            None => Ok(None),
            Some(v) => number(v).map_err(|()| (SkipReason::BadNumber, i.unwrap_or(0))),
        }
    }
}

/// A flow of `proto` from `start` to `end` (seconds; the duration never
/// negative) between its ends, its counts still unknown.
pub(crate) fn timed_flow<'a>(
    src: (IpAddr, Option<u16>),
    dst: (IpAddr, u16),
    proto: Option<u8>,
    (start, end): (Option<f64>, Option<f64>),
    meta: FlowMeta,
) -> Flow<'a> {
    let mut f = bare_flow(src, dst, meta);
    f.protocol = proto;
    f.timestamp = start;
    f.duration_us = match (start, end) {
        (Some(s), Some(e)) => Some((e - s).max(0.0) * 1e6),
        _ => None,
    };
    f
}

/// A placeholder [`Flow`] for readers: the record's ends, everything else
/// unknown.
pub(crate) fn bare_flow<'a>(
    src: (IpAddr, Option<u16>),
    dst: (IpAddr, u16),
    meta: FlowMeta,
) -> Flow<'a> {
    Flow {
        src_ip: src.0,
        src_port: src.1,
        dst_ip: dst.0,
        dst_port: dst.1,
        protocol: None,
        timestamp: None,
        duration_us: None,
        fwd_packets: None,
        bwd_packets: None,
        fwd_bytes: None,
        bwd_bytes: None,
        rst_flags: None,
        label: None,
        flow_id: None,
        meta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = |s: &str| parse_time(s.as_bytes());
        assert_eq!(t("1391765555.371909"), Some(1391765555.371909));
        assert_eq!(t("1391765555371"), Some(1391765555.371));
        assert_eq!(t("2014-02-07T09:32:35Z"), Some(1391765555.0));
        assert_eq!(t("2014-02-07T10:32:35+01:00"), Some(1391765555.0));
        assert_eq!(t("2014-02-07T09:32:35.500000+0000"), Some(1391765555.5));
        assert_eq!(t("2014-02-07 09:32:35.5"), Some(1391765555.5));
        assert_eq!(t("2014/02/07 09:32:35.5"), Some(1391765555.5));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn formats_by_their_first_line() {
        let p = Path::new("x");
        let d = |s: &str| detect(p, s.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(d("#separator \\x09"), Ok(Format::Zeek));
        assert_eq!(
            d(r#"{"ts":1.5,"uid":"C1","id.orig_h":"10.0.0.1","proto":"tcp","conn_state":"S0"}"#),
            Ok(Format::ZeekJson)
        );
        assert_eq!(
            d(r#"{"timestamp":"x","event_type":"flow"}"#),
            Ok(Format::Suricata)
        );
        assert_eq!(
            d("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt"),
            Ok(Format::Nfdump)
        );
        assert_eq!(
            d("firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows"),
            Ok(Format::Nfdump)
        );
        assert_eq!(
            d("StartTime\tFlgs\tProto\tSrcAddr\tSport\tDir\tDstAddr\tDport\tTotPkts"),
            Ok(Format::Argus)
        );
        assert_eq!(
            d("Source IP,Destination IP,Destination Port"),
            Ok(Format::Cic)
        );
        let e = d("hello world").unwrap_err();
        assert!(e.contains("x: ") && e.contains("hello world"), "{e}");
        let e = d(r#"{"a":1}"#).unwrap_err();
        assert!(e.contains("id.orig_h"), "{e}");
    }
}
