"""The incremental-refresh rule table (engine.sql.refresh) on small queries: each rule fires on its
construct, an eligible query gives no reason, and text inside string literals never fires."""

from __future__ import annotations

import pytest

from engine.sql.refresh import RULES, RULES_BY_CODE, expression_reasons, query_reasons

ELIGIBLE = [
    "SELECT workspace_id, SUM(usage_quantity) AS q FROM ${billing_usage_bronze} GROUP BY workspace_id",
    "WITH d AS (SELECT workspace_id, usage_date FROM ${a} WHERE usage_date >= DATE'2024-01-01') SELECT * FROM d",
    "SELECT a.x, b.y FROM ${a} AS a JOIN ${b} AS b ON a.k = b.k LEFT JOIN ${c} AS c ON c.k = a.k",
    "SELECT x FROM ${a} UNION ALL SELECT x FROM ${b}",
    "SELECT k, ROW_NUMBER() OVER (PARTITION BY k ORDER BY t DESC) AS rn FROM ${a}",
    "SELECT k FROM ${a} QUALIFY ROW_NUMBER() OVER (PARTITION BY k ORDER BY t DESC) = 1",
    "SELECT k, SUM(v) OVER w AS s FROM ${a} WINDOW w AS (PARTITION BY k ORDER BY t)",
    "SELECT k, c FROM ${a} LATERAL VIEW explode(ids) e AS c",  # explode: a deterministic built-in function
    "SELECT k, COUNT(*) AS n FROM ${a} GROUP BY k HAVING COUNT(*) > 1",
    "SELECT 'current_date()' AS label, \"rand()\" AS other FROM ${a}",  # text in quotes is not a call
    "SELECT `current_date` FROM ${a}",  # a column named like the function
]


@pytest.mark.parametrize("query", ELIGIBLE)
def test_an_eligible_query_gives_no_reason(query):
    assert query_reasons(query) == ()


FIRES = [
    ("SELECT x FROM ${a} WHERE d >= current_date() - 30", "EXPRESSION_NOT_DETERMINISTIC", "current_date()"),
    ("SELECT x, current_timestamp() AS t FROM ${a}", "EXPRESSION_NOT_DETERMINISTIC", "current_timestamp()"),
    ("SELECT x FROM ${a} WHERE rand() < 0.1", "EXPRESSION_NOT_DETERMINISTIC", "rand()"),
    ("SELECT uuid() AS id FROM ${a}", "EXPRESSION_NOT_DETERMINISTIC", "uuid()"),
    ("SELECT now() AS t FROM ${a}", "EXPRESSION_NOT_DETERMINISTIC", "current_timestamp()"),  # now() is an alias
    ("SELECT x, RANK() OVER (ORDER BY x) AS r FROM ${a}", "WINDOW_WITHOUT_PARTITION_BY", "RANK() OVER (ORDER BY x)"),
    ("SELECT SUM(v) OVER w AS s FROM ${a} WINDOW w AS (ORDER BY t)", "WINDOW_WITHOUT_PARTITION_BY", "SUM(v) OVER w"),
    ("SELECT x, (SELECT MAX(d) FROM ${b}) AS m FROM ${a}", "SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE", "scalar subquery"),
    ("SELECT x FROM ${a} WHERE k IN (SELECT k FROM ${b})", "SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE", "IN (subquery)"),
    ("SELECT x FROM ${a} WHERE EXISTS (SELECT 1 FROM ${b})", "SUBQUERY_EXPRESSION_NOT_INCREMENTALIZABLE", "EXISTS"),
    ("SELECT x FROM ${a} CROSS JOIN ${b}", "OPERATOR_NOT_INCREMENTALIZABLE", "CROSS JOIN"),
    ("SELECT x FROM ${a}, ${b}", "OPERATOR_NOT_INCREMENTALIZABLE", "CROSS JOIN"),
    ("SELECT DISTINCT x FROM ${a}", "OPERATOR_NOT_INCREMENTALIZABLE", "SELECT DISTINCT"),
    ("SELECT x FROM ${a} UNION SELECT x FROM ${b}", "OPERATOR_NOT_INCREMENTALIZABLE", "UNION (distinct)"),
    ("SELECT x FROM ${a} EXCEPT SELECT x FROM ${b}", "OPERATOR_NOT_INCREMENTALIZABLE", "EXCEPT"),
    ("SELECT x FROM ${a} ORDER BY x LIMIT 10", "OPERATOR_NOT_INCREMENTALIZABLE", "LIMIT"),
    ("SELECT x FROM ${a} LEFT ANTI JOIN ${b} ON a.k = b.k", "OPERATOR_NOT_INCREMENTALIZABLE", "ANTI JOIN"),
]


@pytest.mark.parametrize("query, code, construct", FIRES)
def test_each_rule_fires_on_its_construct(query, code, construct):
    reasons = query_reasons(query)
    assert any(r.code == code and construct in r.construct for r in reasons), reasons
    assert all(r.code in RULES_BY_CODE for r in reasons)


def test_every_query_rule_has_a_case_and_every_rule_cites_the_docs():
    tested = {code for _, code, _ in FIRES}
    assert tested == {rule.code for rule in RULES if rule.find is not None}
    assert all(rule.doc.startswith("https://docs.databricks.com/") for rule in RULES)


def test_reasons_name_each_construct_once_in_rule_order():
    reasons = query_reasons("SELECT DISTINCT x, current_date() AS d, current_date() AS e FROM ${a} CROSS JOIN ${b}")
    assert [(r.code, r.construct) for r in reasons] == [
        ("EXPRESSION_NOT_DETERMINISTIC", "current_date()"),
        ("OPERATOR_NOT_INCREMENTALIZABLE", "SELECT DISTINCT"),
        ("OPERATOR_NOT_INCREMENTALIZABLE", "CROSS JOIN"),
    ]


def test_expressions_are_checked_alone():
    assert [r.construct for r in expression_reasons("event_time > current_timestamp() - INTERVAL 1 DAY")] == ["current_timestamp()"]
    assert expression_reasons("status = 'current_timestamp()'") == ()
