//! The feature SQL against the native feature table, on DuckDB and Spark
//! (sql/conformance.sh), and the SQL text's portability rules.

use std::path::Path;
use std::process::Command;

use crate::util;

/// sql/features.sql on DuckDB and on Spark in local mode gives latmove's
/// feature table on the sample, the full and hard synthetic days and the
/// real rows, and detect on each engine's table ranks and scores the hosts
/// as detect on the flows. The engines install into sql/.venv on first use; without a
/// package index or a JVM the script says why and the test passes as
/// skipped (exit 77).
#[test]
fn feature_sql_matches_native_on_duckdb_and_spark() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/sql/conformance.sh"))
        .arg(env!("CARGO_BIN_EXE_latmove"))
        .output()
        .expect("running sql/conformance.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => {
            // Every fixture on both engines.
            assert!(text.matches("equal:").count() >= 8, "{text}");
            assert!(
                text.matches("detect on the table = detect on the flows")
                    .count()
                    >= 8,
                "{text}"
            );
        }
        Some(77) => eprintln!("sql conformance skipped: {text}"),
        _ => panic!(
            "sql/conformance.sh failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The SQL keeps to the portable subset: no COUNT(DISTINCT ...) OVER, and
/// every division's operands cast to DOUBLE or a double already; the
/// dialect lines are the only difference between the printed versions.
#[test]
fn feature_sql_is_portable() {
    let mut texts = Vec::new();
    for d in ["spark", "duckdb", "trino", "clickhouse"] {
        let out = util::latmove(&["sql", "--dialect", d]);
        assert!(out.status.success(), "{d}");
        texts.push(String::from_utf8(out.stdout).unwrap());
    }
    let upper = texts[0].to_uppercase();
    for line in upper.lines() {
        let code = line.split("--").next().unwrap();
        assert!(
            !(code.contains("COUNT(DISTINCT") && code.contains("OVER")),
            "{line}"
        );
    }
    // Spark, DuckDB and Trino run the same text; ClickHouse adds its line.
    assert_eq!(texts[0], texts[1]);
    assert_eq!(texts[0], texts[2]);
    let extra: Vec<&str> = texts[3]
        .lines()
        .filter(|l| !texts[0].lines().any(|k| k == *l))
        .collect();
    assert_eq!(
        extra,
        vec!["SET join_use_nulls = 1; -- dialect: clickhouse"]
    );
    let bad = util::latmove(&["sql", "--dialect", "oracle"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--dialect must be one of"));
}

/// Runs latmove, expecting success; gives stdout.
fn ok(args: &[&str]) -> String {
    let out = util::latmove(args);
    util::expect_code(&out, 0);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// host_scores.csv of an output directory without its attack_labels
/// column (a feature table carries a host's most frequent label only).
/// A host_scores.csv without the labels list (a table carries a host's
/// most frequent label only).
fn scores_without_labels(dir: &Path) -> Vec<Vec<String>> {
    let (header, rows) = util::read_csv(&dir.join("host_scores.csv"));
    let labels = header.iter().position(|h| h == "attack_labels").unwrap();
    rows.into_iter()
        .map(|mut r| {
            r.remove(labels);
            r
        })
        .collect()
}

/// The flow table has the documented columns, one row per flow used.
#[test]
fn flow_table_has_a_row_per_flow_and_the_documented_columns() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = util::tempdir();
    let t = dir.path().join("flows.parquet");
    let s = util::sample();
    let said = ok(&["flows", s.to_str().unwrap(), "-o", t.to_str().unwrap()]);
    assert!(
        said.contains("19987 flows from 20000 rows; 13 skipped"),
        "{said}"
    );
    let r = SerializedFileReader::new(std::fs::File::open(&t).unwrap()).unwrap();
    assert_eq!(r.metadata().file_metadata().num_rows(), 19987);
    let names: Vec<String> = r
        .metadata()
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/scale-out.md"))
            .unwrap();
    for n in &names {
        assert!(
            doc.contains(&format!("| `{n}` |")),
            "docs/scale-out.md lacks {n}"
        );
    }
    assert_eq!(names.len(), 23);
    // CSV too, with the same rows.
    let c = dir.path().join("flows.csv");
    ok(&["flows", s.to_str().unwrap(), "-o", c.to_str().unwrap()]);
    let (header, rows) = util::read_csv(&c);
    assert_eq!(header, names);
    assert_eq!(rows.len(), 19987);
    // A directory gets a part file, as engines write tables.
    let part = dir.path().join("lake/day=2017-07-04/");
    ok(&["flows", s.to_str().unwrap(), "-o", part.to_str().unwrap()]);
    assert!(part.join("part-00000.parquet").is_file());
    // Another extension is refused before any work.
    let bad = util::latmove(&["flows", s.to_str().unwrap(), "-o", "flows.txt"]);
    util::expect_code(&bad, 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must end in .parquet or .csv"));
}

/// detect, train and score on the native feature table give what they
/// give on the flows (every host_scores column but the labels list, bit
/// for bit), from Parquet and from CSV.
#[test]
fn feature_table_scores_as_the_flows_do() {
    let dir = util::tempdir();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let s = util::sample();
    let s = s.to_str().unwrap();
    ok(&["features", s, "-o", &p("f.parquet")]);
    ok(&["features", s, "-o", &p("f.csv")]);
    ok(&["detect", s, "--no-charts", "--out", &p("flows")]);
    for t in ["f.parquet", "f.csv"] {
        let out = p(&format!("table-{t}"));
        let said = ok(&[
            "detect",
            "--features-table",
            &p(t),
            "--no-charts",
            "--out",
            &out,
        ]);
        assert!(said.contains("feature rows used"), "{said}");
        assert_eq!(
            scores_without_labels(&dir.path().join("flows")),
            scores_without_labels(Path::new(&out)),
            "{t}"
        );
    }
    // A model trained on the table scores the flows as one trained on the
    // flows; scoring the table with it gives the flows' scores.
    ok(&["train", s, "-o", &p("m1.json"), "--out", &p("t1")]);
    ok(&[
        "train",
        "--features-table",
        &p("f.parquet"),
        "-o",
        &p("m2.json"),
        "--out",
        &p("t2"),
    ]);
    ok(&[
        "score",
        "--model",
        &p("m1.json"),
        s,
        "--no-charts",
        "--out",
        &p("s1"),
    ]);
    ok(&[
        "score",
        "--model",
        &p("m2.json"),
        s,
        "--no-charts",
        "--out",
        &p("s2"),
    ]);
    ok(&[
        "score",
        "--model",
        &p("m1.json"),
        "--features-table",
        &p("f.parquet"),
        "--no-charts",
        "--out",
        &p("s3"),
    ]);
    let one = std::fs::read(dir.path().join("s1/host_scores.csv")).unwrap();
    assert_eq!(
        one,
        std::fs::read(dir.path().join("s2/host_scores.csv")).unwrap()
    );
    assert_eq!(
        scores_without_labels(&dir.path().join("s1")),
        scores_without_labels(&dir.path().join("s3"))
    );
}

/// A feature table's bad rows are skipped, counted and shown with file,
/// line, column and value; a missing column, a table of other windows and
/// a forensic report are refused with the reason.
#[test]
fn feature_table_faults_are_reported() {
    let dir = util::tempdir();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let s = util::sample();
    ok(&["features", s.to_str().unwrap(), "-o", &p("f.csv")]);
    let text = std::fs::read_to_string(p("f.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<String> = lines[0].split(',').map(String::from).collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let set = |line: &mut String, c: usize, v: &str| {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        cells[c] = v.to_string();
        *line = cells.join(",");
    };
    set(&mut lines[2], col("ip"), "10.0.0.999");
    set(&mut lines[3], col("unique_dst_ports"), "many");
    set(&mut lines[4], col("label"), "maybe");
    set(&mut lines[6], col("inbound_flows"), "-3");
    // An attack label with a terminal escape, on an attacker's row.
    let attacker = lines.iter().position(|l| l.contains(",attack,")).unwrap();
    set(
        &mut lines[attacker],
        col("attack_label"),
        "Port\u{1b}]0;pwned\u{7}Scan",
    );
    lines[5].push_str(",extra");
    std::fs::write(p("bad.csv"), lines.join("\n") + "\n").unwrap();
    let out = ok(&[
        "detect",
        "--features-table",
        &p("bad.csv"),
        "--no-charts",
        "--out",
        &p("o"),
    ]);
    assert!(out.contains("feature rows used          2106"), "{out}");
    assert!(
        out.contains("skipped: rows with another number of fields than the header      1"),
        "{out}"
    );
    for problem in [
        "bad.csv:3: column 'ip': unparsable source IP: \"10.0.0.999\"",
        "bad.csv:4: column 'unique_dst_ports': unparsable number: \"many\"",
        "bad.csv:5: column 'label': values of the wrong kind: \"maybe\"",
        "bad.csv:7: column 'inbound_flows': unparsable number: \"-3\"",
    ] {
        assert!(out.contains(problem), "{problem}: {out}");
    }
    assert!(
        !out.contains('\u{1b}') && out.contains("Port\\u{1b}]0;pwned\\u{7}Scan"),
        "{out}"
    );
    // A column missing.
    let cut: Vec<String> = text
        .lines()
        .map(|l| {
            let mut c: Vec<&str> = l.split(',').collect();
            c.remove(col("tiny_flow_share"));
            c.join(",")
        })
        .collect();
    std::fs::write(p("cut.csv"), cut.join("\n") + "\n").unwrap();
    let o = util::latmove(&[
        "detect",
        "--features-table",
        &p("cut.csv"),
        "--out",
        &p("o2"),
    ]);
    util::expect_code(&o, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cut.csv: not a feature table: no column 'tiny_flow_share'"),
        "{err}"
    );
    // Windows of another length.
    let o = util::latmove(&[
        "detect",
        "--features-table",
        &p("f.csv"),
        "--window",
        "1h",
        "--out",
        &p("o3"),
    ]);
    util::expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a window of 3600 seconds"));
    // No flows for a forensic report.
    let o = util::latmove(&[
        "detect",
        "--features-table",
        &p("f.csv"),
        "--report",
        &p("r"),
        "--out",
        &p("o4"),
    ]);
    util::expect_code(&o, 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--report needs the flows"));
    assert!(!dir.path().join("o4").exists() && !dir.path().join("r").exists());
}

/// Mangled feature tables (bytes flipped, cut, lines dropped; a Parquet
/// file cut or overwritten) never crash a run: each ends with exit 0 (bad
/// rows skipped and counted) or 2 (refused with a message), never a panic.
#[test]
fn mangled_feature_tables_are_skipped_or_refused() {
    let dir = util::tempdir();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let s = util::sample();
    ok(&["features", s.to_str().unwrap(), "-o", &p("f.csv")]);
    ok(&["features", s.to_str().unwrap(), "-o", &p("f.parquet")]);
    let mut seed = 7u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n.max(1)
    };
    for (name, bytes) in [
        ("f.csv", std::fs::read(p("f.csv")).unwrap()),
        ("f.parquet", std::fs::read(p("f.parquet")).unwrap()),
    ] {
        for k in 0..24 {
            let mut m = bytes.clone();
            match k % 3 {
                0 => {
                    for _ in 0..8 {
                        let i = next(m.len());
                        m[i] = next(256) as u8;
                    }
                }
                1 => m.truncate(next(m.len())),
                _ => {
                    let i = next(m.len());
                    let j = (i + next(4096)).min(m.len());
                    m.drain(i..j);
                }
            }
            let t = p(&format!("m{k}-{name}"));
            std::fs::write(&t, &m).unwrap();
            let out = util::latmove(&[
                "detect",
                "--features-table",
                &t,
                "--no-charts",
                "--out",
                &p(&format!("o{k}-{name}")),
            ]);
            let code = out.status.code();
            assert!(
                code == Some(0) || code == Some(2),
                "{t}: exit {code:?}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            if code == Some(2) {
                assert!(
                    String::from_utf8_lossy(&out.stderr).starts_with("latmove: error:"),
                    "{t}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// A bad row of a feature table CSV is shown at its physical line whether
/// the lines end in LF or CRLF, blank lines counted.
#[test]
fn feature_table_lines_are_physical_lines() {
    let dir = util::tempdir();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    ok(&[
        "features",
        util::sample().to_str().unwrap(),
        "-o",
        &p("f.csv"),
    ]);
    let text = std::fs::read_to_string(p("f.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.insert(3, String::new());
    lines[6] = lines[6].replacen(",false,", ",maybe,", 1);
    for (name, end) in [("lf.csv", "\n"), ("crlf.csv", "\r\n")] {
        std::fs::write(p(name), lines.join(end) + end).unwrap();
        let out = ok(&[
            "detect",
            "--features-table",
            &p(name),
            "--no-charts",
            "--out",
            &p(&format!("o-{name}")),
        ]);
        let problem = format!("{name}:7: column 'internal': values of the wrong kind: \"maybe\"");
        assert!(out.contains(&problem), "{out}");
        assert!(out.contains("feature rows used          2110"), "{out}");
    }
}
