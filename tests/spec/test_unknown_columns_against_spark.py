"""`validate`'s unknown-column and unknown-field checks (engine.sql.fragments.unknown_columns,
unknown_fields) against Spark's analyser:
every query Spark accepts, the check accepts (no construct sqlglot follows differently is taken for
a typo), and each typo it reports Spark rejects too. Tables are empty temporary views with the
same columns, a system table's from the registry; the catalog's own queries are covered by
`tablesmith validate` passing on specs/ and the catalog run."""

from __future__ import annotations

import pytest

from engine.names import flat_table_name, resolve_references
from engine.sources.system_tables import columns as system_columns
from engine.sql.fragments import parse_query, unknown_columns, unknown_fields
from engine.sql.types import ddl

USAGE = "system.billing.usage"
SCHEMA = {
    flat_table_name(USAGE): {f.name: ddl(f.type) for f in system_columns(USAGE)},
    "t": {"a": "INT", "arr": "ARRAY<INT>", "s": "STRUCT<x: INT, y: STRING>", "m": "MAP<STRING,STRING>", "d": "DATE",
          "nest": "STRUCT<inner: STRUCT<v: INT>>", "items": "ARRAY<STRUCT<q: INT, r: STRING>>"},
    "u": {"a": "INT", "b": "STRING"},
}
ACCEPTED = {
    "struct field": "SELECT usage_metadata.job_id AS j FROM ${system.billing.usage}",
    "struct field through an alias": "SELECT x.usage_metadata.job_id AS j FROM ${system.billing.usage} x",
    "nested struct field": "SELECT product_features.serving_type AS j FROM ${system.billing.usage}",
    "map value": "SELECT custom_tags['team'] AS team FROM ${system.billing.usage}",
    "lateral column alias": "SELECT a AS x, x + 1 AS y FROM ${t}",
    "lambda": "SELECT transform(arr, e -> e + 1) AS z FROM ${t}",
    "lambda with index": "SELECT filter(arr, (e, i) -> e > i) AS z FROM ${t}",
    "lambda reading a column": "SELECT exists(arr, e -> e > a) AS z FROM ${t}",
    "lateral view": "SELECT a, e FROM ${t} LATERAL VIEW explode(arr) x AS e",
    "posexplode": "SELECT pos, col FROM ${t} LATERAL VIEW posexplode(arr) AS pos, col",
    "group by all": "SELECT a, count(*) AS n FROM ${t} GROUP BY ALL",
    "correlated subquery": "SELECT a FROM ${t} WHERE EXISTS (SELECT 1 FROM ${u} WHERE u.a = t.a)",
    "cte": "WITH c AS (SELECT a, d FROM ${t}) SELECT c.a, max(d) AS latest FROM c GROUP BY c.a",
    "cte with column list": "WITH c (k, v) AS (SELECT a, d FROM ${t}) SELECT k, v FROM c",
    "qualify": "SELECT a FROM ${t} QUALIFY row_number() OVER (PARTITION BY a ORDER BY d) = 1",
    "named window": "SELECT a, sum(a) OVER w AS total FROM ${t} WINDOW w AS (PARTITION BY d)",
    "struct of a spec table": "SELECT s.x AS x FROM ${t}",
    "order by an alias": "SELECT a AS z FROM ${t} ORDER BY z",
    "having an alias": "SELECT d AS day, count(*) AS n FROM ${t} GROUP BY d HAVING n > 1",
    "values without names": "SELECT col1 AS a FROM VALUES (1), (2)",
    "values with names": "SELECT x FROM VALUES (1), (2) AS v(x)",
    "explode in select": "SELECT explode(arr) AS e FROM ${t}",
    "join using": "SELECT a, b FROM ${t} JOIN ${u} USING (a)",
    "subquery alias": "SELECT q.total FROM (SELECT sum(a) AS total FROM ${t}) q",
    "union": "SELECT a FROM ${t} UNION ALL SELECT a FROM ${u}",
    "same name in two tables, qualified": "SELECT t.a, u.a AS a2 FROM ${t} JOIN ${u} ON t.a = u.a",
    "nested struct path": "SELECT nest.inner.v AS v FROM ${t}",
    "nested struct path through the table's name": "SELECT t.nest.inner.v AS v FROM ${t}",
    "field of an array of structs": "SELECT items.q AS qs FROM ${t}",
    "lambda over an array of structs": "SELECT transform(items, e -> e.r) AS rs FROM ${t}",
    "map value by dot": "SELECT m.team AS team FROM ${t}",
    "a cte's struct named like a table's": "WITH c AS (SELECT named_struct('z', a) AS s FROM ${t}) SELECT s.z FROM c",
    "case-insensitive field": "SELECT usage_metadata.JOB_ID AS j FROM ${system.billing.usage}",
}
UNRESOLVED, NO_FIELD = "UNRESOLVED_COLUMN", "FIELD_NOT_FOUND"  # Spark's error classes
TYPOS = {
    "select": ("SELECT aa FROM ${t}", ["aa"], UNRESOLVED),
    "where": ("SELECT a FROM ${t} WHERE bb = 1", ["bb"], UNRESOLVED),
    "qualified by a table that lacks it": ("SELECT t.b FROM ${t} JOIN ${u} ON t.a = u.a", ["b"], UNRESOLVED),
    "inside a cte": ("WITH c AS (SELECT a, dd FROM ${t}) SELECT a FROM c", ["dd"], UNRESOLVED),
    "system table": ("SELECT usage_dat FROM ${system.billing.usage}", ["usage_dat"], UNRESOLVED),
    "several at once": ("SELECT x1, a FROM ${t} WHERE x2 > 0 GROUP BY x1, a", ["x1", "x2"], UNRESOLVED),
    "field of a system table's struct": ("SELECT usage_metadata.job_idd AS j FROM ${system.billing.usage}", ["job_idd"], NO_FIELD),
    "field through the table's alias": ("SELECT x.usage_metadata.jobid AS j FROM ${system.billing.usage} x", ["jobid"], NO_FIELD),
    "nested field": ("SELECT nest.inner.w AS w FROM ${t}", ["w"], NO_FIELD),
    "field of an array of structs": ("SELECT items.z AS zs FROM ${t}", ["z"], NO_FIELD),
    "struct column misspelt before its field": ("SELECT usage_metadat.job_id AS j FROM ${system.billing.usage}",
                                                ["usage_metadat"], UNRESOLVED),
    "misspelt head of a field another table has as a column": (
        "SELECT nes.a AS x FROM ${t} JOIN ${u} ON t.a = u.a", ["nes"], UNRESOLVED),
}


