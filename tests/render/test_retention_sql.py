"""Retention: the DELETE statements of generated/sql/maintenance.sql, checked two ways.

Their shape is parsed with sqlglot as Databricks SQL (one DELETE per streaming table with a
retention, on its declared column, against today's date). Their meaning is run on real Spark: the
WHERE clause of each DELETE becomes a SELECT (sqlglot rewrites the tree) over a small table with
rows on both sides of the cutoff, so the rows it would delete are exactly the expired ones, and an
scd2 history keeps the latest version of every entity however old. DELETE itself needs Delta, which
the local (Parquet) run does not have: retention is enforced on Databricks only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from engine.render.registry import render_all
from engine.render.viewmodel import maintenance_view
from engine.runtime.queries import retention_delete
from engine.spec import load_project
from engine.spec.model import DatasetKind, Retention

from tests.render.test_render_sql import statements_of

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project():
    return load_project(REPO / "specs")


def _deletes(project) -> dict[str, exp.Delete]:
    text = render_all(project)["generated/sql/maintenance.sql"]
    trees = [sqlglot.parse_one(s, read="databricks") for s in statements_of(text)]
    return {tree.this.name: tree for tree in trees if isinstance(tree, exp.Delete)}


def test_every_retained_streaming_table_gets_one_delete_on_its_column(project):
    deletes = _deletes(project)
    retained = {t.name: t for t in project.tables if t.retention is not None}
    assert set(deletes) == set(retained) and retained
    for name, tree in deletes.items():
        table = retained[name]
        assert table.dataset_kind is DatasetKind.STREAMING_TABLE, name
        # The daily job passes the target's catalog and schema as these SQL-file parameters.
        assert (tree.this.catalog, tree.this.db) == ("{{catalog}}", "{{schema}}")
        cutoff = tree.args["where"].find(exp.LT)
        assert cutoff.this.name == table.retention.column, name
        assert cutoff.expression.find(exp.CurrentDate) is not None
        assert str(table.retention.days) in cutoff.expression.sql(), name
        keeps_latest = tree.args["where"].find(exp.Exists)
        assert (keeps_latest is not None) == (table.scd2 is not None and table.derived_from is None), name


def test_bronze_streaming_tables_outlive_their_system_sources(project):
    from engine.sources.system_tables import SYSTEM_TABLES

    for table in project.tables:
        if table.layer.value == "bronze" and table.dataset_kind is DatasetKind.STREAMING_TABLE:
            assert table.retention is not None and table.retention.column, table.name
            source = SYSTEM_TABLES[table.source]
            assert table.retention.days > (source.retention_days or 0), table.name
    nodes = project.table("node_timeline_bronze")
    assert (nodes.retention.days, nodes.retention.column, SYSTEM_TABLES[nodes.source].retention_days) == (730, "start_time", 90)


def test_maintenance_lists_the_delete_before_optimize(project):
    view = maintenance_view(project)
    for item in view.items:
        table = project.table(item.table)
        if table.retention is not None:
            assert item.statements[0].startswith("DELETE FROM ") and "deleted here" in item.note


def _as_select(delete_sql: str) -> str:
    """The rows a DELETE would remove, as a SELECT with the same target, alias and WHERE."""
    tree = sqlglot.parse_one(delete_sql, read="databricks")
    return exp.select("*").from_(tree.this.copy()).where(tree.args["where"].this.copy()).sql(dialect="spark")


def test_the_delete_removes_exactly_the_expired_rows_on_spark(local_spark, project):
    spark = local_spark.spark
    today = dt.date.today()
    old, recent = today - dt.timedelta(days=800), today - dt.timedelta(days=20)

    runs = dataclasses.replace(project.table("job_runs_bronze"), retention=Retention(730, "period_start_time"))
    rows = [("r-old", dt.datetime.combine(old, dt.time(3))), ("r-new", dt.datetime.combine(recent, dt.time(3)))]
    spark.createDataFrame(rows, "run_id string, period_start_time timestamp").createOrReplaceTempView("retention_runs")
    expired = spark.sql(_as_select(retention_delete(runs, "retention_runs"))).collect()
    assert [r.run_id for r in expired] == ["r-old"]

    jobs = project.table("jobs_bronze")
    versions = [  # (workspace_id, job_id, name, change_time)
        ("w1", "a", "a-v1", dt.datetime.combine(today - dt.timedelta(days=900), dt.time(1))),
        ("w1", "a", "a-v2", dt.datetime.combine(old, dt.time(1))),  # old but the latest of job a: kept
        ("w1", "b", "b-v1", dt.datetime.combine(old, dt.time(1))),  # old, superseded below: deleted
        ("w1", "b", "b-v2", dt.datetime.combine(recent, dt.time(1))),
        ("w2", "a", "other-workspace", dt.datetime.combine(old, dt.time(2))),  # same job_id, other workspace
    ]
    spark.createDataFrame(versions, "workspace_id string, job_id string, name string, change_time timestamp") \
        .createOrReplaceTempView("retention_jobs")
    expired = spark.sql(_as_select(retention_delete(jobs, "retention_jobs"))).collect()
    assert sorted(r.name for r in expired) == ["a-v1", "b-v1"]
