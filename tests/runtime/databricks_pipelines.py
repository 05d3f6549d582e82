"""A pipelines module with Databricks' documented decorators, recording what a pipeline would register.

Databricks' `pyspark.pipelines` cannot run here, so tests build this stand-in: a real module object
(`types.ModuleType`), not a mock. Each decorator takes exactly the keyword arguments the Lakeflow
Python reference documents for it and raises TypeError on any other, as Python does for the real
one. The arguments open-source Spark shares are handed to the real `pyspark.pipelines` decorators
(tests check the two lists against pyspark's own signatures), which validate their values and build
the Output and Flow objects a pipeline registers; the Databricks-only ones are recorded beside them.

Sources, fetched with the `search` tool (docs corpus), 2026:
- docs.databricks.com/aws/en/ldp/developer/ldp-python-ref-table and learn.microsoft.com/azure/databricks/ldp/developer/ldp-python-ref-table
- docs.databricks.com/gcp/en/ldp/developer/ldp-python-ref-materialized-view
- docs.databricks.com/aws/dlt-ref/dlt-python-ref-view (temporary_view: name, comment)
- docs.databricks.com/gcp/dlt-ref/dlt-python-ref-expectations: expectation decorators come after
  (below) the dataset decorator; expect_all* take a dict of {description: constraint}, descriptions
  unique per dataset.
"""

from __future__ import annotations

import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Callable

from pyspark import pipelines as oss
from pyspark.pipelines.graph_element_registry import GraphElementRegistry, graph_element_registration_context

DOCUMENTED_PARAMETERS: dict[str, tuple[str, ...]] = {
    "table": ("name", "comment", "spark_conf", "table_properties", "path", "partition_cols", "cluster_by_auto",
              "cluster_by", "schema", "row_filter", "private", "replace_using", "sequence_by"),
    "materialized_view": ("name", "comment", "spark_conf", "table_properties", "path", "partition_cols",
                          "cluster_by_auto", "cluster_by", "schema", "refresh_policy", "row_filter", "private"),
    "temporary_view": ("name", "comment"),
}
# expectation decorator -> what a violating row does
EXPECT_ALL = {"expect_all": "warn", "expect_all_or_drop": "drop", "expect_all_or_fail": "fail"}
EXPECT_ONE = {"expect": "warn", "expect_or_drop": "drop", "expect_or_fail": "fail"}


@dataclass
class Registered:
    """One dataset as a Databricks pipeline would receive it."""

    decorator: str  # table | materialized_view | temporary_view
    options: dict[str, Any]  # every keyword given, Databricks-only ones included
    output: Any  # pyspark.pipelines.output.{StreamingTable, MaterializedView, TemporaryView}
    flow: Any  # pyspark.pipelines.flow.Flow
    expectations: dict[str, dict[str, str]]  # decorator name -> {description: constraint}

    @property
    def function(self) -> Callable[[], Any]:
        return self.flow.func


class _Recorder(GraphElementRegistry):
    def __init__(self) -> None:
        self.outputs: list[Any] = []
        self.flows: list[Any] = []

    def register_output(self, output: Any) -> None:
        self.outputs.append(output)

    def register_flow(self, flow: Any) -> None:
        self.flows.append(flow)

    def register_auto_cdc_flow(self, flow: Any) -> None:
        raise AssertionError("not used by the engine")

    def register_sql(self, sql_text: str, file_path: Any) -> None:
        raise AssertionError("not used by the engine")


@dataclass
class _Expecting:
    """A query function carrying expectation decorators, waiting for its dataset decorator."""

    function: Callable[[], Any]
    expectations: dict[str, dict[str, str]] = field(default_factory=dict)

    def __call__(self) -> Any:
        return self.function()

    @property
    def __name__(self) -> str:  # pyspark names a dataset after its function when no name is given
        return getattr(self.function, "__name__", "query")


