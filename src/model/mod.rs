//! Learning what normal looks like and scoring against it: the
//! hand-written Isolation Forest ([`forest`]) and the saved model file
//! ([`file`]).

pub mod file;
pub mod forest;
