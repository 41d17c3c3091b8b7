//! The feature table: named columns computed from host profiles.
//!
//! Every feature is a [`FeatureDef`]: a name (the CSV column), a one-line
//! description (used in the README and charts) and a function of a
//! [`HostProfile`]. The forest only sees the resulting matrix, so new
//! features are added here alone.

use ndarray::Array2;

use crate::net::is_sensitive_port;
use crate::profile::{HostProfile, pair_dst, pair_port};

/// One named feature.
#[derive(Clone, Copy)]
pub struct FeatureDef {
    /// The column name in the outputs.
    pub name: &'static str,
    /// What it measures, in words.
    pub description: &'static str,
    /// The behaviour family (reach, ports, failure, volume, repetition):
    /// with `--feature-choice family` the forest gives each family an equal
    /// share of its splits.
    pub family: &'static str,
    /// Computes it from a host's facts.
    pub compute: fn(&Facts) -> f64,
    /// For a mean per flow: how many flows it is the mean of. Such a mean
    /// is pulled toward the training median before scoring when it rests
    /// on few flows (see [`FeatureTable::shrunk_means`]).
    pub support: Option<fn(&HostProfile) -> u64>,
}

/// What the features read: the profile, and what several of them derive
/// from its (destination, port) pairs, computed once per row.
pub struct Facts<'a> {
    /// The profile.
    pub h: &'a HostProfile,
    /// Distinct destinations.
    pub dsts: usize,
    /// Distinct destination ports, ascending.
    pub ports: Vec<u16>,
    /// Most distinct ports on one destination (vertical scan).
    pub max_ports_one_host: usize,
    /// Most distinct destinations on one port (horizontal sweep).
    pub max_hosts_one_port: usize,
}

