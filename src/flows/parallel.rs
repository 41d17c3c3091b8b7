//! Reading plain (uncompressed) files on every core.
//!
//! A file is cut into byte ranges of about [`CHUNK_BYTES`] at line starts
//! (flow CSVs have no quoted newlines). Parsing threads each take the next
//! range and parse it with the same row checks as the sequential reader
//! into owned [`FlowRecord`]s: a range without quotes or lone carriage
//! returns (every CIC file) is indexed and split on commas directly,
//! locating only the fields latmove reads (`scan`), and gives what the
//! csv crate gives (tested); any other range goes through the csv crate.
//! The calling thread hands the ranges' flows to the sink strictly in file
//! order, resolving attack labels and fixing line
//! numbers as it goes. The sink therefore sees exactly the sequence the
//! sequential reader produces, and whatever it computes (float sums
//! included) is bit-identical. At most `2 x threads` ranges are parsed
//! ahead of the sink, so memory stays flat in the file size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, mpsc};

use super::lines::{LineReader, MAX_LINE};
use super::record::{FlowRecord, LabelTable};
use super::scan::{self, Index, RowPlan, SplitRow};
use super::{
    FileLayout, MAX_PROBLEMS_KEPT, Memo, ReadError, ReadStats, progress, read_header, read_records,
    unterminated_line,
};

/// Target size of one byte range.
pub const CHUNK_BYTES: u64 = 1 << 20;

/// One parsed range.
struct Chunk {
    /// Labels refer to `labels` (this range's own ids).
    records: Vec<FlowRecord>,
    labels: LabelTable,
    /// Line numbers in `problems` count from the range's start (line 1 is
    /// its first line).
    stats: ReadStats,
}

/// Whether the file starts with the gzip magic bytes.
pub fn is_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| magic == [0x1f, 0x8b])
}

/// Reads plain CSV files with `threads` parsing threads; `sink` gets every
/// flow in file order, its attack label resolved through `labels` (ids in
/// order of first appearance, as the sequential reader assigns them).
pub fn read_plain_files<F: FnMut(&FlowRecord)>(
    paths: &[PathBuf],
    threads: usize,
    labels: &mut LabelTable,
    sink: F,
) -> Result<ReadStats, ReadError> {
    read_plain_files_in(paths, threads, CHUNK_BYTES, labels, sink)
}

/// [`read_plain_files`] with byte ranges of about `chunk_bytes` (tests use
/// small ones to cut a small file into many ranges).
pub fn read_plain_files_in<F: FnMut(&FlowRecord)>(
    paths: &[PathBuf],
    threads: usize,
    chunk_bytes: u64,
    labels: &mut LabelTable,
    mut sink: F,
) -> Result<ReadStats, ReadError> {
    let mut stats = ReadStats::default();
    let bar = progress::Bar::for_files(paths);
    for path in paths {
        let read = if is_gzip(path) {
            read_gzip_file
        } else {
            read_plain_file
        };
        read(
            path,
            threads.max(1),
            chunk_bytes.max(1),
            labels,
            &mut stats,
            bar.as_ref(),
            &mut sink,
        )?;
        stats.files.push(path.clone());
    }
    if let Some(b) = bar {
        b.finish();
    }
    Ok(stats)
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a file's bytes come from: the file itself, or a block of its
/// content in memory (a gzip file's, inflated).
#[derive(Clone, Copy)]
struct Source<'a> {
    path: &'a Path,
    data: Option<&'a [u8]>,
}

impl<'a> Source<'a> {
    fn len(&self) -> Result<u64, ReadError> {
        match self.data {
            Some(d) => Ok(d.len() as u64),
            None => Ok(std::fs::metadata(self.path)
                .map_err(io_error(self.path))?
                .len()),
        }
    }

    /// A reader from byte `from` on.
    fn reader_at(&self, from: u64) -> Result<Box<dyn Read + 'a>, ReadError> {
        match self.data {
            Some(d) => Ok(Box::new(&d[(from as usize).min(d.len())..])),
            None => {
                let mut f = File::open(self.path).map_err(io_error(self.path))?;
                f.seek(SeekFrom::Start(from)).map_err(io_error(self.path))?;
                Ok(Box::new(f))
            }
        }
    }
}

