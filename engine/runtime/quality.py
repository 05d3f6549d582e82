"""Stage: runtime. Expectation violation counts after a local run, kept in `_quality_metrics`.

warn: violating rows are in the table, counted there. drop: the rows were filtered out, so the
table's query is evaluated again before its expectations and counted. fail: a violation stops
the run, so a finished run has none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.runtime.entry import Registration
from engine.runtime.flows import register_batch_views
from engine.runtime.queries import passes, quote
from engine.spec.model import DatasetKind, OnViolation

QUALITY_TABLE = "_quality_metrics"
QUALITY_SCHEMA = (
    "run_id STRING, run_time TIMESTAMP, table_name STRING, expectation STRING, "
    "on_violation STRING, violations BIGINT, rows_checked BIGINT"
)


def measure(
    spark: Any,
    registration: Registration,
    schema: str,
    only: set[str] | None = None,
    rows: dict[str, int] | None = None,
) -> dict[tuple[str, str], tuple[str, int, int | None]]:
    """(table, expectation) -> (on_violation, violations, rows checked) for registered tables (`only` these).

    `rows`: the tables' row counts, already known; a finished run had no `fail` violation, so
    those rules cost nothing more.
    """
    from pyspark.sql import functions as F

    rows = rows or {}
    results: dict[tuple[str, str], tuple[str, int, int | None]] = {}
    if registration.context is not None:
        active = [registration.project.table(n) for n in registration.registered]
        register_batch_views(registration.context, active)
    for name in registration.registered:
        table = registration.project.table(name)
        if (only is not None and name not in only) or not table.expectations:
            continue
        materialized = table.dataset_kind is not DatasetKind.TEMPORARY_VIEW
        in_output, recomputed = [], []
        for expectation in table.expectations:
            if expectation.on_violation is OnViolation.FAIL:
                results[(name, expectation.name)] = (expectation.on_violation.value, 0, rows.get(name))
            elif materialized and expectation.on_violation is OnViolation.WARN:
                in_output.append(expectation)
            else:
                recomputed.append(expectation)
        for expectations, frame in ((in_output, lambda: spark.read.table(f"{quote(schema)}.{quote(name)}")),
                                    (recomputed, lambda: registration.flow(name).unchecked(batch=True))):
            if not expectations:
                continue
            aggregates = [F.count(F.lit(1)).alias("__rows")] + [
                F.sum(F.when(F.expr(passes(e)), 0).otherwise(1)).alias(e.name) for e in expectations
            ]
            row = frame().agg(*aggregates).collect()[0]
            for e in expectations:
                results[(name, e.name)] = (e.on_violation.value, int(row[e.name] or 0), int(row["__rows"]))
    return results


def record(spark: Any, schema: str, run_id: str, metrics: dict[tuple[str, str], tuple[str, int, int | None]]) -> None:
    if not metrics:
        return
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    rows = [(run_id, now, table, rule, level, violations, checked)
            for (table, rule), (level, violations, checked) in sorted(metrics.items())]
    frame = spark.createDataFrame(rows, QUALITY_SCHEMA)
    frame.write.mode("append").format("parquet").saveAsTable(f"{quote(schema)}.{quote(QUALITY_TABLE)}")


def latest(spark: Any, schema: str) -> dict[tuple[str, str], int]:
    """Violations per (table, expectation) from the most recent run recorded."""
    frame = spark.read.table(f"{quote(schema)}.{quote(QUALITY_TABLE)}")
    last = frame.orderBy(frame.run_time.desc()).select("run_id").limit(1).collect()
    if not last:
        return {}
    rows = frame.where(frame.run_id == last[0]["run_id"]).collect()
    return {(r["table_name"], r["expectation"]): int(r["violations"]) for r in rows}
