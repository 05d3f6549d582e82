"""Stage: alerts. Which rows of each watched table match its alert's condition."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from engine.runtime.queries import alert_condition, quote
from engine.spec.outbound import parse_message
from engine.spec.model import Alert, Project


@dataclass(frozen=True)
class Firing:
    """An alert and the rows that matched it (empty: the alert stays silent)."""

    alert: Alert
    rows: tuple[dict[str, Any], ...]

    def lines(self, escape: Callable[[str], str] = str) -> list[str]:
        """One line per row; row values pass through the channel's `escape` (Slack, HTML)."""
        if self.alert.message:
            template = parse_message(self.alert.message)  # checked by validate: {column} only
            return [template.fill(row, escape) for row in self.rows]
        return [", ".join(f"{k}={escape(str(v))}" for k, v in row.items()) for row in self.rows]


def alert_query(alert: Alert, relation: str) -> str:
    columns = ", ".join(quote(c) for c in alert.columns) or "*"
    order = ", ".join(quote(c) for c in alert.columns)
    return f"SELECT {columns} FROM {relation} WHERE {alert_condition(alert, relation)}" + (f" ORDER BY {order}" if order else "")


def evaluate(spark: Any, schema: str, alerts: Iterable[Alert], skip: Iterable[str] = ()) -> list[Firing]:
    skipped = set(skip)
    firings = []
    for alert in alerts:
        if alert.table in skipped:
            continue
        relation = f"{quote(schema)}.{quote(alert.table)}"
        rows = tuple(_plain(row.asDict()) for row in spark.sql(alert_query(alert, relation)).collect())
        firings.append(Firing(alert, rows))
    return firings


@dataclass(frozen=True)
class LocalCheck:
    missing: tuple[str, ...]  # watched tables the local run did not build: their alerts are skipped
    firings: tuple[Firing, ...]


def evaluate_local_run(project: Project, output: Path) -> LocalCheck:
    """Every alert of `project` on the tables of the local run in `output`."""
    from engine.runtime.local import finished_run, local_session

    spark = local_session(finished_run(output))  # through the folder's warm Spark server (Derby: one process)
    schema = project.settings.schema
    existing = {row.tableName for row in spark.sql(f"SHOW TABLES IN {quote(schema)}").collect()}
    missing = tuple(sorted({alert.table for alert in project.alerts} - existing))
    return LocalCheck(missing, tuple(evaluate(spark, schema, project.alerts, skip=missing)))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready values: dates and decimals as strings, as a webhook receiver expects."""
    out = {}
    for key, value in row.items():
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        out[key] = value
    return out
