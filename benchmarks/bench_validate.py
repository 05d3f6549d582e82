"""Benchmark: `tablesmith validate` over N generated specs (default 1,000). Prints figures.

    .venv/bin/python benchmarks/bench_validate.py [--count 1000]

The specs form chains (each aggregate reads the previous table), so reference resolution, cycle
detection and topological sorting work at full size. Target: under 2 s for 1,000 specs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def write_specs(folder: Path, count: int) -> None:
    shutil.copy(ROOT / "specs" / "project.yaml", folder / "project.yaml")
    (folder / "billing").mkdir()
    for i in range(count):
        name = f"table_{i:05d}"
        if i % 10 == 0:
            text = STREAM.format(name=name, i=i)
        else:
            text = AGGREGATE.format(name=name, i=i, upstream=f"table_{i - 1:05d}")
        (folder / "billing" / f"{name}.yaml").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from engine.spec import load_project

    with tempfile.TemporaryDirectory() as tmp:
        specs = Path(tmp) / "specs"
        specs.mkdir()
        write_specs(specs, args.count)
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            project = load_project(specs)
            timings.append(time.perf_counter() - started)
        assert len(project.tables) == args.count
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "engine.cli", "validate", "--specs", str(specs)],
                                   capture_output=True, text=True, cwd=ROOT)
        command_seconds = time.perf_counter() - started
        assert completed.returncode == 0, completed.stderr
    print(f"specs: {args.count}")
    print(f"load_project (in process): median {statistics.median(timings):.3f}s, min {min(timings):.3f}s over {args.repeat} runs")
    print(f"`tablesmith validate` command incl. interpreter start-up: {command_seconds:.3f}s")
    print(f"per spec: {statistics.median(timings) / args.count * 1000:.2f} ms (target: 1,000 specs under 2 s)")


if __name__ == "__main__":
    main()
