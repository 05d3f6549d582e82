"""Job health and cost attribution (issue 8) against the RAW demo system tables.

Every expected figure is recomputed here from the raw demo Parquet (lakeflow.job_run_timeline,
lakeflow.jobs, billing.usage priced with billing.list_prices, compute.node_timeline,
compute.clusters) with pandas and SQL written for these tests, independently of the specs' SQL.
The planted cases of `engine.demo.facts` must be found EXACTLY: the failing streak and its length,
the one job whose latest run is twice as slow, the SLA misses and no others, the over-provisioned
cluster, the untagged spend. The rows of the reference specs (team_mapping, job_slas,
termination_code_classes) are inputs, read from the YAML specs themselves.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.spec import load_project
from tests.catalog.raw_job_health import job_teams_from_raw

ROOT = Path(__file__).resolve().parents[2]
CENT = 0.005  # "to the cent": closer than half a cent
FAILED_STATES = {"ERROR", "FAILED", "TIMED_OUT"}
CANCELED_STATES = {"CANCELLED", "CANCELED"}


@pytest.fixture(scope="module")
def project():
    return load_project(ROOT / "specs")


def _rows_of(project, table: str) -> list[dict]:
    return [dict(row) for row in project.table(table).rows]


def _out(pipeline_output, name: str) -> pd.DataFrame:
    return pipeline_output.table(name).toPandas()


def _money(value) -> float:
    return float("nan") if value is None else float(value)


def _money0(value) -> float:
    """A cost column where NULL means nothing was billed."""
    return 0.0 if value is None or pd.isna(value) else float(value)


def _same(a, b) -> bool:
    """Equal, or both missing (NULL from Spark, NaN from pandas)."""
    return (pd.isna(a) and pd.isna(b)) or a == b


def _close(a, b, tolerance: float = CENT) -> bool:
    return a is not None and b is not None and not pd.isna(a) and not pd.isna(b) and abs(float(a) - float(b)) < tolerance


# --- raw data, recomputed independently -----------------------------------------------------------

@pytest.fixture(scope="module")
def raw_runs(demo_source) -> pd.DataFrame:
    """One row per (workspace_id, run_id): first start, last end, and the LAST terminal row's state/code."""
    frame = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    for column in ("period_start_time", "period_end_time"):  # naive UTC, as Spark's toPandas returns them
        frame[column] = frame[column].dt.tz_convert(None)
    spans = frame.groupby(["workspace_id", "run_id"]).agg(
        job_id=("job_id", "first"), start=("period_start_time", "min"), end=("period_end_time", "max"))
    terminal = frame[frame.result_state.notna()].sort_values("period_end_time")
    queue = terminal.groupby(["workspace_id", "run_id"]).queue_duration_seconds.sum().rename("queue")
    last = terminal.drop_duplicates(["workspace_id", "run_id"], keep="last").set_index(["workspace_id", "run_id"])
    runs = spans.join(last[["result_state", "termination_code"]]).join(queue).reset_index()
    runs = runs.rename(columns={"result_state": "state", "termination_code": "code"})
    runs["duration"] = (runs.end - runs.start).dt.total_seconds().astype("int64")
    runs["run_date"] = runs.start.dt.date
    runs["terminal_rows"] = runs.set_index(["workspace_id", "run_id"]).index.map(
        terminal.groupby(["workspace_id", "run_id"]).size()).fillna(0).astype(int)
    return runs


@pytest.fixture(scope="module")
def raw_jobs(demo_source) -> pd.DataFrame:
    """Latest version of every job (deleted ones included, with `live` False), with its tags as a dict."""
    versions = pd.read_parquet(demo_source / "lakeflow" / "jobs").sort_values("change_time")
    latest = versions.drop_duplicates(["workspace_id", "job_id"], keep="last").copy()
    latest["tags"] = latest.tags.map(lambda t: dict(t) if t is not None else {})
    latest["live"] = latest.delete_time.isna()
    return latest.set_index(["workspace_id", "job_id"])


def _tag_of_record(raw_jobs, workspace_id, job_id, key):
    """The tag of the job's latest version, deleted or not (names of record); None for jobs lakeflow does not know."""
    if (workspace_id, job_id) not in raw_jobs.index:
        return None
    return raw_jobs.loc[(workspace_id, job_id)].tags.get(key)


