"""Summarises a monitoring run for the README's table: the alerts `watch`
wrote (NDJSON), against the attacks the flow files' labels mark.

usage: monitor.py ALERTS.ndjson FLOWS.csv[.gz] ...

Prints one Markdown row fragment: alerts, hosts alerted, benign hosts
alerted, windows above the threshold passed over, and per attacker the
time from its first attack flow to the first alert raised at or after it
(an alert is written when its window closes).
"""
import csv
import datetime as dt
import gzip
import json
import sys


def open_text(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="latin-1", newline="")
    return open(path, encoding="latin-1", newline="")


def stamp(text):
    """The 2017 files' d/m/yyyy h:mm, 12-hour clock without AM/PM (1-6 is
    the afternoon)."""
    day, clock = text.strip().split(" ")
    d, m, y = (int(x) for x in day.split("/"))
    h, mi = (int(x) for x in clock.split(":")[:2])
    if 1 <= h <= 6:
        h += 12
    return dt.datetime(y, m, d, h, mi)


def attacks(paths):
    """First attack flow per (attacker, label)."""
    first = {}
    for p in paths:
        with open_text(p) as f:
            r = csv.reader(f)
            h = [c.strip() for c in next(r)]
            si, ti, li = h.index("Source IP"), h.index("Timestamp"), h.index("Label")
            for row in r:
                if len(row) <= li or row[li].strip() in ("", "BENIGN"):
                    continue
                key = (row[si], row[li].strip())
                t = stamp(row[ti])
                if key not in first or t < first[key]:
                    first[key] = t
    return first


def main(alerts_path, flows):
    first = attacks(flows)
    attackers = {ip for ip, _ in first}
    alerts = []
    for line in open(alerts_path, encoding="utf-8"):
        a = json.loads(line)
        if a["event"]["kind"] != "alert":
            continue
        alerts.append((a["source"]["ip"], dt.datetime.fromisoformat(a["event"]["end"])))
    hosts = {ip for ip, _ in alerts}
    benign = hosts - attackers
    delays = []
    for (ip, label), t0 in sorted(first.items(), key=lambda kv: kv[1]):
        after = [end for a_ip, end in alerts if a_ip == ip and end > t0]
        delay = f"{int((min(after) - t0).total_seconds() // 60)} min" if after else "never"
        delays.append(f"{ip} {label}: {delay}")
    per_attacker = {ip: sum(1 for a_ip, _ in alerts if a_ip == ip) for ip in sorted(attackers)}
    print(
        f"| {len(alerts)} | {len(hosts)} | {len(benign)} | "
        + ", ".join(f"{ip} {n}" for ip, n in per_attacker.items())
        + " | "
        + "; ".join(delays)
        + " |"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