impl<'a> Facts<'a> {
    /// The facts of a profile.
    pub fn of(h: &'a HostProfile) -> Facts<'a> {
        // Pairs sorted by key are grouped by destination (the key's high
        // bits); their ports sorted are grouped by port.
        let mut keys: Vec<u64> = h.pairs.iter().copied().collect();
        keys.sort_unstable();
        let (dsts, max_ports_one_host) = groups(keys.iter().map(|k| pair_dst(*k)));
        let mut ports: Vec<u16> = keys.iter().map(|k| pair_port(*k)).collect();
        ports.sort_unstable();
        let (_, max_hosts_one_port) = groups(ports.iter().copied());
        ports.dedup();
        Facts {
            h,
            dsts,
            ports,
            max_ports_one_host,
            max_hosts_one_port,
        }
    }
}

/// For sorted keys: how many distinct ones, and the longest run of one.
fn groups<T: PartialEq>(sorted: impl Iterator<Item = T>) -> (usize, usize) {
    let (mut distinct, mut best, mut run) = (0usize, 0usize, 0usize);
    let mut prev: Option<T> = None;
    for k in sorted {
        if prev.as_ref() == Some(&k) {
            run += 1;
        } else {
            distinct += 1;
            run = 1;
        }
        best = best.max(run);
        prev = Some(k);
    }
    (distinct, best)
}

impl std::fmt::Debug for FeatureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The seed's four features.
pub const SEED_FEATURES: &[FeatureDef] = &[
    FeatureDef {
        name: "unique_dst_ips",
        description: "distinct destination IPs contacted",
        family: "reach",
        compute: |f| f.dsts as f64,
        support: None,
    },
    FeatureDef {
        name: "unique_dst_ports",
        description: "distinct destination ports contacted",
        family: "ports",
        compute: |f| f.ports.len() as f64,
        support: None,
    },
    FeatureDef {
        name: "flow_count",
        description: "flows initiated",
        family: "repetition",
        compute: |f| f.h.flows as f64,
        support: None,
    },
    FeatureDef {
        name: "mean_duration_us",
        description: "mean flow duration (microseconds)",
        family: "volume",
        compute: |f| f.h.mean_duration_us(),
        support: Some(|h| h.duration_count),
    },
];

/// The full behaviour set (the default): the seed's four plus what
/// rule-based scan detectors and lateral-movement hunting look at. Every
/// count is over the host's re-oriented flows (see `net::is_reply_direction`).
pub const FULL_FEATURES: &[FeatureDef] = &[
    SEED_FEATURES[0],
    SEED_FEATURES[1],
    SEED_FEATURES[2],
    SEED_FEATURES[3],
    FeatureDef {
        name: "internal_dst_ips",
        description: "distinct destinations inside the network",
        family: "reach",
        compute: |f| f.h.internal_dsts.len() as f64,
        support: None,
    },
    FeatureDef {
        name: "external_dst_ips",
        description: "distinct destinations outside the network",
        family: "reach",
        compute: |f| (f.dsts - f.h.internal_dsts.len()) as f64,
        support: None,
    },
    FeatureDef {
        name: "internal_subnets",
        description: "distinct internal /24 subnets touched",
        family: "reach",
        compute: |f| f.h.internal_subnets.len() as f64,
        support: None,
    },
    FeatureDef {
        name: "admin_peers_to_date",
        description: "distinct internal hosts reached on a sensitive service port, from the host's first flow to the end of the window",
        family: "lateral",
        compute: |f| f.h.admin_peers_so_far() as f64,
        support: None,
    },
    FeatureDef {
        name: "unanswered_share",
        description: "share of flows with no reply packet or a reset",
        family: "failure",
        compute: |f| ratio(f.h.unanswered, f.h.reply_known),
        support: None,
    },
    FeatureDef {
        name: "tiny_flow_share",
        description: "share of one-packet or zero-payload flows",
        family: "failure",
        compute: |f| ratio(f.h.tiny_flows, f.h.volume_known),
        support: None,
    },
    FeatureDef {
        name: "sensitive_ports",
        description: "distinct sensitive service ports (SMB, RDP, SSH, WinRM, RPC, LDAP, Kerberos, VNC, Telnet)",
        family: "ports",
        compute: |f| f.ports.iter().filter(|p| is_sensitive_port(**p)).count() as f64,
        support: None,
    },
    FeatureDef {
        name: "privileged_ports",
        description: "distinct destination ports below 1024",
        family: "ports",
        compute: |f| f.ports.iter().filter(|p| **p < 1024).count() as f64,
        support: None,
    },
    FeatureDef {
        name: "max_hosts_one_port",
        description: "most distinct hosts reached on one port (horizontal sweep)",
        family: "reach",
        compute: |f| f.max_hosts_one_port as f64,
        support: None,
    },
    FeatureDef {
        name: "max_ports_one_host",
        description: "most distinct ports reached on one host (vertical scan)",
        family: "ports",
        compute: |f| f.max_ports_one_host as f64,
        support: None,
    },
    FeatureDef {
        name: "dst_port_entropy",
        description: "entropy of the destination ports over flows (bits)",
        family: "ports",
        compute: |f| {
            // Summed in port order: a hash map's order varies between runs.
            let n = f.h.flows as f64;
            let mut counts: Vec<(u16, u32)> = f.h.port_flows.iter().collect();
            counts.sort_unstable();
            counts
                .iter()
                .map(|(_, c)| {
                    let p = *c as f64 / n;
                    -p * p.log2()
                })
                .sum::<f64>()
        },
        support: None,
    },
    FeatureDef {
        name: "bytes_per_flow",
        description: "mean bytes per flow, both directions",
        family: "volume",
        compute: |f| f.h.bytes_sum / f.h.volume_known.max(1) as f64,
        support: Some(|h| h.volume_known),
    },
    FeatureDef {
        name: "packets_per_flow",
        description: "mean packets per flow, both directions",
        family: "volume",
        compute: |f| f.h.packets_sum / f.h.volume_known.max(1) as f64,
        support: Some(|h| h.volume_known),
    },
    FeatureDef {
        name: "new_dsts_per_active_min",
        description: "distinct destinations per minute with activity",
        family: "reach",
        compute: |f| f.dsts as f64 / f.h.active_minutes.len().max(1) as f64,
        support: None,
    },
    FeatureDef {
        name: "peak_5min_dst_pairs",
        description: "most distinct (host, port) destinations in one 5-minute window",
        family: "reach",
        compute: |f| max_group(f.h.window_service_flows.keys().map(|(w, _, _)| w as u64)),
        support: None,
    },
    FeatureDef {
        name: "peak_5min_flows_one_service",
        description: "most flows to one (host, port) in one 5-minute window (brute force)",
        family: "repetition",
        compute: |f| f.h.window_service_flows.values().max().unwrap_or(0) as f64,
        support: None,
    },
];

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The size of the largest group among keys (how often the most frequent
/// key occurs).
fn max_group(keys: impl Iterator<Item = u64>) -> f64 {
    // Few distinct keys (a window's 5-minute slots) are counted in place;
    // past eight, sorted and grouped.
    let mut counts: [(u64, usize); 8] = [(0, 0); 8];
    let mut distinct = 0;
    let mut rest: Vec<u64> = Vec::new();
    for k in keys {
        if !rest.is_empty() {
            rest.push(k);
        } else if let Some(c) = counts[..distinct].iter_mut().find(|c| c.0 == k) {
            c.1 += 1;
        } else if distinct < counts.len() {
            counts[distinct] = (k, 1);
            distinct += 1;
        } else {
            rest.extend(counts.iter().flat_map(|&(k, n)| std::iter::repeat_n(k, n)));
            rest.push(k);
        }
    }
    if rest.is_empty() {
        return counts[..distinct].iter().map(|c| c.1).max().unwrap_or(0) as f64;
    }
    rest.sort_unstable();
    groups(rest.into_iter()).1 as f64
}

/// A feature set by name: `seed` or `full`.
pub fn feature_set(name: &str) -> Option<&'static [FeatureDef]> {
    match name {
        "seed" => Some(SEED_FEATURES),
        "full" => Some(FULL_FEATURES),
        _ => None,
    }
}

/// Hosts x features.
#[derive(Debug, Clone)]
pub struct FeatureTable {
    /// The features, in column order.
    pub defs: Vec<FeatureDef>,
    /// One row per host, one column per feature; always finite.
    pub values: Array2<f64>,
    /// One row per host, one column per feature with a
    /// [`FeatureDef::support`] (in column order): the flows behind it,
    /// taken while the profile is at hand (see [`FeatureTable::shrunk_means`]).
    support: Array2<u64>,
}

impl FeatureTable {
    /// Computes `defs` for every profile (rows in the profiles' order).
    /// Non-finite results are replaced by 0 so they never reach the model.
    pub fn build(profiles: &[&HostProfile], defs: &[FeatureDef]) -> FeatureTable {
        FeatureTable::build_threads(profiles, defs, 1)
    }

