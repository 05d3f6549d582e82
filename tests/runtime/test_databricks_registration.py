"""What the real registration code registers on Databricks, for every pattern, expectation level and share option.

`register_pipeline` and `PipelineBackend` run unchanged against tests/runtime/databricks_pipelines.py:
Databricks' documented decorators (native `expect_all*`, `cluster_by`, `table_properties`), which
refuse undocumented keywords and hand the rest to the real pyspark.pipelines decorators. The specs
are written here, one per matrix cell, and validated by the real loader. No JVM: the query
functions run against a recording stand-in session.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pyspark import pipelines as oss

from engine.runtime.backend import PipelineBackend
from engine.runtime.entry import register_pipeline
from engine.runtime.queries import FAILED_EXPECTATION_MARKER, fail_guard, passes
from engine.spec import load_project
from engine.spec.model import DatasetKind, OnViolation, Table

from . import databricks_pipelines
from .databricks_pipelines import DOCUMENTED_PARAMETERS, RecordingSpark

PATTERNS = ("stream", "snapshot", "scd2", "aggregate", "view", "persisted_view", "reference")
LEVELS = ("no_expectations", "warn", "drop", "fail", "all_levels")
SHARES = ("unshared", "shared", "history", "alias", "include_pii")
NATIVE = {OnViolation.WARN: "expect_all", OnViolation.DROP: "expect_all_or_drop", OnViolation.FAIL: "expect_all_or_fail"}
DECORATOR = {DatasetKind.STREAMING_TABLE: ("table", "StreamingTable"),
             DatasetKind.MATERIALIZED_VIEW: ("materialized_view", "MaterializedView"),
             DatasetKind.VIEW: ("materialized_view", "MaterializedView"),  # persisted view: published as an MV
             DatasetKind.TEMPORARY_VIEW: ("temporary_view", "TemporaryView")}

SOURCES = {  # pattern -> (source or query, columns (name, type[, expr read from the source]), key)
    "stream": ("source: system.billing.usage", [("record_id", "STRING"), ("usage_date", "DATE"), ("usage_quantity", "DECIMAL(38,18)"), ("owner_email", "STRING", "identity_metadata.run_as")], "record_id"),
    "snapshot": ("source: system.billing.list_prices", [("sku_name", "STRING"), ("price_start_time", "TIMESTAMP"), ("currency_code", "STRING"), ("owner_email", "STRING", "account_id")], "sku_name"),
    "scd2": ("source: system.lakeflow.jobs", [("workspace_id", "STRING"), ("job_id", "STRING"), ("name", "STRING"), ("change_time", "TIMESTAMP"), ("delete_time", "TIMESTAMP"), ("owner_email", "STRING", "run_as")], "job_id"),
    "aggregate": ("query: SELECT sku_name, SUM(usage_quantity) AS total, MAX(identity_metadata.run_as) AS owner_email FROM ${system.billing.usage} GROUP BY sku_name",
                  [("sku_name", "STRING"), ("total", "DECIMAL(38,18)"), ("owner_email", "STRING")], "sku_name"),
    "view": ("query: SELECT workspace_id, workspace_name AS owner_email FROM ${system.access.workspaces_latest}", [("workspace_id", "STRING"), ("owner_email", "STRING")], "workspace_id"),
    "persisted_view": ("query: SELECT workspace_id, workspace_name AS owner_email FROM ${system.access.workspaces_latest}", [("workspace_id", "STRING"), ("owner_email", "STRING")], "workspace_id"),
    "reference": ("rows:\n  - {team: platform, owner_email: a@x.io}\n  - {team: data, owner_email: b@x.io}", [("team", "STRING"), ("owner_email", "STRING")], "team"),
}


def valid(pattern: str, share: str) -> bool:
    if pattern == "view":
        return share == "unshared"  # a temporary view is never shared (SHARE_NOT_SHAREABLE)
    return share != "history" or pattern in ("stream", "scd2")  # history: streaming tables only


CELLS = [(p, lvl, s) for p in PATTERNS for lvl in LEVELS for s in SHARES if valid(p, s)]


def cell_name(pattern: str, level: str, share: str) -> str:
    name = f"{pattern}__{level}__{share}"
    return f"{name}_history" if pattern == "scd2" else name


def spec_text(pattern: str, level: str, share: str) -> str:
    body, columns, key = SOURCES[pattern]
    pii = share == "include_pii"
    lines = [f"name: {cell_name(pattern, level, share)}", f"description: Cell {pattern} / {level} / {share}.",
             "domain: billing", "layer: silver", f"pattern: {'view' if pattern.endswith('view') else pattern}", body, "columns:"]
    lines += [f"  - {{name: {c}, type: \"{t}\"{''.join(f', expr: {e}' for e in expr)}, description: {c}."
              f"{', pii: true' if pii and c == 'owner_email' else ''}}}" for c, t, *expr in columns]
    lines.append(f"keys: [{'workspace_id, ' if pattern == 'scd2' else ''}{key}]")
    if pattern == "scd2":
        lines.append("scd2: {sequence_by: change_time, delete_column: delete_time}")
    if pattern == "persisted_view":
        lines.append("view: {persisted: true}")
    if pattern != "view":  # every stored table says how it is laid out (temporary views store nothing)
        lines.append("table_properties: {delta.enableChangeDataFeed: 'true', delta.appendOnly: 'false', team.owner: platform}")
        lines.append("partition_by: [usage_date]" if pattern == "stream" else f"cluster_by: [{key}]")
    levels = {"no_expectations": (), "all_levels": ("warn", "drop", "fail")}.get(level, (level,))
    if levels:
        lines.append("expectations:")
        lines += [f"  - {{name: {key}_{lv}, expr: {key} IS NOT NULL, on_violation: {lv}}}" for lv in levels]
    member = {"unshared": None, "shared": "{share: s1}", "history": "{share: s1, history: true}",
              "alias": f"{{share: s1, alias: {cell_name(pattern, level, share)}_alias}}", "include_pii": "{share: s1, include_pii: true}"}[share]
    if member:
        lines.append(f"share:\n  - {member}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    specs = tmp_path_factory.mktemp("matrix") / "specs"
    (specs / "billing").mkdir(parents=True)
    (specs / "project.yaml").write_text("name: matrix\ncatalog: main\nschema: mon\naccount_identifier: acc\n"
                                        "workspace_identifier: ws\nshares:\n  - name: s1\n")
    for cell in CELLS:
        (specs / "billing" / f"{cell_name(*cell)}.yaml").write_text(spec_text(*cell))
    return load_project(specs)  # the real checks: every cell is a valid spec


def _register(project, dp):
    spark = RecordingSpark()
    registration = register_pipeline(spark, {}, backend=PipelineBackend(dp), project=project)
    return {r.options["name"]: r for r in dp.registered}, registration, spark


@pytest.fixture(scope="module")
def databricks(project):
    return _register(project, databricks_pipelines.module())


@pytest.fixture(scope="module")
def without_native_expectations(project):
    """The same pipeline where the module has no expect_all* (open-source Spark): flows filter and raise."""
    dp = databricks_pipelines.module()
    for name in databricks_pipelines.EXPECT_ALL:
        delattr(dp, name)
    return _register(project, dp)


def _tables_of(project, cell) -> list[Table]:
    name = cell_name(*cell)
    tables = [project.table(name)]
    if cell[0] == "scd2":
        tables.append(project.table(name.removesuffix("_history") + "_current"))
    return tables


def _predicates(spark: RecordingSpark, function) -> list[str]:
    start = len(spark.calls)
    function()
    return [str(args[0]) for name, args in spark.calls[start:] if name in ("where", "filter")]


@pytest.mark.parametrize("cell", CELLS, ids=["-".join(c) for c in CELLS])
def test_registered_on_databricks(project, databricks, cell):
    registered, registration, spark = databricks
    for table in _tables_of(project, cell):
        r = registered[table.name]
        decorator, output_type = DECORATOR[table.dataset_kind]
        assert (r.decorator, type(r.output).__name__) == (decorator, output_type)
        assert r.output.name == table.name and r.options["comment"] == r.output.comment == table.description
        assert r.flow.target == table.name
        # Published in the pipeline's catalog and schema (a share can only hold a published table).
        assert not {"private", "path", "schema"} & set(r.options)
        if table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            assert set(r.options) == {"name", "comment"}
        else:
            # Delta properties are kept on Databricks; liquid clustering or partitions as declared.
            assert r.options.get("table_properties") == (dict(table.table_properties) or None)
            assert dict(r.output.table_properties) == dict(table.table_properties)
            assert r.options.get("cluster_by") == (list(table.cluster_by) or None) == (r.output.cluster_by or None)
            assert r.options.get("partition_cols") == (list(table.partition_by) or None) == (r.output.partition_cols or None)
        if table.derived_from:  # the scd2 latest-row table declares none of these itself
            assert set(r.options) == {"name", "comment"} and not r.expectations
        # Native expectations: one decorator per level, each with exactly that level's rules.
        expected = {NATIVE[e.on_violation]: {} for e in table.expectations}
        for e in table.expectations:
            expected[NATIVE[e.on_violation]][e.name] = e.expr
        assert r.expectations == expected
        # ...and the flow does not apply them a second time.
        predicates = _predicates(spark, r.function)
        guards = {passes(e) for e in table.expectations} | {fail_guard(table, e) for e in table.expectations}
        assert not guards & set(predicates) and not [p for p in predicates if FAILED_EXPECTATION_MARKER in p]
    assert cell_name(*cell) in registration.registered


@pytest.mark.parametrize("cell", [c for c in CELLS if c[1] in ("drop", "fail", "all_levels") and c[2] == "unshared"],
                         ids=lambda c: "-".join(c))
def test_without_native_expectations_the_flow_applies_drop_and_fail(project, without_native_expectations, cell):
    """The contrast that gives the assertion above its teeth: same spec, no expect_all* in the module."""
    registered, _, spark = without_native_expectations
    table = project.table(cell_name(*cell))
    r = registered[table.name]
    assert r.expectations == {}
    predicates = _predicates(spark, r.function)
    for e in table.expectations:
        if e.on_violation is OnViolation.DROP:
            assert passes(e) in predicates
        elif e.on_violation is OnViolation.FAIL:
            assert fail_guard(table, e) in predicates


def test_system_tables_are_read_from_unity_catalog(project, databricks):
    registered, _, spark = databricks

    def calls(pattern):
        start = len(spark.calls)
        registered[cell_name(pattern, "warn", "unshared")].function()
        return spark.calls[start:]

    stream = calls("stream")
    assert ("readStream", ()) in stream and ("option", ("skipChangeCommits", "true")) in stream
    assert ("table", ("system.billing.usage",)) in stream
    assert ("table", ("system.billing.list_prices",)) in calls("snapshot") and ("read", ()) in calls("snapshot")
    [(_, (sql,))] = [c for c in calls("aggregate") if c[0] == "sql"]
    assert "FROM system.billing.usage" in sql and "_system__" not in sql  # no local temporary views
    current = registered[cell_name("scd2", "warn", "unshared").removesuffix("_history") + "_current"].function
    start = len(spark.calls)
    current()
    [(_, (sql,))] = [c for c in spark.calls[start:] if c[0] == "sql"]
    assert f"FROM `{cell_name('scd2', 'warn', 'unshared')}`" in sql  # the history table, inside the pipeline


def test_every_cell_table_is_registered_once(project, databricks):
    registered, registration, _ = databricks
    assert sorted(registered) == sorted(project.table_names) == sorted(registration.registered)


# --- the stand-in module refuses what Databricks would refuse -----------------------------------

def _query():
    return None


@pytest.mark.parametrize("decorator, keyword", [("table", "format"), ("table", "clusterBy"), ("materialized_view", "partition_by"),
                                                ("temporary_view", "table_properties"), ("temporary_view", "spark_conf")])
def test_undocumented_keywords_are_rejected(decorator, keyword):
    dp = databricks_pipelines.module()
    with pytest.raises(TypeError, match=keyword):
        getattr(dp, decorator)(name="x", **{keyword: None})


def test_documented_databricks_only_keywords_are_accepted():
    dp = databricks_pipelines.module()
    dp.table(name="t", cluster_by_auto=True, row_filter="ROW FILTER f ON (c)", private=True)(_query)
    dp.materialized_view(name="m", refresh_policy="auto")(_query)
    assert [(r.decorator, r.options.get("private")) for r in dp.registered] == [("table", True), ("materialized_view", None)]


def test_values_are_validated_by_the_real_pyspark_decorators():
    dp = databricks_pipelines.module()
    with pytest.raises(Exception, match="cluster_by"):
        dp.materialized_view(name="m", cluster_by="not_a_list")(_query)


def test_expectations_go_below_the_dataset_decorator_with_unique_descriptions():
    dp = databricks_pipelines.module()
    with pytest.raises(TypeError, match="below the dataset decorator"):
        dp.expect_all({"a": "x > 0"})(dp.table(name="t")(_query))
    with pytest.raises(ValueError, match="used twice"):
        dp.expect_all_or_drop({"a": "x > 0"})(dp.expect_all({"a": "x > 1"})(_query))


@pytest.mark.parametrize("decorator", sorted(DOCUMENTED_PARAMETERS))
def test_documented_parameters_agree_with_pyspark_signatures(decorator):
    """The parameters open-source Spark has are spelled as Databricks documents them: drift shows here."""
    real = set(inspect.signature(getattr(oss, decorator)).parameters) - {"query_function"}
    documented = set(DOCUMENTED_PARAMETERS[decorator])
    if decorator == "temporary_view":
        assert documented <= real
    else:
        assert real - {"format"} <= documented  # `format` is open-source only (Delta on Databricks)
