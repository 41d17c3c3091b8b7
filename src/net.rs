//! Network awareness: which addresses are inside, which ports are services,
//! and which way a flow really goes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network as a key: its family (IPv6 or not) and its address with
    /// the host bits cleared ([`masked`] of any address inside gives it).
    fn key(&self) -> (bool, u128) {
        masked(self.addr, self.prefix)
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("'{s}' is not an IP network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': prefix length must be 0..={max}"))?
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip`'s family (IPv6 or not) and its first `prefix` bits (at most the
/// family's width), the rest cleared: equal for every address of one
/// network.
pub fn masked(ip: IpAddr, prefix: u8) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            (false, u128::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            (true, u128::from(v6) & mask)
        }
    }
}

/// Values by network, found by address with one hash look-up per distinct
/// prefix length (not one comparison per network: an analyst's list may
/// hold a line per server).
#[derive(Debug, Clone)]
pub struct CidrMap<V> {
    /// (IPv6, prefix length, masked network -> value), longest prefix
    /// first.
    groups: Vec<(bool, u8, rustc_hash::FxHashMap<u128, V>)>,
}

impl<V> Default for CidrMap<V> {
    fn default() -> Self {
        CidrMap { groups: Vec::new() }
    }
}

impl<V> CidrMap<V> {
    /// The value of `net`, inserted with `make` when it has none yet.
    pub fn entry(&mut self, net: Cidr, make: impl FnOnce() -> V) -> &mut V {
        let (v6, key) = net.key();
        let at = match self
            .groups
            .iter()
            .position(|(f, p, _)| (*f, *p) == (v6, net.prefix))
        {
            Some(i) => i,
            None => {
                self.groups
                    .push((v6, net.prefix, rustc_hash::FxHashMap::default()));
                self.groups
                    .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                self.groups
                    .iter()
                    .position(|(f, p, _)| (*f, *p) == (v6, net.prefix))
                    .expect("just inserted")
            }
        };
        self.groups[at].2.entry(key).or_insert_with(make)
    }

    /// The values of the networks holding `ip`, longest prefix first.
    pub fn matches(&self, ip: IpAddr) -> impl Iterator<Item = &V> {
        self.groups.iter().filter_map(move |(v6, prefix, nets)| {
            let (family, key) = masked(ip, *prefix);
            (family == *v6).then(|| nets.get(&key)).flatten()
        })
    }

    /// Whether no network is held.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// The RFC 1918 private ranges (and IPv6 unique-local addresses).
pub fn rfc1918() -> Vec<Cidr> {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        .iter()
        .map(|s| s.parse().expect("valid built-in CIDR"))
        .collect()
}

/// Parses `a/b,c/d,...`.
pub fn parse_cidrs(s: &str) -> Result<Vec<Cidr>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The inside of the network.
#[derive(Debug, Clone)]
pub struct Network {
    /// The ranges that are inside.
    pub internal: Vec<Cidr>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            internal: rfc1918(),
        }
    }
}

impl Network {
    /// Whether `ip` is inside the network.
    pub fn is_internal(&self, ip: IpAddr) -> bool {
        self.internal.iter().any(|c| c.contains(ip))
    }
}

/// The /24 (IPv4) or /64 (IPv6) an address sits in, as a number.
pub fn subnet_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v) >> 8),
        IpAddr::V6(v) => (u128::from(v) >> 64) | (1 << 127),
    }
}

/// Ports that identify a service even above 1023 (databases, RDP, VNC,
/// WinRM, proxies, LDAP GC...). A port below 1024 is a service port too.
pub const SERVICE_PORTS: &[u16] = &[
    1080, 1194, 1433, 1434, 1521, 1723, 1883, 2049, 2375, 2376, 3268, 3269, 3306, 3389, 5060, 5061,
    5222, 5353, 5355, 5432, 5672, 5900, 5985, 5986, 6379, 6443, 8000, 8008, 8080, 8081, 8443, 8888,
    9000, 9090, 9200, 9389, 11211, 27017,
];

/// Ports a lateral mover is drawn to: SMB, RDP, SSH, WinRM, RPC, LDAP,
/// Kerberos, VNC, Telnet.
pub const SENSITIVE_PORTS: &[u16] = &[445, 139, 3389, 22, 5985, 5986, 135, 389, 88, 5900, 23];

/// Whether `p` is a well-known service port.
pub fn is_service_port(p: u16) -> bool {
    p < 1024 || in_port_set(&SERVICE_SET, p)
}

/// The service a sensitive port is known for, as an analyst names it.
pub fn sensitive_service(p: u16) -> Option<&'static str> {
    Some(match p {
        445 | 139 => "SMB",
        3389 => "RDP",
        22 => "SSH",
        5985 | 5986 => "WinRM",
        135 => "RPC",
        389 => "LDAP",
        88 => "Kerberos",
        5900 => "VNC",
        23 => "Telnet",
        _ => return None,
    })
}

/// Whether `p` is one of [`SENSITIVE_PORTS`] (a table look-up: every flow
/// to an internal host asks).
pub fn is_sensitive_port(p: u16) -> bool {
    in_port_set(&SENSITIVE_SET, p)
}

/// A set of ports as 65,536 bits.
type PortSet = [u64; 1024];

const fn port_set(ports: &[u16]) -> PortSet {
    let mut set = [0u64; 1024];
    let mut i = 0;
    while i < ports.len() {
        let p = ports[i] as usize;
        set[p / 64] |= 1 << (p % 64);
        i += 1;
    }
    set
}

static SERVICE_SET: PortSet = port_set(SERVICE_PORTS);
static SENSITIVE_SET: PortSet = port_set(SENSITIVE_PORTS);

fn in_port_set(set: &PortSet, p: u16) -> bool {
    set[usize::from(p) / 64] >> (p % 64) & 1 == 1
}

/// Whether a flow recorded as `src_port -> dst_port` is a reply: the
/// source port is a service port, the destination port is not, and the
/// destination port is the higher one. Such a flow was opened by the
/// destination (CICFlowMeter starts a new flow at the server's reply after
/// a FIN or a timeout), so it belongs to the destination's profile.
pub fn is_reply_direction(src_port: u16, dst_port: u16) -> bool {
    is_service_port(src_port) && !is_service_port(dst_port) && src_port < dst_port
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_tables_hold_exactly_the_listed_ports() {
        for p in 0..=u16::MAX {
            assert_eq!(
                is_service_port(p),
                p < 1024 || SERVICE_PORTS.contains(&p),
                "{p}"
            );
            assert_eq!(is_sensitive_port(p), SENSITIVE_PORTS.contains(&p), "{p}");
            assert_eq!(is_sensitive_port(p), sensitive_service(p).is_some(), "{p}");
        }
    }

    #[test]
    fn cidrs() {
        let n = Network::default();
        assert!(n.is_internal("192.168.10.8".parse().unwrap()));
        assert!(n.is_internal("172.16.0.1".parse().unwrap()));
        assert!(!n.is_internal("172.32.0.1".parse().unwrap()));
        assert!(!n.is_internal("8.8.8.8".parse().unwrap()));
        let c: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(c.contains("1.2.3.4".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!(parse_cidrs("10.0.0.0/8, 192.168.1.0/24").unwrap().len(), 2);
    }

    #[test]
    fn direction() {
        assert!(is_reply_direction(53, 52311));
        assert!(is_reply_direction(443, 50000));
        assert!(is_reply_direction(3389, 49700));
        assert!(!is_reply_direction(50000, 443));
        assert!(!is_reply_direction(137, 137));
        assert!(!is_reply_direction(80, 8080));
        assert!(!is_reply_direction(50000, 50001));
    }
}