    /// [`FeatureTable::build`] on `threads` threads (contiguous blocks of
    /// rows; the values do not depend on the count).
    pub fn build_threads(
        profiles: &[&HostProfile],
        defs: &[FeatureDef],
        threads: usize,
    ) -> FeatureTable {
        let mut values = Array2::zeros((profiles.len(), defs.len()));
        let supported: Vec<fn(&HostProfile) -> u64> =
            defs.iter().filter_map(|d| d.support).collect();
        let mut support = Array2::zeros((profiles.len(), supported.len()));
        let fill = |(mut rows, mut support): (
            ndarray::ArrayViewMut2<'_, f64>,
            ndarray::ArrayViewMut2<'_, u64>,
        ),
                    profiles: &[&HostProfile]| {
            for ((mut row, mut n), p) in rows
                .outer_iter_mut()
                .zip(support.outer_iter_mut())
                .zip(profiles)
            {
                let facts = Facts::of(p);
                for (cell, d) in row.iter_mut().zip(defs) {
                    let v = (d.compute)(&facts);
                    *cell = if v.is_finite() { v } else { 0.0 };
                }
                for (n, f) in n.iter_mut().zip(&supported) {
                    *n = f(p);
                }
            }
        };
        if threads <= 1 || profiles.len() < 2 * 1024 {
            fill((values.view_mut(), support.view_mut()), profiles);
        } else {
            // Blocks of rows handed to whichever thread is free: a few busy
            // hosts' windows cost far more than the rest.
            const BLOCK: usize = 256;
            let blocks = values
                .axis_chunks_iter_mut(ndarray::Axis(0), BLOCK)
                .zip(support.axis_chunks_iter_mut(ndarray::Axis(0), BLOCK))
                .zip(profiles.chunks(BLOCK));
            crate::util::threads::for_each_shared(blocks, threads, |(rows, ps)| fill(rows, ps));
        }
        FeatureTable {
            defs: defs.to_vec(),
            values,
            support,
        }
    }

