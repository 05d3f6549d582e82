"""Benchmark: `tablesmith validate` over N specs (default 1,000). Prints figures.

    .venv/bin/python benchmarks/bench_validate.py [--count 1000]

Three shapes: N copies of the catalog's widest stream spec (most columns); N generated specs that
form chains (each aggregate reads the previous table, so reference resolution, cycle detection and
topological sorting work at full size); and the catalog itself, scaled to N by its per-spec time.
Target: under 1 s for 1,000 specs.

Each shape is timed twice: cold (the spec cache off: every file parsed and schema-checked, every
query's lineage analysed: a fresh clone's first `validate`) and warm (engine/spec/cache.py holds
what the last load learnt: the editor's and CI's re-validate after changing a few files; the rules
still run on every spec). Both after one load in the same process (imports done, validators
compiled, each distinct SQL text parsed once, as in an editor session); the first load in a fresh
interpreter, which pays for those too, is printed last. The machine is shared: the load average is
printed before and after, and each figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from machine import describe, load_average  # same folder: on sys.path when run

ROOT = Path(__file__).resolve().parents[1]

STREAM = """name: {name}
description: Generated stream table {i}.
domain: billing
layer: bronze
pattern: stream
source: system.billing.usage
columns:
  - {{name: record_id, type: STRING, nullable: false, description: Record id.}}
  - {{name: workspace_id, type: STRING, description: Workspace.}}
  - {{name: usage_quantity, type: "DECIMAL(38,18)", description: Quantity.}}
  - {{name: job_id, type: STRING, expr: usage_metadata.job_id, description: Job.}}
keys: [record_id]
expectations:
  - {{name: has_id, expr: record_id IS NOT NULL, on_violation: drop}}
share:
  - {{share: monitoring_share, history: true}}
"""

AGGREGATE = """name: {name}
description: Generated aggregate table {i}.
domain: billing
layer: gold
pattern: aggregate
query: |
  SELECT workspace_id, SUM(usage_quantity) AS usage_quantity, MAX(record_id) AS record_id
  FROM ${{{upstream}}}
  GROUP BY workspace_id
columns:
  - {{name: workspace_id, type: STRING, nullable: false, description: Workspace.}}
  - {{name: usage_quantity, type: "DECIMAL(38,18)", description: Quantity.}}
  - {{name: record_id, type: STRING, description: Any record.}}
keys: [workspace_id]
expectations:
  - {{name: positive, expr: usage_quantity IS NULL OR usage_quantity >= 0, on_violation: warn}}
share:
  - {{share: monitoring_share}}
"""


def write_project(folder: Path) -> None:
    """The catalog's project.yaml without its central views: they read catalog tables these specs lack."""
    project = yaml.safe_load((ROOT / "specs" / "project.yaml").read_text())
    project.get("central", {}).pop("views", None)
    (folder / "project.yaml").write_text(yaml.safe_dump(project, sort_keys=False))


def write_specs(folder: Path, count: int) -> None:
    write_project(folder)
    (folder / "billing").mkdir()
    for i in range(count):
        name = f"table_{i:05d}"
        if i % 10 == 0:
            text = STREAM.format(name=name, i=i)
        else:
            text = AGGREGATE.format(name=name, i=i, upstream=f"table_{i - 1:05d}")
        (folder / "billing" / f"{name}.yaml").write_text(text)


def write_widest(folder: Path, count: int) -> str:
    """N renamed copies of the stream spec with the most columns; returns its name."""
    from engine.spec import load_project

    catalog = load_project(ROOT / "specs")
    widest = max((t for t in catalog.tables if t.pattern.value == "stream"), key=lambda t: len(t.columns))
    source = next((ROOT / "specs").rglob(f"{widest.name}.yaml"))
    text = source.read_text()
    write_project(folder)
    (folder / "billing").mkdir()
    for i in range(count):
        name = f"table_{i:05d}"
        (folder / "billing" / f"{name}.yaml").write_text(text.replace(f"name: {widest.name}\n", f"name: {name}\n", 1))
    return f"{widest.name} ({len(widest.columns)} columns)"


def _timed(specs: Path, repeat: int, cache: str) -> tuple[float, float, int]:
    from engine.spec import load_project

    os.environ["TABLESMITH_CACHE_DIR"] = cache
    load_project(specs)  # imports and compiled validators loaded (and the cache filled), as in an editor session
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        project = load_project(specs)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), min(timings), len(project.tables)


def _both(label: str, specs: Path, repeat: int, cache: Path, expected: int | None = None) -> float:
    cold, cold_best, n = _timed(specs, repeat, "off")
    warm, warm_best, n = _timed(specs, repeat, str(cache))
    assert expected is None or n == expected
    print(f"{label}: cold median {cold:.3f}s (min {cold_best:.3f}s); warm median {warm:.3f}s (min {warm_best:.3f}s)")
    return warm


_FIRST_LOAD = """
import os, sys, time
os.environ["TABLESMITH_CACHE_DIR"] = "off"
from pathlib import Path
from engine.spec import load_project
started = time.perf_counter()
load_project(Path(sys.argv[1]))
print(time.perf_counter() - started)
"""


def _first_load(specs: Path, repeat: int) -> float:
    """Median seconds of load_project's first call in a new interpreter (the imports of engine.spec excluded)."""
    timings = []
    for _ in range(repeat):
        completed = subprocess.run([sys.executable, "-c", _FIRST_LOAD, str(specs)], capture_output=True, text=True,
                                   cwd=ROOT, check=True)
        timings.append(float(completed.stdout.split()[-1]))
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"before: {describe()}")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        widest = Path(tmp) / "widest"
        widest.mkdir()
        shape = write_widest(widest, args.count)
        _both(f"{args.count} copies of the widest stream spec, {shape}", widest, args.repeat, cache, args.count)

        chain = Path(tmp) / "chain"
        chain.mkdir()
        write_specs(chain, args.count)
        _both(f"{args.count} chained generated specs", chain, args.repeat, cache, args.count)

        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "engine.cli", "validate", "--specs", str(chain)],
                                   capture_output=True, text=True, cwd=ROOT)
        command_seconds = time.perf_counter() - started
        assert completed.returncode == 0, completed.stderr
        print(f"`tablesmith validate` on the chain (warm), incl. interpreter start-up: {command_seconds:.3f}s")

        for mode, setting in (("cold", "off"), ("warm", str(cache))):
            median, best, n = _timed(ROOT / "specs", args.repeat, setting)
            print(f"the catalog's own {n} tables, {mode}: median {median:.3f}s = {median / n * 1000:.2f} ms per table "
                  f"= {median / n * args.count:.3f}s per {args.count} (target: under 1 s per 1,000)")

        print(f"first load in a fresh interpreter, cold: {args.count} copies of the widest spec "
              f"{_first_load(widest, args.repeat):.3f}s; the catalog {_first_load(ROOT / 'specs', args.repeat):.3f}s")
    print(f"after: {load_average()}")


if __name__ == "__main__":
    main()
