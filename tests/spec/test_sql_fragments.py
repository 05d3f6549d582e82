"""The SQL toolkit on the fragments specs carry: parse once, never raise, read tables from the tree."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.spec import load_project
from engine.sql.fragments import bare_table_names, column_sources, may_derive_from, parse_expression, parse_query

BASE = Path(__file__).parent / "base"

LITERAL_SPEC = """name: notes
description: A string literal that mentions a table is not a reference to it.
domain: billing
layer: gold
pattern: aggregate
query: |
  SELECT workspace_id, 'moved from base_usage' AS note, 'join base_daily' AS other
  FROM ${base_usage}
  GROUP BY workspace_id
columns:
  - {name: workspace_id, type: STRING, description: Workspace.}
  - {name: note, type: STRING, description: A note.}
  - {name: other, type: STRING, description: Another note.}
"""


def test_a_literal_naming_a_table_is_not_a_bare_reference(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(BASE, specs)
    (specs / "billing" / "notes.yaml").write_text(LITERAL_SPEC)
    project = load_project(specs)
    assert project.table("notes").upstream_tables == ("base_usage",)


def test_bare_names_come_from_the_parse_tree():
    assert bare_table_names("SELECT 'from base_usage' FROM ${base_usage}") == ()
    assert bare_table_names("WITH x AS (SELECT 1 AS a) SELECT * FROM x JOIN base_daily") == ("base_daily",)


def test_lineage_through_ctes_unions_and_subqueries():
    parsed, problem = parse_query(
        "WITH x AS (SELECT id, lower(email) AS who FROM ${people}), "
        "y AS (SELECT * FROM x UNION ALL SELECT id, alias FROM ${people}) "
        "SELECT y.id, who AS person, (SELECT max(email) FROM ${people}) AS last FROM y")
    assert problem is None
    sources = column_sources(parsed, {"people": {"id": "string", "email": "string", "alias": "string"}})
    assert sources == {"id": {("people", "id")}, "person": {("people", "email"), ("people", "alias")},
                       "last": {("people", "email")}}


sql_text = st.text(alphabet=st.sampled_from(list("SELECT FROM WHERE()'\"`;-*/,.${}<>=!| \n\tabcxyz0129")), max_size=80)


@settings(max_examples=300, deadline=None)
@given(sql_text)
def test_no_sqlglot_exception_escapes(text):
    tree, problem = parse_expression(text)
    assert (tree is None) != (problem is None)
    parsed, problem = parse_query(text)
    assert (parsed is None) != (problem is None)
    bare_table_names(text)


@pytest.mark.parametrize("query, expected", [
    ("SELECT id, count(*) AS n FROM ${people} GROUP BY id", False),  # COUNT(*) expands nothing
    ("SELECT id, count(DISTINCT Email) AS n FROM ${people} GROUP BY id", True),  # named, in any case
    ("SELECT * FROM ${people}", True),
    ("SELECT p.* FROM ${people} AS p", True),
    ("WITH x AS (SELECT * FROM ${people}) SELECT id FROM x", True),
    ("SELECT id, `email` AS who FROM ${people}", True),
    ("SELECT id, 'email' AS label FROM ${people}", False),  # a string literal names no column
])
def test_which_queries_may_derive_from_a_column(query, expected):
    """The shortcut before lineage: a query that names no PII column and expands no star cannot carry one."""
    parsed, _ = parse_query(query)
    assert may_derive_from(parsed, {"email"}) is expected
    if not expected:  # the shortcut never hides what the full lineage would find
        sources = column_sources(parsed, {"people": {"id": "string", "email": "string"}})
        assert not any(name == "email" for pairs in sources.values() for _, name in pairs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["id", "email", "lower(email)", "count(*)", "*", "p.*", "'email'", "1", "id + 1",
                                 "max(alias)"]), min_size=1, max_size=4),
       st.booleans())
def test_the_shortcut_agrees_with_the_lineage(projections, grouped):
    columns = ", ".join(f"{p} AS c{i}" if p not in ("*", "p.*") else p for i, p in enumerate(projections))
    query = f"SELECT {columns} FROM ${{people}} AS p" + (" GROUP BY id" if grouped else "")
    parsed, _ = parse_query(query)
    if parsed is None or may_derive_from(parsed, {"email"}):
        return
    sources = column_sources(parsed, {"people": {"id": "string", "email": "string", "alias": "string"}}) or {}
    assert not any(name == "email" for pairs in sources.values() for _, name in pairs), query


@pytest.mark.parametrize("query, flagged", [
    ("SELECT a, b, SUM(x) AS s FROM ${t} GROUP BY a", ["b"]),
    ("SELECT a, b, SUM(x) AS s FROM ${t} GROUP BY 1, 2", []),
    ("SELECT lower(a) AS la, SUM(x) AS s FROM ${t} GROUP BY lower(a)", []),  # the projection's SQL is a key
    ("SELECT lower(a) AS la, upper(b) AS ub, SUM(x) AS s FROM ${t} GROUP BY lower(a), b", []),
    ("SELECT a + b AS ab, SUM(x) AS s FROM ${t} GROUP BY a", ["b"]),
    ("SELECT t.a, SUM(x) AS s FROM ${t} AS t GROUP BY t.a", []),
    ("SELECT a, COUNT(*) AS n FROM ${t}", ["a"]),
    ("SELECT a, b FROM ${t} GROUP BY ALL", []),
    ("SELECT a, SUM(x) OVER (PARTITION BY a) AS s FROM ${t}", []),
])
def test_ungrouped_columns_are_named(query, flagged):
    from engine.sql.fragments import aggregate_problems

    parsed, _ = parse_query(query)
    assert [p.near for p in aggregate_problems(parsed)] == flagged
