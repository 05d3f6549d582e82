"""Stage: runtime. The one adapter that imports the pipelines module.

`pyspark.pipelines` (open-source Spark 4.1+, and Databricks runtimes that ship it) or `dlt`
(older Databricks runtimes). Native expectations are used where the module has them; elsewhere
the flows apply the same semantics themselves (engine.runtime.flows).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from engine.spec.model import DatasetKind, OnViolation


def load_pipelines_module() -> ModuleType:
    try:
        from pyspark import pipelines as dp

        return dp
    except ImportError:  # Databricks runtimes before pyspark.pipelines existed
        import dlt  # type: ignore[import-not-found]

        return dlt


@dataclass(frozen=True)
class DatasetDefinition:
    """What the backend registers: a name, a kind, options, and a function returning a DataFrame."""

    name: str
    kind: DatasetKind
    query: Callable[[], Any]
    comment: str
    table_properties: dict[str, str]
    partition_cols: tuple[str, ...]
    cluster_by: tuple[str, ...]
    native_expectations: dict[OnViolation, dict[str, str]]  # only when the backend applies them


class PipelineBackend:
    def __init__(self, module: ModuleType | None = None, *, local: bool = False):
        self.dp = module or load_pipelines_module()
        self.local = local

    @property
    def has_native_expectations(self) -> bool:
        return hasattr(self.dp, "expect_all")

    def register(self, definition: DatasetDefinition) -> None:
        fn = definition.query
        if self.has_native_expectations:
            decorators = {OnViolation.WARN: "expect_all", OnViolation.DROP: "expect_all_or_drop", OnViolation.FAIL: "expect_all_or_fail"}
            for level, rules in definition.native_expectations.items():
                if rules:
                    fn = getattr(self.dp, decorators[level])({name: rule for name, rule in rules.items()})(fn)
        options: dict[str, Any] = {"name": definition.name, "comment": definition.comment}
        if definition.kind is DatasetKind.TEMPORARY_VIEW:
            self.dp.temporary_view(**options)(fn)
            return
        properties = dict(definition.table_properties)
        if self.local:
            # Local tables are Parquet: Delta-only properties and liquid clustering do not apply.
            properties = {k: v for k, v in properties.items() if not k.startswith("delta.")}
        else:
            if definition.cluster_by:
                options["cluster_by"] = list(definition.cluster_by)
        if properties:
            options["table_properties"] = properties
        if definition.partition_cols:
            options["partition_cols"] = list(definition.partition_cols)
        if definition.kind is DatasetKind.STREAMING_TABLE:
            self.dp.table(**options)(fn)
        else:
            # VIEW (persisted) is not in the Python API: published as a materialized view.
            self.dp.materialized_view(**options)(fn)


def native_rules(expectations) -> dict[OnViolation, dict[str, str]]:
    rules: dict[OnViolation, dict[str, str]] = {level: {} for level in OnViolation}
    for e in expectations:
        rules[e.on_violation][e.name] = e.expr
    return rules


