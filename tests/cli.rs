use std::path::Path;

use crate::util::*;

fn run_sample(out: &Path, extra: &[&str]) -> std::process::Output {
    let sample = sample();
    let mut args = vec![
        "detect",
        sample.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    latmove(&args)
}

#[test]
fn detect_on_the_shipped_sample_ranks_the_scanner_first_and_writes_every_output() {
    let dir = tempdir();
    let out = dir.path().join("out");
    let o = run_sample(&out, &[]);
    expect_code(&o, 0);
    let stdout = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "rows read",
        "skipped: empty rows",
        "source hosts",
        "attack hosts",
        "flagged hosts",
        "TP ",
        "recall",
        "precision",
        "false-positive rate",
        "ROC-AUC",
        "average precision",
        "Top flagged hosts",
        "why:",
    ] {
        assert!(
            stdout.contains(needle),
            "summary lacks '{needle}':\n{stdout}"
        );
    }
    let (header, rows) = read_csv(&out.join("host_scores.csv"));
    for col in [
        "rank",
        "ip",
        "score",
        "flagged",
        "label",
        "unique_dst_ips",
        "unique_dst_ports",
        "flow_count",
        "mean_duration_us",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "host_scores.csv lacks {col}"
        );
    }
    let ip = header.iter().position(|h| h == "ip").unwrap();
    let rank = header.iter().position(|h| h == "rank").unwrap();
    let flagged = header.iter().position(|h| h == "flagged").unwrap();
    assert_eq!(
        rows[0][ip], "192.168.10.8",
        "the planted internal scanner ranks first"
    );
    assert_eq!(rows[0][flagged], "true");
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r[rank] == (i + 1).to_string())
    );
    // The brute-forcer is flagged too and ranks among the top five.
    let bf = rows.iter().position(|r| r[ip] == "172.16.0.1").unwrap();
    assert_eq!(rows[bf][flagged], "true");
    assert!(bf < 5, "172.16.0.1 ranks {}", bf + 1);
    assert!(
        bf < rows.len() / 20,
        "172.16.0.1 ranks {} of {}",
        bf + 1,
        rows.len()
    );
    let (fh, frows) = read_csv(&out.join("flagged_hosts.csv"));
    assert!(fh.iter().any(|h| h == "why"));
    assert_eq!(
        frows.len(),
        rows.iter().filter(|r| r[flagged] == "true").count()
    );
    assert!(frows.iter().any(|r| r[1] == "192.168.10.8"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["metrics"]["attack_hosts"], 2);
    assert!(m["metrics"]["tp"].as_u64().unwrap() >= 1);
    assert!(m["rows_skipped"]["empty rows"].as_u64().unwrap() > 0);
    assert!(m["metrics"]["roc_auc"].as_f64().unwrap() > 0.9);
    for png in [
        "score_distribution.png",
        "fanout.png",
        "flagged_features.png",
    ] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "{png}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn same_seed_gives_identical_outputs_whatever_the_thread_count() {
    let dir = tempdir();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    expect_code(&run_sample(&a, &["--no-charts", "--threads", "1"]), 0);
    expect_code(&run_sample(&b, &["--no-charts", "--threads", "3"]), 0);
    for f in ["host_scores.csv", "flagged_hosts.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn gates_exit_3_with_a_reason() {
    let dir = tempdir();
    let o = run_sample(
        &dir.path().join("o"),
        &["--no-charts", "--min-recall", "1.0", "--max-fpr", "0.0"],
    );
    expect_code(&o, 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("gate failed") && err.contains("--max-fpr"),
        "{err}"
    );
    let ok = run_sample(
        &dir.path().join("p"),
        &["--no-charts", "--min-recall", "0.5", "--max-fpr", "0.05"],
    );
    expect_code(&ok, 0);
}

#[test]
fn bad_parameters_and_inputs_exit_2_with_a_message() {
    let dir = tempdir();
    let o = run_sample(&dir.path().join("o"), &["--contamination", "0.7"]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("(0, 0.5]"));
    let o = run_sample(&dir.path().join("o"), &["--trees", "0"]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--trees"));
    let o = latmove(&["detect", "/nonexistent/flows.csv"]);
    expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/flows.csv"));
    let mlcve = write(
        dir.path(),
        "Monday.csv",
        b" Destination Port, Flow Duration, Label\r\n80,1,BENIGN\r\n",
    );
    let o = latmove(&[
        "detect",
        mlcve.to_str().unwrap(),
        "--out",
        dir.path().join("m").to_str().unwrap(),
    ]);
    expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Monday.csv") && err.contains("Source IP") && err.contains("TrafficLabelling"),
        "{err}"
    );
}

#[test]
fn unlabelled_input_is_ranked_without_metrics() {
    let dir = tempdir();
    let mut text =
        String::from("src_ip,dst_ip,src_port,dst_port,protocol,timestamp,flow_duration\n");
    for h in 1..=30 {
        for d in 0..3 {
            text.push_str(&format!(
                "10.0.0.{h},10.0.1.{d},5000,443,6,2024-01-02 10:00:00,{}\n",
                1000 + h * 10
            ));
        }
    }
    for p in 1..=300 {
        text.push_str(&format!(
            "10.0.0.99,10.0.1.{},5000,{p},6,2024-01-02 10:00:00,5\n",
            p % 50
        ));
    }
    let f = write(dir.path(), "live.csv", text.as_bytes());
    let out = dir.path().join("o");
    let o = latmove(&[
        "detect",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--folds",
        "1",
    ]);
    expect_code(&o, 0);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("No Label column"), "{stdout}");
    let (_, rows) = read_csv(&out.join("host_scores.csv"));
    assert_eq!(rows[0][1], "10.0.0.99");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(m["metrics"].is_null());
}

#[test]
fn no_progress_bar_off_a_terminal_and_quiet_is_accepted() {
    let dir = tempdir();
    let sample = sample();
    for extra in [&[][..], &["--quiet"][..]] {
        let out = dir.path().join("o");
        let mut args = vec![
            "detect",
            sample.to_str().unwrap(),
            "--no-charts",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = latmove(&args);
        expect_code(&o, 0);
        assert!(
            o.stderr.is_empty(),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}
