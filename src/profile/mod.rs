//! One behaviour profile per source host, built in a single pass.
//!
//! A profile keeps counters and the sets of distinct destinations and
//! ports, so memory grows with the number of hosts and distinct
//! (host, destination) pairs, never with the number of rows. Features are
//! computed from profiles in [`crate::profile::features`]; adding a feature means
//! adding state here (if it needs any) and a definition there, without
//! touching the reader or the forest.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;

pub mod features;
pub mod read;
pub mod sets;
pub mod truth;

use crate::flows::record::{FlowRecord, LabelTable};
use crate::flows::{Flow, Reply};
use crate::net::{self, Network};
use sets::{FlatCounts, FlatSet};

/// Width of the time windows behind the `peak_5min_*` features (seconds).
pub const PEAK_WINDOW_SECS: f64 = 300.0;

/// How flows are turned into profiles.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Re-orient reply-direction flows to their initiator
    /// (see [`net::is_reply_direction`]).
    pub orient: bool,
    /// The network's inside (`--internal`).
    pub network: Network,
    /// Also build one profile per host and time window of this many
    /// seconds (`--window`).
    pub window_secs: Option<u32>,
    /// Flows to drop before profiling (allowlist entries with ports).
    pub allow: crate::allow::Allowlist,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        ProfileOptions {
            orient: true,
            network: Network::default(),
            window_secs: None,
            allow: crate::allow::Allowlist::default(),
        }
    }
}

/// Everything latmove remembers about one source host (or one host in one
/// window). With windows, a host's own profile counts only its identity
/// (flows, first and last seen, labels) for the flows that fell into a
/// window; their behaviour is in the window profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct HostProfile {
    /// The source host.
    pub ip: IpAddr,
    /// Flows this host was the source of.
    pub flows: u64,
    /// Flows to this host from others (as their destination), counted for
    /// internal hosts on the host's own profile only: with `flows`, what
    /// tells a server (it mostly answers) from a workstation.
    pub inbound_flows: u64,
    /// Whether this host is inside the network (`--internal`).
    pub internal: bool,
    /// Destinations inside the network (as [`DstId`]s), and their /24
    /// subnets.
    pub internal_dsts: FlatSet<DstId>,
    /// Internal destinations reached on a sensitive service port
    /// (`net::SENSITIVE_PORTS`: SMB, RDP, WinRM, SSH...).
    pub admin_peers: FlatSet<IpAddr>,
    /// The (peer, port) pairs behind `admin_peers`: what names the service
    /// a spread used.
    pub admin_pairs: FlatSet<(IpAddr, u16)>,
    /// For a window's profile: distinct `admin_peers` of the host from its
    /// first window up to this one (set by [`ProfileBuilder::finish`] or by
    /// `watch`); `None` for a whole host, whose own set is the answer.
    pub admin_peers_to_date: Option<usize>,
    /// Internal /24 (IPv4) or /64 (IPv6) subnets reached.
    pub internal_subnets: FlatSet<u128>,
    /// Distinct (destination, port) pairs, packed by [`pair_key`].
    pub pairs: FlatSet<u64>,
    /// Flows per destination port.
    pub port_flows: FlatCounts<u16>,
    /// Flows whose reply packet count is known, and those that got no
    /// reply or were reset.
    pub reply_known: u64,
    /// Flows the responder did not answer.
    pub unanswered: u64,
    /// Flows of at most one packet or without payload.
    pub tiny_flows: u64,
    /// Sums over flows whose counts are known.
    pub bytes_sum: f64,
    /// Packets over the flows with volumes.
    pub packets_sum: f64,
    /// Flows whose packets and bytes are known.
    pub volume_known: u64,
    /// Flows re-oriented to this host (they were recorded as replies).
    pub reoriented: u64,
    /// Minutes with at least one flow (minutes since the epoch).
    pub active_minutes: FlatSet<i32>,
    /// The last minute added to `active_minutes` (flows come roughly in
    /// time order, so most need no lookup).
    last_minute: LastMinute,
    /// Distinct (5-minute window, destination, port) triples, and flows per
    /// (window, destination, port).
    pub window_service_flows: FlatCounts<(i32, DstId, u16)>,
    /// (5-minute window, destination, port) of flows that got no reply or
    /// a reset: what Zeek-style scan rules count.
    pub failed_triples: FlatSet<(i32, DstId, u16)>,
    /// Sum and count of the durations that were present and valid (µs).
    pub duration_sum_us: f64,
    /// Durations counted in `duration_sum_us`.
    pub duration_count: u64,
    /// First flow start (seconds, file time).
    pub first_seen: Option<f64>,
    /// Last flow start.
    pub last_seen: Option<f64>,
    /// Flows with a label, and those whose label is not BENIGN.
    pub labelled_flows: u64,
    /// Flows whose label is not BENIGN.
    pub attack_flows: u64,
    /// Non-benign labels seen on this host's flows: (label id, count).
    pub attack_labels: Vec<(u32, u64)>,
}

