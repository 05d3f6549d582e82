"""Benchmark: generate about one million billing.usage rows with the demo generator.

    .venv/bin/python benchmarks/bench_demo_data.py [--scale 90] [--keep DIR]

Prints wall time, rows per second and the process's peak RSS. Target: under 30 s on a 2-core
machine. scale=90 gives about 1.0M usage rows (about 20k per unit of scale at 3 workspaces, 45 days).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # same folder: on sys.path when run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from engine.demo.generator import generate  # noqa: E402

USAGE = "system.billing.usage"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=90.0)
    parser.add_argument("--keep", type=Path, help="write here and keep the files (default: a temp dir)")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    out_dir = args.keep or workdir / "system"
    try:
        started = time.perf_counter()
        counts = generate(out_dir, scale=args.scale)
        elapsed = time.perf_counter() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    usage, total = counts[USAGE], sum(counts.values())
    print(f"scale={args.scale:g}: {usage:,} billing.usage rows, {total:,} rows in 19 tables")
    print(f"wall time {elapsed:.1f} s | {usage / elapsed:,.0f} usage rows/s | {total / elapsed:,.0f} rows/s")
    print(f"peak RSS {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
