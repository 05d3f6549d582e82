"""Checks behind the generated contract tests: a table's declared contract against what a pipeline run produced.

A contract is plain data written by `tablesmith generate`. The checks take a pyspark DataFrame and the
session's `pipeline_output` fixture (`.table(name)`, `.quality_metrics()`, `.skipped`). pyspark is
imported only inside the checks, so collecting the tests needs no JVM.

A row violates an expectation when its expression is false or NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

ENFORCED = ("drop", "fail")
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark simpleString(), e.g. decimal(38,18)
    nullable: bool = True


@dataclass(frozen=True)
class Expectation:
    name: str
    expr: str
    on_violation: str = "warn"


@dataclass(frozen=True)
class Contract:
    table: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...] = ()  # the grain: unique together
    expectations: tuple[Expectation, ...] = ()
    partition_by: tuple[str, ...] = ()

    @property
    def enforced_rules(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.expectations if e.on_violation in ENFORCED)

    @property
    def warn_rules(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.expectations if e.on_violation not in ENFORCED)

    def expectation(self, rule: str) -> Expectation:
        return next(e for e in self.expectations if e.name == rule)


def produced(pipeline_output: Any, contract: Contract) -> Any:
    """The table the run produced; skips the module when the run skipped the table (e.g. a missing optional source)."""
    skipped = getattr(pipeline_output, "skipped", ()) or ()
    if contract.table in skipped:
        reason = skipped[contract.table] if isinstance(skipped, Mapping) else "skipped by the pipeline run"
        pytest.skip(f"{contract.table}: {reason}")
    return pipeline_output.table(contract.table)


def schema_matches(df: Any, contract: Contract) -> None:
    """Names in order and Spark types (simpleString) as declared; nullability flags are not compared.

    Hive-style partitioned storage (the local Parquet backend) reports partition columns last, so that
    order is accepted too; Delta keeps the declared order.
    """
    actual = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    declared = [(c.name, c.type) for c in contract.columns]
    partitions_last = ([c for c in declared if c[0] not in contract.partition_by]
                       + [c for p in contract.partition_by for c in declared if c[0] == p])
    if actual not in (declared, partitions_last):
        raise AssertionError(f"{contract.table}: produced schema differs from the spec\n" + _schema_diff(declared, actual))


def keys_unique(df: Any, contract: Contract) -> None:
    if not contract.keys:
        pytest.skip(f"{contract.table} declares no keys")
    from pyspark.sql import functions as F

    duplicates = df.groupBy(*contract.keys).count().filter(F.col("count") > 1)
    sample = duplicates.limit(SAMPLE_ROWS).collect()
    assert not sample, f"{contract.table}: keys {list(contract.keys)} are not unique, e.g. {[row.asDict() for row in sample]}"


def no_nulls(df: Any, contract: Contract) -> None:
    required = [c.name for c in contract.columns if not c.nullable]
    if not required:
        pytest.skip(f"{contract.table} declares every column nullable")
    from pyspark.sql import functions as F

    counts = df.select(*[F.sum(F.col(name).isNull().cast("long")).alias(name) for name in required]).first()
    offending = {name: counts[name] for name in required if counts[name]}
    assert not offending, f"{contract.table}: NULLs in non-nullable columns: {offending}"


def violations(df: Any, expr: str) -> int:
    from pyspark.sql import functions as F

    return df.filter(~F.coalesce(F.expr(expr), F.lit(False))).count()


def expectation_holds(df: Any, contract: Contract, rule: str) -> None:
    expectation = contract.expectation(rule)
    count = violations(df, expectation.expr)
    assert count == 0, (f"{contract.table}: {count} rows violate '{rule}' ({expectation.expr}) although "
                        f"on_violation is {expectation.on_violation}")


def warn_count_matches_metrics(df: Any, pipeline_output: Any, contract: Contract, rule: str) -> None:
    """A warn rule keeps its violating rows; their number must equal the count in the _quality_metrics table."""
    expectation = contract.expectation(rule)
    recorded = pipeline_output.quality_metrics()
    key = (contract.table, rule)
    assert key in recorded, f"{contract.table}: no count recorded for warn rule '{rule}' in _quality_metrics"
    count = violations(df, expectation.expr)
    assert count == recorded[key], (f"{contract.table}: {count} rows violate '{rule}' ({expectation.expr}) but "
                                    f"_quality_metrics recorded {recorded[key]}")


def _schema_diff(declared: list[tuple[str, str]], actual: list[tuple[str, str]]) -> str:
    lines = []
    for i in range(max(len(declared), len(actual))):
        want = declared[i] if i < len(declared) else ("<none>", "")
        got = actual[i] if i < len(actual) else ("<none>", "")
        marker = "  " if want == got else "!="
        lines.append(f"  {marker} #{i + 1}: declared {want[0]} {want[1]}  produced {got[0]} {got[1]}")
    return "\n".join(lines)
