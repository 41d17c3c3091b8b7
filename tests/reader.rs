use std::io::Write;
use std::net::IpAddr;

use latmove::flows::SkipReason;
use latmove::flows::columns::{ColumnMap, Field};
use latmove::profile::read::read_profiles;
use latmove::profile::{HostProfile, Profiles};

use crate::util::*;

fn host<'a>(p: &'a Profiles, ip: &str) -> &'a HostProfile {
    let ip: IpAddr = ip.parse().unwrap();
    p.hosts
        .iter()
        .find(|h| h.ip == ip)
        .unwrap_or_else(|| panic!("no host {ip}"))
}

#[test]
fn real_2017_header_resolves_by_position_despite_the_duplicate() {
    let cells: Vec<&[u8]> = HEADER_2017.split(',').map(str::as_bytes).collect();
    assert_eq!(cells.len(), 85);
    let m = ColumnMap::from_header(cells);
    assert_eq!(m.get(Field::SrcIp), Some(1));
    assert_eq!(m.get(Field::DstPort), Some(4));
    assert_eq!(m.get(Field::Duration), Some(7));
    assert_eq!(m.get(Field::BwdPackets), Some(9));
    assert_eq!(m.get(Field::RstFlags), Some(51));
    assert_eq!(m.get(Field::Label), Some(84));
}

#[test]
fn infinity_and_nan_rows_are_kept_and_never_reach_the_model() {
    let dir = tempdir();
    let mut a = row_2017(
        "192.168.10.8",
        "192.168.10.5",
        "445",
        "4/7/2017 9:20",
        "0",
        b"BENIGN",
    );
    // Put the literal strings where the real files have them.
    let s = String::from_utf8(a.clone()).unwrap();
    let mut cols: Vec<String> = s.trim_end().split(',').map(String::from).collect();
    cols[20] = "Infinity".into();
    cols[21] = "NaN".into();
    cols[7] = "Infinity".into();
    a = format!("{}\r\n", cols.join(",")).into_bytes();
    let b = row_2017(
        "192.168.10.8",
        "192.168.10.9",
        "139",
        "4/7/2017 9:21",
        "100",
        b"BENIGN",
    );
    let p = write(dir.path(), "inf.csv", &file_2017(&[a, b]));
    let (profiles, stats) = read_both(&[p]);
    assert_eq!(stats.flows, 2);
    assert_eq!(stats.skipped_total(), 0);
    assert!(stats.non_finite_values >= 1);
    let h = host(&profiles, "192.168.10.8");
    assert_eq!(h.flows, 2);
    assert_eq!(
        h.mean_duration_us(),
        100.0,
        "the Infinity duration is ignored, not averaged"
    );
}

#[test]
fn non_utf8_labels_are_decoded_lossily_and_count_as_attacks() {
    let dir = tempdir();
    let rows = vec![
        row_2017(
            "172.16.0.1",
            "192.168.10.50",
            "80",
            "6/7/2017 9:20",
            "5",
            b"Web Attack \x96 Brute Force",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "6/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
    ];
    let p = write(dir.path(), "thursday.csv", &file_2017(&rows));
    let (profiles, stats) = read_both(&[p]);
    assert_eq!(
        stats.flows, 2,
        "a strict UTF-8 reader would lose the attack row"
    );
    let h = host(&profiles, "172.16.0.1");
    assert_eq!(h.is_attack(), Some(true));
    assert_eq!(
        profiles.attack_labels_of(h),
        vec!["Web Attack \u{fffd} Brute Force".to_string()]
    );
    assert_eq!(host(&profiles, "192.168.10.5").is_attack(), Some(false));
}

#[test]
fn all_empty_rows_are_skipped_and_counted() {
    let dir = tempdir();
    let empty = format!("{}\r\n", ",".repeat(84)).into_bytes();
    let rows = vec![
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "6/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
        empty.clone(),
        empty.clone(),
        empty,
    ];
    let p = write(dir.path(), "empty.csv", &file_2017(&rows));
    let (_, stats) = read_both(&[p]);
    assert_eq!(stats.rows, 4);
    assert_eq!(stats.flows, 1);
    assert_eq!(stats.skipped.get(&SkipReason::EmptyRow), Some(&3));
    assert!(
        stats.problems.is_empty(),
        "empty rows are counted, not reported one by one"
    );
}

#[test]
fn twelve_hour_timestamps_without_am_pm_land_in_the_afternoon() {
    let dir = tempdir();
    let rows = vec![
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 1:52",
            "5",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "03/07/2017 11:47:00",
            "5",
            b"BENIGN",
        ),
    ];
    let p = write(dir.path(), "ts.csv", &file_2017(&rows));
    let (profiles, stats) = read_both(&[p]);
    assert_eq!(stats.bad_timestamps, 0);
    let h = host(&profiles, "192.168.10.5");
    let fmt = latmove::flows::timestamp::format_timestamp;
    assert_eq!(fmt(h.first_seen.unwrap()), "2017-07-03 11:47:00");
    assert_eq!(fmt(h.last_seen.unwrap()), "2017-07-04 13:52:00");
}

