//! Detection quality machinery: orientation, network awareness, behaviour
//! features, windows, training files, truth, allowlists, explanations.

use std::net::IpAddr;

use latmove::flows::Flow;
use latmove::net::Network;
use latmove::profile::features::{FULL_FEATURES, FeatureTable};
use latmove::profile::{ProfileBuilder, ProfileOptions};

use crate::util::*;

fn flow<'a>(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    t: f64,
    bwd: f64,
    label: &'a [u8],
) -> Flow<'a> {
    Flow {
        src_ip: src.parse().unwrap(),
        src_port: Some(sport),
        dst_ip: dst.parse().unwrap(),
        dst_port: dport,
        protocol: Some(6),
        timestamp: Some(t),
        duration_us: Some(10.0),
        fwd_packets: Some(1.0),
        bwd_packets: Some(bwd),
        fwd_bytes: Some(0.0),
        bwd_bytes: Some(0.0),
        rst_flags: Some(0.0),
        label: Some(label),
        flow_id: None,
        meta: latmove::flows::FlowMeta::default(),
    }
}

fn feature(name: &str) -> usize {
    FULL_FEATURES.iter().position(|f| f.name == name).unwrap()
}

#[test]
fn reply_direction_flows_count_for_the_client() {
    let replies = [
        flow(
            "192.168.10.3",
            53,
            "192.168.10.5",
            52311,
            0.0,
            1.0,
            b"BENIGN",
        ),
        flow(
            "192.168.10.3",
            53,
            "192.168.10.5",
            52312,
            1.0,
            1.0,
            b"BENIGN",
        ),
        flow(
            "192.168.10.5",
            52313,
            "192.168.10.3",
            53,
            2.0,
            1.0,
            b"BENIGN",
        ),
    ];
    let mut oriented = ProfileBuilder::with_options(ProfileOptions::default());
    let mut raw = ProfileBuilder::with_options(ProfileOptions {
        orient: false,
        ..Default::default()
    });
    for f in &replies {
        oriented.add(f);
        raw.add(f);
    }
    let o = oriented.finish();
    assert_eq!(
        o.hosts.len(),
        1,
        "the DC's replies belong to the workstation"
    );
    let ws = &o.hosts[0];
    assert_eq!(ws.ip.to_string(), "192.168.10.5");
    assert_eq!(ws.flows, 3);
    assert_eq!(ws.reoriented, 2);
    assert_eq!(ws.dst_ports(), vec![53]);
    let r = raw.finish();
    let dc = r
        .hosts
        .iter()
        .find(|h| h.ip.to_string() == "192.168.10.3")
        .unwrap();
    assert_eq!(
        dc.dst_ports().len(),
        2,
        "left alone, the DC looks like a port scanner"
    );
}

#[test]
fn behaviour_features_measure_a_scan() {
    let mut b = ProfileBuilder::with_options(ProfileOptions {
        network: Network {
            internal: latmove::net::parse_cidrs("192.168.10.0/24").unwrap(),
        },
        window_secs: None,
        ..Default::default()
    });
    // 3 internal hosts x 20 ports, unanswered, within 2 minutes; plus one
    // external flow with a reply.
    let mut t = 0.0;
    for h in [5, 9, 12] {
        for p in [
            22u16, 23, 80, 88, 135, 139, 389, 443, 445, 3389, 5900, 5985, 8080, 1, 2, 3, 4, 5, 6, 7,
        ] {
            b.add(&flow(
                "192.168.10.8",
                50000,
                &format!("192.168.10.{h}"),
                p,
                t,
                0.0,
                b"PortScan",
            ));
            t += 2.0;
        }
    }
    let mut dns = flow("192.168.10.8", 50001, "8.8.8.8", 53, t, 1.0, b"BENIGN");
    dns.fwd_bytes = Some(40.0);
    b.add(&dns);
    let p = b.finish();
    let host = &p.hosts[0];
    let table = FeatureTable::build(&[host], FULL_FEATURES);
    let v = |n: &str| table.values[[0, feature(n)]];
    assert_eq!(v("unique_dst_ips"), 4.0);
    assert_eq!(v("internal_dst_ips"), 3.0);
    assert_eq!(v("external_dst_ips"), 1.0);
    assert_eq!(v("internal_subnets"), 1.0);
    assert_eq!(v("unique_dst_ports"), 21.0);
    assert_eq!(v("max_ports_one_host"), 20.0);
    assert_eq!(v("max_hosts_one_port"), 3.0);
    assert_eq!(
        v("sensitive_ports"),
        10.0,
        "22 23 88 135 139 389 445 3389 5900 5985"
    );
    assert_eq!(v("privileged_ports"), 17.0, "16 scanned below 1024, and 53");
    assert!((v("unanswered_share") - 60.0 / 61.0).abs() < 1e-12);
    assert!(
        (v("tiny_flow_share") - 60.0 / 61.0).abs() < 1e-12,
        "{}",
        v("tiny_flow_share")
    );
    assert_eq!(v("peak_5min_dst_pairs"), 61.0);
    assert_eq!(v("peak_5min_flows_one_service"), 1.0);
    assert!(v("dst_port_entropy") > 4.0);
    assert_eq!(host.is_attack(), Some(true));
}

