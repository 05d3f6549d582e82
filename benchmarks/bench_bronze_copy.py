"""Benchmark: what copying system.billing.usage costs in plain PySpark, the floor under bench_scale's ratio.

    .venv/bin/python benchmarks/bench_bronze_copy.py [--data /tmp/bench_scale_10m]

The billing stage of bench_scale.py writes billing_usage_bronze, the stream that keeps every usage
row with the struct and map columns the monitoring schema (seed 004) lists; the plain PySpark
baseline it is compared with computes the five billing tables straight from the files and writes
no copy. This script times, in a SparkSession set up as that baseline's (bench_scale.baseline), a
plain `read.parquet(...).write.parquet(...)` of the account's billing.usage files, read as the
baseline reads them: all columns, then without the struct and map columns. Prints wall and JVM CPU
seconds of each.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_scale import _cpu, local_server_settings  # the baseline's set-up and CPU reading (same folder)
from machine import describe, load_average


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench_scale_10m"),
                        help="an account kept by bench_scale.py --keep-data (its source/ folder is read)")
    args = parser.parse_args()
    from engine.sources.system_tables import local_path

    source = local_path(args.data / "source", "system.billing.usage")
    if not source.is_dir():
        sys.exit(f"{source} not found: run bench_scale.py --keep-data --data {args.data} first")

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[*]").appName("bench_bronze_copy")
    for key, value in local_server_settings().items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = spark.sparkContext._gateway.proc.pid
    jvm_cpu = lambda: _cpu(jvm_pid) or 0.0  # noqa: E731

    usage = spark.read.parquet(str(source))
    rows = usage.count()
    nested = [name for name, kind in usage.dtypes if kind.startswith(("struct", "map"))]
    print(f"{rows:,} billing.usage rows in {source}; nested columns: {', '.join(nested)}; "
          f"{describe()}")
    with tempfile.TemporaryDirectory() as scratch:
        for label, frame in (("all columns", usage), ("without the nested columns", usage.drop(*nested))):
            target = Path(scratch) / "copy"
            started, cpu = time.perf_counter(), jvm_cpu()
            frame.write.parquet(str(target))
            print(f"copy, {label:<27} wall {time.perf_counter() - started:6.1f}s | JVM CPU {jvm_cpu() - cpu:6.1f}s")
            shutil.rmtree(target)
    print(load_average())
    spark.stop()


if __name__ == "__main__":
    main()
