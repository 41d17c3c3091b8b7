//! The readers of Zeek, nfdump, Argus, Suricata and Parquet flows: each
//! format's rules, and the same capture read in every format.

use std::path::{Path, PathBuf};

use latmove::flows::{ReadStats, SkipReason};
use latmove::profile::read::read_profiles_threads;
use latmove::profile::{HostProfile, ProfileOptions, Profiles};

use crate::util::*;

/// The committed fixtures made from one capture (tests/fixtures/capture).
fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/capture")
        .join(name)
}

/// Profiles of whole hosts (no windows) and what the read counted.
fn read(path: &Path) -> (Profiles, ReadStats) {
    let options = ProfileOptions {
        window_secs: None,
        ..Default::default()
    };
    read_profiles_threads(&[path.to_path_buf()], &options, 1).expect("readable")
}

fn host<'a>(p: &'a Profiles, ip: &str) -> &'a HostProfile {
    let ip: std::net::IpAddr = ip.parse().unwrap();
    p.hosts
        .iter()
        .find(|h| h.ip == ip)
        .unwrap_or_else(|| panic!("{ip} has no profile"))
}

/// Writes `batch` as the Parquet file `path`.
fn write_parquet(path: &Path, batch: &arrow_array::RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

fn skipped(s: &ReadStats, r: SkipReason) -> u64 {
    s.skipped.get(&r).copied().unwrap_or(0)
}

/// `detect ARGS..` over `input`: the flagged hosts, in rank order.
/// (`--contamination 0.025` of the capture's 41 unlabelled hosts flags one:
/// the default 0.01 flags none in a network of fewer than 100 hosts.)
fn flagged(input: &Path, args: &[&str]) -> Vec<String> {
    let tmp = tempdir();
    let out = tmp.path().join("o");
    let mut all = vec![
        "detect",
        input.to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let o = latmove(&all);
    expect_code(&o, 0);
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    rows.iter()
        .filter(|r| r[col("flagged")] == "true")
        .map(|r| r[col("ip")].clone())
        .collect()
}

#[test]
fn one_capture_in_every_format_gives_the_same_scanner_alone() {
    for name in [
        "capture.cicflowmeter.csv.gz",
        "zeek",
        "capture.conn.json.gz",
        "capture.nfdump.csv.gz",
        "capture.argus.csv.gz",
        "capture.argus-default.tsv.gz",
        "capture.eve.json.gz",
        "capture.parquet",
        "capture.ocsf.parquet",
    ] {
        assert_eq!(
            flagged(&capture(name), &["--contamination", "0.025"]),
            ["10.77.0.13"],
            "{name}: only the scanner flagged"
        );
        // With the capture's ground truth, every default does it too.
        let truth = capture("truth.txt");
        assert_eq!(
            flagged(&capture(name), &["--truth", truth.to_str().unwrap()]),
            ["10.77.0.13"],
            "{name}: only the scanner flagged, trained on the benign hosts"
        );
    }
}

#[test]
fn the_capture_reads_the_same_flows_from_argus_zeek_suricata_and_parquet() {
    // Made from the same Argus records: the same flows, whatever the format.
    let (argus, a) = read(&capture("capture.argus.csv.gz"));
    for name in [
        "zeek",
        "capture.conn.json.gz",
        "capture.eve.json.gz",
        "capture.parquet",
        "capture.ocsf.parquet",
    ] {
        let (p, s) = read(&capture(name));
        assert_eq!(s.flows, a.flows, "{name}: flows");
        let (x, y) = (host(&argus, "10.77.0.13"), host(&p, "10.77.0.13"));
        assert_eq!(x.flows, y.flows, "{name}");
        assert_eq!(x.pairs.len(), y.pairs.len(), "{name}: destination ports");
        assert_eq!(
            x.distinct_dsts(),
            y.distinct_dsts(),
            "{name}: hosts reached"
        );
    }
    // The scan: 2,000 SYNs, most answered by a reset; nmap's ping sweep.
    let s = host(&argus, "10.77.0.13");
    assert!(s.pairs.len() >= 2000, "{}", s.pairs.len());
    assert!(s.unanswered as f64 > 0.9 * s.reply_known as f64);
}

#[test]
fn nfdump_records_are_paired_into_the_flows_argus_sees() {
    let (nf, s) = read(&capture("capture.nfdump.csv.gz"));
    let (argus, _) = read(&capture("capture.argus.csv.gz"));
    assert!(
        s.notes.keys().any(|k| k.contains("paired")),
        "{:?}",
        s.notes
    );
    // Every client's flows, paired from one-way records, are Argus's
    // (nfpcapd's cache joins the odd two connections that reuse a source
    // port within seconds, which Argus keeps apart).
    for h in &argus.hosts {
        let ip = h.ip.to_string();
        if !ip.starts_with("10.77.0.") || ip == "10.77.0.13" {
            continue;
        }
        let n = host(&nf, &ip);
        assert!(
            n.flows <= h.flows && n.flows * 10 >= h.flows * 9,
            "{ip}: {} flows from nfdump, {} from Argus",
            n.flows,
            h.flows
        );
        assert_eq!(n.unanswered, h.unanswered, "{ip}: unanswered");
        assert_eq!(n.reoriented, 0, "{ip}: pairs are oriented by time");
    }
    let scanner = (host(&nf, "10.77.0.13"), host(&argus, "10.77.0.13"));
    let (a, b) = (scanner.0.unanswered as f64, scanner.1.unanswered as f64);
    assert!((a - b).abs() <= 0.01 * b, "scanner unanswered: {a} vs {b}");
    // The replies are never profiled as their senders' flows.
    assert!(nf.hosts.iter().all(|h| h.ip.to_string() != "10.77.0.11"));
    // The summary block after the records is not read as rows.
    assert_eq!(skipped(&s, SkipReason::ShortRow), 0);
    assert_eq!(skipped(&s, SkipReason::BadSourceIp), 0);
}

/// A conn.log with Zeek's header lines, `sep` between fields.
fn zeek_log(sep: &str, fields: &[&str], rows: &[&[&str]], close: bool) -> String {
    let esc: String = sep.bytes().map(|b| format!("\\x{b:02x}")).collect();
    let mut s = format!(
        "#separator {esc}\n#set_separator{sep},\n#empty_field{sep}(empty)\n#unset_field{sep}-\n\
         #path{sep}conn\n#open{sep}2026-12-04-10-00-00\n#fields{sep}{}\n#types{sep}{}\n",
        fields.join(sep),
        fields
            .iter()
            .map(|_| "string")
            .collect::<Vec<_>>()
            .join(sep)
    );
    for r in rows {
        s += &r.join(sep);
        s += "\n";
    }
    if close {
        s += "#close\t2026-12-04-11-00-00\n";
    }
    s
}

const ZEEK_FIELDS: &[&str] = &[
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
    "community_id",
    "resp_cc",
];

fn zeek_row<'a>(
    orig: &'a str,
    resp: &'a str,
    rport: &'a str,
    proto: &'a str,
    state: &'a str,
    history: &'a str,
    resp_pkts: &'a str,
) -> Vec<&'a str> {
    vec![
        "1764842400.5",
        "CHhAvVGS1DHFjwGM9",
        orig,
        "50000",
        resp,
        rport,
        proto,
        "-",
        "0.5",
        "10",
        "(empty)",
        state,
        "T",
        "F",
        "0",
        history,
        "1",
        "44",
        resp_pkts,
        "40",
        "(empty)",
        "1:abc=",
        "US",
    ]
}

