"""The generated SQL data tests and their bundle job, without Spark: the queries parse as Databricks
SQL, the runner reads every header back, and the job passes Databricks' own typed bundle models."""

from __future__ import annotations

import dataclasses
import posixpath
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot
import yaml
from databricks.bundles.jobs import Job

from engine.errors import UserError
from engine.render import data_tests as render
from engine.render.registry import render_all
from engine.spec import load_project
from engine.spec.model import DatasetKind, Expectation, OnViolation
from engine.testing import data_tests
from engine.testing.data_tests import DataTestFileError

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture(scope="module")
def project():
    return load_project(HERE / "fixture_specs")


@pytest.fixture(scope="module")
def outputs(project):
    return render_all(project)


@pytest.fixture(scope="module")
def tests(outputs):
    return {t.id: t for path, text in outputs.items() if path.startswith("generated/data_tests/")
            for t in data_tests.parse(text, path)}


def repository_tests():
    return data_tests.load(REPO / "generated" / "data_tests")


def test_one_file_per_domain(project, outputs):
    files = sorted(p for p in outputs if p.startswith("generated/data_tests/"))
    assert files == [f"generated/data_tests/{d}.sql" for d in sorted({t.domain for t in project.tables})]


def test_every_stored_table_gets_schema_grain_and_not_null_tests(project, tests):
    for table in project.tables:
        ids = {i for i, t in tests.items() if t.table == table.name}
        prefix = f"{table.domain}::{table.name}::"
        if table.dataset_kind is DatasetKind.TEMPORARY_VIEW:
            assert not ids, f"{table.name} is not stored: nothing to test where the tables live"
            continue
        assert {prefix + "schema", prefix + "not_null"} <= ids
        assert (prefix + "unique_grain" in ids) == bool(table.keys)
        assert {prefix + e.name for e in table.expectations} <= ids


def test_header_fields_follow_the_spec(tests):
    schema = tests["billing::usage_bronze::schema"]
    assert schema.columns[:4] == (("record_id", "string"), ("workspace_id", "string"), ("usage_date", "date"),
                                  ("usage_quantity", "decimal(38,18)"))
    assert schema.columns[-2:] == (("_account_identifier", "string"), ("_workspace_identifier", "string"))
    assert schema.partitioned_by == ("usage_date",)
    # scd2 history keeps every version: its grain is the entity key plus the version column.
    assert "GROUP BY `workspace_id`, `cluster_id`, `change_time`" in tests["compute::clusters_bronze::unique_grain"].sql
    assert "GROUP BY `workspace_id`, `cluster_id`\n" in tests["compute::clusters_current::unique_grain"].sql
    not_null = tests["billing::daily_cost::not_null"]
    assert not_null.rule == "no NULL in workspace_id, usage_date, _account_identifier, _workspace_identifier"
    assert "total_cost_usd" not in not_null.sql  # nullable
    fail = tests["billing::daily_cost::non_negative"]
    assert (fail.kind, fail.severity, fail.expectation) == ("expectation", "error", "non_negative")
    assert "WHERE NOT COALESCE((total_cost_usd >= 0), FALSE)" in fail.sql  # NULL is a violation, as in the engine
    assert tests["billing::usage_bronze::record_id_present"].severity == "error"  # drop: the table holds none
    assert tests["billing::usage_bronze::known_unit"].severity == "warn"


def test_every_query_parses_as_databricks_sql(tests):
    every = list(tests.values()) + repository_tests()
    assert len(every) > 300
    for test in every:
        for text in (test.sql, test.query("main", "monitoring")):
            statements = sqlglot.parse(text, read="databricks")
            assert len(statements) == 1 and isinstance(statements[0], sqlglot.exp.Select), test.id
        assert "${" not in test.query("main", "monitoring")


def test_a_where_line_is_exactly_the_filter_of_its_query(tests):
    """The runner counts a test with a `-- where:` line as COUNT_IF(<where>) over the table: that is the
    query's row count only if the query is `SELECT ... FROM <its table> WHERE <that predicate>`."""
    every = list(tests.values()) + repository_tests()
    with_where = [t for t in every if t.where]
    assert {t.kind for t in with_where} == {"not_null", "expectation", "accepted_values"}
    assert all(t.where for t in every if t.kind in ("not_null", "expectation", "accepted_values")), \
        "every plain filter of the catalog fits one line"
    for test in with_where:
        query = sqlglot.parse_one(test.query("main", "monitoring"), read="databricks")
        assert not any(query.args.get(k) for k in ("joins", "group", "having", "limit", "distinct", "qualify")), test.id
        table = (query.args.get("from_") or query.args["from"]).this  # sqlglot renamed the key
        assert isinstance(table, sqlglot.exp.Table), test.id
        assert (table.catalog, table.db, table.name) == ("main", "monitoring", test.table), test.id
        predicate = sqlglot.parse_one(test.where, read="databricks")
        assert query.args["where"].this == predicate, test.id


def test_a_predicate_that_does_not_fit_one_comment_line_gets_no_where_line():
    multi_line = Expectation("spans_lines", "cost >= 0\n  AND cost < 1e9", OnViolation.WARN)
    assert render._where("NOT " + f"COALESCE(({multi_line.expr}), FALSE)") == ()
    assert render._where("NOT COALESCE((cost >= 0), FALSE)") == (("where", "NOT COALESCE((cost >= 0), FALSE)"),)


def test_placeholders_are_replaced_inside_backticks():
    test = next(t for t in repository_tests() if t.kind == "unique_grain")
    query = test.query("my`cat", "dev_schema")
    assert f"`my``cat`.`dev_schema`.`{test.table}`" in query
    sqlglot.parse_one(query, read="databricks")


