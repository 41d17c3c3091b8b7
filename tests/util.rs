use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

pub(crate) use tempfile::TempDir;

pub(crate) const HEADER_2017: &str = latmove::synth::HEADER_2017;

pub(crate) fn tempdir() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// Writes `bytes` to `dir/name` and returns the path.
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

/// A row in the 85-column 2017 layout with the given fields; others 0.
pub(crate) fn row_2017(
    src: &str,
    dst: &str,
    dport: &str,
    ts: &str,
    dur: &str,
    label: &[u8],
) -> Vec<u8> {
    let mut cols: Vec<Vec<u8>> = vec![b"0".to_vec(); 85];
    cols[0] = format!("{src}-{dst}-50000-{dport}-6").into_bytes();
    cols[1] = src.as_bytes().to_vec();
    cols[2] = b"50000".to_vec();
    cols[3] = dst.as_bytes().to_vec();
    cols[4] = dport.as_bytes().to_vec();
    cols[5] = b"6".to_vec();
    cols[6] = ts.as_bytes().to_vec();
    cols[7] = dur.as_bytes().to_vec();
    cols[8] = b"1".to_vec();
    cols[84] = label.to_vec();
    let mut line = cols.join(&b","[..]);
    line.extend_from_slice(b"\r\n");
    line
}

/// A whole 2017-layout file from rows.
pub(crate) fn file_2017(rows: &[Vec<u8>]) -> Vec<u8> {
    let mut out = HEADER_2017.as_bytes().to_vec();
    out.extend_from_slice(b"\r\n");
    for r in rows {
        out.extend_from_slice(r);
    }
    out
}

pub(crate) fn latmove(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latmove"))
        .args(args)
        .output()
        .expect("run latmove")
}

/// Panics with the whole output when the exit code differs.
pub(crate) fn expect_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `latmove detect ARGS.. INPUT --out OUT`, expects exit code 2, and
/// gives its stderr.
pub(crate) fn detect_refused(input: &Path, out: &Path, args: &[&str]) -> String {
    let mut all = vec!["detect"];
    all.extend_from_slice(args);
    all.extend([input.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let o = latmove(&all);
    expect_code(&o, 2);
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The shipped synthetic sample.
pub(crate) fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/synthetic-tuesday.csv.gz")
}

/// ../shared/data/cic-ids2017-improved-samples, when present.
/// The real CIC-IDS2017 rows in ../shared, or `None` (saying so on stderr,
/// so a skipped check shows in the test output) when they are absent.
pub(crate) fn real_samples() -> Option<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/cic-ids2017-improved-samples");
    if !p.is_dir() {
        eprintln!("SKIPPED: ../shared/data/cic-ids2017-improved-samples is absent");
        return None;
    }
    Some(p)
}

/// Reads a CSV output into header + rows of strings.
pub(crate) fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).expect("open output csv");
    let header = r
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|rec| rec.expect("row").iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Reads with one thread and with three (the byte-range path for plain
/// files, the pipeline for gzip), asserts that profiles and read
/// statistics are identical, and returns them.
pub(crate) fn read_both(
    inputs: &[PathBuf],
) -> (latmove::profile::Profiles, latmove::flows::ReadStats) {
    let options = latmove::profile::ProfileOptions::default();
    let (one, s1) = latmove::profile::read::read_profiles_threads(inputs, &options, 1).unwrap();
    let (three, s3) = latmove::profile::read::read_profiles_threads(inputs, &options, 3).unwrap();
    assert_eq!(one, three, "profiles differ between 1 and 3 threads");
    assert_eq!(
        format!("{s1:?}"),
        format!("{s3:?}"),
        "read statistics differ"
    );
    (one, s1)
}

/// The file `latmove synth ARGS -o day.EXT` writes, generated once per test
/// binary: tests asking for the same day share it (read-only).
pub(crate) fn synth_day(ext: &str, args: &[&str]) -> String {
    static DAYS: OnceLock<(TempDir, Mutex<HashMap<String, String>>)> = OnceLock::new();
    let (dir, made) = DAYS.get_or_init(|| {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory");
        (dir, Mutex::new(HashMap::new()))
    });
    let key = format!("{ext} {}", args.join(" "));
    let mut made = made.lock().expect("synthetic days lock");
    if let Some(p) = made.get(&key) {
        return p.clone();
    }
    let path = dir.path().join(format!("day-{}.{ext}", made.len()));
    let path = path.to_str().expect("UTF-8 path").to_string();
    let mut full = vec!["synth"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", &path]);
    expect_code(&latmove(&full), 0);
    made.insert(key, path.clone());
    path
}
