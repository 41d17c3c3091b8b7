//! Self-checks of the reader for fuzzing and the tests: the byte-range
//! path must give exactly what one thread gives, on any bytes.

use std::path::PathBuf;

use super::parallel::read_plain_files_in;
use super::record::{FlowRecord, LabelTable};
use super::{ReadError, ReadStats, read_flows};

/// Writes `data` to a temporary file (after the CIC-IDS2017 header, unless
/// `data` starts with a NUL byte, which is dropped and the rest written as
/// it is), reads it with one thread and in byte ranges of `chunk` bytes on
/// three threads, and panics unless both give the same flows, labels,
/// counts, problem rows and errors.
pub fn one_thread_equals_ranges(data: &[u8], chunk: u64) {
    let bytes = match data.split_first() {
        Some((0, rest)) => rest.to_vec(),
        _ => [crate::synth::HEADER_2017.as_bytes(), b"\r\n", data].concat(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path: PathBuf = dir.path().join("fuzz.csv");
    std::fs::write(&path, &bytes).expect("writing the input");
    if super::formats::sniff_file(&path).is_ok_and(|f| f != super::formats::Format::Cic) {
        // Another format's reader: it must not panic, and gives the same
        // twice.
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
    match (one_stats, range_stats) {
        (Ok(a), Ok(b)) => {
            assert_eq!(format!("{one:?}"), format!("{ranges:?}"), "flows differ");
            assert_eq!(one_labels.texts(), range_labels.texts(), "labels differ");
            assert_eq!(counts(&a), counts(&b), "counts differ");
        }
        (Err(a), Err(b)) => assert_eq!(kind(&a), kind(&b), "{a} / {b}"),
        (a, b) => panic!("one path failed, the other not: {a:?} / {b:?}"),
    }
}

/// What a read counted, to compare.
fn counts(s: &ReadStats) -> String {
    format!(
        "{} {} {:?} {:?} {} {} {} {} {}",
        s.rows,
        s.flows,
        s.skipped,
        s.problems,
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
