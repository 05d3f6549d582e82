"""Job teams (issue 14): a job's team tag, else the team_mapping rows for its owner, name pattern,
run_as or workspace; 'unallocated' only for jobs no rule covers.

Recomputed from the raw lakeflow.jobs Parquet and the team_mapping spec rows with pandas
(tests/catalog/raw_job_health.py). The demo plants an untagged job whose owner has a job_owner
row, and a job_name row that also matches a tagged job (whose tag must win). Rules the demo does
not exercise (workspace rows, run_as for jobs, longest match, cost_center tags, user names known
only on older versions) run the table's own SQL over hand-made jobs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from engine.spec import load_project
from tests.catalog.raw_job_health import job_teams_from_raw, run_spec_query

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project():
    return load_project(ROOT / "specs")


@pytest.fixture(scope="module")
def mapping(project) -> list[dict]:
    return [dict(r) for r in project.table("team_mapping").rows]


def _same(a, b) -> bool:
    return (pd.isna(a) and pd.isna(b)) or a == b


def test_job_teams_follow_the_rule_recomputed_from_raw(demo_facts, demo_source, mapping, pipeline_output):
    expected = job_teams_from_raw(demo_source, mapping)
    table = pipeline_output.table("job_teams").toPandas().set_index(["workspace_id", "job_id"])
    assert set(table.index) == set(expected.index)
    for key, want in expected.iterrows():
        row = table.loc[key]
        for column in ("team", "team_source", "team_match_value", "business_unit", "cost_center", "tier"):
            assert _same(row[column], want[column]), (key, column)
        assert row.job_name == want["name"] and bool(row.is_deleted) == bool(want.is_deleted), key
    assert table.is_deleted.any()  # deleted jobs keep their team (and name of record)

    job = demo_facts.sla_risk_job  # planted: untagged, its owner has a job_owner row
    owner = table.loc[(job.workspace_id, job.job_id)]
    assert (owner.team_source, owner.team, owner.team_match_value) == ("job_owner", "analytics", demo_facts.sla_risk_owner_email)
    assert pd.isna(owner.team_tag) and owner.creator_user_name == demo_facts.sla_risk_owner_email
    name_rows = [m["match_value"] for m in mapping if m["match_type"] == "job_name"]
    tagged_but_named = table[table.job_name.map(lambda n: any(n.startswith(p.rstrip("%")) for p in name_rows))]
    assert len(tagged_but_named) and set(tagged_but_named.team_source) == {"tag"}  # the tag wins over the name
    uncovered = table[table.team_source == "unallocated"]
    assert len(uncovered) and uncovered.team.isna().all() and uncovered.team_tag.isna().all()


def test_team_summary_daily_leaves_unallocated_only_uncovered_jobs(demo_source, mapping, pipeline_output):
    teams = job_teams_from_raw(demo_source, mapping)
    slices = pd.read_parquet(demo_source / "lakeflow" / "job_run_timeline")
    runs = slices.groupby(["workspace_id", "run_id"]).agg(job_id=("job_id", "first"), start=("period_start_time", "min")).reset_index()
    runs["run_date"] = runs.start.dt.date
    runs["team"] = [teams.team.get((r.workspace_id, r.job_id)) for r in runs.itertuples()]
    runs["team"] = runs.team.fillna("unallocated")
    daily = pipeline_output.table("team_summary_daily").toPandas().set_index(["team", "run_date"])
    expected = runs.groupby(["team", "run_date"])
    assert set(daily.index) == set(expected.groups)
    for key, group in expected:
        assert daily.loc[key].run_count == len(group), key
    unallocated_jobs = set(runs[runs.team == "unallocated"].job_id)
    assert unallocated_jobs == {job for (_, job) in teams.index[teams.team_source == "unallocated"]} & set(runs.job_id)
    untagged = {job for (_, job), source in teams.team_source.items() if source != "tag"}
    assert untagged - unallocated_jobs  # an untagged job is allocated by a rule, not left unallocated


def test_each_rule_and_its_precedence_on_hand_made_jobs(local_spark, project):
    spark = local_spark.spark
    old, new = dt.datetime(2025, 6, 1), dt.datetime(2026, 2, 1)
    versions = [  # workspace, job, name, tags, creator_id, run_as, creator_user_name, run_as_user_name, change_time
        ("w1", "tagged", "finance_report", {"team": "ops", "cost_center": "CC-9"}, "u1", "u1", "ann@x.com", "ann@x.com", new),
        ("w1", "owner", "finance_report_2", {}, "u1", "u9", None, None, old),            # email only on the older version:
        ("w1", "owner", "finance_report_2", {}, "u1", "u9", "ann@x.com", None, old + dt.timedelta(days=1)),
        ("w1", "owner", "finance_report_2", {}, "u1", "u9", None, None, new),            # ... the latest known is used
        ("w1", "named", "finance_daily", {}, "u2", "u2", "bob@x.com", "bob@x.com", new),  # longest pattern wins
        ("w1", "runner", "misc", {}, "u3", "sp-1", "cy@x.com", "app-1", new),           # run_as by user name
        ("w2", "anywhere", "misc", {"team": " "}, "u4", "u4", "dee@x.com", "dee@x.com", new),  # blank tag: workspace row
        ("w1", "nobody", "misc", {}, "u5", "u5", "eve@x.com", "eve@x.com", new),
        ("w1", "gone", "misc", {"team": "legacy"}, "u6", "u6", None, None, new),           # deleted below, keeps its tag
    ]
    jobs = spark.createDataFrame(
        [(w, j, n, t, c, r, cu, ru, ts, new if j == "gone" else None) for w, j, n, t, c, r, cu, ru, ts in versions],
        "workspace_id string, job_id string, name string, tags map<string,string>, creator_id string, run_as string, "
        "creator_user_name string, run_as_user_name string, change_time timestamp, delete_time timestamp")
    rules = spark.createDataFrame([
        ("team_tag", "ops", "operations", "Ops BU", "CC-1"),
        ("job_owner", "ann@x.com", "finance-bi", "Finance", "CC-4"),
        ("job_name", "finance%", "finance-wide", "Finance", "CC-5"),
        ("job_name", "finance_daily", "finance-daily", "Finance", "CC-6"),
        ("run_as", "app-1", "platform", "Engineering", "CC-7"),
        ("workspace", "w2", "w2-team", "BU-2", "CC-8"),
    ], "match_type string, match_value string, team string, business_unit string, cost_center string")
    out = run_spec_query(spark, project, "job_teams", {"jobs_bronze": jobs, "team_mapping": rules}, "teams_case")
    got = {row.job_id: (row.team_source, row.team, row.cost_center) for row in out.itertuples()}
    assert got == {
        "tagged": ("tag", "operations", "CC-9"),  # renamed by its team_tag row; its cost_center tag wins
        "owner": ("job_owner", "finance-bi", "CC-4"),  # beats the finance% name row
        "named": ("job_name", "finance-daily", "CC-6"),
        "runner": ("run_as", "platform", "CC-7"),
        "anywhere": ("workspace", "w2-team", "CC-8"),
        "nobody": ("unallocated", None, None),
        "gone": ("tag", "legacy", None),
    }
    gone = out.set_index("job_id").loc["gone"]
    assert bool(gone.is_deleted) and gone.job_name == "misc"
