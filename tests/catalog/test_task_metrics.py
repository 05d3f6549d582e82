"""Task-level metrics (issue 14) against the RAW demo system tables.

Task runs are reassembled here from the raw lakeflow.job_task_run_timeline Parquet with pandas
(tests/catalog/raw_job_health.py), and repairs are told from retries with the raw job_run_timeline,
independently of the specs' SQL. The planted case of `engine.demo.facts` must be found exactly: one
task that failed and was retried inside a job run that succeeded on its first attempt; every other
task that ran twice in a job run did so because the job run was repaired.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.catalog.raw_job_health import job_teams_from_raw, task_runs_from_raw

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw_task_runs(demo_source) -> pd.DataFrame:
    return task_runs_from_raw(demo_source)


@pytest.fixture(scope="module")
def raw_teams(demo_source) -> pd.DataFrame:
    from engine.spec import load_project

    rows = [dict(r) for r in load_project(ROOT / "specs").table("team_mapping").rows]
    return job_teams_from_raw(demo_source, rows)


@pytest.fixture(scope="module")
def task_runs(pipeline_output) -> pd.DataFrame:
    return pipeline_output.table("job_task_runs").toPandas().set_index(["workspace_id", "task_run_id"]).sort_index()


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def test_task_runs_are_reassembled_from_their_slices(raw_task_runs, task_runs):
    assert list(task_runs.index) == list(raw_task_runs.index)
    assert (raw_task_runs.rows > 1).any()  # the trap: long tasks span several hourly slices
    for key, raw in raw_task_runs.iterrows():
        row = task_runs.loc[key]
        assert (row.job_run_id, row.task_key, row.job_id) == (raw.job_run_id, raw.task_key, raw.job_id), key
        assert (row.start_time, row.end_time, row.duration_seconds) == (raw.start, raw.end, raw.duration), key
        assert _same(row.result_state, raw.result_state) and row.is_running == pd.isna(raw.result_state), key
        assert (row.attempt_number, row.attempt_count, row.job_attempt_number) == (
            raw.attempt_number, raw.attempt_count, raw.job_attempt), key
        assert (row.is_retry, row.is_repair_rerun, row.is_failure) == (raw.is_retry, raw.is_repair_rerun, raw.is_failure), key
        assert row.timeline_rows == raw.rows, key


def test_task_retries_find_the_planted_retry_and_the_repairs(demo_facts, raw_task_runs, demo_source, pipeline_output):
    table = pipeline_output.table("task_retries").toPandas().set_index(["workspace_id", "job_run_id", "task_key"])
    runs = raw_task_runs.reset_index()
    several = runs[runs.attempt_count > 1]
    expected = several.groupby(["workspace_id", "job_run_id", "task_key"])
    assert set(table.index) == set(expected.groups) and len(table) > 1
    for key, group in expected:
        row, group = table.loc[key], group.sort_values("attempt_number")
        assert (row.attempt_count, row.retry_count, row.repair_rerun_count) == (
            len(group), group.is_retry.sum(), group.is_repair_rerun.sum()), key
        assert (row.first_task_run_id, row.final_task_run_id) == (group.run_id.iloc[0], group.run_id.iloc[-1]), key
        assert _same(row.final_result_state, group.result_state.iloc[-1]), key
        assert row.recovered == (group.is_failure.any() and group.result_state.iloc[-1] == "SUCCEEDED"), key

    # Repairs: the job run has several terminal rows; the planted retry is inside one attempt.
    slices = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    terminal_rows = slices[slices.result_state.notna()].groupby(["workspace_id", "run_id"]).size()
    repaired = {key for key, n in terminal_rows.items() if n > 1}
    job = demo_facts.task_retry_job
    planted = (job.workspace_id, demo_facts.task_retry_run_id, demo_facts.task_retry_task_key)
    assert set(table[table.cause == "retry"].index) == {planted}
    assert {(w, r) for w, r, _ in table[table.cause == "repair"].index} <= repaired
    row = table.loc[planted]
    assert (row.attempt_count, row.retry_count, row.repair_rerun_count, row.failed_attempts) == (2, 1, 0, 1)
    assert (row.first_task_run_id, row.final_task_run_id) == demo_facts.task_retry_task_run_ids
    assert (row.first_result_state, row.final_result_state, bool(row.recovered)) == ("FAILED", "SUCCEEDED", True)
    # The retry hides the failure from every job-level table: the job run succeeded, never repaired.
    assert (row.job_run_result_state, row.job_run_repair_count) == ("SUCCEEDED", 0)
    assert (row.job_name, row.team) == (job.name, "analytics")


def test_task_performance_recomputed_from_raw(demo_facts, raw_task_runs, raw_teams, pipeline_output):
    table = pipeline_output.table("task_performance").toPandas().set_index(["workspace_id", "job_id", "task_key"])
    runs = raw_task_runs.reset_index()
    anchor = runs.run_date.max()
    runs["last_30d"] = runs.run_date >= anchor - pd.Timedelta(days=29)
    runs["last_7d"] = runs.run_date >= anchor - pd.Timedelta(days=6)
    expected = runs.groupby(["workspace_id", "job_id", "task_key"])
    assert set(table.index) == set(expected.groups)
    for key, group in expected:
        row = table.loc[key]
        window = group[group.last_30d]
        finished = window[window.result_state.notna()]
        ok = window[window.result_state == "SUCCEEDED"].duration
        failures = window[window.is_failure]
        assert row.anchor_date == anchor and row.task_runs == len(group), key
        assert (row.finished_runs_30d, row.successful_runs_30d, row.failures_30d) == (len(finished), len(ok), len(failures)), key
        assert row.failures_7d == group[group.last_7d & group.is_failure].shape[0], key
        assert row.final_failures_30d == (failures.attempt_number == failures.attempt_count).sum(), key
        assert (row.retries_30d, row.repair_reruns_30d) == (window.is_retry.sum(), window.is_repair_rerun.sum()), key
        assert row.job_runs_with_retries_30d == window[window.is_retry].job_run_id.nunique(), key
        if len(ok):
            assert math.isclose(row.p50_30d_seconds, np.percentile(ok, 50)) and math.isclose(row.p90_30d_seconds, np.percentile(ok, 90)), key
        else:
            assert pd.isna(row.p90_30d_seconds), key
        latest = group[group.result_state.notna()].sort_values(["start", "run_id"]).iloc[-1]
        assert (row.latest_task_run_id, row.latest_duration_seconds) == (latest.run_id, latest.duration), key
        assert bool(row.is_latest_slower_than_p90) == bool(len(ok) and latest.duration > np.percentile(ok, 90)), key
        team = raw_teams.loc[(key[0], key[1])]
        assert _same(row.team, team.team) and row.job_name == team["name"], key
    # The slowest task of each job ranks 1; the planted retry counts as a failure of its task.
    ranked = table.dropna(subset=["p90_30d_seconds"])
    for (workspace_id, job_id), tasks in ranked.groupby(level=[0, 1]):
        assert tasks.sort_values("p90_30d_seconds").slowness_rank_in_job.iloc[-1] == 1
    job = demo_facts.task_retry_job
    planted = table.loc[(job.workspace_id, job.job_id, demo_facts.task_retry_task_key)]
    assert planted.failures_30d >= 1 and planted.retries_30d == planted.job_runs_with_retries_30d == 1
    assert planted.last_failure_task_run_id == demo_facts.task_retry_task_run_ids[0]
