//! latmove's one integration-test binary.

// Test helpers: temporary directories, fixture writers, running the binary.
mod util;

// The Isolation Forest's mathematics and parameter validation.
mod forest;
// The reader against each trap of the real CIC-IDS2017 files, and the
// aliased layouts of the sibling formats.
mod reader;
// The `synth` subcommand's layout.
mod synth;
// Orientation, network awareness, features, windows, training files, truth,
// allowlists and explanations.
mod detection;
// SIEM alerts (ECS NDJSON, CEF) and the forensic report.
mod alerts;
// Saved models: train, score, round trips, refusals.
mod model;
// The binary end to end: the shipped sample, gates, determinism, errors.
mod cli;
// The hostile-input report's findings, one test each.
mod hostile;
// The real CIC-IDS2017 rows in ../shared (skipped when absent).
mod real;
// Zeek, nfdump, Argus, Suricata and Parquet: each format's rules, and one
// capture read in every format.
mod formats;
// The flow and feature tables, the feature SQL on DuckDB and Spark, and
// scoring a feature table.
mod sql;
