#!/usr/bin/env bash
# The scale-out benchmark (README, docs/benchmarks.md): the feature table of
# the 10x synthetic day computed by latmove's native path, by DuckDB and by
# Spark in local mode on this machine's cores, and scoring a 10-million-row
# Parquet feature table (and a 1.3-million-row one of the same hosts, to
# show memory follows the hosts, not the rows); wall time and peak RSS of
# each (for Spark the largest process, the JVM).
# DuckDB and PySpark install into sql/.venv (sql/setup.sh); Spark needs Java.
# Usage: bench/scale.sh [work-dir]   (default: target/scale)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/scale}
mkdir -p "$work"
cargo build --release --quiet
lm=$PWD/target/release/latmove
sql/setup.sh
py=$PWD/sql/.venv/bin/python
[ -f "$work/day10x.csv" ] || $lm synth --rows 4459090 --seed 42 -o "$work/day10x.csv" >/dev/null
[ -f "$work/day1x.csv" ] || $lm synth --rows 445909 --seed 42 -o "$work/day1x.csv" >/dev/null
[ -f "$work/monday.csv" ] || $lm synth --benign-only --rows 445909 --seed 12 -o "$work/monday.csv" >/dev/null

measure() { # label, command...: a table row of wall time and peak RSS (bench/measure.py)
  python3 bench/measure.py "$1" "$work/rss.txt" "${@:2}" | awk -F'\t' '{printf "| %s | %.2f s | %s MB |\n", $1, $2, $3}'
}

echo "| step (10x day: 4,459,090 rows, $(du -m "$work/day10x.csv" | cut -f1) MB) | wall | peak RSS |"
echo "|---|---|---|"
measure "latmove flows (CSV to the Parquet flow table)" $lm flows "$work/day10x.csv" -o "$work/flows10x.parquet"
measure "latmove features (native, from the CSV)" $lm features "$work/day10x.csv" -o "$work/native10x.parquet"
$lm sql --dialect duckdb > "$work/duckdb.sql"
$lm sql --dialect spark > "$work/spark.sql"
measure "DuckDB $("$py" -c 'import duckdb; print(duckdb.__version__)') (from the flow table)" \
  "$py" sql/engines.py duckdb "$work/duckdb.sql" "$work/flows10x.parquet:$work/duck10x.parquet"
if java -version >/dev/null 2>&1; then
  line=$(LATMOVE_JVM_PEAK_FILE="$work/jvm.txt" measure \
    "Spark $("$py" -c 'import pyspark; print(pyspark.__version__)') local[2] (from the flow table, JVM start included)" \
    "$py" sql/engines.py spark "$work/spark.sql" "$work/flows10x.parquet:$work/spark10x")
  # The peak is the JVM's, not the Python driver's.
  echo "${line% | * MB |} | $(( $(cat "$work/jvm.txt") / 1024 )) MB (the JVM) |"
  "$py" sql/compare.py "$work/native10x.parquet" "$work/spark10x" >/dev/null
else
  echo "| Spark: no Java runtime here | | |"
fi
"$py" sql/compare.py "$work/native10x.parquet" "$work/duck10x.parquet" >/dev/null

# Scoring: a model trained on a benign day; the 1x day's feature table
# repeated for 65 sets of hosts (IPv6 prefixes) and 8 days: ~100,000 hosts,
# 10.2 million rows; and the first day alone (1.3 million rows).
$lm train "$work/monday.csv" -o "$work/monday.model.json" --out "$work/train" >/dev/null
$lm features "$work/day1x.csv" -o "$work/native1x.parquet" >/dev/null
for days in 1 8; do
  "$py" - "$work/native1x.parquet" "$work/table-${days}d.parquet" "$days" <<'PY'
import sys, duckdb
src, out, days = sys.argv[1], sys.argv[2], int(sys.argv[3])
duckdb.execute(f"""COPY (
  SELECT * REPLACE ('fd00:0:0:' || printf('%x', k) || '::' || ip AS ip,
                    window_start + d * 86400 AS window_start)
  FROM read_parquet('{src}'), range(65) t(k), range({days}) u(d)
) TO '{out}' (FORMAT parquet)""")
PY
done
echo
echo "| score --features-table (Parquet) | wall | peak RSS |"
echo "|---|---|---|"
for days in 1 8; do
  rows=$("$py" -c "import duckdb,sys; print(duckdb.execute(\"SELECT COUNT(*) FROM read_parquet('$work/table-${days}d.parquet')\").fetchone()[0])")
  measure "$rows rows, 99,645 hosts ($days day(s))" \
    $lm score --model "$work/monday.model.json" --features-table "$work/table-${days}d.parquet" --no-charts --out "$work/scored-$days"
done