#[test]
fn zeek_tsv_states_columns_by_name_and_unset_fields() {
    let rows = [
        zeek_row("10.0.0.1", "10.0.0.2", "22", "tcp", "S0", "S", "0"),
        zeek_row("10.0.0.1", "10.0.0.3", "23", "tcp", "REJ", "Sr", "1"),
        zeek_row("10.0.0.1", "10.0.0.4", "80", "tcp", "SF", "ShADadFf", "5"),
        zeek_row("10.0.0.1", "10.0.0.5", "81", "tcp", "RSTRH", "hR", "1"),
        zeek_row("10.0.0.1", "10.0.0.6", "82", "tcp", "SH", "SF", "-"),
        zeek_row("10.0.0.1", "10.0.0.7", "3", "icmp", "OTH", "-", "1"),
        zeek_row("10.0.0.1", "224.0.0.251", "5353", "udp", "S0", "D", "0"),
        zeek_row("fd00::1", "fd00::2", "445", "tcp", "SF", "ShADad", "4"),
        zeek_row("10.0.0.1", "not-an-ip", "80", "tcp", "SF", "Sh", "1"),
    ];
    let rows: Vec<&[&str]> = rows.iter().map(|r| r.as_slice()).collect();
    // '|' between fields, and no #close: a log still being written.
    let mut fields = ZEEK_FIELDS.to_vec();
    fields.swap(0, 22); // columns in another order: found by name
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| {
            let mut r = r.to_vec();
            r.swap(0, 22);
            r
        })
        .collect();
    let rows: Vec<&[&str]> = rows.iter().map(|r| r.as_slice()).collect();
    let tmp = tempdir();
    let path = write(
        tmp.path(),
        "conn.log",
        zeek_log("|", &fields, &rows, false).as_bytes(),
    );
    let (p, s) = read(&path);
    let h = host(&p, "10.0.0.1");
    // Seven flows: the multicast one counted aside, the bad address skipped.
    assert_eq!(h.flows, 6);
    assert_eq!(skipped(&s, SkipReason::NotUnicast), 1);
    assert_eq!(skipped(&s, SkipReason::BadDestinationIp), 1);
    let problem = &s.problems[0];
    assert_eq!(
        (
            problem.line,
            problem.column.as_str(),
            problem.value.as_str()
        ),
        (17, "id.resp_h", "not-an-ip")
    );
    // S0, REJ, SH unanswered; SF and ICMP (a reply) answered; RSTRH
    // counted neither way.
    assert_eq!((h.unanswered, h.reply_known), (3, 5));
    // ICMP's type and code are no port: port 0.
    assert!(h.port_flows.get(&0).is_some() && h.port_flows.get(&3).is_none());
    // local_orig T makes the host inside; local_resp F the peers outside.
    assert!(h.internal);
    assert_eq!(h.internal_dsts.len(), 0);
    // resp_pkts '-' is missing, not 0: five flows with both packet counts.
    assert_eq!(h.volume_known, 5);
    let v6 = host(&p, "fd00::1");
    assert_eq!((v6.flows, v6.unanswered), (1, 0));
    // The originator is the initiator, whatever its port.
    assert_eq!(h.reoriented, 0);
}