/// A cache in front of [`HostProfile::active_minutes`] (`i32::MIN` before
/// any minute): not part of what a profile is, so profiles that hold the
/// same minutes compare equal whatever minute came last.
#[derive(Debug, Clone, Copy)]
struct LastMinute(i32);

impl PartialEq for LastMinute {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl HostProfile {
    fn new(ip: IpAddr) -> HostProfile {
        HostProfile {
            ip,
            flows: 0,
            inbound_flows: 0,
            internal: false,
            internal_dsts: FlatSet::default(),
            admin_peers: FlatSet::default(),
            admin_pairs: FlatSet::default(),
            admin_peers_to_date: None,
            internal_subnets: FlatSet::default(),
            pairs: FlatSet::default(),
            port_flows: FlatCounts::default(),
            reply_known: 0,
            unanswered: 0,
            tiny_flows: 0,
            bytes_sum: 0.0,
            packets_sum: 0.0,
            volume_known: 0,
            reoriented: 0,
            active_minutes: FlatSet::default(),
            last_minute: LastMinute(i32::MIN),
            window_service_flows: FlatCounts::default(),
            failed_triples: FlatSet::default(),
            duration_sum_us: 0.0,
            duration_count: 0,
            first_seen: None,
            last_seen: None,
            labelled_flows: 0,
            attack_flows: 0,
            attack_labels: Vec::new(),
        }
    }

    /// The number of distinct destinations (derived from `pairs`).
    pub fn distinct_dsts(&self) -> usize {
        let mut dsts: Vec<DstId> = self.pairs.iter().map(|k| pair_dst(*k)).collect();
        dsts.sort_unstable();
        dsts.dedup();
        dsts.len()
    }

    /// Distinct destination ports, ascending (derived from `pairs`).
    pub fn dst_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.pairs.iter().map(|k| pair_port(*k)).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Distinct internal hosts reached on a sensitive port up to the end of
    /// this profile's window (the whole host: all of them).
    pub fn admin_peers_so_far(&self) -> usize {
        self.admin_peers_to_date.unwrap_or(self.admin_peers.len())
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

/// A destination IP as a small number: profiles keep these instead of
/// 17-byte addresses (ids are given by one [`ProfileBuilder`] in the order
/// destinations first appear, and mean nothing outside it).
pub type DstId = u32;

/// A (destination, port) pair packed into one integer.
pub fn pair_key(dst: DstId, port: u16) -> u64 {
    (u64::from(dst) << 16) | u64::from(port)
}

/// The destination of a [`pair_key`].
pub fn pair_dst(key: u64) -> DstId {
    (key >> 16) as DstId
}

/// The port of a [`pair_key`].
pub fn pair_port(key: u64) -> u16 {
    key as u16
}

/// Builds profiles from a stream of flows.
#[derive(Debug, Default)]
pub struct ProfileBuilder {
    options: ProfileOptions,
    dst_ids: HashMap<IpAddr, DstId>,
    /// Recent IPv4 destinations and their ids, direct-mapped by address
    /// (`(address, id + 1)`, 0 for an empty slot): most flows go to a
    /// destination seen shortly before, found here without hashing.
    dst_recent: Vec<(u32, u32)>,
    /// Profiles in a vector, found through small index maps: a map holding
    /// the profiles themselves would keep up to twice their size in empty
    /// buckets and copy them all when it grows.
    host_index: HashMap<IpAddr, u32>,
    hosts: Vec<HostProfile>,
    window_index: HashMap<(IpAddr, i64), u32>,
    /// Boxed: a full day has tens of thousands, sorted and merged at the
    /// end, and moving a pointer is cheaper than moving a profile.
    #[expect(
        clippy::vec_box,
        reason = "sorted and merged by moving pointers, not 480-byte profiles"
    )]
    windows: Vec<Box<WindowProfile>>,
    /// Each host's last window (number, index in `windows`): flows come
    /// roughly in time order, so most find their window here.
    last_window: Vec<(i64, u32)>,
    /// The last flow's initiator and its index in `hosts`.
    last_host: Option<(IpAddr, u32)>,
    allowed_flows: u64,
    /// Flows to each internal destination, by its [`DstId`].
    inbound: Vec<u64>,
    labels: LabelTable,
}

impl ProfileBuilder {
    /// A builder with the default options.
    pub fn new() -> ProfileBuilder {
        ProfileBuilder::default()
    }

