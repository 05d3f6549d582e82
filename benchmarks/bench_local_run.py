"""Benchmark: the local loop on the demo catalog, as a user lives it. Prints figures.

    .venv/bin/python benchmarks/bench_local_run.py [--specs specs] [--aggregate cost_by_sku]

Each step is a fresh `tablesmith run` process against one output folder:
1. cold run: no server yet (the warm Spark server's start is included), fresh demo data;
2. re-run after changing one aggregate spec (an expectation added): that table and its downstream;
3. re-run with no change: nothing to refresh, decided without Spark;
4. re-run after one more day of source data (the streams read the new files, their readers refresh).
Targets (issue 16, a 2-core machine): cold <= 90 s, changed spec <= 20 s, no change <= 1 s,
one more day <= 30% of the cold run. The machine's load average is printed with the figures:
the machine is shared, so the figures move with it. The server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DONE = re.compile(r"done in (?P<total>[\d.]+)s \(Spark start (?P<spark>[\d.]+)s, prepare (?P<prepare>[\d.]+)s, "
                  r"pipeline (?P<pipeline>[\d.]+)s \[register (?P<register>[\d.]+)s, graph (?P<graph>[\d.]+)s\], "
                  r"row counts and expectations (?P<checks>[\d.]+)s\)")
REFRESHING = re.compile(r"refreshing (?P<tables>\d+) of \d+ tables")


def tablesmith(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT)


def timed_run(specs: Path, source: Path, output: Path) -> dict[str, float]:
    started = time.perf_counter()
    completed = tablesmith("run", "--specs", str(specs), "--source", str(source), "--output", str(output))
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"run failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
    match = DONE.search(completed.stdout)
    refreshing = REFRESHING.search(completed.stdout)
    figures = {k: float(v) for k, v in match.groupdict().items()} if match else {}
    flows = len([line for line in completed.stdout.splitlines() if re.match(r"\s+ok ", line)])
    return {"wall": wall, "flows": flows, "refreshed": float(refreshing["tables"]) if refreshing else float(flows), **figures}


def change_aggregate(specs: Path, name: str) -> Path:
    """Add an always-true warn expectation to one aggregate spec: its content changes, its rows do not."""
    path = next(specs.rglob(f"{name}.yaml"))
    document = yaml.safe_load(path.read_text())
    column = document["columns"][0]["name"]
    document.setdefault("expectations", []).append(
        {"name": "bench_changed", "expr": f"{column} IS NULL OR {column} IS NOT NULL", "on_violation": "warn"})
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--specs", type=Path, default=ROOT / "specs")
    parser.add_argument("--aggregate", default="cost_by_sku", help="the aggregate spec to change in step 2")
    args = parser.parse_args()
    from engine.demo.generator import DEFAULT_END_DATE, append_day, generate

    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp:
        source, output, specs = Path(tmp) / "source", Path(tmp) / "out", Path(tmp) / "specs"
        shutil.copytree(args.specs, specs)
        generate(source)
        try:
            cold = timed_run(specs, source, output)
            loads.append(load_average())
            change_aggregate(specs, args.aggregate)
            changed = timed_run(specs, source, output)
            idle = timed_run(specs, source, output)
            append_day(source, DEFAULT_END_DATE)
            day = timed_run(specs, source, output)
            loads.append(load_average())
        finally:
            tablesmith("stop", "--output", str(output))

    def line(label: str, f: dict[str, float], target: str) -> str:
        return (f"{label:<34} wall {f['wall']:6.1f}s  (target {target}) | Spark start {f.get('spark', 0):5.1f}s | "
                f"prepare {f.get('prepare', 0):4.1f}s | register {f.get('register', 0):4.1f}s | graph {f.get('graph', 0):4.1f}s | "
                f"pipeline {f.get('pipeline', 0):5.1f}s | counts {f.get('checks', 0):4.1f}s | {int(f['refreshed'])} tables")

    print(line("cold run (server start included)", cold, "<= 90 s"))
    print(line(f"changed spec ({args.aggregate})", changed, "<= 20 s"))
    print(f"{'no change':<34} wall {idle['wall']:6.1f}s  (target <= 1 s) | nothing refreshed, no Spark")
    print(line("one more day of source data", day, "<= 30% of cold"))
    print(f"one more day / cold: {day['wall'] / cold['wall']:.0%} (target <= 30%)")
    print("; ".join(loads))


if __name__ == "__main__":
    main()
