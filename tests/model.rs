//! Saved models: train once, score many times.

use latmove::model::file::Model;

use crate::util::*;

#[test]
fn a_saved_model_scores_exactly_as_detect_with_train() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let day = synth_day(
        "csv",
        &["--scenario", "hard", "--rows", "30000", "--seed", "5"],
    );
    let base = synth_day(
        "csv",
        &[
            "--scenario",
            "hard",
            "--benign-only",
            "--rows",
            "30000",
            "--seed",
            "6",
        ],
    );
    expect_code(
        &latmove(&[
            "train",
            &base,
            "--prior-flows",
            "40",
            "-o",
            &d("model.json"),
        ]),
        0,
    );
    let direct = latmove(&[
        "detect",
        &day,
        "--train",
        &base,
        "--prior-flows",
        "40",
        "--no-charts",
        "--out",
        &d("a"),
    ]);
    expect_code(&direct, 0);
    let scored = latmove(&[
        "score",
        "--model",
        &d("model.json"),
        &day,
        "--no-charts",
        "--out",
        &d("b"),
    ]);
    expect_code(&scored, 0);
    let read = |p: &str| std::fs::read_to_string(format!("{p}/host_scores.csv")).unwrap();
    assert!(
        read(&d("a")) == read(&d("b")),
        "score with the saved model differs from detect --train"
    );
    assert!(String::from_utf8_lossy(&scored.stdout).contains("Scored with model"));
    // score writes alerts and the forensic report like detect does.
    let with_extras = latmove(&[
        "score",
        "--model",
        &d("model.json"),
        &day,
        "--no-charts",
        "--out",
        &d("c"),
        "--alerts",
        &d("alerts.ndjson"),
        "--report",
        &d("report"),
    ]);
    expect_code(&with_extras, 0);
    let alerts = std::fs::read_to_string(d("alerts.ndjson")).unwrap();
    assert!(
        alerts.lines().any(|l| l.contains("\"192.168.10.8\"")),
        "{alerts}"
    );
    assert!(
        std::path::Path::new(&d("report"))
            .join("index.md")
            .is_file()
    );

    // Save, load, save again: the same model, byte for byte.
    let m = Model::load(std::path::Path::new(&d("model.json"))).unwrap();
    assert_eq!(
        m.to_json().unwrap(),
        std::fs::read(d("model.json")).unwrap()
    );
    assert_eq!(m.training.inputs.len(), 1);
    assert_eq!(m.training.inputs[0].sha256.len(), 64);
    assert_eq!(m.features.len(), 20);
    // The model carries its --prior-flows (score above used 40, not the
    // default 100, or its scores would differ from detect's).
    assert_eq!(m.mean_prior, 40.0);
}

