"""Where a problem Spark finds at run time lands in a spec (engine.spec.located): the query's line
and the fragment on it, in a block or a one-line query; an expectation holding the fragment; the
table itself when nothing in the spec holds it. The line numbers are found in the files' text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.spec import load_project
from engine.spec.located import sql_diagnostic

SPECS = Path(__file__).parents[1] / "runtime" / "specs"
ONE_LINE = "query: SELECT workspace_id, job_id, job_name, SUM(usage_quantity) AS total_dbus FROM ${job_usage} GROUP BY workspace_id, job_id, job_name\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    specs = tmp_path_factory.mktemp("located") / "specs"
    shutil.copytree(SPECS, specs)
    spec = specs / "billing" / "cost_by_job_name.yaml"
    text = spec.read_text()
    start = text.index("query: |")
    end = text.index("columns:")
    spec.write_text(text[:start] + ONE_LINE + text[end:])
    return load_project(specs)


def _at(path: Path, needle: str) -> tuple[int, int]:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def test_a_line_of_a_block_query_and_the_fragment_on_it(project):
    table = project.table("daily_cost")
    found = sql_diagnostic(table, "FLOW_FAILED", "[X] boom", 3, "SUM(u.usage_quantity * p.price)")
    assert (found.line, found.col) == _at(Path(found.file), "SUM(u.usage_quantity * p.price)")
    assert found.key_path == "query" and found.message == "daily_cost: [X] boom" and "^" in found.snippet


def test_a_position_without_a_fragment_counts_from_the_query_line(project):
    table = project.table("daily_cost")
    line = table.query.splitlines()[2]  # "         CAST(SUM(u.usage_quantity * p.price) AS DECIMAL(38,6)) AS total_cost_usd"
    found = sql_diagnostic(table, "QUERY_UNRESOLVED", "[X] boom", 3, "", line.index("SUM("))
    assert (found.line, found.col) == _at(Path(found.file), "SUM(u.usage_quantity * p.price)")


def test_a_one_line_query(project):
    table = project.table("cost_by_job_name")
    found = sql_diagnostic(table, "QUERY_UNRESOLVED", "[X] boom", 1, "usage_quantity")
    assert (found.line, found.col) == _at(Path(found.file), "usage_quantity")


def test_a_fragment_that_is_not_on_the_query_line_is_looked_for_in_the_expectations(project):
    table = project.table("cost_by_job_name")
    found = sql_diagnostic(table, "FLOW_FAILED", "[X] boom", 1, "total_dbus >= 0")
    assert (found.line, found.col) == _at(Path(found.file), "total_dbus >= 0")
    assert found.key_path == "expectations[0].expr"


def test_nothing_found_points_at_the_table(project):
    table = project.table("daily_cost")
    for line, fragment in ((None, ""), (99, "x"), (3, "not in this spec")):
        found = sql_diagnostic(table, "FLOW_FAILED", "[X] boom", line, fragment)
        assert (found.file, found.line, found.col) == (table.location.file, table.location.line, table.location.col)
        assert found.key_path == "" and found.message == "daily_cost: [X] boom"
