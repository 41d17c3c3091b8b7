//! Streaming reader for CICFlowMeter-style flow CSVs.
//!
//! The reader works on bytes (`csv::ByteRecord`), resolves columns once per
//! file through [`columns::ColumnMap`], parses only the fields profiling
//! needs, and hands each flow to a callback. Nothing is kept per row, so
//! memory depends on what the callback keeps, not on the file size.
//!
//! The traps of the real CIC-IDS2017 files are handled here: `Infinity` and
//! `NaN` in numeric fields, labels with non-UTF-8 bytes (passed on as bytes),
//! rows whose every field is empty (skipped and counted), and rows with an
//! unparsable IP, port or number (skipped, counted, and the first few
//! reported with file, line, column and value).

pub mod check;
pub mod columns;
pub mod formats;
pub mod lines;
pub mod parallel;
pub mod record;
mod scan;
pub mod timestamp;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use columns::{ColumnMap, Field};
use lines::{LineError, LineReader, split_fields};

/// One flow, with the fields profiling uses. Optional fields are `None`
/// when the file has no such column or the cell is empty.
#[derive(Debug, Clone)]
pub struct Flow<'a> {
    /// Source address as the file gives it.
    pub src_ip: IpAddr,
    /// Source port (absent in some layouts).
    pub src_port: Option<u16>,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number, when the file has it.
    pub protocol: Option<u8>,
    /// Seconds since the epoch, as written in the file (see [`timestamp`]).
    pub timestamp: Option<f64>,
    /// Microseconds; `None` when missing, non-finite or negative.
    pub duration_us: Option<f64>,
    /// Packets from source to destination.
    pub fwd_packets: Option<f64>,
    /// Packets from destination to source.
    pub bwd_packets: Option<f64>,
    /// Bytes from source to destination.
    pub fwd_bytes: Option<f64>,
    /// Bytes from destination to source.
    pub bwd_bytes: Option<f64>,
    /// Packets with RST set (may be unreliable in the 2017 files).
    pub rst_flags: Option<f64>,
    /// The raw label bytes, trimmed; may hold non-UTF-8 bytes.
    pub label: Option<&'a [u8]>,
    /// The raw Flow ID, when the file has one (Zeek's `uid`, Suricata's
    /// `flow_id`), so an analyst can pivot to the sensor's other logs.
    pub flow_id: Option<&'a [u8]>,
    /// What the format says about direction, answers and locality.
    pub meta: FlowMeta,
}

/// Whether the responder answered, as a format states it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Reply {
    /// Judged from the counts: no packet back, or a reset, is no answer
    /// (CICFlowMeter CSVs, which say nothing more).
    #[default]
    FromCounts,
    /// The responder answered (a SYN-ACK, data, a reply record).
    Answered,
    /// Nobody answered (Zeek's S0, REJ, RSTOS0, SH; an unpaired NetFlow
    /// request without ACK).
    Unanswered,
    /// Cannot be told (Zeek's RSTRH and SHR: the opening SYN was not
    /// seen); not counted for or against the initiator.
    Unknown,
}

/// What a reader knows about a flow beyond its fields. The default is what
/// a CICFlowMeter CSV says: nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowMeta {
    /// The source is the initiator (Zeek's originator, Suricata's client,
    /// a paired NetFlow request): no re-orientation by ports.
    pub initiator_known: bool,
    /// Whether the responder answered.
    pub reply: Reply,
    /// The sensor's word on whether the source is local (Zeek's
    /// `local_orig`); `None` leaves it to `--internal`.
    pub src_local: Option<bool>,
    /// The same for the destination (`local_resp`).
    pub dst_local: Option<bool>,
}

impl FlowMeta {
    /// The meta packed in a byte (for [`record::FlowRecord`]).
    pub fn pack(self) -> u8 {
        let reply = match self.reply {
            Reply::FromCounts => 0,
            Reply::Answered => 1,
            Reply::Unanswered => 2,
            Reply::Unknown => 3,
        };
        let local = |l: Option<bool>| match l {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        };
        u8::from(self.initiator_known)
            | reply << 1
            | local(self.src_local) << 3
            | local(self.dst_local) << 5
    }

    /// The meta of [`FlowMeta::pack`]'s byte.
    pub fn unpack(b: u8) -> FlowMeta {
        let local = |v: u8| match v & 3 {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        };
        FlowMeta {
            initiator_known: b & 1 == 1,
            reply: match b >> 1 & 3 {
                1 => Reply::Answered,
                2 => Reply::Unanswered,
                3 => Reply::Unknown,
                _ => Reply::FromCounts,
            },
            src_local: local(b >> 3),
            dst_local: local(b >> 5),
        }
    }
}

/// Why a row was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Every field empty (288,602 such rows in the Thursday-morning file).
    EmptyRow,
    /// Fewer fields than the columns latmove needs.
    ShortRow,
    /// The header repeated inside the data (some CSE-CIC-IDS2018 files
    /// concatenate captures, headers included).
    RepeatedHeader,
    /// The source address is not an IP address.
    BadSourceIp,
    /// The destination address is not an IP address.
    BadDestinationIp,
    /// A port is not a number from 0 to 65535.
    BadPort,
    /// A numeric cell is not a number.
    BadNumber,
    /// A field opens a quote that the line does not close.
    UnterminatedQuote,
    /// The file's last line has no line end: the file was cut, or is still
    /// being written.
    UnterminatedLine,
    /// A line longer than [`lines::MAX_LINE`] in a stream (`watch`).
    LongLine,
    /// A flow to a multicast or broadcast address (no one host reached).
    NotUnicast,
    /// An event that is not a flow (Suricata's alerts, dns, stats ...).
    OtherEvent,
    /// A record that is no IP flow (Argus management records, ARP).
    NotAFlow,
    /// A line that is not a JSON object.
    BadRecord,
    /// A row of a feature table with more or fewer cells than its header.
    FieldCount,
    /// A cell that is none of the words its column takes (a feature
    /// table's `internal`: true/false; `label`: attack/benign).
    BadValue,
}

