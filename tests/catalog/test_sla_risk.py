"""Proactive SLA (issue 14): runs in progress near their SLA, flagged before the breach.

"Now" is the data's clock, never the machine's: the latest period_end_time in the raw
job_run_timeline. Recomputed here from the raw demo Parquet (runs without a terminal row, SLAs from
the job_slas spec rows and the jobs' tags) with pandas. The demo plants exactly one run in progress:
about 110 minutes into its 120-minute SLA when the data ends. The branches the demo does not plant
(deadlines, breaches while running, runs on track) run the table's own SQL over hand-made inputs.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from engine.spec import load_project
from tests.catalog.raw_job_health import naive_utc, run_spec_query

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project():
    return load_project(ROOT / "specs")


def _raw_slas(project, demo_source) -> dict[tuple[str, str], tuple[int | None, str | None]]:
    """(workspace_id, job_id) -> (max minutes, deadline): job_slas rows win per field over live job tags."""
    jobs = pd.read_parquet(demo_source / "lakeflow" / "jobs").sort_values("change_time")
    latest = jobs.drop_duplicates(["workspace_id", "job_id"], keep="last")
    slas = {}
    for job in latest[latest.delete_time.isna()].itertuples():
        tags = dict(job.tags) if job.tags is not None else {}
        if "sla_max_duration_minutes" in tags or "sla_deadline_utc" in tags:
            slas[(job.workspace_id, job.job_id)] = (int(tags["sla_max_duration_minutes"]) if "sla_max_duration_minutes" in tags else None,
                                                    tags.get("sla_deadline_utc"))
    for row in project.table("job_slas").rows:
        key = (row["workspace_id"], row["job_id"])
        tag_max, tag_deadline = slas.get(key, (None, None))
        slas[key] = (row.get("max_duration_minutes") or tag_max, row.get("deadline_utc") or tag_deadline)
    return slas


def test_runs_in_progress_are_scored_on_the_datas_clock(demo_facts, project, demo_source, pipeline_output):
    slices = naive_utc(pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline"), "period_start_time", "period_end_time")
    as_of = slices.period_end_time.max()
    finished = set(slices[slices.result_state.notna()].run_id)
    running = slices[~slices.run_id.isin(finished)].groupby(["workspace_id", "run_id"]).agg(
        job_id=("job_id", "first"), start=("period_start_time", "min"))
    slas = _raw_slas(project, demo_source)
    expected = {key: run for key, run in running.iterrows() if (key[0], run.job_id) in slas}

    table = pipeline_output.table("sla_breach_risk").toPandas().set_index(["workspace_id", "run_id"])
    assert set(table.index) == set(expected)
    for key, run in expected.items():
        row = table.loc[key]
        max_minutes, deadline = slas[(key[0], run.job_id)]
        elapsed = (as_of - run.start).total_seconds()
        assert (row.as_of_time, row.start_time, row.elapsed_seconds) == (as_of, run.start, elapsed), key
        assert row.max_duration_minutes == max_minutes and pd.isna(deadline) == pd.isna(row.deadline_utc), key
        assert math.isclose(row.pct_of_max_duration, elapsed * 100 / (max_minutes * 60)), key
        status = "breached" if elapsed > max_minutes * 60 else "at_risk" if elapsed >= 0.8 * max_minutes * 60 else "on_track"
        assert row.risk_status == status, key

    # The planted run: past 80 % of its job_slas maximum, not yet breached, flagged by duration.
    job = demo_facts.sla_risk_job
    assert as_of == pd.Timestamp(demo_facts.data_end_time).tz_convert(None)
    (key,) = table.index
    row = table.loc[key]
    assert key == (job.workspace_id, demo_facts.sla_risk_run_id) and row.job_id == job.job_id
    assert (row.risk_status, row.risk_reason, row.sla_source) == ("at_risk", "duration", "job_slas")
    assert row.max_duration_minutes == demo_facts.sla_risk_max_duration_minutes and 80 <= row.pct_of_max_duration < 100
    assert 0 < row.minutes_to_max_duration < 0.2 * demo_facts.sla_risk_max_duration_minutes
    assert (row.job_name, row.team, row.tier) == (job.name, "analytics", None)  # team by owner via team_mapping


def test_deadlines_breaches_and_runs_on_track_on_hand_made_runs(local_spark, project):
    spark = local_spark.spark
    day = dt.date(2026, 3, 2)
    at = lambda h, m: dt.datetime.combine(day, dt.time(h, m))  # noqa: E731 - a short local helper
    runs = [  # run_id, job_id, start, end of its latest slice, running; the clock is 05:40 (the latest end)
        ("on-track", "j-max", at(5, 0), at(5, 30), True),             # 40 of 120 min
        ("near-deadline", "j-deadline", at(4, 0), at(5, 0), True),    # 100 of the 120 min to its 06:00 deadline
        ("late-start", "j-early", at(5, 10), at(5, 30), True),        # deadline 05:00 passed while it runs
        ("too-long", "j-both", at(2, 0), at(5, 0), True),             # 220 min > 180 min; deadline 23:00 far
        ("near-both", "j-tight", at(4, 10), at(5, 0), True),          # 90 of 100 min, 90 of the 110 min to 06:00
        ("done", "j-max", at(2, 0), at(5, 40), False),                # finished: not evaluated, sets the clock
        ("no-sla", "j-none", at(5, 0), at(5, 30), True),              # its job has no SLA
    ]
    enriched = spark.createDataFrame(
        [("w", job, run, "name-" + job, "team-x", None, day, start, end, running) for run, job, start, end, running in runs],
        "workspace_id string, job_id string, run_id string, job_name string, team string, tier string, "
        "run_date date, start_time timestamp, end_time timestamp, is_running boolean")
    targets = spark.createDataFrame(
        [("w", "j-max", 120, None, None, "job_slas"), ("w", "j-deadline", None, "06:00", 360, "tags"),
         ("w", "j-early", None, "05:00", 300, "tags"), ("w", "j-both", 180, "23:00", 1380, "job_slas+tags"),
         ("w", "j-tight", 100, "06:00", 360, "job_slas")],
        "workspace_id string, job_id string, max_duration_minutes int, deadline_utc string, "
        "deadline_minute_of_day int, sla_source string")
    rows = run_spec_query(spark, project, "sla_breach_risk",
                          {"job_runs_enriched": enriched, "job_sla_targets": targets}, "sla_risk_case").set_index("run_id")
    assert set(rows.index) == {"on-track", "near-deadline", "late-start", "too-long", "near-both"}
    assert (rows.as_of_time == pd.Timestamp(at(5, 40))).all()
    outcome = {run: (row.risk_status, None if pd.isna(row.risk_reason) else row.risk_reason) for run, row in rows.iterrows()}
    assert outcome == {
        "on-track": ("on_track", None),
        "near-deadline": ("at_risk", "deadline"),
        "late-start": ("breached", "deadline"),
        "too-long": ("breached", "duration"),
        "near-both": ("at_risk", "duration+deadline"),
    }
    assert math.isclose(rows.loc["on-track", "pct_of_max_duration"], 40 * 100 / 120)
    assert math.isclose(rows.loc["near-deadline", "pct_of_deadline_window"], 100 * 100 / 120)
    assert math.isclose(rows.loc["near-deadline", "minutes_to_deadline"], 20)
    assert rows.loc["near-deadline", "deadline_time"] == pd.Timestamp(at(6, 0))
    assert pd.isna(rows.loc["late-start", "pct_of_deadline_window"]) and rows.loc["late-start", "minutes_to_deadline"] == -40
    assert math.isclose(rows.loc["too-long", "minutes_to_max_duration"], -40)
    assert pd.isna(rows.loc["near-deadline", "pct_of_max_duration"])
