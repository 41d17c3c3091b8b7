"""latmove's feature table on Spark: reads a flow table written by
`latmove flows` (Parquet; a file, or a directory partitioned by day such as
flows/day=2026-12-04/part-*.parquet), runs sql/features.sql on it and writes
the feature table as Parquet, partitioned by day the same way.

    spark-submit deploy/spark/features_job.py \
        --flows s3://lake/latmove/flows --out s3://lake/latmove/features \
        [--day 2026-12-04] [--sql sql/features.sql]

Each day is computed from that day's flows alone, as `latmove features` does
for one day's files. Score the result with
`latmove score --model M --features-table <out>/day=.../`.
"""
import argparse
import os

from pyspark.sql import SparkSession


def features_sql(path):
    """The SQL file with the lines marked for other engines left out."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "-- dialect: " in line and line.split("-- dialect: ", 1)[1].strip() != "spark":
                continue
            lines.append(line)
    return "".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flows", required=True, help="the flow table (Parquet file or directory)")
    ap.add_argument("--out", required=True, help="where the feature table goes (a directory)")
    ap.add_argument("--day", help="only this day partition (day=...), e.g. 2026-12-04")
    ap.add_argument(
        "--sql",
        default=os.path.join(here, "..", "..", "sql", "features.sql"),
        help="the feature SQL (default: the repository's sql/features.sql)",
    )
    ap.add_argument("--master", help="e.g. local[2] to run without a cluster")
    args = ap.parse_args()

    builder = SparkSession.builder.appName("latmove-features")
    if args.master:
        builder = (
            builder.master(args.master)
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.ui.showConsoleProgress", "false")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    sql = features_sql(args.sql)

    flows = spark.read.parquet(args.flows)
    if "day" in flows.columns:
        days = [args.day] if args.day else [
            r[0] for r in flows.select("day").distinct().orderBy("day").collect()
        ]
        for day in days:
            flows.where(flows.day == day).drop("day").createOrReplaceTempView("flows")
            out = os.path.join(args.out, f"day={day}")
            spark.sql(sql).write.mode("overwrite").parquet(out)
            print(f"features of {day} written to {out}")
    else:
        flows.createOrReplaceTempView("flows")
        spark.sql(sql).write.mode("overwrite").parquet(args.out)
        print(f"features written to {args.out}")
    spark.stop()


if __name__ == "__main__":
    main()