@pytest.fixture(scope="module")
def raw_teams(demo_source, project) -> pd.DataFrame:
    """Each job's team by the job_teams rule (tag, else team_mapping), recomputed from raw lakeflow.jobs."""
    return job_teams_from_raw(demo_source, _rows_of(project, "team_mapping"))


def _team(raw_teams, workspace_id, job_id):
    team = raw_teams.team.get((workspace_id, job_id))
    return None if pd.isna(team) else team


@pytest.fixture(scope="module")
def priced_usage(pipeline_output, demo_source) -> pd.DataFrame:
    """Every raw usage row (all record types) with its cost at the effective list price valid at its start."""
    spark = pipeline_output.spark
    spark.read.parquet(str(demo_source / "billing" / "usage")).createOrReplaceTempView("raw_usage_health")
    spark.read.parquet(str(demo_source / "billing" / "list_prices")).createOrReplaceTempView("raw_prices_health")
    frame = spark.sql("""
        SELECT u.record_id, u.workspace_id, u.usage_date, u.usage_start_time, u.usage_unit, u.billing_origin_product,
               CAST(u.usage_quantity AS DOUBLE) AS quantity,
               CAST(u.usage_quantity AS DOUBLE) * CAST(p.pricing.effective_list.default AS DOUBLE) AS cost,
               u.usage_metadata.job_id AS job_id, u.usage_metadata.job_run_id AS job_run_id,
               u.usage_metadata.cluster_id AS cluster_id, u.product_features.is_serverless AS is_serverless,
               u.custom_tags['team'] AS team_tag, u.custom_tags['cost_center'] AS cost_center_tag,
               u.identity_metadata.run_as AS run_as, u.identity_metadata.owned_by AS owned_by
        FROM raw_usage_health u
        JOIN raw_prices_health p
          ON p.sku_name = u.sku_name AND p.cloud = u.cloud AND p.usage_unit = u.usage_unit AND p.currency_code = 'USD'
         AND u.usage_start_time >= p.price_start_time
         AND u.usage_start_time < COALESCE(p.price_end_time, TIMESTAMP '9999-12-31 00:00:00')
    """).toPandas()
    assert len(frame) == spark.table("raw_usage_health").count() and frame.record_id.is_unique
    return frame


# --- job_runs_enriched ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def enriched(pipeline_output) -> pd.DataFrame:
    return _out(pipeline_output, "job_runs_enriched").set_index(["workspace_id", "run_id"])


def test_enriched_has_one_row_per_run_with_its_final_state_queue_and_tags(raw_runs, raw_jobs, raw_teams, enriched):
    assert not enriched.index.duplicated().any()
    assert set(enriched.index) == set(zip(raw_runs.workspace_id, raw_runs.run_id))
    assert (raw_runs.terminal_rows > 1).any()  # the trap: repaired runs have several terminal rows
    categories = {"SUCCEEDED": "success", "FAILED": "failure", "ERROR": "failure", "TIMED_OUT": "failure",
                  "CANCELLED": "canceled", "SKIPPED": "skipped"}
    for run in raw_runs.itertuples():
        row = enriched.loc[(run.workspace_id, run.run_id)]
        assert _same(row.result_state, run.state) and row.duration_seconds == run.duration, run.run_id
        assert row.result_category == categories.get(run.state, "other"), run.run_id
        assert _same(row.queue_duration_seconds, run.queue), run.run_id  # NULL while a run is in progress
        assert row.team == _team(raw_teams, run.workspace_id, run.job_id), run.run_id
        assert row.tier == _tag_of_record(raw_jobs, run.workspace_id, run.job_id, "tier"), run.run_id
        assert row.job_name == raw_jobs.loc[(run.workspace_id, run.job_id)]["name"], run.run_id
    assert set(enriched.tier.dropna()) == {"P1", "P2", "P3"}
    assert enriched.team.isna().any()  # a job no team_mapping rule covers stays without a team
    # Runs of a job deleted after they ran keep its name and team (the job's latest, deleted version).
    deleted = raw_jobs[~raw_jobs.live]
    deleted_runs = enriched[[(ws, job) in deleted.index for ws, job in zip(enriched.index.get_level_values(0),
                                                                             enriched.job_id)]]
    assert len(deleted_runs) > 0 and deleted_runs.job_name.notna().all()
    assert deleted_runs.team.notna().any()


