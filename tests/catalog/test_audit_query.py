"""Audit and SQL-warehouse tables against the raw demo system tables.

Expected figures come from the RAW demo Parquet (access.audit, query.history), computed here in pandas,
separately from the specs' SQL. The planted cases of `engine.demo.facts` (the denied reads of
main.finance.payroll) and the account-level audit events (workspace_id "0") are checked explicitly.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest


ACCOUNT_LEVEL_WORKSPACE = "0"  # a string: account-level audit events use workspace_id "0"
UC_TABLE_ACTIONS = ("getTable", "deleteTable", "updateTable")


@pytest.fixture(scope="module")
def raw_audit(demo_source) -> pd.DataFrame:
    frame = pd.read_parquet(demo_source / "access" / "audit")
    frame["email"] = frame.user_identity.map(lambda u: u["email"] if u is not None else None)
    frame["status"] = frame.response.map(lambda r: r["status_code"] if r is not None else None)
    frame["table_name"] = frame.request_params.map(lambda p: dict(p).get("full_name_arg") if p is not None else None)
    return frame


@pytest.fixture(scope="module")
def raw_queries(demo_source) -> pd.DataFrame:
    frame = pd.read_parquet(demo_source / "query" / "history")
    frame["warehouse"] = frame.compute.map(lambda c: c["warehouse_id"] if c is not None else None)
    frame["day"] = frame.start_time.dt.tz_convert("UTC").dt.date
    return frame


# --- audit -------------------------------------------------------------------------------------

def test_account_level_events_are_kept_and_counted(raw_audit, pipeline_output):
    account = raw_audit[raw_audit.workspace_id == ACCOUNT_LEVEL_WORKSPACE]
    assert len(account) > 0, "the demo data should contain account-level audit events"
    assert set(account.audit_level) == {"ACCOUNT_LEVEL"}

    bronze = pipeline_output.table("audit_logs_bronze")
    assert bronze.count() == len(raw_audit)  # nothing dropped, account-level events included
    assert bronze.where(f"workspace_id = '{ACCOUNT_LEVEL_WORKSPACE}'").count() == len(account)

    activity = pipeline_output.table("user_activity_summary").toPandas()
    assert activity.event_count.sum() == len(raw_audit)
    got = activity[activity.workspace_id == ACCOUNT_LEVEL_WORKSPACE]
    assert got.event_count.sum() == len(account)
    assert got.failed_count.sum() == int((account.status >= 400).sum())
    # per day, user and service (the reference's grain), recomputed from the raw rows
    keys = ["event_date", "email", "service_name"]
    expected = (account.groupby(keys, dropna=False)
                .agg(events=("event_id", "size"), failed=("status", lambda s: int((s >= 400).sum())),
                     actions=("action_name", "nunique"))
                .reset_index())
    merged = expected.merge(got, left_on=keys, right_on=["event_date", "user_email", "service_name"], how="outer",
                            indicator=True)
    assert (merged._merge == "both").all(), merged[merged._merge != "both"]
    assert (merged.events == merged.event_count).all()
    assert (merged.failed == merged.failed_count).all()
    assert (merged.actions == merged.distinct_actions).all()


def test_user_activity_matches_raw_for_every_workspace(raw_audit, pipeline_output):
    keys = ["event_date", "workspace_id", "email", "service_name"]
    expected = (raw_audit.groupby(keys, dropna=False)
                .agg(events=("event_id", "size"), failed=("status", lambda s: int((s >= 400).sum())),
                     actions=("action_name", "nunique"), first=("event_time", "min"), last=("event_time", "max"))
                .reset_index())
    got = pipeline_output.table("user_activity_summary").toPandas()
    assert len(got) == len(expected)
    merged = expected.merge(got, left_on=keys, right_on=["event_date", "workspace_id", "user_email", "service_name"],
                            how="inner")
    assert len(merged) == len(expected)
    assert (merged.events == merged.event_count).all()
    assert (merged.failed == merged.failed_count).all()
    assert (merged.actions == merged.distinct_actions).all()
    assert (merged["first"].dt.tz_convert(None) == merged.first_activity).all()
    assert (merged["last"].dt.tz_convert(None) == merged.last_activity).all()
    # The split by service is exercised: some users are active in several services on one day.
    assert (expected.groupby(["event_date", "workspace_id", "email"]).size() > 1).any()
    # ... and some user-service-days hold several distinct actions.
    assert (merged.distinct_actions > 1).any()


def test_planted_denials_on_the_restricted_table_show_in_data_access_summary(demo_facts, raw_audit, pipeline_output):
    denied_raw = raw_audit[(raw_audit.service_name == "unityCatalog") & (raw_audit.status == 403)
                           & (raw_audit.email == demo_facts.denied_user_email)
                           & (raw_audit.table_name == demo_facts.restricted_table)]
    assert len(denied_raw) > 0, "the planted 403s on the restricted table are missing from the demo data"

    access = pipeline_output.table("data_access_summary").toPandas()
    planted = access[(access.user_email == demo_facts.denied_user_email)
                     & (access.table_full_name == demo_facts.restricted_table)]
    assert planted.denied_count.sum() == len(denied_raw)
    per_day = denied_raw.groupby("event_date").size()
    got_per_day = planted.groupby("event_date").denied_count.sum()
    assert got_per_day.to_dict() == per_day.to_dict()
    # the user is never allowed on that table: every access was denied
    assert (planted.denied_count == planted.access_count).all()

    # Only the planted reads are denials; all other table accesses are allowed.
    others = access[~access.index.isin(planted.index)]
    assert others.denied_count.sum() == 0


def test_data_access_counts_every_uc_table_action(raw_audit, pipeline_output):
    table_events = raw_audit[(raw_audit.service_name == "unityCatalog")
                             & raw_audit.action_name.isin(UC_TABLE_ACTIONS) & raw_audit.table_name.notna()]
    keys = ["event_date", "workspace_id", "email", "action_name", "table_name"]
    expected = (table_events.groupby(keys)
                .agg(accesses=("event_id", "size"), denied=("status", lambda s: int((s == 403).sum())),
                     first=("event_time", "min"), last=("event_time", "max"))
                .reset_index())
    got = pipeline_output.table("data_access_summary").toPandas()
    assert len(got) == len(expected)
    merged = expected.merge(got, left_on=keys,
                            right_on=["event_date", "workspace_id", "user_email", "action_name", "table_full_name"])
    assert len(merged) == len(expected)
    assert (merged.accesses == merged.access_count).all()
    assert (merged.denied == merged.denied_count).all()
    assert (merged["first"].dt.tz_convert(None) == merged.first_access).all()
    assert (merged["last"].dt.tz_convert(None) == merged.last_access).all()
    assert (merged.access_count > 1).any()  # first and last access differ somewhere


def test_user_activity_30d_is_the_audit_log_of_the_latest_30_days(raw_audit, pipeline_output):
    period_end = raw_audit.event_date.max()  # anchored on the data, not on today
    period_start = period_end - dt.timedelta(days=29)
    window = raw_audit[(raw_audit.event_date >= period_start) & (raw_audit.event_date <= period_end)
                       & raw_audit.email.notna()]
    assert len(window) < len(raw_audit)  # the data is longer than the window
    expected = (window.groupby(["workspace_id", "email"])
                .agg(days=("event_date", "nunique"), events=("event_id", "size"),
                     first=("event_time", "min"), last=("event_time", "max"),
                     services=("service_name", lambda s: sorted(set(s))))
                .reset_index())
    got = pipeline_output.table("user_activity_30d").toPandas()
    merged = expected.merge(got, left_on=["workspace_id", "email"], right_on=["workspace_id", "user_email"],
                            how="outer", indicator=True)
    assert (merged._merge == "both").all(), merged[merged._merge != "both"][["workspace_id", "email", "user_email"]]
    assert (merged.days == merged.active_days).all() and (merged.events == merged.total_events).all()
    assert (merged["first"].dt.tz_convert(None) == merged.first_seen).all()
    assert (merged["last"].dt.tz_convert(None) == merged.last_seen).all()
    assert all(list(a) == b for a, b in zip(merged.services_used, merged.services))
    assert (got.period_end == period_end).all() and (got.period_start == period_start).all()
    assert (got.workspace_id == ACCOUNT_LEVEL_WORKSPACE).any()  # account-level activity is kept


# --- SQL warehouses ----------------------------------------------------------------------------

def _nearest_rank(values: list[int], fraction: float) -> int:
    """The smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)), 1) - 1]