impl SkipReason {
    /// Whether a row skipped for this reason is reported with its place
    /// (empty rows, repeated headers, overlong lines and records that are
    /// not unicast flows are only counted).
    pub fn detailed(self) -> bool {
        !matches!(
            self,
            SkipReason::EmptyRow
                | SkipReason::RepeatedHeader
                | SkipReason::LongLine
                | SkipReason::NotUnicast
                | SkipReason::OtherEvent
                | SkipReason::NotAFlow
        )
    }

    /// The reason in words, as the summary prints it.
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::EmptyRow => "empty rows",
            SkipReason::ShortRow => "rows with too few fields",
            SkipReason::RepeatedHeader => "repeated header rows",
            SkipReason::BadSourceIp => "unparsable source IP",
            SkipReason::BadDestinationIp => "unparsable destination IP",
            SkipReason::BadPort => "unparsable port",
            SkipReason::BadNumber => "unparsable number",
            SkipReason::UnterminatedQuote => "unterminated quoted field",
            SkipReason::UnterminatedLine => "last line without a line end",
            SkipReason::LongLine => "lines longer than 1 MiB",
            SkipReason::NotUnicast => "multicast/broadcast destination",
            SkipReason::OtherEvent => "events other than flows",
            SkipReason::NotAFlow => "records that are no IP flow",
            SkipReason::BadRecord => "lines that are no JSON object",
            SkipReason::FieldCount => "rows with another number of fields than the header",
            SkipReason::BadValue => "values of the wrong kind",
        }
    }
}

/// One skipped row, reported with where it was and what was wrong.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RowProblem {
    /// The file.
    pub file: String,
    /// The line (1 = the header).
    pub line: u64,
    /// The column's name in the header.
    pub column: String,
    /// The cell as read (shortened when long).
    pub value: String,
    /// Why the row was skipped.
    pub reason: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: column '{}': {}: {:?}",
            self.file, self.line, self.column, self.reason, self.value
        )
    }
}

/// Counts and durations (µs) from this value on are implausible: 2^53, the
/// largest a sum of floats still counts one by one.
pub const MAX_PLAUSIBLE: f64 = 9_007_199_254_740_992.0;

/// How many problem rows are kept with full detail.
pub const MAX_PROBLEMS_KEPT: usize = 10;

/// What one read saw.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    /// Files read, in order.
    pub files: Vec<PathBuf>,
    /// Data rows seen (header lines excluded), including skipped ones.
    pub rows: u64,
    /// Rows turned into flows.
    pub flows: u64,
    /// Rows skipped, by reason.
    pub skipped: BTreeMap<SkipReason, u64>,
    /// The first [`MAX_PROBLEMS_KEPT`] skipped rows (empty rows and repeated
    /// headers excluded).
    pub problems: Vec<RowProblem>,
    /// Numeric cells holding `Infinity`/`NaN` (kept, never fed to the model).
    pub non_finite_values: u64,
    /// Flows with a negative duration (kept; duration treated as missing).
    pub negative_durations: u64,
    /// Counts (packets, bytes, RST flags) that are negative, and counts or
    /// durations of [`MAX_PLAUSIBLE`] or more (kept as missing values, so a
    /// poisoned cell can neither shift the features nor overflow a sum).
    pub implausible_values: u64,
    /// Timestamps present but in no known shape (row kept, time unknown).
    pub bad_timestamps: u64,
    /// Whether any file had a label column.
    pub has_labels: bool,
    /// Whether the rows are a feature table's (host-window rows, counted
    /// in `flows` when used), not flows.
    pub feature_table: bool,
    /// What else a reader has to say, with a count: files of each format
    /// other than CICFlowMeter's, records paired or merged.
    pub notes: BTreeMap<String, u64>,
}

impl ReadStats {
    /// Rows skipped for any reason.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Adds `n` to the note `what` (nothing for 0).
    pub fn note(&mut self, what: &str, n: u64) {
        if n > 0 {
            *self.notes.entry(what.to_string()).or_default() += n;
        }
    }

    fn skip(&mut self, reason: SkipReason, problem: Option<RowProblem>) {
        *self.skipped.entry(reason).or_default() += 1;
        if let Some(p) = problem
            && self.problems.len() < MAX_PROBLEMS_KEPT
        {
            self.problems.push(p);
        }
    }
}

