//! Ingest throughput by format: the same flows written as CICFlowMeter
//! CSV, Zeek conn.log (TSV and JSON), nfdump CSV (two one-way records a
//! flow, paired back by the reader), Argus CSV, Suricata eve.json and a
//! Parquet table, each read into profiles (`read_profiles_threads`, every
//! core, 15-minute windows); plain and gzip.
//!
//! `cargo bench --bench formats [-- ROWS]` (default 445,909: the
//! full-size synthetic Tuesday). Files go to `target/bench/formats/`.
//! Prints a table, median of 5 interleaved runs each: MB on disk, flows
//! read, wall time, MB/s and flows/s, and the time against the CSV's.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{median, time};

use latmove::flows::Flow;
use latmove::profile::ProfileOptions;
use latmove::profile::read::read_profiles_threads;

/// One flow, owned.
struct F {
    src: String,
    sport: u16,
    dst: String,
    dport: u16,
    proto: u8,
    ts: f64,
    dur: f64,
    out: (u64, u64),
    back: (u64, u64),
}

fn flows_of(path: &Path) -> Vec<F> {
    let mut v = Vec::new();
    latmove::flows::read_flows(&[path.to_path_buf()], |f: &Flow<'_>| {
        v.push(F {
            src: f.src_ip.to_string(),
            sport: f.src_port.unwrap_or(0),
            dst: f.dst_ip.to_string(),
            dport: f.dst_port,
            proto: f.protocol.unwrap_or(6),
            ts: f.timestamp.unwrap_or(0.0),
            dur: f.duration_us.unwrap_or(0.0) / 1e6,
            out: (
                f.fwd_packets.unwrap_or(0.0) as u64,
                f.fwd_bytes.unwrap_or(0.0) as u64,
            ),
            back: (
                f.bwd_packets.unwrap_or(0.0) as u64,
                f.bwd_bytes.unwrap_or(0.0) as u64,
            ),
        });
    })
    .unwrap();
    v
}

fn proto_name(p: u8) -> &'static str {
    match p {
        17 => "udp",
        1 => "icmp",
        _ => "tcp",
    }
}

fn zeek_state(f: &F) -> &'static str {
    if f.back.0 == 0 { "S0" } else { "SF" }
}

fn write_with(
    path: &Path,
    body: impl Fn(&mut dyn Write, &F) -> std::io::Result<()>,
    head: &str,
    flows: &[F],
) {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    w.write_all(head.as_bytes()).unwrap();
    for f in flows {
        body(&mut w, f).unwrap();
    }
    w.flush().unwrap();
}

fn write_zeek(path: &Path, flows: &[F]) {
    let head = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n\
        #path\tconn\n#open\t2026-12-04-00-00-00\n\
        #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\t\
        orig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\t\
        orig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n\
        #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\t\
        bool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n";
    write_with(
        path,
        |w, f| {
            writeln!(
                w,
                "{:.6}\tCx{:x}\t{}\t{}\t{}\t{}\t{}\t-\t{:.6}\t{}\t{}\t{}\t-\t-\t0\t{}\t{}\t{}\t{}\t{}\t-",
                f.ts,
                f.ts.to_bits() ^ u64::from(f.sport),
                f.src,
                f.sport,
                f.dst,
                f.dport,
                proto_name(f.proto),
                f.dur,
                f.out.1,
                f.back.1,
                zeek_state(f),
                if f.back.0 == 0 { "S" } else { "ShADadFf" },
                f.out.0,
                f.out.1 + 40 * f.out.0,
                f.back.0,
                f.back.1 + 40 * f.back.0
            )
        },
        head,
        flows,
    );
}

fn write_zeek_json(path: &Path, flows: &[F]) {
    write_with(
        path,
        |w, f| {
            writeln!(
                w,
                "{{\"ts\":{:.6},\"uid\":\"Cx{:x}\",\"id.orig_h\":\"{}\",\"id.orig_p\":{},\"id.resp_h\":\"{}\",\
                 \"id.resp_p\":{},\"proto\":\"{}\",\"duration\":{:.6},\"orig_bytes\":{},\"resp_bytes\":{},\
                 \"conn_state\":\"{}\",\"orig_pkts\":{},\"resp_pkts\":{}}}",
                f.ts,
                f.ts.to_bits() ^ u64::from(f.sport),
                f.src,
                f.sport,
                f.dst,
                f.dport,
                proto_name(f.proto),
                f.dur,
                f.out.1,
                f.back.1,
                zeek_state(f),
                f.out.0,
                f.back.0
            )
        },
        "",
        flows,
    );
}

