//! Ground truth per host (`--truth`), overriding the per-flow labels.
//!
//! One host per line (`#` starts a comment; a header line starting with
//! `ip` is skipped):
//!
//! ```text
//! ip[,start,end][,label]
//! 192.168.10.8,2017-07-06 15:00,2017-07-06 15:50,Infiltration - Portscan
//! 192.168.10.25,BENIGN
//! ```
//!
//! A listed host takes the line's label (default `attack`) instead of what
//! its flows' labels say; `BENIGN` makes it benign. With a time range, the
//! line applies only when the host was seen within it. Hosts not listed
//! keep the per-flow rule; when no flow had a label (Zeek, NetFlow, Argus,
//! Suricata, Parquet input, mostly), the file is the whole ground truth and
//! the hosts it does not name are benign.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Result, bail};

use crate::flows::timestamp::parse_timestamp;
use crate::lists::{lines, parse_file};
use crate::profile::Profiles;
use crate::util::text::printable;

/// One line of a truth file.
#[derive(Debug, Clone)]
pub struct TruthEntry {
    /// The host.
    pub ip: IpAddr,
    /// Start of the time range (seconds), if any.
    pub start: Option<f64>,
    /// End of the time range.
    pub end: Option<f64>,
    /// The label (`BENIGN` or an attack name).
    pub label: String,
}

impl TruthEntry {
    /// Whether the entry speaks of a host seen from `first` to `last`: an
    /// entry without a time range always, one with a range when it
    /// overlaps them (a host without times never).
    pub fn covers(&self, first: Option<f64>, last: Option<f64>) -> bool {
        match (self.start, self.end, first, last) {
            (Some(s), Some(t), Some(f), Some(l)) => f <= t && l >= s,
            (Some(_), Some(_), _, _) => false,
            _ => true,
        }
    }
}

/// Host-level ground truth.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// The lines, in file order.
    pub entries: Vec<TruthEntry>,
}

impl Truth {
    /// Reads and parses a truth file, naming it in errors.
    pub fn from_file(path: &Path) -> Result<Truth> {
        parse_file(path, Truth::parse)
    }

    /// Parses a truth file's text.
    pub fn parse(text: &str) -> Result<Truth> {
        let mut entries = Vec::new();
        for (n, line) in lines(text) {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if n == 1 && cells[0].eq_ignore_ascii_case("ip") {
                continue;
            }
            let ip: IpAddr = cells[0].parse().map_err(|_| {
                anyhow::anyhow!("line {n}, column 1: '{}' is not an IP address", cells[0])
            })?;
            let time = |i: usize| -> Result<f64> {
                parse_timestamp(cells[i].as_bytes()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "line {n}, column {}: '{}' is not a timestamp",
                        i + 1,
                        cells[i]
                    )
                })
            };
            let (start, end, label) = match cells.len() {
                1 => (None, None, "attack".to_string()),
                2 => (None, None, printable(cells[1]).into_owned()),
                3 => (Some(time(1)?), Some(time(2)?), "attack".to_string()),
                4 => (
                    Some(time(1)?),
                    Some(time(2)?),
                    printable(cells[3]).into_owned(),
                ),
                k => bail!("line {n}: expected ip[,start,end][,label], got {k} fields"),
            };
            if let (Some(s), Some(e)) = (start, end) {
                anyhow::ensure!(
                    s <= e,
                    "line {n}: the time range starts after it ends ('{}' > '{}')",
                    cells[1],
                    cells[2]
                );
            }
            entries.push(TruthEntry {
                ip,
                start,
                end,
                label,
            });
        }
        Ok(Truth { entries })
    }

    /// Overrides the labels of the listed hosts in `p` (and, when no host
    /// had a label, makes every other host benign).
    pub fn apply(&self, p: &mut Profiles) {
        if p.hosts.iter().all(|h| h.labelled_flows == 0) {
            for h in &mut p.hosts {
                h.labelled_flows = 1;
            }
        }
        for e in &self.entries {
            let id = match p.labels.iter().position(|l| *l == e.label) {
                Some(i) => i as u32,
                None => {
                    p.labels.push(e.label.clone());
                    (p.labels.len() - 1) as u32
                }
            };
            for h in p.hosts.iter_mut().filter(|h| h.ip == e.ip) {
                if !e.covers(h.first_seen, h.last_seen) {
                    continue;
                }
                h.labelled_flows = h.labelled_flows.max(1);
                if e.label.eq_ignore_ascii_case("benign") {
                    h.attack_flows = 0;
                    h.attack_labels.clear();
                } else {
                    h.attack_flows = h.attack_flows.max(1);
                    h.attack_labels = vec![(id, u64::MAX)];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let t = Truth::parse("ip,start,end,label\n192.168.10.8,6/7/2017 3:00,6/7/2017 3:50,Portscan\n10.0.0.1\n10.0.0.2,BENIGN # note\n").unwrap();
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.entries[0].label, "Portscan");
        assert!(t.entries[0].start.is_some());
        assert_eq!(t.entries[1].label, "attack");
        assert!(Truth::parse("nope").is_err());
    }
}
