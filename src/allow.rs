//! The allowlist (`--allow`): known scanners, backup servers, pollers.
//!
//! One entry per line: an IP or CIDR, optionally followed by ports
//! (`10.0.0.9` or `10.0.0.20/32 161,162`). An entry without ports allows
//! the host: it is scored and reported in its own section, never flagged,
//! never trained on. An entry with ports drops the host's flows to those
//! ports before profiling (a monitoring poller's SNMP), and counts them.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;

use crate::lists::{lines, parse_file};
use crate::net::Cidr;

/// One allowlist line.
#[derive(Debug, Clone)]
pub struct AllowEntry {
    pub net: Cidr,
    /// Empty: the whole host.
    pub ports: Vec<u16>,
}

/// Known scanners, backup servers, pollers.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub entries: Vec<AllowEntry>,
}

impl Allowlist {
    pub fn from_file(path: &Path) -> Result<Allowlist> {
        parse_file(path, Allowlist::parse)
    }

    pub fn parse(text: &str) -> Result<Allowlist> {
        let mut entries = Vec::new();
        for (n, line) in lines(text) {
            let mut parts = line.splitn(2, [' ', '\t']);
            let net: Cidr = parts
                .next()
                .unwrap_or("")
                .parse()
                .map_err(|e| anyhow::anyhow!("line {n}: {e}"))?;
            let ports = match parts.next() {
                None => Vec::new(),
                Some(p) => p
                    .split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<u16>()
                            .map_err(|_| anyhow::anyhow!("line {n}: '{s}' is not a port"))
                    })
                    .collect::<Result<_>>()?,
            };
            entries.push(AllowEntry { net, ports });
        }
        Ok(Allowlist { entries })
    }

    /// The whole host is allowlisted.
    pub fn host_allowed(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .any(|e| e.ports.is_empty() && e.net.contains(ip))
    }

    /// Flows from `src` to `port` are allowlisted.
    pub fn flow_allowed(&self, src: IpAddr, port: u16) -> bool {
        self.entries
            .iter()
            .any(|e| !e.ports.is_empty() && e.ports.contains(&port) && e.net.contains(src))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let a = Allowlist::parse("10.0.0.9\n10.0.1.0/24 161,162\n").unwrap();
        assert!(a.host_allowed("10.0.0.9".parse().unwrap()));
        assert!(!a.host_allowed("10.0.1.5".parse().unwrap()));
        assert!(a.flow_allowed("10.0.1.5".parse().unwrap(), 161));
        assert!(!a.flow_allowed("10.0.1.5".parse().unwrap(), 22));
        assert!(Allowlist::parse("10.0.0.9 http").is_err());
    }
}