#[test]
fn negative_durations_are_counted_not_fatal() {
    let dir = tempdir();
    let rows = vec![
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "-1",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "30",
            b"BENIGN",
        ),
    ];
    let p = write(dir.path(), "neg.csv", &file_2017(&rows));
    let (profiles, stats) = read_both(&[p]);
    assert_eq!(stats.negative_durations, 1);
    assert_eq!(host(&profiles, "192.168.10.5").mean_duration_us(), 30.0);
}

#[test]
fn reply_direction_flows_are_read_as_written() {
    // The direction trap: a server's reply opening a new flow makes it the
    // "Source IP". The reader keeps the file's direction; the seed profile
    // counts such a flow for the server (flow orientation is a profiling
    // decision, not a parsing one).
    let dir = tempdir();
    let rows = vec![row_2017(
        "192.168.10.3",
        "192.168.10.5",
        "52311",
        "4/7/2017 9:20",
        "5",
        b"BENIGN",
    )];
    let p = write(dir.path(), "reply.csv", &file_2017(&rows));
    let (profiles, _) = read_both(&[p]);
    let dc = host(&profiles, "192.168.10.3");
    assert!(dc.dst_ports().contains(&52311));
}

#[test]
fn bad_ip_port_and_number_rows_are_skipped_and_reported_with_place() {
    let dir = tempdir();
    let rows = vec![
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.999",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "http",
            "4/7/2017 9:20",
            "5",
            b"BENIGN",
        ),
        row_2017(
            "192.168.10.5",
            "192.168.10.3",
            "53",
            "4/7/2017 9:20",
            "12abc",
            b"BENIGN",
        ),
        b"192.168.10.5,short\r\n".to_vec(),
    ];
    let p = write(dir.path(), "bad.csv", &file_2017(&rows));
    let (_, stats) = read_both(&[p]);
    assert_eq!(stats.flows, 1);
    assert_eq!(stats.skipped.get(&SkipReason::BadSourceIp), Some(&1));
    assert_eq!(stats.skipped.get(&SkipReason::BadPort), Some(&1));
    assert_eq!(stats.skipped.get(&SkipReason::BadNumber), Some(&1));
    assert_eq!(stats.skipped.get(&SkipReason::ShortRow), Some(&1));
    let first = stats.problems[0].to_string();
    assert!(first.contains("bad.csv:3:"), "{first}");
    assert!(first.contains("Source IP"), "{first}");
    assert!(first.contains("192.168.10.999"), "{first}");
    let third = stats.problems[2].to_string();
    assert!(
        third.contains(":5:") && third.contains("Flow Duration") && third.contains("12abc"),
        "{third}"
    );
}