/// Errors that stop a read.
#[derive(Debug)]
pub enum ReadError {
    /// A path given on the command line does not exist or holds no CSV.
    NoInput {
        /// The input that is missing.
        path: PathBuf,
    },
    /// A file lacks the columns a host profile needs.
    MissingColumns {
        /// The file.
        file: PathBuf,
        /// The columns it lacks.
        missing: Vec<&'static str>,
        /// The file looks like the MachineLearningCVE variant (no IPs).
        machine_learning_cve: bool,
    },
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// An input exists but is neither a regular file nor a directory.
    NotAFile {
        /// The input.
        path: PathBuf,
    },
    /// A line is longer than [`lines::MAX_LINE`].
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// Where: `line N` or `byte N`.
        at: String,
    },
    /// The file has no header line.
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The header line opens a quote it does not close.
    BadHeader {
        /// The file.
        path: PathBuf,
    },
    /// The input is in no format latmove reads (or not as it should be).
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What was seen.
        seen: String,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::NoInput { path } => write!(
                f,
                "{}: no such file, or a directory without flow files (.csv, .tsv, .json, \
                 .parquet, Zeek's conn*.log; plain or .gz)",
                path.display()
            ),
            ReadError::MissingColumns {
                file,
                missing,
                machine_learning_cve,
            } => {
                write!(
                    f,
                    "{}: missing column(s) {}: latmove profiles hosts and needs \
                     source and destination IPs",
                    file.display(),
                    missing
                        .iter()
                        .map(|m| format!("'{m}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                if *machine_learning_cve {
                    write!(
                        f,
                        ". This looks like the MachineLearningCVE variant \
                         (MachineLearningCSV.zip), which has no IP columns; \
                         use the TrafficLabelling files (GeneratedLabelledFlows.zip), \
                         which have them"
                    )?;
                } else {
                    write!(
                        f,
                        ". The CIC-IDS2017 TrafficLabelling files \
                         (GeneratedLabelledFlows.zip) have them"
                    )?;
                }
                Ok(())
            }
            ReadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ReadError::LineTooLong { path, at } => write!(
                f,
                "{}: {at}: a line longer than {} bytes (flow rows are under 1 KB; is this a flow CSV?)",
                path.display(),
                lines::MAX_LINE
            ),
            ReadError::Empty { path } => write!(f, "{}: the file is empty", path.display()),
            ReadError::NotAFile { path } => write!(
                f,
                "{}: not a regular file (a FIFO, device or socket); give a file, or stream it into `latmove watch -`",
                path.display()
            ),
            ReadError::UnknownFormat { path, seen } => write!(
                f,
                "{}: {seen} (latmove reads CICFlowMeter CSV, Zeek conn.log, nfdump CSV, \
                 Argus CSV, Suricata eve.json and Parquet; --format names one)",
                path.display()
            ),
            ReadError::BadHeader { path } => write!(
                f,
                "{}: line 1: the header opens a quote it does not close",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Expands command-line paths: files as given, directories searched
/// recursively for flow files ([`is_flow_file_name`]), sorted by path (so
/// Zeek's `YYYY-MM-DD/conn.HH:MM:SS-HH:MM:SS.log.gz` come in time order).
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ReadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            collect_csvs(p, &mut found)?;
            if found.is_empty() {
                return Err(ReadError::NoInput { path: p.clone() });
            }
            found.sort();
            out.extend(found);
        } else if p.is_file() {
            // Named as an input, latmove's own model, history or alerts is
            // refused for what it is (one a directory holds is skipped).
            if let Some(kind) = formats::own_json(p) {
                return Err(ReadError::UnknownFormat {
                    path: p.clone(),
                    seen: format!("latmove's own {kind} file, not flows"),
                });
            }
            out.push(p.clone());
        } else if p.exists() {
            return Err(ReadError::NotAFile { path: p.clone() });
        } else {
            return Err(ReadError::NoInput { path: p.clone() });
        }
    }
    Ok(out)
}

fn collect_csvs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadError::Io { path, source }
    };
    // A directory latmove writes its outputs into (marked by `.latmove`):
    // its own CSVs are never read back as flows.
    let ours = dir.join(".latmove").is_file();
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if ours && is_latmove_output(&name) {
            not_reading(path, "latmove wrote it");
            continue;
        }
        if path.is_dir() {
            collect_csvs(&path, out)?;
        } else if is_flow_file_name(&name) {
            // A model, history or alerts file latmove wrote beside the
            // flows (`train -o`, `--history`, `--alerts`) is not read back.
            if is_json_name(&name)
                && let Some(kind) = formats::own_json(&path)
            {
                not_reading(path, &format!("latmove's own {kind} file"));
                continue;
            }
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a file in a directory given as input is read: flow CSVs and
/// TSVs (`.csv`, `.tsv`, Argus's `.binetflow`), JSON lines (`.json`,
/// `.jsonl`, `.ndjson`: eve.json, Zeek's JSON logs), Zeek's conn logs
/// (`conn.log`, `conn.10:00:00-11:00:00.log`, whatever the writer; its
/// other logs are not flows), each plain or `.gz`, and `.parquet` tables.
/// `name` is lower case.
pub fn is_flow_file_name(name: &str) -> bool {
    let base = name.strip_suffix(".gz").unwrap_or(name);
    if name.ends_with(".parquet") {
        return true;
    }
    [".csv", ".tsv", ".binetflow"]
        .iter()
        .chain(JSON_SUFFIXES)
        .any(|e| base.ends_with(e))
        || (base.ends_with(".log") && base.starts_with("conn"))
}

/// Says a file in an input directory is not read, and why: once a file,
/// however often the inputs are listed.
fn not_reading(path: PathBuf, why: &str) {
    static SAID: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if let Ok(mut said) = SAID.lock()
        && !said.contains(&path)
    {
        eprintln!("latmove: not reading {}: {why}", path.display());
        said.push(path);
    }
}

/// The names of JSON lines files.
const JSON_SUFFIXES: &[&str] = &[".json", ".jsonl", ".ndjson"];

/// Whether a (lower-case) file name is JSON lines, plain or `.gz`.
fn is_json_name(name: &str) -> bool {
    let base = name.strip_suffix(".gz").unwrap_or(name);
    JSON_SUFFIXES.iter().any(|e| base.ends_with(e))
}

/// Whether a file or directory name is one latmove writes into an output
/// directory (`--out`, `--report`).
fn is_latmove_output(name: &str) -> bool {
    name == "host_scores.csv"
        || name == "flagged_hosts.csv"
        || name == "metrics.json"
        || name == "manifest.json"
        || (name.starts_with("host-") && name.ends_with("-flows.csv"))
        || name.starts_with(".latmove-staging.")
}

/// Opens a file, transparently gunzipping it when it starts with the gzip
/// magic bytes (whatever its name).
pub fn open_maybe_gz(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    maybe_gunzip(File::open(path)?)
}

/// Buffers `raw` and gunzips it when it starts with the gzip magic bytes.
fn maybe_gunzip<R: Read + Send + 'static>(raw: R) -> io::Result<Box<dyn Read + Send>> {
    use std::io::BufRead;
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let buf = buffered.fill_buf()?;
    if buf.len() >= 2 && buf[0] == 0x1f && buf[1] == 0x8b {
        Ok(Box::new(Inflating::spawn(
            flate2::bufread::MultiGzDecoder::new(buffered),
        )?))
    } else {
        Ok(Box::new(buffered))
    }
}