def test_the_repository_files_cover_every_stored_table():
    project = load_project(REPO / "specs")
    stored = {t.name for t in project.tables if t.dataset_kind is not DatasetKind.TEMPORARY_VIEW}
    tests = repository_tests()
    assert {t.table for t in tests if t.kind == "schema"} == stored
    expectations = {(t.name, e.name) for t in project.tables for e in t.expectations if t.name in stored}
    assert {(t.table, t.expectation) for t in tests if t.expectation} == expectations
    assert all(t.id.split("::")[1] == t.table and t.domain == project.table(t.table).domain for t in tests)


@pytest.mark.parametrize("expr, column", [
    ("record_type IN ('ORIGINAL', 'RETRACTION')", "record_type"),
    ("status IS NULL OR status IN ('A', 'B')", "status"),
    ("other IS NULL OR status IN ('A')", None),
    ("status IN ('A') OR end_time IS NOT NULL", None),
    ("x IN (SELECT 1)", None),
    ("cost >= 0", None),
])
def test_accepted_values_are_read_from_in_list_expectations(expr, column):
    assert render.accepted_values_column(expr) == column


def test_an_expectation_may_not_take_a_built_in_test_name(project):
    table = project.table("daily_cost")
    clash = dataclasses.replace(table, expectations=(Expectation("not_null", "workspace_id IS NOT NULL", OnViolation.FAIL),))
    with pytest.raises(UserError, match="expectation name 'not_null' is reserved"):
        render.domain_tests(dataclasses.replace(project, tables=(clash,)), "billing")


def test_the_files_say_what_is_not_tested(outputs):
    jobs = outputs["generated/data_tests/jobs.sql"]
    assert "Not tested (pipeline-private temporary views, not stored): recent_runs." in jobs
    assert "-- grain: no keys declared, uniqueness not tested" in jobs
    billing = outputs["generated/data_tests/billing.sql"]
    assert "Freshness: not tested" in billing and "accepted-values" in billing


@pytest.mark.parametrize("text, message", [
    ("-- test: a::b::c\n-- table: b\n-- kind: not_null\n-- severity: error\n-- rule: r\nSELECT 1\n", "does not end with ';'"),
    ("-- test: a::b::c\n-- table: b\n-- kind: not_null\n-- severity: error\nSELECT 1;\n", "header lacks rule"),
    ("-- test: a::b::c\n-- table: b\n-- kind: freshness\n-- severity: error\n-- rule: r\nSELECT 1;\n", "kind 'freshness'"),
    ("-- test: a::b::c\n-- table: b\n-- kind: schema\n-- severity: error\n-- rule: r\nSELECT 1;\n", "declares no columns"),
    ("\n-- test: a::b::c\n-- table: b\n-- kind: not_null\n-- severity: loud\n-- rule: r\nSELECT 1;\n", "f.sql:2: severity 'loud'"),
])
def test_a_malformed_file_is_named_with_its_line(text, message):
    with pytest.raises(DataTestFileError, match=message):
        data_tests.parse(text, "f.sql")


def test_runner_imports_only_the_standard_library_and_pyspark():
    """The runner also runs on Databricks serverless: nothing from the project's other pins."""
    probe = (
        "import sys, importlib.abc\n"
        "allowed = set(sys.stdlib_module_names) | {'engine', 'pyspark'}\n"
        "class Refuse(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] not in allowed:\n"
        "            raise ImportError('the data test runner imported ' + name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import engine.testing.data_tests\n"
        "compile(open('engine/testing/data_tests_notebook.py').read(), 'notebook', 'exec')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the bundle job ----------------------------------------------------------------------------

def job(outputs, path: str, key: str) -> dict:
    return yaml.safe_load(outputs[path])["resources"]["jobs"][key]


def test_the_data_tests_job_passes_the_typed_bundle_models(outputs):
    for path in (render.JOB_FILE, "generated/resources/tablesmith_refresh_job.yml"):
        for key, value in yaml.safe_load(outputs[path])["resources"]["jobs"].items():
            Job.from_dict(value)  # raises on an unknown or misspelt field


def test_the_data_tests_job_runs_the_generic_notebook_on_serverless(outputs):
    data_job = job(outputs, render.JOB_FILE, "tablesmith_data_tests_job")
    (task,) = data_job["tasks"]
    notebook = posixpath.normpath(posixpath.join(posixpath.dirname(render.JOB_FILE), task["notebook_task"]["notebook_path"]))
    assert notebook == render.NOTEBOOK and (REPO / notebook).read_text().startswith("# Databricks notebook source\n")
    assert not {"new_cluster", "existing_cluster_id", "job_cluster_key", "environment_key"} & set(task)  # serverless
    assert "job_clusters" not in data_job
    assert {p["name"]: p["default"] for p in data_job["parameters"]} == {
        "catalog": "${var.catalog}", "schema": "${var.schema}", "bundle_root": "${workspace.file_path}"}
    notebook_text = (REPO / notebook).read_text()
    for name in ("catalog", "schema", "bundle_root"):
        assert f'dbutils.widgets.get("{name}")' in notebook_text


def test_the_refresh_job_runs_the_data_tests_after_the_pipeline(outputs):
    refresh = job(outputs, "generated/resources/tablesmith_refresh_job.yml", "tablesmith_refresh_job")
    pipeline, tests = refresh["tasks"]
    assert tests["depends_on"] == [{"task_key": pipeline["task_key"]}]
    assert tests["run_job_task"] == {"job_id": "${resources.jobs.tablesmith_data_tests_job.id}"}
    assert "run_if" not in tests  # default ALL_SUCCESS: no tests on tables a failed update left behind
