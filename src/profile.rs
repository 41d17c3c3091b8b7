//! One behaviour profile per source host, built in a single pass.
//!
//! A profile keeps counters and the sets of distinct destinations and
//! ports, so memory grows with the number of hosts and distinct
//! (host, destination) pairs, never with the number of rows. Features are
//! computed from profiles in [`crate::features`]; adding a feature means
//! adding state here (if it needs any) and a definition there, without
//! touching the reader or the forest.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::flows::{Flow, is_benign_label};

/// Everything latmove remembers about one source host.
#[derive(Debug, Clone)]
pub struct HostProfile {
    pub ip: IpAddr,
    /// Flows this host was the source of.
    pub flows: u64,
    pub dst_ips: HashSet<IpAddr>,
    pub dst_ports: HashSet<u16>,
    /// Sum and count of the durations that were present and valid (µs).
    pub duration_sum_us: f64,
    pub duration_count: u64,
    pub first_seen: Option<f64>,
    pub last_seen: Option<f64>,
    /// Flows with a label, and those whose label is not BENIGN.
    pub labelled_flows: u64,
    pub attack_flows: u64,
    /// Non-benign labels seen on this host's flows: (label id, count).
    pub attack_labels: Vec<(u32, u64)>,
}

impl HostProfile {
    fn new(ip: IpAddr) -> HostProfile {
        HostProfile {
            ip,
            flows: 0,
            dst_ips: HashSet::new(),
            dst_ports: HashSet::new(),
            duration_sum_us: 0.0,
            duration_count: 0,
            first_seen: None,
            last_seen: None,
            labelled_flows: 0,
            attack_flows: 0,
            attack_labels: Vec::new(),
        }
    }

    /// Mean flow duration in microseconds (0 when no duration was valid).
    pub fn mean_duration_us(&self) -> f64 {
        if self.duration_count == 0 {
            0.0
        } else {
            self.duration_sum_us / self.duration_count as f64
        }
    }

    /// The ground truth by the simple rule: any non-BENIGN flow makes the
    /// host an attacker. `None` when none of its flows carried a label.
    pub fn is_attack(&self) -> Option<bool> {
        (self.labelled_flows > 0).then_some(self.attack_flows > 0)
    }
}

/// Builds profiles from a stream of flows.
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    hosts: HashMap<IpAddr, HostProfile>,
    labels: Vec<String>,
    label_ids: HashMap<Vec<u8>, u32>,
}

impl ProfileBuilder {
    pub fn new() -> ProfileBuilder {
        ProfileBuilder::default()
    }

    /// Adds one flow to its source host's profile.
    pub fn add(&mut self, flow: &Flow<'_>) {
        let host = self
            .hosts
            .entry(flow.src_ip)
            .or_insert_with(|| HostProfile::new(flow.src_ip));
        host.flows += 1;
        host.dst_ips.insert(flow.dst_ip);
        host.dst_ports.insert(flow.dst_port);
        if let Some(d) = flow.duration_us {
            host.duration_sum_us += d;
            host.duration_count += 1;
        }
        if let Some(t) = flow.timestamp {
            host.first_seen = Some(host.first_seen.map_or(t, |f| f.min(t)));
            host.last_seen = Some(host.last_seen.map_or(t, |l| l.max(t)));
        }
        if let Some(label) = flow.label {
            host.labelled_flows += 1;
            if !is_benign_label(label) {
                host.attack_flows += 1;
                let id = match self.label_ids.get(label) {
                    Some(id) => *id,
                    None => {
                        let id = self.labels.len() as u32;
                        self.labels
                            .push(String::from_utf8_lossy(label).into_owned());
                        self.label_ids.insert(label.to_vec(), id);
                        id
                    }
                };
                match host.attack_labels.iter_mut().find(|(l, _)| *l == id) {
                    Some((_, n)) => *n += 1,
                    None => host.attack_labels.push((id, 1)),
                }
            }
        }
    }

    /// Finishes: profiles sorted by IP, so every later step is deterministic.
    pub fn finish(self) -> Profiles {
        let mut hosts: Vec<HostProfile> = self.hosts.into_values().collect();
        hosts.sort_by_key(|h| h.ip);
        Profiles {
            hosts,
            labels: self.labels,
        }
    }
}

/// All host profiles of a run, sorted by IP.
#[derive(Debug, Clone)]
pub struct Profiles {
    pub hosts: Vec<HostProfile>,
    /// Label texts (lossily decoded), indexed by the ids in `attack_labels`.
    pub labels: Vec<String>,
}

impl Profiles {
    /// The non-benign labels of one host, most frequent first.
    pub fn attack_labels_of(&self, host: &HostProfile) -> Vec<String> {
        let mut l = host.attack_labels.clone();
        l.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        l.into_iter()
            .map(|(id, _)| self.labels[id as usize].clone())
            .collect()
    }
}
