//! What an analyst reads: the summary and CSV/JSON files ([`report`]), the
//! charts ([`charts`]), SIEM alerts ([`alerts`]) and the forensic report
//! ([`forensics`]).

pub(crate) mod alerts;
pub(crate) mod charts;
pub(crate) mod forensics;
pub(crate) mod report;
pub(crate) mod tables;
pub(crate) mod write;