#[test]
fn incompatible_models_are_refused() {
    let dir = tempdir();
    let model = dir.path().join("model.json");
    expect_code(
        &latmove(&[
            "train",
            sample().to_str().unwrap(),
            "--features",
            "seed",
            "-o",
            model.to_str().unwrap(),
        ]),
        0,
    );
    let text = std::fs::read_to_string(&model).unwrap();
    // Scores the sample with a doctored model; returns stderr, expecting exit 2.
    let refused = |name: &str, json: &str| -> String {
        let m = write(dir.path(), name, json.as_bytes());
        let o = latmove(&[
            "score",
            "--model",
            m.to_str().unwrap(),
            sample().to_str().unwrap(),
        ]);
        expect_code(&o, 2);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    // The sample's 291 external hosts are a peer group: version 2.
    assert!(text.contains("\"model_version\":2"), "{}", &text[..80]);
    assert!(text.contains("\"peer_groups\":[{\"name\":\"external\""));
    let err = refused(
        "old.json",
        &text.replacen("\"model_version\":2", "\"model_version\":0", 1),
    );
    assert!(err.contains("model version 0"), "{err}");
    // Version 1 has no peer groups: one that claims them is refused.
    let err = refused(
        "v1.json",
        &text.replacen("\"model_version\":2", "\"model_version\":1", 1),
    );
    assert!(
        err.contains("version 1 model cannot hold peer groups"),
        "{err}"
    );
    // A group whose threshold is not a score, or whose name is not a role.
    let err = refused(
        "group.json",
        &text.replacen("\"name\":\"external\"", "\"name\":\"<b>x</b>\"", 1),
    );
    assert!(err.contains("is not a role name"), "{err}");
    let err = refused(
        "alien.json",
        &text.replacen("\"flow_count\"", "\"telepathy\"", 1),
    );
    assert!(err.contains("'telepathy'"), "{err}");
    let err = refused("junk.json", "{\"hello\": 1}");
    assert!(err.contains("not a latmove model"), "{err}");
}

#[test]
fn watch_raises_the_scanners_alert_within_one_window_of_the_scan() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    expect_code(&latmove(&["train", &base, "-o", &d("model.json")]), 0);
    // The recorded day through a pipe, with a malformed line at the end.
    let mut stream = std::fs::read(&day).unwrap();
    stream.extend_from_slice(b"garbage,line\r\n");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
        .args(["watch", "--model", &d("model.json"), "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&stream).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    expect_code(&out, 0);
    let alerts: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scan: Vec<&serde_json::Value> = alerts
        .iter()
        .filter(|a| a["source"]["ip"] == "192.168.10.8" && a["latmove"]["label"][0] == "PortScan")
        .collect();
    assert!(!scan.is_empty(), "no alert for the scanner: {alerts:?}");
    // The scan starts at 15:04; its alert covers the window that holds it.
    assert_eq!(scan[0]["event"]["start"], "2017-07-04T15:00:00");
    // None for the quiet internet hosts: every alert is for an inside
    // host (the workstations, the scanner, the brute-forcer 172.16.0.1).
    assert!(
        alerts.iter().all(|a| {
            let ip: std::net::Ipv4Addr = a["source"]["ip"].as_str().unwrap().parse().unwrap();
            ip.is_private()
        }),
        "{alerts:?}"
    );
    assert!(
        alerts.iter().any(|a| a["source"]["ip"] == "172.16.0.1"),
        "no alert for the brute-forcer: {alerts:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("windows closed") && stderr.contains("row has 2 fields"),
        "{stderr}"
    );
}

/// `watch` raises one incident per host: the first window above the
/// threshold opens it, later ones alert only when it escalates (a new
/// behaviour family or a score 0.05 higher, named in the record), every
/// record of it carries its id, and a quiet period closes it.
#[test]
fn watch_raises_one_incident_per_host_and_closes_it_when_quiet() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    expect_code(&latmove(&["train", &base, "-o", &d("model.json")]), 0);
    let run = |suppress: &str| -> Vec<serde_json::Value> {
        let out = latmove(&[
            "watch",
            "--model",
            &d("model.json"),
            "--suppress",
            suppress,
            &day,
        ]);
        expect_code(&out, 0);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let records = run("30m");
    let mut open: std::collections::HashMap<String, (String, f64, Vec<String>)> =
        std::collections::HashMap::new();
    let (mut opened, mut escalated, mut closed) = (0, 0, 0);
    for r in &records {
        let ip = r["source"]["ip"].as_str().unwrap().to_string();
        let inc = &r["latmove"]["incident"];
        let id = inc["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("latmove-"), "{r}");
        let families: Vec<String> = inc["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        match r["event"]["action"].as_str().unwrap() {
            "incident-opened" => {
                assert_eq!(r["event"]["kind"], "alert");
                assert!(!open.contains_key(&ip), "a second open incident for {ip}");
                assert_eq!(r["latmove"]["first_flagged_window"], r["event"]["start"]);
                let score = r["latmove"]["score"].as_f64().unwrap();
                open.insert(ip, (id, score, families));
                opened += 1;
            }
            "incident-escalated" => {
                assert_eq!(r["event"]["kind"], "alert");
                let (was_id, best, was_families) =
                    open.get_mut(&ip).expect("escalated before opened");
                assert_eq!(*was_id, id);
                let score = r["latmove"]["score"].as_f64().unwrap();
                assert!(
                    score >= *best + 0.05 || families.iter().any(|f| !was_families.contains(f)),
                    "an escalation without a reason: {r}"
                );
                *best = best.max(score);
                *was_families = families;
                escalated += 1;
            }
            "incident-closed" => {
                assert_eq!(r["event"]["kind"], "state");
                let (was_id, _, _) = open.remove(&ip).expect("closed before opened");
                assert_eq!(was_id, id);
                closed += 1;
            }
            other => panic!("unexpected action {other}: {r}"),
        }
    }
    assert!(
        opened > 0 && closed > 0,
        "{opened} opened, {escalated} escalated, {closed} closed"
    );
    // The same stream gives the same ids.
    assert_eq!(run("30m"), records);
}

/// The history tests' day (seed 11: the brute force and the scan, 30,000
/// rows) and `train` on a benign day (seed 12) into `dir`/m.json, with its
/// history in `dir`/`hist`; the day's path and train's output.
fn trained_with_history(dir: &std::path::Path, hist: &str) -> (String, std::process::Output) {
    let d = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    let out = latmove(&["train", &base, "-o", &d("m.json"), "--history", &d(hist)]);
    expect_code(&out, 0);
    (day, out)
}

/// `score --model MODEL INPUT --history HIST --no-charts --out OUT`, and
/// `extra`.
fn score_with_history(
    (model, input): (&str, &str),
    hist: &str,
    out: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "score",
        "--model",
        model,
        input,
        "--history",
        hist,
        "--no-charts",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    latmove(&args)
}

/// `--history`: train learns the baseline day's windows per host; `watch`
/// then judges each host against its own past as well, so the busy
/// workstations whose ordinary windows are rare among all hosts stay quiet
/// while the scanner (new ports, new admin peers) and the brute-forcer are
/// alerted, with the reason. The state survives a restart (a flagged
/// attack is not learnt, so the scan alerts again) and stays within
/// --history-max-hosts.
#[test]
fn history_judges_hosts_against_their_own_past_across_restarts() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (day, out) = trained_with_history(dir.path(), "h");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("windows learnt; 400 hosts"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = d("m.json");
    let watch = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["watch", "--model", model.as_str()];
        args.extend_from_slice(extra);
        args.push(&day);
        let out = latmove(&args);
        expect_code(&out, 0);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["event"]["kind"] == "alert")
            .collect()
    };
    let hosts = |alerts: &[serde_json::Value]| -> std::collections::BTreeSet<String> {
        alerts
            .iter()
            .map(|a| a["source"]["ip"].as_str().unwrap().to_string())
            .collect()
    };
    let attackers: std::collections::BTreeSet<String> = ["172.16.0.1", "192.168.10.8"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let without = watch(&[]);
    assert!(
        hosts(&without).len() > attackers.len(),
        "{:?}",
        hosts(&without)
    );
    std::fs::copy(d("h/history.json"), d("baseline.json")).unwrap();
    let with = watch(&["--history", &d("h")]);
    assert_eq!(hosts(&with), attackers);
    let scan = with
        .iter()
        .find(|a| a["source"]["ip"] == "192.168.10.8")
        .unwrap();
    assert_eq!(scan["event"]["start"], "2017-07-04T15:00:00");
    let why = scan["latmove"]["baseline"].as_str().unwrap();
    assert!(why.starts_with("beyond its own past: reached"), "{why}");
    // Named by the services the new peers were reached on (at most three).
    let on = why
        .split(" internal hosts on ")
        .nth(1)
        .and_then(|rest| rest.split(" it had never contacted ").next())
        .unwrap_or_else(|| panic!("{why}"));
    let names: Vec<&str> = on.split(", ").collect();
    assert!((1..=3).contains(&names.len()), "{why}");
    for n in names {
        let known = [
            "SMB", "RDP", "SSH", "WinRM", "RPC", "LDAP", "Kerberos", "VNC", "Telnet",
        ];
        assert!(known.contains(&n), "{why}");
    }
    // Restarted on the state it left: the scan was not learnt.
    let again = watch(&["--history", &d("h")]);
    assert!(again.iter().any(
        |a| a["source"]["ip"] == "192.168.10.8" && a["event"]["start"] == "2017-07-04T15:00:00"
    ));
    // Bounded.
    std::fs::create_dir(d("small")).unwrap();
    std::fs::copy(d("baseline.json"), d("small/history.json")).unwrap();
    watch(&["--history", &d("small"), "--history-max-hosts", "50"]);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d("small/history.json")).unwrap()).unwrap();
    assert_eq!(state["hosts"].as_object().unwrap().len(), 50);
    // detect judges the same way: the two attackers, no benign host.
    detect_with_history(dir.path(), &day, &d("baseline.json"));
}