def test_enriched_run_cost_is_billing_summed_per_run_before_the_join(demo_facts, priced_usage, enriched, raw_runs):
    billed = priced_usage[priced_usage.job_run_id.notna()]
    per_run = billed.groupby(["workspace_id", "job_run_id"]).agg(cost=("cost", "sum"), quantity=("quantity", "sum"))
    per_run = per_run[per_run.quantity.abs() > 1e-12]
    serverless = demo_facts.serverless_job
    rows_per_hour = billed[billed.job_id == serverless.job_id].groupby(["job_run_id", "usage_start_time"]).size()
    assert rows_per_hour.max() > 1  # the trap: several serverless rows per run and hour
    lakeflow_runs = set(zip(raw_runs.workspace_id, raw_runs.run_id))
    costed = enriched[enriched.run_cost_usd.notna()]
    expected = {key: value for key, value in per_run.cost.items() if key in lakeflow_runs}
    assert set(costed.index) == set(expected)
    wrong = {key: (float(costed.loc[key, "run_cost_usd"]), cost) for key, cost in expected.items()
             if not _close(costed.loc[key, "run_cost_usd"], cost)}
    assert not wrong, f"{len(wrong)} runs cost differently from the raw billing, e.g. {list(wrong.items())[:3]}"


def test_enriched_compute_type_follows_billing_and_cluster_source(demo_facts, priced_usage, enriched):
    serverless_billed = priced_usage[priced_usage.job_run_id.notna()].groupby(
        ["workspace_id", "job_run_id"]).is_serverless.any()
    for key, is_serverless in serverless_billed.items():
        if key in enriched.index:
            assert enriched.loc[key, "compute_type"] == ("serverless" if is_serverless else "job_cluster"), key
    def types_of(job):
        mine = enriched.loc[job.workspace_id]
        mine = mine[(mine.job_id == job.job_id) & (mine.result_state != "SKIPPED")]
        assert len(mine) > 0
        return set(mine.compute_type)
    assert types_of(demo_facts.serverless_job) == {"serverless"}
    assert types_of(demo_facts.all_purpose_job) == {"all_purpose"}  # no billing rows: found via compute_ids
    assert types_of(demo_facts.long_running_job) == {"job_cluster"}
    ap = enriched[enriched.job_id == demo_facts.all_purpose_job.job_id]
    assert ap.run_cost_usd.isna().all()  # its usage is the cluster's, never the run's
    assert set(enriched[enriched.result_state == "SKIPPED"].compute_type) <= {"unknown"}


# --- consecutive_failures --------------------------------------------------------------------------

def _expected_streaks(raw_runs: pd.DataFrame) -> dict:
    finished = raw_runs[raw_runs.state.notna()].sort_values(["start", "run_id"])
    out = {}
    for (workspace_id, job_id), runs in finished.groupby(["workspace_id", "job_id"]):
        newest_first = list(runs.itertuples())[::-1]
        streak = next((i for i, r in enumerate(newest_first) if r.state not in FAILED_STATES), len(newest_first))
        successes = runs[runs.state == "SUCCEEDED"]
        out[(workspace_id, job_id)] = dict(
            streak=streak, first=newest_first[streak - 1].run_id if streak else None, latest=newest_first[0].run_id,
            last_success=successes.end.max() if len(successes) else None, finished=len(runs))
    return out


