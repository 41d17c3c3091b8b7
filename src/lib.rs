//! latmove: finds hosts that move laterally (scanners, service sweeps,
//! sudden fan-out) in network flow records.
//!
//! The pipeline: [`flows`] streams flow CSVs, [`profile`] builds one
//! behaviour profile per source host and its feature table, [`model`] (a
//! hand-written Isolation Forest) learns benign hosts and scores every
//! host, `detect` runs those stages and `metrics` measures the result
//! against the labels, `output` writes what an analyst reads, and [`cli`]
//! holds the commands. `docs/architecture.md` has one line a module.

mod allow;
pub mod cli;
mod detect;
pub mod flows;
pub mod history;
mod lists;
mod metrics;
pub mod model;
pub mod net;
mod output;
pub mod peers;
pub mod profile;
pub mod synth;
mod table;
pub mod util;