    /// A builder with `options`.
    pub fn with_options(options: ProfileOptions) -> ProfileBuilder {
        ProfileBuilder {
            options,
            ..ProfileBuilder::default()
        }
    }

    /// Adds one flow to its initiator's profile (and, with windows, to the
    /// profile of the initiator's window).
    pub fn add(&mut self, flow: &Flow<'_>) {
        let r = FlowRecord::new(flow, &mut self.labels);
        self.add_record(&r);
    }

    /// [`ProfileBuilder::add`] unless the flow's initiator is a new host
    /// and `max_hosts` hosts are profiled already: then nothing is kept
    /// (not even its destination) and `false` says so.
    pub fn add_bounded(&mut self, flow: &Flow<'_>, max_hosts: usize) -> bool {
        if self.host_index.len() >= max_hosts {
            let reversed = self.reversed(flow.meta.initiator_known, flow.src_port, flow.dst_port);
            let src = if reversed { flow.dst_ip } else { flow.src_ip };
            if !self.host_index.contains_key(&src) {
                return false;
            }
        }
        self.add(flow);
        true
    }

    /// [`ProfileBuilder::add`] for a flow whose label another table has
    /// resolved; give that table to [`ProfileBuilder::finish_with_labels`].
    pub fn add_record(&mut self, flow: &FlowRecord) {
        if let Some(o) = self.route(flow) {
            self.add_routed(flow, &o);
        }
    }

    /// The first half of [`ProfileBuilder::add_record`]: turns the flow
    /// towards its initiator, drops it when the allowlist covers it
    /// (counting it), and gives its destination an id. Ids depend on the
    /// order of the flows, so this half runs in file order on one thread;
    /// the other half ([`ProfileBuilder::add_routed`]) may run on several
    /// builders, each owning a share of the hosts (see [`Oriented::shard`]).
    pub fn route(&mut self, flow: &FlowRecord) -> Option<Oriented> {
        let reversed = self.reversed(flow.initiator_known(), flow.src_port, flow.dst_port);
        // In a reversed flow the recorded destination opened it.
        let o = Oriented {
            dport: if reversed {
                flow.src_port.unwrap_or(0)
            } else {
                flow.dst_port
            },
            reversed,
            dst_internal: false,
            dst_id: 0,
        };
        let (src, dst) = (o.src(flow), o.dst(flow));
        if self.options.allow.flow_allowed(src, o.dport) {
            self.allowed_flows += 1;
            return None;
        }
        let meta = flow.meta();
        let dst_local = if reversed {
            meta.src_local
        } else {
            meta.dst_local
        };
        let dst_internal = dst_local.unwrap_or_else(|| self.options.network.is_internal(dst));
        let dst_id = self.dst_id(dst);
        if dst_internal {
            let i = dst_id as usize;
            if i >= self.inbound.len() {
                self.inbound.resize(i + 1, 0);
            }
            self.inbound[i] += 1;
        }
        Some(Oriented {
            dst_internal,
            dst_id,
            ..o
        })
    }

    /// One flow as profiling counts it: turned toward its initiator, its
    /// ends placed inside or outside, its answer and volume judged by the
    /// rules the profiles use (what `latmove flows` writes). `None` when
    /// the allowlist drops it.
    pub fn facts(&mut self, flow: &FlowRecord) -> Option<FlowFacts> {
        let o = self.route(flow)?;
        let meta = flow.meta();
        let src_local = if o.reversed {
            meta.dst_local
        } else {
            meta.src_local
        };
        let src = o.src(flow);
        let (out_packets, back_packets) = o.packets(flow);
        let (out_bytes, back_bytes) = if o.reversed {
            (flow.bwd_bytes(), flow.fwd_bytes())
        } else {
            (flow.fwd_bytes(), flow.bwd_bytes())
        };
        Some(FlowFacts {
            ts: flow.timestamp(),
            src,
            dst: o.dst(flow),
            dport: o.dport,
            reoriented: o.reversed,
            answered: answered(flow, back_packets),
            out_packets,
            back_packets,
            out_bytes,
            back_bytes,
            tiny: volume(flow, out_packets, back_packets).map(|v| v.tiny),
            duration_us: flow.duration_us(),
            src_internal: src_local.unwrap_or_else(|| self.options.network.is_internal(src)),
            dst_internal: o.dst_internal,
            label: flow.label,
        })
    }

