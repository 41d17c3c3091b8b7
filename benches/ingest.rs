//! Ingest throughput: latmove's reader and profiles against a bare csv
//! crate `ByteRecord` loop over the same file.
//!
//! `cargo bench --bench ingest [-- FILE]` (default: `target/bench/day1x.csv`,
//! the full-size synthetic Tuesday `bench/run.sh` writes; generated here
//! when absent). Prints a table, median of 5 runs each:
//! * the bare loop on one thread (every record tokenized, nothing parsed);
//! * the bare loop on every core: the file split into byte ranges at line
//!   starts, one reader per range (the best any csv-crate reader can do);
//! * latmove's ingest (`read_profiles_threads`) without and with 15-minute
//!   windows, one thread and pipelined.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{median, time};

use latmove::profile::ProfileOptions;
use latmove::profile::read::read_profiles_threads;

/// Records in `[start, end)` of the file, `start` moved to the next line
/// start (a range owns the lines that begin inside it).
fn count_range(path: &Path, start: u64, end: u64) -> u64 {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut skipped = 0u64;
    if start > 0 {
        let mut line = Vec::new();
        skipped = r.read_until(b'\n', &mut line).unwrap() as u64;
    }
    let begin = start + skipped;
    if begin >= end {
        return 0;
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(r.take(u64::MAX));
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while rdr.read_byte_record(&mut rec).unwrap() {
        n += 1;
        // The record that starts at or after `end` belongs to the next range.
        if begin + rec.position().unwrap().byte() >= end {
            n -= 1;
            break;
        }
    }
    n
}

fn bare_loop(path: &Path, threads: usize) -> u64 {
    let len = std::fs::metadata(path).unwrap().len();
    let step = len.div_ceil(threads as u64);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|i| {
                let (a, b) = (i * step, ((i + 1) * step).min(len));
                s.spawn(move || count_range(path, a, b))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn main() {
    let path: PathBuf = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench/day1x.csv"));
    if !path.exists() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let cfg = latmove::synth::SynthConfig {
            rows: latmove::synth::TUESDAY_ROWS,
            seed: 42,
            scenario: latmove::synth::Scenario::Standard,
            benign_only: false,
            run: None,
            workstations: 10,
        };
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        latmove::synth::write_day(&cfg, &mut w).unwrap();
    }
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let cores = latmove::util::threads::default_threads();
    let runs = 5;
    let rows = bare_loop(&path, 1);
    assert_eq!(
        rows,
        bare_loop(&path, cores),
        "byte ranges lost or doubled rows"
    );
    println!(
        "{} ({mb:.0} MB, {rows} records with the header), {cores} cores",
        path.display()
    );
    // Rounds: every reader once per round, so a slow spell of a noisy
    // machine hits all of them alike; the table shows medians.
    type Job<'a> = (String, Box<dyn Fn() + 'a>);
    let mut jobs: Vec<Job> = vec![
        (
            "csv ByteRecord loop, 1 thread".into(),
            Box::new(|| {
                std::hint::black_box(bare_loop(&path, 1));
            }),
        ),
        (
            format!("csv ByteRecord loop, {cores} threads (byte ranges)"),
            Box::new(|| {
                std::hint::black_box(bare_loop(&path, cores));
            }),
        ),
    ];
    for (label, window_secs) in [("no windows", None), ("15-min windows", Some(900))] {
        for threads in [1, cores.max(2)] {
            let options = ProfileOptions {
                window_secs,
                ..Default::default()
            };
            let path = &path;
            jobs.push((
                format!("latmove ingest, {label}, {threads} thread(s)"),
                Box::new(move || {
                    std::hint::black_box(
                        read_profiles_threads(std::slice::from_ref(path), &options, threads)
                            .unwrap(),
                    );
                }),
            ));
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); jobs.len()];
    for _ in 0..runs {
        for (k, (_, job)) in jobs.iter().enumerate() {
            times[k].push(time(1, job));
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    let best_bare = medians[1].as_secs_f64();
    println!(
        "| reader | wall (median of {runs}, interleaved) | MB/s | vs the bare loop on {cores} threads |"
    );
    println!("|---|---|---|---|");
    for ((name, _), d) in jobs.iter().zip(&medians) {
        let secs = d.as_secs_f64();
        println!(
            "| {name} | {secs:.3} s | {:.0} | {:.2}x |",
            mb / secs,
            secs / best_bare
        );
    }
}
