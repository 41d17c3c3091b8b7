//! Self-checks of the reader for fuzzing and the tests: the byte-range
//! path must give exactly what one thread gives, on any bytes.

use std::path::PathBuf;

use super::parallel::read_plain_files_in;
use super::record::{FlowRecord, LabelTable};
use super::{ReadError, ReadStats, read_flows};

/// Writes `data` to a temporary file (after the CIC-IDS2017 header, unless
/// `data` starts with a NUL byte, which is dropped and the rest written as
/// it is), reads it with one thread and in byte ranges of `chunk` bytes on
/// three threads, and gzipped in blocks of `chunk` bytes on three threads,
/// and panics unless all give the same flows, labels, counts, problem rows
/// and errors.
pub fn one_thread_equals_ranges(data: &[u8], chunk: u64) {
    let bytes = match data.split_first() {
        Some((0, rest)) => rest.to_vec(),
        _ => [crate::synth::HEADER_2017.as_bytes(), b"\r\n", data].concat(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path: PathBuf = dir.path().join("fuzz.csv");
    std::fs::write(&path, &bytes).expect("writing the input");
    if !super::formats::sniff_file(&path).is_ok_and(|f| f == super::formats::Format::Cic) {
        // Another format's reader, or no format at all (which only the
        // one-thread path is ever given, as `read_profiles_threads` takes
        // byte ranges for CICFlowMeter files alone): no panic, and the
        // same twice.
        let twice: Vec<String> = (0..2)
            .map(|_| {
                let mut flows = Vec::new();
                let mut labels = LabelTable::default();
                let r = read_flows(std::slice::from_ref(&path), |f| {
                    flows.push(FlowRecord::new(f, &mut labels));
                });
                format!(
                    "{flows:?} {:?}",
                    r.map(|s| counts(&s)).map_err(|e| e.to_string())
                )
            })
            .collect();
        assert_eq!(twice[0], twice[1], "two reads differ");
        return;
    }
    let mut one_labels = LabelTable::default();
    let mut one = Vec::new();
    let one_stats = read_flows(std::slice::from_ref(&path), |f| {
        one.push(FlowRecord::new(f, &mut one_labels));
    });
    let mut range_labels = LabelTable::default();
    let mut ranges = Vec::new();
    let range_stats = read_plain_files_in(
        std::slice::from_ref(&path),
        3,
        chunk,
        &mut range_labels,
        |r| ranges.push(*r),
    );
    // The same bytes gzipped (the same name, in another directory): inflated
    // in blocks of `chunk` bytes cut at line ends and parsed on threads.
    let gz_dir = tempfile::tempdir().expect("a temporary directory");
    let gz_path = gz_dir.path().join("fuzz.csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &bytes).expect("gzip in memory");
    std::fs::write(&gz_path, gz.finish().expect("gzip in memory")).expect("writing the input");
    let mut gz_labels = LabelTable::default();
    let mut gz_flows = Vec::new();
    let gz_stats = read_plain_files_in(
        std::slice::from_ref(&gz_path),
        3,
        chunk,
        &mut gz_labels,
        |r| gz_flows.push(*r),
    );
    for (what, flows, labels, stats) in [
        ("byte ranges", &ranges, &range_labels, range_stats),
        ("gzip blocks", &gz_flows, &gz_labels, gz_stats),
    ] {
        match (&one_stats, stats) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    format!("{one:?}"),
                    format!("{flows:?}"),
                    "{what}: flows differ"
                );
                assert_eq!(one_labels.texts(), labels.texts(), "{what}: labels differ");
                assert_eq!(counts(a), counts(&b), "{what}: counts differ");
            }
            (Err(a), Err(b)) => assert_eq!(kind(a), kind(&b), "{what}: {a} / {b}"),
            (a, b) => panic!("{what}: one path failed, the other not: {a:?} / {b:?}"),
        }
    }
}

/// What a read counted, to compare.
fn counts(s: &ReadStats) -> String {
    format!(
        "{} {} {:?} {:?} {} {} {} {} {}",
        s.rows,
        s.flows,
        s.skipped,
        // The places, not the file's name (the gzip copy has another).
        s.problems
            .iter()
            .map(|p| (p.line, &p.column, &p.value, &p.reason))
            .collect::<Vec<_>>(),
        s.non_finite_values,
        s.negative_durations,
        s.implausible_values,
        s.bad_timestamps,
        s.has_labels
    )
}

/// An error's kind (the place may be said as a line or a byte offset).
fn kind(e: &ReadError) -> &'static str {
    match e {
        ReadError::NoInput { .. } => "no input",
        ReadError::MissingColumns { .. } => "missing columns",
        ReadError::Io { .. } => "io",
        ReadError::LineTooLong { .. } => "line too long",
        ReadError::Empty { .. } => "empty",
        ReadError::BadHeader { .. } => "bad header",
        ReadError::NotAFile { .. } => "not a file",
        ReadError::UnknownFormat { .. } => "unknown format",
    }
}