    /// Flows to each internal destination so far (those with any).
    pub fn inbound_counts(&self) -> Vec<(IpAddr, u64)> {
        self.dst_ids
            .iter()
            .filter_map(|(ip, &id)| {
                let n = self.inbound.get(id as usize).copied().unwrap_or(0);
                (n > 0).then_some((*ip, n))
            })
            .collect()
    }

    /// Flows the allowlist has dropped so far.
    pub fn allowed_flows(&self) -> u64 {
        self.allowed_flows
    }

    /// Whether a flow between these ports is turned toward its initiator
    /// (never when the reader knows the initiator).
    #[inline]
    fn reversed(&self, initiator_known: bool, src_port: Option<u16>, dst_port: u16) -> bool {
        !initiator_known
            && self.options.orient
            && src_port.is_some_and(|sp| net::is_reply_direction(sp, dst_port))
    }

    /// The destination's id: the next free one the first time it is seen.
    #[inline]
    fn dst_id(&mut self, dst: IpAddr) -> DstId {
        const SLOTS: usize = 4096;
        let IpAddr::V4(v4) = dst else {
            let next = self.dst_ids.len() as DstId;
            return *self.dst_ids.entry(dst).or_insert(next);
        };
        if self.dst_recent.is_empty() {
            self.dst_recent = vec![(0, 0); SLOTS];
        }
        let key = u32::from(v4);
        let slot = (key.wrapping_mul(0x9E37_79B1) >> 20) as usize % SLOTS;
        let (k, id) = self.dst_recent[slot];
        if id != 0 && k == key {
            return id - 1;
        }
        let next = self.dst_ids.len() as DstId;
        let id = *self.dst_ids.entry(dst).or_insert(next);
        self.dst_recent[slot] = (key, id.wrapping_add(1));
        id
    }

    /// The second half of [`ProfileBuilder::add_record`]: adds a routed
    /// flow to its initiator's profile (and window).
    pub fn add_routed(&mut self, flow: &FlowRecord, o: &Oriented) {
        let network = &self.options.network;
        let src = o.src(flow);
        let meta = flow.meta();
        let src_local = if o.reversed {
            meta.dst_local
        } else {
            meta.src_local
        };
        let new_profile = |ip: IpAddr| {
            let mut h = HostProfile::new(ip);
            h.internal = src_local.unwrap_or_else(|| network.is_internal(ip));
            h
        };
        let h = match self.last_host {
            Some((ip, h)) if ip == src => h,
            _ => {
                let next = self.hosts.len() as u32;
                let h = *self.host_index.entry(src).or_insert(next);
                if h == next {
                    self.hosts.push(new_profile(src));
                    self.last_window.push((i64::MIN, 0));
                }
                self.last_host = Some((src, h));
                h
            }
        };
        // With windows, a flow that falls into one is profiled there; the
        // host's own profile then only keeps who it is (flows, times,
        // labels), as its behaviour is scored per window. Untimed flows,
        // and every flow without windows, are profiled on the host.
        let windowed = self.options.window_secs.is_some() && flow.timestamp().is_some();
        if windowed {
            apply_identity(&mut self.hosts[h as usize], flow, o);
        } else {
            apply(&mut self.hosts[h as usize], flow, o);
        }
        if let (Some(secs), Some(t)) = (self.options.window_secs, flow.timestamp()) {
            let w = floor_i64(t / f64::from(secs));
            let last = &mut self.last_window[h as usize];
            let i = if last.0 == w {
                last.1
            } else {
                let next = self.windows.len() as u32;
                let i = *self.window_index.entry((src, w)).or_insert(next);
                if i == next {
                    self.windows.push(Box::new(WindowProfile {
                        ip: src,
                        index: w,
                        profile: new_profile(src),
                    }));
                }
                *last = (w, i);
                i
            };
            apply(&mut self.windows[i as usize].profile, flow, o);
        }
    }