/// Range starts: the first line after the header, then the line start at
/// or after every `CHUNK_BYTES` (a line ends at a line feed, a carriage
/// return and line feed, or a lone carriage return); the last entry is the
/// file's length. A line start not found within [`MAX_LINE`] bytes is an
/// error, as the line reader's.
fn boundaries(
    source: Source<'_>,
    data_start: u64,
    len: u64,
    chunk: u64,
) -> Result<Vec<u64>, ReadError> {
    let path = source.path;
    let mut out = vec![data_start];
    let mut f = match source.data {
        Some(_) => None,
        None => Some(File::open(path).map_err(io_error(path))?),
    };
    let mut nominal = data_start + chunk;
    let mut window = vec![0u8; 1 << 12];
    while nominal < len {
        // Look for the next line end in small reads, up to MAX_LINE bytes.
        let mut scanned = 0usize;
        let found = loop {
            let at = nominal + scanned as u64;
            let n = match (&mut f, source.data) {
                (Some(f), _) => {
                    f.seek(SeekFrom::Start(at)).map_err(io_error(path))?;
                    read_full(f, &mut window).map_err(io_error(path))?
                }
                (None, Some(d)) => {
                    let rest = &d[(at as usize).min(d.len())..];
                    let n = rest.len().min(window.len());
                    window[..n].copy_from_slice(&rest[..n]);
                    n
                }
                (None, None) => unreachable!("a file or its bytes"),
            };
            // Short of the file's end, the last byte waits for the next
            // read, so a CR and its LF are always seen together.
            let piece = if n == window.len() {
                &window[..n - 1]
            } else {
                &window[..n]
            };
            if let Some(i) = memchr::memchr2(b'\n', b'\r', piece) {
                let crlf = piece[i] == b'\r' && window.get(i + 1) == Some(&b'\n') && i + 1 < n;
                break Some(scanned + i + if crlf { 2 } else { 1 });
            }
            scanned += piece.len();
            if n < window.len() {
                break None;
            }
            if scanned > MAX_LINE + 1 {
                return Err(ReadError::LineTooLong {
                    path: path.to_path_buf(),
                    at: format!("byte {nominal}"),
                });
            }
        };
        let Some(after) = found else { break };
        let start = nominal + after as u64;
        if start >= len {
            break;
        }
        if start > *out.last().expect("non-empty") {
            out.push(start);
        }
        nominal = start + chunk;
    }
    out.push(len);
    Ok(out)
}

/// Reads into `buf` until it is full or the file ends; the bytes read.
fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parses the range `[from, to)` of `path`, read into `buf` (one buffer a
/// parsing thread, reused).
fn parse_range(
    source: Source<'_>,
    layout: &FileLayout,
    from: u64,
    to: u64,
    buf: &mut Vec<u8>,
    work: &mut Work,
    mut records: Vec<FlowRecord>,
) -> Result<Chunk, ReadError> {
    let path = source.path;
    let buf: &[u8] = match source.data {
        Some(d) => &d[from as usize..to as usize],
        None => {
            buf.clear();
            source
                .reader_at(from)?
                .take(to - from)
                .read_to_end(buf)
                .map_err(io_error(path))?;
            &buf[..]
        }
    };
    let mut chunk = Chunk {
        records: {
            records.clear();
            records.reserve(buf.len() / 300);
            records
        },
        labels: LabelTable::default(),
        stats: ReadStats::default(),
    };
    // A last line without a line end (the file's, in the last range) is
    // counted, not parsed, as every reader path does.
    let (buf, cut) = match buf.last() {
        Some(b'\n' | b'\r') | None => (buf, None),
        Some(_) => {
            let start = memchr::memrchr2(b'\n', b'\r', buf).map_or(0, |i| i + 1);
            (&buf[..start], Some(&buf[start..]))
        }
    };
    if !split_plain(buf, layout, work, &mut chunk) {
        // A quote or a lone carriage return: the whole range goes through
        // the line reader instead (what it gives is the reference).
        chunk.records.clear();
        chunk.labels = LabelTable::default();
        chunk.stats = ReadStats::default();
        let (records, labels) = (&mut chunk.records, &mut chunk.labels);
        let mut push = |f: &super::Flow<'_>| records.push(FlowRecord::new(f, labels));
        let mut lines = LineReader::new(buf);
        read_records(path, &mut lines, layout, 0, &mut chunk.stats, &mut push).map_err(
            |e| match e {
                ReadError::LineTooLong { path, .. } => ReadError::LineTooLong {
                    path,
                    at: format!("within bytes {from}-{to}"),
                },
                e => e,
            },
        )?;
    }
    if let Some(last) = cut {
        let line = chunk.stats.rows + 1;
        unterminated_line(layout, line, last, &mut chunk.stats);
    }
    Ok(chunk)
}

/// Splits the range's lines on commas alone (see [`scan`]), giving what
/// the csv crate gives as long as no line holds a quote or a carriage
/// return other than one directly followed by its line feed (every CIC file);
/// returns false, having parsed nothing, when one does.
fn split_plain(buf: &[u8], layout: &FileLayout, work: &mut Work, chunk: &mut Chunk) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
    {
        // SAFETY: the CPU has these features (checked just above).
        return unsafe { split_plain_x86(buf, layout, work, chunk) };
    }
    // SAFETY: without PDEP, no extension is used.
    unsafe { split_plain_with::<false>(buf, layout, work, chunk) }
}

