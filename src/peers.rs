//! Peer groups: each host is also scored against hosts like it.
//!
//! A host's group is its role: `external` (outside `--internal`), `server`
//! (an internal host that receives more flows than it starts: it mostly
//! answers) or `workstation` (any other internal host). `--roles FILE`
//! names a group for addresses and networks (`10.0.5.0/24 server`; the
//! longest prefix wins; a network given two roles is refused; any name of
//! letters, digits, `.`, `_` and `-`).
//!
//! Each group with enough training hosts to calibrate the budget on (at
//! least one host in the budget: 1 / budget hosts, 100 at 1%, and never
//! under [`MIN_GROUP_HOSTS`]; see [`min_group_hosts`]) gets a forest of its
//! own, grown on its training hosts' windows (scaled as the whole model
//! scales them) and cross-fitted like the whole model, and a threshold from
//! the same budget. A window is above the threshold when it
//! is above the whole population's and its group's: the peers veto what
//! their role explains (a busy file server among internet clients), and
//! the budget still bounds what is flagged. A host of a smaller group, or
//! of a group the model has no forest for, is judged against the whole
//! population only, and the outputs say so.

use std::net::IpAddr;
use std::path::Path;

use anyhow::Result;

use crate::lists::{lines, parse_file};
use crate::net::Cidr;

/// Internal hosts that mostly start flows.
pub const WORKSTATION: &str = "workstation";
/// Internal hosts that mostly answer.
pub const SERVER: &str = "server";
/// Hosts outside the network.
pub const EXTERNAL: &str = "external";

/// The fewest training hosts a group is ever trained on.
pub const MIN_GROUP_HOSTS: usize = 10;

/// The fewest training hosts a group needs for its own forest at this
/// budget (the share of training hosts left above the threshold; `None`
/// for a fixed threshold): enough that the budget leaves at least one of
/// them above it. In a smaller group the threshold is its most unusual
/// host's score, which vetoes whatever is less unusual than that one host:
/// with 3 hosts a group missed a brute-forcer and a lateral mover that the
/// whole population catches (docs/monitoring.md).
pub fn min_group_hosts(budget: Option<f64>) -> usize {
    let per_budget = match budget {
        Some(c) if c > 0.0 => (1.0 / c - 1e-9).ceil().min(1e9) as usize,
        _ => 100,
    };
    per_budget.max(MIN_GROUP_HOSTS)
}

/// How many times a smaller group's training rows are repeated at most
/// (`--peer-balance`), by default: not at all. Measured over 25 seeds,
/// 3 ranks the full synthetic day's brute-forcer second to fourth instead
/// of up to eighth, but makes the hard day's modest lateral mover look
/// more like the workstations it now knows better: `watch` alerts it 75
/// minutes after its first lateral flow instead of 30 (docs/method.md).
pub const DEFAULT_BALANCE: usize = 1;

/// The longest group name accepted in `--roles`.
const MAX_NAME: usize = 40;

/// What the role is told from.
#[derive(Debug, Clone, Copy)]
pub struct RoleFacts {
    /// The host.
    pub ip: IpAddr,
    /// Whether it is inside `--internal`.
    pub internal: bool,
    /// Flows the host started.
    pub flows: u64,
    /// Flows other hosts started to it (0 when unknown).
    pub inbound: u64,
}

/// The roles named in a `--roles` file.
///
/// Indexed by prefix length (longest first), each a map from the network to
/// its role, so a lookup costs one hash per distinct prefix length, not one
/// comparison per line (an asset inventory has a line per server).
#[derive(Debug, Clone, Default)]
pub struct Roles {
    /// Each network's role and the line that named it first.
    nets: crate::net::CidrMap<(String, usize)>,
}

impl Roles {
    /// Reads a `--roles` file.
    pub fn from_file(path: &Path) -> Result<Roles> {
        parse_file(path, Roles::parse)
    }

    /// One `NETWORK ROLE` per line (space, tab or comma between them); a
    /// network named twice must have the same role both times.
    pub fn parse(text: &str) -> Result<Roles> {
        let mut nets = crate::net::CidrMap::default();
        for (n, line) in lines(text) {
            let mut parts = line
                .split([' ', '\t', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty());
            let (Some(net), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
                anyhow::bail!(
                    "line {n}: expected a network and a role (e.g. '10.0.5.0/24 server'), got '{}'",
                    crate::util::text::printable(line)
                );
            };
            let cidr: Cidr = net.parse().map_err(|e| anyhow::anyhow!("line {n}: {e}"))?;
            anyhow::ensure!(
                valid_name(name),
                "line {n}: role '{}' must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-'",
                crate::util::text::printable(name)
            );
            let name = name.to_ascii_lowercase();
            // One network however written (10.0.5.9/24 is 10.0.5.0/24).
            let (role, line) = nets.entry(cidr, || (name.clone(), n));
            anyhow::ensure!(
                *role == name,
                "line {n}: {net} is '{role}' on line {line} and '{name}' here; give a network one role",
                net = crate::util::text::printable(net),
            );
        }
        Ok(Roles { nets })
    }

    /// The host's group: the longest `--roles` prefix covering it, else
    /// from its traffic.
    pub fn role_of(&self, f: RoleFacts) -> String {
        self.role(f).to_string()
    }

    /// [`Roles::role_of`], borrowed.
    pub fn role(&self, f: RoleFacts) -> &str {
        self.nets
            .matches(f.ip)
            .next()
            .map_or_else(|| from_traffic(f), |(role, _)| role.as_str())
    }
}

/// Training rows with each peer group weighed closer to the largest one:
/// each row of a group repeated `largest / its rows` times, at most
/// `cap` (the forests' subsamples draw from the repeated list), in the
/// order given. A population of 1,500 internet hosts and a dozen
/// workstations otherwise teaches the forest that an ordinary
/// workstation window is rare. `cap` 1, or one group, leaves `rows` as
/// they are.
pub fn balance<'a>(rows: &[usize], group_of: impl Fn(usize) -> &'a str, cap: usize) -> Vec<usize> {
    let mut count: std::collections::HashMap<&str, usize> = Default::default();
    for &r in rows {
        *count.entry(group_of(r)).or_default() += 1;
    }
    let largest = count.values().copied().max().unwrap_or(0);
    if cap <= 1 || count.len() < 2 {
        return rows.to_vec();
    }
    let mut out = Vec::with_capacity(rows.len());
    for &r in rows {
        let k = (largest / count[group_of(r)]).clamp(1, cap);
        out.extend(std::iter::repeat_n(r, k));
    }
    out
}

