//! SIEM alerts from detect and score: ECS NDJSON and CEF.

use crate::util::*;

#[test]
fn ecs_alerts_one_per_flagged_host_with_the_fields_a_siem_needs() {
    let dir = tempdir();
    let alerts = dir.path().join("alerts.ndjson");
    let out = dir.path().join("o");
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--no-charts",
        "--out",
        out.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let text = std::fs::read_to_string(&alerts).unwrap();
    let (_, flagged) = read_csv(&out.join("flagged_hosts.csv"));
    let docs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(docs.len(), flagged.len());
    for d in &docs {
        for path in [
            "/@timestamp",
            "/event/start",
            "/event/end",
            "/event/risk_score",
            "/event/severity",
            "/rule/name",
            "/rule/id",
            "/source/ip",
            "/message",
            "/latmove/score",
        ] {
            assert!(
                !d.pointer(path)
                    .unwrap_or(&serde_json::Value::Null)
                    .is_null(),
                "{path} missing in {d}"
            );
        }
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["event"]["category"][0], "network");
        assert_eq!(d["threat"]["framework"], "MITRE ATT&CK");
        assert_eq!(d["related"]["ip"][0], d["source"]["ip"]);
        let r = d["event"]["risk_score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&r));
    }
    let scanner = docs
        .iter()
        .find(|d| d["source"]["ip"] == "192.168.10.8")
        .unwrap();
    assert_eq!(scanner["threat"]["technique"][0]["id"], "T1046");
    assert!(scanner["message"].as_str().unwrap().contains("no reply"));
}

#[test]
fn cef_alerts_to_stdout_move_the_summary_to_stderr() {
    let dir = tempdir();
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--no-charts",
        "--out",
        dir.path().join("o").to_str().unwrap(),
        "--alerts",
        "-",
        "--alert-format",
        "cef",
    ]);
    expect_code(&o, 0);
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(stdout.lines().count() >= 2);
    for line in stdout.lines() {
        assert!(line.starts_with("CEF:0|latmove|latmove|"), "{line}");
        // 7 header separators before the extension (escaped pipes excluded).
        assert_eq!(line.replace("\\|", "").matches('|').count(), 7, "{line}");
        assert!(line.contains(" src=") && line.contains(" msg="));
    }
    assert!(String::from_utf8_lossy(&o.stderr).contains("Top flagged hosts"));
    let bad = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--alerts",
        "-",
        "--alert-format",
        "xml",
    ]);
    expect_code(&bad, 2);
}

#[test]
fn forensic_report_gives_each_flagged_host_a_page_its_flows_and_a_timeline() {
    let dir = tempdir();
    let rep = dir.path().join("report");
    let o = latmove(&[
        "detect",
        sample().to_str().unwrap(),
        "--no-charts",
        "--out",
        dir.path().join("o").to_str().unwrap(),
        "--report",
        rep.to_str().unwrap(),
    ]);
    expect_code(&o, 0);
    let index = std::fs::read_to_string(rep.join("index.md")).unwrap();
    assert!(
        index.contains("[192.168.10.8](host-192-168-10-8.md)"),
        "{index}"
    );
    let page = std::fs::read_to_string(rep.join("host-192-168-10-8.md")).unwrap();
    for needle in [
        "first seen: 2017-07-04",
        "last seen:",
        "**What:**",
        "**Why:**",
        "## Top destination hosts",
        "## Top destination ports",
        "host-192-168-10-8-timeline.png",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    let png = std::fs::read(rep.join("host-192-168-10-8-timeline.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let (header, rows) = read_csv(&rep.join("host-192-168-10-8-flows.csv"));
    assert_eq!(
        header,
        [
            "flow_id",
            "src_ip",
            "src_port",
            "dst_ip",
            "dst_port",
            "protocol",
            "timestamp",
            "label"
        ]
    );
    assert!(rows.iter().all(|r| r[1] == "192.168.10.8"));
    assert!(
        rows.iter().filter(|r| r[7] == "PortScan").count() >= 1000,
        "the scan's flows are exported"
    );
    assert!(rows.iter().all(|r| !r[0].is_empty()), "Flow IDs kept");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rep.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["parameters"]["seed"], 42);
    assert!(
        m["flagged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "192.168.10.8")
    );
}