/// [`split_plain`] compiled for CPUs with a population count instruction
/// (the comma walk counts bits), bit deposit (it picks a comma inside a
/// block) and AVX2.
///
/// # Safety
/// The CPU must support AVX2, POPCNT, BMI1 and BMI2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt,bmi1,bmi2")]
unsafe fn split_plain_x86(
    buf: &[u8],
    layout: &FileLayout,
    work: &mut Work,
    chunk: &mut Chunk,
) -> bool {
    // SAFETY: the CPU has BMI2 (the caller checked).
    unsafe { split_plain_with::<true>(buf, layout, work, chunk) }
}

/// # Safety
/// With `PDEP`, the CPU must support BMI2.
#[inline(always)]
unsafe fn split_plain_with<const PDEP: bool>(
    buf: &[u8],
    layout: &FileLayout,
    work: &mut Work,
    chunk: &mut Chunk,
) -> bool {
    let Work { memo, index, plan } = work;
    if !index.build(buf) {
        return false;
    }
    // A line over the limit: the line reader reports it.
    let mut line_start = 0;
    for &feed in &index.feeds {
        if feed - line_start > MAX_LINE {
            return false;
        }
        line_start = feed + 1;
    }
    if buf.len() - line_start > MAX_LINE {
        return false;
    }
    let plan = plan.get_or_insert_with(|| RowPlan::new(layout));
    let (records, labels) = (&mut chunk.records, &mut chunk.labels);
    let mut push = |f: &super::Flow<'_>| records.push(FlowRecord::new(f, labels));
    // The row's edges (see `scan::quick_row`): before the line, the
    // wanted commas, the line's end.
    let wanted = plan.wanted.len();
    let mut edges: scan::Edges = [usize::MAX; scan::EDGES];
    let mut commas = Vec::new();
    let mut line_no = 0u64;
    let mut start = 0usize;
    let feeds = index.feeds.len();
    for j in 0..=feeds {
        let (line_start, mut end) = match index.feeds.get(j) {
            Some(&feed) => (std::mem::replace(&mut start, feed + 1), feed),
            None if start < buf.len() => (start, buf.len()),
            None => break,
        };
        if j < feeds && end > line_start && buf[end - 1] == b'\r' {
            end -= 1;
        }
        let line = &buf[line_start..end];
        // The csv crate skips empty lines without counting them.
        if line.is_empty() {
            continue;
        }
        line_no += 1;
        // SAFETY: PDEP only where the caller has checked BMI2.
        if let Some(n) =
            unsafe { index.locate::<PDEP>(line_start, end, &plan.wanted, &mut edges[1..=wanted]) }
            && plan.fits(n)
        {
            for a in &mut edges[1..=wanted] {
                *a -= line_start;
            }
            edges[wanted + 1] = line.len();
            if let Some(flow) = scan::quick_row(line, &edges, plan, memo) {
                chunk.stats.rows += 1;
                chunk.stats.flows += 1;
                push(&flow);
                continue;
            }
        }
        let row = SplitRow::split(line, std::mem::take(&mut commas));
        super::handle_row(&row, layout, line_no, &mut chunk.stats, memo, &mut push);
        commas = row.into_buffer();
    }
    true
}