/// `detect --history` (a copy of `baseline`) on `day`: the two attackers
/// flagged, no benign host; host_scores.csv says how each host above the
/// threshold compares with its past.
fn detect_with_history(dir: &std::path::Path, day: &str, baseline: &str) {
    let d = |n: &str| dir.join(n).to_str().unwrap().to_string();
    std::fs::create_dir(d("h3")).unwrap();
    std::fs::copy(baseline, d("h3/history.json")).unwrap();
    let out = latmove(&[
        "detect",
        day,
        "--history",
        &d("h3"),
        "--no-charts",
        "--out",
        &d("o"),
    ]);
    expect_code(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TP 2  FP 0  FN 0"), "{text}");
    assert!(text.contains("beyond their own past (flagged)"), "{text}");
    // host_scores.csv says how each host above the threshold compares with
    // its past: the attackers beyond it, the hosts it kept quiet within it.
    let (header, rows) = read_csv(&dir.join("o/host_scores.csv"));
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let past_of =
        |ip: &str| rows.iter().find(|r| r[col("ip")] == ip).unwrap()[col("own_past")].clone();
    let scan = past_of("192.168.10.8");
    assert!(scan.starts_with("beyond its own past: "), "{scan}");
    // The window judged beyond, which may not be the peak shown.
    assert!(
        scan.ends_with(" (the window from 2017-07-04 15:00:00)"),
        "{scan}"
    );
    let within = rows
        .iter()
        .filter(|r| r[col("own_past")] == "within its own past: not flagged")
        .inspect(|r| assert_eq!(r[col("flagged")], "false"))
        .count();
    assert!(within > 0, "no host kept quiet by its past");
}

/// Two weeks of one network (`synth --days 14`): a model and a history
/// from day 1, then `watch --history` day by day. The attacks on day 10
/// are alerted in the windows they start in; the new employee (day 5) and
/// the backup server's new address (day 8) open one incident each; patch
/// Tuesday and the other benign host-days raise nothing.
#[test]
fn two_weeks_alert_the_attacks_and_the_new_hosts_once() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let out = latmove(&[
        "synth",
        "--days",
        "14",
        "--rows",
        "30000",
        "--seed",
        "5",
        "-o",
        &d("w"),
    ]);
    expect_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("day-10.csv.gz (30042 rows, 2430 of them attacks)")
    );
    let out = latmove(&[
        "train",
        &d("w/day-01.csv.gz"),
        "-o",
        &d("m.json"),
        "--out",
        &d("t"),
        "--history",
        &d("h"),
    ]);
    expect_code(&out, 0);
    let mut alerts: Vec<(String, String, String)> = Vec::new();
    for day in 2..=14 {
        let input = d(&format!("w/day-{day:02}.csv.gz"));
        let out = latmove(&[
            "watch",
            "--model",
            &d("m.json"),
            "--history",
            &d("h"),
            &input,
        ]);
        expect_code(&out, 0);
        for l in String::from_utf8(out.stdout).unwrap().lines() {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            if r["event"]["kind"] == "alert" {
                alerts.push((
                    r["source"]["ip"].as_str().unwrap().to_string(),
                    r["event"]["start"].as_str().unwrap().to_string(),
                    r["event"]["action"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    let opened = |ip: &str| -> Vec<&str> {
        alerts
            .iter()
            .filter(|a| a.0 == ip && a.2 == "incident-opened")
            .map(|a| a.1.as_str())
            .collect()
    };
    assert_eq!(
        opened("172.16.0.1"),
        vec!["2017-07-13T09:15:00", "2017-07-13T14:00:00"],
        "{alerts:?}"
    );
    assert_eq!(
        opened("192.168.10.8"),
        vec!["2017-07-13T15:00:00"],
        "{alerts:?}"
    );
    // The new employee: once, on the morning of its first day (day 5).
    let new_employee = opened("192.168.10.61");
    assert!(
        new_employee.len() == 1 && new_employee[0].starts_with("2017-07-11T08:"),
        "{alerts:?}"
    );
    assert!(opened("192.168.10.30").len() <= 1, "{alerts:?}");
    let others: Vec<_> = alerts
        .iter()
        .filter(|a| {
            ![
                "172.16.0.1",
                "192.168.10.8",
                "192.168.10.61",
                "192.168.10.30",
            ]
            .contains(&a.0.as_str())
        })
        .collect();
    assert!(others.is_empty(), "{others:?}");
    assert!(alerts.len() <= 6, "{alerts:?}");
}

/// `watch` reports the feed's alerted host-days beside the model's budget,
/// and a history directory without a state says it starts one.
#[test]
fn watch_reports_alerted_host_days_beside_the_budget() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    expect_code(&latmove(&["train", &base, "-o", &d("m.json")]), 0);
    let out = latmove(&[
        "watch",
        "--model",
        &d("m.json"),
        "--history",
        &d("new"),
        &day,
    ]);
    expect_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no history yet; every host starts without a past"),
        "{err}"
    );
    let alerted: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"]["kind"] == "alert")
        .map(|r| r["source"]["ip"].as_str().unwrap().to_string())
        .collect();
    // One day: the alerted host-days are the alerted hosts.
    let line = format!("host-days alerted: {} of ", alerted.len());
    assert!(err.contains(&line), "{err}");
    assert!(
        err.contains("the model's threshold leaves 1.00% of its training hosts above it"),
        "{err}"
    );
}

/// A damaged history file (cut, or a host with too few feature lists) is
/// refused with exit 2 and a message, before any window is scored.
/// One flow dated 80 years ahead (a clock error) in a run with `--history`
/// is not learnt, so the other hosts' past does not age out of the
/// retention period; the summary says so, as it says what it forgets.
#[test]
fn a_clock_error_does_not_erase_the_history() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (day, _) = trained_with_history(dir.path(), "h");
    let text = std::fs::read_to_string(&day).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let benign = lines
        .iter()
        .find(|l| l.contains(",192.168.10.19,") && l.ends_with(",BENIGN"))
        .unwrap();
    let odd = benign.replace("/2017 ", "/2099 ");
    assert_ne!(&odd, benign);
    lines.push(odd);
    std::fs::write(d("day.csv"), lines.join("\n") + "\n").unwrap();
    let out = score_with_history((&d("m.json"), &d("day.csv")), &d("h"), &d("o"), &[]);
    expect_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 windows not learnt: they start over a day after"),
        "{err}"
    );
    assert!(!err.contains("hosts forgotten"), "{err}");
    // A run two months later forgets, and says how many.
    let later: Vec<String> = lines[..lines.len() - 1]
        .iter()
        .map(|l| l.replace("/7/2017 ", "/9/2017 "))
        .collect();
    std::fs::write(d("later.csv"), later.join("\n") + "\n").unwrap();
    let out = score_with_history((&d("m.json"), &d("later.csv")), &d("h"), &d("o2"), &[]);
    expect_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hosts forgotten: ") && err.contains(" last seen over 30 days before"),
        "{err}"
    );
}

