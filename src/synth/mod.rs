//! `latmove synth`: a seeded synthetic working day in the exact CIC-IDS2017
//! TrafficLabelling layout (85 columns, the real header byte for byte, CRLF,
//! `d/m/yyyy h:mm` timestamps on a 12-hour clock without AM/PM).
//!
//! The network mirrors CIC-IDS2017's victim LAN on Tuesday 4 July 2017:
//!
//! * workstations 192.168.10.{5,8,9,12,14,15,16,17,19,25} browsing the
//!   internet, asking the DC for DNS, Kerberos, LDAP and SMB, NTP, NetBIOS
//!   and LLMNR chatter;
//! * the DC/DNS server 192.168.10.3 forwarding DNS to internet resolvers;
//! * the web server 192.168.10.50, reached by internet clients;
//! * the Ubuntu server 192.168.10.51 fetching updates;
//! * reply-direction flows (a server's reply opening a new flow after a FIN
//!   or a timeout) that make the DC, the web server and internet servers
//!   look like sources with many ephemeral destination ports;
//! * planted attacks: 172.16.0.1 (the firewall's inside address, as every
//!   external attack appears after NAT) brute-forcing FTP (09:20-10:20,
//!   `FTP-Patator`) and SSH (14:00-15:00, `SSH-Patator`) on the web server,
//!   and the workstation 192.168.10.8 scanning the other internal hosts
//!   (15:04-15:45, `PortScan`);
//! * the traps of the real files: zero-duration flows with `Infinity` and
//!   `NaN` rates, and a few rows whose every field is empty.

use std::io::Write;
use std::net::Ipv4Addr;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

/// The real 2017 TrafficLabelling header (85 names, 70 with a leading
/// space, ` Fwd Header Length` twice), without the line end.
pub const HEADER_2017: &str = include_str!("header_2017.txt");

/// Rows in the real Tuesday file.
pub const TUESDAY_ROWS: usize = 445_909;

/// Workstations of the CIC-IDS2017 victim network.
pub const WORKSTATIONS: [Ipv4Addr; 10] = [
    Ipv4Addr::new(192, 168, 10, 5),
    Ipv4Addr::new(192, 168, 10, 8),
    Ipv4Addr::new(192, 168, 10, 9),
    Ipv4Addr::new(192, 168, 10, 12),
    Ipv4Addr::new(192, 168, 10, 14),
    Ipv4Addr::new(192, 168, 10, 15),
    Ipv4Addr::new(192, 168, 10, 16),
    Ipv4Addr::new(192, 168, 10, 17),
    Ipv4Addr::new(192, 168, 10, 19),
    Ipv4Addr::new(192, 168, 10, 25),
];
/// The domain controller and DNS server.
pub const DC: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 3);
/// The web server reached from the internet.
pub const WEB: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 50);
/// The Ubuntu server.
pub const UBUNTU: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 51);
/// The firewall, NAT of the external brute-forcer.
pub const FIREWALL: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
/// The compromised workstation that scans.
pub const SCANNER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 8);

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthConfig {
    /// Data rows to write (header excluded, empty trap rows included).
    pub rows: usize,
    /// The random seed.
    pub seed: u64,
    /// Which day.
    pub scenario: Scenario,
    /// Leave the attackers out (a benign baseline day for `--train`).
    pub benign_only: bool,
    /// One day of a run of days (`synth --days`), or a single day.
    pub run: Option<RunDay>,
    /// Workstations browsing and asking the DC (a single day): the ten of
    /// the CIC-IDS2017 network, then more in 10.20.0.0/16 (see
    /// [`workstations`]).
    pub workstations: usize,
}

/// The most workstations a day has (`synth --workstations`).
pub const MAX_WORKSTATIONS: usize = 10_000;

/// `n` workstations: the ten of the victim network, then 10.20.x.y (250 a
/// /24), so a day can have as many workstations as a real network.
pub fn workstations(n: usize) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = WORKSTATIONS.iter().copied().take(n).collect();
    v.extend(
        (0..n.saturating_sub(WORKSTATIONS.len()))
            .map(|i| Ipv4Addr::new(10, 20, (i / 250) as u8, (i % 250) as u8 + 1)),
    );
    v
}

/// One day of a run of days with the same hosts (`synth --days N`): the
/// internet hosts and roles are drawn from the seed alone, the day's
/// traffic from the seed and the day. Day-to-day changes: a new employee's
/// workstation from day 5, the backup server moving to a new address on
/// day 8, a patch Tuesday on day 8 (every workstation fetching updates
/// from servers it never reached), and the attacks of the standard day
/// (brute force, the internal scan) on the attack day alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunDay {
    /// 0 for the first day.
    pub index: usize,
    /// The attack day (0-based); `None` for a run without attacks.
    pub attack: Option<usize>,
}