/// What a parsing thread keeps from range to range.
#[derive(Default)]
struct Work {
    memo: Memo,
    index: Index,
    /// Built for the file at its first plain range.
    plan: Option<RowPlan>,
}

/// Shared claim state: the next range to parse, the next one the sink
/// needs, and whether to stop.
struct Claims {
    next: usize,
    consumed: usize,
    stop: bool,
}

/// What the parsing threads and the consumer share: which ranges are
/// claimed and consumed, a wake-up for threads waiting to run ahead, and
/// the record vectors the consumer is done with.
struct Shared {
    claims: Mutex<Claims>,
    wake: Condvar,
    spares: Mutex<Vec<Vec<FlowRecord>>>,
    /// Ranges in the file.
    ranges: usize,
    /// How far past the consumed range a thread may parse.
    ahead: usize,
}

impl Shared {
    /// The next range to parse, waiting while the threads are `ahead`
    /// ranges past the consumer; `None` when there is none or on stop.
    fn claim(&self) -> Option<usize> {
        let mut c = self.claims.lock().expect("claims lock");
        while !c.stop && c.next < self.ranges && c.next >= c.consumed + self.ahead {
            c = self.wake.wait(c).expect("claims lock");
        }
        if c.stop || c.next >= self.ranges {
            return None;
        }
        c.next += 1;
        Some(c.next - 1)
    }

    /// Range `k` is consumed: threads waiting to run ahead may go on.
    fn consumed(&self, k: usize) {
        self.claims.lock().expect("claims lock").consumed = k + 1;
        self.wake.notify_all();
    }

    /// Stops every thread (on an error).
    fn stop(&self, e: ReadError) -> ReadError {
        self.claims.lock().expect("claims lock").stop = true;
        self.wake.notify_all();
        e
    }

    /// A record vector the consumer is done with, if any (fresh ones cost
    /// page faults).
    fn spare(&self) -> Vec<FlowRecord> {
        self.spares
            .lock()
            .expect("spares lock")
            .pop()
            .unwrap_or_default()
    }
}

/// The file's header line, the layout it gives and the header's length in
/// bytes, line end included.
fn read_layout(source: Source<'_>) -> Result<(FileLayout, u64), ReadError> {
    let path = source.path;
    let mut lines = LineReader::new(source.reader_at(0)?);
    let header = read_header(path, &mut lines)?;
    Ok((FileLayout::new(path, header)?, lines.consumed()))
}