def test_consecutive_failures_find_exactly_the_planted_streaks(demo_facts, raw_runs, pipeline_output):
    table = _out(pipeline_output, "consecutive_failures").set_index(["workspace_id", "job_id"])
    expected = _expected_streaks(raw_runs)
    assert set(table.index) == set(expected)
    for key, want in expected.items():
        row = table.loc[key]
        assert row.current_failure_streak == want["streak"], key
        assert row.streak_first_run_id == want["first"] or (want["first"] is None and pd.isna(row.streak_first_run_id)), key
        assert row.latest_run_id == want["latest"] and row.finished_run_count == want["finished"], key
        assert (pd.isna(row.last_success_time) and want["last_success"] is None) or row.last_success_time == want["last_success"], key
    failing = {key: int(row.current_failure_streak) for key, row in table[table.current_failure_streak > 0].iterrows()}
    planted = {
        (demo_facts.failing_job.workspace_id, demo_facts.failing_job.job_id): demo_facts.failing_streak_length,
        (demo_facts.first_failure_job.workspace_id, demo_facts.first_failure_job.job_id): 1,
        (demo_facts.digest_failure_job.workspace_id, demo_facts.digest_failure_job.job_id): 1,
    }
    assert failing == planted and demo_facts.failing_streak_length == 3
    streak = table.loc[(demo_facts.failing_job.workspace_id, demo_facts.failing_job.job_id)]
    assert streak.streak_first_run_id == demo_facts.failing_streak_run_ids[0]
    assert streak.latest_run_id == demo_facts.failing_streak_run_ids[-1] and streak.tier == "P2"
    assert streak.last_success_time < streak.streak_started_at  # earlier runs succeeded
    assert table.loc[(demo_facts.first_failure_job.workspace_id, demo_facts.first_failure_job.job_id)].latest_run_id \
        == demo_facts.first_failure_run_id


# --- job_duration_baselines ------------------------------------------------------------------------

def test_duration_baselines_flag_only_the_job_that_slowed_down(demo_facts, raw_runs, pipeline_output):
    table = _out(pipeline_output, "job_duration_baselines").set_index(["workspace_id", "job_id"])
    anchor = raw_runs.run_date.max()
    finished = raw_runs[raw_runs.state.notna()]
    last_30 = finished[finished.run_date >= anchor - dt.timedelta(days=29)]
    successes = last_30[last_30.state == "SUCCEEDED"]
    assert set(table.index) == set(zip(successes.workspace_id, successes.job_id))
    for (workspace_id, job_id), runs in successes.groupby(["workspace_id", "job_id"]):
        row = table.loc[(workspace_id, job_id)]
        p50, p90 = np.percentile(runs.duration, 50), np.percentile(runs.duration, 90)
        assert math.isclose(row.p50_30d_seconds, p50) and math.isclose(row.p90_30d_seconds, p90), job_id
        assert row.runs_30d == len(runs) and row.runs_above_p90_30d == (runs.duration > p90).sum(), job_id
        week = runs[runs.run_date >= anchor - dt.timedelta(days=6)]
        assert row.runs_7d == len(week), job_id
        if len(week):
            assert math.isclose(row.p50_7d_seconds, np.percentile(week.duration, 50)), job_id
        latest = finished[(finished.workspace_id == workspace_id) & (finished.job_id == job_id)].sort_values(["start", "run_id"]).iloc[-1]
        assert row.latest_run_id == latest.run_id and row.latest_duration_seconds == latest.duration, job_id
        assert bool(row.is_latest_run_slow) == (latest.duration >= 2 * p50), job_id
    slow = table[table.is_latest_run_slow]
    job = demo_facts.slowdown_job
    assert list(slow.index) == [(job.workspace_id, job.job_id)]  # the planted slowdown and nothing else
    row = slow.iloc[0]
    assert row.latest_run_id == demo_facts.slow_run_ids[-1] and row.latest_to_p50_ratio >= 2
    assert row.slow_runs_7d == len(demo_facts.slow_run_ids) == 2


# --- sla_compliance ------------------------------------------------------------------------------------

