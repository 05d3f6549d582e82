"""Time to render the full catalog: load and validate the specs, then render every output in memory.

    .venv/bin/python benchmarks/bench_render.py [--specs specs] [--runs 20] [--copies N]

Interpreter start-up and imports are excluded (they happen before the clock starts). The first run
also compiles the Jinja templates; later runs reuse the compiled templates, as one `generate` does.
Target: under 1 s for the whole catalog. `--copies N` also times a synthetic catalog of N renamed
copies of every spec (to see how the time grows before the real catalog is that large).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from machine import describe  # same folder: on sys.path when run

from engine.render import render_all
from engine.render.registry import RenderContext
from engine.spec import load_project, table_spec_files

TARGET_SECONDS = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", type=Path, default=Path(__file__).resolve().parent.parent / "specs")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--copies", type=int, default=0, help="also time N renamed copies of every spec")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    measure("catalog", args.specs, args.runs)
    if args.copies:
        with tempfile.TemporaryDirectory() as folder:
            measure(f"synthetic x{args.copies}", synthetic(args.specs, Path(folder) / "specs", args.copies), args.runs)


def measure(label: str, specs: Path, runs: int) -> None:
    load_times, render_times, totals = [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        project = load_project(specs)
        loaded = time.perf_counter()
        outputs = render_all(project, RenderContext())
        done = time.perf_counter()
        load_times.append(loaded - started)
        render_times.append(done - loaded)
        totals.append(done - started)

    size = sum(len(text.encode("utf-8")) for text in outputs.values())
    print(f"{label}: {len(project.tables)} tables -> {len(outputs)} files, {size / 1024:.0f} KiB")
    print(f"  first run (cold templates): {totals[0] * 1000:.0f} ms (load+validate {load_times[0] * 1000:.0f} ms, render {render_times[0] * 1000:.0f} ms)")
    warm = totals[1:] or totals
    print(f"  warm runs ({len(warm)}): median {statistics.median(warm) * 1000:.0f} ms, "
          f"render only median {statistics.median(render_times[1:] or render_times) * 1000:.0f} ms")
    verdict = "ok" if statistics.median(warm) < TARGET_SECONDS and totals[0] < TARGET_SECONDS else "SLOW"
    print(f"  {verdict}: target < {TARGET_SECONDS:.0f} s")


def synthetic(specs: Path, target: Path, copies: int) -> Path:
    """N copies of every spec, every table name suffixed (references follow), in a scratch folder."""
    names = sorted(load_project(specs).table_names, key=len, reverse=True)
    target.mkdir(parents=True)
    shutil.copy(specs / "project.yaml", target / "project.yaml")
    for path in table_spec_files(specs):
        text = path.read_text(encoding="utf-8")
        for k in range(1, copies + 1):
            renamed = text
            for name in names:  # not after a dot: system.<schema>.<table> keeps its name
                renamed = re.sub(rf"(?<![\w.]){name}(?!\w)", f"{name}_c{k}", renamed)
            out = target / path.parent.name / f"{path.stem}_c{k}.yaml"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(renamed, encoding="utf-8")
    return target


if __name__ == "__main__":
    main()
