"""Stage: cli. `tablesmith report`: the dashboards, previewed as static HTML on a local run's tables."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from engine.cli import EXIT_CHECK_FAILED, EXIT_OK, command, specs_argument


def _arguments(parser: argparse.ArgumentParser) -> None:
    specs_argument(parser)
    parser.add_argument("--output", type=Path, default=Path(".tablesmith"), help="the local run's folder (as for `tablesmith run`)")
    parser.add_argument("--report-dir", type=Path, default=None, help="where the report goes (default: <output>/report)")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None,
                        help="the day relative dates (now-30d/d) count from (default: the newest data read, at most today)")
    parser.add_argument("--open", action="store_true", help="open the report's index in a web browser")


@command("report", "run every dashboard (specs/dashboards) on a local run's tables and write a static HTML report", _arguments)
def cmd_report(args: argparse.Namespace) -> int:
    from engine.errors import UserError
    from engine.report.build import build_report
    from engine.runtime.local import LocalLayout, local_session, write_spark_conf
    from engine.spec import load_project

    project = load_project(args.specs)
    if not project.dashboards:
        print(f"no dashboard specs in {args.specs}/dashboards")
        return EXIT_OK
    layout = LocalLayout(args.output)
    if not layout.metastore.exists():
        raise UserError(f"no local run found in {args.output}: run `tablesmith run` first")
    folder = args.report_dir or args.output / "report"
    write_spark_conf(layout)
    spark = local_session(layout)
    result = build_report(project, spark, project.settings.schema, folder, args.as_of)
    for name, path in result.pages.items():
        print(f"  {name:<28} {path}")
    print(f"wrote {result.index} ({len(result.pages)} dashboards, offline: plotly.js is in {folder})")
    if args.open:
        import webbrowser

        webbrowser.open(result.index.resolve().as_uri())
    if result.errors:
        print(f"{result.errors} widget(s) could not run their query: see the report")
        return EXIT_CHECK_FAILED
    return EXIT_OK
