"""The generated SQL data tests (generated/data_tests/<domain>.sql) on the catalog's local run: one
pytest test per data test, e.g. `billing::cost_by_sku::unique_grain`.

The same files and runner run on Databricks in `tablesmith_data_tests_job`. Locally the run's
`_quality_metrics` are known, so each warn rule's count must also equal the one recorded there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.testing import data_tests

FOLDER = Path(__file__).resolve().parents[2] / "generated" / "data_tests"
TESTS = data_tests.load(FOLDER)  # plain text parsing: collecting needs no JVM


@pytest.fixture(scope="module")
def recorded(pipeline_output):
    return pipeline_output.quality_metrics()


@pytest.mark.parametrize("test", TESTS, ids=[t.id for t in TESTS])
def test_data(pipeline_output, recorded, test):
    if test.table in pipeline_output.skipped:
        pytest.skip(f"{test.table}: {pipeline_output.skipped[test.table]}")
    outcome = data_tests.run_test(pipeline_output.spark, test, data_tests.LOCAL_CATALOG, pipeline_output.schema,
                                  quality_metrics=recorded)
    assert outcome.status in ("passed", "warned"), data_tests.describe(outcome)