/// The new employee's workstation (from day 5 of a run).
pub const NEW_EMPLOYEE: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 30);
/// Where the backup server moves on day 8 of a run.
pub const MOVED_BACKUP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 61);
/// The first day (0-based) of the new employee.
pub const NEW_EMPLOYEE_DAY: usize = 4;
/// The day (0-based) the backup server moves, and patch Tuesday.
pub const MOVE_DAY: usize = 7;
/// The longest run of days (they stay in July 2017).
pub const MAX_DAYS: usize = 27;

/// Which day to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The Tuesday-like day: brute force and one internal scan.
    Standard,
    /// Adds the cases that separate good detectors from bad ones: a slow
    /// scan, a 445/3389 sweep, a modest lateral mover, and benign heavy
    /// hitters (backup server, SNMP poller, an allowlisted vulnerability
    /// scanner, a NAT gateway).
    Hard,
}

/// Hosts of the hard scenario.
pub const SLOW_SCANNER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 14);
/// The hard day's slow sweeper.
pub const SWEEPER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 17);
/// The hard day's workstation moving laterally over admin ports.
pub const LATERAL: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 25);
/// The hard day's backup server (benign, reaches many hosts).
pub const BACKUP: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 60);
/// The hard day's monitoring poller (benign, SNMP to many hosts).
pub const POLLER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 70);
/// The hard day's vulnerability scanner (benign when allowlisted).
pub const VULN_SCANNER: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 80);
/// The hard day's NAT gateway.
pub const NAT: Ipv4Addr = Ipv4Addr::new(192, 168, 10, 1);

/// What was generated, per label.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    /// Rows written.
    pub rows: usize,
    /// Of them, empty trap rows.
    pub empty_rows: usize,
    /// Rows per label.
    pub per_label: Vec<(String, usize)>,
}

/// One synthetic flow, to be rendered into 85 columns.
#[derive(Debug, Clone)]
struct Spec {
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    proto: u8,
    /// Seconds since midnight, local time.
    t: u32,
    duration_us: u64,
    fwd_pkts: u32,
    bwd_pkts: u32,
    fwd_bytes: u64,
    bwd_bytes: u64,
    syn: u8,
    rst: u8,
    fin: u8,
    label: &'static str,
}

const DAY_START: u32 = 8 * 3600 + 40 * 60;
const DAY_END: u32 = 17 * 3600 + 10 * 60;

struct Gen {
    rng: ChaCha8Rng,
    out: Vec<Spec>,
}

impl Gen {
    fn time(&mut self, from: u32, to: u32) -> u32 {
        self.rng.gen_range(from..to)
    }
    fn ephemeral(&mut self) -> u16 {
        self.rng.gen_range(49152..=65535)
    }

    /// A normal TCP exchange with payload both ways.
    #[allow(clippy::too_many_arguments)]
    fn tcp_session(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dport: u16,
        t: u32,
        size: f64,
        label: &'static str,
    ) {
        let fwd = self.rng.gen_range(3..12u32) + (size * 4.0) as u32;
        let bwd = self.rng.gen_range(2..10u32) + (size * 8.0) as u32;
        let sport = self.ephemeral();
        let fwd_bytes = fwd as u64 * self.rng.gen_range(40..400u64);
        let bwd_bytes = bwd as u64 * self.rng.gen_range(200..1400u64);
        let duration_us = self.rng.gen_range(20_000..5_000_000u64) + (size * 2e6) as u64;
        self.out.push(Spec {
            src,
            sport,
            dst,
            dport,
            proto: 6,
            t,
            duration_us,
            fwd_pkts: fwd,
            bwd_pkts: bwd,
            fwd_bytes,
            bwd_bytes,
            syn: 1,
            rst: 0,
            fin: 1,
            label,
        });
    }

    /// A one-request, one-answer UDP flow.
    fn udp(
        &mut self,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        t: u32,
        answered: bool,
    ) {
        let duration_us = if answered {
            self.rng.gen_range(200..90_000u64)
        } else {
            0
        };
        let fwd_bytes = self.rng.gen_range(30..90u64);
        self.out.push(Spec {
            src,
            sport,
            dst,
            dport,
            proto: 17,
            t,
            duration_us,
            fwd_pkts: 1,
            bwd_pkts: answered as u32,
            fwd_bytes,
            bwd_bytes: if answered {
                self.rng.gen_range(60..400)
            } else {
                0
            },
            syn: 0,
            rst: 0,
            fin: 0,
            label: "BENIGN",
        });
    }

