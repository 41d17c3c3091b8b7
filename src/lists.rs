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

/// The largest list file read (16 MiB: hundreds of thousands of lines).
const MAX_LIST_BYTES: u64 = 16 << 20;

/// Reads `path` (a regular file of at most 16 MiB, UTF-8) and parses it,
/// naming the file in errors.
pub(crate) fn parse_file<T>(path: &Path, parse: fn(&str) -> Result<T>) -> Result<T> {
    let bytes = crate::util::read_side_file(path, "list file", MAX_LIST_BYTES)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
    parse(&text).with_context(|| format!("in {}", path.display()))
}
