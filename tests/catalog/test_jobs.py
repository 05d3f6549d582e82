"""Jobs tables against the raw demo system tables: runs reassembled once, final states, current job versions.

Expected figures are recomputed from the RAW demo Parquet (lakeflow.job_run_timeline, lakeflow.jobs)
in pandas, separately from the specs' SQL, and the planted cases of `engine.demo.facts` are checked.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest


FAILURE_STATES = ("ERROR", "FAILED", "TIMED_OUT")


@pytest.fixture(scope="module")
def raw_slices(demo_source) -> pd.DataFrame:
    frame = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    for column in ("period_start_time", "period_end_time"):  # naive UTC, as Spark's toPandas returns them
        frame[column] = frame[column].dt.tz_convert(None)
    return frame[["workspace_id", "job_id", "run_id", "period_start_time", "period_end_time", "result_state"]]


@pytest.fixture(scope="module")
def raw_runs(raw_slices) -> pd.DataFrame:
    """One row per (workspace_id, run_id): first start, last end, slices, and the last terminal row's state."""
    spans = raw_slices.groupby(["workspace_id", "run_id"]).agg(
        job_id=("job_id", "first"), start=("period_start_time", "min"), end=("period_end_time", "max"),
        slices=("run_id", "size"), terminal_rows=("result_state", "count"))
    terminal = raw_slices[raw_slices.result_state.notna()].sort_values("period_end_time")
    final = terminal.groupby(["workspace_id", "run_id"]).result_state.last().rename("final_state")
    runs = spans.join(final).reset_index()
    runs["duration"] = (runs.end - runs.start).dt.total_seconds().astype("int64")
    return runs


@pytest.fixture(scope="module")
def runs_summary(pipeline_output) -> pd.DataFrame:
    return pipeline_output.table("job_runs").toPandas()


@pytest.fixture(scope="module")
def job_summary(pipeline_output) -> pd.DataFrame:
    return pipeline_output.table("job_summary").toPandas().set_index(["workspace_id", "job_id"])


def test_long_runs_are_counted_once_with_wall_clock_duration(demo_facts, raw_runs, runs_summary, job_summary):
    job = demo_facts.long_running_job
    expected = raw_runs[(raw_runs.workspace_id == job.workspace_id) & (raw_runs.job_id == job.job_id)]
    assert len(expected) > 0 and (expected.slices >= 3).all()  # the trap: every run spans 3+ hourly rows
    got = runs_summary[(runs_summary.workspace_id == job.workspace_id) & (runs_summary.job_id == job.job_id)]
    assert sorted(got.run_id) == sorted(expected.run_id)  # one row per run, not per slice
    merged = got.merge(expected, on=["workspace_id", "run_id"])
    assert (merged.duration_seconds == merged.duration).all()
    assert (merged.timeline_rows == merged.slices).all()
    assert job_summary.loc[(job.workspace_id, job.job_id), "run_count"] == len(expected)


def test_repaired_run_counts_once_with_its_final_state(demo_facts, raw_runs, raw_slices, runs_summary, job_summary):
    run_id = demo_facts.repaired_run_id
    terminal = raw_slices[(raw_slices.run_id == run_id) & raw_slices.result_state.notna()].sort_values("period_end_time")
    assert list(terminal.result_state) == ["FAILED", "SUCCEEDED"]  # the trap: two terminal rows
    row = runs_summary[runs_summary.run_id == run_id]
    assert len(row) == 1
    row = row.iloc[0]
    assert row.result_state == "SUCCEEDED" and not row.is_failure and row.repair_count == 1
    expected = raw_runs[raw_runs.run_id == run_id].iloc[0]
    assert row.duration_seconds == expected.duration  # wall clock, including the gap before the repair
    job = demo_facts.repaired_job
    runs = raw_runs[(raw_runs.workspace_id == job.workspace_id) & (raw_runs.job_id == job.job_id)]
    stats = job_summary.loc[(job.workspace_id, job.job_id)]
    assert stats.run_count == len(runs)  # not the number of terminal rows
    assert stats.failure_count == runs.final_state.isin(FAILURE_STATES).sum()
    assert stats.success_count == (runs.final_state == "SUCCEEDED").sum()


def test_failing_job_failures_match_raw_data(demo_facts, raw_runs, job_summary):
    job = demo_facts.failing_job
    runs = raw_runs[(raw_runs.workspace_id == job.workspace_id) & (raw_runs.job_id == job.job_id)]
    failures = runs.final_state.isin(FAILURE_STATES).sum()
    assert failures >= demo_facts.failing_streak_length
    stats = job_summary.loc[(job.workspace_id, job.job_id)]
    assert stats.failure_count == failures
    assert stats.job_name == job.name
    last = runs.sort_values("start").iloc[-1]
    assert last.run_id == demo_facts.failing_streak_run_ids[-1]
    assert stats.last_result_state == "FAILED" and stats.last_run_time == last.start
    assert math.isclose(stats.success_rate, (runs.final_state == "SUCCEEDED").sum() / runs.final_state.notna().sum())


def test_job_summary_counts_and_durations_match_raw_for_every_job(raw_runs, job_summary):
    assert len(job_summary) == raw_runs.groupby(["workspace_id", "job_id"]).ngroups
    for (workspace_id, job_id), runs in raw_runs.groupby(["workspace_id", "job_id"]):
        stats = job_summary.loc[(workspace_id, job_id)]
        finished = runs[runs.final_state.notna()]
        assert stats.run_count == len(runs)
        assert stats.success_count == (runs.final_state == "SUCCEEDED").sum()
        assert stats.failure_count == runs.final_state.isin(FAILURE_STATES).sum()
        assert math.isclose(stats.avg_duration_seconds, finished.duration.mean())
        # Exact p95 with linear interpolation between closest ranks (numpy's default).
        assert math.isclose(stats.p95_duration_seconds, float(np.percentile(finished.duration, 95)), rel_tol=1e-9)


def test_jobs_current_has_the_latest_version_of_each_live_job(demo_facts, demo_source, pipeline_output):
    versions = pd.read_parquet(demo_source / "lakeflow" / "jobs")
    assert versions.groupby(["workspace_id", "job_id"]).size().max() > 1  # several versions per job
    latest = versions.sort_values("change_time").groupby(["workspace_id", "job_id"]).last()
    live = latest[latest.delete_time.isna()]
    current = pipeline_output.table("jobs_current").toPandas()
    assert not current.duplicated(["workspace_id", "job_id"]).any()
    assert set(zip(current.workspace_id, current.job_id)) == set(live.index)
    assert not set(current.job_id) & set(demo_facts.deleted_job_ids)
    for row in current.itertuples():
        assert row.name == live.loc[(row.workspace_id, row.job_id), "name"]
    renamed = [key for key, names in versions.groupby(["workspace_id", "job_id"]).name if names.nunique() > 1]
    assert any(key in live.index for key in renamed)  # a renamed live job is covered by the loop above
