//! Alerts a SIEM ingests: one per flagged host, as NDJSON with Elastic
//! Common Schema field names, or as ArcSight CEF lines.
//!
//! Times are the flow times of the host's peak window (or first/last seen),
//! written as ISO 8601 without a zone, exactly as the flow files give them
//! (the 2017 files are local time, UTC-3; the corrected release is UTC). The
//! alert's `@timestamp` is the end of that activity, so the same input always
//! gives the same alerts.

use serde_json::{Value, json};

use crate::cli::watch::{IncidentAction, IncidentView};
use crate::detect::{Detection, HostResult};
use crate::flows::timestamp::format_timestamp;
use crate::output::report::{explain, sentence};

fn iso(t: Option<f64>) -> Option<String> {
    t.map(|t| format_timestamp(t).replace(' ', "T"))
}

fn feature(d: &Detection, h: &HostResult, name: &str) -> f64 {
    d.feature_names
        .iter()
        .position(|n| *n == name)
        .map_or(0.0, |j| h.features[j])
}

/// Risk 0-100 from the score, and ECS-style severity (21 low, 47 medium,
/// 73 high, 99 critical) from how far above the threshold it is.
fn risk(d: &Detection, h: &HostResult) -> (f64, u32) {
    let risk = (h.score * 1000.0).round() / 10.0;
    let margin = h.score - d.threshold;
    let severity = match margin {
        m if m > 0.15 => 99,
        m if m > 0.08 => 73,
        m if m > 0.03 => 47,
        _ => 21,
    };
    (risk, severity)
}

/// ATT&CK mapping from the behaviour: discovery (T1046) when the host
/// probed many ports or hosts with many failures; lateral movement (TA0008)
/// when it reached sensitive services on internal hosts.
fn attack_mapping(d: &Detection, h: &HostResult) -> (Vec<Value>, Vec<Value>) {
    let scan = feature(d, h, "unanswered_share") >= 0.3
        || feature(d, h, "max_ports_one_host") >= 15.0
        || feature(d, h, "max_hosts_one_port") >= 25.0
        || feature(d, h, "unique_dst_ports") >= 100.0;
    let lateral =
        feature(d, h, "sensitive_ports") >= 2.0 && feature(d, h, "internal_dst_ips") >= 3.0;
    let mut tactics = Vec::new();
    let mut techniques = Vec::new();
    if scan || !lateral {
        tactics.push(json!({"id": "TA0007", "name": "Discovery", "reference": "https://attack.mitre.org/tactics/TA0007/"}));
        techniques.push(json!({"id": "T1046", "name": "Network Service Discovery", "reference": "https://attack.mitre.org/techniques/T1046/"}));
    }
    if lateral {
        tactics.push(json!({"id": "TA0008", "name": "Lateral Movement", "reference": "https://attack.mitre.org/tactics/TA0008/"}));
    }
    (tactics, techniques)
}

fn window_span(d: &Detection, h: &HostResult) -> (Option<f64>, Option<f64>) {
    match (h.peak_window_start, d.window_secs) {
        (Some(s), Some(w)) => (Some(s), Some(s + f64::from(w))),
        _ => (h.first_seen, h.last_seen),
    }
}

