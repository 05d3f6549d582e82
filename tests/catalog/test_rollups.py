"""Daily-job rollups (specs/rollups) against the RAW demo system tables.

Every expected figure is recomputed here from the raw demo Parquet (billing.usage priced with
billing.list_prices, lakeflow.job_run_timeline, lakeflow.jobs) with SQL and pandas written for these
tests, independently of the specs' SQL: costs are priced per row in DOUBLE (the specs round per row to
DECIMAL(38,6)) and compared to the cent. The planted cases of `engine.demo.facts` are asserted: the
cost spike is flagged, a repaired run counts once, renamed and deleted jobs get their latest name.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest


CENT = 0.005  # "to the cent": closer than half a cent
Z_THRESHOLD = 3.0
MIN_HISTORY_DAYS = 14
FAILED_STATES = {"ERROR", "FAILED", "TIMED_OUT"}


@pytest.fixture(scope="module")
def priced_usage(pipeline_output, demo_source) -> pd.DataFrame:
    """Every raw usage row (all record types) with its cost at the effective list price valid at its start."""
    spark = pipeline_output.spark
    spark.read.parquet(str(demo_source / "billing" / "usage")).createOrReplaceTempView("raw_usage_rollups")
    spark.read.parquet(str(demo_source / "billing" / "list_prices")).createOrReplaceTempView("raw_prices_rollups")
    frame = spark.sql("""
        SELECT u.record_id, u.workspace_id, u.usage_date, u.billing_origin_product, u.usage_unit,
               CAST(u.usage_quantity AS DOUBLE) AS quantity,
               CAST(u.usage_quantity AS DOUBLE) * CAST(pr.pricing.effective_list.default AS DOUBLE) AS cost,
               u.usage_metadata.job_id AS job_id, u.usage_metadata.job_run_id AS job_run_id,
               u.usage_metadata.job_name AS billed_job_name,
               u.identity_metadata.run_as AS run_as
        FROM raw_usage_rollups u
        JOIN raw_prices_rollups pr
          ON pr.sku_name = u.sku_name AND pr.cloud = u.cloud AND pr.usage_unit = u.usage_unit
         AND pr.currency_code = 'USD'
         AND u.usage_start_time >= pr.price_start_time
         AND u.usage_start_time < COALESCE(pr.price_end_time, TIMESTAMP '9999-12-31 00:00:00')
    """).toPandas()
    raw_rows = spark.table("raw_usage_rollups").count()
    assert len(frame) == raw_rows and frame.record_id.is_unique, "every usage row must match exactly one price"
    frame["week_start"] = frame.usage_date.map(lambda d: d - dt.timedelta(days=d.weekday()))
    frame["month_start"] = frame.usage_date.map(lambda d: d.replace(day=1))
    frame["dbus"] = frame.quantity.where(frame.usage_unit == "DBU", 0.0)
    return frame


@pytest.fixture(scope="module")
def raw_runs(demo_source) -> pd.DataFrame:
    """One row per (workspace, run_id) rebuilt from raw timeline slices; final state = latest terminal row."""
    slices = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    runs = (slices.groupby(["workspace_id", "run_id"])
            .agg(job_id=("job_id", "first"), start=("period_start_time", "min"), end=("period_end_time", "max"),
                 terminal_rows=("result_state", "count"))
            .reset_index())
    terminal = slices[slices.result_state.notna()].sort_values("period_end_time")
    final = terminal.groupby(["workspace_id", "run_id"]).result_state.last().rename("final_state").reset_index()
    runs = runs.merge(final, on=["workspace_id", "run_id"], how="left")
    runs["run_date"] = runs.start.dt.tz_convert("UTC").dt.date
    runs["week_start"] = runs.run_date.map(lambda d: d - dt.timedelta(days=d.weekday()))
    runs["duration"] = (runs.end - runs.start).dt.total_seconds()
    return runs


@pytest.fixture(scope="module")
def latest_job_names(demo_source) -> dict[tuple[str, str], str | None]:
    """(workspace_id, job_id) -> name of the latest raw version, None when that version is a deletion."""
    jobs = pd.read_parquet(demo_source / "lakeflow" / "jobs").sort_values("change_time")
    latest = jobs.groupby(["workspace_id", "job_id"]).tail(1)
    return {(r.workspace_id, r.job_id): (None if pd.notna(r.delete_time) else r.name) for r in latest.itertuples()}


def _window(priced_usage: pd.DataFrame) -> tuple[dt.date, dt.date]:
    end = priced_usage.usage_date.max()
    return end - dt.timedelta(days=29), end


def _rows(pipeline_output, table: str) -> pd.DataFrame:
    frame = pipeline_output.table(table).toPandas()
    for column in frame.columns:
        if column.endswith(("_usd", "_dbus")):
            frame[column] = frame[column].map(lambda v: None if v is None else float(v))
    return frame


# --- cost anomalies ----------------------------------------------------------------------------

def _expected_anomalies(priced_usage: pd.DataFrame) -> pd.DataFrame:
    """Dense daily cost per workspace and its baseline over the 30 days BEFORE each day (day excluded)."""
    last = priced_usage.usage_date.max()
    rows = []
    for workspace, usage in priced_usage.groupby("workspace_id"):
        daily = usage.groupby("usage_date").cost.sum()
        days = pd.date_range(min(daily.index), last, freq="D").date
        costs = pd.Series([daily.get(d, 0.0) for d in days], index=days)
        for i, day in enumerate(days):
            history = costs.iloc[max(0, i - 30):i]  # the 30 preceding calendar days
            mean = history.mean() if len(history) else math.nan
            std = history.std(ddof=1) if len(history) > 1 else math.nan
            z = (costs.iloc[i] - mean) / std if std and std > 0 else math.nan
            rows.append(dict(workspace_id=workspace, usage_date=day, cost=costs.iloc[i], mean=mean, std=std,
                             history=len(history), z=z,
                             flagged=bool(len(history) >= MIN_HISTORY_DAYS and z > Z_THRESHOLD)))
    return pd.DataFrame(rows)


def test_planted_cost_spike_is_flagged_and_nothing_before_14_days_of_history(priced_usage, pipeline_output, demo_facts):
    got = _rows(pipeline_output, "cost_anomalies")
    expected = _expected_anomalies(priced_usage)
    merged = expected.merge(got, on=["workspace_id", "usage_date"], how="outer", indicator=True)
    assert (merged._merge == "both").all(), merged[merged._merge != "both"][["workspace_id", "usage_date", "_merge"]]

    # the planted spike: flagged, with a baseline of at least 14 days, and really ~5x its baseline
    spike = merged[(merged.workspace_id == demo_facts.spike_workspace_id) & (merged.usage_date == demo_facts.spike_date)]
    assert len(spike) == 1
    spike = spike.iloc[0]
    assert spike.is_anomaly and spike.z_score > Z_THRESHOLD and spike.history_days >= MIN_HISTORY_DAYS
    assert spike.cost > 3 * spike["mean"], "the planted spike should be several times the baseline"

    # minimum-history guard: nothing flagged on a day with fewer than 14 baseline days
    assert not merged[merged.history_days < MIN_HISTORY_DAYS].is_anomaly.any()
    assert (merged.history_days < MIN_HISTORY_DAYS).sum() >= 14 * merged.workspace_id.nunique()

    # baseline, z-score and flags recomputed independently
    assert (merged.history_days == merged.history).all()
    assert ((merged.total_cost_usd - merged.cost).abs() < CENT).all()
    both = merged.dropna(subset=["z"])
    assert merged.z_score.isna().equals(merged.z.isna())
    assert ((both.z_score - both.z).abs() < 1e-4).all()  # per-row cost rounding moves z slightly
    assert ((both.ma30_cost - both["mean"]).abs() < CENT).all()
    assert list(merged[merged.is_anomaly][["workspace_id", "usage_date"]].itertuples(index=False)) == \
        list(merged[merged.flagged][["workspace_id", "usage_date"]].itertuples(index=False))


# --- weekly / monthly rollups ------------------------------------------------------------------

@pytest.mark.parametrize("table, period", [("cost_weekly_rollup", "week_start"), ("cost_monthly_rollup", "month_start")])
def test_rollup_totals_equal_raw_daily_cost_to_the_cent(priced_usage, pipeline_output, table, period):
    keys = ["workspace_id", period, "billing_origin_product"]
    expected = (priced_usage.groupby(keys, dropna=False)
                .agg(cost=("cost", "sum"), dbus=("dbus", "sum"), net=("quantity", "sum")).reset_index())
    expected = expected[expected.net.abs() > 1e-12]  # groups that net to zero disappear
    got = _rows(pipeline_output, table)
    merged = expected.merge(got, on=keys, how="outer", indicator=True)
    assert (merged._merge == "both").all(), merged[merged._merge != "both"][keys + ["_merge"]]
    assert ((merged.total_cost_usd - merged.cost).abs() < CENT).all(), merged[(merged.total_cost_usd - merged.cost).abs() >= CENT]
    assert ((merged.total_dbus - merged.dbus).abs() < 1e-6).all()
    # token-billed usage (foundation models) has cost but adds no DBUs
    assert priced_usage[priced_usage.usage_unit != "DBU"].cost.sum() > 0
    # all of it together: the rollup loses and duplicates nothing
    assert abs(got.total_cost_usd.sum() - priced_usage.cost.sum()) < CENT


def test_weeks_start_on_monday(pipeline_output):
    weeks = pipeline_output.table("cost_weekly_rollup").select("week_start").distinct().toPandas().week_start
    assert len(weeks) > 1 and all(d.weekday() == 0 for d in weeks)


# --- week-over-week trend ----------------------------------------------------------------------

def test_cost_trend_change_pct_is_null_without_a_base_and_correct_otherwise(priced_usage, pipeline_output):
    weekly = priced_usage.groupby(["workspace_id", "week_start"]).cost.sum()
    got = _rows(pipeline_output, "cost_trend_analysis")
    first_date, last_date = priced_usage.usage_date.min(), priced_usage.usage_date.max()
    assert len(got) == got[["workspace_id", "week_start"]].drop_duplicates().shape[0]
    for row in got.itertuples():
        this = weekly.get((row.workspace_id, row.week_start), 0.0)
        previous = weekly.get((row.workspace_id, row.week_start - dt.timedelta(days=7)), 0.0)
        assert abs(row.total_cost_usd - this) < CENT
        assert abs(row.previous_week_cost_usd - previous) < CENT
        assert abs(row.change_usd - (this - previous)) < CENT
        if previous == 0:
            assert row.change_pct is None or math.isnan(row.change_pct), row
        else:
            assert math.isclose(row.change_pct, (this - previous) / previous * 100, rel_tol=1e-6, abs_tol=1e-6), row
        complete = row.week_start >= first_date and row.week_start + dt.timedelta(days=6) <= last_date
        assert row.is_complete_week == complete
    # the trap is in the data: each workspace's first week has no previous week (previous cost 0)
    no_base = got[got.previous_week_cost_usd == 0]
    assert set(no_base.workspace_id) == set(priced_usage.workspace_id)
    assert no_base.change_pct.isna().all()
    # every workspace week from its first week to the last week of the data is present
    for workspace, usage in priced_usage.groupby("workspace_id"):
        weeks = sorted(got[got.workspace_id == workspace].week_start)
        assert weeks[0] == usage.week_start.min() and weeks[-1] == priced_usage.week_start.max()
        assert all((b - a).days == 7 for a, b in zip(weeks, weeks[1:]))


# --- top consumers -----------------------------------------------------------------------------

def test_top_consumers_dense_ranks_latest_job_names_and_costs(priced_usage, pipeline_output, latest_job_names):
    start, end = _window(priced_usage)
    window = priced_usage[(priced_usage.usage_date >= start) & (priced_usage.usage_date <= end) & priced_usage.job_id.notna()]
    expected = window.groupby(["workspace_id", "job_id"]).agg(cost=("cost", "sum"), net=("quantity", "sum")).reset_index()
    expected = expected[expected.net.abs() > 1e-12]
    runs = (window[window.job_run_id.notna()].groupby(["workspace_id", "job_id", "job_run_id"]).quantity.sum()
            .loc[lambda s: s.abs() > 1e-12].reset_index().groupby(["workspace_id", "job_id"]).size().rename("runs"))
    expected = expected.join(runs, on=["workspace_id", "job_id"])

    got = _rows(pipeline_output, "top_consumers_30d")
    assert len(got) > 0
    assert got.groupby("workspace_id").size().max() <= 50
    assert set(got.workspace_id) == set(expected.workspace_id)  # the other-region workspace too
    assert (got.period_end == end).all() and (got.period_start == start).all()

    merged = got.merge(expected, on=["workspace_id", "job_id"], how="left")
    assert merged.cost.notna().all()
    assert ((merged.total_cost_usd - merged.cost).abs() < CENT).all()
    assert (merged.run_count == merged.runs.fillna(0)).all()

    for workspace, rows in got.groupby("workspace_id"):
        rows = rows.sort_values(["cost_rank", "job_id"])
        # dense ranking by cost: starts at 1, steps by one exactly where the cost drops
        assert rows["cost_rank"].iloc[0] == 1
        costs, ranks = list(rows.total_cost_usd), list(rows["cost_rank"])
        for (c1, r1), (c2, r2) in zip(zip(costs, ranks), zip(costs[1:], ranks[1:])):
            assert (r2 == r1 and c2 == c1) or (r2 == r1 + 1 and c2 < c1)
        # the top jobs of the workspace, none left out
        top = expected[expected.workspace_id == workspace].nlargest(min(50, len(rows)), "cost")
        assert set(top.job_id) == set(rows.job_id)

    # names from the latest job version (joined on workspace AND job); deleted/other-region jobs have none
    for row in got.itertuples():
        assert row.job_name == latest_job_names.get((row.workspace_id, row.job_id)), row
    # the trap is in the data: a renamed job whose billing rows carry an older name
    billed = window.dropna(subset=["billed_job_name"]).groupby(["workspace_id", "job_id"]).billed_job_name.agg(set)
    renamed = [r for r in got.itertuples() if r.job_name and (r.workspace_id, r.job_id) in billed.index
               and billed[(r.workspace_id, r.job_id)] - {r.job_name}]
    assert renamed, "expected a renamed job among the top consumers"


# --- job success rate --------------------------------------------------------------------------

def test_job_success_rate_weekly_counts_a_repaired_run_once(raw_runs, pipeline_output, demo_facts, latest_job_names):
    finished = raw_runs[raw_runs.final_state.notna()].copy()
    finished["success"] = finished.final_state == "SUCCEEDED"
    finished["failure"] = finished.final_state.isin(FAILED_STATES)
    expected = (finished.groupby(["workspace_id", "job_id", "week_start"])
                .agg(runs=("run_id", "nunique"), ok=("success", "sum"), bad=("failure", "sum"),
                     terminal=("terminal_rows", "sum"))
                .reset_index())
    got = pipeline_output.table("job_success_rate_weekly").toPandas()
    merged = expected.merge(got, on=["workspace_id", "job_id", "week_start"], how="outer", indicator=True)
    assert (merged._merge == "both").all()
    assert (merged.run_count == merged.runs).all()
    assert (merged.success_count == merged.ok).all()
    assert (merged.failure_count == merged.bad).all()
    assert ((merged.success_rate - merged.ok / merged.runs).abs() < 1e-12).all()
    for row in got.itertuples():
        assert row.job_name == latest_job_names.get((row.workspace_id, row.job_id))

    # the planted repair: two terminal rows (FAILED, then SUCCEEDED) for one run_id
    repaired = raw_runs[(raw_runs.workspace_id == demo_facts.repaired_job.workspace_id)
                        & (raw_runs.run_id == demo_facts.repaired_run_id)].iloc[0]
    assert repaired.terminal_rows >= 2 and repaired.final_state == "SUCCEEDED"
    week = demo_facts.repair_date - dt.timedelta(days=demo_facts.repair_date.weekday())
    row = merged[(merged.workspace_id == demo_facts.repaired_job.workspace_id)
                 & (merged.job_id == demo_facts.repaired_job.job_id) & (merged.week_start == week)].iloc[0]
    assert row.run_count < row.terminal  # counting terminal rows would count the repair twice
    assert row.repaired_run_count >= 1
    assert row.failure_count == 0  # the repaired run's final state is SUCCEEDED

    # the failing streak's runs count as failures
    streak = finished[finished.run_id.isin(demo_facts.failing_streak_run_ids)]
    assert len(streak) == demo_facts.failing_streak_length and streak.failure.all()


# --- job performance trends --------------------------------------------------------------------

def test_job_performance_moving_average_uses_the_preceding_seven_days(raw_runs, pipeline_output, demo_facts):
    finished = raw_runs[raw_runs.final_state.notna()]
    daily = (finished.groupby(["workspace_id", "job_id", "run_date"])
             .agg(runs=("run_id", "size"), total=("duration", "sum"), avg=("duration", "mean")).reset_index())
    got = pipeline_output.table("job_performance_trends").toPandas()
    merged = daily.merge(got, on=["workspace_id", "job_id", "run_date"], how="outer", indicator=True)
    assert (merged._merge == "both").all()
    assert (merged.run_count == merged.runs).all()
    assert ((merged.avg_duration_seconds - merged["avg"]).abs() < 1e-6).all()
    for (workspace, job), rows in merged.groupby(["workspace_id", "job_id"]):
        for row in rows.itertuples():
            before = rows[(rows.run_date < row.run_date) & (rows.run_date >= row.run_date - dt.timedelta(days=7))]
            if before.runs.sum() == 0:
                assert pd.isna(row.moving_avg_7d_duration_seconds) and row.moving_avg_7d_run_count == 0
            else:
                assert row.moving_avg_7d_run_count == before.runs.sum()
                assert abs(row.moving_avg_7d_duration_seconds - before.total.sum() / before.runs.sum()) < 1e-6
    # the long-running job (150-200 min runs) has a full baseline late in the window
    long_job = got[(got.workspace_id == demo_facts.long_running_job.workspace_id)
                   & (got.job_id == demo_facts.long_running_job.job_id)]
    assert long_job.moving_avg_7d_duration_seconds.dropna().between(150 * 60, 200 * 60).all()


# --- user activity -----------------------------------------------------------------------------

def test_user_activity_matches_raw_run_as_usage(priced_usage, pipeline_output):
    start, end = _window(priced_usage)
    window = priced_usage[(priced_usage.usage_date >= start) & (priced_usage.usage_date <= end) & priced_usage.run_as.notna()]
    expected = (window.groupby(["workspace_id", "run_as"])
                .agg(cost=("cost", "sum"), net=("quantity", "sum"), days=("usage_date", "nunique"),
                     jobs=("job_id", "nunique"), runs=("job_run_id", "nunique"))
                .reset_index())
    expected = expected[expected.net.abs() > 1e-12]
    got = _rows(pipeline_output, "user_cost_30d")
    merged = expected.merge(got, on=["workspace_id", "run_as"], how="outer", indicator=True)
    assert (merged._merge == "both").all()
    assert ((merged.total_cost_usd - merged.cost).abs() < CENT).all()
    assert (merged.active_days == merged.days).all()
    assert (merged.jobs_run == merged.jobs).all()
    assert (merged.job_runs == merged.runs).all()
    assert (got.period_end == end).all()