    /// A reply-direction flow: the server's side after a FIN or timeout
    /// split, source port the service port, destination port ephemeral.
    fn reply(&mut self, server: Ipv4Addr, service: u16, client: Ipv4Addr, t: u32) {
        let dport = self.ephemeral();
        let pkts = self.rng.gen_range(1..3u32);
        self.out.push(Spec {
            src: server,
            sport: service,
            dst: client,
            dport,
            proto: if service == 53 { 17 } else { 6 },
            t,
            duration_us: self.rng.gen_range(0..3_000u64),
            fwd_pkts: pkts,
            bwd_pkts: self.rng.gen_range(0..2u32),
            fwd_bytes: pkts as u64 * self.rng.gen_range(0..120u64),
            bwd_bytes: 0,
            syn: 0,
            rst: 0,
            fin: 1,
            label: "BENIGN",
        });
    }
}

/// A probe: SYN, answered (RST or SYN-ACK) or not.
fn probe(
    g: &mut Gen,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    dport: u16,
    t: u32,
    answered: bool,
    label: &'static str,
) {
    let sport = g.ephemeral();
    g.out.push(Spec {
        src,
        sport,
        dst,
        dport,
        proto: 6,
        t,
        duration_us: if answered {
            g.rng.gen_range(1..400u64)
        } else {
            0
        },
        fwd_pkts: 1,
        bwd_pkts: u32::from(answered),
        fwd_bytes: 0,
        bwd_bytes: 0,
        syn: 1,
        rst: u8::from(answered),
        fin: 0,
        label,
    });
}

/// Every internal host of the hard scenario's subnet that answers.
fn subnet_hosts() -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = WORKSTATIONS.to_vec();
    v.extend([DC, WEB, UBUNTU, BACKUP, POLLER, VULN_SCANNER]);
    v
}

/// The hard scenario's extra hosts; the attacks are skipped for a benign
/// baseline day.
fn hard_cases(g: &mut Gen, benign_only: bool, web_sites: &[Ipv4Addr], scale: f64) {
    let inside = subnet_hosts();
    heavy_hitters(g, &inside, web_sites, scale);
    if !benign_only {
        hard_attacks(g, &inside);
    }
}

/// A backup server pulling from every internal host over SMB,
/// 08:40-09:40.
fn backup(g: &mut Gen, server: Ipv4Addr, inside: &[Ipv4Addr]) {
    for (i, dst) in inside.iter().enumerate() {
        if *dst == server {
            continue;
        }
        for k in 0..3 {
            let t = DAY_START + (i as u32 * 180) + k * 40;
            g.tcp_session(server, *dst, 445, t, 5.0, "BENIGN");
        }
    }
}

/// The hard day's benign heavy hitters: a backup server, an SNMP poller,
/// the allowlisted vulnerability scanner and a NAT gateway.
fn heavy_hitters(g: &mut Gen, inside: &[Ipv4Addr], web_sites: &[Ipv4Addr], scale: f64) {
    backup(g, BACKUP, inside);
    // SNMP poller: every 5 minutes, UDP 161 on every internal host.
    let mut t = DAY_START;
    while t < DAY_END {
        for dst in inside {
            if *dst != POLLER {
                let answered = *dst != WEB;
                let jitter = g.rng.gen_range(0..20);
                g.udp(POLLER, 40000, *dst, 161, t + jitter, answered);
            }
        }
        t += 300;
    }
    // Vulnerability scanner (allowlisted): every internal host, 1,000
    // ports, 12:00-12:40. BENIGN: it is the organisation's own.
    let vs_from = 12 * 3600;
    for (i, dst) in inside.iter().filter(|d| **d != VULN_SCANNER).enumerate() {
        for p in 1..=(300.0 * scale.sqrt().max(0.3)) as u16 {
            let t = vs_from + (i as u32 * 150) + u32::from(p) % 150;
            let answered = matches!(p, 22 | 80 | 135 | 139 | 443 | 445);
            probe(g, VULN_SCANNER, *dst, p, t, answered, "BENIGN");
        }
    }
    // NAT gateway: many internal clients' traffic behind one address.
    let nat_flows = (20_000.0 * scale) as usize + 200;
    for _ in 0..nat_flows {
        let t = g.time(DAY_START, DAY_END);
        let site = web_sites[g.rng.gen_range(0..web_sites.len())];
        g.tcp_session(NAT, site, 443, t, 0.3, "BENIGN");
    }
}