/// A gzip stream inflated on its own thread, a few 256 KB blocks ahead of
/// the parser (bounded, so memory stays flat).
struct Inflating {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
}

impl Inflating {
    fn spawn<R: Read + Send + 'static>(mut inner: R) -> io::Result<Inflating> {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::Builder::new()
            .spawn(move || {
                loop {
                    let mut block = vec![0u8; 1 << 18];
                    let mut filled = 0;
                    // Fill the block (or reach the end) before sending it.
                    let result = loop {
                        match inner.read(&mut block[filled..]) {
                            Ok(0) => break Ok(()),
                            Ok(n) => {
                                filled += n;
                                if filled == block.len() {
                                    break Ok(());
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    block.truncate(filled);
                    let last = filled == 0 || result.is_err();
                    let msg = match result {
                        Err(e) if filled == 0 => Err(e),
                        Err(e) => {
                            // Deliver what was read, then the error.
                            if tx.send(Ok(block)).is_err() {
                                return;
                            }
                            Err(e)
                        }
                        Ok(()) => Ok(block),
                    };
                    if tx.send(msg).is_err() || last {
                        return;
                    }
                }
            })
            .map_err(|e| io::Error::new(e.kind(), format!("starting the gzip thread: {e}")))?;
        Ok(Inflating {
            rx,
            block: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for Inflating {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            match self.rx.recv() {
                Ok(Ok(b)) if b.is_empty() => return Ok(0),
                Ok(Ok(b)) => {
                    self.block = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The inflating thread is gone: the stream ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads every file in `paths` (already expanded), calling `sink` for each
/// flow. Stops only on I/O errors and files without the required columns.
pub fn read_flows<F: FnMut(&Flow<'_>)>(paths: &[PathBuf], sink: F) -> Result<ReadStats, ReadError> {
    read_flows_threads(paths, 1, sink)
}

/// [`read_flows`], a Parquet file's row groups decoded on up to `threads`
/// threads (the flows still come in file order).
pub fn read_flows_threads<F: FnMut(&Flow<'_>)>(
    paths: &[PathBuf],
    threads: usize,
    mut sink: F,
) -> Result<ReadStats, ReadError> {
    let mut stats = ReadStats::default();
    let bar = progress::Bar::for_files(paths);
    for path in paths {
        let mut flows_seen = stats.flows;
        let mut counted = |f: &Flow<'_>| {
            flows_seen += 1;
            if flows_seen % 65_536 == 0
                && let Some(b) = &bar
            {
                b.rows(flows_seen);
            }
            sink(f);
        };
        if formats::is_parquet(path) {
            stats.note("files read as Parquet flow table", 1);
            formats::parquet::read_file(path, threads, &mut stats, &mut counted)?;
            if let Some(b) = &bar {
                b.bytes(std::fs::metadata(path).map_or(0, |m| m.len()));
            }
            stats.files.push(path.clone());
            continue;
        }
        let reader = open_maybe_gz_counted(path, bar.as_ref()).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        read_one(path, reader, &mut stats, &mut counted)?;
        stats.files.push(path.clone());
    }
    if let Some(b) = bar {
        b.finish();
    }
    Ok(stats)
}

/// Like [`open_maybe_gz`], counting the file's bytes into a progress bar.
fn open_maybe_gz_counted(
    path: &Path,
    bar: Option<&progress::Bar>,
) -> io::Result<Box<dyn Read + Send>> {
    match bar {
        Some(bar) => maybe_gunzip(progress::Counting::new(File::open(path)?, bar.clone())),
        None => open_maybe_gz(path),
    }
}

/// A progress bar on stderr for long reads: bytes, flows/s and ETA, shown
/// after the first second, only when enabled (a terminal, no `--quiet`).
pub mod progress {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

    static ENABLED: AtomicBool = AtomicBool::new(false);

    /// Turns the progress bar on or off for later reads.
    pub fn enable(on: bool) {
        ENABLED.store(on, Ordering::Relaxed);
    }

    /// A shared bar; hidden until a read has lasted a second.
    #[derive(Clone)]
    pub struct Bar {
        pb: ProgressBar,
        start: Instant,
        shown: std::sync::Arc<AtomicBool>,
        rows: std::sync::Arc<AtomicU64>,
    }

    impl Bar {
        /// A bar for reading these files (their total size).
        pub fn for_files(paths: &[std::path::PathBuf]) -> Option<Bar> {
            let total = paths
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
            Bar::start(total)
        }

        /// A progress bar for `total` bytes, when progress is shown.
        pub fn start(total: u64) -> Option<Bar> {
            if !ENABLED.load(Ordering::Relaxed) {
                return None;
            }
            let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(Bar {
                pb,
                start: Instant::now(),
                shown: Default::default(),
                rows: Default::default(),
            })
        }

        /// Counts `n` more bytes read.
        pub fn bytes(&self, n: u64) {
            self.pb.inc(n);
            if !self.shown.load(Ordering::Relaxed) && self.start.elapsed() > Duration::from_secs(1)
            {
                self.shown.store(true, Ordering::Relaxed);
                self.pb.set_draw_target(ProgressDrawTarget::stderr());
            }
            let rows = self.rows.load(Ordering::Relaxed);
            let secs = self.start.elapsed().as_secs_f64().max(1e-3);
            self.pb
                .set_message(format!("{:.0} flows/s", rows as f64 / secs));
        }

        /// Records the flows read so far (for the flows/s figure).
        pub fn rows(&self, rows: u64) {
            self.rows.store(rows, Ordering::Relaxed);
        }

        /// Clears the bar.
        pub fn finish(self) {
            self.pb.finish_and_clear();
        }
    }

    /// A reader that reports the bytes it reads.
    pub struct Counting<R> {
        inner: R,
        bar: Bar,
    }

    impl<R> Counting<R> {
        /// Counts what `inner` reads on `bar`.
        pub fn new(inner: R, bar: Bar) -> Self {
            Counting { inner, bar }
        }
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.bar.bytes(n as u64);
            Ok(n)
        }
    }
}

/// What a file's header tells the record loop.
pub(crate) struct FileLayout {
    pub(crate) name: String,
    pub(crate) header: csv::ByteRecord,
    pub(crate) map: ColumnMap,
    /// The highest column index any field needs.
    pub(crate) needed: usize,
}

impl FileLayout {
    /// Checks the header: every required column present.
    pub(crate) fn new(path: &Path, header: csv::ByteRecord) -> Result<FileLayout, ReadError> {
        let map = ColumnMap::from_header(header.iter());
        let missing = map.missing_required();
        if !missing.is_empty() {
            return Err(ReadError::MissingColumns {
                file: path.to_path_buf(),
                missing: missing.iter().map(|f| f.display_name()).collect(),
                // That variant has 79 columns: the 85 less the Flow ID,
                // addresses, source port and timestamp.
                machine_learning_cve: map.get(Field::DstPort).is_some()
                    && map.get(Field::Label).is_some()
                    && header.len() <= 79,
            });
        }
        let needed = Field::ALL
            .iter()
            .filter_map(|f| map.get(*f))
            .max()
            .unwrap_or(0);
        Ok(FileLayout {
            name: path.display().to_string(),
            header,
            map,
            needed,
        })
    }

    fn column_name(&self, i: usize) -> String {
        String::from_utf8_lossy(self.header.get(i).unwrap_or(b"?"))
            .trim()
            .to_string()
    }
}

/// Maps a line error to a read error naming the file and the line.
pub(crate) fn line_error(path: &Path, e: LineError, line: u64) -> ReadError {
    match e {
        LineError::Io(source) => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
        LineError::TooLong => ReadError::LineTooLong {
            path: path.to_path_buf(),
            at: format!("line {line}"),
        },
    }
}

/// Reads the header: the first non-empty line, a UTF-8 byte order mark
/// dropped.
pub(crate) fn read_header<R: Read>(
    path: &Path,
    lines: &mut LineReader<R>,
) -> Result<csv::ByteRecord, ReadError> {
    loop {
        let line = lines
            .next_line()
            .map_err(|e| line_error(path, e, 1))?
            .ok_or_else(|| ReadError::Empty {
                path: path.to_path_buf(),
            })?;
        if line.bytes.is_empty() {
            continue;
        }
        let bytes = line
            .bytes
            .strip_prefix(b"\xEF\xBB\xBF")
            .unwrap_or(line.bytes);
        let mut header = csv::ByteRecord::new();
        split_fields(bytes, &mut header).map_err(|_| ReadError::BadHeader {
            path: path.to_path_buf(),
        })?;
        return Ok(header);
    }
}

/// Reads one file's rows (after its header line) into flows for `sink`,
/// counting into `stats`.
pub fn read_one<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    reader: R,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    read_lines(path, LineReader::new(reader), stats, sink)
}

/// [`read_one`] for a stream (`watch`), which must go on: a line longer
/// than [`lines::MAX_LINE`] is skipped and counted, not an error.
pub fn read_stream<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    reader: R,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    read_lines(path, LineReader::skipping_long_lines(reader), stats, sink)
}

/// The first line tells the format; a CICFlowMeter CSV's header, then
/// every row, are read here, any other format by its reader.
fn read_lines<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    mut lines: LineReader<R>,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    let (first, first_line, terminated) =
        formats::first_line(path, &mut lines)?.ok_or_else(|| ReadError::Empty {
            path: path.to_path_buf(),
        })?;
    let format = formats::detect(path, &first)?;
    match format {
        formats::Format::Cic => {}
        formats::Format::Parquet => {
            return Err(ReadError::UnknownFormat {
                path: path.to_path_buf(),
                seen: "a Parquet file, which is read from a file, not a stream".to_string(),
            });
        }
        other => {
            stats.note(&format!("files read as {}", other.describe()), 1);
            return formats::read_text(
                other,
                path,
                (&first, first_line, terminated),
                &mut lines,
                stats,
                sink,
            );
        }
    }
    let mut header = csv::ByteRecord::new();
    split_fields(&first, &mut header).map_err(|_| ReadError::BadHeader {
        path: path.to_path_buf(),
    })?;
    let layout = FileLayout::new(path, header)?;
    stats.has_labels |= layout.map.get(Field::Label).is_some();
    // Rows are numbered from the header as line 1, blank lines not
    // counted, as the byte-range path numbers them.
    read_records(path, &mut lines, &layout, 1, stats, sink)
}

/// The record loop: reads every line of `lines` (positioned after the
/// header, or at a line start inside the file), the first being on line
/// `line_before + 1`. Empty lines are passed over without counting; rows
/// that cannot be used are skipped and counted.
pub(crate) fn read_records<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    lines: &mut LineReader<R>,
    layout: &FileLayout,
    line_before: u64,
    stats: &mut ReadStats,
    sink: &mut F,
) -> Result<(), ReadError> {
    let mut rec = csv::ByteRecord::new();
    let mut commas = Vec::new();
    let mut memo = Memo::default();
    let mut line: u64 = line_before;
    loop {
        let next = lines
            .next_line()
            .map_err(|e| line_error(path, e, line + 1))?;
        let Some(l) = next else { break };
        if l.overlong {
            line += 1;
            stats.rows += 1;
            stats.skip(SkipReason::LongLine, None);
            continue;
        }
        if l.bytes.is_empty() {
            continue;
        }
        line += 1;
        if !l.terminated {
            unterminated_line(layout, line, l.bytes, stats);
            break;
        }
        if memchr::memchr(b'"', l.bytes).is_none() {
            // No quote: the fields are what lies between the commas.
            let row = scan::SplitRow::split(l.bytes, std::mem::take(&mut commas));
            handle_row(&row, layout, line, stats, &mut memo, sink);
            commas = row.into_buffer();
            continue;
        }
        match split_fields(l.bytes, &mut rec) {
            Ok(()) => handle_row(&rec, layout, line, stats, &mut memo, sink),
            Err((col, at)) => unterminated_quote(layout, line, col, &l.bytes[at..], stats),
        }
    }
    Ok(())
}

/// At most `MAX_VALUE_SHOWN` characters of `bytes`, for a problem report.
pub(crate) fn shown(bytes: &[u8]) -> String {
    const MAX_VALUE_SHOWN: usize = 80;
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(MAX_VALUE_SHOWN) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.into_owned(),
    }
}

/// Counts a last line without a line end, skipped.
pub(crate) fn unterminated_line(
    layout: &FileLayout,
    line: u64,
    bytes: &[u8],
    stats: &mut ReadStats,
) {
    stats.rows += 1;
    let reason = SkipReason::UnterminatedLine;
    stats.skip(
        reason,
        Some(RowProblem {
            file: layout.name.clone(),
            line,
            column: "(whole line)".to_string(),
            value: shown(bytes),
            reason: "the last line has no line end: the file was cut or is still being written"
                .to_string(),
        }),
    );
}

/// Counts a row whose field `col` opens a quote the line does not close.
pub(crate) fn unterminated_quote(
    layout: &FileLayout,
    line: u64,
    col: usize,
    rest: &[u8],
    stats: &mut ReadStats,
) {
    stats.rows += 1;
    stats.skip(
        SkipReason::UnterminatedQuote,
        Some(RowProblem {
            file: layout.name.clone(),
            line,
            column: layout.column_name(col),
            value: shown(rest),
            reason: "a quote opened in this field is not closed on its line".to_string(),
        }),
    );
}

/// The fields of one data row, however they were split.
pub(crate) trait Row {
    /// Field `i`, untrimmed; `None` past the row's end.
    fn field(&self, i: usize) -> Option<&[u8]>;
    /// The number of fields.
    fn width(&self) -> usize;
    /// Whether every field is empty or blank.
    fn is_blank(&self) -> bool;
}

impl Row for csv::ByteRecord {
    fn field(&self, i: usize) -> Option<&[u8]> {
        self.get(i)
    }

    fn width(&self) -> usize {
        self.len()
    }

    fn is_blank(&self) -> bool {
        self.iter().all(|f| f.iter().all(u8::is_ascii_whitespace))
    }
}

/// Checks and parses one data row on line `line`, counting it into
/// `stats`; a usable flow goes to `sink`.
pub(crate) fn handle_row<R: Row, F: FnMut(&Flow<'_>)>(
    rec: &R,
    layout: &FileLayout,
    line: u64,
    stats: &mut ReadStats,
    memo: &mut Memo,
    sink: &mut F,
) {
    let map = &layout.map;
    let needed = layout.needed;
    stats.rows += 1;
    if rec.is_blank() {
        stats.skip(SkipReason::EmptyRow, None);
        return;
    }
    if rec.width() <= needed {
        stats.skip(
            SkipReason::ShortRow,
            Some(RowProblem {
                file: layout.name.clone(),
                line,
                column: layout.column_name(needed),
                value: String::new(),
                reason: format!("row has {} fields, header has {}", rec.width(), map.width),
            }),
        );
        return;
    }
    if let Some(i) = map.get(Field::SrcIp)
        && rec.field(i).map(trim) == layout.header.get(i).map(trim)
    {
        stats.skip(SkipReason::RepeatedHeader, None);
        return;
    }
    match parse_row(rec, map, stats, memo) {
        Ok(flow) => {
            stats.flows += 1;
            sink(&flow);
        }
        Err((reason, col)) => {
            let value = String::from_utf8_lossy(rec.field(col).unwrap_or(b"")).into_owned();
            stats.skip(
                reason,
                Some(RowProblem {
                    file: layout.name.clone(),
                    line,
                    column: layout.column_name(col),
                    value,
                    reason: reason.describe().to_string(),
                }),
            );
        }
    }
}

type RowError = (SkipReason, usize);

/// A row's cells by [`Field`]: (column, trimmed text).
struct Cells<'r, 'm, R: Row> {
    rec: &'r R,
    map: &'m ColumnMap,
}

impl<'r, R: Row> Cells<'r, '_, R> {
    #[inline(always)]
    fn get(&self, f: Field) -> Option<(usize, &'r [u8])> {
        self.map
            .get(f)
            .map(|i| (i, trim(self.rec.field(i).unwrap_or(b""))))
    }

    /// A numeric cell: `None` when absent, empty or not finite (counted).
    #[inline(always)]
    fn number(&self, f: Field, stats: &mut ReadStats) -> Result<Option<f64>, RowError> {
        match self.get(f) {
            None => Ok(None),
            Some((i, v)) => match parse_number(v) {
                Ok(Some(x)) if !x.is_finite() => {
                    stats.non_finite_values += 1;
                    Ok(None)
                }
                Ok(x) => Ok(x),
                Err(NotANumber) => Err((SkipReason::BadNumber, i)),
            },
        }
    }
}

fn parse_row<'r, R: Row>(
    rec: &'r R,
    map: &ColumnMap,
    stats: &mut ReadStats,
    memo: &mut Memo,
) -> Result<Flow<'r>, RowError> {
    let cells = Cells { rec, map };
    let cell = |f: Field| cells.get(f);
    let (i, v) = cell(Field::SrcIp).expect("required column");
    let src_ip = memo.ip(v).ok_or((SkipReason::BadSourceIp, i))?;
    let (i, v) = cell(Field::DstIp).expect("required column");
    let dst_ip = memo.ip(v).ok_or((SkipReason::BadDestinationIp, i))?;
    let (i, v) = cell(Field::DstPort).expect("required column");
    let dst_port = parse_port(v).ok_or((SkipReason::BadPort, i))?;
    let src_port = match cell(Field::SrcPort) {
        Some((_, [])) => None,
        Some((i, v)) => Some(parse_port(v).ok_or((SkipReason::BadPort, i))?),
        None => None,
    };
    let protocol = cells.number(Field::Protocol, stats)?;
    let mut duration_us = cells.number(Field::Duration, stats)?;
    let fwd_packets = cells.number(Field::FwdPackets, stats)?;
    let bwd_packets = cells.number(Field::BwdPackets, stats)?;
    let fwd_bytes = cells.number(Field::FwdBytes, stats)?;
    let bwd_bytes = cells.number(Field::BwdBytes, stats)?;
    let rst_flags = cells.number(Field::RstFlags, stats)?;
    if duration_us.is_some_and(|d| d < 0.0) {
        stats.negative_durations += 1;
        duration_us = None;
    }
    let mut plausible = |v: Option<f64>| match v {
        Some(x) if !(0.0..MAX_PLAUSIBLE).contains(&x) => {
            stats.implausible_values += 1;
            None
        }
        v => v,
    };
    let (duration_us, fwd_packets) = (plausible(duration_us), plausible(fwd_packets));
    let (bwd_packets, fwd_bytes) = (plausible(bwd_packets), plausible(fwd_bytes));
    let (bwd_bytes, rst_flags) = (plausible(bwd_bytes), plausible(rst_flags));
    let timestamp = match cell(Field::Timestamp) {
        Some((_, v)) if !v.is_empty() => {
            let t = memo.time.parse(v);
            if t.is_none() {
                stats.bad_timestamps += 1;
            }
            t
        }
        _ => None,
    };
    Ok(Flow {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        protocol: protocol_number(protocol),
        timestamp,
        duration_us,
        fwd_packets,
        bwd_packets,
        fwd_bytes,
        bwd_bytes,
        rst_flags,
        label: cell(Field::Label).map(|(_, v)| v).filter(|v| !v.is_empty()),
        flow_id: cell(Field::FlowId)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty()),
        meta: FlowMeta::default(),
    })
}