def test_sla_compliance_finds_the_planted_misses_and_no_others(demo_facts, project, raw_runs, pipeline_output):
    table = _out(pipeline_output, "sla_compliance").set_index(["workspace_id", "job_id"])
    sla_job, reference = demo_facts.sla_job, _rows_of(project, "job_slas")
    assert set(table.index) == {(sla_job.workspace_id, sla_job.job_id)} | {(r["workspace_id"], r["job_id"]) for r in reference}
    anchor = raw_runs.run_date.max()
    window = raw_runs[raw_runs.state.notna() & (raw_runs.run_date >= anchor - dt.timedelta(days=29))]

    def breaches(workspace_id, job_id, max_minutes, deadline):
        runs = window[(window.workspace_id == workspace_id) & (window.job_id == job_id)]
        late = set()
        if deadline:
            hours, minutes = map(int, deadline.split(":"))
            ends_by = runs.start.dt.normalize() + pd.Timedelta(hours=hours, minutes=minutes)
            late = set(runs[runs.end > ends_by].run_id)
        long = set(runs[runs.duration > max_minutes * 60].run_id)
        failed = set(runs[runs.state != "SUCCEEDED"].run_id)
        return runs, long, late, failed

    runs, long, late, failed = breaches(sla_job.workspace_id, sla_job.job_id, demo_facts.sla_max_duration_minutes,
                                        demo_facts.sla_deadline_utc)
    assert long == set(demo_facts.sla_duration_breach_run_ids) and late == set(demo_facts.sla_deadline_breach_run_ids)
    assert not failed
    row = table.loc[(sla_job.workspace_id, sla_job.job_id)]
    assert (row.sla_source, row.max_duration_minutes, row.deadline_utc) == ("tags", 45, "05:00")
    assert row.runs_evaluated == len(runs) and row.breach_count == len(long | late) == 2
    assert (row.duration_breach_count, row.deadline_breach_count) == (1, 2)
    assert math.isclose(row.pct_met, (len(runs) - 2) * 100 / len(runs))
    latest = runs.sort_values("start").iloc[-1]
    assert row.last_run_id == latest.run_id and bool(row.last_run_breached)  # the late start on the last day
    assert row.last_breach_run_id == latest.run_id and row.tier == "P3"
    for sla in reference:  # the reference-table SLA is met on every run: no false breaches
        runs, long, late, failed = breaches(sla["workspace_id"], sla["job_id"], sla["max_duration_minutes"], sla.get("deadline_utc"))
        row = table.loc[(sla["workspace_id"], sla["job_id"])]
        assert not (long | late | failed) and row.sla_source == "job_slas"
        assert row.runs_evaluated == len(runs) > 0 and row.breach_count == 0 and row.pct_met == 100.0
        assert not row.last_run_breached and pd.isna(row.last_breach_run_id)


# --- failures ----------------------------------------------------------------------------------------

def _classify(rules: list[dict], state: str, code: str | None) -> str:
    best, best_score = "unknown", -1
    for rule in sorted(rules, key=lambda r: r["failure_class"]):
        state_ok = rule["result_state"] in ("*", state)
        code_ok = rule["termination_code"] == "*" or rule["termination_code"] == code
        if state_ok and code_ok:
            score = 2 * (rule["result_state"] == state) + (rule["termination_code"] == code)
            if score > best_score:
                best, best_score = rule["failure_class"], score
    return best


def test_failures_are_classified_by_the_reference_rules(demo_facts, project, raw_runs, pipeline_output):
    rules = _rows_of(project, "termination_code_classes")
    table = _out(pipeline_output, "job_failures_classified").set_index(["workspace_id", "run_id"])
    unsuccessful = raw_runs[raw_runs.state.isin(FAILED_STATES | CANCELED_STATES)]
    assert set(table.index) == set(zip(unsuccessful.workspace_id, unsuccessful.run_id))
    for run in unsuccessful.itertuples():
        assert table.loc[(run.workspace_id, run.run_id), "failure_class"] == _classify(rules, run.state, run.code), run.run_id
    # The trap: a timed-out run carries the generic RUN_EXECUTION_ERROR code, yet it is a timeout.
    timed_out = table[table.result_state == "TIMED_OUT"]
    assert len(timed_out) > 0 and set(timed_out.failure_class) == {"timeout"}
    assert "RUN_EXECUTION_ERROR" in set(timed_out.termination_code)
    assert {"user_code_error", "cloud_infra", "timeout", "canceled", "driver_oom"} <= set(table.failure_class)
    first = demo_facts.first_failure_job
    assert table.loc[(first.workspace_id, demo_facts.first_failure_run_id), "failure_class"] == "cloud_infra"

    analysis = _out(pipeline_output, "failure_analysis").set_index(["workspace_id", "job_id", "failure_class"])
    classified = unsuccessful.assign(cls=[_classify(rules, r.state, r.code) for r in unsuccessful.itertuples()])
    anchor = raw_runs.run_date.max()
    expected = classified.groupby(["workspace_id", "job_id", "cls"]).agg(
        n=("run_id", "size"), latest=("start", "max"),
        week=("run_date", lambda d: (d >= anchor - dt.timedelta(days=6)).sum()))
    assert set(analysis.index) == set(expected.index)
    for key, want in expected.iterrows():
        row = analysis.loc[key]
        assert row.failure_count == want.n and row.last_failure_time == want.latest and row.failures_last_7d == want.week, key
        job_total = expected.loc[(key[0], key[1])].n.sum()
        assert math.isclose(row.share_of_job_failures, want.n / job_total), key