/// The hard day's attackers: a slow scan, a sweep of 445/3389 and a
/// workstation moving laterally over admin ports.
fn hard_attacks(g: &mut Gen, inside: &[Ipv4Addr]) {
    // Slow scan: a few probes a minute over four hours, 10:00-14:00.
    let targets: Vec<Ipv4Addr> = inside
        .iter()
        .copied()
        .filter(|d| *d != SLOW_SCANNER)
        .collect();
    let mut t = 10 * 3600;
    let mut k = 0usize;
    while t < 14 * 3600 {
        let dst = targets[k % targets.len()];
        let port = g.rng.gen_range(1..=1024);
        probe(
            g,
            SLOW_SCANNER,
            dst,
            port,
            t,
            port == 445 || port == 135,
            "PortScan-Slow",
        );
        t += g.rng.gen_range(15..30);
        k += 1;
    }
    // Horizontal sweep of 445 and 3389 across the /24, 11:30-11:40.
    for host in 1..=254u8 {
        for port in [445u16, 3389] {
            let dst = Ipv4Addr::new(192, 168, 10, host);
            if dst == SWEEPER {
                continue;
            }
            let t = 11 * 3600 + 30 * 60 + u32::from(host) * 2 + u32::from(port == 3389);
            probe(
                g,
                SWEEPER,
                dst,
                port,
                t,
                inside.contains(&dst) && port == 445,
                "Sweep",
            );
        }
    }
    // A compromised workstation fanning out modestly over SMB, RDP and
    // WinRM during business hours (connections that succeed).
    let victims: Vec<Ipv4Addr> = inside
        .iter()
        .copied()
        .filter(|d| *d != LATERAL)
        .take(10)
        .collect();
    for (i, dst) in victims.iter().enumerate() {
        for (j, port) in [445u16, 3389, 5985].iter().enumerate() {
            let t = 13 * 3600 + (i as u32 * 900) + j as u32 * 60;
            g.tcp_session(LATERAL, *dst, *port, t, 1.0, "LateralMovement");
        }
    }
}