    /// Finishes a builder that routed flows to `shards` (builders with the
    /// same options, each given [`ProfileBuilder::add_routed`] the flows of
    /// its share of the hosts, in file order): the same profiles as one
    /// builder given every flow.
    ///
    /// Each shard sorts its profiles on its own thread
    /// ([`ProfileBuilder::into_sorted`]); they are merged here, each moved
    /// once.
    pub fn finish_shards(mut self, shards: Vec<SortedShard>, labels: LabelTable) -> Profiles {
        self.labels = labels;
        // The router's own profiles (none when it only routed) join too.
        let (mut router, own) = self.into_sorted_keep();
        router.allowed_flows = own.allowed_flows;
        let mut hosts = vec![(own.host_keys, own.hosts)];
        let mut windows = vec![(own.window_keys, own.windows)];
        for shard in shards {
            hosts.push((shard.host_keys, shard.hosts));
            windows.push((shard.window_keys, shard.windows));
            router.allowed_flows += shard.allowed_flows;
        }
        let hosts = merge_sorted(hosts);
        let windows = merge_sorted(windows);
        router.finish_sorted(hosts, windows)
    }

    /// This shard's profiles, sorted (hosts by IP, windows by IP and time),
    /// for [`ProfileBuilder::finish_shards`]: done on the shard's thread.
    pub fn into_sorted(self) -> SortedShard {
        self.into_sorted_keep().1
    }

    /// [`ProfileBuilder::into_sorted`], keeping the rest of the builder.
    fn into_sorted_keep(mut self) -> (ProfileBuilder, SortedShard) {
        // Keys are unique, so the order is the one any sort gives.
        let mut hosts = std::mem::take(&mut self.hosts);
        let host_keys = sort_by_unique_key(&mut hosts, |h| h.ip);
        let mut windows = std::mem::take(&mut self.windows);
        let window_keys = sort_by_unique_key(&mut windows, |w| (w.ip, w.index));
        // Here, on the shard's thread: every window of a host is in one
        // shard (shards are by initiator).
        admin_peers_to_date(&mut windows);
        let allowed_flows = std::mem::take(&mut self.allowed_flows);
        (
            self,
            SortedShard {
                hosts,
                host_keys,
                windows,
                window_keys,
                allowed_flows,
            },
        )
    }

    /// [`ProfileBuilder::finish`] with the label table that resolved the
    /// flows given to [`ProfileBuilder::add_record`].
    pub fn finish_with_labels(mut self, labels: LabelTable) -> Profiles {
        self.labels = labels;
        self.finish()
    }

    /// Finishes: profiles sorted by IP (windows by IP, then time), so every
    /// later step is deterministic.
    pub fn finish(self) -> Profiles {
        let (mut builder, sorted) = self.into_sorted_keep();
        builder.allowed_flows = sorted.allowed_flows;
        builder.finish_sorted(sorted.hosts, sorted.windows)
    }

    /// [`ProfileBuilder::finish`] with the profiles sorted.
    #[expect(
        clippy::vec_box,
        reason = "sorted and merged by moving pointers, not 480-byte profiles"
    )]
    fn finish_sorted(
        self,
        mut hosts: Vec<HostProfile>,
        windows: Vec<Box<WindowProfile>>,
    ) -> Profiles {
        for h in hosts.iter_mut().filter(|h| h.internal) {
            if let Some(&id) = self.dst_ids.get(&h.ip) {
                h.inbound_flows = self.inbound.get(id as usize).copied().unwrap_or(0);
            }
        }
        drop((self.host_index, self.window_index, self.dst_ids));
        Profiles {
            hosts,
            windows,
            window_secs: self.options.window_secs,
            allowed_flows: self.allowed_flows,
            labels: self.labels.into_texts(),
        }
    }
}

/// Admin peers to date: a running union over each host's windows in time
/// order (whatever order the flows came in). `windows` are sorted by host,
/// then time, and hold every window of their hosts.
fn admin_peers_to_date(windows: &mut [Box<WindowProfile>]) {
    let mut so_far: HashSet<IpAddr> = HashSet::default();
    let mut current: Option<IpAddr> = None;
    for w in windows {
        if current != Some(w.ip) {
            so_far.clear();
            current = Some(w.ip);
        }
        so_far.extend(w.profile.admin_peers.iter().copied());
        w.profile.admin_peers_to_date = Some(so_far.len());
    }
}

/// A shard's profiles, sorted ([`ProfileBuilder::into_sorted`]).
pub struct SortedShard {
    hosts: Vec<HostProfile>,
    #[expect(
        clippy::vec_box,
        reason = "sorted and merged by moving pointers, not 480-byte profiles"
    )]
    windows: Vec<Box<WindowProfile>>,
    /// Their sort keys, in order (the merge compares these, not the
    /// scattered profiles).
    host_keys: Vec<IpAddr>,
    window_keys: Vec<(IpAddr, i64)>,
    allowed_flows: u64,
}