#[test]
fn means_over_few_flows_are_pulled_toward_the_median() {
    let mut b = ProfileBuilder::with_options(ProfileOptions {
        window_secs: None,
        ..Default::default()
    });
    // .1: one flow of 1 MB; .2: 300 flows of 1 MB each.
    let big = |src: &str, t: f64| Flow {
        bwd_bytes: Some(1e6),
        ..flow(src, 50000, "10.0.0.9", 443, t, 5.0, b"BENIGN")
    };
    b.add(&big("192.168.10.1", 0.0));
    for i in 0..300 {
        b.add(&big("192.168.10.2", f64::from(i)));
    }
    let p = b.finish();
    let refs: Vec<_> = p.hosts.iter().collect();
    let t = FeatureTable::build(&refs, FULL_FEATURES);
    let median = 1000.0;
    let medians = vec![median; FULL_FEATURES.len()];
    assert_eq!(t.shrunk_means(&medians, 0.0), t.values);
    let s = t.shrunk_means(&medians, 100.0);
    let (bytes, pkts, dur) = (
        feature("bytes_per_flow"),
        feature("packets_per_flow"),
        feature("mean_duration_us"),
    );
    assert_eq!(t.values[[0, bytes]], 1e6);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    // One flow: 1/101 of its distance from the median is left.
    assert!(close(s[[0, bytes]], median + (1e6 - median) / 101.0));
    // 300 flows: 300/400 of it.
    assert!(close(s[[1, bytes]], median + (1e6 - median) * 0.75));
    assert!(close(
        s[[0, pkts]],
        median + (t.values[[0, pkts]] - median) / 101.0
    ));
    assert!(close(
        s[[1, dur]],
        median + (t.values[[1, dur]] - median) * 0.75
    ));
    // Counts, shares and everything else are not means per flow: untouched.
    for (j, d) in FULL_FEATURES.iter().enumerate() {
        if ![bytes, pkts, dur].contains(&j) {
            assert_eq!(s.column(j), t.values.column(j), "{}", d.name);
        }
    }
}

#[test]
fn windows_split_a_host_by_time() {
    let mut b = ProfileBuilder::with_options(ProfileOptions {
        window_secs: Some(900),
        ..Default::default()
    });
    b.add(&flow(
        "10.0.0.1", 50000, "10.0.0.2", 443, 100.0, 1.0, b"BENIGN",
    ));
    b.add(&flow(
        "10.0.0.1", 50000, "10.0.0.3", 443, 950.0, 1.0, b"BENIGN",
    ));
    b.add(&flow(
        "10.0.0.1", 50000, "10.0.0.4", 443, 1000.0, 1.0, b"BENIGN",
    ));
    let p = b.finish();
    assert_eq!(p.hosts[0].flows, 3);
    assert_eq!(p.windows.len(), 2);
    assert_eq!((p.windows[0].index, p.windows[0].profile.flows), (0, 1));
    assert_eq!((p.windows[1].index, p.windows[1].profile.flows), (1, 2));
}