/// One ECS alert document.
pub(crate) fn ecs_alert(d: &Detection, h: &HostResult) -> Value {
    let (risk, severity) = risk(d, h);
    let (tactics, techniques) = attack_mapping(d, h);
    let (start, end) = window_span(d, h);
    let features: serde_json::Map<String, Value> = d
        .feature_names
        .iter()
        .zip(&h.features)
        .map(|(n, v)| (n.to_string(), json!(v)))
        .collect();
    json!({
        "@timestamp": iso(end),
        "event": {
            "kind": "alert",
            "category": ["network"],
            "type": ["info"],
            "module": "latmove",
            "dataset": "latmove.host",
            "start": iso(start),
            "end": iso(end),
            "risk_score": risk,
            "severity": severity,
        },
        "rule": {
            "name": "latmove: host behaves like a scanner or lateral mover",
            "id": "latmove-host-anomaly",
            "ruleset": "latmove",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "threat": {
            "framework": "MITRE ATT&CK",
            "tactic": tactics,
            "technique": techniques,
        },
        "source": {"ip": h.ip.to_string()},
        "related": {"ip": [h.ip.to_string()]},
        "message": format!("{}: {}. Why: {}", h.ip, sentence(d, h), explain(d, h)),
        "latmove": {
            "score": h.score,
            "threshold": d.threshold,
            "rank": h.rank,
            "flows": h.flows,
            "windows_flagged": h.windows_flagged,
            "first_flagged_window": iso(h.first_flagged_window),
            "label": h.attack_labels,
            "features": features,
        },
    })
}

/// [`ecs_alert`] with the host's comparison with its own past, when the
/// run had a history, and with its peer group, when the run had groups.
fn with_baseline(mut v: Value, d: &Detection, h: &HostResult) -> Value {
    if let Some(text) = h.own_past() {
        v["latmove"]["baseline"] = json!(text);
    }
    if let Some(g) = d.groups.iter().find(|g| g.name == h.peer_group) {
        v["latmove"]["peer_group"] = match (g.threshold, h.peer_score) {
            (Some(t), Some(score)) => json!({
                "name": g.name,
                "score": score,
                "threshold": t,
                "judged": "against its peer group and all hosts",
            }),
            _ => json!({
                "name": g.name,
                "judged": "against all hosts only (too few training hosts for a group of its own)",
            }),
        };
    }
    v
}

/// NDJSON: one ECS alert per flagged host, in rank order.
pub(crate) fn ecs_ndjson(d: &Detection) -> Vec<u8> {
    let mut out = Vec::new();
    for h in d.flagged() {
        out.extend(
            serde_json::to_vec(&with_baseline(ecs_alert(d, h), d, h))
                .expect("JSON values serialise"),
        );
        out.push(b'\n');
    }
    out
}

/// The incident part of a record.
fn incident_json(i: &IncidentView) -> Value {
    json!({
        "id": i.id,
        "status": i.action.word(),
        "opened": iso(Some(i.opened)),
        "last_above_threshold": iso(Some(i.last_above)),
        "highest_score": i.score,
        "families": i.families,
        "windows_above_threshold": i.windows,
        "alerts": i.alerts,
    })
}

/// The ECS alert of a host whose window opened or escalated an incident
/// (`watch`): the host's alert with the incident's id and state.
pub(crate) fn ecs_incident(d: &Detection, h: &HostResult, i: &IncidentView) -> Value {
    let mut v = with_baseline(ecs_alert(d, h), d, h);
    v["event"]["action"] = json!(format!("incident-{}", i.action.word()));
    v["latmove"]["first_flagged_window"] = json!(iso(Some(i.opened)));
    v["latmove"]["incident"] = incident_json(i);
    v
}

/// A record of an incident's state without a new alert (closed, or the
/// daily summary of an open one) at time `t`: ECS `event.kind: state`, or
/// a CEF line of severity 1.
pub(crate) fn incident_notice(i: &IncidentView, t: f64, format: &str) -> Vec<u8> {
    let what = match i.action {
        IncidentAction::Closed => "closed after a quiet period",
        _ => "still open",
    };
    let message = format!(
        "{}: incident {} {what}; opened {}, last above the threshold {}, highest score {:.3}",
        i.ip,
        i.id,
        format_timestamp(i.opened),
        format_timestamp(i.last_above),
        i.score
    );
    if format == "cef" {
        let ext = [
            ("rt", format!("{}", (t * 1000.0).round() as i64)),
            ("src", i.ip.to_string()),
            ("act", i.action.word().to_string()),
            ("cs4Label", "latmoveIncident".to_string()),
            ("cs4", i.id.clone()),
            ("cn1Label", "latmoveScore".to_string()),
            ("cn1", format!("{:.4}", i.score)),
            ("msg", message),
        ];
        return cef_record("latmove-incident-state", "Incident state", 1, &ext);
    }
    let mut v = serde_json::to_vec(&json!({
        "@timestamp": iso(Some(t)),
        "event": {
            "kind": "state",
            "action": format!("incident-{}", i.action.word()),
            "category": ["network"],
            "type": ["info"],
            "module": "latmove",
            "dataset": "latmove.incident",
        },
        "source": {"ip": i.ip.to_string()},
        "related": {"ip": [i.ip.to_string()]},
        "message": message,
        "latmove": {"incident": incident_json(i)},
    }))
    .expect("JSON values serialise");
    v.push(b'\n');
    v
}

/// Escapes a CEF header field: backslash and pipe.
pub(crate) fn cef_escape_header(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '|' => o.push_str("\\|"),
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// Escapes a CEF extension value: backslash, equals sign, newlines.
pub(crate) fn cef_escape_value(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '=' => o.push_str("\\="),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

/// One CEF line per flagged host.
pub(crate) fn cef_lines(d: &Detection) -> Vec<u8> {
    d.flagged().flat_map(|h| cef_line(d, h)).collect()
}

/// The CEF line of one host, newline included.
pub(crate) fn cef_line(d: &Detection, h: &HostResult) -> Vec<u8> {
    let (_, severity) = risk(d, h);
    let cef_severity = match severity {
        99 => 10,
        73 => 8,
        47 => 5,
        _ => 3,
    };
    let (start, end) = window_span(d, h);
    let ms = |t: Option<f64>| {
        t.map_or(String::new(), |t| {
            format!("{}", (t * 1000.0).round() as i64)
        })
    };
    let mut ext = vec![
        ("rt", ms(end)),
        ("start", ms(start)),
        ("end", ms(end)),
        ("src", h.ip.to_string()),
        ("cat", "network/lateral-movement".to_string()),
        ("cn1Label", "latmoveScore".to_string()),
        ("cn1", format!("{:.4}", h.score)),
        ("cn2Label", "latmoveRank".to_string()),
        ("cn2", h.rank.to_string()),
        ("msg", format!("{}. Why: {}", sentence(d, h), explain(d, h))),
    ];
    if d.groups.iter().any(|g| g.name == h.peer_group) {
        ext.push(("cs5Label", "latmovePeerGroup".to_string()));
        ext.push(("cs5", h.peer_group.clone()));
    }
    cef_record(
        "latmove-host-anomaly",
        "Host behaves like a scanner or lateral mover",
        cef_severity,
        &ext,
    )
}

/// The CEF line of a host's window that opened or escalated an incident:
/// its alert line with the incident's id and the action.
pub(crate) fn cef_incident_line(d: &Detection, h: &HostResult, i: &IncidentView) -> Vec<u8> {
    let mut line = cef_line(d, h);
    line.pop();
    line.extend_from_slice(
        format!(
            " act={} cs4Label=latmoveIncident cs4={}\n",
            cef_escape_value(i.action.word()),
            cef_escape_value(&i.id)
        )
        .as_bytes(),
    );
    line
}

/// One CEF line: the header fields escaped, then the extension.
fn cef_record(id: &str, name: &str, severity: u32, ext: &[(&str, String)]) -> Vec<u8> {
    let ext: Vec<String> = ext
        .iter()
        .map(|(k, v)| format!("{k}={}", cef_escape_value(v)))
        .collect();
    format!(
        "CEF:0|{}|{}|{}|{}|{}|{}|{}\n",
        cef_escape_header("latmove"),
        cef_escape_header("latmove"),
        cef_escape_header(env!("CARGO_PKG_VERSION")),
        cef_escape_header(id),
        cef_escape_header(name),
        severity,
        ext.join(" ")
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escaping() {
        assert_eq!(cef_escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(cef_escape_header("x=y"), "x=y");
        assert_eq!(cef_escape_value("a=b\\c\nd\re|f"), "a\\=b\\\\c\\nd\\re|f");
    }

    #[test]
    fn cef_escaping_follows_the_specification() {
        assert_eq!(cef_escape_header("a|b"), "a\\|b");
        assert_eq!(cef_escape_header("back\\slash"), "back\\\\slash");
        assert_eq!(cef_escape_value("k=v"), "k\\=v");
        assert_eq!(cef_escape_value("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(cef_escape_value("c:\\temp"), "c:\\\\temp");
        assert_eq!(cef_escape_value("pipes|stay"), "pipes|stay");
    }
}