fn public_ip(rng: &mut ChaCha8Rng) -> Ipv4Addr {
    loop {
        let a: u8 = rng.gen_range(1..224);
        let ip = Ipv4Addr::new(a, rng.r#gen(), rng.r#gen(), rng.gen_range(1..255));
        if !(ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || a == 0
            || a == 100
            || a == 127)
        {
            return ip;
        }
    }
}

/// Pick from a pool with a Zipf-like (1/rank) popularity.
fn popular<T: Copy>(rng: &mut ChaCha8Rng, pool: &[T]) -> T {
    let u: f64 = rng.r#gen();
    let i = ((pool.len() as f64 + 1.0).powf(u) - 1.0) as usize;
    pool[i.min(pool.len() - 1)]
}

/// Generates one day of a run of days, sorted by time.
fn generate_run_day(cfg: &SynthConfig, day: RunDay) -> (Vec<Spec>, usize) {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        out: Vec::with_capacity(cfg.rows),
    };
    let n = cfg.rows.max(200);
    let scale = n as f64 / TUESDAY_ROWS as f64;
    // The same hosts every day: drawn from the seed alone.
    let bg = Background::draw(&mut g, scale, WORKSTATIONS.to_vec());
    let updates: Vec<Ipv4Addr> = (0..30).map(|_| public_ip(&mut g.rng)).collect();
    g.rng = ChaCha8Rng::seed_from_u64(
        cfg.seed ^ (day.index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let empty_rows = (n / 1500).max(1);
    let attack = day.attack == Some(day.index) && !cfg.benign_only;
    let (ftp, ssh, scan) = if attack {
        (
            ((7938.0 * scale) as usize).max(60),
            ((5897.0 * scale) as usize).max(60),
            ((11_000.0 * scale) as usize).max(1500),
        )
    } else {
        (0, 0, 0)
    };
    let benign = n.saturating_sub(empty_rows + ftp + ssh + scan);
    for _ in 0..benign {
        benign_flow(&mut g, &bg);
    }
    if day.index >= NEW_EMPLOYEE_DAY {
        // One workstation's worth of the day's workstation traffic comes
        // from the new employee.
        for s in g.out.iter_mut() {
            if WORKSTATIONS.contains(&s.src) && g.rng.gen_bool(1.0 / 11.0) {
                s.src = NEW_EMPLOYEE;
            }
        }
    }
    let mut inside = WORKSTATIONS.to_vec();
    inside.extend([DC, WEB, UBUNTU]);
    if day.index >= NEW_EMPLOYEE_DAY {
        inside.push(NEW_EMPLOYEE);
    }
    backup(
        &mut g,
        if day.index >= MOVE_DAY {
            MOVED_BACKUP
        } else {
            BACKUP
        },
        &inside,
    );
    if day.index == MOVE_DAY {
        // Patch Tuesday: every workstation fetches from the update servers.
        for ws in WORKSTATIONS.iter().chain(&[NEW_EMPLOYEE]) {
            for site in &updates {
                let t = g.time(10 * 3600, 10 * 3600 + 30 * 60);
                g.tcp_session(*ws, *site, 443, t, 3.0, "BENIGN");
            }
        }
    }
    if attack {
        brute_force(&mut g, ftp, ssh);
        internal_scan(&mut g, scan);
    }
    g.out.sort_by_key(|s| s.t);
    (g.out, empty_rows)
}

/// Generates the day's flows, sorted by time.
fn generate(cfg: &SynthConfig) -> (Vec<Spec>, usize) {
    if let Some(day) = cfg.run {
        return generate_run_day(cfg, day);
    }
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        out: Vec::with_capacity(cfg.rows),
    };
    let n = cfg.rows.max(200);
    let scale = n as f64 / TUESDAY_ROWS as f64;
    let empty_rows = (n / 1500).max(1);
    let ftp = ((7938.0 * scale) as usize).max(60);
    let ssh = ((5897.0 * scale) as usize).max(60);
    let scan = ((11_000.0 * scale) as usize).max(1500);
    let benign = n.saturating_sub(empty_rows + ftp + ssh + scan);

    let bg = Background::draw(&mut g, scale, workstations(cfg.workstations.max(1)));
    for _ in 0..benign {
        benign_flow(&mut g, &bg);
    }
    if cfg.scenario == Scenario::Hard {
        hard_cases(&mut g, cfg.benign_only, &bg.web_sites, scale);
    }
    if cfg.benign_only {
        g.out.sort_by_key(|s| s.t);
        return (g.out, empty_rows);
    }
    brute_force(&mut g, ftp, ssh);
    internal_scan(&mut g, scan);
    g.out.sort_by_key(|s| s.t);
    (g.out, empty_rows)
}

/// The internet hosts of the day: web sites, web clients, resolvers, NTP
/// servers, mirrors, and each workstation's favourite sites.
struct Background {
    web_sites: Vec<Ipv4Addr>,
    web_clients: Vec<Ipv4Addr>,
    resolvers: Vec<Ipv4Addr>,
    ntp: Vec<Ipv4Addr>,
    mirrors: Vec<Ipv4Addr>,
    favourites: Vec<Vec<Ipv4Addr>>,
    /// The workstations (`favourites` has one list each).
    workstations: Vec<Ipv4Addr>,
}

impl Background {
    fn draw(g: &mut Gen, scale: f64, workstations: Vec<Ipv4Addr>) -> Background {
        let web_sites: Vec<Ipv4Addr> = (0..(2500.0 * scale.sqrt()) as usize + 40)
            .map(|_| public_ip(&mut g.rng))
            .collect();
        let web_clients: Vec<Ipv4Addr> = (0..(1500.0 * scale.sqrt()) as usize + 20)
            .map(|_| public_ip(&mut g.rng))
            .collect();
        let resolvers: Vec<Ipv4Addr> = (0..12).map(|_| public_ip(&mut g.rng)).collect();
        let ntp: Vec<Ipv4Addr> = (0..4).map(|_| public_ip(&mut g.rng)).collect();
        let mirrors: Vec<Ipv4Addr> = (0..6).map(|_| public_ip(&mut g.rng)).collect();
        // Each workstation has its own favourite sites.
        let favourites: Vec<Vec<Ipv4Addr>> = workstations
            .iter()
            .map(|_| {
                let mut s = web_sites.clone();
                s.shuffle(&mut g.rng);
                s.truncate(web_sites.len() / 3 + 10);
                s
            })
            .collect();
        Background {
            web_sites,
            web_clients,
            resolvers,
            ntp,
            mirrors,
            favourites,
            workstations,
        }
    }
}

/// One benign flow at a random time of the working day: browsing, DNS,
/// directory traffic, broadcasts, NTP, replies, the web server's clients.
fn benign_flow(g: &mut Gen, bg: &Background) {
    let t = g.time(DAY_START, DAY_END);
    let w = g.rng.gen_range(0..bg.workstations.len());
    let ws = bg.workstations[w];
    let roll: f64 = g.rng.r#gen();
    if roll < 0.42 {
        let site = popular(&mut g.rng, &bg.favourites[w]);
        let port = *[443, 443, 443, 443, 80, 80, 8080, 993]
            .choose(&mut g.rng)
            .unwrap_or(&443);
        let size: f64 = g.rng.r#gen::<f64>().powi(4) * 6.0;
        g.tcp_session(ws, site, port, t, size, "BENIGN");
    } else if roll < 0.60 {
        let sport = g.ephemeral();
        g.udp(ws, sport, DC, 53, t, true);
    } else if roll < 0.65 {
        let port = *[88, 389, 445, 135, 3268, 49155]
            .choose(&mut g.rng)
            .unwrap_or(&445);
        g.tcp_session(ws, DC, port, t, 0.2, "BENIGN");
    } else if roll < 0.67 {
        let (dst, port) = if g.rng.gen_bool(0.5) {
            (Ipv4Addr::new(192, 168, 10, 255), 137)
        } else {
            (Ipv4Addr::new(224, 0, 0, 252), 5355)
        };
        g.udp(ws, port, dst, port, t, false);
    } else if roll < 0.68 {
        let s = *bg.ntp.choose(&mut g.rng).unwrap_or(&bg.ntp[0]);
        g.udp(ws, 123, s, 123, t, true);
    } else if roll < 0.73 {
        let r = *bg.resolvers.choose(&mut g.rng).unwrap_or(&bg.resolvers[0]);
        let sport = g.ephemeral();
        g.udp(DC, sport, r, 53, t, true);
    } else if roll < 0.77 {
        // Reply-direction flows from internet servers to workstations.
        let site = popular(&mut g.rng, &bg.favourites[w]);
        let svc = if g.rng.gen_bool(0.8) { 443 } else { 80 };
        g.reply(site, svc, ws, t);
    } else if roll < 0.80 {
        // ... and from the DC to workstations (DNS, LDAP, Kerberos).
        let svc = *[53, 53, 389, 88, 445].choose(&mut g.rng).unwrap_or(&53);
        g.reply(DC, svc, ws, t);
    } else if roll < 0.91 {
        let c = popular(&mut g.rng, &bg.web_clients);
        let port = if g.rng.gen_bool(0.7) { 443 } else { 80 };
        g.tcp_session(c, WEB, port, t, 0.5, "BENIGN");
    } else if roll < 0.94 {
        let c = popular(&mut g.rng, &bg.web_clients);
        let svc = if g.rng.gen_bool(0.7) { 443 } else { 80 };
        g.reply(WEB, svc, c, t);
    } else if roll < 0.96 {
        let m = *bg.mirrors.choose(&mut g.rng).unwrap_or(&bg.mirrors[0]);
        g.tcp_session(UBUNTU, m, 80, t, 2.0, "BENIGN");
    } else if roll < 0.98 {
        let sport = g.ephemeral();
        let src = if g.rng.gen_bool(0.5) { WEB } else { UBUNTU };
        g.udp(src, sport, DC, 53, t, true);
    } else if roll < 0.985 {
        // The firewall's own benign traffic to the web server.
        g.tcp_session(FIREWALL, WEB, 80, t, 0.3, "BENIGN");
    } else {
        // Workstations reach the internal servers' web pages.
        let port = if g.rng.gen_bool(0.5) { 80 } else { 443 };
        g.tcp_session(ws, WEB, port, t, 0.5, "BENIGN");
    }
}

/// FTP-Patator and SSH-Patator: 172.16.0.1 -> web server.
fn brute_force(g: &mut Gen, ftp: usize, ssh: usize) {
    for (count, port, from, to, label) in [
        (
            ftp,
            21u16,
            9 * 3600 + 20 * 60,
            10 * 3600 + 20 * 60,
            "FTP-Patator",
        ),
        (ssh, 22u16, 14 * 3600, 15 * 3600, "SSH-Patator"),
    ] {
        for _ in 0..count {
            let t = g.time(from, to);
            let fwd = g.rng.gen_range(6..14u32);
            let bwd = g.rng.gen_range(6..16u32);
            let sport = g.rng.gen_range(32768..61000u16);
            let fwd_bytes = fwd as u64 * g.rng.gen_range(10..40u64);
            let bwd_bytes = bwd as u64 * g.rng.gen_range(20..90u64);
            let duration_us = g.rng.gen_range(1_000_000..8_000_000u64);
            g.out.push(Spec {
                src: FIREWALL,
                sport,
                dst: WEB,
                dport: port,
                proto: 6,
                t,
                duration_us,
                fwd_pkts: fwd,
                bwd_pkts: bwd,
                fwd_bytes,
                bwd_bytes,
                syn: 1,
                rst: 0,
                fin: 1,
                label,
            });
        }
    }
}

/// The internal scan: 192.168.10.8 probes the other internal hosts.
fn internal_scan(g: &mut Gen, scan: usize) {
    let targets: Vec<Ipv4Addr> = WORKSTATIONS
        .iter()
        .copied()
        .filter(|w| *w != SCANNER)
        .chain([DC, UBUNTU])
        .collect();
    let open = |dst: Ipv4Addr, port: u16| match port {
        135 | 139 | 445 => dst != UBUNTU,
        22 => dst == UBUNTU,
        88 | 389 | 53 => dst == DC,
        _ => false,
    };
    let scan_from = 15 * 3600 + 4 * 60;
    let scan_to = 15 * 3600 + 45 * 60;
    for i in 0..scan {
        let dst = targets[i % targets.len()];
        let dport: u16 = if g.rng.gen_bool(0.85) {
            g.rng.gen_range(1..=1024)
        } else {
            *[3389, 5900, 8080, 5985, 1433, 3306, 8443, 49152]
                .choose(&mut g.rng)
                .unwrap_or(&3389)
        };
        let t = scan_from + (scan_to - scan_from) * i as u32 / scan as u32;
        let answered = open(dst, dport);
        let refused = !answered && g.rng.gen_bool(0.6);
        let sport = g.ephemeral();
        let duration_us = if answered || refused {
            g.rng.gen_range(1..400u64)
        } else {
            0
        };
        g.out.push(Spec {
            src: SCANNER,
            sport,
            dst,
            dport,
            proto: 6,
            t,
            duration_us,
            fwd_pkts: if answered { 2 } else { 1 },
            bwd_pkts: u32::from(answered || refused),
            fwd_bytes: 0,
            bwd_bytes: 0,
            syn: 1,
            rst: u8::from(refused || answered),
            fin: 0,
            label: "PortScan",
        });
    }
}

fn f(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.6}").trim_end_matches('0').to_string()
    }
}