fn nf_time(t: f64) -> String {
    latmove::flows::timestamp::format_timestamp(t)
}

fn write_nfdump(path: &Path, flows: &[F]) {
    write_with(
        path,
        |w, f| {
            let (t0, t1) = (nf_time(f.ts), nf_time(f.ts + f.dur));
            writeln!(
                w,
                "{t0},{t1},{:.3},{},{},{},{},{},......S.,0,0,{},{},0,0",
                f.dur,
                f.src,
                f.dst,
                f.sport,
                f.dport,
                proto_name(f.proto).to_ascii_uppercase(),
                f.out.0,
                f.out.1
            )?;
            if f.back.0 > 0 {
                writeln!(
                    w,
                    "{t0},{t1},{:.3},{},{},{},{},{},...A..S.,0,0,{},{},0,0",
                    f.dur,
                    f.dst,
                    f.src,
                    f.dport,
                    f.sport,
                    proto_name(f.proto).to_ascii_uppercase(),
                    f.back.0,
                    f.back.1
                )?;
            }
            Ok(())
        },
        "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt\n",
        flows,
    );
}

fn write_argus(path: &Path, flows: &[F]) {
    write_with(
        path,
        |w, f| {
            writeln!(
                w,
                "{:.6},{:.6},{},{},{},   ->,{},{},{},{},{},{},{}",
                f.ts,
                f.dur,
                proto_name(f.proto),
                f.src,
                f.sport,
                f.dst,
                f.dport,
                f.out.0,
                f.back.0,
                f.out.1,
                f.back.1,
                if f.back.0 == 0 { "REQ" } else { "FIN" }
            )
        },
        "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,SrcPkts,DstPkts,SrcBytes,DstBytes,State\n",
        flows,
    );
}

fn write_eve(path: &Path, flows: &[F]) {
    let iso = |t: f64| nf_time(t).replacen(' ', "T", 1) + "+0000";
    write_with(
        path,
        |w, f| {
            writeln!(
                w,
                "{{\"timestamp\":\"{}\",\"flow_id\":{},\"event_type\":\"flow\",\"src_ip\":\"{}\",\"src_port\":{},\
                 \"dest_ip\":\"{}\",\"dest_port\":{},\"proto\":\"{}\",\"flow\":{{\"pkts_toserver\":{},\
                 \"pkts_toclient\":{},\"bytes_toserver\":{},\"bytes_toclient\":{},\"start\":\"{}\",\"end\":\"{}\"}}}}",
                iso(f.ts + f.dur),
                f.ts.to_bits() >> 12,
                f.src,
                f.sport,
                f.dst,
                f.dport,
                proto_name(f.proto).to_ascii_uppercase(),
                f.out.0,
                f.back.0,
                f.out.1,
                f.back.1,
                iso(f.ts),
                iso(f.ts + f.dur)
            )
        },
        "",
        flows,
    );
}

fn write_parquet(path: &Path, flows: &[F]) {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    let batch = |part: &[F]| {
        let s = |g: &dyn Fn(&F) -> String| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(part.iter().map(g)))
        };
        let i = |g: &dyn Fn(&F) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(part.iter().map(g)))
        };
        let x = |g: &dyn Fn(&F) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(part.iter().map(g)))
        };
        RecordBatch::try_from_iter([
            ("ts", x(&|f| f.ts)),
            ("src_ip", s(&|f| f.src.clone())),
            ("src_port", i(&|f| i64::from(f.sport))),
            ("dst_ip", s(&|f| f.dst.clone())),
            ("dst_port", i(&|f| i64::from(f.dport))),
            ("proto", i(&|f| i64::from(f.proto))),
            ("duration", x(&|f| f.dur)),
            ("src_pkts", i(&|f| f.out.0 as i64)),
            ("dst_pkts", i(&|f| f.back.0 as i64)),
            ("src_bytes", i(&|f| f.out.1 as i64)),
            ("dst_bytes", i(&|f| f.back.1 as i64)),
        ])
        .unwrap()
    };
    let first = batch(&flows[..1]);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(
        File::create(path).unwrap(),
        first.schema(),
        Some(props),
    )
    .unwrap();
    for part in flows.chunks(64 * 1024) {
        w.write(&batch(part)).unwrap();
    }
    w.close().unwrap();
}

