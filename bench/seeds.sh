#!/usr/bin/env bash
# How often the seed decides: runs `detect` with the defaults (and each
# forest size in TREES) on the synthetic day, the hard day (--train its
# baseline, --allow its scanner) and the real CIC-IDS2017 rows over many
# seeds, and counts the seeds at which every attacking host is flagged.
# Needs only the Rust toolchain and python3 (standard library); about four
# minutes with the defaults.
# Usage: bench/seeds.sh [work-dir] [seeds] [real-row seeds]
#   (defaults: target/evidence, 25 seeds, 100 seeds; TREES="100 200 300";
#    EXTRA="--contamination 0.003" adds options to every run)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
work=${1:-target/evidence}
nseeds=${2:-25}
nreal=${3:-100}
trees=${TREES:-100 200 300}
extra=${EXTRA:-}
mkdir -p "$work"
cargo build --release --quiet
lm=./target/release/latmove
# shellcheck source=bench/days.sh
. bench/days.sh
real=../shared/data/cic-ids2017-improved-samples
out="$work/seeds"
rm -rf "$out" && mkdir -p "$out"

one() { # data, trees, seed, args...: appends "data trees seed tp attacks fp benign"
  local data=$1 t=$2 s=$3; shift 3
  # shellcheck disable=SC2086
  $lm detect "$@" $extra --trees "$t" --seed "$s" --no-charts --out "$out/run" >/dev/null 2>&1
  python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
print(sys.argv[2], sys.argv[3], sys.argv[4], m["tp"], m["attack_hosts"], m["fp"], m["benign_hosts"])
' "$out/run/metrics.json" "$data" "$t" "$s" >> "$out/runs.txt"
}
for t in $trees; do
  for s in $(seq 1 "$nseeds"); do
    one "synthetic day" "$t" "$s" "$work/day.csv.gz"
    one "hard day" "$t" "$s" "$work/hard.csv.gz" --train "$work/hard-baseline.csv.gz" --allow "$work/allow.txt"
  done
  if [ -d "$real" ]; then
    for s in $(seq 1 "$nreal"); do one "real rows" "$t" "$s" "$real"; done
  fi
done

python3 - "$out/runs.txt" <<'PY'
import sys
from collections import OrderedDict
rows = OrderedDict()
for line in open(sys.argv[1]):
    *name, t, s, tp, at, fp, bn = line.split()
    rows.setdefault((" ".join(name), int(t)), []).append((int(tp), int(at), int(fp), int(bn)))
print("| data | trees | seeds with every attacker flagged | attackers flagged (worst seed) | benign flagged (range) |")
print("|---|---|---|---|---|")
for (name, t), rs in rows.items():
    whole = sum(tp == at for tp, at, _, _ in rs)
    worst = min(rs, key=lambda r: r[0])
    fps = [r[2] for r in rs]
    fp = f"{min(fps)}" if min(fps) == max(fps) else f"{min(fps)}-{max(fps)}"
    print(f"| {name} | {t} | {whole} of {len(rs)} | {worst[0]} of {worst[1]} | {fp} of {rs[0][3]} |")
PY
