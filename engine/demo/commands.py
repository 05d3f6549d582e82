"""Stage: cli. `tablesmith demo-data`: write (or extend by one day) the synthetic system tables."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from engine.cli import EXIT_OK, command
from engine.errors import UserError


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path(".tablesmith/source"),
                        help="folder to write <schema>/<table>/ Parquet into (default: .tablesmith/source)")
    parser.add_argument("--workspaces", type=int, default=3)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies billing.usage volume (90 = ~1M rows)")
    parser.add_argument("--end-date", type=date.fromisoformat, default=date(2026, 11, 1),
                        help="day after the last day of data (default: 2026-11-01)")
    parser.add_argument("--append-day", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="instead, add one new file per streamable event table with that day's rows")


@command("demo-data", "write deterministic synthetic Databricks system tables (Parquet, no Spark needed)", _arguments)
def cmd_demo_data(args: argparse.Namespace) -> int:
    from engine.demo.generator import append_day, generate

    common = dict(workspaces=args.workspaces, days=args.days, jobs=args.jobs, seed=args.seed, scale=args.scale,
                  end_date=args.end_date)
    started = time.perf_counter()
    try:
        if args.append_day:
            counts = append_day(args.out, args.append_day, **common)
        else:
            counts = generate(args.out, **common)
    except (ValueError, FileExistsError) as exc:  # bad arguments or a day appended twice
        raise UserError(str(exc)) from exc
    print(f"wrote {sum(counts.values()):,} rows in {len(counts)} tables to {args.out} "
          f"({counts['system.billing.usage']:,} usage rows, {time.perf_counter() - started:.1f}s)")
    return EXIT_OK
