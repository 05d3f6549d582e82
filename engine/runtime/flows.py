"""Stage: runtime. One flow object per table: it builds that table's DataFrame when the engine asks.

Objects, not closures in a loop: each flow holds its own table, so no late-binding bugs.
Flows use select(), never withColumn(), on upstream pipeline tables (apache/spark SPARK-57352).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engine.runtime.backend import DatasetDefinition, native_rules
from engine.runtime.queries import (
    fail_guard,
    identifier_projection,
    passes,
    quote,
    reference_query,
    resolve_references,
    scd2_current_query,
    source_projection,
)
from engine.runtime.sources import SystemSource
from engine.spec.model import DatasetKind, OnViolation, Pattern, ProjectSettings, Table


def system_view_name(name: str) -> str:
    """Local runs expose each system table a query names as a pipeline temporary view."""
    return "_" + name.replace(".", "__")


@dataclass(frozen=True)
class FlowContext:
    spark: Any
    settings: ProjectSettings
    sources: SystemSource
    in_pipeline: frozenset[str]  # tables defined in this pipeline; others are read fully qualified
    apply_expectations: bool  # the engine has no native expectations: the flow applies them
    system_views: bool  # local: system tables in SQL are read through temporary views
    qualifier: str  # e.g. `main`.`monitoring`: how tables outside this pipeline (or after it ran) are named
    temporary_views: frozenset[str] = frozenset()  # never published: read by bare name in batch too

    def table_ref(self, name: str, *, batch: bool = False) -> str:
        if (name in self.in_pipeline and not batch) or name in self.temporary_views:
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
        return self.checked(self.unchecked())

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

    def unchecked(self, *, batch: bool = False) -> Any:
        """The table's rows before expectations; `batch` reads finished tables (quality metrics)."""
        t, spark = self.table, self.ctx.spark
        identifiers = identifier_projection(self.ctx.settings)
        if t.pattern in (Pattern.STREAM, Pattern.SNAPSHOT, Pattern.SCD2):
            streaming = t.dataset_kind is DatasetKind.STREAMING_TABLE and not batch
            frame = self._read_source(t.source, streaming=streaming, batch=batch)
            if t.filter:
                frame = frame.where(t.filter)
            return frame.selectExpr(*source_projection(t), *identifiers)
        if t.pattern is Pattern.SCD2_CURRENT:
            sql = scd2_current_query(t, self.ctx.table_ref(t.derived_from, batch=batch))
        elif t.pattern is Pattern.REFERENCE:
            sql = reference_query(t)
        else:
            sql = resolve_references(t.query, lambda name: self._sql_ref(name, batch))
        # Declared columns by name, then this workspace's identifiers (an upstream's are not kept).
        # No analysis here: the engine forbids it inside query functions.
        return spark.sql(sql).selectExpr(*[quote(c.name) for c in t.columns], *identifiers)

    def checked(self, frame: Any) -> Any:
        if not self.ctx.apply_expectations:
            return frame
        for expectation in self.table.expectations:
            if expectation.on_violation is OnViolation.DROP:
                frame = frame.where(passes(expectation))
            elif expectation.on_violation is OnViolation.FAIL:
                frame = frame.where(fail_guard(self.table, expectation))
        return frame

    def _read_source(self, name: str, *, streaming: bool, batch: bool) -> Any:
        spark = self.ctx.spark
        if name.startswith("system."):
            return self.ctx.sources.read(spark, name, streaming=streaming)
        reference = self.ctx.table_ref(name, batch=batch)
        if not streaming:
            return spark.read.table(reference)
        # Retention deletes old rows of streaming tables (generated/sql/maintenance.sql); a Delta
        # stream fails on such a commit unless it skips it. Appends are still read.
        return spark.readStream.option("skipChangeCommits", "true").table(reference)

    def _sql_ref(self, name: str, batch: bool) -> str:
        if name.startswith("system."):
            return self.ctx.system_ref(name)
        return self.ctx.table_ref(name, batch=batch)


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


FlowFactory = Callable[[Table, FlowContext], TableFlow]


def register_batch_views(ctx: FlowContext, tables: list[Table]) -> None:
    """Outside the pipeline (quality checks after a local run), recreate what only the pipeline had:
    the temporary views over system tables and the spec's temporary views, as session views."""
    for name in sorted({s for t in tables if t.query for s in t.system_sources}):
        ctx.sources.read(ctx.spark, name, streaming=False).createOrReplaceTempView(system_view_name(name))
    for table in tables:  # topological order: a view over a view finds its upstream
        if table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            flow = TableFlow(table, ctx)
            flow.checked(flow.unchecked(batch=True)).createOrReplaceTempView(table.name)
