"""Stage: cli. `tablesmith alerts check`: evaluate alert specs on a local run's output."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import EXIT_CHECK_FAILED, EXIT_OK, command, specs_argument


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check",), help="check: evaluate every alert and notify its channel")
    specs_argument(parser)
    parser.add_argument("--output", type=Path, default=Path(".tablesmith"), help="the local run's folder")
    parser.add_argument("--dry-run", action="store_true", help="print the messages instead of sending them")
    parser.add_argument("--fail-on-alert", action="store_true", help="exit 1 when any alert fired")


@command("alerts", "evaluate alert specs (specs/alerts) on a local run's output and notify", _arguments)
def cmd_alerts(args: argparse.Namespace) -> int:
    from engine.alerts.evaluate import evaluate
    from engine.alerts.notify import deliver, messages
    from engine.errors import UserError
    from engine.runtime.local import LocalLayout, local_session
    from engine.spec import load_project

    project = load_project(args.specs)
    if not project.alerts:
        print(f"no alert specs in {args.specs}/alerts")
        return EXIT_OK
    layout = LocalLayout(args.output)
    if not layout.metastore.exists():
        raise UserError(f"no local run found in {args.output}: run `tablesmith run` first")
    spark = local_session(layout)  # through the folder's warm Spark server (Derby: one process)
    existing = {r.tableName for r in spark.sql(f"SHOW TABLES IN `{project.settings.schema}`").collect()}
    missing = sorted({a.table for a in project.alerts} - existing)
    for name in missing:
        print(f"skipping alerts on {name}: the table was not built")
    firings = evaluate(spark, project.settings.schema, project.alerts, skip=missing)
    for firing in firings:
        state = f"FIRED ({len(firing.rows)} rows)" if firing.rows else "ok"
        print(f"{firing.alert.tier.value} {firing.alert.name:<36} {state}")
    sent = messages(firings)
    failures = 0
    for message in sent:
        if args.dry_run:
            print(f"  would send {message.title} via {message.channel.type}")
        elif not deliver(message):
            failures += 1
    fired = any(f.rows for f in firings)
    if failures or (fired and args.fail_on_alert):
        return EXIT_CHECK_FAILED
    return EXIT_OK