/// The IP protocol number of a parsed Protocol cell (`None` outside
/// 0..=255); one rule for the general and the quick row paths.
#[inline(always)]
fn protocol_number(p: Option<f64>) -> Option<u8> {
    p.filter(|p| (0.0..=255.0).contains(p)).map(|p| p as u8)
}

#[inline(always)]
fn trim(b: &[u8]) -> &[u8] {
    // Cells almost never have spaces around them: two tests settle it.
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if !f.is_ascii_whitespace() && !l.is_ascii_whitespace() => b,
        _ => b.trim_ascii(),
    }
}

/// Parses an IPv4 or IPv6 address from bytes.
pub fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    if let Some(v4) = parse_ipv4_fast(v) {
        return Some(IpAddr::V4(v4));
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// What a parsing thread remembers between rows, so that texts repeated
/// across a file are parsed once: a day of flows names a few thousand
/// addresses hundreds of thousands of times, and consecutive rows mostly
/// share their timestamp text. Whatever it holds, it gives what parsing
/// gives (tested).
pub(crate) struct Memo {
    /// Addresses of 8 to 16 bytes (nearly all), keyed by their length and
    /// their first and last eight bytes (which cover the whole text), in
    /// direct-mapped slots: a slot holds the last text that hashed to it.
    ips: Box<[IpSlot]>,
    time: timestamp::TimestampMemo,
}

/// (first eight bytes, last eight bytes, length, parse); length 0 marks an
/// empty slot (never a key).
type IpSlot = (u64, u64, usize, Option<IpAddr>);

impl Default for Memo {
    fn default() -> Memo {
        Memo {
            ips: vec![(0, 0, 0, None); Memo::IP_SLOTS].into_boxed_slice(),
            time: timestamp::TimestampMemo::default(),
        }
    }
}

impl Memo {
    const IP_SLOTS: usize = 1 << 12;

    /// What [`parse_ip`] gives for `raw`.
    #[inline]
    fn ip(&mut self, raw: &[u8]) -> Option<IpAddr> {
        let n = raw.len();
        if !(8..=16).contains(&n) {
            return parse_ip(raw);
        }
        let word = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
        let (head, tail) = (word(0), word(n - 8));
        let hash = (head ^ tail.rotate_left(23) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = &mut self.ips[(hash >> (64 - Self::IP_SLOTS.trailing_zeros())) as usize];
        if slot.2 == n && slot.0 == head && slot.1 == tail {
            return slot.3;
        }
        let value = parse_ip(raw);
        *slot = (head, tail, n, value);
        value
    }
}

/// Dotted-quad IPv4 without the detour through `str`: four decimal octets
/// of one to three digits, at most 255, no leading zero (what the standard
/// parser accepts). Anything else is left to the standard parser.
fn parse_ipv4_fast(v: &[u8]) -> Option<std::net::Ipv4Addr> {
    if v.len() > 15 {
        return None;
    }
    // One pass: `digits` of the octet being read, its value `n`.
    let mut octets = [0u8; 4];
    let (mut k, mut n, mut digits) = (0usize, 0u16, 0u8);
    for &b in v {
        match b {
            b'.' => {
                if digits == 0 || k == 3 {
                    return None;
                }
                octets[k] = u8::try_from(n).ok()?;
                (k, n, digits) = (k + 1, 0, 0);
            }
            b'0'..=b'9' => {
                // No leading zero, at most three digits.
                if (digits == 1 && n == 0) || digits == 3 {
                    return None;
                }
                n = n * 10 + u16::from(b - b'0');
                digits += 1;
            }
            _ => return None,
        }
    }
    if k != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(n).ok()?;
    Some(std::net::Ipv4Addr::from(octets))
}

/// The value of 1 to 15 ASCII digits (exact as an `f64` too), `None` for
/// anything else: one pass without a branch a byte (a non-digit clears
/// `ok`; its value, at most 255, cannot overflow 15 places).
#[inline(always)]
pub(crate) fn whole_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    let mut ok = true;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        ok &= d < 10;
        n = n * 10 + u64::from(d);
    }
    ok.then_some(n)
}