def test_query_history_bronze_keeps_every_statement(raw_queries, pipeline_output):
    bronze = pipeline_output.table("query_history_bronze")
    assert bronze.count() == len(raw_queries)
    assert bronze.select("statement_id").distinct().count() == raw_queries.statement_id.nunique()


def test_warehouse_query_summary_matches_raw_query_history(raw_queries, pipeline_output):
    on_warehouses = raw_queries[raw_queries.warehouse.notna()]
    keys = ["day", "workspace_id", "warehouse", "executed_by"]
    expected = (on_warehouses.groupby(keys)
                .agg(queries=("statement_id", "size"),
                     failed=("execution_status", lambda s: int((s == "FAILED").sum())),
                     canceled=("execution_status", lambda s: int((s == "CANCELED").sum())),
                     read_bytes=("read_bytes", "sum"),
                     durations=("total_duration_ms", list))
                .reset_index())
    got = pipeline_output.table("warehouse_query_summary").toPandas()
    assert len(got) == len(expected)
    merged = expected.merge(got, left_on=keys, right_on=["query_date", "workspace_id", "warehouse_id", "executed_by"])
    assert len(merged) == len(expected)
    assert (merged.queries == merged.query_count).all()
    assert (merged.failed == merged.failed_count).all()
    assert (merged.canceled == merged.canceled_count).all()
    assert (merged.read_bytes == merged.total_read_bytes).all()
    assert got.query_count.sum() == len(on_warehouses)
    assert got.failed_count.sum() == int((on_warehouses.execution_status == "FAILED").sum()) > 0

    # Percentiles: percentile_approx is exact (nearest rank) on groups this small.
    p50 = merged.durations.map(lambda v: _nearest_rank(v, 0.5))
    p95 = merged.durations.map(lambda v: _nearest_rank(v, 0.95))
    assert (p50 == merged.p50_total_duration_ms).all()
    assert (p95 == merged.p95_total_duration_ms).all()
    assert (merged.durations.map(max) == merged.max_total_duration_ms).all()