#[test]
fn zeek_logs_other_than_conn_are_refused_by_name() {
    let tmp = tempdir();
    let log =
        zeek_log("\t", &["ts", "uid", "query"], &[], true).replace("#path\tconn", "#path\tdns");
    let path = write(tmp.path(), "dns.log", log.as_bytes());
    let err = detect_refused(&path, &tmp.path().join("o"), &[]);
    assert!(
        err.contains("dns.log") && err.contains("a Zeek dns log"),
        "{err}"
    );
}

#[test]
fn zeek_directories_read_rotated_conn_logs_only() {
    let tmp = tempdir();
    let day = tmp.path().join("2026-12-04");
    std::fs::create_dir_all(&day).unwrap();
    let rows = [zeek_row(
        "10.0.0.1", "10.0.0.2", "22", "tcp", "S0", "S", "0",
    )];
    let rows: Vec<&[&str]> = rows.iter().map(|r| r.as_slice()).collect();
    let log = zeek_log("\t", ZEEK_FIELDS, &rows, true);
    for hour in ["10:00:00-11:00:00", "11:00:00-12:00:00"] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, log.as_bytes()).unwrap();
        write(&day, &format!("conn.{hour}.log.gz"), &gz.finish().unwrap());
    }
    // Zeek's other logs in the same directory are not flows.
    write(&day, "dns.10:00:00-11:00:00.log.gz", b"not read");
    write(&day, "weird.log", b"not read");
    let (p, s) = read(tmp.path());
    assert_eq!(s.files.len(), 2, "{:?}", s.files);
    assert_eq!(host(&p, "10.0.0.1").flows, 2);
}

#[test]
fn zeek_json_keys_dotted_underscored_or_nested_and_iso_times() {
    let lines = [
        r#"{"ts":1764842400.5,"uid":"C1","id.orig_h":"10.0.0.1","id.orig_p":50000,"id.resp_h":"10.0.0.2","id.resp_p":445,"proto":"tcp","conn_state":"S0","history":"S","orig_pkts":1,"resp_pkts":0}"#,
        r#"{"ts":"2025-12-04T10:00:01.000000Z","uid":"C2","id_orig_h":"10.0.0.1","id_orig_p":50001,"id_resp_h":"10.0.0.3","id_resp_p":445,"proto":"tcp","conn_state":"REJ","orig_pkts":1,"resp_pkts":1}"#,
        r#"{"ts":1764842402,"uid":"C3","id":{"orig_h":"10.0.0.1","orig_p":50002,"resp_h":"10.0.0.4","resp_p":445},"proto":"tcp","conn_state":"SF","duration":1.5,"orig_pkts":6,"resp_pkts":5}"#,
        r#"{"ts":1764842403,"uid":"C4","id.orig_h":"10.0.0.1","id.orig_p":"x","id.resp_h":"10.0.0.5","id.resp_p":445,"proto":"tcp","conn_state":"S0"}"#,
        r#"{"_path":"dns","ts":1764842404,"uid":"C5","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.53","id.resp_p":53,"query":"example.org"}"#,
        "not json",
    ];
    let tmp = tempdir();
    let path = write(
        tmp.path(),
        "conn.json",
        (lines.join("\n") + "\n").as_bytes(),
    );
    let (p, s) = read(&path);
    let h = host(&p, "10.0.0.1");
    assert_eq!(h.flows, 3);
    assert_eq!((h.unanswered, h.reply_known), (2, 3));
    assert_eq!(h.first_seen, Some(1764842400.5));
    assert_eq!(h.last_seen, Some(1764842402.0));
    assert_eq!(skipped(&s, SkipReason::BadPort), 1);
    assert_eq!(skipped(&s, SkipReason::OtherEvent), 1);
    assert_eq!(skipped(&s, SkipReason::BadRecord), 1);
    assert_eq!(s.problems[0].column, "id.orig_p");
    assert_eq!(s.problems[1].line, 6);
}