/// Parses a port: an integer 0..=65535 (a float with no fraction, such as
/// `80.0`, is accepted too).
#[inline]
pub fn parse_port(v: &[u8]) -> Option<u16> {
    if v.len() <= 5
        && let Some(n) = whole_number(v)
    {
        return u16::try_from(n).ok();
    }
    let x: f64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    (x.fract() == 0.0 && (0.0..=65535.0).contains(&x)).then_some(x as u16)
}

/// Parses a numeric cell: `Ok(None)` for an empty cell, `Ok(Some(inf/NaN))`
/// for `Infinity`/`NaN` spellings, `Err` for anything else unparsable.
#[inline(always)]
pub fn parse_number(v: &[u8]) -> Result<Option<f64>, NotANumber> {
    if v.is_empty() {
        return Ok(None);
    }
    // Whole numbers (most cells): exact below 2^53, as `str::parse` gives.
    let (neg, digits) = match v[0] {
        b'-' => (true, &v[1..]),
        _ => (false, v),
    };
    if let Some(n) = whole_number(digits) {
        let n = n as f64;
        return Ok(Some(if neg { -n } else { n }));
    }
    parse_number_text(v)
}

/// [`parse_number`] beyond whole numbers.
#[cold]
#[inline(never)]
fn parse_number_text(v: &[u8]) -> Result<Option<f64>, NotANumber> {
    let s = std::str::from_utf8(v).map_err(|_| NotANumber)?;
    match s.parse::<f64>() {
        Ok(x) => Ok(Some(x)),
        Err(_) => match s.to_ascii_lowercase().as_str() {
            "infinity" | "+infinity" | "inf" => Ok(Some(f64::INFINITY)),
            "-infinity" | "-inf" => Ok(Some(f64::NEG_INFINITY)),
            "nan" | "-nan" => Ok(Some(f64::NAN)),
            _ => Err(NotANumber),
        },
    }
}