fn gzip(from: &Path) -> PathBuf {
    let to = PathBuf::from(format!("{}.gz", from.display()));
    let mut e = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(&to).unwrap()),
        flate2::Compression::new(6),
    );
    std::io::copy(&mut File::open(from).unwrap(), &mut e).unwrap();
    e.finish().unwrap().flush().unwrap();
    to
}

/// A format's writer: the file, the flows.
type Writer = fn(&Path, &[F]);

fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(latmove::synth::TUESDAY_ROWS);
    let dir = PathBuf::from("target/bench/formats");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join(format!("day-{rows}.csv"));
    if !csv.exists() {
        let cfg = latmove::synth::SynthConfig {
            rows,
            seed: 42,
            scenario: latmove::synth::Scenario::Standard,
            benign_only: false,
            run: None,
            workstations: 10,
        };
        let mut w = BufWriter::new(File::create(&csv).unwrap());
        latmove::synth::write_day(&cfg, &mut w).unwrap();
    }
    let flows = flows_of(&csv);
    let named = |ext: &str| dir.join(format!("day-{rows}.{ext}"));
    let mut inputs: Vec<(String, PathBuf)> = vec![("CICFlowMeter CSV".into(), csv.clone())];
    let writers: [(&str, &str, Writer); 6] = [
        ("Zeek conn.log (TSV)", "conn.log", write_zeek),
        ("Zeek conn.log (JSON)", "conn.json", write_zeek_json),
        ("nfdump CSV (one-way records)", "nfdump.csv", write_nfdump),
        ("Argus CSV", "argus.csv", write_argus),
        ("Suricata eve.json", "eve.json", write_eve),
        ("Parquet (snappy)", "parquet", write_parquet),
    ];
    for (label, ext, write) in writers {
        let p = named(ext);
        if !p.exists() {
            write(&p, &flows);
        }
        inputs.push((label.into(), p));
    }
    for k in [0, 1] {
        let (label, p) = inputs[k].clone();
        let gz = PathBuf::from(format!("{}.gz", p.display()));
        let gz = if gz.exists() { gz } else { gzip(&p) };
        inputs.push((format!("{label}, gzip"), gz));
    }
    let cores = latmove::util::threads::default_threads();
    let options = ProfileOptions::default();
    let read = |p: &Path| read_profiles_threads(&[p.to_path_buf()], &options, cores).unwrap();
    let flows_read: Vec<u64> = inputs.iter().map(|(_, p)| read(p).1.flows).collect();
    let runs = 5;
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); inputs.len()];
    for _ in 0..runs {
        for (k, (_, p)) in inputs.iter().enumerate() {
            times[k].push(time(1, || read(p)));
        }
    }
    let medians: Vec<f64> = times.into_iter().map(|t| median(t).as_secs_f64()).collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} flows ({rows} rows), {cores} cores, median of {runs}\n",
        flows.len()
    );
    let _ = writeln!(
        out,
        "| input | MB | flows read | wall | MB/s | flows/s | vs CSV |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (k, (label, p)) in inputs.iter().enumerate() {
        let mb = std::fs::metadata(p).unwrap().len() as f64 / 1e6;
        let s = medians[k];
        let _ = writeln!(
            out,
            "| {label} | {mb:.0} | {} | {s:.3} s | {:.0} | {:.2} M | {:.2}x |",
            flows_read[k],
            mb / s,
            flows_read[k] as f64 / s / 1e6,
            s / medians[0]
        );
    }
    print!("{out}");
}