#[test]
fn the_real_zeek_scan_log_reads_as_2000_unanswered_syns() {
    let Some(dir) = real_samples() else {
        return;
    };
    let log = dir.parent().unwrap().join("zeek/nmap-scan.conn.log");
    if !log.exists() {
        eprintln!("skipped: {} is absent", log.display());
        return;
    }
    let (p, s) = read(&log);
    assert_eq!((s.rows, s.flows, s.skipped_total()), (2000, 2000, 0));
    let h = host(&p, "192.168.100.103");
    assert_eq!((h.flows, h.unanswered, h.reply_known), (2000, 2000, 2000));
    assert_eq!(h.pairs.len(), 1000);
    // With the capture's hosts as the rest of the network, the scanner of
    // the real log is flagged beside the capture's.
    let tmp = tempdir();
    let both = tmp.path().join("both");
    std::fs::create_dir_all(&both).unwrap();
    std::fs::copy(&log, both.join("conn.log")).unwrap();
    copy_dir(&capture("zeek"), &both.join("capture"));
    let mut f = flagged(&both, &["--contamination", "0.05"]);
    f.sort();
    assert_eq!(f, ["10.77.0.13", "192.168.100.103"]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap().path();
        let dst = to.join(e.file_name().unwrap());
        if e.is_dir() {
            copy_dir(&e, &dst);
        } else {
            std::fs::copy(&e, &dst).unwrap();
        }
    }
}

#[test]
fn nfdump_layouts_summary_pairing_and_unpaired_syns() {
    // nfdump 1.7.5's named layout, times in local time without a zone.
    let new = "firstSeen,duration,proto,srcAddr,srcPort,dstAddr,dstPort,packets,bytes,flows\n\
        2026-12-04 10:00:00.100,0.010,6,10.0.0.1,50000,10.0.0.2,80,5,400,1\n\
        2026-12-04 10:00:00.101,0.009,6,10.0.0.2,80,10.0.0.1,50000,4,3000,1\n\
        2026-12-04 10:00:01.000,0.000,6,10.0.0.1,50001,10.0.0.3,22,1,44,1\n\
        2026-12-04 10:00:02.000,0.000,17,10.0.0.1,50002,224.0.0.251,5353,1,60,1\n\
        2026-12-04 10:00:03.000,0.000,6,10.0.0.1,bad,10.0.0.3,22,1,44,1\n";
    // The 1.6 layout, with flags and the Summary block.
    let old = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt\n\
        2026-12-04 10:00:00,2026-12-04 10:00:00,0.000,10.0.0.1,10.0.0.4,50003,445,TCP,......S.,0,0,1,44,0,0\n\
        2026-12-04 10:00:00,2026-12-04 10:00:00,0.000,10.0.0.4,10.0.0.1,445,50003,TCP,...A.R..,0,0,1,40,0,0\n\
        2026-12-04 10:00:01,2026-12-04 10:00:01,0.000,10.0.0.1,10.0.0.5,50004,445,TCP,......S.,0,0,1,44,0,0\n\
        2026-12-04 10:00:02,2026-12-04 10:00:02,0.000,10.0.0.6,10.0.0.7,443,50005,TCP,...AP...,0,0,3,900,0,0\n\
        Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n5,1072,7,0,0,0\n\
        Time window: 2026-12-04 10:00:00 - 2026-12-04 10:00:02\n\
        Total flows processed: 4, Blocks skipped: 0, Bytes read: 1000\n\
        Sys: 0.001s flows/second: 4000.0 Wall: 0.001s flows/second: 4000.0\n";
    let tmp = tempdir();
    let (p, s) = read(&write(tmp.path(), "new.csv", new.as_bytes()));
    let h = host(&p, "10.0.0.1");
    // The pair is one flow of .1's, answered; without flags, the lone
    // record's answer is unknown.
    assert_eq!((h.flows, h.unanswered, h.reply_known), (2, 0, 1));
    assert_eq!(h.bytes_sum, 3400.0);
    assert!(p.hosts.iter().all(|h| h.ip.to_string() != "10.0.0.2"));
    assert_eq!(skipped(&s, SkipReason::NotUnicast), 1);
    assert_eq!(skipped(&s, SkipReason::BadPort), 1);
    assert_eq!(s.problems[0].column, "srcport");
    let (p, s) = read(&write(tmp.path(), "old.csv", old.as_bytes()));
    assert_eq!(s.rows, 4, "the Summary block is not rows");
    assert_eq!(s.skipped_total(), 0);
    // Two runs in one stream (nfdump -r in a loop, piped): both read.
    let twice = [old, old].concat();
    let (_, s2) = read(&write(tmp.path(), "twice.csv", twice.as_bytes()));
    assert_eq!((s2.rows, s2.flows, s2.skipped_total()), (8, 6, 0));
    let h = host(&p, "10.0.0.1");
    // A SYN answered by a lone reset, and one not answered at all.
    assert_eq!((h.flows, h.unanswered, h.reply_known), (2, 2, 2));
    // A lone reply-direction record with ACK: its answer unknown, its
    // sender turned around by the ports (the client .7 opened it).
    let c = host(&p, "10.0.0.7");
    assert_eq!((c.flows, c.reply_known, c.reoriented), (1, 0, 1));
}

