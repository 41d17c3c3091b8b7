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

/// Known scanners, backup servers, pollers: looked up by address with one
/// hash per distinct prefix length (a flow's source is looked up for every
/// flow), however many lines.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// Networks allowed whole.
    hosts: crate::net::CidrMap<()>,
    /// Networks allowed on some ports.
    ports: crate::net::CidrMap<Vec<u16>>,
}

impl Allowlist {
    pub fn from_file(path: &Path) -> Result<Allowlist> {
        parse_file(path, Allowlist::parse)
    }

    pub fn parse(text: &str) -> Result<Allowlist> {
        let mut list = Allowlist::default();
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
            if ports.is_empty() {
                list.hosts.entry(net, || ());
            } else {
                list.ports.entry(net, Vec::new).extend(ports);
            }
        }
        Ok(list)
    }

    /// The whole host is allowlisted.
    pub fn host_allowed(&self, ip: IpAddr) -> bool {
        self.hosts.matches(ip).next().is_some()
    }

    /// Flows from `src` to `port` are allowlisted.
    pub fn flow_allowed(&self, src: IpAddr, port: u16) -> bool {
        !self.ports.is_empty() && self.ports.matches(src).any(|p| p.contains(&port))
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

    /// Every line counts, not only the longest prefix: a /32 with ports
    /// inside a /24 with others, both lines of one network merged; a v4
    /// address never matches a v6 network.
    #[test]
    fn every_covering_line_counts() {
        let a = Allowlist::parse(
            "10.0.1.0/24 161\n10.0.1.5 22\n10.0.1.5 23\n2001:db8::/64 161\n10.0.2.0/24\n",
        )
        .unwrap();
        let ip = |s: &str| s.parse().unwrap();
        for port in [161, 22, 23] {
            assert!(a.flow_allowed(ip("10.0.1.5"), port), "{port}");
        }
        assert!(!a.flow_allowed(ip("10.0.1.6"), 22));
        assert!(a.flow_allowed(ip("2001:db8::9"), 161));
        assert!(!a.flow_allowed(ip("32.1.13.184"), 161));
        assert!(a.host_allowed(ip("10.0.2.77")) && !a.host_allowed(ip("10.0.1.5")));
    }
}