fn read_plain_file<F: FnMut(&FlowRecord)>(
    path: &Path,
    threads: usize,
    chunk: u64,
    labels: &mut LabelTable,
    stats: &mut ReadStats,
    bar: Option<&progress::Bar>,
    sink: &mut F,
) -> Result<(), ReadError> {
    let source = Source { path, data: None };
    let len = source.len()?;
    let (layout, header_len) = read_layout(source)?;
    stats.has_labels |= layout.map.get(super::Field::Label).is_some();
    let bounds = boundaries(source, header_len, len, chunk)?;
    let shared = Shared {
        claims: Mutex::new(Claims {
            next: 0,
            consumed: 0,
            stop: false,
        }),
        wake: Condvar::new(),
        spares: Mutex::new(Vec::new()),
        ranges: bounds.len() - 1,
        ahead: 2 * threads,
    };
    let (tx, rx) = mpsc::channel::<(usize, Result<Chunk, ReadError>)>();
    std::thread::scope(|s| {
        for _ in 0..threads.min(shared.ranges) {
            let tx = tx.clone();
            let (shared, layout, bounds) = (&shared, &layout, &bounds);
            // A thread the system refuses leaves its ranges to the others;
            // with none, the read below fails with a message.
            let _ = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut buf = Vec::new();
                let mut work = Work::default();
                while let Some(k) = shared.claim() {
                    let (from, to) = (bounds[k], bounds[k + 1]);
                    let result = parse_range(
                        source,
                        layout,
                        from,
                        to,
                        &mut buf,
                        &mut work,
                        shared.spare(),
                    );
                    if tx.send((k, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // Results by range, errors included, so that the error reported is
        // the first in file order, as the sequential reader's would be.
        let mut pending: BTreeMap<usize, Result<Chunk, ReadError>> = BTreeMap::new();
        // Lines before the current range: the header's, then its rows.
        let mut line_offset = 1u64;
        let mut flows_seen = stats.flows;
        for k in 0..shared.ranges {
            let chunk = loop {
                if let Some(c) = pending.remove(&k) {
                    break c.map_err(|e| shared.stop(e))?;
                }
                match rx.recv() {
                    Ok((j, c)) => {
                        pending.insert(j, c);
                    }
                    Err(_) => {
                        return Err(shared.stop(ReadError::Io {
                            path: path.to_path_buf(),
                            source: std::io::Error::other(
                                "a parsing thread stopped, or none could be started",
                            ),
                        }));
                    }
                }
            };
            shared.consumed(k);
            let rows = chunk.stats.rows;
            merge_stats(stats, chunk.stats, line_offset);
            line_offset += rows;
            let records = hand_over(chunk.records, &chunk.labels, labels, sink);
            flows_seen += records.len() as u64;
            shared.spares.lock().expect("spares lock").push(records);
            if let Some(b) = bar {
                b.rows(flows_seen);
                b.bytes(bounds[k + 1] - bounds[k] + if k == 0 { bounds[0] } else { 0 });
            }
        }
        Ok(())
    })
}

/// The index just past the last line end of `block` (a line feed, or a
/// carriage return not at the very end, where its line feed may follow),
/// if any.
fn last_line_end(block: &[u8]) -> Option<usize> {
    let mut upto = block.len();
    while let Some(i) = memchr::memrchr2(b'\n', b'\r', &block[..upto]) {
        if block[i] == b'\n' || i + 1 < block.len() {
            return Some(i + 1);
        }
        upto = i;
    }
    None
}

/// One inflated block: its number and bytes (whole lines, but the last
/// block's last).
type Block = (usize, Vec<u8>);

/// Inflates `path` and sends its content in blocks of about `chunk` bytes
/// cut after a line end; an error (a corrupt or cut file, a line longer
/// than [`MAX_LINE`]) is sent after the blocks before it.
fn inflate_blocks(
    path: &Path,
    chunk: usize,
    bar: Option<&progress::Bar>,
    tx: &mpsc::SyncSender<Result<Block, ReadError>>,
) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.send(Err(io_error(path)(e)));
            return;
        }
    };
    let raw: Box<dyn Read + Send> = match bar {
        Some(b) => Box::new(progress::Counting::new(file, b.clone())),
        None => Box::new(file),
    };
    let mut gz =
        flate2::bufread::MultiGzDecoder::new(std::io::BufReader::with_capacity(1 << 16, raw));
    let mut carry: Vec<u8> = Vec::new();
    let mut k = 0;
    loop {
        let mut block = std::mem::take(&mut carry);
        let target = block.len() + chunk;
        block.resize(target, 0);
        let mut filled = target - chunk;
        let mut end = false;
        while filled < target {
            match gz.read(&mut block[filled..]) {
                Ok(0) => {
                    end = true;
                    break;
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    block.truncate(filled);
                    if let Some(cut) = last_line_end(&block) {
                        block.truncate(cut);
                        if tx.send(Ok((k, block))).is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Err(io_error(path)(e)));
                    return;
                }
            }
        }
        block.truncate(filled);
        if end {
            if !block.is_empty() {
                let _ = tx.send(Ok((k, block)));
            }
            return;
        }
        match last_line_end(&block) {
            Some(cut) => {
                carry = block[cut..].to_vec();
                block.truncate(cut);
                if tx.send(Ok((k, block))).is_err() {
                    return;
                }
                k += 1;
            }
            None if block.len() > MAX_LINE + 1 => {
                let _ = tx.send(Err(ReadError::LineTooLong {
                    path: path.to_path_buf(),
                    at: format!("line {}", k + 1),
                }));
                return;
            }
            // A line longer than a block: read on.
            None => carry = block,
        }
    }
}

/// A gzip file: inflated on one thread into blocks of about `chunk` bytes
/// cut at line ends, which `threads` threads parse as a plain file's
/// ranges; their flows go to `sink` in file order.
fn read_gzip_file<F: FnMut(&FlowRecord)>(
    path: &Path,
    threads: usize,
    chunk: u64,
    labels: &mut LabelTable,
    stats: &mut ReadStats,
    bar: Option<&progress::Bar>,
    sink: &mut F,
) -> Result<(), ReadError> {
    let (btx, brx) = mpsc::sync_channel::<Result<Block, ReadError>>(2 * threads);
    // Scoped, so the inflating thread is gone when this returns: the
    // receiver is dropped first, and a thread still sending stops.
    std::thread::scope(|outer| {
        std::thread::Builder::new()
            .spawn_scoped(outer, move || {
                inflate_blocks(path, chunk as usize, bar, &btx)
            })
            .map_err(|e| ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(format!("starting the gzip thread: {e}")),
            })?;
        parse_blocks(path, threads, brx, (labels, sink), stats, bar)
    })
}

