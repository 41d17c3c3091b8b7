#!/usr/bin/env bash
# Speed benchmark: latmove detect vs the pandas + scikit-learn recipe
# (bench/reference.py) on a full-size synthetic Tuesday (445,909 rows) and a
# 10x day, alternating, each run's wall time and peak RSS measured by a few
# lines of Python around it (spawn, wait4).
# Then the ingest benchmark (latmove's reader vs a bare csv ByteRecord loop on
# the same file, benches/ingest.rs), the reader on every format
# (benches/formats.rs), the forest benchmark (benches/forest.rs)
# and what a million hosts cost (benches/hosts.rs).
# Usage: bench/run.sh [work-dir] [repeats at 1x] [repeats at 10x]
#        (defaults: target/bench, 9, 3)
# Python packages go into bench/.venv (created here, pip from the registry).
set -euo pipefail
export LC_ALL=C  # a decimal point in the clock and in awk
cd "$(dirname "$0")/.."
work=${1:-target/bench}
reps1=${2:-9}
reps10=${3:-3}
mkdir -p "$work"
cargo build --release --quiet
lm=$PWD/target/release/latmove
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet pandas scikit-learn
fi
py=bench/.venv/bin/python
[ -f "$work/day1x.csv" ] || $lm synth --rows 445909 --seed 42 -o "$work/day1x.csv" >/dev/null
[ -f "$work/day10x.csv" ] || $lm synth --rows 4459090 --seed 42 -o "$work/day10x.csv" >/dev/null

measure() { # label, command...: LABEL, wall seconds, peak RSS MB (bench/measure.py)
  python3 bench/measure.py "$1" "$work/rss.txt" "${@:2}"
}
: > "$work/raw.tsv"
for size in 1x 10x; do
  f="$work/day$size.csv"
  reps=$reps1
  [ "$size" = 10x ] && reps=$reps10
  for _ in $(seq "$reps"); do
    measure "$size|latmove detect (defaults)" $lm detect "$f" --no-charts --out "$work/out" >> "$work/raw.tsv"
    measure "$size|latmove detect --features seed --window none" $lm detect "$f" --features seed --window none --no-charts --out "$work/out" >> "$work/raw.tsv"
    measure "$size|pandas + scikit-learn (bench/reference.py)" $py bench/reference.py "$f" >> "$work/raw.tsv"
  done
done
python3 - "$work/raw.tsv" <<'PY'
import sys, statistics
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    label, wall, rss = line.rstrip("\n").split("\t")
    runs[label].append((float(wall), float(rss)))
# Ratio of the medians, and the median of each alternation's own ratio (the
# reference's run over latmove's just before it: the machine's speed drifts,
# and a pair's two runs share it).
print("| day | pipeline | wall (median) | peak RSS (max) | vs the reference | paired ratio (median) |")
print("|---|---|---|---|---|---|")
ref = {}
for label, r in runs.items():
    size, name = label.split("|")
    if name.startswith("pandas"):
        ref[size] = (statistics.median(x[0] for x in r), max(x[1] for x in r), [x[0] for x in r])
for label, r in runs.items():
    size, name = label.split("|")
    w = statistics.median(x[0] for x in r)
    m = max(x[1] for x in r)
    if name.startswith("pandas") or size not in ref:
        ratio = paired = ""
    else:
        ratio = f"{ref[size][0] / w:.1f}x faster, {ref[size][1] / m:.1f}x less memory"
        paired = f"{statistics.median(p / x[0] for p, x in zip(ref[size][2], r)):.1f}x"
    print(f"| {size} | {name} | {w:.3f} s | {m:.0f} MB | {ratio} | {paired} |")
PY
echo
cargo bench --quiet --bench ingest -- "$work/day1x.csv" 2>/dev/null
# Every format latmove reads, the same flows in each (benches/formats.rs).
cargo bench --quiet --bench formats 2>/dev/null
echo
cargo bench --quiet --bench forest 2>/dev/null
echo
cargo bench --quiet --bench hosts 2>/dev/null
cargo bench --quiet --bench hosts -- --windows 2>/dev/null
