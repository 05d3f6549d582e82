"""The generated SQL data tests (generated/data_tests/<domain>.sql) on the catalog's local run: one
pytest test per data test, e.g. `billing::cost_by_sku::unique_grain`.

The same files and runner run on Databricks in `tablesmith_data_tests_job`. Locally the run's
`_quality_metrics` are known, so each warn rule's count must also equal the one recorded there.
The outcomes are computed once for the module (`run_many`: one counting query per table, each
failing test run alone for its sample), then each test asserts its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.testing import data_tests

FOLDER = Path(__file__).resolve().parents[2] / "generated" / "data_tests"
TESTS = data_tests.load(FOLDER)  # plain text parsing: collecting needs no JVM


@pytest.fixture(scope="module")
def outcomes(pipeline_output):
    recorded = pipeline_output.quality_metrics()
    ran = [t for t in TESTS if t.table not in pipeline_output.skipped]
    results = data_tests.run_many(pipeline_output.spark, ran, data_tests.LOCAL_CATALOG, pipeline_output.schema,
                                  quality_metrics=recorded)
    return {o.test.id: o for o in results}


@pytest.mark.parametrize("test", TESTS, ids=[t.id for t in TESTS])
def test_data(pipeline_output, outcomes, test):
    if test.table in pipeline_output.skipped:
        pytest.skip(f"{test.table}: {pipeline_output.skipped[test.table]}")
    outcome = outcomes[test.id]
    assert outcome.status in ("passed", "warned"), data_tests.describe(outcome)