/// `d/m/yyyy h:mm` on the 2017 files' 12-hour clock without AM/PM, on
/// 4 July 2017 plus `day` days.
fn stamp(t: u32, day: usize) -> String {
    let h = t / 3600;
    let m = t % 3600 / 60;
    let h12 = if h.is_multiple_of(12) { 12 } else { h % 12 };
    format!("{}/7/2017 {h12}:{m:02}", 4 + day)
}

/// What a row's derived columns are computed from.
struct Derived {
    /// Duration (µs).
    d: f64,
    pk: f64,
    bytes: f64,
    fmean: f64,
    bmean: f64,
    fiat: f64,
    biat: f64,
    hdr_f: f64,
    hdr_b: f64,
    minlen: f64,
    maxlen: f64,
}

impl Derived {
    fn of(s: &Spec) -> Derived {
        let d = s.duration_us as f64;
        let fmean = if s.fwd_pkts > 0 {
            s.fwd_bytes as f64 / s.fwd_pkts as f64
        } else {
            0.0
        };
        let bmean = if s.bwd_pkts > 0 {
            s.bwd_bytes as f64 / s.bwd_pkts as f64
        } else {
            0.0
        };
        let iat = |n: f64| if n > 1.0 { d / (n - 1.0) } else { 0.0 };
        Derived {
            d,
            pk: (s.fwd_pkts + s.bwd_pkts) as f64,
            bytes: (s.fwd_bytes + s.bwd_bytes) as f64,
            fmean,
            bmean,
            fiat: iat(s.fwd_pkts as f64),
            biat: iat(s.bwd_pkts as f64),
            hdr_f: s.fwd_pkts as f64 * 20.0,
            hdr_b: s.bwd_pkts as f64 * 20.0,
            minlen: if s.bwd_pkts > 0 {
                fmean.min(bmean)
            } else {
                fmean
            },
            maxlen: [fmean, bmean].iter().copied().fold(0.0, f64::max),
        }
    }