/// [`read_gzip_file`]'s parsing: the blocks of `brx` on `threads` threads.
fn parse_blocks<F: FnMut(&FlowRecord)>(
    path: &Path,
    threads: usize,
    brx: mpsc::Receiver<Result<Block, ReadError>>,
    (labels, sink): (&mut LabelTable, &mut F),
    stats: &mut ReadStats,
    bar: Option<&progress::Bar>,
) -> Result<(), ReadError> {
    // The header: the first non-empty line, in the first block or, after
    // blank lines, a later one (those before it are joined to it).
    let mut first = match brx.recv() {
        Ok(b) => b?,
        Err(_) => (0, Vec::new()),
    };
    let (layout, header_len) = loop {
        let source = Source {
            path,
            data: Some(&first.1),
        };
        match read_layout(source) {
            Err(ReadError::Empty { .. }) => match brx.recv() {
                Ok(next) => {
                    let (k, more) = next?;
                    first.0 = k;
                    first.1.extend_from_slice(&more);
                }
                Err(_) => {
                    return Err(ReadError::Empty {
                        path: path.to_path_buf(),
                    });
                }
            },
            other => break other?,
        }
    };
    stats.has_labels |= layout.map.get(super::Field::Label).is_some();
    let blocks = Mutex::new(brx);
    let spares: Mutex<Vec<Vec<FlowRecord>>> = Mutex::new(Vec::new());
    let parse = |k: usize, data: &[u8], from: u64, work: &mut Work| {
        let spare = spares
            .lock()
            .expect("spares lock")
            .pop()
            .unwrap_or_default();
        let source = Source {
            path,
            data: Some(data),
        };
        parse_range(
            source,
            &layout,
            from,
            data.len() as u64,
            &mut Vec::new(),
            work,
            spare,
        )
        .map(|c| (k, c))
    };
    std::thread::scope(|s| {
        let (rtx, rrx) = mpsc::channel::<Parsed>();
        let mut started = 0;
        for _ in 0..threads {
            let (rtx, blocks, parse) = (rtx.clone(), &blocks, &parse);
            let spawned = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut work = Work::default();
                loop {
                    let next = blocks.lock().expect("blocks lock").recv();
                    let sent = match next {
                        Err(_) => return,
                        Ok(Err(e)) => rtx.send((usize::MAX, Err(e))),
                        Ok(Ok((k, data))) => match parse(k, &data, 0, &mut work) {
                            Ok((k, c)) => rtx.send((k, Ok(c))),
                            Err(e) => rtx.send((k, Err(e))),
                        },
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            });
            started += usize::from(spawned.is_ok());
        }
        // The first block's rows, after its header, here.
        let mut work = Work::default();
        let head = parse(first.0, &first.1, header_len, &mut work).map(|(_, c)| c);
        let _ = rtx.send((first.0, head));
        drop(rtx);
        if started == 0 {
            return Err(ReadError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other("no parsing thread could be started"),
            });
        }
        in_order(path, (&rrx, first.0), stats, (labels, sink), bar, &spares)
    })
}

