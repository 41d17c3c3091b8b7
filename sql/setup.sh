#!/usr/bin/env bash
# Makes sql/.venv with DuckDB and PySpark (sql/requirements.txt) unless it is
# there already; prints the reason and exits 77 when it cannot.
# usage: sql/setup.sh   (then use sql/.venv/bin/python)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/.venv
py=$venv/bin/python
skip() { echo "SKIPPED: $*"; exit 77; }
if "$py" -c 'import duckdb, pyspark' 2>/dev/null; then
  exit 0
fi
command -v python3 >/dev/null || skip "no python3 to install DuckDB and PySpark into sql/.venv"
python3 -m venv "$venv" >/dev/null 2>&1 || skip "python3 cannot make a virtual environment (sql/.venv)"
"$py" -m pip install --quiet --disable-pip-version-check --retries 2 --timeout 20 -r "$here/requirements.txt" \
  || skip "could not install sql/requirements.txt into sql/.venv (no package index?)"