#[test]
fn sibling_layouts_are_aliased() {
    let dir = tempdir();
    // CSE-CIC-IDS2018 (the one file with IPs), short names.
    let ids2018 = "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,Label\n\
                   x,10.0.0.1,5000,10.0.0.2,22,6,14/02/2018 08:31:01,100,1,0,0,0,SSH-Bruteforce\n";
    // The Python cicflowmeter, snake_case, no label.
    let py = "src_ip,dst_ip,src_port,dst_port,protocol,timestamp,flow_duration,tot_fwd_pkts,tot_bwd_pkts\n\
              10.0.0.3,10.0.0.4,5000,443,6,2024-01-02 10:00:00,0.5,3,2\n";
    // ... with its header repeated mid-file, as in some 2018 files.
    let ids2018 = format!(
        "{ids2018}Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,Label\n"
    );
    // CICFlowMeter-V4 with AM/PM.
    let v4 = "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Total Fwd Packet,Total Bwd packets,Label\n\
              x,10.0.0.5,5000,10.0.0.6,80,6,04/07/2017 01:52:03 PM,100,1,1,BENIGN\n";
    let a = write(dir.path(), "a.csv", ids2018.as_bytes());
    let b = write(dir.path(), "b.csv", py.as_bytes());
    let c = write(dir.path(), "c.csv", v4.as_bytes());
    let (profiles, stats) = read_both(&[a, b, c]);
    assert_eq!(stats.flows, 3);
    assert_eq!(stats.bad_timestamps, 0);
    assert_eq!(stats.skipped.get(&SkipReason::RepeatedHeader), Some(&1));
    assert!(stats.problems.is_empty());
    assert_eq!(host(&profiles, "10.0.0.1").is_attack(), Some(true));
    assert_eq!(
        host(&profiles, "10.0.0.3").is_attack(),
        None,
        "no label column"
    );
    assert!(host(&profiles, "10.0.0.5").dst_ports().contains(&80));
}

#[test]
fn gzip_files_and_directories_are_read() {
    let dir = tempdir();
    let sub = dir.path().join("TrafficLabelling");
    std::fs::create_dir(&sub).unwrap();
    let rows = vec![row_2017(
        "192.168.10.5",
        "192.168.10.3",
        "53",
        "4/7/2017 9:20",
        "5",
        b"BENIGN",
    )];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&file_2017(&rows)).unwrap();
    write(&sub, "Tuesday.csv.gz", &gz.finish().unwrap());
    write(&sub, "Monday.csv", &file_2017(&rows));
    write(&sub, "notes.txt", b"not a csv");
    let (profiles, stats) = read_both(&[dir.path().to_path_buf()]);
    assert_eq!(stats.files.len(), 2);
    assert_eq!(host(&profiles, "192.168.10.5").flows, 2);
}

#[test]
fn machine_learning_cve_variant_is_refused_with_the_missing_columns() {
    let dir = tempdir();
    let p = write(
        dir.path(),
        "Tuesday-WorkingHours.pcap_ISCX.csv",
        b" Destination Port, Flow Duration, Total Fwd Packets, Label\r\n80,100,1,BENIGN\r\n",
    );
    let err = read_profiles(std::slice::from_ref(&p))
        .unwrap_err()
        .to_string();
    let options = latmove::profile::ProfileOptions::default();
    let parallel = latmove::profile::read::read_profiles_threads(&[p], &options, 3).unwrap_err();
    assert_eq!(
        parallel.to_string(),
        err,
        "the byte-range reader refuses alike"
    );
    assert!(
        err.contains("'Source IP'") && err.contains("'Destination IP'"),
        "{err}"
    );
    assert!(
        err.contains("MachineLearningCVE") && err.contains("TrafficLabelling"),
        "{err}"
    );
}

#[test]
fn pipelined_ingest_builds_the_same_profiles_as_one_thread() {
    use latmove::profile::ProfileOptions;
    use latmove::profile::read::read_profiles_threads;
    // The shipped sample (gzip, inflated on its own thread), the real rows
    // when present (plain CSV, several files, labels in many orders), with
    // and without windows; more flows than one batch.
    let mut inputs = vec![vec![sample()]];
    if let Some(r) = real_samples() {
        inputs.push(vec![r]);
    }
    for files in &inputs {
        for window_secs in [None, Some(900)] {
            let options = ProfileOptions {
                window_secs,
                ..Default::default()
            };
            let (one, s1) = read_profiles_threads(files, &options, 1).unwrap();
            let (two, s2) = read_profiles_threads(files, &options, 2).unwrap();
            assert!(s1.flows > 10_000, "{}", s1.flows);
            assert_eq!(one, two, "{files:?} {window_secs:?}");
            assert_eq!((s1.rows, s1.flows), (s2.rows, s2.flows));
            assert_eq!(format!("{:?}", s1.problems), format!("{:?}", s2.problems));
        }
    }
}

