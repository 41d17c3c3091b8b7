//! The owned flow record the readers hand to profiling, and the table
//! that turns label texts into small ids.

use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;

use super::{Flow, FlowMeta, is_benign_label};

/// Attack label texts and their ids, in order of first appearance.
#[derive(Debug, Default)]
pub struct LabelTable {
    labels: Vec<String>,
    raw: Vec<Vec<u8>>,
    ids: HashMap<Vec<u8>, u32>,
}

impl LabelTable {
    /// The label texts, by id.
    pub fn texts(&self) -> &[String] {
        &self.labels
    }

    /// The label texts, by id, owned.
    pub fn into_texts(self) -> Vec<String> {
        self.labels
    }

    /// The label bytes as read, by id.
    pub fn raw(&self, id: u32) -> &[u8] {
        &self.raw[id as usize]
    }

    /// `None` for no label, `Some(None)` for BENIGN, `Some(Some(id))` for
    /// an attack label.
    pub fn classify(&mut self, label: Option<&[u8]>) -> Option<Option<u32>> {
        let l = label?;
        // The common spelling first (most rows), then any case and spacing.
        if l == b"BENIGN" || is_benign_label(l) {
            return Some(None);
        }
        Some(Some(match self.ids.get(l) {
            Some(id) => *id,
            None => {
                let id = self.labels.len() as u32;
                self.labels
                    .push(crate::util::text::printable(&String::from_utf8_lossy(l)).into_owned());
                self.raw.push(l.to_vec());
                self.ids.insert(l.to_vec(), id);
                id
            }
        }))
    }
}

/// A flow with what profiling needs, owned (no borrowed cells) so it can
/// cross threads; its label already resolved by a [`LabelTable`]. The
/// seven numbers are stored bare with a bit each saying whether the file
/// gave them (112 bytes a flow instead of 160 with an `Option` each: every
/// flow is copied from the parsing threads to the profiling ones).
#[derive(Debug, Clone, Copy)]
pub struct FlowRecord {
    /// Source address, as read.
    pub src_ip: IpAddr,
    /// Source port, when the file gives it.
    pub src_port: Option<u16>,
    /// Destination address, as read.
    pub dst_ip: IpAddr,
    /// Destination port.
    pub dst_port: u16,
    /// See [`LabelTable::classify`].
    pub label: Option<Option<u32>>,
    /// Timestamp, duration (µs), forward and backward packets, forward and
    /// backward bytes, RST flags; bit `i` of `given` says whether
    /// `numbers[i]` was.
    numbers: [f64; 7],
    given: u8,
    /// [`FlowMeta::pack`]ed.
    meta: u8,
}

/// The numbers of a [`FlowRecord`], in its order.
pub const FLOW_NUMBERS: usize = 7;

impl FlowRecord {
    /// The record of a parsed row, its label resolved by `labels`.
    pub fn new(flow: &Flow<'_>, labels: &mut LabelTable) -> FlowRecord {
        FlowRecord::from_parts(
            (flow.src_ip, flow.src_port),
            (flow.dst_ip, flow.dst_port),
            [
                flow.timestamp,
                flow.duration_us,
                flow.fwd_packets,
                flow.bwd_packets,
                flow.fwd_bytes,
                flow.bwd_bytes,
                flow.rst_flags,
            ],
            labels.classify(flow.label),
        )
        .with_meta(flow.meta)
    }

    /// The record with `meta`.
    pub fn with_meta(mut self, meta: FlowMeta) -> FlowRecord {
        self.meta = meta.pack();
        self
    }

    /// What the reader knew beyond the fields.
    #[inline]
    pub fn meta(&self) -> FlowMeta {
        FlowMeta::unpack(self.meta)
    }

    /// Whether the source is known to be the initiator.
    #[inline]
    pub fn initiator_known(&self) -> bool {
        self.meta & 1 == 1
    }

    /// A record from its parts: the numbers in the order of the accessors
    /// below (timestamp, duration, forward and backward packets, forward
    /// and backward bytes, RST flags).
    pub fn from_parts(
        (src_ip, src_port): (IpAddr, Option<u16>),
        (dst_ip, dst_port): (IpAddr, u16),
        numbers: [Option<f64>; FLOW_NUMBERS],
        label: Option<Option<u32>>,
    ) -> FlowRecord {
        let mut given = 0u8;
        let mut bare = [0.0; FLOW_NUMBERS];
        for (i, n) in numbers.iter().enumerate() {
            if let Some(v) = n {
                bare[i] = *v;
                given |= 1 << i;
            }
        }
        FlowRecord {
            src_ip,
            src_port,
            dst_ip,
            dst_port,
            label,
            numbers: bare,
            given,
            meta: 0,
        }
    }

    #[inline]
    fn number(&self, i: usize) -> Option<f64> {
        (self.given >> i & 1 == 1).then_some(self.numbers[i])
    }

    /// Flow start (seconds, file time).
    pub fn timestamp(&self) -> Option<f64> {
        self.number(0)
    }
    /// Duration in microseconds.
    pub fn duration_us(&self) -> Option<f64> {
        self.number(1)
    }
    /// Forward packets.
    pub fn fwd_packets(&self) -> Option<f64> {
        self.number(2)
    }
    /// Backward packets.
    pub fn bwd_packets(&self) -> Option<f64> {
        self.number(3)
    }
    /// Forward bytes.
    pub fn fwd_bytes(&self) -> Option<f64> {
        self.number(4)
    }
    /// Backward bytes.
    pub fn bwd_bytes(&self) -> Option<f64> {
        self.number(5)
    }
    /// RST flags.
    pub fn rst_flags(&self) -> Option<f64> {
        self.number(6)
    }
}

const _: () = assert!(std::mem::size_of::<FlowRecord>() == 112);
