#!/usr/bin/env bash
# The SQL conformance check: sql/features.sql, run on DuckDB and on Spark in
# local mode over the flow tables of the shipped sample, the synthetic full
# day, the hard day and the real CIC-IDS2017 rows in ../shared, must give
# latmove's native feature table (counts exactly, floats within 1e-9
# relative; sql/compare.py).
#
# usage: sql/conformance.sh [LATMOVE] [WORK_DIR]
#   LATMOVE defaults to target/release/latmove; WORK_DIR to a temporary one.
# DuckDB and PySpark install into sql/.venv on first use (sql/requirements.txt);
# Spark needs a Java 17+ runtime (Debian: openjdk-17-jre-headless).
# Exit: 0 equal, 1 a difference or a failure, 77 skipped (no Python packages
# could be installed, or no JVM for Spark; the reason is printed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
lm=${1:-$root/target/release/latmove}
work=${2:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
skip() { echo "SKIPPED: $*"; exit 77; }

py=$here/.venv/bin/python
"$here/setup.sh" || exit $?
java -version >/dev/null 2>&1 || skip "no Java runtime for Spark (install openjdk-17-jre-headless)"

# The fixtures: name, then latmove's input and options.
real=$root/../shared/data/cic-ids2017-improved-samples
"$lm" synth --rows 445909 --seed 42 -o "$work/day.csv.gz" >/dev/null
"$lm" synth --scenario hard --rows 200000 --seed 7 -o "$work/hard.csv.gz" >/dev/null
printf '192.168.10.80\n' > "$work/allow.txt"
cases=(
  "sample|$root/data/synthetic-tuesday.csv.gz"
  "sample-none|$root/data/synthetic-tuesday.csv.gz --window none"
  "day|$work/day.csv.gz"
  "hard|$work/hard.csv.gz --allow $work/allow.txt"
)
if [ -d "$real" ]; then
  cases+=("real|$real")
else
  echo "note: $real is absent; the real rows are left out"
fi

duck=() spark=()
for c in "${cases[@]}"; do
  name=${c%%|*}
  read -r -a args <<< "${c#*|}"
  "$lm" flows "${args[@]}" -o "$work/$name.flows.parquet" >/dev/null
  "$lm" features "${args[@]}" -o "$work/$name.native.parquet" >/dev/null
  duck+=("$work/$name.flows.parquet:$work/$name.duckdb.parquet")
  spark+=("$work/$name.flows.parquet:$work/$name.spark")
done

"$lm" sql --dialect duckdb > "$work/duckdb.sql"
"$lm" sql --dialect spark > "$work/spark.sql"
start=$(date +%s)
"$py" "$here/engines.py" duckdb "$work/duckdb.sql" "${duck[@]}"
echo "duckdb: $(( $(date +%s) - start )) s"
start=$(date +%s)
"$py" "$here/engines.py" spark "$work/spark.sql" "${spark[@]}" 2> "$work/spark.log" \
  || { tail -20 "$work/spark.log"; exit 1; }
echo "spark (local[2]): $(( $(date +%s) - start )) s"

# Equal tables, and equal scores: detect on each engine's table ranks and
# scores the hosts as detect on the flows (rank, ip, score, flagged).
status=0
for c in "${cases[@]}"; do
  name=${c%%|*}
  read -r -a args <<< "${c#*|}"
  "$lm" detect "${args[@]}" --no-charts --out "$work/$name.detect" >/dev/null
  for engine in duckdb spark; do
    got=$work/$name.$engine
    [ $engine = duckdb ] && got=$got.parquet
    printf '%-12s %-7s ' "$name" "$engine"
    "$py" "$here/compare.py" "$work/$name.native.parquet" "$got" || status=1
    opts=("${args[@]:1}")   # the options (window, allowlist), without the input
    "$lm" detect --features-table "$got" "${opts[@]}" --no-charts --out "$work/$name.$engine.detect" >/dev/null
    if cmp -s <(cut -d, -f1-4 "$work/$name.detect/host_scores.csv") \
              <(cut -d, -f1-4 "$work/$name.$engine.detect/host_scores.csv"); then
      printf '%-12s %-7s scores: detect on the table = detect on the flows\n' "$name" "$engine"
    else
      printf '%-12s %-7s scores DIFFER from detect on the flows\n' "$name" "$engine"
      status=1
    fi
  done
done
exit $status
