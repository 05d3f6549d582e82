"""The SQL toolkit on the fragments specs carry: parse once, never raise, read tables from the tree."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.spec import load_project
from engine.sql.fragments import bare_table_names, column_sources, parse_expression, parse_query

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
