//! latmove: finds hosts that move laterally (scanners, service sweeps,
//! sudden fan-out) in network flow records.
//!
//! The pipeline: [`flows`] streams flow CSVs, [`profile`] builds one
//! behaviour profile per source host, [`features`] turns profiles into a
//! feature table, [`forest`] (a hand-written Isolation Forest) learns benign
//! hosts and scores every host, [`metrics`] measures the result against the
//! labels, and [`report`] and [`charts`] write what an analyst reads.

pub mod alerts;
pub mod charts;
pub mod cli;
pub mod detect;
pub mod features;
pub mod flows;
pub mod forensics;
pub mod forest;
pub mod metrics;
pub mod model;
pub mod net;
pub mod profile;
pub mod report;
pub mod sets;
pub mod synth;
pub mod truth;
pub mod watch;
