"""engine.testing.contract against real DataFrames. Needs Spark: uses the session's `local_spark`
fixture from the root conftest.py (one JVM per test session, about 20-30 s to start)."""

from __future__ import annotations

import pytest

from engine.testing import contract as check
from engine.testing.contract import Contract
from test_contract_helpers import CONTRACT, SCHEMA, FakeOutput


@pytest.fixture(scope="module")
def spark(local_spark):
    return local_spark.spark


def frame(spark, rows):
    from decimal import Decimal

    return spark.createDataFrame([(r, None if c is None else Decimal(c), "acct") for r, c in rows], SCHEMA)


def test_schema_check_compares_names_and_types_in_order(spark):
    check.schema_matches(frame(spark, [("a", "1")]), CONTRACT)
    wrong = spark.createDataFrame([], "cost DECIMAL(38,6), run_id STRING, _account_identifier STRING")
    with pytest.raises(AssertionError, match=r"!= #1: declared run_id string  produced cost decimal\(38,6\)"):
        check.schema_matches(wrong, CONTRACT)


def test_partition_columns_may_come_last(spark):
    partitioned = Contract("runs", CONTRACT.columns, partition_by=("run_id",))
    check.schema_matches(spark.createDataFrame([], "cost DECIMAL(38,6), _account_identifier STRING, run_id STRING"), partitioned)


def test_keys_nulls_and_expectations(spark):
    good = frame(spark, [("a", "1"), ("b", None)])
    check.keys_unique(good, CONTRACT)
    check.no_nulls(good, CONTRACT)
    check.expectation_holds(good.where("cost IS NOT NULL"), CONTRACT, "cost_positive")
    with pytest.raises(AssertionError, match="not unique"):
        check.keys_unique(frame(spark, [("a", "1"), ("a", "2")]), CONTRACT)
    with pytest.raises(AssertionError, match="run_id"):
        check.no_nulls(frame(spark, [(None, "1")]), CONTRACT)
    with pytest.raises(AssertionError, match="1 rows violate 'cost_positive'"):
        check.expectation_holds(good, CONTRACT, "cost_positive")  # NULL counts as a violation


def test_warn_counts_must_match_the_quality_metrics(spark):
    produced = frame(spark, [("a", "1"), ("b", None), ("c", None)])
    check.warn_count_matches_metrics(produced, FakeOutput(metrics={("runs", "cost_present"): 2}), CONTRACT, "cost_present")
    with pytest.raises(AssertionError, match="recorded 1"):
        check.warn_count_matches_metrics(produced, FakeOutput(metrics={("runs", "cost_present"): 1}), CONTRACT, "cost_present")
    with pytest.raises(AssertionError, match="no count recorded"):
        check.warn_count_matches_metrics(produced, FakeOutput(), CONTRACT, "cost_present")
