"""Stage: cli. `tablesmith run` (the pipeline on local Spark Declarative Pipelines) and `tablesmith stop`.

Where the source data comes from is decided here: with no `--source` and nothing in the project's
`source_root`, the demo system tables are written there first (the runtime never imports the demo).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import EXIT_OK, command, specs_argument


def _output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=Path(".tablesmith"), help="where tables, metastore and checkpoints live")


def _arguments(parser: argparse.ArgumentParser) -> None:
    specs_argument(parser)
    parser.add_argument("--source", type=Path, default=None,
                        help="folder of system tables laid out as <schema>/<table>/ (default: demo data, generated if missing)")
    _output_argument(parser)
    parser.add_argument("--full-refresh", action="store_true", help="reset streaming checkpoints and rebuild every table")
    parser.add_argument("--select", default="", help="comma-separated tables to refresh, with everything downstream of them")


@command("run", "run the tables locally on Spark Declarative Pipelines (re-runs refresh only what changed)", _arguments)
def cmd_run(args: argparse.Namespace) -> int:
    from engine.runtime.local import LocalLayout, run_local
    from engine.runtime.run import NOTHING_CHANGED, nothing_changed
    from engine.spec import load_project

    select = [name.strip() for name in args.select.split(",") if name.strip()]
    if not select and not args.full_refresh and nothing_changed(LocalLayout(args.output), args.specs, args.source):
        print(NOTHING_CHANGED)  # no spec or source file changed since the last run: not even a validation
        return EXIT_OK
    project = load_project(args.specs)  # bad specs stop here, before any data or JVM
    source = args.source
    if source is None:
        source = Path(project.settings.source_root)
        if not any(source.glob("*/*/*.parquet")):
            from engine.demo.generator import generate

            print(f"no source data in {source}: writing demo system tables there (tablesmith demo-data)")
            generate(source)
    run_local(args.specs, project=project, source=source, output=args.output, full_refresh=args.full_refresh, select=select)
    return EXIT_OK


@command("stop", "stop the warm local Spark server of an output folder (it also stops by itself when idle)", _output_argument)
def cmd_stop(args: argparse.Namespace) -> int:
    from engine.runtime.guard import RunLock
    from engine.runtime.local import LocalLayout, stop

    layout = LocalLayout(args.output)
    if not layout.server_dir.exists():
        print(f"no local Spark server for {args.output}")
        return EXIT_OK
    with RunLock(layout, "tablesmith stop"):  # never under a running pipeline
        pid = stop(layout)
    print(f"stopped the local Spark server for {args.output} (pid {pid})" if pid else f"no local Spark server running for {args.output}")
    return EXIT_OK