#[test]
fn argus_status_records_merge_and_management_records_are_counted() {
    let csv = "StartTime,Dur,Proto,SrcAddr,Sport,Dir,DstAddr,Dport,SrcPkts,DstPkts,SrcBytes,DstBytes,State,Label\n\
        1764842400.0,0.0,man,0,0,,0,0,0,0,0,0,STA,\n\
        1764842400.0,5.0,tcp,10.0.0.1,50000,   ->,10.0.0.2,22,10,9,1000,900,CON,flow=Normal-V42\n\
        1764842405.0,5.0,tcp,10.0.0.1,50000,   ->,10.0.0.2,22,10,9,1000,900,CON,flow=Normal-V42\n\
        1764842410.0,1.0,tcp,10.0.0.1,50000,   ->,10.0.0.2,22,2,2,100,100,FIN,flow=Normal-V42\n\
        1764842411.0,0.0,tcp,10.0.0.1,50001,   ->,10.0.0.3,445,1,1,60,54,RST,flow=From-Botnet-V42-TCP\n\
        1764842412.0,0.0,tcp,10.0.0.1,50002,   ->,10.0.0.4,445,1,0,60,0,REQ,flow=Background-TCP\n\
        1764842413.0,0.0,udp,10.0.0.9,53,  <?>,10.0.0.8,40000,1,1,80,120,CON,\n\
        1764842414.0,0.0,arp,00:11:22:33:44:55,,  who,00:11:22:33:44:66,,1,1,60,60,CON,\n";
    let tmp = tempdir();
    let (p, s) = read(&write(tmp.path(), "ctu.binetflow", csv.as_bytes()));
    let h = host(&p, "10.0.0.1");
    // Three status records of one SSH session: one flow.
    assert_eq!(h.flows, 3);
    assert_eq!(h.duration_count, 3);
    assert_eq!(h.duration_sum_us, 11e6 + 0.0 + 0.0);
    assert_eq!(h.packets_sum, (19.0 + 19.0 + 4.0) + 2.0 + 1.0);
    assert_eq!((h.unanswered, h.reply_known), (2, 3));
    assert_eq!(skipped(&s, SkipReason::NotAFlow), 2);
    assert!(s.notes.keys().any(|k| k.contains("merged")));
    // CTU-13 labels: Botnet an attack, Normal benign, Background unknown.
    assert_eq!(h.labelled_flows, 2);
    assert_eq!(h.attack_flows, 1);
    // '<?>': Argus was not sure who started it; the ports decide (.8).
    assert_eq!(host(&p, "10.0.0.8").reoriented, 1);
}

