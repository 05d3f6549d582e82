"""The data test runner on real Spark: tables written into a throwaway database, tests rendered from
the fixture specs (tests/render/fixture_specs), planted faults caught with table, rule and sample rows.

Uses the session's `local_spark` fixture (root conftest.py; one JVM per test session).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from engine.render.registry import render_all
from engine.spec import load_project
from engine.testing import data_tests
from engine.testing.data_tests import LOCAL_CATALOG, DataTestsFailed

FIXTURE_SPECS = Path(__file__).resolve().parents[1] / "render" / "fixture_specs"
DAY = dt.date(2026, 10, 1)
DAILY_COST = ("workspace_id STRING, usage_date DATE, total_cost_usd DECIMAL(38,6), "
              "_account_identifier STRING, _workspace_identifier STRING")
USAGE_BRONZE = ("record_id STRING, workspace_id STRING, usage_date DATE, usage_quantity DECIMAL(38,18), run_as STRING, "
                "_account_identifier STRING, _workspace_identifier STRING")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    """The fixture project's generated data test files, as `tablesmith generate` writes them."""
    folder = tmp_path_factory.mktemp("data_tests")
    for path, text in render_all(load_project(FIXTURE_SPECS)).items():
        if path.startswith("generated/data_tests/"):
            (folder / Path(path).name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tests(rendered):
    return {t.id: t for t in data_tests.load(rendered)}


@pytest.fixture(scope="module")
def spark(local_spark):
    return local_spark.spark


@pytest.fixture
def database(spark):
    name = f"planted_{uuid.uuid4().hex[:8]}"
    spark.sql(f"CREATE DATABASE `{name}`")
    yield name
    spark.sql(f"DROP DATABASE `{name}` CASCADE")


def cost(workspace, amount, day=DAY):
    return (workspace, day, None if amount is None else Decimal(amount), "acct", "ws")


def write(spark, database, table, rows, schema, partition_by=()):
    writer = spark.createDataFrame(rows, schema).write.format("parquet")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.saveAsTable(f"`{database}`.`{table}`")


def table_tests(tests, table):
    return [t for t in tests.values() if t.table == table]


def outcomes(spark, tests, table, database, **kwargs):
    return {o.test.id.split("::")[-1]: o for o in (data_tests.run_test(spark, t, LOCAL_CATALOG, database, **kwargs)
                                                     for t in table_tests(tests, table))}


def test_a_clean_table_passes_every_test(spark, tests, database):
    write(spark, database, "daily_cost", [cost("ws1", "1.5"), cost("ws2", "0"), cost("ws1", "2", DAY + dt.timedelta(days=1))], DAILY_COST)
    results = outcomes(spark, tests, "daily_cost", database)
    assert set(results) == {"schema", "unique_grain", "not_null", "non_negative"}
    assert {name: o.status for name, o in results.items()} == dict.fromkeys(results, "passed")


def test_planted_faults_are_caught_with_table_rule_and_sample_rows(spark, tests, database):
    write(spark, database, "daily_cost", [
        cost("ws1", "1.5"), cost("ws1", "2.5"),  # broken grain: ws1 twice on one day
        cost(None, "3"),  # NULL in a non-nullable column
        cost("ws2", "-4"),  # violates the `fail` expectation non_negative
    ], DAILY_COST)
    results = outcomes(spark, tests, "daily_cost", database)
    relation = f"`{LOCAL_CATALOG}`.`{database}`.`daily_cost`"

    grain = results["unique_grain"]
    assert (grain.status, grain.count, grain.relation) == ("failed", 1, relation)
    assert grain.sample == ({"workspace_id": "ws1", "usage_date": DAY, "_rows": 2},)

    nulls = results["not_null"]
    assert (nulls.status, nulls.count) == ("failed", 1)
    assert nulls.sample[0]["_null_columns"] == "workspace_id" and nulls.sample[0]["total_cost_usd"] == Decimal("3")

    rule = results["non_negative"]
    assert (rule.status, rule.count) == ("failed", 1)
    assert rule.sample[0]["workspace_id"] == "ws2" and rule.sample[0]["total_cost_usd"] == Decimal("-4")
    assert results["schema"].status == "passed"

    text = data_tests.describe(rule)
    assert text.startswith("FAILED billing::daily_cost::non_negative (expectation, severity error; ")
    assert f"table: {relation}" in text
    assert "rule:  non_negative: total_cost_usd >= 0 (on_violation fail)" in text
    assert "workspace_id='ws2'" in text and "total_cost_usd=Decimal('-4.000000')" in text


def test_null_in_a_fail_rule_is_a_violation(spark, tests, database):
    write(spark, database, "daily_cost", [cost("ws1", None)], DAILY_COST)
    assert outcomes(spark, tests, "daily_cost", database)["non_negative"].status == "failed"


def test_the_sample_holds_the_first_five_rows_and_the_count_all_of_them(spark, tests, database):
    write(spark, database, "daily_cost", [cost(f"ws{i}", "-1") for i in range(8)], DAILY_COST)
    rule = outcomes(spark, tests, "daily_cost", database)["non_negative"]
    assert rule.count == 8 and len(rule.sample) == data_tests.SAMPLE_ROWS


def test_the_job_entry_point_fails_loudly(spark, rendered, database):
    write(spark, database, "daily_cost", [cost("ws1", "1"), cost("ws1", "2")], DAILY_COST)
    printed: list[str] = []
    with pytest.raises(DataTestsFailed) as failure:
        data_tests.run_job(spark, rendered, LOCAL_CATALOG, database, echo=printed.append)
    message = str(failure.value)
    assert f"data tests failed on `{LOCAL_CATALOG}`.`{database}`" in message
    assert "FAILED billing::daily_cost::unique_grain" in message and "rule:  one row per workspace_id, usage_date" in message
    assert "workspace_id='ws1', usage_date=datetime.date(2026, 10, 1), _rows=2" in message
    # Tables the database lacks are reported, not failed (the pipeline may have skipped them).
    assert "NOT FOUND compute::node_types::schema" in printed[-1]
    assert "1 failed" in printed[-1]


def test_a_schema_that_differs_from_the_spec_fails_with_a_diff(spark, tests, database):
    wrong = DAILY_COST.replace("total_cost_usd DECIMAL(38,6)", "total_cost_usd DOUBLE")
    write(spark, database, "daily_cost", [("ws1", DAY, 1.0, "acct", "ws")], wrong)
    schema = outcomes(spark, tests, "daily_cost", database)["schema"]
    assert schema.status == "failed"
    assert "!= #3: declared total_cost_usd decimal(38,6)  found total_cost_usd double" in schema.detail


def test_partition_columns_listed_last_pass_the_schema_test(spark, tests, database):
    row = ("r1", "ws1", DAY, Decimal("1"), "someone", "acct", "ws")
    write(spark, database, "usage_bronze", [row], USAGE_BRONZE, partition_by=("usage_date",))
    assert spark.table(f"`{database}`.`usage_bronze`").columns[-1] == "usage_date"  # Hive put it last
    assert outcomes(spark, tests, "usage_bronze", database)["schema"].status == "passed"


def test_warn_rules_are_reported_and_must_match_the_quality_metrics(spark, tests, database):
    rows = [(f"r{i}", "ws1", DAY, None, None, "acct", "ws") for i in range(2)]  # known_unit (warn) broken twice
    write(spark, database, "usage_bronze", rows, USAGE_BRONZE)
    key = ("usage_bronze", "known_unit")

    def known_unit(metrics):
        return outcomes(spark, tests, "usage_bronze", database, quality_metrics=metrics)["known_unit"]

    assert (known_unit(None).status, known_unit(None).count) == ("warned", 2)  # Databricks: no _quality_metrics
    assert known_unit({key: 2}).status == "warned"
    mismatch = known_unit({key: 1})
    assert mismatch.failed and "2 rows violate the rule but _quality_metrics recorded 1" in mismatch.detail
    assert "no count recorded for warn rule 'known_unit'" in known_unit({}).detail
    # usage_quantity is declared non-nullable: those rows break not_null too, and that is an error.
    assert outcomes(spark, tests, "usage_bronze", database)["not_null"].failed


def test_a_missing_table_is_its_own_outcome(spark, tests, database):
    results = outcomes(spark, tests, "node_types", database)
    assert {o.status for o in results.values()} == {"missing"}
    assert results["schema"].detail == f"table `{LOCAL_CATALOG}`.`{database}`.`node_types` not found"


def test_run_many_gives_exactly_the_outcomes_of_run_test(spark, tests, database):
    """Batched counting (one query per table, tables in parallel) must not change a single outcome: a clean table, a
    table with planted faults and warn counts checked against metrics, and a missing table together."""
    write(spark, database, "daily_cost", [cost("ws1", "1.5"), cost("ws1", "2.5"), cost(None, "3")], DAILY_COST)
    write(spark, database, "usage_bronze", [(f"r{i}", "ws1", DAY, Decimal(1), None, "acct", "ws") for i in range(3)], USAGE_BRONZE)
    chosen = table_tests(tests, "daily_cost") + table_tests(tests, "usage_bronze") + table_tests(tests, "node_types")
    metrics = {("usage_bronze", "known_unit"): 2}
    # Both counting paths: COUNT_IF of a `where` line, and the COUNT(*) subquery of a grain test.
    assert any(t.where for t in chosen) and any(t.kind == "unique_grain" and not t.where for t in chosen)
    one_by_one = [data_tests.run_test(spark, t, LOCAL_CATALOG, database, quality_metrics=metrics) for t in chosen]
    batched = data_tests.run_many(spark, chosen, LOCAL_CATALOG, database, quality_metrics=metrics)
    assert batched == one_by_one
    assert {o.status for o in batched} == {"passed", "failed", "missing"}
