"""Stage: runtime. One flow object per table: it builds that table's DataFrame when the engine asks.

Objects, not closures in a loop: each flow holds its own table, so no late-binding bugs.
Flows use select(), never withColumn(), on upstream pipeline tables (apache/spark SPARK-57352).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.runtime.backend import DatasetDefinition, native_rules
from engine.runtime.observed import observation_name
from engine.runtime.queries import (
    fail_guard,
    identifier_projection,
    observed_measures,
    passes,
    quote,
    reference_query,
    scd2_current_query,
    source_projection,
)
from engine.names import flat_table_name, resolve_references
from engine.runtime.sources import SystemSource
from engine.spec.model import DatasetKind, OnViolation, Pattern, ProjectSettings, Table


def system_view_name(name: str) -> str:
    """Local runs expose each system table a query names as a pipeline temporary view."""
    return flat_table_name(name)


@dataclass(frozen=True)
class FlowContext:
    spark: Any
    settings: ProjectSettings
    sources: SystemSource
    in_pipeline: frozenset[str]  # tables defined in this pipeline; others are read fully qualified
    apply_expectations: bool  # the engine has no native expectations: the flow applies them
    system_views: bool  # local: system tables in SQL are read through temporary views
    qualifier: str  # e.g. `main`.`monitoring`: how tables outside this pipeline are named
    temporary_views: frozenset[str] = frozenset()  # never published
    observe_run: str = ""  # local run id: each stored table's flow observes its counts (engine.runtime.observed)
    sql_without_round_trip: bool = False  # local (Spark Connect): see TableFlow._sql

    def table_ref(self, name: str) -> str:
        if name in self.in_pipeline or name in self.temporary_views:
            return quote(name)
        return f"{self.qualifier}.{quote(name)}"

    def system_ref(self, name: str) -> str:
        return quote(system_view_name(name)) if self.system_views else name


class TableFlow:
    """Builds one table's DataFrame: source read or SQL, identifier columns, then expectations."""

    def __init__(self, table: Table, ctx: FlowContext):
        self.table = table
        self.ctx = ctx

    def __call__(self) -> Any:
        return self.checked(self.observed(self.unchecked()))

    def definition(self) -> DatasetDefinition:
        t = self.table
        native = {} if self.ctx.apply_expectations else native_rules(t.expectations)
        return DatasetDefinition(
            name=t.name,
            kind=t.dataset_kind,
            query=self,
            comment=t.description,
            table_properties=dict(t.table_properties),
            partition_cols=t.partition_by,
            cluster_by=t.cluster_by,
            native_expectations=native,
        )

    # -- building --------------------------------------------------------------------------

    def unchecked(self) -> Any:
        """The table's rows before expectations."""
        t = self.table
        identifiers = identifier_projection(self.ctx.settings)
        if t.pattern in (Pattern.STREAM, Pattern.SNAPSHOT, Pattern.SCD2):
            frame = self._read_source(t.source, streaming=t.dataset_kind is DatasetKind.STREAMING_TABLE)
            if t.filter:
                frame = frame.where(t.filter)
            return frame.selectExpr(*source_projection(t), *identifiers)
        if t.pattern is Pattern.SCD2_CURRENT:
            sql = scd2_current_query(t, self.ctx.table_ref(t.derived_from))
        elif t.pattern is Pattern.REFERENCE:
            sql = reference_query(t)
        else:
            sql = resolve_references(t.query, self._sql_ref)
        # Declared columns by name, then this workspace's identifiers (an upstream's are not kept).
        # No analysis here: the engine forbids it inside query functions.
        return self._sql(sql).selectExpr(*[quote(c.name) for c in t.columns], *identifiers)

    def _sql(self, sql: str) -> Any:
        """`spark.sql(sql)`. On the local Spark Connect session, inside a flow function, `spark.sql` is a
        round trip whose answer is the query itself, unanalysed (the engine analyses it with the
        graph): that same relation is built here instead, one round trip less per table."""
        if not self.ctx.sql_without_round_trip:
            return self.ctx.spark.sql(sql)
        from pyspark.sql.connect.dataframe import DataFrame
        from pyspark.sql.connect.plan import SQL

        return DataFrame(SQL(sql), self.ctx.spark)

    def observed(self, frame: Any) -> Any:
        """Local runs: the write job itself counts rows and violations (no second pass).

        Not on temporary views: the engine inlines them into every reader's query."""
        if not self.ctx.observe_run or self.table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            return frame
        from pyspark.sql import functions as F

        measures = [F.expr(sql).alias(alias) for alias, sql in observed_measures(self.table)]
        return frame.observe(observation_name(self.ctx.observe_run, self.table.name), *measures)

    def checked(self, frame: Any) -> Any:
        if not self.ctx.apply_expectations:
            return frame
        for expectation in self.table.expectations:
            if expectation.on_violation is OnViolation.DROP:
                frame = frame.where(passes(expectation))
            elif expectation.on_violation is OnViolation.FAIL:
                frame = frame.where(fail_guard(self.table, expectation))
        return frame

    def _read_source(self, name: str, *, streaming: bool) -> Any:
        spark = self.ctx.spark
        if name.startswith("system."):
            return self.ctx.sources.read(spark, name, streaming=streaming)
        reference = self.ctx.table_ref(name)
        if not streaming:
            return spark.read.table(reference)
        # Retention deletes old rows of streaming tables (generated/sql/maintenance.sql); a Delta
        # stream fails on such a commit unless it skips it. Appends are still read.
        return spark.readStream.option("skipChangeCommits", "true").table(reference)

    def _sql_ref(self, name: str) -> str:
        if name.startswith("system."):
            return self.ctx.system_ref(name)
        return self.ctx.table_ref(name)


class SystemViewFlow:
    """Local only: a temporary view over one system table folder, read with the registry schema."""

    def __init__(self, name: str, ctx: FlowContext):
        self.name = name
        self.ctx = ctx

    def __call__(self) -> Any:
        return self.ctx.sources.read(self.ctx.spark, self.name, streaming=False)

    def definition(self) -> DatasetDefinition:
        return DatasetDefinition(
            name=system_view_name(self.name), kind=DatasetKind.TEMPORARY_VIEW, query=self,
            comment=f"{self.name} read from {self.ctx.sources.describe(self.name)}",
            table_properties={}, partition_cols=(), cluster_by=(), native_expectations={},
        )
