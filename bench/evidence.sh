#!/usr/bin/env bash
# Reproduces the README's evidence table: seed vs full features, and the
# Isolation Forest vs the Zeek-style rule baseline, on the synthetic day,
# the hard-case day and the real CIC-IDS2017 rows in ../shared.
# Needs only the Rust toolchain and python3 (standard library).
# Usage: bench/evidence.sh [work-dir]   (default: target/evidence)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/evidence}
mkdir -p "$work"
cargo build --release --quiet
lm=./target/release/latmove

[ -f "$work/day.csv.gz" ] || $lm synth --rows 445909 --seed 42 -o "$work/day.csv.gz" >/dev/null
[ -f "$work/hard.csv.gz" ] || $lm synth --scenario hard --rows 200000 --seed 7 -o "$work/hard.csv.gz" >/dev/null
[ -f "$work/hard-baseline.csv.gz" ] || $lm synth --scenario hard --benign-only --rows 200000 --seed 8 -o "$work/hard-baseline.csv.gz" >/dev/null
printf '# the organisation'"'"'s vulnerability scanner\n192.168.10.80\n' > "$work/allow.txt"

real=../shared/data/cic-ids2017-improved-samples
run() { # name, out, args...
  local name=$1 out=$2; shift 2
  $lm detect "$@" --no-charts --out "$work/$out" >/dev/null
  printf '%s\t%s\n' "$name" "$work/$out/metrics.json"
}
{
  run "synthetic day (cross-fitted) | seed" day-seed "$work/day.csv.gz" --features seed
  run "synthetic day (cross-fitted) | full" day-full "$work/day.csv.gz"
  run "synthetic day | Zeek-style rules" day-rules "$work/day.csv.gz" --detector rules
  run "hard day (--train baseline, --allow) | seed" hard-seed "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt" --features seed
  run "hard day (--train baseline, --allow) | full" hard-full "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt"
  run "hard day | Zeek-style rules" hard-rules "$work/hard.csv.gz" --allow "$work/allow.txt" --detector rules
  if [ -d "$real" ]; then
    run "real CIC-IDS2017 rows (cross-fitted) | seed" real-seed "$real" --features seed
    run "real CIC-IDS2017 rows (cross-fitted) | full" real-full "$real"
    run "real CIC-IDS2017 rows | Zeek-style rules" real-rules "$real" --detector rules
  fi
} > "$work/runs.tsv"

python3 - "$work/runs.tsv" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("| data | detector / features | attack hosts found | benign flagged (of) | ROC-AUC | AP | recall at 1% / 5% FPR | missed families |")
print("|---|---|---|---|---|---|---|---|")
for name, path in rows:
    m = json.load(open(path))["metrics"]
    data, det = name.split(" | ")
    pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"
    missed = ", ".join(f["family"] for f in m["families"] if f["flagged"] < f["hosts"]) or "none"
    print(f"| {data} | {det} | {m['tp']} of {m['attack_hosts']} | {m['fp']} of {m['benign_hosts']} | "
          f"{m['roc_auc']:.3f} | {m['average_precision']:.3f} | "
          f"{pct(m['recall_at_1pct_fpr'])} / {pct(m['recall_at_5pct_fpr'])} | {missed} |")
PY
