"""engine.testing.contract, the helpers behind generated/tests (no Spark here; see test_contract_helpers_spark.py)."""

from __future__ import annotations

import pytest

from engine.testing import contract as check
from engine.testing.contract import Column, Contract, Expectation

CONTRACT = Contract(
    table="runs",
    columns=(Column("run_id", "string", nullable=False), Column("cost", "decimal(38,6)"), Column("_account_identifier", "string", nullable=False)),
    keys=("run_id",),
    expectations=(
        Expectation("cost_present", "cost IS NOT NULL", "warn"),
        Expectation("cost_positive", "cost > 0", "drop"),
        Expectation("id_present", "run_id IS NOT NULL", "fail"),
    ),
)
SCHEMA = "run_id STRING, cost DECIMAL(38,6), _account_identifier STRING"


class FakeOutput:
    def __init__(self, frames=None, metrics=None, skipped=None):
        self.frames, self.metrics, self.skipped = frames or {}, metrics or {}, skipped or {}

    def table(self, name):
        return self.frames[name]

    def quality_metrics(self):
        return self.metrics


def test_rules_are_split_by_how_they_are_enforced():
    assert CONTRACT.enforced_rules == ("cost_positive", "id_present")
    assert CONTRACT.warn_rules == ("cost_present",)


@pytest.mark.parametrize("skipped", [{"runs": "optional source system.x.y missing"}, {"runs"}])
def test_a_table_the_run_skipped_is_skipped_with_the_reason(skipped):
    with pytest.raises(pytest.skip.Exception, match="runs: "):
        check.produced(FakeOutput(skipped=skipped), CONTRACT)