#[test]
fn suricata_flow_events_only_and_reset_replies_unanswered() {
    let lines = [
        r#"{"timestamp":"2026-12-04T10:00:00.000000+0000","flow_id":1,"event_type":"flow","src_ip":"10.0.0.1","src_port":50000,"dest_ip":"10.0.0.2","dest_port":445,"proto":"TCP","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":60,"bytes_toclient":54,"start":"2026-12-04T10:00:00.000000+0000","end":"2026-12-04T10:00:00.001000+0000","state":"closed"},"tcp":{"tcp_flags_ts":"02","tcp_flags_tc":"14"}}"#,
        r#"{"timestamp":"2026-12-04T10:00:01.000000+0000","flow_id":2,"event_type":"flow","src_ip":"10.0.0.1","src_port":50001,"dest_ip":"10.0.0.3","dest_port":80,"proto":"TCP","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":600,"bytes_toclient":5000,"start":"2026-12-04T10:00:01.000000+0000","end":"2026-12-04T10:00:02.000000+0000"},"tcp":{"tcp_flags_tc":"1b"}}"#,
        r#"{"timestamp":"2026-12-04T10:00:02.000000+0000","flow_id":3,"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.4","proto":"ICMP","icmp_type":8,"icmp_code":0,"flow":{"pkts_toserver":1,"pkts_toclient":0,"bytes_toserver":84,"bytes_toclient":0,"start":"2026-12-04T10:00:02.000000+0000"}}"#,
        r#"{"timestamp":"2026-12-04T10:00:03.000000+0000","event_type":"alert","src_ip":"10.0.0.1","dest_ip":"10.0.0.2","alert":{"signature":"x"}}"#,
        r#"{"timestamp":"2026-12-04T10:00:04.000000+0000","event_type":"stats","stats":{}}"#,
        r#"{"event_type":"flow","src_ip":"10.0.0.1","src_port":70000,"dest_ip":"10.0.0.2","dest_port":1,"proto":"TCP","flow":{}}"#,
    ];
    let tmp = tempdir();
    let (p, s) = read(&write(
        tmp.path(),
        "eve.json",
        (lines.join("\n") + "\n").as_bytes(),
    ));
    let h = host(&p, "10.0.0.1");
    assert_eq!(h.flows, 3);
    assert_eq!((h.unanswered, h.reply_known), (2, 3));
    assert!((h.duration_sum_us - (1000.0 + 1e6)).abs() < 1.0);
    assert_eq!(skipped(&s, SkipReason::OtherEvent), 2);
    assert_eq!(skipped(&s, SkipReason::BadPort), 1);
    assert_eq!(
        (s.problems[0].line, s.problems[0].column.as_str()),
        (6, "src_port")
    );
}

#[test]
fn suricata_flow_ids_and_zeek_uids_reach_the_forensic_flows() {
    let tmp = tempdir();
    let out = tmp.path().join("o");
    let report = tmp.path().join("r");
    let o = latmove(&[
        "detect",
        capture("zeek").to_str().unwrap(),
        "--contamination",
        "0.025",
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let (header, rows) = read_csv(&report.join("host-10-77-0-13-flows.csv"));
    let id = header.iter().position(|h| h == "flow_id").unwrap();
    assert!(rows.len() > 1000);
    assert!(
        rows.iter()
            .all(|r| r[id].starts_with('C') && r[id].len() == 18)
    );
}

#[test]
fn parquet_vpc_flow_logs_pair_one_way_records_and_rejects_go_unanswered() {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let col_s = |v: &[&str]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
    let col_i = |v: &[i64]| Arc::new(Int64Array::from(v.to_vec())) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        (
            "srcaddr",
            col_s(&["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1", "x"]),
        ),
        (
            "dstaddr",
            col_s(&["10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.4"]),
        ),
        ("srcport", col_i(&[50000, 443, 50001, 50002, 1])),
        ("dstport", col_i(&[443, 50000, 3389, 445, 1])),
        ("protocol", col_i(&[6, 6, 6, 6, 6])),
        ("packets", col_i(&[10, 12, 1, 2, 1])),
        ("bytes", col_i(&[1000, 9000, 44, 88, 40])),
        (
            "start",
            col_i(&[1764842400, 1764842400, 1764842401, 1764842402, 1764842403]),
        ),
        (
            "end",
            col_i(&[1764842410, 1764842410, 1764842401, 1764842402, 1764842403]),
        ),
        (
            "action",
            col_s(&["ACCEPT", "ACCEPT", "REJECT", "ACCEPT", "ACCEPT"]),
        ),
        ("tcp_flags", col_i(&[19, 18, 2, 2, 2])),
    ])
    .unwrap();
    let tmp = tempdir();
    let path = tmp.path().join("vpc.parquet");
    write_parquet(&path, &batch);
    let (p, s) = read(&path);
    let h = host(&p, "10.0.0.1");
    // The 443 pair one answered flow; the REJECT and the lone SYN not.
    assert_eq!((h.flows, h.unanswered, h.reply_known), (3, 2, 3));
    assert_eq!(h.bytes_sum, 10000.0);
    assert_eq!(skipped(&s, SkipReason::BadSourceIp), 1);
    assert_eq!(
        (s.problems[0].line, s.problems[0].column.as_str()),
        (5, "srcaddr")
    );
}

