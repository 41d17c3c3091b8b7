//! Reading plain (uncompressed) files on every core.
//!
//! A file is cut into byte ranges of about [`CHUNK_BYTES`] at line starts
//! (flow CSVs have no quoted newlines). Parsing threads each take the next
//! range and parse it with the same row checks as the sequential reader
//! into owned [`FlowRecord`]s: a range without quotes or lone carriage
//! returns (every CIC file) is split on commas directly, locating only the
//! fields latmove reads (the label from the line's end), and gives what the
//! csv crate gives (tested); any other range goes through the csv crate.
//! The calling thread hands the ranges' flows to the sink strictly in file
//! order, resolving attack labels and fixing line
//! numbers as it goes. The sink therefore sees exactly the sequence the
//! sequential reader produces, and whatever it computes (float sums
//! included) is bit-identical. At most `2 x threads` ranges are parsed
//! ahead of the sink, so memory stays flat in the file size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, mpsc};

use super::columns::Field;
use super::{
    FileLayout, MAX_PROBLEMS_KEPT, Memo, ReadError, ReadStats, Row, csv_error, csv_reader,
    progress, read_records,
};
use crate::profile::{FlowRecord, LabelTable};

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
        read_plain_file(
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

/// Range starts: the first line after the header, then the line start at
/// or after every `CHUNK_BYTES`; the last entry is the file's length.
fn boundaries(path: &Path, data_start: u64, len: u64, chunk: u64) -> Result<Vec<u64>, ReadError> {
    let mut out = vec![data_start];
    let mut f = BufReader::with_capacity(1 << 12, File::open(path).map_err(io_error(path))?);
    let mut nominal = data_start + chunk;
    let mut skip = Vec::new();
    while nominal < len {
        f.seek(SeekFrom::Start(nominal)).map_err(io_error(path))?;
        skip.clear();
        let n = f.read_until(b'\n', &mut skip).map_err(io_error(path))? as u64;
        let start = nominal + n;
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

/// Parses the range `[from, to)` of `path`, read into `buf` (one buffer a
/// parsing thread, reused).
fn parse_range(
    path: &Path,
    layout: &FileLayout,
    from: u64,
    to: u64,
    buf: &mut Vec<u8>,
    memo: &mut Memo,
    mut records: Vec<FlowRecord>,
) -> Result<Chunk, ReadError> {
    let mut f = File::open(path).map_err(io_error(path))?;
    f.seek(SeekFrom::Start(from)).map_err(io_error(path))?;
    buf.clear();
    f.take(to - from).read_to_end(buf).map_err(io_error(path))?;
    let buf = &buf[..];
    let mut chunk = Chunk {
        records: {
            records.clear();
            records.reserve(buf.len() / 300);
            records
        },
        labels: LabelTable::default(),
        stats: ReadStats::default(),
    };
    if !split_plain(buf, layout, memo, &mut chunk) {
        // A quote or a lone carriage return: the whole range goes through
        // the csv crate instead (what it gives is the reference).
        chunk.records.clear();
        chunk.labels = LabelTable::default();
        chunk.stats = ReadStats::default();
        let (records, labels) = (&mut chunk.records, &mut chunk.labels);
        let mut push = |f: &super::Flow<'_>| records.push(FlowRecord::new(f, labels));
        let mut rdr = csv_reader(buf, false);
        read_records(path, &mut rdr, layout, 0, &mut chunk.stats, &mut push)?;
    }
    Ok(chunk)
}

/// Splits the range's lines on commas alone, giving what the csv crate
/// gives as long as no line holds a quote or a carriage return other than
/// the one before its line feed (every CIC file); stops and returns false
/// at the first line that does.
fn split_plain(buf: &[u8], layout: &FileLayout, memo: &mut Memo, chunk: &mut Chunk) -> bool {
    let (records, labels) = (&mut chunk.records, &mut chunk.labels);
    let mut push = |f: &super::Flow<'_>| records.push(FlowRecord::new(f, labels));
    let mut splitter = FastRows::new(layout);
    let mut line = 0u64;
    let mut rest = buf;
    while !rest.is_empty() {
        let (row, end, plain) = splitter.next_line(rest);
        if !plain {
            return false;
        }
        rest = rest.get(end + 1..).unwrap_or_default();
        // The csv crate skips empty lines without counting them.
        if row.line.is_empty() {
            continue;
        }
        line += 1;
        super::handle_row(&row, layout, line, &mut chunk.stats, memo, &mut push);
    }
    true
}

/// Splits lines into the fields latmove reads without tokenizing the
/// rest: only the commas that start or end a needed field are located
/// (blocks of bytes without one are just counted), and the last column
/// (the label in every CIC layout) is found from the line's end.
struct FastRows {
    /// The header's width: a row of that width has its last field found
    /// from the end.
    width: usize,
    /// Which commas to locate: comma `c` (1-based) starts field `c` and
    /// ends field `c - 1`; `plan.need[c]` when either is needed.
    plan: CommaPlan,
    /// Field start offsets, by comma number (valid for the needed ones).
    starts: Vec<usize>,
    /// Whether the CPU has AVX2 (checked once).
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

/// The commas a line scan must locate.
struct CommaPlan {
    /// `need[c]`: locate comma `c`; `need.len()` is past the last one.
    need: Vec<bool>,
    /// `next[c]`: the first needed comma number >= `c` (`usize::MAX` when
    /// none), for `c` in `0..=need.len()`.
    next: Vec<usize>,
    /// Fields located from the start (`needed_field[i]`).
    needed_field: Vec<bool>,
}

impl CommaPlan {
    /// Plans for the fields `needed` (indices; the one that is the header's
    /// last column is found from the line's end instead when `width` says so).
    fn new(needed: &[usize], width: usize) -> CommaPlan {
        let located: Vec<usize> = needed
            .iter()
            .copied()
            .filter(|&i| !(i + 1 == width && i > 0))
            .collect();
        let top = located.iter().map(|i| i + 2).max().unwrap_or(1);
        let mut need = vec![false; top];
        let mut needed_field = vec![false; top];
        for &i in &located {
            needed_field[i] = true;
            if i > 0 {
                need[i] = true;
            }
            need[i + 1] = true;
        }
        let mut next = vec![usize::MAX; top + 1];
        for c in (0..top).rev() {
            next[c] = if need[c] { c } else { next[c + 1] };
        }
        CommaPlan {
            need,
            next,
            needed_field,
        }
    }
}

impl FastRows {
    fn new(layout: &FileLayout) -> FastRows {
        let width = layout.header.len();
        let needed: Vec<usize> = Field::ALL
            .iter()
            .filter_map(|f| layout.map.get(*f))
            .collect();
        let plan = CommaPlan::new(&needed, width);
        FastRows {
            width,
            starts: vec![0; plan.need.len()],
            plan,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
        }
    }

    /// The line at the start of `rest` (up to its line feed or the end),
    /// split in one pass that finds the line feed, counts every comma and
    /// records the needed ones (32 bytes at a time with AVX2, else eight at
    /// a time). Returns the row (a trailing carriage return dropped), the
    /// offset of the line feed (`rest.len()` without one) and whether the
    /// line splits on commas alone (no quote, no lone carriage return).
    fn next_line<'a>(&'a mut self, rest: &'a [u8]) -> (FastRow<'a>, usize, bool) {
        #[cfg(target_arch = "x86_64")]
        let (end, commas, plain) = if self.avx2 {
            // SAFETY: the CPU has AVX2 (checked in `new`).
            unsafe { line_avx2(rest, &self.plan, &mut self.starts) }
        } else {
            line_swar(rest, 0, Scan::default(), &self.plan, &mut self.starts)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (end, commas, plain) =
            line_swar(rest, 0, Scan::default(), &self.plan, &mut self.starts);
        let text = &rest[..end];
        let line = text.strip_suffix(b"\r").unwrap_or(text);
        let row = FastRow {
            line,
            starts: &self.starts,
            needed: &self.plan.needed_field,
            commas,
            last_is_header_last: commas + 1 == self.width,
        };
        (row, end, plain)
    }
}

/// Records comma number `count` at byte `pos` when the plan needs it.
#[inline(always)]
fn record(plan: &CommaPlan, starts: &mut [usize], count: usize, pos: usize) {
    if plan.need.get(count).copied().unwrap_or(false) {
        starts[count] = pos + 1;
    }
}

/// Where a line scan stands: commas counted, and the quotes and carriage
/// returns seen (how many, and where the last one is).
#[derive(Default)]
struct Scan {
    commas: usize,
    specials: usize,
    last_special: usize,
}

impl Scan {
    /// Takes in one block of bytes starting at `base`, given as bit masks
    /// (one bit a byte, `shift` bits apart: 1 for AVX2 masks, 8 for
    /// eight-byte words) of its commas, line feeds and quotes or carriage
    /// returns. Only what comes before the first line feed counts: the
    /// commas are counted (and recorded when the block holds a planned one)
    /// and the specials noted. Returns the line feed's offset if the block
    /// holds one.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn block(
        &mut self,
        plan: &CommaPlan,
        starts: &mut [usize],
        mut commas: u64,
        feeds: u64,
        mut specials: u64,
        base: usize,
        shift: u32,
    ) -> Option<usize> {
        if feeds != 0 {
            let before = (feeds & feeds.wrapping_neg()) - 1;
            commas &= before;
            specials &= before;
        }
        let p = commas.count_ones() as usize;
        if plan.next[(self.commas + 1).min(plan.need.len())] <= self.commas + p {
            while commas != 0 {
                self.commas += 1;
                let at = base + (commas.trailing_zeros() / shift) as usize;
                record(plan, starts, self.commas, at);
                commas &= commas - 1;
            }
        } else {
            self.commas += p;
        }
        if specials != 0 {
            self.specials += specials.count_ones() as usize;
            self.last_special = base + ((63 - specials.leading_zeros()) / shift) as usize;
        }
        (feeds != 0).then(|| base + (feeds.trailing_zeros() / shift) as usize)
    }

    /// (line end, commas, whether the line splits on commas alone: no
    /// quote, and no carriage return but one right before its line feed).
    fn finish(self, rest: &[u8], end: usize) -> (usize, usize, bool) {
        let plain = self.specials == 0
            || (self.specials == 1
                && self.last_special + 1 == end
                && end < rest.len()
                && rest[self.last_special] == b'\r');
        (end, self.commas, plain)
    }
}

/// Scans `rest` from `from` (with `scan` for what came before) to its
/// first line feed or its end: counts the commas and records the planned
/// ones in `starts` (offsets of the field after each, by comma number),
/// and notes quotes and carriage returns; eight bytes at a time. Returns
/// (the line feed's offset or `rest.len()`, the commas before it, whether
/// the line is plain: see [`Scan::finish`]).
fn line_swar(
    rest: &[u8],
    from: usize,
    mut scan: Scan,
    plan: &CommaPlan,
    starts: &mut [usize],
) -> (usize, usize, bool) {
    let mut base = from;
    while base + 8 <= rest.len() {
        let w = u64::from_le_bytes(rest[base..base + 8].try_into().expect("8 bytes"));
        let commas = bytes_equal(w, b',');
        let feeds = bytes_equal(w, b'\n');
        let specials = bytes_equal(w, b'"') | bytes_equal(w, b'\r');
        if let Some(end) = scan.block(plan, starts, commas, feeds, specials, base, 8) {
            return scan.finish(rest, end);
        }
        base += 8;
    }
    for (k, b) in rest.iter().enumerate().skip(base) {
        match *b {
            b'\n' => return scan.finish(rest, k),
            b',' => {
                scan.commas += 1;
                record(plan, starts, scan.commas, k);
            }
            b'"' | b'\r' => {
                scan.specials += 1;
                scan.last_special = k;
            }
            _ => {}
        }
    }
    scan.finish(rest, rest.len())
}

/// [`line_swar`] from the start of `rest`, 32 bytes at a time.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn line_avx2(rest: &[u8], plan: &CommaPlan, starts: &mut [usize]) -> (usize, usize, bool) {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let comma = _mm256_set1_epi8(b',' as i8);
    let feed = _mm256_set1_epi8(b'\n' as i8);
    let quote = _mm256_set1_epi8(b'"' as i8);
    let cr = _mm256_set1_epi8(b'\r' as i8);
    let mut scan = Scan::default();
    let mut base = 0usize;
    while base + 32 <= rest.len() {
        // SAFETY: base + 32 <= rest.len(); the load is unaligned.
        let v = unsafe { _mm256_loadu_si256(rest.as_ptr().add(base).cast::<__m256i>()) };
        let bits = |x| u64::from(_mm256_movemask_epi8(x) as u32);
        let commas = bits(_mm256_cmpeq_epi8(v, comma));
        let feeds = bits(_mm256_cmpeq_epi8(v, feed));
        let specials = bits(_mm256_or_si256(
            _mm256_cmpeq_epi8(v, quote),
            _mm256_cmpeq_epi8(v, cr),
        ));
        if let Some(end) = scan.block(plan, starts, commas, feeds, specials, base, 1) {
            return scan.finish(rest, end);
        }
        base += 32;
    }
    line_swar(rest, base, scan, plan, starts)
}

/// The high bit of every byte of `word` (little-endian) equal to `b`, and
/// no other bit: exact, as no carry crosses a byte.
fn bytes_equal(word: u64, b: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = word ^ (0x0101_0101_0101_0101 * u64::from(b));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// One line split by [`FastRows`].
struct FastRow<'a> {
    line: &'a [u8],
    /// Field start offsets by comma number (see [`FastRows`]).
    starts: &'a [usize],
    /// Fields whose bounds are in `starts`.
    needed: &'a [bool],
    /// Commas in the line (its width is one more).
    commas: usize,
    last_is_header_last: bool,
}

impl Row for FastRow<'_> {
    #[inline(always)]
    fn field(&self, i: usize) -> Option<&[u8]> {
        if i > self.commas {
            return None;
        }
        if self.needed.get(i).copied().unwrap_or(false) {
            let from = if i == 0 { 0 } else { self.starts[i] };
            let to = if i == self.commas {
                self.line.len()
            } else {
                self.starts[i + 1] - 1
            };
            return Some(&self.line[from..to]);
        }
        if i == self.commas && self.last_is_header_last {
            let from = memchr::memrchr(b',', self.line).map_or(0, |c| c + 1);
            return Some(&self.line[from..]);
        }
        // Any other field: walk the commas (not on the hot path).
        self.line.split(|b| *b == b',').nth(i)
    }

    fn width(&self) -> usize {
        self.commas + 1
    }

    fn is_blank(&self) -> bool {
        self.line
            .iter()
            .all(|b| *b == b',' || b.is_ascii_whitespace())
    }
}

/// Shared claim state: the next range to parse, the next one the sink
/// needs, and whether to stop.
struct Claims {
    next: usize,
    consumed: usize,
    stop: bool,
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
    let len = std::fs::metadata(path).map_err(io_error(path))?.len();
    // The header: the first line.
    let mut first = Vec::new();
    BufReader::new(File::open(path).map_err(io_error(path))?)
        .read_until(b'\n', &mut first)
        .map_err(io_error(path))?;
    let mut hr = csv_reader(&first[..], true);
    let header = hr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    let layout = FileLayout::new(path, header)?;
    stats.has_labels |= layout.map.get(super::Field::Label).is_some();
    let bounds = boundaries(path, first.len() as u64, len, chunk)?;
    let ranges = bounds.len() - 1;
    let ahead = 2 * threads;
    let claims = Mutex::new(Claims {
        next: 0,
        consumed: 0,
        stop: false,
    });
    let wake = Condvar::new();
    let spares: Mutex<Vec<Vec<FlowRecord>>> = Mutex::new(Vec::new());
    let (tx, rx) = mpsc::channel::<(usize, Result<Chunk, ReadError>)>();
    std::thread::scope(|s| {
        for _ in 0..threads.min(ranges) {
            let tx = tx.clone();
            let (claims, wake, layout, bounds, spares) =
                (&claims, &wake, &layout, &bounds, &spares);
            s.spawn(move || {
                let mut buf = Vec::new();
                let mut memo = Memo::default();
                loop {
                    let k = {
                        let mut c = claims.lock().expect("claims lock");
                        while !c.stop && c.next < ranges && c.next >= c.consumed + ahead {
                            c = wake.wait(c).expect("claims lock");
                        }
                        if c.stop || c.next >= ranges {
                            return;
                        }
                        c.next += 1;
                        c.next - 1
                    };
                    // A record vector the sink is done with, if any: fresh
                    // ones cost page faults.
                    let spare = spares
                        .lock()
                        .expect("spares lock")
                        .pop()
                        .unwrap_or_default();
                    let result = parse_range(
                        path,
                        layout,
                        bounds[k],
                        bounds[k + 1],
                        &mut buf,
                        &mut memo,
                        spare,
                    );
                    if tx.send((k, result)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let stop = |e: ReadError| {
            claims.lock().expect("claims lock").stop = true;
            wake.notify_all();
            e
        };
        // Results by range, errors included, so that the error reported is
        // the first in file order, as the sequential reader's would be.
        let mut pending: BTreeMap<usize, Result<Chunk, ReadError>> = BTreeMap::new();
        // Lines before the current range: the header's, then its rows.
        let mut line_offset = 1u64;
        let mut flows_seen = stats.flows;
        for k in 0..ranges {
            let chunk = loop {
                if let Some(c) = pending.remove(&k) {
                    break c.map_err(stop)?;
                }
                match rx.recv() {
                    Ok((j, c)) => {
                        pending.insert(j, c);
                    }
                    Err(_) => {
                        return Err(stop(ReadError::Io {
                            path: path.to_path_buf(),
                            source: std::io::Error::other("a parsing thread stopped"),
                        }));
                    }
                }
            };
            {
                let mut c = claims.lock().expect("claims lock");
                c.consumed = k + 1;
            }
            wake.notify_all();
            let rows = chunk.stats.rows;
            merge_stats(stats, chunk.stats, line_offset);
            line_offset += rows;
            let mut global: Vec<Option<u32>> = vec![None; chunk.labels.texts().len()];
            for r in &chunk.records {
                let mut r = *r;
                if let Some(Some(local)) = r.label {
                    let id = *global[local as usize].get_or_insert_with(|| {
                        match labels.classify(Some(chunk.labels.raw(local))) {
                            Some(Some(id)) => id,
                            _ => unreachable!("an attack label stays one"),
                        }
                    });
                    r.label = Some(Some(id));
                }
                sink(&r);
            }
            flows_seen += chunk.records.len() as u64;
            spares.lock().expect("spares lock").push(chunk.records);
            if let Some(b) = bar {
                b.rows(flows_seen);
                b.bytes(bounds[k + 1] - bounds[k] + if k == 0 { bounds[0] } else { 0 });
            }
        }
        Ok(())
    })
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
    into.bad_timestamps += from.bad_timestamps;
    into.has_labels |= from.has_labels;
}

#[cfg(test)]
mod tests {
    use super::{CommaPlan, Scan, bytes_equal, line_swar};

    /// The AVX2 and eight-byte line scanners agree with a plain byte loop
    /// on lines of every length up to 100, commas, line feeds, quotes and
    /// carriage returns in every position and several plans: the same line
    /// end, comma count and plainness, and every planned comma located.
    #[test]
    fn line_scanners_agree_with_a_byte_loop() {
        let mut seed = 12345u64;
        let plans = [
            CommaPlan::new(&[], 5),
            CommaPlan::new(&[0, 1, 2], 10),
            CommaPlan::new(&[1, 3, 9, 30], 85),
            CommaPlan::new(&[2, 40, 84], 85),
        ];
        for len in 0..100usize {
            for round in 0..60u64 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let r = (seed >> 33) % (3 + round % 7);
                        let rare = (seed >> 20) % 50;
                        if r == 0 {
                            b','
                        } else if r == 1 && round % 2 == 0 {
                            b'\n'
                        } else if rare == 0 && round % 3 == 0 {
                            b'"'
                        } else if rare == 1 && round % 3 != 2 {
                            b'\r'
                        } else {
                            b'a' + (seed >> 40) as u8 % 26
                        }
                    })
                    .chain((round % 4 == 1).then_some(b'\r'))
                    .chain((round % 4 == 1 && round % 8 == 1).then_some(b'\n'))
                    .collect();
                let len = text.len();
                let end = text.iter().position(|b| *b == b'\n').unwrap_or(len);
                let positions: Vec<usize> = (0..end).filter(|&i| text[i] == b',').collect();
                let specials: Vec<usize> = (0..end)
                    .filter(|&i| text[i] == b'"' || text[i] == b'\r')
                    .collect();
                let plain = specials.is_empty()
                    || (specials == [end.wrapping_sub(1)] && text[end - 1] == b'\r' && end < len);
                for plan in &plans {
                    let check = |(got_end, count, got_plain): (usize, usize, bool),
                                 starts: &[usize]| {
                        assert_eq!(
                            (got_end, count, got_plain),
                            (end, positions.len(), plain),
                            "{text:?}"
                        );
                        for (c, need) in plan.need.iter().enumerate() {
                            if *need && c >= 1 && c <= count {
                                assert_eq!(starts[c], positions[c - 1] + 1, "comma {c}");
                            }
                        }
                    };
                    let mut starts = vec![usize::MAX; plan.need.len()];
                    check(
                        line_swar(&text, 0, Scan::default(), plan, &mut starts),
                        &starts,
                    );
                    #[cfg(target_arch = "x86_64")]
                    if std::arch::is_x86_feature_detected!("avx2") {
                        let mut starts = vec![usize::MAX; plan.need.len()];
                        // SAFETY: AVX2 checked just above.
                        let got = unsafe { super::line_avx2(&text, plan, &mut starts) };
                        check(got, &starts);
                    }
                }
            }
        }
    }

    #[test]
    fn bytes_equal_marks_exactly_the_matching_bytes() {
        // Every byte value in every position, beside matches and zeros
        // (where a borrow or carry would show).
        for target in [b',', b'\n'] {
            for pos in 0..8 {
                for fill in [0u8, target, 0x80, 0xff, b'a'] {
                    for v in 0..=255u8 {
                        let mut w = [fill; 8];
                        w[pos] = v;
                        let want: u64 = w
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == target)
                            .map(|(i, _)| 0x80u64 << (8 * i))
                            .sum();
                        assert_eq!(bytes_equal(u64::from_le_bytes(w), target), want, "{w:?}");
                    }
                }
            }
        }
    }
}