/// The role the traffic gives: outside, mostly answering, or other.
pub fn from_traffic(f: RoleFacts) -> &'static str {
    if !f.internal {
        EXTERNAL
    } else if f.inbound > f.flows {
        SERVER
    } else {
        WORKSTATION
    }
}

/// Whether `name` can name a group.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(ip: &str, internal: bool, flows: u64, inbound: u64) -> RoleFacts {
        RoleFacts {
            ip: ip.parse().unwrap(),
            internal,
            flows,
            inbound,
        }
    }

    #[test]
    fn a_group_holds_at_least_one_host_of_the_budget() {
        assert_eq!(min_group_hosts(Some(0.01)), 100);
        assert_eq!(min_group_hosts(Some(0.05)), 20);
        assert_eq!(min_group_hosts(Some(0.5)), MIN_GROUP_HOSTS);
        assert_eq!(min_group_hosts(None), 100);
    }

    #[test]
    fn small_groups_are_repeated_up_to_the_cap() {
        let group = |r: usize| if r < 2 { "workstation" } else { EXTERNAL };
        let rows: Vec<usize> = (0..12).collect();
        // 10 external rows, 2 workstation rows: 5x, capped at 3.
        let b = balance(&rows, group, 3);
        assert_eq!(&b[..7], &[0, 0, 0, 1, 1, 1, 2]);
        assert_eq!(b.len(), 3 * 2 + 10);
        assert_eq!(balance(&rows, group, 10).len(), 5 * 2 + 10);
        assert_eq!(balance(&rows, group, 1), rows);
        assert_eq!(balance(&rows[2..], group, 3), rows[2..].to_vec());
    }

    #[test]
    fn traffic_tells_servers_from_workstations() {
        let none = Roles::default();
        assert_eq!(none.role_of(facts("8.8.8.8", false, 5, 0)), EXTERNAL);
        assert_eq!(none.role_of(facts("10.0.0.2", true, 5, 900)), SERVER);
        assert_eq!(none.role_of(facts("10.0.0.3", true, 900, 5)), WORKSTATION);
        assert_eq!(none.role_of(facts("10.0.0.4", true, 5, 5)), WORKSTATION);
    }

    #[test]
    fn the_longest_prefix_wins_and_names_are_checked() {
        let r = Roles::parse("10.0.0.0/8 workstation\n10.0.5.0/24, Jump-Hosts # admins\n").unwrap();
        assert_eq!(r.role_of(facts("10.0.5.7", true, 900, 0)), "jump-hosts");
        assert_eq!(r.role_of(facts("10.0.6.7", true, 1, 900)), WORKSTATION);
        assert_eq!(r.role_of(facts("8.8.8.8", false, 1, 0)), EXTERNAL);
        // The same network twice with one role; a /32 inside a /24.
        let r = Roles::parse(
            "10.0.5.0/24 b\n10.0.5.0/24 B\n10.0.5.9 c\nfd00::/8 v6\n2001:db8::/64 v6b\n",
        )
        .unwrap();
        assert_eq!(r.role_of(facts("2001:db8::7", true, 1, 0)), "v6b");
        assert_eq!(r.role_of(facts("10.0.5.7", true, 1, 0)), "b");
        // With two roles it is refused, both lines named, however the
        // network is written.
        let e = Roles::parse("# x\n10.0.5.0/24 a\n10.0.5.9 c\n10.0.5.0/24 b\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "line 4: 10.0.5.0/24 is 'a' on line 2 and 'b' here; give a network one role"
        );
        let e = Roles::parse("10.0.5.0/24 a\n10.0.5.9/24 b\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 2: 10.0.5.9/24 is 'a' on line 1"), "{e}");
        assert_eq!(r.role_of(facts("10.0.5.9", true, 1, 0)), "c");
        assert_eq!(r.role_of(facts("fd00::1", true, 1, 0)), "v6");
        assert_eq!(r.role_of(facts("10.0.6.1", true, 1, 0)), WORKSTATION);
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/8 a b",
            "10.0.0.0/33 server",
            "10.0.0.1 <script>",
        ] {
            let e = Roles::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("line 1: "), "{bad}: {e}");
        }
    }
}