    /// A rate: CICFlowMeter divides by the duration in seconds, giving
    /// Infinity (or NaN for 0/0) on zero-duration flows.
    fn rate(&self, x: f64) -> String {
        if self.d == 0.0 {
            if x == 0.0 {
                "NaN".to_string()
            } else {
                "Infinity".to_string()
            }
        } else {
            f(x / (self.d / 1e6))
        }
    }

    /// The mean gap between `n` packets.
    fn iat(&self, n: f64) -> f64 {
        if n > 1.0 { self.d / (n - 1.0) } else { 0.0 }
    }
}

fn render(s: &Spec, day: usize, line: &mut String) {
    line.clear();
    let v = Derived::of(s);
    let mut cols = flow_columns(s, &v, day);
    cols.extend(flag_columns(s, &v));
    debug_assert_eq!(cols.len(), 85);
    // The real rows have no space after the commas; only the header has.
    line.push_str(&cols.join(","));
    line.push_str("\r\n");
}

/// The identity, volume, rate and inter-arrival columns (the first 40).
fn flow_columns(s: &Spec, v: &Derived, day: usize) -> Vec<String> {
    vec![
        format!("{}-{}-{}-{}-{}", s.src, s.dst, s.sport, s.dport, s.proto),
        s.src.to_string(),
        s.sport.to_string(),
        s.dst.to_string(),
        s.dport.to_string(),
        s.proto.to_string(),
        stamp(s.t, day),
        s.duration_us.to_string(),
        s.fwd_pkts.to_string(),
        s.bwd_pkts.to_string(),
        s.fwd_bytes.to_string(),
        s.bwd_bytes.to_string(),
        f(v.fmean),
        f(v.fmean),
        f(v.fmean),
        "0".into(),
        f(v.bmean),
        f(v.bmean),
        f(v.bmean),
        "0".into(),
        if v.d == 0.0 && v.bytes == 0.0 {
            "NaN".into()
        } else {
            v.rate(v.bytes)
        },
        v.rate(v.pk),
        f(v.iat(v.pk)),
        "0".into(),
        f(v.iat(v.pk)),
        f(v.iat(v.pk)),
        f(if s.fwd_pkts > 1 { v.d } else { 0.0 }),
        f(v.fiat),
        "0".into(),
        f(v.fiat),
        f(v.fiat),
        f(if s.bwd_pkts > 1 { v.d } else { 0.0 }),
        f(v.biat),
        "0".into(),
        f(v.biat),
        f(v.biat),
    ]
}