/// A parsed block: its number and chunk (or error; an inflater's error
/// comes as block `usize::MAX`).
type Parsed = (usize, Result<Chunk, ReadError>);

/// The gzip blocks' parsed chunks, received in any order, handed over in
/// block order from block `next` (the header's): counts merged, records
/// to `sink`. An error of the
/// inflater (sent after its last block) is reported once the blocks before
/// it are handed over.
fn in_order<F: FnMut(&FlowRecord)>(
    path: &Path,
    (rrx, mut next): (&mpsc::Receiver<Parsed>, usize),
    stats: &mut ReadStats,
    (labels, sink): (&mut LabelTable, &mut F),
    bar: Option<&progress::Bar>,
    spares: &Mutex<Vec<Vec<FlowRecord>>>,
) -> Result<(), ReadError> {
    let mut pending: BTreeMap<usize, Result<Chunk, ReadError>> = BTreeMap::new();
    let mut failure: Option<ReadError> = None;
    let mut line_offset = 1u64;
    let mut flows_seen = stats.flows;
    loop {
        let chunk = match pending.remove(&next) {
            Some(c) => c,
            None => match rrx.recv() {
                Ok((usize::MAX, Err(e))) => {
                    failure.get_or_insert(e);
                    continue;
                }
                Ok((j, c)) => {
                    pending.insert(j, c);
                    continue;
                }
                Err(_) => break,
            },
        };
        let chunk = chunk?;
        next += 1;
        let rows = chunk.stats.rows;
        merge_stats(stats, chunk.stats, line_offset);
        line_offset += rows;
        let records = hand_over(chunk.records, &chunk.labels, labels, sink);
        flows_seen += records.len() as u64;
        spares.lock().expect("spares lock").push(records);
        if let Some(b) = bar {
            b.rows(flows_seen);
        }
    }
    match (failure, pending.pop_first()) {
        (Some(e), _) | (None, Some((_, Err(e)))) => Err(e),
        (None, Some(_)) => Err(ReadError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other("a parsing thread stopped"),
        }),
        (None, None) => Ok(()),
    }
}

/// Gives a range's records to `sink` in order, their labels moved from the
/// range's own ids (`local`) to the file's (`labels`, in order of first
/// appearance, as one thread would number them); returns the vector for
/// reuse.
fn hand_over<F: FnMut(&FlowRecord)>(
    mut records: Vec<FlowRecord>,
    local: &LabelTable,
    labels: &mut LabelTable,
    sink: &mut F,
) -> Vec<FlowRecord> {
    let mut global: Vec<Option<u32>> = vec![None; local.texts().len()];
    for r in &mut records {
        if let Some(Some(l)) = r.label {
            let id = *global[l as usize].get_or_insert_with(|| {
                match labels.classify(Some(local.raw(l))) {
                    Some(Some(id)) => id,
                    _ => unreachable!("an attack label stays one"),
                }
            });
            r.label = Some(Some(id));
        }
        sink(r);
    }
    records
}

