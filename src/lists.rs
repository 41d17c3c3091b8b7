//! Reading the small line-based lists an analyst supplies (`--truth`,
//! `--allow`): `#` starts a comment, blank lines are skipped, errors name
//! the file and the line.

use std::path::Path;

use anyhow::{Context, Result};

/// The non-empty lines of `text`, numbered from 1, comments removed and
/// trimmed.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Reads `path` and parses it, naming the file in errors.
pub(crate) fn parse_file<T>(path: &Path, parse: fn(&str) -> Result<T>) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}
