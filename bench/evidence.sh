#!/usr/bin/env bash
# Reproduces the README's evidence table: seed vs full features, and the
# Isolation Forest vs the Zeek-style rule baseline, on the synthetic day,
# the hard-case day and the real CIC-IDS2017 rows in ../shared.
# Needs only the Rust toolchain and python3 (standard library).
# Each forest row is run with seeds 42, 1, 2, 3 and 4: the table shows seed
# 42 and, in brackets, the range over the five.
# Usage: bench/evidence.sh [work-dir]   (default: target/evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/evidence}
mkdir -p "$work"
cargo build --release --quiet
lm=./target/release/latmove

# shellcheck source=bench/days.sh
. bench/days.sh
# A network with enough workstations for a peer group of their own (300, as
# busy as a third of the standard day's ten each).
[ -f "$work/ws300.csv" ] || $lm synth --workstations 300 --rows 4459090 --seed 42 -o "$work/ws300.csv" >/dev/null
[ -f "$work/benign-day.csv.gz" ] || $lm synth --benign-only --rows 445909 --seed 12 -o "$work/benign-day.csv.gz" >/dev/null
# Each host's own past, from a benign day (see docs/monitoring.md).
rm -rf "$work/past-day" "$work/past-hard"
$lm train "$work/benign-day.csv.gz" -o "$work/benign-day.model.json" --out "$work/train-day" --history "$work/past-day" >/dev/null 2>&1
$lm train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt" -o "$work/hard-baseline.model.json" --out "$work/train-hard" --history "$work/past-hard" >/dev/null 2>&1

real=../shared/data/cic-ids2017-improved-samples
seeds="42 1 2 3 4"
run() { # name, out, args...  (the forest: once per seed; rules: once)
  local name=$1 out=$2; shift 2
  local list=$seeds
  case "$*" in *"--detector rules"*) list=42 ;; esac
  for s in $list; do
    $lm detect "$@" --seed "$s" --no-charts --out "$work/$out-$s" >/dev/null
    printf '%s\t%s\t%s\n' "$name" "$s" "$work/$out-$s/metrics.json"
  done
}
run_past() { # name, out, past, args...: each seed on a fresh copy of the past
  local name=$1 out=$2 past=$3; shift 3
  for s in $seeds; do
    rm -rf "$work/$out-$s-past" && cp -r "$past" "$work/$out-$s-past"
    $lm detect "$@" --seed "$s" --history "$work/$out-$s-past" --no-charts --out "$work/$out-$s" >/dev/null 2>&1
    printf '%s\t%s\t%s\n' "$name" "$s" "$work/$out-$s/metrics.json"
  done
}
{
  run "synthetic day (cross-fitted) | seed" day-seed "$work/day.csv.gz" --features seed
  run "synthetic day (cross-fitted) | full" day-full "$work/day.csv.gz"
  run_past "synthetic day (cross-fitted, --history of a benign day) | full" day-past "$work/past-day" "$work/day.csv.gz"
  run "synthetic day | Zeek-style rules" day-rules "$work/day.csv.gz" --detector rules
  run "300 workstations (cross-fitted) | full" ws300-full "$work/ws300.csv"
  run "300 workstations (cross-fitted, --no-peer-groups) | full" ws300-all "$work/ws300.csv" --no-peer-groups
  run "hard day (--train baseline, --allow) | seed" hard-seed "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt" --features seed
  run "hard day (--train baseline, --allow) | full" hard-full "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt"
  run_past "hard day (--train baseline, --allow, --history of it) | full" hard-past "$work/past-hard" "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt"
  run "hard day | Zeek-style rules" hard-rules "$work/hard.csv.gz" --allow "$work/allow.txt" --detector rules
  if [ -d "$real" ]; then
    run "real CIC-IDS2017 rows (cross-fitted) | seed" real-seed "$real" --features seed
    run "real CIC-IDS2017 rows (cross-fitted) | full" real-full "$real"
    run "real CIC-IDS2017 rows | Zeek-style rules" real-rules "$real" --detector rules
  fi
} > "$work/runs.tsv"

python3 - "$work/runs.tsv" <<'PY'
import json, sys
from collections import OrderedDict
runs = OrderedDict()
for line in open(sys.argv[1]):
    name, seed, path = line.rstrip("\n").split("\t")
    runs.setdefault(name, []).append((seed, json.load(open(path))["metrics"]))
def span(vals, fmt="{}"):
    lo, hi = fmt.format(min(vals)), fmt.format(max(vals))
    return lo if lo == hi else lo + "-" + hi
print("| data | detector / features | attack hosts found | benign flagged (of) | ROC-AUC | AP | recall at 1% / 5% FPR | missed families |")
print("|---|---|---|---|---|---|---|---|")
for name, rs in runs.items():
    data, det = name.split(" | ")
    m = rs[0][1]  # seed 42
    pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"
    missed = ", ".join(f["family"] for f in m["families"] if f["flagged"] < f["hosts"]) or "none"
    found = f"{m['tp']} of {m['attack_hosts']}"
    fp = f"{m['fp']} of {m['benign_hosts']}"
    auc = f"{m['roc_auc']:.3f}"
    ap = f"{m['average_precision']:.3f}"
    if len(rs) > 1:
        ms = [x[1] for x in rs]
        found += f" ({span([x['tp'] for x in ms])})"
        fp += f" ({span([x['fp'] for x in ms])})"
        auc += f" ({span([x['roc_auc'] for x in ms], '{:.3f}')})"
        ap += f" ({span([x['average_precision'] for x in ms], '{:.3f}')})"
        worse = sorted({f["family"] for x in ms for f in x["families"] if f["flagged"] < f["hosts"]})
        if worse and missed == "none":
            missed = "none (other seeds: " + ", ".join(worse) + ")"
        elif worse:
            missed += " (other seeds: " + ", ".join(worse) + ")"
    print(f"| {data} | {det} | {found} | {fp} | {auc} | {ap} | "
          f"{pct(m['recall_at_1pct_fpr'])} / {pct(m['recall_at_5pct_fpr'])} | {missed} |")
PY