#[test]
fn unknown_inputs_are_refused_naming_the_file_and_what_was_seen() {
    let tmp = tempdir();
    let out = tmp.path().join("o");
    for (name, body, seen) in [
        ("notes.txt", "just some words\n", "just some words"),
        ("x.json", "{\"a\": 1}\n", "id.orig_h"),
        ("empty.csv", "", "empty"),
    ] {
        let path = write(tmp.path(), name, body.as_bytes());
        let err = detect_refused(&path, &out, &[]);
        assert!(err.contains(name) && err.contains(seen), "{err}");
    }
    // --format forces a reader: an Argus file read as Zeek's says so.
    let err = detect_refused(
        &capture("capture.argus.csv.gz"),
        &out,
        &["--format", "zeek"],
    );
    assert!(err.contains("missing column"), "{err}");
}

#[test]
fn watch_scores_zeek_logs_and_nfdump_csv_from_stdin() {
    let tmp = tempdir();
    let model = tmp.path().join("m.json");
    let o = latmove(&[
        "train",
        capture("zeek").to_str().unwrap(),
        "--contamination",
        "0.025",
        "-o",
        model.to_str().unwrap(),
        "--out",
        tmp.path().join("t").to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    for name in ["capture.nfdump.csv.gz", "capture.conn.json.gz"] {
        let bytes = std::fs::read(capture(name)).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
            .unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
            .args(["watch", "--model", model.to_str().unwrap(), "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &plain));
        let o = child.wait_with_output().unwrap();
        expect_code(&o, 0);
        // The scanner's window is the first alert and the strongest (the
        // capture may straddle two windows; a thin one can cross the
        // threshold on its own).
        let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let ip = |a: &serde_json::Value| a["source"]["ip"].as_str().unwrap().to_string();
        let score = |a: &serde_json::Value| a["latmove"]["score"].as_f64().unwrap();
        assert_eq!(ip(&alerts[0]), "10.77.0.13", "{name}");
        assert!(
            alerts[1..]
                .iter()
                .all(|a| score(a) < score(&alerts[0]) - 0.1)
        );
    }
}

#[test]
fn a_contamination_under_one_host_says_so_and_what_flags_the_top_one() {
    let tmp = tempdir();
    let out = tmp.path().join("o");
    let o = latmove(&[
        "detect",
        capture("capture.argus.csv.gz").to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("contamination 0.01 of 41 training hosts is under one host")
            && stdout.contains("--contamination 0.025 then flags the top one")
            && stdout.contains("flagged hosts             0"),
        "{stdout}"
    );
}

#[test]
fn fuzz_findings_of_the_formats_target_stay_fixed() {
    // A lone byte as the first line: no format; only one thread reads it.
    latmove::flows::check::one_thread_equals_ranges(&[0, 0xff, b'\n', b'x'], 64);
    // Blank lines, then a header beyond the first inflated block.
    let mut data = vec![0u8];
    data.extend_from_slice(b"\r\r\r\r\r\r\"\"");
    data.extend(std::iter::repeat_n(0xff, 50));
    data.extend_from_slice(b",\xf8\xf8  \xf8\n");
    latmove::flows::check::one_thread_equals_ranges(&data, 8);
    latmove::flows::check::one_thread_equals_ranges(&data, 64);
}

#[test]
fn a_followed_zeek_log_that_rotates_reads_on_through_the_new_header() {
    // What `tail -n +1 -F conn.log` (or `watch --follow`) gives when Zeek
    // rotates: the old log's end, then the new log from its header, whose
    // columns may be in another order.
    let row = zeek_row("10.0.0.1", "10.0.0.2", "22", "tcp", "S0", "S", "0");
    let old = zeek_log("\t", ZEEK_FIELDS, &[row.as_slice()], true);
    let mut fields = ZEEK_FIELDS.to_vec();
    fields.reverse();
    let mut reversed = row.clone();
    reversed.reverse();
    reversed[fields.iter().position(|f| *f == "id.resp_h").unwrap()] = "10.0.0.3";
    let new = zeek_log("\t", &fields, &[reversed.as_slice()], false);
    let tmp = tempdir();
    let (p, s) = read(&write(tmp.path(), "conn.log", (old + &new).as_bytes()));
    assert_eq!((s.rows, s.flows, s.skipped_total()), (2, 2, 0));
    let h = host(&p, "10.0.0.1");
    assert_eq!((h.flows, h.distinct_dsts(), h.unanswered), (2, 2, 2));
}

#[test]
fn parquet_row_groups_decoded_on_threads_give_the_one_thread_bytes() {
    // capture.parquet holds row groups of 500 rows: several a thread.
    let tmp = tempdir();
    let mut scores = Vec::new();
    for threads in ["1", "3"] {
        let out = tmp.path().join(threads);
        let o = latmove(&[
            "detect",
            capture("capture.parquet").to_str().unwrap(),
            "--threads",
            threads,
            "--no-charts",
            "--out",
            out.to_str().unwrap(),
        ]);
        expect_code(&o, 0);
        scores.push(std::fs::read(out.join("host_scores.csv")).unwrap());
    }
    assert_eq!(scores[0], scores[1]);
}

#[test]
fn broken_parquet_and_zeek_files_stop_with_their_names() {
    let tmp = tempdir();
    let out = tmp.path().join("o");
    // Parquet: the magic, then nothing a reader can use.
    let cut = std::fs::read(capture("capture.parquet")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("cut.parquet", cut[..cut.len() / 2].to_vec(), "Parquet"),
        ("junk.parquet", b"PAR1 not a table".to_vec(), "Parquet"),
        // A Zeek header without #fields before the rows.
        (
            "conn.log",
            b"#separator \\x09\n#path\tconn\n1.0\tC1\t10.0.0.1\n".to_vec(),
            "id.orig_h",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = write(tmp.path(), name, &bytes);
        let err = detect_refused(&path, &out, &[]);
        assert!(err.contains(name) && err.contains(says), "{name}: {err}");
    }
    // nfdump's reader, forced on a file without the addresses, names them.
    let path = write(tmp.path(), "nf.csv", b"ts,te,td,sp,dp\n1,2,3,4,5\n");
    let err = detect_refused(&path, &out, &["--format", "nfdump"]);
    assert!(
        err.contains("nf.csv") && err.contains("'sa / srcAddr', 'da / dstAddr'"),
        "{err}"
    );
    // A Parquet file without address columns names the ones it lacks.
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    let batch = RecordBatch::try_from_iter([(
        "bytes",
        std::sync::Arc::new(Int64Array::from(vec![1])) as ArrayRef,
    )])
    .unwrap();
    let path = tmp.path().join("noip.parquet");
    write_parquet(&path, &batch);
    let err = detect_refused(&path, &out, &[]);
    assert!(
        err.contains("noip.parquet") && err.contains("'src_ip'"),
        "{err}"
    );
}

#[test]
fn a_truth_file_is_the_whole_ground_truth_of_unlabelled_flows() {
    // The capture has no labels: the truth file names the scanner, and
    // every host it does not name is benign, so training and metrics work.
    let tmp = tempdir();
    let truth = write(tmp.path(), "truth.txt", b"10.77.0.13,PortScan\n");
    let out = tmp.path().join("o");
    let o = latmove(&[
        "detect",
        capture("capture.eve.json.gz").to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("trained on 40 benign hosts")
            && stdout.contains("false positives      0 of 40 benign hosts")
            && stdout.contains("recall               100.0%"),
        "{stdout}"
    );
}

#[test]
fn parquet_columns_of_other_types_are_missing_values_not_a_crash() {
    // A date-typed `ts` and a decimal count: types latmove does not read
    // as numbers or text; the flows are read without them.
    use arrow_array::{ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let batch = RecordBatch::try_from_iter([
        (
            "ts",
            Arc::new(Date32Array::from(vec![20_000, 20_001])) as ArrayRef,
        ),
        (
            "src_ip",
            Arc::new(StringArray::from(vec!["10.0.0.1", "10.0.0.1"])) as ArrayRef,
        ),
        (
            "dst_ip",
            Arc::new(StringArray::from(vec!["10.0.0.2", "10.0.0.3"])) as ArrayRef,
        ),
        (
            "src_pkts",
            Arc::new(
                Decimal128Array::from(vec![10, 20])
                    .with_precision_and_scale(10, 0)
                    .unwrap(),
            ) as ArrayRef,
        ),
    ])
    .unwrap();
    let tmp = tempdir();
    let path = tmp.path().join("odd.parquet");
    write_parquet(&path, &batch);
    let (p, s) = read(&path);
    assert_eq!((s.flows, s.skipped_total()), (2, 0));
    let h = host(&p, "10.0.0.1");
    assert_eq!((h.flows, h.first_seen, h.volume_known), (2, None, 0));
}