/// The flag, segment, window and label columns (the last 45).
fn flag_columns(s: &Spec, v: &Derived) -> Vec<String> {
    vec![
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        f(v.hdr_f),
        f(v.hdr_b),
        v.rate(s.fwd_pkts as f64),
        v.rate(s.bwd_pkts as f64),
        f(v.minlen),
        f(v.maxlen),
        f(if v.pk > 0.0 { v.bytes / v.pk } else { 0.0 }),
        "0".into(),
        "0".into(),
        s.fin.to_string(),
        s.syn.to_string(),
        s.rst.to_string(),
        u8::from(s.fwd_bytes > 0).to_string(),
        u8::from(s.bwd_pkts > 0).to_string(),
        "0".into(),
        "0".into(),
        "0".into(),
        f(s.bwd_pkts.checked_div(s.fwd_pkts).unwrap_or(0) as f64),
        f(if v.pk > 0.0 { v.bytes / v.pk } else { 0.0 }),
        f(v.fmean),
        f(v.bmean),
        f(v.hdr_f),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        s.fwd_pkts.to_string(),
        s.fwd_bytes.to_string(),
        s.bwd_pkts.to_string(),
        s.bwd_bytes.to_string(),
        if s.proto == 6 {
            "8192".into()
        } else {
            "-1".into()
        },
        if s.proto == 6 && s.bwd_pkts > 0 {
            "29200".into()
        } else {
            "-1".into()
        },
        u32::from(s.fwd_bytes > 0).to_string(),
        "20".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        "0".into(),
        s.label.to_string(),
    ]
}

/// Writes the synthetic day as CSV (header + rows, CRLF) to `w`.
pub fn write_day<W: Write + ?Sized>(cfg: &SynthConfig, w: &mut W) -> std::io::Result<SynthSummary> {
    let (specs, empty_rows) = generate(cfg);
    w.write_all(HEADER_2017.as_bytes())?;
    w.write_all(b"\r\n")?;
    let empty_line = format!("{}\r\n", ",".repeat(84));
    // Empty rows go in evenly spaced positions, as in the real file's tail.
    let every = (specs.len() / empty_rows.max(1)).max(1);
    let mut line = String::new();
    let mut summary = SynthSummary::default();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (i, s) in specs.iter().enumerate() {
        if i % every == every - 1 && summary.empty_rows < empty_rows {
            w.write_all(empty_line.as_bytes())?;
            summary.empty_rows += 1;
        }
        render(s, cfg.run.map_or(0, |r| r.index), &mut line);
        w.write_all(line.as_bytes())?;
        *counts.entry(s.label).or_default() += 1;
    }
    summary.rows = specs.len() + summary.empty_rows;
    summary.per_label = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Ok(summary)
}