    /// A table from its values and, per row, the flows behind each
    /// feature with a [`FeatureDef::support`] (in column order): a feature
    /// table read from a file.
    pub fn from_parts(
        defs: &[FeatureDef],
        values: Array2<f64>,
        support: Array2<u64>,
    ) -> FeatureTable {
        assert_eq!(values.dim(), (support.nrows(), defs.len()));
        assert_eq!(
            support.ncols(),
            defs.iter().filter(|d| d.support.is_some()).count()
        );
        FeatureTable {
            defs: defs.to_vec(),
            values,
            support,
        }
    }

    /// The values the model sees: each mean per flow (a feature with a
    /// [`FeatureDef::support`]) of an entity with `n` flows behind it is
    /// pulled toward the training median by the weight `n / (n + prior)`:
    /// `median + (value - median) * n / (n + prior)`. A mean over a
    /// handful of flows is weak evidence (one large download makes a quiet
    /// window's bytes per flow unique), one over hundreds is kept nearly as
    /// it is. `prior` 0 returns the values unchanged.
    pub fn shrunk_means(&self, medians: &[f64], prior: f64) -> Array2<f64> {
        let mut out = self.values.clone();
        if prior <= 0.0 {
            return out;
        }
        let columns: Vec<usize> = (0..self.defs.len())
            .filter(|&j| self.defs[j].support.is_some())
            .collect();
        for (mut row, support) in out.outer_iter_mut().zip(self.support.outer_iter()) {
            for (&j, &n) in columns.iter().zip(support) {
                let n = n as f64;
                let v = &mut row[j];
                *v = medians[j] + (*v - medians[j]) * (n / (n + prior));
            }
        }
        out
    }

    /// A family number per column (families numbered in order of first
    /// appearance), for [`crate::model::forest::IsolationForestParams::feature_families`].
    pub fn families(defs: &[FeatureDef]) -> Vec<u32> {
        let mut seen: Vec<&str> = Vec::new();
        defs.iter()
            .map(|d| {
                if let Some(i) = seen.iter().position(|f| *f == d.family) {
                    i as u32
                } else {
                    seen.push(d.family);
                    (seen.len() - 1) as u32
                }
            })
            .collect()
    }

    /// The feature names, in column order.
    pub fn names(&self) -> Vec<&'static str> {
        self.defs.iter().map(|d| d.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{groups, max_group};

    /// The in-place count gives what sorting and grouping gives, with few
    /// and with many distinct keys (past the eight counted in place).
    #[test]
    fn max_group_equals_sorting_and_grouping() {
        let mut seed = 3u64;
        for len in 0..200usize {
            for spread in [1u64, 3, 8, 9, 40, 1000] {
                let keys: Vec<u64> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        (seed >> 33) % spread
                    })
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                let want = groups(sorted.into_iter()).1 as f64;
                assert_eq!(max_group(keys.iter().copied()), want, "{keys:?}");
            }
        }
    }
}