/// A run that will write a history locks it; another that would write it
/// meanwhile is refused (exit 2, naming the lock), one that only reads it
/// (`--history-read-only`) goes ahead, and once the lock is let go the
/// writer does too.
#[test]
fn two_runs_never_write_one_history_at_once() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (day, _) = trained_with_history(dir.path(), "h");
    let score = |extra: &[&str]| score_with_history((&d("m.json"), &day), &d("h"), &d("o"), extra);
    let held = std::fs::File::open(d("h/history.lock")).unwrap();
    held.lock().unwrap();
    let out = score(&[]);
    expect_code(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another latmove run is writing this history")
            && err.contains("history.lock is locked"),
        "{err}"
    );
    let before = std::fs::read(d("h/history.json")).unwrap();
    expect_code(&score(&["--history-read-only"]), 0);
    assert_eq!(std::fs::read(d("h/history.json")).unwrap(), before);
    drop(held);
    let out = score(&[]);
    expect_code(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("windows learnt"));
    // A run that fails leaves no history directory it created behind.
    std::fs::write(d("bad.csv"), "not,a,flow,file\n").unwrap();
    let out = score_with_history((&d("m.json"), &d("bad.csv")), &d("new"), &d("o"), &[]);
    expect_code(&out, 2);
    assert!(!dir.path().join("new").exists());
}