#[test]
fn admin_peers_accumulate_over_a_hosts_windows_in_time_order() {
    // A workstation that reaches one more internal host over SMB/RDP/WinRM
    // every window; an HTTPS destination and an external SSH server do not
    // count. Fed newest first: the running count follows time, not input.
    let flows = [
        ("10.0.0.9", 445, 2000.0),
        ("10.0.0.8", 3389, 1000.0),
        ("10.0.0.8", 5985, 1001.0),
        ("10.0.0.7", 445, 100.0),
        ("10.0.0.6", 443, 200.0),
        ("8.8.8.8", 22, 300.0),
        ("10.0.0.7", 445, 2100.0),
    ];
    let build = |window_secs| {
        let mut b = ProfileBuilder::with_options(ProfileOptions {
            window_secs,
            ..Default::default()
        });
        for (dst, port, t) in flows.iter().rev() {
            b.add(&flow("10.0.0.1", 50000, dst, *port, *t, 1.0, b"BENIGN"));
        }
        b.finish()
    };
    let p = build(Some(900));
    let so_far: Vec<usize> = p
        .windows
        .iter()
        .map(|w| w.profile.admin_peers_so_far())
        .collect();
    assert_eq!(so_far, vec![1, 2, 3]);
    // With windows the behaviour lives in them; the host keeps who it is.
    assert_eq!((p.hosts[0].flows, p.hosts[0].pairs.len()), (7, 0));
    assert_eq!(p.hosts[0].first_seen, Some(100.0));
    // Without windows the whole host has the same three.
    assert_eq!(build(None).hosts[0].admin_peers_so_far(), 3);
    let refs: Vec<_> = p.windows.iter().map(|w| &w.profile).collect();
    let t = FeatureTable::build(&refs, FULL_FEATURES);
    assert_eq!(t.values[[2, feature("admin_peers_to_date")]], 3.0);
}

#[test]
fn sources_internal_keeps_internal_sources_only() {
    let dir = tempdir();
    let out = dir.path().join("o");
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--sources",
        "internal",
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    let internal = header.iter().position(|h| h == "internal").unwrap();
    assert!(!rows.is_empty() && rows.iter().all(|r| r[internal] == "true"));
    let ip = header.iter().position(|h| h == "ip").unwrap();
    assert!(rows.iter().all(|r| {
        r[ip]
            .parse::<IpAddr>()
            .unwrap()
            .to_string()
            .starts_with("192.168.")
            || r[ip].starts_with("172.16.")
    }));
}

/// A hard synthetic day and its benign baseline.
fn hard_day() -> (String, String) {
    (
        synth_day(
            "csv.gz",
            &["--scenario", "hard", "--rows", "40000", "--seed", "3"],
        ),
        synth_day(
            "csv.gz",
            &[
                "--scenario",
                "hard",
                "--benign-only",
                "--rows",
                "40000",
                "--seed",
                "4",
            ],
        ),
    )
}