# --- daily summaries -------------------------------------------------------------------------------------

def test_job_and_team_daily_summaries_match_raw_runs(raw_runs, raw_teams, priced_usage, pipeline_output):
    runs = raw_runs.copy()
    runs["team"] = [_team(raw_teams, r.workspace_id, r.job_id) for r in runs.itertuples()]
    per_run = priced_usage[priced_usage.job_run_id.notna()].groupby(["workspace_id", "job_run_id"]).cost.sum()
    runs["cost"] = [per_run.get((r.workspace_id, r.run_id), 0.0) for r in runs.itertuples()]
    daily = _out(pipeline_output, "job_summary_daily").set_index(["workspace_id", "job_id", "run_date"])
    expected = runs.groupby(["workspace_id", "job_id", "run_date"])
    assert set(daily.index) == set(expected.groups)
    for key, group in expected:
        row = daily.loc[key]
        finished = group[group.state.notna()]
        assert row.run_count == len(group) and row.success_count == (group.state == "SUCCEEDED").sum(), key
        assert row.failure_count == group.state.isin(FAILED_STATES).sum(), key
        assert row.canceled_count == group.state.isin(CANCELED_STATES).sum() and row.skipped_count == (group.state == "SKIPPED").sum(), key
        assert _same(row.avg_duration_seconds, finished.duration.mean()) or math.isclose(
            row.avg_duration_seconds, finished.duration.mean()), key  # NULL for a day whose only run still runs
        assert _close(_money0(row.total_cost_usd), group.cost.sum()), key
    teams = _out(pipeline_output, "team_summary_daily").set_index(["team", "run_date"])
    runs["team"] = runs.team.fillna("unallocated")
    by_team = runs.groupby(["team", "run_date"])
    assert set(teams.index) == set(by_team.groups) and "unallocated" in set(teams.index.get_level_values("team"))
    for key, group in by_team:
        row = teams.loc[key]
        assert row.run_count == len(group) and row.failure_count == group.state.isin(FAILED_STATES).sum(), key
        assert row.job_count == group[["workspace_id", "job_id"]].drop_duplicates().shape[0], key
        assert _close(_money0(row.total_cost_usd), group.cost.sum()), key


# --- cost allocation -------------------------------------------------------------------------------------

def _allocate(usage: pd.DataFrame, mapping: list[dict]) -> pd.DataFrame:
    """Team and allocation basis of every usage row: team tag, else mapped run_as/owner, else unallocated."""
    tags = {m["match_value"]: m for m in mapping if m["match_type"] == "team_tag"}
    identities = {m["match_value"]: m for m in mapping if m["match_type"] == "run_as"}
    teams, bases = [], []
    for row in usage.itertuples():
        tag = row.team_tag.strip() if isinstance(row.team_tag, str) and row.team_tag.strip() else None
        identity = row.run_as if isinstance(row.run_as, str) else (row.owned_by if isinstance(row.owned_by, str) else None)
        if tag:
            teams.append(tags[tag]["team"] if tag in tags else tag)
            bases.append("team_tag")
        elif identity in identities:
            teams.append(identities[identity]["team"])
            bases.append("run_as")
        else:
            teams.append("unallocated")
            bases.append("unallocated")
    return usage.assign(team=teams, basis=bases)


