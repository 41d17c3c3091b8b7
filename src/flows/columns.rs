//! Column resolution: one alias table for every CICFlowMeter dialect.
//!
//! Header cells are trimmed and compared case-insensitively against the
//! aliases below (2017 TrafficLabelling, CICFlowMeter-V4 / the corrected
//! CNS2022 release, CSE-CIC-IDS2018, and the Python `cicflowmeter` snake_case
//! names). When a name occurs twice (the 2017 files repeat
//! ` Fwd Header Length`), the first position wins: columns are taken by
//! position, never by a name lookup inside the row loop.

/// A column latmove knows how to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// CICFlowMeter's Flow ID.
    FlowId,
    /// Source IP.
    SrcIp,
    /// Source port.
    SrcPort,
    /// Destination IP.
    DstIp,
    /// Destination port.
    DstPort,
    /// Protocol number.
    Protocol,
    /// Flow start time.
    Timestamp,
    /// Flow duration (µs).
    Duration,
    /// Forward (source to destination) packets.
    FwdPackets,
    /// Backward packets.
    BwdPackets,
    /// Forward bytes.
    FwdBytes,
    /// Backward bytes.
    BwdBytes,
    /// RST flag count.
    RstFlags,
    /// The label (BENIGN or an attack).
    Label,
}

impl Field {
    /// Every field, in a fixed order (used to size the position table).
    pub const ALL: [Field; 14] = [
        Field::FlowId,
        Field::SrcIp,
        Field::SrcPort,
        Field::DstIp,
        Field::DstPort,
        Field::Protocol,
        Field::Timestamp,
        Field::Duration,
        Field::FwdPackets,
        Field::BwdPackets,
        Field::FwdBytes,
        Field::BwdBytes,
        Field::RstFlags,
        Field::Label,
    ];

    /// The fields without which no host profile can be built.
    pub const REQUIRED: [Field; 3] = [Field::SrcIp, Field::DstIp, Field::DstPort];

    /// The name used in messages (the 2017 spelling).
    pub fn display_name(self) -> &'static str {
        match self {
            Field::FlowId => "Flow ID",
            Field::SrcIp => "Source IP",
            Field::SrcPort => "Source Port",
            Field::DstIp => "Destination IP",
            Field::DstPort => "Destination Port",
            Field::Protocol => "Protocol",
            Field::Timestamp => "Timestamp",
            Field::Duration => "Flow Duration",
            Field::FwdPackets => "Total Fwd Packets",
            Field::BwdPackets => "Total Backward Packets",
            Field::FwdBytes => "Total Length of Fwd Packets",
            Field::BwdBytes => "Total Length of Bwd Packets",
            Field::RstFlags => "RST Flag Count",
            Field::Label => "Label",
        }
    }

    /// Accepted header names, lower case, already trimmed. The first one is
    /// the 2017 TrafficLabelling spelling.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::FlowId => &["flow id", "flow_id"],
            Field::SrcIp => &["source ip", "src ip", "src_ip", "srcip"],
            Field::SrcPort => &["source port", "src port", "src_port", "sport"],
            Field::DstIp => &["destination ip", "dst ip", "dst_ip", "dstip"],
            Field::DstPort => &["destination port", "dst port", "dst_port", "dport"],
            Field::Protocol => &["protocol", "proto"],
            Field::Timestamp => &["timestamp"],
            Field::Duration => &["flow duration", "flow_duration"],
            Field::FwdPackets => &[
                "total fwd packets",
                "tot fwd pkts",
                "total fwd packet",
                "tot_fwd_pkts",
            ],
            Field::BwdPackets => &[
                "total backward packets",
                "tot bwd pkts",
                "total bwd packets",
                "total bwd packet",
                "tot_bwd_pkts",
            ],
            Field::FwdBytes => &[
                "total length of fwd packets",
                "totlen fwd pkts",
                "total length of fwd packet",
                "totlen_fwd_pkts",
            ],
            Field::BwdBytes => &[
                "total length of bwd packets",
                "totlen bwd pkts",
                "total length of bwd packet",
                "totlen_bwd_pkts",
            ],
            Field::RstFlags => &[
                "rst flag count",
                "rst flag cnt",
                "rst_flag_cnt",
                "rst_flag_count",
            ],
            Field::Label => &["label"],
        }
    }

    pub(crate) fn index(self) -> usize {
        Field::ALL
            .iter()
            .position(|f| *f == self)
            .expect("field in ALL")
    }
}

/// Where each known field sits in one file's rows.
#[derive(Debug, Clone, Default)]
pub struct ColumnMap {
    pos: [Option<usize>; Field::ALL.len()],
    /// Number of header cells.
    pub width: usize,
}

impl ColumnMap {
    /// Resolves a header row (raw bytes, any dialect).
    pub fn from_header<'a, I: IntoIterator<Item = &'a [u8]>>(header: I) -> ColumnMap {
        let mut map = ColumnMap::default();
        for (i, cell) in header.into_iter().enumerate() {
            map.width = i + 1;
            let name = String::from_utf8_lossy(cell);
            // A UTF-8 byte-order mark can precede the first name.
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            for field in Field::ALL {
                if map.pos[field.index()].is_none() && field.aliases().contains(&name.as_str()) {
                    map.pos[field.index()] = Some(i);
                }
            }
        }
        map
    }

    /// The 0-based column of `field`, if the file has it.
    pub fn get(&self, field: Field) -> Option<usize> {
        self.pos[field.index()]
    }

    /// Required fields this file lacks.
    pub fn missing_required(&self) -> Vec<Field> {
        Field::REQUIRED
            .iter()
            .copied()
            .filter(|f| self.get(*f).is_none())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_2017_header_with_spaces_and_duplicates() {
        let cells: Vec<&[u8]> = vec![
            b"Flow ID",
            b" Source IP",
            b" Destination IP",
            b" Fwd Header Length",
            b" Destination Port",
            b" Fwd Header Length",
            b" Label",
        ];
        let m = ColumnMap::from_header(cells);
        assert_eq!(m.get(Field::SrcIp), Some(1));
        assert_eq!(m.get(Field::DstPort), Some(4));
        assert_eq!(m.get(Field::Label), Some(6));
        assert!(m.missing_required().is_empty());
    }
}
