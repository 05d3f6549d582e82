"""Helpers of the issue-14 catalog tests: the job-health rules recomputed from the RAW demo Parquet
with pandas (independently of the specs' SQL), and a way to run one spec's query over hand-made
inputs on the session's Spark, to cover branches the demo data does not plant.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from engine.names import resolve_references

FAILED_STATES = {"ERROR", "FAILED", "TIMED_OUT"}
# A job without a team tag takes the first rule type that matches it (specs/billing/team_mapping.yaml).
JOB_RULE_ORDER = ("job_owner", "job_name", "run_as", "workspace")


def naive_utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Timestamps as Spark's toPandas returns them: naive UTC."""
    for column in columns:
        frame[column] = frame[column].dt.tz_convert(None)
    return frame


def _like(pattern: str, text: str | None) -> bool:
    """SQL LIKE without an escape character: % any characters, _ one character, case-sensitive."""
    if text is None:
        return False
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.S) is not None


def _last_known(values: pd.Series) -> str | None:
    known = values.dropna()
    return known.iloc[-1] if len(known) else None


def job_teams_from_raw(demo_source: Path, mapping: list[dict]) -> pd.DataFrame:
    """(workspace_id, job_id) -> team, team_source, team_match_value, business_unit, cost_center."""
    versions = pd.read_parquet(demo_source / "lakeflow" / "jobs").sort_values("change_time")
    tag_rows = {m["match_value"]: m for m in mapping if m["match_type"] == "team_tag"}
    out = []
    for (workspace_id, job_id), history in versions.groupby(["workspace_id", "job_id"]):
        latest = history.iloc[-1]
        tags = dict(latest.tags) if latest.tags is not None else {}
        job = {"workspace_id": workspace_id, "job_id": job_id, "name": latest["name"],
               "creator_id": latest.creator_id, "run_as": latest.run_as,
               "creator_user_name": _last_known(history.creator_user_name),
               "run_as_user_name": _last_known(history.run_as_user_name)}
        team_tag = (tags.get("team") or "").strip() or None
        decided = None
        if team_tag:
            row = tag_rows.get(team_tag, {})
            decided = ("tag", team_tag, row.get("team", team_tag), row.get("business_unit"), row.get("cost_center"))
        else:
            for rule_type in JOB_RULE_ORDER:
                hits = [m for m in mapping if m["match_type"] == rule_type and _matches(rule_type, m["match_value"], job)]
                if hits:
                    best = sorted(hits, key=lambda m: (-len(m["match_value"]), m["match_value"], m["team"]))[0]
                    decided = (rule_type, best["match_value"], best["team"], best.get("business_unit"), best.get("cost_center"))
                    break
        source, value, team, unit, center = decided or ("unallocated", None, None, None, None)
        out.append({**job, "team_source": source, "team_match_value": value, "team": team, "business_unit": unit,
                    "cost_center": (tags.get("cost_center") or "").strip() or center,
                    "tier": (tags.get("tier") or "").strip().upper() or None,
                    "is_deleted": pd.notna(latest.delete_time)})
    return pd.DataFrame(out).set_index(["workspace_id", "job_id"])


def _matches(rule_type: str, value: str, job: dict) -> bool:
    if rule_type == "job_owner":
        return value in (job["creator_user_name"], job["creator_id"])
    if rule_type == "job_name":
        return _like(value, job["name"])
    if rule_type == "run_as":
        return value in (job["run_as_user_name"], job["run_as"])
    return value == job["workspace_id"]


def task_runs_from_raw(demo_source: Path) -> pd.DataFrame:
    """One row per task run: span, final state, and its place among the runs of its task in its job run."""
    slices = naive_utc(pd.read_parquet(demo_source / "lakeflow" / "job_task_run_timeline"),
                       "period_start_time", "period_end_time")
    slices["job_run"] = slices.job_run_id.fillna(slices.parent_run_id)
    spans = slices.groupby(["workspace_id", "run_id"]).agg(
        job_id=("job_id", "first"), job_run_id=("job_run", "first"), task_key=("task_key", "first"),
        start=("period_start_time", "min"), end=("period_end_time", "max"), rows=("run_id", "size"))
    terminal = slices[slices.result_state.notna()].sort_values("period_end_time")
    last = terminal.drop_duplicates(["workspace_id", "run_id"], keep="last").set_index(["workspace_id", "run_id"])
    runs = spans.join(last[["result_state", "termination_code"]]).reset_index()
    runs["duration"] = (runs.end - runs.start).dt.total_seconds().astype("int64")
    runs["run_date"] = runs.start.dt.date

    # The job run's attempts end with a terminal row each: a task run after the first one is a repair's.
    job_slices = naive_utc(pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline"), "period_end_time")
    ends = job_slices[job_slices.result_state.notna()].groupby(["workspace_id", "run_id"]).period_end_time.apply(list)
    runs["job_attempt"] = [
        1 + sum(end <= r.start for end in ends.get((r.workspace_id, r.job_run_id), [])) for r in runs.itertuples()
    ]
    runs = runs.sort_values(["start", "run_id"])
    group = runs.groupby(["workspace_id", "job_run_id", "task_key"], dropna=False)
    runs["attempt_number"] = group.cumcount() + 1
    runs["attempt_count"] = group.run_id.transform("size")
    runs["run_in_job_attempt"] = runs.groupby(["workspace_id", "job_run_id", "task_key", "job_attempt"]).cumcount() + 1
    runs["is_retry"] = runs.run_in_job_attempt > 1
    runs["is_repair_rerun"] = (runs.run_in_job_attempt == 1) & (runs.job_attempt > 1)
    runs["is_failure"] = runs.result_state.isin(FAILED_STATES)
    return runs.set_index(["workspace_id", "run_id"]).sort_index()


def run_spec_query(spark: Any, project, table: str, inputs: dict[str, Any], prefix: str) -> pd.DataFrame:
    """The table's own SQL with each ${input} read from a DataFrame registered as `<prefix>_<input>`."""
    for name, frame in inputs.items():
        frame.createOrReplaceTempView(f"{prefix}_{name}")
    sql = resolve_references(project.table(table).query, lambda name: f"`{prefix}_{name}`")
    return spark.sql(sql).toPandas()
