#!/usr/bin/env bash
# The README's monitoring table: `watch` on the full synthetic day, the hard
# day and two weeks of one network, judged against the other hosts only and
# with each host's own past (--history), and what one alert per window
# above the threshold would have been. Needs only Rust and python3.
# Usage: bench/monitor.sh [work-dir]   (default: target/monitor)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/monitor}
mkdir -p "$work"
cargo build --release --quiet
lm=$PWD/target/release/latmove
[ -f "$work/monday.csv" ] || $lm synth --benign-only --seed 12 -o "$work/monday.csv" >/dev/null
[ -f "$work/tuesday.csv" ] || $lm synth --seed 11 -o "$work/tuesday.csv" >/dev/null
[ -f "$work/hard-base.csv.gz" ] || $lm synth --scenario hard --benign-only --rows 200000 --seed 8 -o "$work/hard-base.csv.gz" >/dev/null
[ -f "$work/hard.csv.gz" ] || $lm synth --scenario hard --rows 200000 --seed 7 -o "$work/hard.csv.gz" >/dev/null
[ -d "$work/weeks" ] || $lm synth --days 14 --seed 5 -o "$work/weeks" >/dev/null
printf '# the organisation'"'"'s vulnerability scanner\n192.168.10.80\n' > "$work/allow.txt"
# The same network with 300 workstations (a peer group of their own).
[ -f "$work/ws300-monday.csv" ] || $lm synth --workstations 300 --rows 4459090 --benign-only --seed 12 -o "$work/ws300-monday.csv" >/dev/null
[ -f "$work/ws300-tuesday.csv" ] || $lm synth --workstations 300 --rows 4459090 --seed 11 -o "$work/ws300-tuesday.csv" >/dev/null

# run NAME BASELINE "WATCHED..." [OPTIONS...]: train on BASELINE, watch each
# watched file in turn, once without and once with --history.
run() {
  local name=$1 base=$2 watched=$3; shift 3
  for mode in population history; do
    local hist=() out=$work/$name-$mode
    rm -rf "$out" && mkdir -p "$out"
    [ $mode = history ] && hist=(--history "$out/history")
    $lm train "$base" -o "$out/model.json" "${hist[@]}" "$@" >/dev/null 2>&1
    : > "$out/alerts.ndjson"
    local passed=0
    for f in $watched; do
      $lm watch --model "$out/model.json" "${hist[@]}" "$@" "$f" >> "$out/alerts.ndjson" 2> "$out/watch.err"
      passed=$(( passed + $(sed -n 's/.* alerts, \([0-9]*\) windows above the threshold in open incidents.*/\1/p' "$out/watch.err") ))
    done
    local alerts; alerts=$(grep -c '"kind":"alert"' "$out/alerts.ndjson" || true)
    local label="judged against the other hosts"
    [ $mode = history ] && label="and against its own past (--history)"
    printf '| %s | %s | %s ' "$name" "$label" "$(( alerts + passed ))"
    # shellcheck disable=SC2086
    python3 bench/monitor.py "$out/alerts.ndjson" $watched
  done
}

echo "| data | watch, each host | one alert per window above the threshold | alerts (incidents) | hosts alerted | benign hosts alerted | alerts per attacker | first attack flow to its first alert |"
echo "|---|---|---|---|---|---|---|---|"
run "full day" "$work/monday.csv" "$work/tuesday.csv"
run "hard day (--allow)" "$work/hard-base.csv.gz" "$work/hard.csv.gz" --allow "$work/allow.txt"
run "two weeks (days 2-14)" "$work/weeks/day-01.csv.gz" "$(ls "$work"/weeks/day-*.csv.gz | tail -n +2 | tr '\n' ' ')"
run "300 workstations, --no-peer-groups" "$work/ws300-monday.csv" "$work/ws300-tuesday.csv" --no-peer-groups
run "300 workstations" "$work/ws300-monday.csv" "$work/ws300-tuesday.csv"
