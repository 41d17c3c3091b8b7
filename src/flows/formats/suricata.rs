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

use serde_json::value::RawValue;

use super::{Emit, json_text, parse_time, protocol, timed_flow};
use crate::flows::lines::LineReader;
use crate::flows::{Flow, FlowMeta, ReadError, Reply, SkipReason, parse_ip, parse_port};

/// Reads eve.json lines, the first being `first`.
pub(crate) fn read<R: Read, F: FnMut(&Flow<'_>)>(
    path: &Path,
    (first, first_line, terminated): (&[u8], u64, bool),
    lines: &mut LineReader<R>,
    out: &mut Emit<'_, F>,
) -> Result<(), ReadError> {
    if terminated {
        event(first, first_line, out);
    } else {
        out.stats.rows += 1;
        out.skip(
            SkipReason::UnterminatedLine,
            first_line,
            "(whole line)",
            first,
        );
    }
    super::each_line(path, lines, first_line, out, |bytes, line_no, out| {
        event(bytes, line_no, out);
        Ok(true)
    })
}

fn event<F: FnMut(&Flow<'_>)>(bytes: &[u8], line: u64, out: &mut Emit<'_, F>) {
    out.stats.rows += 1;
    let Ok(e) = serde_json::from_slice::<Eve<'_>>(bytes) else {
        out.skip(SkipReason::BadRecord, line, "(whole line)", bytes);
        return;
    };
    if e.event_type.and_then(json_text).as_deref() != Some(b"flow") {
        out.skip_quietly(SkipReason::OtherEvent);
        return;
    }
    match flow_event(&e, out) {
        Ok(()) => {}
        Err((reason, field)) => {
            let v = e.raw(field).and_then(json_text).unwrap_or_default();
            out.skip(reason, line, field, &v);
        }
    }
}

/// One eve.json event, the fields latmove reads borrowed from the line as
/// raw JSON (every other field, and every other event's body, passed
/// over without building a value tree).
#[derive(serde::Deserialize)]
struct Eve<'a> {
    #[serde(borrow, default)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    flow_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    src_ip: Option<&'a RawValue>,
    #[serde(borrow, default)]
    src_port: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dest_ip: Option<&'a RawValue>,
    #[serde(borrow, default)]
    dest_port: Option<&'a RawValue>,
    #[serde(borrow, default)]
    proto: Option<&'a RawValue>,
    #[serde(borrow, default)]
    flow: Option<EveFlow<'a>>,
    #[serde(borrow, default)]
    tcp: Option<EveTcp<'a>>,
}

#[derive(serde::Deserialize)]
struct EveFlow<'a> {
    #[serde(borrow, default)]
    pkts_toserver: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pkts_toclient: Option<&'a RawValue>,
    #[serde(borrow, default)]
    bytes_toserver: Option<&'a RawValue>,
    #[serde(borrow, default)]
    bytes_toclient: Option<&'a RawValue>,
    #[serde(borrow, default)]
    start: Option<&'a RawValue>,
    #[serde(borrow, default)]
    end: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct EveTcp<'a> {
    #[serde(borrow, default)]
    tcp_flags_tc: Option<&'a RawValue>,
}

impl<'a> Eve<'a> {
    /// A field by its dotted path (`flow.pkts_toserver`).
    fn raw(&self, path: &str) -> Option<&'a RawValue> {
        let flow = self.flow.as_ref();
        match path {
            "event_type" => self.event_type,
            "timestamp" => self.timestamp,
            "flow_id" => self.flow_id,
            "src_ip" => self.src_ip,
            "src_port" => self.src_port,
            "dest_ip" => self.dest_ip,
            "dest_port" => self.dest_port,
            "proto" => self.proto,
            "flow.pkts_toserver" => flow?.pkts_toserver,
            "flow.pkts_toclient" => flow?.pkts_toclient,
            "flow.bytes_toserver" => flow?.bytes_toserver,
            "flow.bytes_toclient" => flow?.bytes_toclient,
            "flow.start" => flow?.start,
            "flow.end" => flow?.end,
            "tcp.tcp_flags_tc" => self.tcp.as_ref()?.tcp_flags_tc,
            _ => None,
        }
    }

    /// A field's text (see [`json_text`]).
    fn text(&self, path: &str) -> Option<std::borrow::Cow<'a, [u8]>> {
        json_text(self.raw(path)?)
    }
}

fn flow_event<F: FnMut(&Flow<'_>)>(
    o: &Eve<'_>,
    out: &mut Emit<'_, F>,
) -> Result<(), (SkipReason, &'static str)> {
    let ip = |k: &'static str, reason: SkipReason| {
        o.text(k).and_then(|s| parse_ip(&s)).ok_or((reason, k))
    };
    let src = ip("src_ip", SkipReason::BadSourceIp)?;
    let dst = ip("dest_ip", SkipReason::BadDestinationIp)?;
    let proto = o.text("proto").and_then(|p| protocol(&p));
    let port = |k: &'static str| -> Result<Option<u16>, (SkipReason, &'static str)> {
        match o.raw(k) {
            None => Ok(None),
            // A number: a string, even of digits, is no port here.
            Some(v) => parse_port(v.get().as_bytes())
                .map(Some)
                .ok_or((SkipReason::BadPort, k)),
        }
    };
    let (sport, dport) = (port("src_port")?, port("dest_port")?);
    let (sport, dport) = super::flow_ports(proto, sport, dport);
    let num = |k: &'static str| -> Result<Option<f64>, (SkipReason, &'static str)> {
        match o.raw(k) {
            None => Ok(None),
            Some(v) => match v.get().parse::<f64>() {
                Ok(x) => Ok(Some(x)),
                Err(_) => Err((SkipReason::BadNumber, k)),
            },
        }
    };
    let to_server = out.count(num("flow.pkts_toserver")?);
    let to_client = out.count(num("flow.pkts_toclient")?);
    let bytes_server = out.count(num("flow.bytes_toserver")?);
    let bytes_client = out.count(num("flow.bytes_toclient")?);
    let mut time = |k: &str| {
        let v = o.text(k)?;
        let t = parse_time(&v);
        if t.is_none() {
            out.bad_time();
        }
        t
    };
    let start = time("flow.start").or_else(|| time("timestamp"));
    let end = time("flow.end");
    let tc_flags = o
        .text("tcp.tcp_flags_tc")
        .and_then(|s| u8::from_str_radix(std::str::from_utf8(&s).ok()?, 16).ok());
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
    let flow_id = o.text("flow_id");
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
    super::set_counts(&mut f, (to_server, to_client), (bytes_server, bytes_client));
    f.flow_id = flow_id.as_deref();
    out.flow(&f);
    Ok(())
}