#[test]
fn a_truncated_gzip_file_is_an_error_naming_it() {
    let dir = tempdir();
    let full = std::fs::read(sample()).unwrap();
    let p = dir.path().join("cut.csv.gz");
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    for threads in [1, 2] {
        let err = latmove::profile::read::read_profiles_threads(
            std::slice::from_ref(&p),
            &latmove::profile::ProfileOptions::default(),
            threads,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("cut.csv.gz"), "{msg}");
    }
}

#[test]
fn byte_range_ingest_equals_the_sequential_reader_exactly() {
    use latmove::flows::parallel::read_plain_files_in;
    use latmove::flows::record::LabelTable;
    use latmove::profile::{ProfileBuilder, ProfileOptions};
    // A plain synthetic day (CRLF, empty trap rows), with bad rows planted
    // at known lines, cut into many small byte ranges.
    let dir = tempdir();
    let day = dir.path().join("day.csv");
    expect_code(
        &latmove(&[
            "synth",
            "--rows",
            "6000",
            "--seed",
            "9",
            "-o",
            day.to_str().unwrap(),
        ]),
        0,
    );
    let text = std::fs::read(&day).unwrap();
    let mut lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let bad_ip = b"x,not-an-ip,1,2,3\r\n".as_slice();
    let header = lines[0];
    lines.insert(1500, bad_ip);
    lines.insert(3000, header);
    lines.insert(5999, b"1,2\r\n".as_slice());
    // Blank lines (the csv crate skips them uncounted), a blank row, and
    // far apart a quoted field and a bare carriage return (their byte
    // ranges go through the csv crate, the others through the splitter).
    lines.insert(700, b"\r\n".as_slice());
    lines.insert(701, b"\n".as_slice());
    lines.insert(2200, b" , ,\r\n".as_slice());
    let quoted = b"q,\"10.0.0.9\",1,10.0.0.10,445,6,4/7/2017 9:00,5,1,1,0,0\r\n".as_slice();
    lines.insert(4000, quoted);
    lines.insert(
        5000,
        b"r,10.0.0.9,1,10.0.0.10,445\r6,4/7/2017 9:00\r\n".as_slice(),
    );
    // A real row relabelled with Thursday's non-UTF-8 label.
    let base = lines[10];
    let cut = base.iter().rposition(|b| *b == b',').unwrap();
    let relabelled = [&base[..=cut], b"Web Attack \x96 Brute Force\r\n".as_slice()].concat();
    lines.insert(3500, &relabelled);
    let planted = dir.path().join("planted.csv");
    std::fs::write(&planted, lines.concat()).unwrap();
    let files = vec![planted.clone(), day.clone()];
    for window_secs in [None, Some(900)] {
        let options = ProfileOptions {
            window_secs,
            ..Default::default()
        };
        let mut one = ProfileBuilder::with_options(options.clone());
        let s1 = latmove::flows::read_flows(&files, |f| one.add(f)).unwrap();
        let one = one.finish();
        assert!(
            one.labels
                .iter()
                .any(|l| l.starts_with("Web Attack \u{fffd}")),
            "{:?}",
            one.labels
        );
        assert!(
            s1.problems.iter().any(|p| p.line == 1501),
            "{:?}",
            s1.problems
        );
        for (threads, chunk) in [(2, 7_000u64), (3, 65_536), (2, 1 << 30)] {
            let mut b = ProfileBuilder::with_options(options.clone());
            let mut labels = LabelTable::default();
            let s2 = read_plain_files_in(&files, threads, chunk, &mut labels, |r| b.add_record(r))
                .unwrap();
            let two = b.finish_with_labels(labels);
            assert_eq!(one, two, "threads {threads}, chunk {chunk}");
            assert_eq!(
                format!("{:?}", s1),
                format!("{:?}", s2),
                "threads {threads}, chunk {chunk}"
            );
        }
    }
}
