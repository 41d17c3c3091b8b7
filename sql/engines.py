"""Runs the feature SQL on one engine over several flow tables.

usage: engines.py duckdb|spark SQL_FILE FLOWS.parquet:OUT [FLOWS.parquet:OUT ...]

SQL_FILE is `latmove sql --dialect <engine>`'s output; each OUT is written
as Parquet (a file for DuckDB, a directory of parts for Spark). Spark runs in
local mode on 2 cores, one session for every table.
"""
import os
import sys


def run_duckdb(sql, pairs):
    import duckdb

    for flows, out in pairs:
        con = duckdb.connect()
        con.execute(f"CREATE VIEW flows AS SELECT * FROM read_parquet('{flows}')")
        con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
        con.close()


def run_spark(sql, pairs):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("latmove-conformance")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for flows, out in pairs:
        spark.read.parquet(flows).createOrReplaceTempView("flows")
        spark.sql(sql).write.mode("overwrite").parquet(out)
    report = os.environ.get("LATMOVE_JVM_PEAK_FILE")
    if report:
        # The JVM's own peak resident set (a benchmark's /usr/bin/time sees
        # only this Python process).
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            peak = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
        with open(report, "w", encoding="ascii") as f:
            f.write(peak)
    spark.stop()


def main(engine, sql_file, pairs):
    sql = open(sql_file, encoding="utf-8").read()
    pairs = [p.split(":", 1) for p in pairs]
    {"duckdb": run_duckdb, "spark": run_spark}[engine](sql, pairs)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
