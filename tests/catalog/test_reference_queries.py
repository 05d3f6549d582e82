"""Queries written against the schema reference (reference/schema_reference.md) run on the catalog.

Each query uses only the reference's table and column names, the way a team moving to Tablesmith
would bring it; its result is checked against figures recomputed here from the RAW demo Parquet.
The planted cases of issue 14 are checked too: a job deleted after it ran keeps its name in
cost_by_job, and the planted spend drop is a LOW_SPEND day in cost_anomalies.
"""

from __future__ import annotations

from decimal import Decimal

import pytest


@pytest.fixture(scope="module")
def spark(pipeline_output, demo_source):
    s = pipeline_output.spark
    for schema, table in (("billing", "usage"), ("billing", "list_prices"), ("lakeflow", "jobs"),
                          ("lakeflow", "job_run_timeline")):
        s.read.parquet(str(demo_source / schema / table)).createOrReplaceTempView(f"raw_{table}")
    for name in ("job_runs_summary", "cost_by_sku", "cost_anomalies", "cost_by_job", "executive_summary"):
        pipeline_output.table(name).createOrReplaceTempView(name)
    return s


def test_daily_failed_runs_per_job(spark):
    # Reference query: daily failed runs per job from job_runs_summary.
    got = {(r.run_date, r.job_id): (r.failed_runs, r.total_runs) for r in spark.sql("""
        SELECT run_date, job_id, SUM(failed_runs) AS failed_runs, SUM(total_runs) AS total_runs
        FROM job_runs_summary GROUP BY run_date, job_id
    """).collect()}
    # Recomputed from the raw timeline: a run is one run_id, its state the latest terminal row's.
    expected = {(r.run_date, r.job_id): (r.failed_runs, r.total_runs) for r in spark.sql("""
        WITH runs AS (
          SELECT workspace_id, run_id, MAX(job_id) AS job_id, CAST(MIN(period_start_time) AS DATE) AS run_date,
                 max_by(result_state, CASE WHEN result_state IS NOT NULL THEN period_end_time END) AS final_state
          FROM raw_job_run_timeline GROUP BY workspace_id, run_id
        )
        SELECT run_date, job_id, COUNT_IF(final_state IN ('ERROR', 'FAILED', 'TIMED_OUT')) AS failed_runs,
               COUNT(*) AS total_runs
        FROM runs GROUP BY run_date, job_id
    """).collect()}
    assert got == expected
    assert sum(f for f, _ in got.values()) > 0


def test_total_usage_by_sku(spark):
    # Reference query: total_usage and cost by SKU from cost_by_sku.
    got = {r.sku_name: r.total_usage for r in spark.sql(
        "SELECT sku_name, SUM(total_usage) AS total_usage FROM cost_by_sku GROUP BY sku_name").collect()}
    expected = {r.sku_name: r.q for r in spark.sql("""
        SELECT sku_name, SUM(usage_quantity) AS q FROM raw_usage GROUP BY sku_name HAVING SUM(usage_quantity) != 0
    """).collect()}
    assert got.keys() == expected.keys()
    for sku, quantity in expected.items():
        assert abs(Decimal(got[sku]) - Decimal(quantity)) < Decimal("0.000001"), sku


def test_high_spend_days_are_the_planted_spike(spark, demo_facts):
    # Reference query: HIGH_SPEND days from cost_anomalies.
    high = {(r.workspace_id, r.usage_date) for r in spark.sql(
        "SELECT workspace_id, usage_date FROM cost_anomalies WHERE anomaly_type = 'HIGH_SPEND'").collect()}
    assert (demo_facts.spike_workspace_id, demo_facts.spike_date) in high
    kinds = {r.anomaly_type for r in spark.sql("SELECT DISTINCT anomaly_type FROM cost_anomalies").collect()}
    assert kinds <= {"HIGH_SPEND", "LOW_SPEND", "NORMAL"} and "NORMAL" in kinds


def test_the_planted_spend_drop_is_low_spend(spark, demo_facts):
    row = spark.sql(f"""
        SELECT anomaly_type, daily_cost, ma30_cost, z_score FROM cost_anomalies
        WHERE workspace_id = '{demo_facts.spend_drop_workspace_id}' AND usage_date = DATE'{demo_facts.spend_drop_date}'
    """).first()
    assert row is not None and row.anomaly_type == "LOW_SPEND", row
    # The raw data holds the drop: that day's quantity is far below the workspace's other weekdays.
    day, usual = spark.sql(f"""
        WITH daily AS (
          SELECT usage_date, SUM(usage_quantity) AS q FROM raw_usage
          WHERE workspace_id = '{demo_facts.spend_drop_workspace_id}' GROUP BY usage_date
        )
        SELECT MAX(CASE WHEN usage_date = DATE'{demo_facts.spend_drop_date}' THEN q END),
               percentile(CASE WHEN usage_date != DATE'{demo_facts.spend_drop_date}' AND dayofweek(usage_date) BETWEEN 2 AND 6
                               THEN CAST(q AS DOUBLE) END, 0.5)
        FROM daily
    """).first()
    assert float(day) < 0.2 * usual


def test_a_deleted_jobs_cost_carries_its_name(spark, demo_facts):
    job = demo_facts.deleted_billed_job
    latest = spark.sql(f"""
        SELECT name, delete_time FROM raw_jobs WHERE workspace_id = '{job.workspace_id}' AND job_id = '{job.job_id}'
        ORDER BY change_time DESC LIMIT 1
    """).first()
    assert latest.delete_time is not None, "the planted job is deleted"
    billed = spark.sql(f"""
        SELECT SUM(usage_quantity) AS q FROM raw_usage
        WHERE workspace_id = '{job.workspace_id}' AND usage_metadata.job_id = '{job.job_id}'
    """).first().q
    assert billed is not None and billed > 0, "the planted deleted job was billed"
    names = {r.job_name for r in spark.sql(f"""
        SELECT DISTINCT job_name FROM cost_by_job WHERE workspace_id = '{job.workspace_id}' AND job_id = '{job.job_id}'
    """).collect()}
    assert names == {latest.name} == {job.name}
    # Every deleted job with cost has its latest name (names of record), never NULL.
    deleted = ", ".join(f"'{j}'" for j in demo_facts.deleted_job_ids)
    unnamed = spark.sql(f"""
        SELECT COUNT(*) AS n FROM cost_by_job c
        WHERE c.job_id IN ({deleted}) AND c.workspace_id != '{demo_facts.remote_workspace_id}' AND c.job_name IS NULL
    """).first().n
    assert unnamed == 0


def test_executive_summary_splits_the_daily_total_by_product(spark):
    rows = spark.sql("""
        SELECT usage_date, SUM(total_cost_usd) AS total, SUM(jobs_cost_usd + sql_cost_usd + dlt_cost_usd
               + serving_cost_usd + interactive_cost_usd + other_cost_usd) AS parts
        FROM executive_summary GROUP BY usage_date
    """).collect()
    assert rows and all(abs(r.total - r.parts) < Decimal("0.01") for r in rows)
