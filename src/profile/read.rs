//! Reading flow files into profiles, on one thread or several: the
//! parsing threads, the router that orients each flow, and the profiling
//! shards, arranged so the profiles are bit-identical whatever the count.

use std::path::PathBuf;

use anyhow::Result;

use crate::flows::record::{FlowRecord, LabelTable};
use crate::flows::{self, ReadStats};
use crate::profile::{ProfileBuilder, ProfileOptions, Profiles};

/// Reads the inputs and builds host profiles with the default options, on
/// one thread.
pub fn read_profiles(inputs: &[PathBuf]) -> Result<(Profiles, ReadStats)> {
    read_profiles_threads(inputs, &ProfileOptions::default(), 1)
}

/// Flows per batch handed from the parsing thread to the profiling thread.
const BATCH: usize = 4096;

/// Reads the inputs and builds host profiles. With `threads` >= 2,
/// CICFlowMeter CSVs are parsed on `threads` threads (a plain file in byte
/// ranges, a gzip file in blocks inflated on a thread of its own) and
/// profiled on `threads` more, by initiator (`flows::parallel`); any other
/// format runs as a two-stage pipeline: this thread parses rows into owned
/// [`FlowRecord`]s (resolving labels in file order) and hands them in
/// batches, through a bounded channel, to a thread that owns the profiles
/// (a `.gz` input inflated on a third). Either way every host's flows are
/// profiled in the order one thread sees them, so the profiles (float sums
/// included) are bit-identical to the one-thread run (tested).
pub fn read_profiles_threads(
    inputs: &[PathBuf],
    options: &ProfileOptions,
    threads: usize,
) -> Result<(Profiles, ReadStats)> {
    let files = flows::expand_inputs(inputs)?;
    if threads < 2 {
        let mut builder = ProfileBuilder::with_options(options.clone());
        let stats = flows::read_flows(&files, |f| builder.add(f))?;
        return Ok((builder.finish(), stats));
    }
    let plain_cic = |f: &PathBuf| {
        !flows::parallel::is_gzip(f)
            && flows::formats::sniff_file(f).is_ok_and(|k| k == flows::formats::Format::Cic)
    };
    if files.iter().all(plain_cic) {
        return read_plain_sharded(&files, options, threads);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FlowRecord>>(8);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<FlowRecord>>();
    let opts = options.clone();
    let worker = std::thread::Builder::new()
        .spawn(move || {
            let mut builder = ProfileBuilder::with_options(opts);
            for batch in rx {
                for r in &batch {
                    builder.add_record(r);
                }
                // Return the buffer for reuse (ignored once reading is done).
                let _ = back_tx.send(batch);
            }
            builder
        })
        .map_err(|e| anyhow::anyhow!("starting the profiling thread: {e}"))?;
    let mut labels = LabelTable::default();
    let mut batch: Vec<FlowRecord> = Vec::with_capacity(BATCH);
    let mut send_failed = false;
    let read = flows::read_flows_threads(&files, threads, |f| {
        batch.push(FlowRecord::new(f, &mut labels));
        if batch.len() == BATCH {
            let next = back_rx
                .try_recv()
                .map(|mut b| {
                    b.clear();
                    b
                })
                .unwrap_or_else(|_| Vec::with_capacity(BATCH));
            let full = std::mem::replace(&mut batch, next);
            send_failed |= tx.send(full).is_err();
        }
    });
    if !batch.is_empty() {
        send_failed |= tx.send(batch).is_err();
    }
    drop(tx);
    let builder = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the profiling thread panicked"))?;
    let stats = read?;
    anyhow::ensure!(!send_failed, "the profiling thread stopped early");
    Ok((builder.finish_with_labels(labels), stats))
}

/// Plain files: parsed on `threads` threads in byte ranges and handed over
/// in file order (see `flows::parallel`); this thread routes each flow
/// (orientation, allowlist, destination id: what depends on the order of
/// all flows) and sends it to one of `threads` profiling threads, chosen by
/// its initiator, so each host's flows are profiled in file order by one
/// thread: the profiles are bit-identical to one thread's (tested).
fn read_plain_sharded(
    files: &[PathBuf],
    options: &ProfileOptions,
    threads: usize,
) -> Result<(Profiles, ReadStats)> {
    type Batch = Vec<(FlowRecord, crate::profile::Oriented)>;
    let shards = threads;
    let mut router = ProfileBuilder::with_options(options.clone());
    let mut labels = LabelTable::default();
    // Batches the shards are done with, reused (fresh ones cost page faults).
    let spares: std::sync::Mutex<Vec<Batch>> = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let mut senders = Vec::with_capacity(shards);
        let mut workers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(16);
            senders.push(tx);
            let opts = options.clone();
            let spares = &spares;
            let started = std::thread::Builder::new().spawn_scoped(s, move || {
                let mut builder = ProfileBuilder::with_options(opts);
                for mut batch in rx {
                    for (r, o) in &batch {
                        builder.add_routed(r, o);
                    }
                    batch.clear();
                    spares.lock().expect("spares lock").push(batch);
                }
                builder.into_sorted()
            });
            workers.push(started.map_err(|e| anyhow::anyhow!("starting a profiling thread: {e}"))?);
        }
        let spare = || {
            spares
                .lock()
                .expect("spares lock")
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(BATCH))
        };
        let mut batches: Vec<Batch> = (0..shards).map(|_| Vec::with_capacity(BATCH)).collect();
        let mut send_failed = false;
        let read = flows::parallel::read_plain_files(files, threads, &mut labels, |r| {
            if let Some(o) = router.route(r) {
                let k = o.shard(r, shards);
                batches[k].push((*r, o));
                if batches[k].len() == BATCH {
                    let full = std::mem::replace(&mut batches[k], spare());
                    send_failed |= senders[k].send(full).is_err();
                }
            }
        });
        for (tx, batch) in senders.iter().zip(batches) {
            if !batch.is_empty() {
                send_failed |= tx.send(batch).is_err();
            }
        }
        drop(senders);
        let built: Vec<crate::profile::SortedShard> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a profiling thread panicked"))
            })
            .collect::<Result<_>>()?;
        let stats = read?;
        anyhow::ensure!(!send_failed, "a profiling thread stopped early");
        Ok((router.finish_shards(built, labels), stats))
    })
}
