"""Benchmark: the whole catalog on local Spark Declarative Pipelines. Prints figures.

    .venv/bin/python benchmarks/bench_local_run.py [--specs specs]

Each run is a fresh `tablesmith run` process (cold JVM), as a user would start it:
1. full run on fresh demo data, 2. incremental re-run after one more day of source data,
3. re-run with no new data. Targets on a 2-core machine: full run under 3 minutes; the
incremental re-run under 60% of the full run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DONE = re.compile(r"done in (?P<total>[\d.]+)s \(Spark start (?P<spark>[\d.]+)s, pipeline (?P<pipeline>[\d.]+)s, row counts and expectations (?P<checks>[\d.]+)s\)")


def timed_run(specs: Path, source: Path, output: Path, *extra: str) -> dict[str, float]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", "--specs", str(specs), "--source", str(source), "--output", str(output), *extra],
        capture_output=True, text=True, cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    match = DONE.search(completed.stdout)
    figures = {k: float(v) for k, v in match.groupdict().items()} if match else {}
    tables = len([line for line in completed.stdout.splitlines() if re.match(r"\s+ok ", line)])
    return {"wall": wall, "tables": tables, **figures}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=Path, default=ROOT / "specs")
    args = parser.parse_args()
    from engine.demo.generator import DEFAULT_END_DATE, append_day, generate

    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp) / "source", Path(tmp) / "out"
        generate(source)
        full = timed_run(args.specs, source, output)
        append_day(source, DEFAULT_END_DATE)
        incremental = timed_run(args.specs, source, output)
        idle = timed_run(args.specs, source, output)

    def line(label: str, f: dict[str, float]) -> str:
        rest = f.get("total", 0) - f.get("spark", 0) - f.get("pipeline", 0)
        return (f"{label:<26} wall {f['wall']:6.1f}s | Spark/JVM start {f.get('spark', 0):5.1f}s | "
                f"graph + flows {f.get('pipeline', 0):5.1f}s | counts + quality {rest:5.1f}s | {f['tables']} flows")

    print(line("full run", full))
    print(line("incremental (+1 day)", incremental))
    print(line("no new data", idle))
    print(f"incremental / full: {incremental['wall'] / full['wall']:.0%} (target < 60%); full run target < 180 s")


if __name__ == "__main__":
    main()
