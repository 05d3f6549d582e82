"""Stage: cli. `tablesmith run`: the pipeline on local Spark Declarative Pipelines."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import EXIT_OK, command, specs_argument


def _arguments(parser: argparse.ArgumentParser) -> None:
    specs_argument(parser)
    parser.add_argument("--source", type=Path, default=None,
                        help="folder of system tables laid out as <schema>/<table>/ (default: demo data, generated if missing)")
    parser.add_argument("--output", type=Path, default=Path(".tablesmith"), help="where tables, metastore and checkpoints live")
    parser.add_argument("--full-refresh", action="store_true", help="reset streaming checkpoints and rebuild every table")
    parser.add_argument("--select", default="", help="comma-separated tables to refresh (others must exist already)")


@command("run", "run every table locally on Spark Declarative Pipelines (incremental on re-runs)", _arguments)
def cmd_run(args: argparse.Namespace) -> int:
    from engine.runtime.local import run_local

    select = [name.strip() for name in args.select.split(",") if name.strip()]
    run_local(args.specs, source=args.source, output=args.output, full_refresh=args.full_refresh, select=select)
    return EXIT_OK
