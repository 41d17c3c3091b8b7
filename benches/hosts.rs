//! What a million hosts cost: profiles built from one million source hosts,
//! each with 8 flows to 4 destinations (two of them internal) on 3 ports
//! within one 15-minute window, then the feature table.
//!
//! `cargo bench --bench hosts` prints the peak resident memory (VmHWM from
//! /proc/self/status, Linux) after each step, and the time. Run on its own:
//! the peak is the process's.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use latmove::flows::record::FlowRecord;
use latmove::profile::features::{FULL_FEATURES, FeatureTable};
use latmove::profile::{ProfileBuilder, ProfileOptions};

fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let hosts: u32 = 1_000_000;
    let window = std::env::args().any(|a| a == "--windows");
    let options = ProfileOptions {
        window_secs: window.then_some(900),
        ..Default::default()
    };
    let base = peak_mb();
    let t = Instant::now();
    let mut b = ProfileBuilder::with_options(options);
    for h in 0..hosts {
        // Sources spread over 10.0.0.0/8 and the internet.
        let src = if h % 2 == 0 {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (h & 0x00ff_ffff)))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x2000_0000 + h))
        };
        for k in 0..8u32 {
            let dst = match k % 4 {
                0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
                1 => IpAddr::V4(Ipv4Addr::new(10, 0, 1, (h % 200) as u8)),
                _ => IpAddr::V4(Ipv4Addr::from(
                    0x5000_0000 + (h.wrapping_mul(31) + k) % 50_000,
                )),
            };
            let port = [53u16, 445, 443][(k % 3) as usize];
            b.add_record(&FlowRecord::from_parts(
                (src, Some(50_000 + k as u16)),
                (dst, port),
                [
                    Some(1_499_170_000.0 + f64::from(k * 60)),
                    Some(1000.0 * f64::from(k + 1)),
                    Some(3.0),
                    Some(f64::from(k % 2)),
                    Some(120.0),
                    Some(0.0),
                    Some(0.0),
                ],
                Some(None),
            ));
        }
    }
    let profiles = b.finish();
    let built = t.elapsed();
    let after_profiles = peak_mb();
    let refs: Vec<_> = if window {
        profiles.windows.iter().map(|w| &w.profile).collect()
    } else {
        profiles.hosts.iter().collect()
    };
    let table = FeatureTable::build(&refs, FULL_FEATURES);
    let after_table = peak_mb();
    println!(
        "| {} hosts, 8 flows each{} | profiles {:.1} s, peak {:.0} MB ({:.0} bytes a host) | + feature table ({} x {}): peak {:.0} MB |",
        profiles.hosts.len(),
        if window { ", 15-min windows" } else { "" },
        built.as_secs_f64(),
        after_profiles,
        (after_profiles - base) * 1024.0 * 1024.0 / f64::from(hosts),
        table.values.nrows(),
        table.values.ncols(),
        after_table
    );
}