/// A numeric cell that holds no number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotANumber;

/// True for a label meaning benign traffic (`BENIGN`, any case).
pub fn is_benign_label(label: &[u8]) -> bool {
    label.trim_ascii().eq_ignore_ascii_case(b"benign")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b""), Ok(None));
        assert_eq!(parse_number(b"12.5"), Ok(Some(12.5)));
        assert!(parse_number(b"Infinity").unwrap().unwrap().is_infinite());
        assert!(parse_number(b"NaN").unwrap().unwrap().is_nan());
        assert!(parse_number(b"abc").is_err());
        assert_eq!(parse_port(b"443"), Some(443));
        assert_eq!(parse_port(b"80.0"), Some(80));
        assert_eq!(parse_port(b"70000"), None);
        assert_eq!(parse_port(b"x"), None);
    }

    #[test]
    fn fast_paths_agree_with_the_standard_parsers() {
        for n in [
            "0",
            "-0",
            "007",
            "42",
            "-17",
            "123456789012345",
            "1234567890123456",
            "99999999999999999999",
            "12.5",
            "-",
            "+5",
            "1e3",
            "0x10",
        ] {
            let std: Result<f64, _> = n.parse();
            match (parse_number(n.as_bytes()), std) {
                (Ok(Some(a)), Ok(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{n}"),
                (Err(NotANumber), Err(_)) => {}
                (a, b) => panic!("{n}: {a:?} vs {b:?}"),
            }
        }
        for ip in [
            "192.168.10.8",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "::1",
            "fe80::1",
            "1.2.3.a",
            "10.0.0.1000",
            "",
        ] {
            let std: Option<IpAddr> = ip.parse().ok();
            assert_eq!(parse_ip(ip.as_bytes()), std, "{ip}");
        }
        // Random strings of digits and dots: the fast path never disagrees
        // with the standard parser, and takes every address it accepts.
        let mut memo = Memo::default();
        let mut seed = 99u64;
        for _ in 0..200_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize + 1;
            let text: String = (0..len)
                .map(|i| {
                    let r = (seed >> (i * 3 % 56)) % 13;
                    if r >= 10 {
                        '.'
                    } else {
                        char::from(b'0' + r as u8)
                    }
                })
                .collect();
            let std: Option<std::net::Ipv4Addr> = text.parse().ok();
            assert_eq!(parse_ipv4_fast(text.as_bytes()), std, "{text}");
            // The memo gives what parsing gives, whatever it held before.
            assert_eq!(memo.ip(text.as_bytes()), std.map(IpAddr::V4), "{text}");
        }
    }
}