/// A model, a history and alerts kept in the flows' own directory are
/// not read back as flows (each said once), so the next run on that
/// directory reads what it read before; named as an input, each is
/// refused for what it is.
#[test]
fn latmove_own_files_beside_the_flows_are_not_read() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    std::fs::create_dir(d("flows")).unwrap();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    std::fs::copy(&day, d("flows/day.csv")).unwrap();
    let first = latmove(&["detect", &d("flows"), "--no-charts", "--out", &d("o1")]);
    expect_code(&first, 0);
    let rows = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.trim_start().starts_with("rows read"))
            .unwrap()
            .to_string()
    };
    let out = latmove(&[
        "train",
        &d("flows"),
        "-o",
        &d("flows/model.json"),
        "--history",
        &d("flows/past"),
    ]);
    expect_code(&out, 0);
    let out = score_with_history(
        (&d("flows/model.json"), &d("flows")),
        &d("flows/past"),
        &d("o2"),
        &["--alerts", &d("flows/alerts.ndjson")],
    );
    expect_code(&out, 0);
    assert_eq!(rows(&out), rows(&first));
    let err = String::from_utf8_lossy(&out.stderr);
    for (file, kind) in [("model.json", "model"), ("past/history.json", "history")] {
        let said = format!(
            "not reading {}: latmove's own {kind} file",
            d(&format!("flows/{file}"))
        );
        assert_eq!(err.matches(&said).count(), 1, "{err}");
    }
    assert!(std::fs::metadata(d("flows/alerts.ndjson")).unwrap().len() > 0);
    let again = latmove(&["detect", &d("flows"), "--no-charts", "--out", &d("o3")]);
    expect_code(&again, 0);
    assert_eq!(rows(&again), rows(&first));
    assert!(String::from_utf8_lossy(&again.stderr).contains("latmove's own alerts file"));
    for (file, kind) in [
        ("model.json", "model"),
        ("past/history.json", "history"),
        ("alerts.ndjson", "alerts"),
    ] {
        let out = latmove(&["detect", &d(&format!("flows/{file}")), "--out", &d("o4")]);
        expect_code(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("latmove's own {kind} file, not flows")),
            "{err}"
        );
    }
}