def test_cost_allocated_keeps_every_cent_and_buckets_untagged_spend(demo_facts, project, priced_usage, pipeline_output):
    allocated = _allocate(priced_usage, _rows_of(project, "team_mapping"))
    table = _out(pipeline_output, "cost_allocated")
    table["cost"] = table.total_cost_usd.map(_money)
    # Per day, the buckets add up to billing: nothing lost or double-counted (corrections included).
    raw_daily = priced_usage.groupby("usage_date").cost.sum()
    out_daily = table.groupby("usage_date").cost.sum()
    summary = _out(pipeline_output, "billing_summary").groupby("usage_date").estimated_cost_usd.sum().map(_money)
    assert set(out_daily.index) == set(raw_daily.index)
    assert all(_close(out_daily[d], raw_daily[d]) and _close(out_daily[d], summary[d]) for d in raw_daily.index)
    assert table.record_count.sum() <= len(priced_usage)  # only buckets netting to zero may be missing
    # Every bucket, recomputed.
    expected = allocated.groupby(["workspace_id", "usage_date", "team", "basis"]).agg(
        cost=("cost", "sum"), quantity=("quantity", "sum"))
    expected = expected[expected.quantity.abs() > 1e-12].cost
    got = table.groupby(["workspace_id", "usage_date", "team", "allocation_basis"]).cost.sum()
    assert set(got.index) == set(expected.index)
    assert all(_close(got[k], v) for k, v in expected.items())
    # The planted untagged spend lands in 'unallocated': the spike cluster and unattributed serverless.
    spike = priced_usage[(priced_usage.cluster_id == demo_facts.spike_cluster_id) & (priced_usage.usage_date == demo_facts.spike_date)]
    assert len(spike) > 0 and spike.team_tag.isna().all()
    unallocated = got.xs("unallocated", level="allocation_basis")
    assert unallocated[(demo_facts.spike_workspace_id, demo_facts.spike_date, "unallocated")] >= spike.cost.sum() - CENT
    shared = allocated[allocated.job_id.isna() & allocated.run_as.isna() & allocated.owned_by.isna()
                       & (allocated.billing_origin_product == "JOBS")]
    assert len(shared) > 0 and set(shared.basis) == {"unallocated"}
    assert {"team_tag", "run_as", "unallocated"} == set(table.allocation_basis)
    bad = table[(table.allocation_basis == "unallocated") != (table.team == "unallocated")]
    assert bad.empty


def test_cost_attribution_coverage_recomputed_from_raw(project, priced_usage, pipeline_output):
    allocated = _allocate(priced_usage, _rows_of(project, "team_mapping"))
    last = allocated.usage_date.max()
    window = allocated[allocated.usage_date >= last - dt.timedelta(days=29)]
    table = _out(pipeline_output, "cost_attribution_coverage").set_index("workspace_id")
    assert set(table.index) == set(window.workspace_id)
    for workspace_id, usage in window.groupby("workspace_id"):
        row = table.loc[workspace_id]
        total = usage.cost.sum()
        job = usage[usage.job_id.notna()].cost.sum()
        team = usage[usage.basis != "unallocated"].cost.sum()
        assert row.window_end == last and row.window_start == last - dt.timedelta(days=29)
        assert _close(row.total_cost_usd, total) and _close(row.job_attributed_cost_usd, job), workspace_id
        assert _close(row.team_attributed_cost_usd, team) and _close(row.unallocated_cost_usd, total - team), workspace_id
        assert math.isclose(row.job_attribution_pct, job * 100 / total, abs_tol=1e-6), workspace_id
        assert math.isclose(row.team_attribution_pct, team * 100 / total, abs_tol=1e-6), workspace_id
    assert (table.team_attribution_pct < 100 - 1e-9).any()  # untagged spend exists


def test_cost_by_workspace_matches_raw(priced_usage, pipeline_output):
    table = _out(pipeline_output, "cost_by_workspace").set_index(["workspace_id", "usage_date"])
    expected = priced_usage.groupby(["workspace_id", "usage_date"])
    assert set(table.index) == set(expected.groups)
    for key, usage in expected:
        row = table.loc[key]
        assert _close(row.total_cost_usd, usage.cost.sum()), key
        assert _close(row.jobs_cost_usd, usage[usage.billing_origin_product == "JOBS"].cost.sum()), key
        assert _close(row.job_attributed_cost_usd, usage[usage.job_id.notna()].cost.sum()), key
    assert table.workspace_name.notna().all()