def module() -> types.ModuleType:
    """A fresh module: `module().registered` lists what was registered, in order."""
    dp = types.ModuleType("databricks_pipelines", "Databricks' pyspark.pipelines as documented, recording.")
    recorder = _Recorder()
    dp.registered = []  # type: ignore[attr-defined]

    def dataset(decorator: str) -> Callable[..., Any]:
        parameters = [inspect.Parameter("query_function", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
        parameters += [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, default=None) for p in DOCUMENTED_PARAMETERS[decorator]]
        signature = inspect.Signature(parameters)
        real = getattr(oss, decorator)
        shared = set(inspect.signature(real).parameters) - {"query_function"}

        def decorate(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)  # TypeError for an undocumented keyword
            query_function = bound.arguments.pop("query_function", None)
            options = dict(bound.arguments)

            def register(function: Any) -> None:
                if function is None or not callable(function):
                    raise TypeError(f"@{decorator} decorates a query function, got {function!r}")
                expectations = function.expectations if isinstance(function, _Expecting) else {}
                before = (len(recorder.outputs), len(recorder.flows))
                with graph_element_registration_context(recorder):
                    real(**{k: v for k, v in options.items() if k in shared})(function)
                [output], [flow] = recorder.outputs[before[0]:], recorder.flows[before[1]:]
                dp.registered.append(Registered(decorator, options, output, flow, {k: dict(v) for k, v in expectations.items()}))

            if query_function is not None:
                return register(query_function)
            return register

        decorate.__signature__ = signature  # type: ignore[attr-defined]
        decorate.__name__ = decorator
        return decorate

    def expect_all(decorator: str) -> Callable[..., Any]:
        def decorate(expectations: dict[str, str]) -> Callable[[Any], _Expecting]:
            if not isinstance(expectations, dict) or not expectations:
                raise TypeError(f"{decorator} takes a non-empty dict of {{description: constraint}}")
            for description, constraint in expectations.items():
                if not isinstance(description, str) or not isinstance(constraint, str):
                    raise TypeError(f"{decorator}: descriptions and constraints are strings")
            return lambda function: _expecting(decorator, function, expectations)

        decorate.__name__ = decorator
        return decorate

    def expect_one(decorator: str) -> Callable[..., Any]:
        def decorate(description: str, constraint: str) -> Callable[[Any], _Expecting]:
            return lambda function: _expecting(decorator, function, {description: constraint})

        decorate.__name__ = decorator
        return decorate

    for name in DOCUMENTED_PARAMETERS:
        setattr(dp, name, dataset(name))
    for name in EXPECT_ALL:
        setattr(dp, name, expect_all(name))
    for name in EXPECT_ONE:
        setattr(dp, name, expect_one(name))
    return dp


def _expecting(decorator: str, function: Any, expectations: dict[str, str]) -> _Expecting:
    if not callable(function):
        # The dataset decorator returned None: the expectation sits above it, where it is lost.
        raise TypeError(f"@{decorator} must come below the dataset decorator, directly above the function")
    target = function if isinstance(function, _Expecting) else _Expecting(function)
    seen = {d for rules in target.expectations.values() for d in rules}
    duplicate = sorted(seen & set(expectations))
    if duplicate:
        raise ValueError(f"expectation description {duplicate[0]!r} is used twice on one dataset")
    target.expectations.setdefault(decorator, {}).update(expectations)
    return target


class RecordingSpark:
    """Stand-in for the Databricks session at definition and query time: answers catalog probes
    (`missing` system schemas have no tables), records every DataFrame call with its arguments."""

    def __init__(self, missing_schemas: set[str] = frozenset()):
        self.missing_schemas = set(missing_schemas)
        self.probed: list[str] = []
        self.calls: list[tuple[str, tuple]] = []
        self.catalog = types.SimpleNamespace(tableExists=self._table_exists)

    def _table_exists(self, name: str) -> bool:
        self.probed.append(name)
        return name.split(".")[1] not in self.missing_schemas

    def sql(self, text: str) -> "_Frame":
        self.calls.append(("sql", (text,)))
        return _Frame(self)

    @property
    def read(self) -> "_Frame":
        self.calls.append(("read", ()))
        return _Frame(self)

    @property
    def readStream(self) -> "_Frame":  # noqa: N802 - Spark's name
        self.calls.append(("readStream", ()))
        return _Frame(self)


class _Frame:
    def __init__(self, spark: RecordingSpark):
        self._spark = spark

    def __getattr__(self, name: str) -> Callable[..., "_Frame"]:
        def call(*args: Any, **kwargs: Any) -> "_Frame":
            self._spark.calls.append((name, args))
            return self

        return call