/// Adds a range's counts to the file's, its problems after the ones kept
/// so far (up to [`MAX_PROBLEMS_KEPT`]) with their lines made absolute.
fn merge_stats(into: &mut ReadStats, from: ReadStats, line_offset: u64) {
    into.rows += from.rows;
    into.flows += from.flows;
    for (reason, n) in from.skipped {
        *into.skipped.entry(reason).or_default() += n;
    }
    for mut p in from.problems {
        if into.problems.len() < MAX_PROBLEMS_KEPT {
            p.line += line_offset;
            into.problems.push(p);
        }
    }
    into.non_finite_values += from.non_finite_values;
    into.negative_durations += from.negative_durations;
    into.implausible_values += from.implausible_values;
    into.bad_timestamps += from.bad_timestamps;
    into.has_labels |= from.has_labels;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain splitter (quick rows and the general check behind them)
    /// gives exactly what the csv crate gives, flows and counts, on rows of
    /// the real 2017 layout whose cells are replaced at random by odd
    /// spellings: spaces, signs, fractions, exponents, `Infinity`, `NaN`,
    /// words, long digit strings, out-of-range ports, bad addresses and
    /// timestamps, empty cells, and rows a cell short or long.
    #[test]
    #[expect(
        clippy::too_many_lines,
        reason = "a table of odd cells, each case one line, checked in one place"
    )]
    fn plain_splitter_equals_the_csv_crate_on_odd_cells() {
        let header = "Flow ID, Source IP, Source Port, Destination IP, Destination Port, Protocol, \
             Timestamp, Flow Duration, Total Fwd Packets, Total Backward Packets,\
             Total Length of Fwd Packets, Total Length of Bwd Packets, Fwd Packet Length Max, \
             RST Flag Count, Label";
        let base = [
            "10.0.0.1-10.0.0.2-5000-445-6",
            "10.0.0.1",
            "5000",
            "10.0.0.2",
            "445",
            "6",
            "4/7/2017 8:40",
            "1200",
            "3",
            "2",
            "180",
            "120",
            "60",
            "0",
            "BENIGN",
        ];
        let odd = [
            "",
            " ",
            " 5",
            "5 ",
            "-5",
            "+5",
            "5.0",
            "1e3",
            "Infinity",
            "-Infinity",
            "NaN",
            "abc",
            "1234567890123456",
            "123456789012345",
            "65536",
            "99999",
            "080",
            "0",
            "10.0.0.256",
            " 10.0.0.3",
            "::1",
            "192.168.010.1",
            "2017-07-04 08:40:00",
            "garbage",
            "04/07/2017 01:02:03 PM",
            " PortScan ",
            "Bot",
            "\u{96}",
        ];
        let mut seed = 5u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut text = format!("{header}\r\n");
        for _ in 0..4000 {
            let mut cells: Vec<String> = base.iter().map(|c| c.to_string()).collect();
            for _ in 0..next() % 3 {
                let i = next() % cells.len();
                cells[i] = odd[next() % odd.len()].to_string();
            }
            match next() % 40 {
                0 => {
                    cells.pop();
                }
                1 => cells.push("x".into()),
                _ => {}
            }
            text.push_str(&cells.join(","));
            text.push_str(if next() % 2 == 0 { "\r\n" } else { "\n" });
        }
        let bytes = text.as_bytes();
        let cut = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
        let layout = FileLayout::new(
            Path::new("odd.csv"),
            read_header(Path::new("odd.csv"), &mut LineReader::new(&bytes[..cut])).unwrap(),
        )
        .unwrap();
        let body = &bytes[cut..];
        let dump = |c: &Chunk| {
            let flows: Vec<String> = c.records.iter().map(|r| format!("{r:?}")).collect();
            (
                flows,
                format!("{:?}", c.stats),
                format!("{:?}", c.labels.texts()),
            )
        };
        let new_chunk = || Chunk {
            records: Vec::new(),
            labels: LabelTable::default(),
            stats: ReadStats::default(),
        };
        let mut plain = new_chunk();
        assert!(split_plain(body, &layout, &mut Work::default(), &mut plain));
        let mut reference = new_chunk();
        let (records, labels) = (&mut reference.records, &mut reference.labels);
        let mut push = |f: &super::super::Flow<'_>| records.push(FlowRecord::new(f, labels));
        read_records(
            Path::new("odd.csv"),
            &mut LineReader::new(body),
            &layout,
            0,
            &mut reference.stats,
            &mut push,
        )
        .unwrap();
        assert!(reference.stats.flows > 1000, "{:?}", reference.stats);
        assert!(
            reference.stats.skipped_total() > 100,
            "{:?}",
            reference.stats
        );
        assert_eq!(dump(&plain), dump(&reference));
    }
}