def test_trend_metrics_week_over_week_anchored_on_the_data(priced_usage, raw_runs, pipeline_output):
    anchor = max(priced_usage.usage_date.max(), raw_runs.run_date.max())
    first = priced_usage.usage_date.min()
    weeks_ago = lambda d: (anchor - d).days // 7  # noqa: E731
    cost = priced_usage.assign(w=priced_usage.usage_date.map(weeks_ago)).groupby(["workspace_id", "w"]).cost.sum()
    runs = raw_runs.assign(w=raw_runs.run_date.map(weeks_ago))
    table = _out(pipeline_output, "trend_metrics").set_index(["workspace_id", "weeks_ago"])
    assert set(table.index) == set(cost.index) | set(zip(runs.workspace_id, runs.w))
    for (workspace_id, w), row in table.iterrows():
        assert row.week_end == anchor - dt.timedelta(days=7 * w) and row.is_complete_week == (row.week_start >= first)
        if (workspace_id, w) in cost.index:
            assert _close(row.total_cost_usd, cost[(workspace_id, w)]), (workspace_id, w)
        else:
            assert pd.isna(row.total_cost_usd), (workspace_id, w)
        mine = runs[(runs.workspace_id == workspace_id) & (runs.w == w)]
        if len(mine):
            finished = mine[mine.state.notna()]
            assert row.run_count == len(mine), (workspace_id, w)
            assert math.isclose(row.failure_rate, finished.state.isin(FAILED_STATES).sum() / len(finished)), (workspace_id, w)
        else:
            assert pd.isna(row.run_count)
        previous = (workspace_id, w + 1)
        if previous in table.index and table.loc[previous].is_complete_week:
            before = cost[previous]
            assert math.isclose(row.cost_change_pct, (cost[(workspace_id, w)] - before) * 100 / before, rel_tol=1e-6)
        else:
            assert pd.isna(row.cost_change_pct)


# --- cluster_efficiency ----------------------------------------------------------------------------------

def test_cluster_efficiency_downsizes_only_the_over_provisioned_cluster(demo_facts, demo_source, priced_usage, pipeline_output):
    nodes = pd.read_parquet(demo_source / "compute" / "node_timeline")
    nodes["hour"] = nodes.start_time.dt.tz_convert(None).dt.floor("h")
    nodes["cpu"] = nodes.cpu_user_percent + nodes.cpu_system_percent
    table = _out(pipeline_output, "cluster_efficiency").set_index("cluster_id")
    assert set(table.index) == set(nodes.cluster_id)
    downsized = table[table.recommendation == "downsize"]
    assert list(downsized.index) == [demo_facts.over_provisioned_cluster_id]
    assert set(table.recommendation) - {"downsize"} == {"keep"}
    assert (table[table.recommendation != "downsize"].estimated_saving_usd.map(_money) == 0).all()
    cluster = demo_facts.over_provisioned_cluster_id
    mine = nodes[nodes.cluster_id == cluster]
    row = table.loc[cluster]
    hourly_nodes = mine.groupby("hour").instance_id.nunique()
    assert math.isclose(row.avg_cpu_percent, mine.cpu.mean()) and row.avg_cpu_percent < 15
    assert math.isclose(row.avg_memory_percent, mine.mem_used_percent.mean())
    assert math.isclose(row.avg_node_count, hourly_nodes.mean()) and row.avg_node_count >= 12
    observed_hours = set(hourly_nodes.index)
    usage = priced_usage[priced_usage.cluster_id == cluster]
    cost = usage[usage.usage_start_time.isin(observed_hours)].cost.sum()
    assert cost > 0 and _close(row.observed_cost_usd, cost)
    assert 1 <= row.recommended_node_count < row.avg_node_count
    saving = cost * (1 - row.recommended_node_count / row.avg_node_count)
    assert _money(row.estimated_saving_usd) > 0 and _close(row.estimated_saving_usd, saving)
    assert row.compute_type == "all_purpose"