/// Sorted vectors, each beside its keys (unique across all of them),
/// merged into one, each element moved once.
fn merge_sorted<T, K: Ord>(parts: Vec<(Vec<K>, Vec<T>)>) -> Vec<T> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.1.len()).sum());
    // (keys, elements, position)
    let mut parts: Vec<(Vec<K>, std::vec::IntoIter<T>, usize)> = parts
        .into_iter()
        .map(|(keys, v)| (keys, v.into_iter(), 0))
        .collect();
    loop {
        let mut best: Option<usize> = None;
        for (i, (keys, _, at)) in parts.iter().enumerate() {
            if let Some(k) = keys.get(*at)
                && best.is_none_or(|b| *k < parts[b].0[parts[b].2])
            {
                best = Some(i);
            }
        }
        let Some(i) = best else { return out };
        parts[i].2 += 1;
        out.extend(parts[i].1.next());
    }
}

/// `v` sorted by `key`, unique to each element. Profiles are large (a
/// sort would swap each one many times) and a sorted copy would be fresh
/// memory (page faults), so the keys are sorted with their positions and
/// the profiles permuted in place, cycle by cycle.
/// Returns the keys, sorted.
fn sort_by_unique_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) -> Vec<K> {
    let mut order: Vec<(K, usize)> = v.iter().map(&key).zip(0..).collect();
    order.sort_unstable();
    // `from[i]`: where the element that belongs at `i` is now.
    let (keys, from): (Vec<K>, Vec<usize>) = order.into_iter().unzip();
    let mut placed = vec![false; v.len()];
    for start in 0..v.len() {
        if placed[start] {
            continue;
        }
        // Along the cycle through `start`, each swap puts one element in
        // its place and carries `start`'s element on to the next.
        let mut at = start;
        loop {
            placed[at] = true;
            let src = from[at];
            if src == start {
                break;
            }
            v.swap(at, src);
            at = src;
        }
    }
    keys
}

/// A flow turned towards its initiator (see [`ProfileBuilder::route`]).
#[derive(Debug, Clone, Copy)]
pub struct Oriented {
    /// The destination port as oriented (the addresses are the record's,
    /// swapped when `reversed`: 8 bytes a flow to pass on, not 48).
    dport: u16,
    reversed: bool,
    /// Whether `dst` is inside the network (computed once per flow).
    dst_internal: bool,
    dst_id: DstId,
}

const _: () = assert!(std::mem::size_of::<Oriented>() == 8);

impl Oriented {
    /// The initiator.
    #[inline]
    pub fn src(&self, flow: &FlowRecord) -> IpAddr {
        if self.reversed {
            flow.dst_ip
        } else {
            flow.src_ip
        }
    }

    /// The initiator's peer.
    #[inline]
    pub fn dst(&self, flow: &FlowRecord) -> IpAddr {
        if self.reversed {
            flow.src_ip
        } else {
            flow.dst_ip
        }
    }

    /// Packets the initiator sent, and those it got back.
    fn packets(&self, flow: &FlowRecord) -> (Option<f64>, Option<f64>) {
        if self.reversed {
            (flow.bwd_packets(), flow.fwd_packets())
        } else {
            (flow.fwd_packets(), flow.bwd_packets())
        }
    }

