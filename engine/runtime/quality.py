"""Stage: runtime. Expectation counts of local runs, kept in `_quality_metrics`.

The counts come from the run itself (engine.runtime.observed): warn rules count the kept rows that
break them, drop rules the rows they removed, fail rules none (a violation stops the run). A
streaming table counts the rows this run appended; a materialized view all of its rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from engine.runtime.queries import ROWS_READ, expectation_measure, quote
from engine.spec.model import DatasetKind, OnViolation, Project

QUALITY_TABLE = "_quality_metrics"
QUALITY_SCHEMA = (
    "run_id STRING, run_time TIMESTAMP, table_name STRING, expectation STRING, "
    "on_violation STRING, violations BIGINT, rows_checked BIGINT"
)

Metrics = dict[tuple[str, str], tuple[str, int, int]]  # (table, expectation) -> (on_violation, violations, rows checked)


def from_observations(project: Project, refreshed: set[str], observed: Mapping[str, Mapping[str, int]]) -> Metrics:
    """Every expectation of every refreshed stored table; a table the run read nothing for counts zeros
    (a streaming table with no new input runs no batch, so it observes nothing)."""
    metrics: Metrics = {}
    for name in sorted(refreshed):
        table = project.table(name)
        if table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            continue  # inlined into its readers' queries: nothing of its own is observed
        counts = observed.get(name, {})
        for index, expectation in enumerate(table.expectations):
            violations = 0 if expectation.on_violation is OnViolation.FAIL else counts.get(expectation_measure(index), 0)
            metrics[(name, expectation.name)] = (expectation.on_violation.value, violations, counts.get(ROWS_READ, 0))
    return metrics


def record(spark: Any, schema: str, run_id: str, metrics: Metrics) -> None:
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