@pytest.fixture(scope="module")
def spark(local_spark):
    for name, columns in SCHEMA.items():
        ddl_text = ", ".join(f"`{column}` {type_}" for column, type_ in columns.items())
        local_spark.spark.createDataFrame([], ddl_text).createOrReplaceTempView(name)
    return local_spark.spark


def _spark_error(spark, query: str) -> str | None:
    """Spark's analysis error for the query, or None when it accepts it."""
    try:
        spark.sql(resolve_references(query, flat_table_name)).schema
    except Exception as error:  # noqa: BLE001 - the error's text is what is compared
        return str(error)
    return None


def _unknown(query: str) -> list[str]:
    parsed, problem = parse_query(query)
    assert parsed is not None, problem
    found = unknown_columns(parsed, SCHEMA)
    assert found is not None, f"sqlglot could not qualify: {query}"
    return [p.near for p in found + unknown_fields(parsed, SCHEMA)]


@pytest.mark.parametrize("query", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_spark_accepts_is_no_typo(spark, query):
    assert _spark_error(spark, query) is None, f"Spark rejects the probe itself: {query}"
    assert _unknown(query) == []


@pytest.mark.parametrize(("query", "names", "spark_error"), TYPOS.values(), ids=TYPOS.keys())
def test_each_typo_reported_is_one_spark_rejects(spark, query, names, spark_error):
    assert _unknown(query) == names
    error = _spark_error(spark, query)
    assert error is not None and spark_error in error, error