    /// Which of `n` builders profiles this flow's initiator: every flow of
    /// a host goes to the same one.
    pub fn shard(&self, flow: &FlowRecord, n: usize) -> usize {
        let key = match self.src(flow) {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        // Fibonacci hashing of the folded address.
        let folded = (key as u64) ^ ((key >> 64) as u64);
        ((folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % n as u64) as usize
    }
}

/// Adds one oriented flow to a profile: who it is ([`apply_identity`]) and
/// what it did ([`apply_behaviour`]).
fn apply(host: &mut HostProfile, flow: &FlowRecord, o: &Oriented) {
    apply_identity(host, flow, o);
    apply_behaviour(host, flow, o);
}

/// Flow count, first and last seen, labels: what a host's report needs
/// even when its behaviour is profiled per window.
fn apply_identity(host: &mut HostProfile, flow: &FlowRecord, o: &Oriented) {
    host.flows += 1;
    host.reoriented += u64::from(o.reversed);
    if let Some(t) = flow.timestamp() {
        host.first_seen = Some(host.first_seen.map_or(t, |f| f.min(t)));
        host.last_seen = Some(host.last_seen.map_or(t, |l| l.max(t)));
    }
    if flow.label.is_some() {
        host.labelled_flows += 1;
    }
    if let Some(Some(id)) = flow.label {
        host.attack_flows += 1;
        match host.attack_labels.iter_mut().find(|(l, _)| *l == id) {
            Some((_, n)) => *n += 1,
            None => host.attack_labels.push((id, 1)),
        }
    }
}

/// Destinations, ports, replies, volumes, durations, activity: what the
/// features are computed from.
fn apply_behaviour(host: &mut HostProfile, flow: &FlowRecord, o: &Oriented) {
    host.pairs.insert(pair_key(o.dst_id, o.dport));
    host.port_flows.add(o.dport);
    if o.dst_internal {
        host.internal_dsts.insert(o.dst_id);
        host.internal_subnets.insert(net::subnet_key(o.dst(flow)));
        if net::is_sensitive_port(o.dport) {
            host.admin_peers.insert(o.dst(flow));
            host.admin_pairs.insert((o.dst(flow), o.dport));
        }
    }
    let (out_pkts, back_pkts) = o.packets(flow);
    if let Some(answered) = answered(flow, back_pkts) {
        host.reply_known += 1;
        if !answered {
            host.unanswered += 1;
            if let Some(t) = flow.timestamp() {
                let w = floor_i32(t / PEAK_WINDOW_SECS);
                host.failed_triples.insert((w, o.dst_id, o.dport));
            }
        }
    }
    if let Some(v) = volume(flow, out_pkts, back_pkts) {
        host.tiny_flows += u64::from(v.tiny);
        host.packets_sum += v.packets;
        host.bytes_sum += v.bytes;
        host.volume_known += 1;
    }
    if let Some(d) = flow.duration_us() {
        host.duration_sum_us += d;
        host.duration_count += 1;
    }
    if let Some(t) = flow.timestamp() {
        let minute = floor_i32(t / 60.0);
        if minute != host.last_minute.0 {
            host.active_minutes.insert(minute);
            host.last_minute.0 = minute;
        }
        let w = floor_i32(t / PEAK_WINDOW_SECS);
        host.window_service_flows.add((w, o.dst_id, o.dport));
    }
}

/// Whether the responder answered, as the reader stated it or, for a
/// CICFlowMeter row, from the packets back and the resets; `None` when it
/// cannot be told.
#[inline(always)]
fn answered(flow: &FlowRecord, back_pkts: Option<f64>) -> Option<bool> {
    match flow.meta().reply {
        Reply::FromCounts => back_pkts.map(|back| {
            let reset = flow.rst_flags().is_some_and(|r| r > 0.0);
            back != 0.0 && !reset
        }),
        Reply::Answered => Some(true),
        Reply::Unanswered => Some(false),
        Reply::Unknown => None,
    }
}

/// A flow's volume, when its packets both ways are known.
struct Volume {
    /// Packets both ways.
    packets: f64,
    /// Bytes both ways (a missing direction counts 0).
    bytes: f64,
    /// At most one packet, or no payload although the bytes were given.
    tiny: bool,
}

#[inline(always)]
fn volume(flow: &FlowRecord, out_pkts: Option<f64>, back_pkts: Option<f64>) -> Option<Volume> {
    let (out, back) = (out_pkts?, back_pkts?);
    let bytes = flow.fwd_bytes().unwrap_or(0.0) + flow.bwd_bytes().unwrap_or(0.0);
    Some(Volume {
        packets: out + back,
        bytes,
        tiny: out + back <= 1.0 || (bytes == 0.0 && flow.fwd_bytes().is_some()),
    })
}

/// `x.floor() as i32`, saturating alike, without a call to the C
/// library's `floor` (x86-64's baseline has no rounding instruction): the
/// conversion truncates toward zero, one less when that went up.
#[inline(always)]
fn floor_i32(x: f64) -> i32 {
    let i = x as i32;
    if f64::from(i) > x {
        i.saturating_sub(1)
    } else {
        i
    }
}

/// `x.floor() as i64`, as [`floor_i32`].
#[inline(always)]
fn floor_i64(x: f64) -> i64 {
    let i = x as i64;
    if (i as f64) > x {
        i.saturating_sub(1)
    } else {
        i
    }
}

/// One flow as profiling counts it ([`ProfileBuilder::facts`]).
#[derive(Debug, Clone, Copy)]
pub struct FlowFacts {
    /// Flow start (seconds, file time).
    pub ts: Option<f64>,
    /// The initiator.
    pub src: IpAddr,
    /// The responder.
    pub dst: IpAddr,
    /// The responder's port.
    pub dport: u16,
    /// Whether the record was turned around (it was the reply direction).
    pub reoriented: bool,
    /// Whether the responder answered (`None`: cannot be told).
    pub answered: Option<bool>,
    /// Packets the initiator sent, and those it got back.
    pub out_packets: Option<f64>,
    /// Packets back.
    pub back_packets: Option<f64>,
    /// Bytes the initiator sent.
    pub out_bytes: Option<f64>,
    /// Bytes back.
    pub back_bytes: Option<f64>,
    /// At most one packet, or no payload (`None` when the packets are not
    /// known both ways).
    pub tiny: Option<bool>,
    /// Microseconds.
    pub duration_us: Option<f64>,
    /// Whether the initiator is inside the network.
    pub src_internal: bool,
    /// Whether the responder is.
    pub dst_internal: bool,
    /// See [`crate::flows::record::LabelTable::classify`].
    pub label: Option<Option<u32>>,
}

impl FlowFacts {
    /// The number of its `secs`-second window (start = number x `secs`).
    pub fn window(&self, secs: u32) -> Option<i64> {
        self.ts.map(|t| floor_i64(t / f64::from(secs)))
    }

    /// Its minute since the epoch (the `active_minutes` key).
    pub fn minute(&self) -> Option<i64> {
        self.ts.map(|t| i64::from(floor_i32(t / 60.0)))
    }

    /// Its 5-minute slot (the `peak_5min_*` key).
    pub fn peak_slot(&self) -> Option<i64> {
        self.ts.map(|t| i64::from(floor_i32(t / PEAK_WINDOW_SECS)))
    }
}

/// The profile of one host in one time window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowProfile {
    /// The host.
    pub ip: IpAddr,
    /// Window number: start time = index x window length (seconds).
    pub index: i64,
    /// Its behaviour in the window.
    pub profile: HostProfile,
}

/// All host profiles of a run, sorted by IP.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    /// Sorted by IP, one per IP.
    pub hosts: Vec<HostProfile>,
    /// Host x window profiles (empty without `--window`), sorted by IP then
    /// time; boxed (see `ProfileBuilder`).
    pub windows: Vec<Box<WindowProfile>>,
    /// The window length in seconds, when windows were built.
    pub window_secs: Option<u32>,
    /// Flows dropped because `--allow` lists their (source, port).
    pub allowed_flows: u64,
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

#[cfg(test)]
mod tests {
    use super::{floor_i32, floor_i64, merge_sorted, sort_by_unique_key};

