"""Executive tables (specs/executive) against the RAW demo system tables.

Expected figures are recomputed here from the raw demo Parquet (billing.usage priced with
billing.list_prices, lakeflow.job_run_timeline, access.workspaces_latest) with SQL and pandas written
for these tests, not copied from the specs. The other-region workspace of `engine.demo.facts` (usage
and a workspaces_latest row, but no lakeflow rows) must be kept with its cost.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest


CENT = 0.005
FAILED_STATES = {"ERROR", "FAILED", "TIMED_OUT"}
OTHER_AI_PRODUCTS = {"FOUNDATION_MODEL_TRAINING", "AI_GATEWAY", "AI_RUNTIME", "AI_FUNCTIONS", "AGENT_BRICKS",
                     "AGENT_EVALUATION", "SUPERVISOR_AGENT"}


@pytest.fixture(scope="module")
def priced_usage(pipeline_output, demo_source) -> pd.DataFrame:
    """Raw usage rows of every record type, priced at the effective list price valid at the usage start."""
    spark = pipeline_output.spark
    spark.read.parquet(str(demo_source / "billing" / "usage")).createOrReplaceTempView("raw_usage_exec")
    spark.read.parquet(str(demo_source / "billing" / "list_prices")).createOrReplaceTempView("raw_prices_exec")
    frame = spark.sql("""
        SELECT u.record_id, u.workspace_id, u.usage_date, u.billing_origin_product, u.usage_unit,
               u.product_features.serving_type AS serving_type,
               u.identity_metadata.run_as AS run_as,
               CAST(u.usage_quantity AS DOUBLE) AS quantity,
               CAST(u.usage_quantity AS DOUBLE) * CAST(pr.pricing.effective_list.default AS DOUBLE) AS cost,
               CAST(u.usage_quantity AS DOUBLE) * CAST(pr.pricing.default AS DOUBLE) AS list_cost
        FROM raw_usage_exec u
        JOIN raw_prices_exec pr
          ON pr.sku_name = u.sku_name AND pr.cloud = u.cloud AND pr.usage_unit = u.usage_unit
         AND pr.currency_code = 'USD'
         AND pr.price_start_time <= u.usage_start_time
         AND (pr.price_end_time IS NULL OR u.usage_start_time < pr.price_end_time)
    """).toPandas()
    assert len(frame) == spark.table("raw_usage_exec").count() and frame.record_id.is_unique
    return frame


@pytest.fixture(scope="module")
def window(priced_usage) -> tuple[dt.date, dt.date]:
    end = priced_usage.usage_date.max()  # anchored on the data, not on today
    return end - dt.timedelta(days=29), end


def _in(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    return frame[(frame.usage_date >= start) & (frame.usage_date <= end)]


def _rows(pipeline_output, table: str) -> pd.DataFrame:
    frame = pipeline_output.table(table).toPandas()
    for column in frame.columns:
        if column.endswith(("_usd", "_dbus")):
            frame[column] = frame[column].map(lambda v: None if v is None else float(v))
    return frame.set_index("workspace_id")


# --- workspace_info ----------------------------------------------------------------------------

def test_workspace_info_is_the_raw_workspace_list(pipeline_output, demo_source, demo_facts):
    raw = pd.read_parquet(demo_source / "access" / "workspaces_latest").set_index("workspace_id")
    got = _rows(pipeline_output, "workspace_info")
    assert sorted(got.index) == sorted(raw.index) == sorted(demo_facts.workspace_ids)
    assert (got.workspace_name == raw.workspace_name.reindex(got.index)).all()
    assert (got.workspace_url == raw.workspace_url.reindex(got.index)).all()


# --- executive_summary -------------------------------------------------------------------------

def test_executive_summary_keeps_the_other_region_workspace_with_its_cost(priced_usage, window, pipeline_output,
                                                                         demo_source, demo_facts):
    start, end = window
    current = _in(priced_usage, start, end).groupby("workspace_id")
    previous = _in(priced_usage, start - dt.timedelta(days=30), start - dt.timedelta(days=1)).groupby("workspace_id")
    names = pd.read_parquet(demo_source / "access" / "workspaces_latest").set_index("workspace_id").workspace_name
    got = _rows(pipeline_output, "executive_summary_30d")

    assert sorted(got.index) == sorted(demo_facts.workspace_ids)
    remote = demo_facts.remote_workspace_id
    assert remote not in set(pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline").workspace_id)
    row = got.loc[remote]
    assert abs(row.total_cost_usd - current.cost.sum()[remote]) < CENT and row.total_cost_usd > 0
    assert row.workspace_name == names[remote]
    assert not row.has_job_data and pd.isna(row.run_count) and pd.isna(row.success_rate)

    for workspace, row in got.iterrows():
        assert (row.period_start, row.period_end) == (start, end)
        cost, prev = current.cost.sum()[workspace], previous.cost.sum()[workspace]
        assert abs(row.total_cost_usd - cost) < CENT
        assert abs(row.total_list_cost_usd - current.list_cost.sum()[workspace]) < CENT
        assert abs(row.previous_period_cost_usd - prev) < CENT
        assert abs(row.cost_change_pct - (cost - prev) / prev * 100) < 1e-4
        dbus = _in(priced_usage, start, end).query("usage_unit == 'DBU' and workspace_id == @workspace").quantity.sum()
        assert abs(row.total_dbus - dbus) < 1e-6
        assert row.previous_period_usage_days == previous.usage_date.nunique()[workspace]
        users = _in(priced_usage, start, end).query("workspace_id == @workspace").dropna(subset=["run_as"])
        net = users.groupby("run_as").quantity.sum()
        assert row.active_users == (net.abs() > 1e-12).sum()
        assert row.workspace_name == names[workspace]


def test_executive_summary_job_outcomes_count_each_run_once(window, pipeline_output, demo_source, demo_facts):
    start, end = window
    slices = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    first = slices.groupby(["workspace_id", "run_id"]).period_start_time.min().dt.tz_convert("UTC").dt.date
    terminal = slices[slices.result_state.notna()].sort_values("period_end_time")
    final = terminal.groupby(["workspace_id", "run_id"]).result_state.last()
    runs = pd.DataFrame({"run_date": first}).join(final.rename("final"), how="inner").reset_index()
    runs = runs[(runs.run_date >= start) & (runs.run_date <= end)]
    got = _rows(pipeline_output, "executive_summary_30d")
    for workspace in demo_facts.home_workspace_ids:
        mine = runs[runs.workspace_id == workspace]
        row = got.loc[workspace]
        assert row.has_job_data
        assert row.run_count == len(mine) < len(terminal[terminal.workspace_id == workspace])
        assert row.success_count == (mine.final == "SUCCEEDED").sum()
        assert row.failure_count == mine.final.isin(FAILED_STATES).sum()
        assert abs(row.success_rate - (mine.final == "SUCCEEDED").sum() / len(mine)) < 1e-12


# --- aiml_executive_summary --------------------------------------------------------------------

def _aiml_category(row) -> str | None:
    if row.serving_type == "FOUNDATION_MODEL":
        return "foundation_model"
    if row.billing_origin_product == "MODEL_SERVING":
        return "serving"
    if row.billing_origin_product == "VECTOR_SEARCH":
        return "vector_search"
    if row.billing_origin_product in OTHER_AI_PRODUCTS:
        return "other_aiml"
    return None


def test_aiml_costs_equal_raw_and_share_is_a_fraction(priced_usage, window, pipeline_output, demo_facts):
    start, end = window
    usage = _in(priced_usage, start, end).copy()
    usage["category"] = usage.apply(_aiml_category, axis=1)
    by_category = usage.groupby(["workspace_id", "category"]).cost.sum()
    totals = usage.groupby("workspace_id").cost.sum()
    got = _rows(pipeline_output, "aiml_executive_summary_30d")

    assert sorted(got.index) == sorted(demo_facts.workspace_ids)  # the workspace without AI/ML usage too
    assert got.aiml_cost_share.between(0, 1).all()
    # the data has every kind: foundation-model tokens, other serving, vector search
    assert {"foundation_model", "serving", "vector_search"} <= set(usage.category.dropna())
    for workspace, row in got.iterrows():
        expected = {c: by_category.get((workspace, c), 0.0) for c in ("serving", "foundation_model", "vector_search", "other_aiml")}
        for category, cost in expected.items():
            assert abs(row[f"{category}_cost_usd"] - cost) < CENT, (workspace, category)
        aiml = sum(expected.values())
        assert abs(row.total_aiml_cost_usd - aiml) < CENT
        assert abs(row.total_cost_usd - totals[workspace]) < CENT
        assert abs(row.aiml_cost_share - aiml / totals[workspace]) < 1e-6
    assert got.loc[demo_facts.remote_workspace_id].total_aiml_cost_usd == 0
    assert (got.total_aiml_cost_usd > 0).any()