#[test]
fn damaged_history_files_are_refused() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (day, _) = trained_with_history(dir.path(), "small");
    std::fs::copy(d("small/history.json"), d("baseline.json")).unwrap();
    // A file where the directory should be.
    std::fs::write(d("file"), b"x").unwrap();
    let out = latmove(&[
        "watch",
        "--model",
        &d("m.json"),
        "--history",
        &d("file"),
        &day,
    ]);
    expect_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    // Damaged.
    std::fs::write(d("small/history.json"), b"{\"version\": 1, \"hosts\": [").unwrap();
    let out = latmove(&[
        "watch",
        "--model",
        &d("m.json"),
        "--history",
        &d("small"),
        &day,
    ]);
    expect_code(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a latmove history file"));
    // A state whose host keeps too few feature lists is refused, not
    // indexed out of bounds.
    let text = std::fs::read_to_string(d("baseline.json")).unwrap();
    let cut = text.replacen("\"top\":[[", "\"top\":[[]],\"x\":[[", 1);
    std::fs::write(d("small/history.json"), cut).unwrap();
    let out = latmove(&[
        "watch",
        "--model",
        &d("m.json"),
        "--history",
        &d("small"),
        &day,
    ]);
    expect_code(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a damaged history file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--alert-budget B` calibrates the threshold on the training hosts' days
/// (each host's highest window of each day): the model says so, `watch`
/// reports its alerted host-days against host-days, and the option is
/// refused out of range or beside --contamination.
#[test]
fn alert_budget_is_a_share_of_training_host_days() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let day = synth_day("csv", &["--rows", "30000", "--seed", "11"]);
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    let out = latmove(&[
        "train",
        &base,
        "--alert-budget",
        "0.02",
        "-o",
        &d("m.json"),
        "--out",
        &d("t"),
    ]);
    expect_code(&out, 0);
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d("m.json")).unwrap()).unwrap();
    assert_eq!(model["training"]["budget_per_host_day"], true);
    let out = latmove(&["watch", "--model", &d("m.json"), &day]);
    expect_code(&out, 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("leaves 2.00% of its training host-days above it"),
        "{err}"
    );
    let out = latmove(&[
        "detect",
        &day,
        "--alert-budget",
        "0.02",
        "--no-charts",
        "--out",
        &d("o"),
    ]);
    expect_code(&out, 0);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("alert budget 0.02 of the training hosts' days")
    );
    for bad in [
        vec!["--alert-budget", "0.9"],
        vec!["--alert-budget", "0"],
        vec!["--alert-budget", "0.01", "--contamination", "0.02"],
    ] {
        let mut args = vec!["detect", day.as_str()];
        args.extend(bad.iter().copied());
        let out = latmove(&args);
        expect_code(&out, 2);
    }
}

/// `train --history` saves the history and the model even when its stdout
/// is closed before it prints (`| head -0`): the line is lost, not the
/// state a later `watch` depends on.
#[test]
fn train_saves_its_history_when_stdout_is_closed() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let base = synth_day("csv", &["--rows", "30000", "--seed", "12", "--benign-only"]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
        .args([
            "train",
            &base,
            "-o",
            &d("m.json"),
            "--out",
            &d("t"),
            "--history",
            &d("h"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(dir.path().join("h/history.json").is_file());
    assert!(dir.path().join("m.json").is_file());
}

/// `train` writes a detection's outputs only when asked (`--out`,
/// `--alerts`, `--report` or a gate), and never a `latmove-out` of its
/// own.
#[test]
fn train_writes_outputs_only_when_asked() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let s = sample();
    let quiet = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
        .current_dir(dir.path())
        .args(["train", s.to_str().unwrap(), "-o", "m.json"])
        .output()
        .unwrap();
    expect_code(&quiet, 0);
    assert!(!dir.path().join("latmove-out").exists());
    let asked = latmove(&[
        "train",
        s.to_str().unwrap(),
        "-o",
        &d("m2.json"),
        "--out",
        &d("o"),
        "--no-charts",
    ]);
    expect_code(&asked, 0);
    let said = String::from_utf8_lossy(&asked.stdout);
    assert!(said.contains("Model saved to "), "{said}");
    let (_, rows) = read_csv(&dir.path().join("o/host_scores.csv"));
    assert_eq!(rows.len(), 305);
    assert_eq!(
        std::fs::read(d("m.json")).unwrap(),
        std::fs::read(d("m2.json")).unwrap(),
        "the model does not depend on the outputs"
    );
}

/// `--history-read-only` judges against the history and leaves its file as
/// it was (`score`, `watch`); without it the run is learnt.
#[test]
fn a_read_only_history_is_left_as_it_was() {
    let dir = tempdir();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (day, _) = trained_with_history(dir.path(), "h");
    let state = || std::fs::read(d("h/history.json")).unwrap();
    let before = state();
    let (model, hist) = (d("m.json"), d("h"));
    let read_only = |cmd: &[&str]| {
        let mut args = cmd.to_vec();
        args.extend(["--model", &model, "--history", &hist, "--history-read-only"]);
        args.push(&day);
        let out = latmove(&args);
        expect_code(&out, 0);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let scored = read_only(&["score", "--no-charts", "--out", &d("o")]);
    assert!(scored.contains("TP 2  FP 0  FN 0"), "{scored}");
    read_only(&["watch"]);
    assert!(state() == before, "a read-only run changed the history");
    let learnt = latmove(&[
        "score",
        "--model",
        &d("m.json"),
        "--history",
        &d("h"),
        "--no-charts",
        "--out",
        &d("o2"),
        &day,
    ]);
    expect_code(&learnt, 0);
    assert!(state() != before, "the run was not learnt");
}
