"""Stage: runtime. Expectation violation counts after a local run, kept in `_quality_metrics`.

warn: violating rows are in the table, counted there. drop: the rows were filtered out, so the
table's query is evaluated again before its expectations and counted. fail: a violation stops
the run, so a finished run has none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.runtime.entry import Registration
from engine.runtime.queries import passes, quote
from engine.spec.model import DatasetKind, OnViolation

QUALITY_TABLE = "_quality_metrics"
QUALITY_SCHEMA = (
    "run_id STRING, run_time TIMESTAMP, table_name STRING, expectation STRING, "
    "on_violation STRING, violations BIGINT, rows_checked BIGINT"
)


def measure(spark: Any, registration: Registration, schema: str, only: set[str] | None = None) -> dict[tuple[str, str], tuple[str, int, int]]:
    """(table, expectation) -> (on_violation, violations, rows checked) for registered tables (`only` these)."""
    from pyspark.sql import functions as F

    results: dict[tuple[str, str], tuple[str, int, int]] = {}
    for name in registration.registered:
        if only is not None and name not in only:
            continue
        table = registration.project.table(name)
        if not table.expectations:
            continue
        flow = registration.flow(name)
        materialized = table.dataset_kind is not DatasetKind.TEMPORARY_VIEW
        by_source: dict[bool, list] = {True: [], False: []}
        for expectation in table.expectations:
            in_output = materialized and expectation.on_violation is OnViolation.WARN
            by_source[in_output].append(expectation)
        for in_output, expectations in by_source.items():
            if not expectations:
                continue
            frame = spark.read.table(f"{quote(schema)}.{quote(name)}") if in_output else flow.unchecked(batch=True)
            aggregates = [F.count(F.lit(1)).alias("__rows")] + [
                F.sum(F.when(F.expr(passes(e)), 0).otherwise(1)).alias(e.name) for e in expectations
            ]
            row = frame.agg(*aggregates).collect()[0]
            for e in expectations:
                results[(name, e.name)] = (e.on_violation.value, int(row[e.name] or 0), int(row["__rows"]))
    return results


def record(spark: Any, schema: str, run_id: str, metrics: dict[tuple[str, str], tuple[str, int, int]]) -> None:
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
