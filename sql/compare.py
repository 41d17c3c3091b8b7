"""Compare two feature tables (Parquet, a directory of Parquet parts, or CSV): the same (ip, window_start)
keys, integer and text columns equal, floats within a relative 1e-9.

usage: compare.py EXPECTED GOT   (exit 0 equal, 1 different)
"""
import os
import sys

import duckdb

REL = 1e-9


def load(con, name, path):
    if os.path.isdir(path):
        path = os.path.join(path, "**", "*.parquet")
    reader = "read_csv" if path.endswith(".csv") else "read_parquet"
    extra = ", header = true" if reader == "read_csv" else ""
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM {reader}('{path}'{extra})")
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {name}").fetchall()]


def main(expected, got):
    con = duckdb.connect()
    a = load(con, "a", expected)
    b = load(con, "b", got)
    names_a = [c for c, _ in a]
    names_b = [c for c, _ in b]
    if names_a != names_b:
        print(f"columns differ:\n  {names_a}\n  {names_b}")
        return 1
    key = "a.ip = b.ip AND a.window_start IS NOT DISTINCT FROM b.window_start"
    counts = con.execute(
        f"""SELECT
              (SELECT COUNT(*) FROM a),
              (SELECT COUNT(*) FROM b),
              (SELECT COUNT(*) FROM a JOIN b ON {key})"""
    ).fetchone()
    if not (counts[0] == counts[1] == counts[2]):
        print(f"rows: {counts[0]} expected, {counts[1]} got, {counts[2]} matched by key")
        for r in con.execute(
            f"SELECT a.ip, a.window_start FROM a ANTI JOIN b ON {key} LIMIT 5"
        ).fetchall():
            print(f"  only expected: {r}")
        for r in con.execute(
            f"SELECT b.ip, b.window_start FROM b ANTI JOIN a ON {key} LIMIT 5"
        ).fetchall():
            print(f"  only got: {r}")
        return 1
    bad = 0
    for col, typ in a:
        if col in ("ip", "window_start"):
            continue
        if typ in ("DOUBLE", "FLOAT"):
            differ = (
                f"NOT ((a.{col} IS NULL AND b.{col} IS NULL) OR "
                f"abs(a.{col} - b.{col}) <= {REL} * greatest(abs(a.{col}), abs(b.{col}), 1e-300))"
            )
        else:
            differ = f"a.{col} IS DISTINCT FROM b.{col}"
        rows = con.execute(
            f"SELECT a.ip, a.window_start, a.{col}, b.{col} FROM a JOIN b ON {key} WHERE {differ}"
        ).fetchall()
        if rows:
            bad += 1
            print(f"{col}: {len(rows)} rows differ, e.g. {rows[:3]}")
    if bad:
        return 1
    print(f"equal: {counts[0]} rows, {len(a)} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