#[test]
fn hard_day_with_baseline_and_allowlist() {
    let dir = tempdir();
    let (day, base) = hard_day();
    let allow = write(
        dir.path(),
        "allow.txt",
        b"# the organisation's vulnerability scanner\n192.168.10.80\n192.168.10.70 161\n",
    );
    let out = dir.path().join("o");
    let o = latmove(&[
        "detect",
        &day,
        "--train",
        &base,
        "--allow",
        allow.to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("benign hosts of the --train files"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Allowlisted (--allow): 1 host(s)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(" 0 flow(s) to allowlisted ports"),
        "the poller's SNMP flows are dropped: {stdout}"
    );
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let find = |ip: &str| {
        rows.iter()
            .find(|r| r[col("ip")] == ip)
            .unwrap_or_else(|| panic!("{ip}"))
    };
    for attacker in [
        "192.168.10.8",
        "192.168.10.17",
        "192.168.10.14",
        "192.168.10.25",
        "172.16.0.1",
    ] {
        assert_eq!(find(attacker)[col("flagged")], "true", "{attacker} flagged");
    }
    // The lateral mover is flagged for its lateral movement (13:00-15:45),
    // not for an ordinary window of its working day: it first crosses the
    // threshold during the movement, and its peak window (which carries
    // the spread's admin peers, as every later window does) is not earlier.
    let lm = find("192.168.10.25");
    let first = &lm[col("first_flagged_window")];
    assert!(
        ("2017-07-04 13:00".."2017-07-04 15:46").contains(&first.as_str()),
        "{first}"
    );
    assert!(lm[col("peak_window_start")].as_str() >= "2017-07-04 13:00");
    assert!(lm[col("admin_peers_to_date")].parse::<f64>().unwrap() >= 10.0);
    let vs = find("192.168.10.80");
    assert_eq!(
        (vs[col("allowed")].as_str(), vs[col("flagged")].as_str()),
        ("true", "false")
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    let fams: Vec<String> = m["metrics"]["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["family"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "PortScan",
        "PortScan-Slow",
        "Sweep",
        "LateralMovement",
        "FTP-Patator",
    ] {
        assert!(fams.iter().any(|x| x == f), "family {f} in {fams:?}");
    }
    assert!(m["metrics"]["recall_at_5pct_fpr"].as_f64().unwrap() >= 0.8);
    assert!(m["metrics"]["roc_auc"].as_f64().unwrap() >= 0.98);
    // The scan's window is the scanner's peak, and the sentence says why.
    let (fh, frows) = read_csv(&out.join("flagged_hosts.csv"));
    let what = fh.iter().position(|h| h == "what").unwrap();
    let scan = frows.iter().find(|r| r[1] == "192.168.10.8").unwrap();
    assert!(scan[what].contains("no reply"), "{}", scan[what]);
    let lateral = frows.iter().find(|r| r[1] == "192.168.10.25").unwrap();
    assert!(
        lateral[what].contains("internal hosts reached on SMB/RDP/WinRM/SSH ports"),
        "{}",
        lateral[what]
    );
    assert!(find("192.168.10.8")[col("peak_window_start")].starts_with("2017-07-04 15:"));
}

#[test]
fn truth_file_overrides_flow_labels() {
    let dir = tempdir();
    let truth = write(
        dir.path(),
        "truth.csv",
        b"ip,start,end,label\n192.168.10.19,4/7/2017 9:00,4/7/2017 4:00,Insider\n172.16.0.1,BENIGN\n",
    );
    let out = dir.path().join("o");
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let find = |ip: &str| rows.iter().find(|r| r[col("ip")] == ip).unwrap();
    assert_eq!(find("192.168.10.19")[col("label")], "attack");
    assert_eq!(find("192.168.10.19")[col("attack_labels")], "Insider");
    assert_eq!(find("172.16.0.1")[col("label")], "benign");
    let bad = write(dir.path(), "bad.csv", b"192.168.10.300,x\n");
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--truth",
        bad.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1, column 1"));
}

#[test]
fn bad_window_and_feature_options_are_refused() {
    for (flag, value, needle) in [
        ("--window", "5 parsecs", "--window"),
        ("--features", "fancy", "--features"),
        ("--internal", "10.0.0.0/40", "--internal"),
        ("--sources", "some", "--sources"),
        ("--feature-choice", "random", "--feature-choice"),
        ("--prior-flows", "lots", "--prior-flows"),
        ("--prior-flows", "nan", "--prior-flows"),
    ] {
        let o = latmove(&["detect", sample().to_str().unwrap(), flag, value]);
        expect_code(&o, 2);
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(needle),
            "{flag}"
        );
    }
}

/// Peer groups: the groups come from the traffic (the sample's web server
/// and DC answer more than they start: servers), each group big enough
/// for the budget gets its own forest, and a window usual among its peers
/// is not flagged; fewer benign hosts are flagged than against all hosts
/// alone, every attacker still is; `--roles` moves a host to a group; the
/// outputs, the summary and the alerts name the group.
#[test]
fn peer_groups_veto_what_a_role_explains() {
    let dir = tempdir();
    let s = sample();
    let s = s.to_str().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let alerts = dir.path().join(format!("{name}.ndjson"));
        let mut args = vec![
            "detect",
            s,
            "--contamination",
            "0.1",
            "--no-charts",
            "--out",
            out.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = latmove(&args);
        expect_code(&o, 0);
        let (header, rows) = read_csv(&out.join("host_scores.csv"));
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let (ip, flagged, label, group, score) = (
            col("ip"),
            col("flagged"),
            col("label"),
            col("peer_group"),
            col("peer_score"),
        );
        let flagged_of = |l: &str| {
            rows.iter()
                .filter(|r| r[flagged] == "true" && r[label] == l)
                .count()
        };
        let group_of = |a: &str| {
            let r = rows.iter().find(|r| r[ip] == a).unwrap();
            (r[group].clone(), r[score].clone())
        };
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            flagged_of("attack"),
            flagged_of("benign"),
            (
                group_of("192.168.10.3"),
                group_of("192.168.10.9"),
                group_of("192.168.10.51"),
                // The least anomalous host, far below the threshold.
                group_of(&rows.last().unwrap()[ip]),
            ),
            std::fs::read_to_string(alerts).unwrap(),
        )
    };
    let (said, attacks, benign, (dc, ws, ubuntu, least), alerts) = run("groups", &[]);
    let (_, attacks_all, benign_all, (dc_all, _, _, _), alerts_all) =
        run("all", &["--no-peer-groups"]);
    assert_eq!((attacks, attacks_all), (2, 2));
    assert!(benign < benign_all, "{benign} vs {benign_all}");
    assert!(
        said.contains("workstation       12 hosts: 10 training hosts"),
        "{said}"
    );
    assert!(
        said.contains("server             2 hosts: judged against all hosts only"),
        "{said}"
    );
    // The DC answers more than it starts; its group is too small to train.
    assert_eq!(dc, ("server".to_string(), String::new()));
    assert_eq!(ws.0, "workstation");
    assert!(ws.1.parse::<f64>().is_ok(), "{ws:?}");
    assert_eq!(ubuntu.0, "workstation");
    // A group's score is kept only above the whole population's threshold,
    // where the group can change the verdict.
    assert_eq!(least, ("external".to_string(), String::new()));
    // Without peer groups the columns are there, the group's score empty.
    assert_eq!(dc_all.1, "");
    assert!(alerts.contains("\"peer_group\":{\"judged\":\"against its peer group and all hosts\""));
    assert!(!alerts_all.contains("peer_group"));
    // --roles: the Ubuntu box named a server leaves the workstations too
    // few to train on (11 hosts, 9 of them training).
    let roles = write(
        dir.path(),
        "roles.txt",
        b"# site roles\n192.168.10.51, server\n",
    );
    let (said, _, _, (_, ws, ubuntu, _), _) = run("roles", &["--roles", roles.to_str().unwrap()]);
    assert_eq!(ubuntu.0, "server");
    assert_eq!(ws.1, "");
    assert!(said.contains("server             3 hosts"), "{said}");
    // A bad roles line is refused naming the file, the line and the value.
    let bad = write(
        dir.path(),
        "bad.txt",
        b"10.0.0.0/8 workstation\n10.1.0.0/16 =cmd|x\n",
    );
    let err = detect_refused(
        &sample(),
        &dir.path().join("bad"),
        &["--roles", bad.to_str().unwrap()],
    );
    assert!(
        err.contains("bad.txt") && err.contains("line 2") && err.contains("=cmd|x"),
        "{err}"
    );
}

/// `--peer-balance 3`: the workstations' windows repeated up to three
/// times among 1,500 internet hosts' rank the full synthetic day's
/// brute-forcer right after the scanner (without it, busy workstations
/// outrank it); the summary and the model say so.
#[test]
fn peer_balance_ranks_the_attackers_first_on_the_full_day() {
    let dir = tempdir();
    let day = synth_day("csv.gz", &[]);
    let out = dir.path().join("o");
    let model = dir.path().join("m.json");
    let o = latmove(&[
        "detect",
        &day,
        "--peer-balance",
        "3",
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let trained = latmove(&[
        "train",
        &day,
        "--peer-balance",
        "3",
        "-o",
        model.to_str().unwrap(),
    ]);
    expect_code(&trained, 0);
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    let label = header.iter().position(|h| h == "label").unwrap();
    let top: Vec<&str> = rows.iter().take(2).map(|r| r[label].as_str()).collect();
    assert_eq!(top, ["attack", "attack"]);
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("training windows of smaller peer groups repeated up to 3 times"),
        "{said}"
    );
    let m = std::fs::read_to_string(&model).unwrap();
    assert!(m.contains("\"peer_balance\":3"), "{}", &m[m.len() - 400..]);
}

/// A network with enough workstations for a group of their own (110 at
/// the 1% budget): the busy workstations that the whole population finds
/// rare are ordinary among their peers, so far fewer benign hosts are
/// flagged, and both attackers still are.
#[test]
fn peer_groups_quiet_a_network_of_workstations() {
    let day = synth_day("csv", &["--workstations", "110", "--rows", "500000"]);
    let dir = tempdir();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "detect",
            &day,
            "--no-charts",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = latmove(&args);
        expect_code(&o, 0);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        (
            m["metrics"]["tp"].as_u64().unwrap(),
            m["metrics"]["fp"].as_u64().unwrap(),
            said,
        )
    };
    let (tp, fp, said) = run("groups", &[]);
    let (tp_all, fp_all, _) = run("all", &["--no-peer-groups"]);
    assert_eq!((tp, tp_all), (2, 2));
    assert!(
        said.contains("workstation      112 hosts: 110 training hosts"),
        "{said}"
    );
    assert!(
        fp <= 5 && fp * 3 < fp_all,
        "{fp} with peer groups, {fp_all} without"
    );
}
