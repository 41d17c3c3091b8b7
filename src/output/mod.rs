//! What an analyst reads: the summary and CSV/JSON files ([`report`]), the
//! charts ([`charts`]), SIEM alerts ([`alerts`]) and the forensic report
//! ([`forensics`]).

pub mod alerts;
pub mod charts;
pub mod forensics;
pub mod report;