    /// The in-place permutation sorts like a sort, and the merge of sorted
    /// parts gives the sorted whole, for every length to 300 and random
    /// orders (cycles of every length).
    #[test]
    fn in_place_sort_and_merge_equal_sorting() {
        let mut seed = 9u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for len in 0..300usize {
            let mut v: Vec<(u64, String)> =
                (0..len as u64).map(|k| (k * 7, format!("{k}"))).collect();
            for i in (1..len).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                v.swap(i, j);
            }
            let mut want = v.clone();
            want.sort();
            let split = if len == 0 {
                0
            } else {
                (next() % len as u64) as usize
            };
            let (mut a, mut b) = (v[..split].to_vec(), v[split..].to_vec());
            sort_by_unique_key(&mut v, |e| e.0);
            assert_eq!(v, want, "len {len}");
            let a_keys = sort_by_unique_key(&mut a, |e| e.0);
            let b_keys = sort_by_unique_key(&mut b, |e| e.0);
            assert_eq!(a_keys, a.iter().map(|e| e.0).collect::<Vec<_>>());
            assert_eq!(
                merge_sorted(vec![(a_keys, a), (Vec::new(), Vec::new()), (b_keys, b)]),
                want,
                "merge, len {len}"
            );
        }
    }

    /// The quick floors give what `floor` and a saturating conversion give,
    /// at the edges too (halves, negatives, the integer limits, NaN,
    /// infinities) and on a sweep of timestamps divided by window lengths.
    #[test]
    fn quick_floors_equal_floor_then_convert() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            -1.5,
            2.999_999_999,
            -2.000_000_001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            -f64::EPSILON,
        ];
        for base in [
            i32::MAX as f64,
            i32::MIN as f64,
            i64::MAX as f64,
            i64::MIN as f64,
        ] {
            for d in [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, -2048.0, 2048.0] {
                xs.push(base + d);
            }
        }
        for k in 0..100_000u32 {
            let t = 1.499e9 + f64::from(k) * 0.37 - 18_000.0;
            for w in [60.0, 300.0, 900.0, 7.0] {
                xs.push(t / w);
                xs.push(-t / w);
            }
        }
        for x in xs {
            assert_eq!(floor_i32(x), x.floor() as i32, "{x}");
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
    }
}
