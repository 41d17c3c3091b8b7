//! Suricata's `eve.json`: one JSON object a line, of which latmove reads
//! the `flow` events (`src_ip`, `src_port`, `dest_ip`, `dest_port`,
//! `proto`, `flow.{start, end, pkts_toserver, pkts_toclient,
//! bytes_toserver, bytes_toclient, state}`, `tcp.tcp_flags_tc`); every
//! other event type (alerts, dns, http, stats, `netflow`) is skipped and
//! counted.
//!
//! Suricata's source is the client, the initiator. The server answered
//! when it sent packets, unless all it sent was a reset (`tcp_flags_tc`
//! holding RST and no SYN, with at most one packet back). `flow_id` is
//! carried to the forensic flows, to pivot to the sensor's other events.

use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};

use super::{Emit, is_icmp, parse_time, protocol, timed_flow};
use crate::flows::lines::LineReader;
use crate::flows::{Flow, FlowMeta, ReadError, Reply, SkipReason, parse_ip};

/// Reads eve.json lines, the first being `first`.
pub(crate) fn read<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line): (&[u8], u64),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    event(first, first_line, out);
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        event(bytes, line_no, out);
        Ok(true)
    })
}

fn event<F: FnMut(&Flow<'_>)>(bytes: &[u8], line: u64, out: &mut Emit<'_, F>) {
    out.stats.rows += 1;
    let o = match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => o,
        _ => {
            out.skip(SkipReason::BadRecord, line, "(whole line)", bytes);
            return;
        }
    };
    if o.get("event_type").and_then(Value::as_str) != Some("flow") {
        out.skip_quietly(SkipReason::OtherEvent);
        return;
    }
    match flow_event(&o, out) {
        Ok(()) => {}
        Err((reason, field)) => {
            let v = lookup(&o, field).map(text).unwrap_or_default();
            out.skip(reason, line, field, v.as_bytes());
        }
    }
}

/// A dotted path into nested objects (`flow.pkts_toserver`).
fn lookup<'a>(o: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = o.get(parts.next()?)?;
    for p in parts {
        v = v.as_object()?.get(p)?;
    }
    (!v.is_null()).then_some(v)
}

/// A value's text (strings without their quotes).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn flow_event<F: FnMut(&Flow<'_>)>(
    o: &Map<String, Value>,
    out: &mut Emit<'_, F>,
) -> Result<(), (SkipReason, &'static str)> {
    let ip = |k: &'static str, reason: SkipReason| {
        lookup(o, k)
            .and_then(Value::as_str)
            .and_then(|s| parse_ip(s.as_bytes()))
            .ok_or((reason, k))
    };
    let src = ip("src_ip", SkipReason::BadSourceIp)?;
    let dst = ip("dest_ip", SkipReason::BadDestinationIp)?;
    let proto = lookup(o, "proto").and_then(|p| protocol(text(p).as_bytes()));
    let port = |k: &'static str| -> Result<Option<u16>, (SkipReason, &'static str)> {
        match lookup(o, k) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .map(Some)
                .ok_or((SkipReason::BadPort, k)),
        }
    };
    let (sport, dport) = (port("src_port")?, port("dest_port")?);
    let (sport, dport) = if is_icmp(proto) {
        (None, 0)
    } else {
        (sport, dport.unwrap_or(0))
    };
    let num = |k: &'static str| -> Result<Option<f64>, (SkipReason, &'static str)> {
        match lookup(o, k) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or((SkipReason::BadNumber, k)),
        }
    };
    let to_server = out.count(num("flow.pkts_toserver")?);
    let to_client = out.count(num("flow.pkts_toclient")?);
    let bytes_server = out.count(num("flow.bytes_toserver")?);
    let bytes_client = out.count(num("flow.bytes_toclient")?);
    let mut time = |k: &str| {
        let v = lookup(o, k)?;
        let t = parse_time(text(v).as_bytes());
        if t.is_none() {
            out.bad_time();
        }
        t
    };
    let start = time("flow.start").or_else(|| time("timestamp"));
    let end = time("flow.end");
    let tc_flags = lookup(o, "tcp.tcp_flags_tc")
        .and_then(Value::as_str)
        .and_then(|s| u8::from_str_radix(s, 16).ok());
    let reply = match (to_client, proto) {
        (Some(back), Some(6)) => {
            let only_reset = tc_flags.is_some_and(|f| f & 0x04 != 0 && f & 0x02 == 0);
            if back == 0.0 || (only_reset && back <= 1.0) {
                Reply::Unanswered
            } else {
                Reply::Answered
            }
        }
        (Some(back), _) => {
            if back == 0.0 {
                Reply::Unanswered
            } else {
                Reply::Answered
            }
        }
        (None, _) => Reply::Unknown,
    };
    let flow_id = lookup(o, "flow_id").map(text);
    let mut f = timed_flow(
        (src, sport),
        (dst, dport),
        proto,
        (start, end),
        FlowMeta {
            initiator_known: true,
            reply,
            ..FlowMeta::default()
        },
    );
    f.fwd_packets = to_server;
    f.bwd_packets = to_client;
    f.fwd_bytes = bytes_server;
    f.bwd_bytes = bytes_client;
    f.flow_id = flow_id.as_deref().map(str::as_bytes);
    out.flow(&f);
    Ok(())
}
